//! BIP341's wallet vectors (`bip341_wallet_vectors.json`): output key
//! construction from script trees (leaf hashes, Merkle root, tweak, control
//! blocks), key path signature hashes, and verification of the signed
//! transaction's key path inputs.

mod common;

use bitcoin::secp256k1::{Scalar, Secp256k1, XOnlyPublicKey};
use bitcoin::{Amount, ScriptBuf, TxOut};
use satpool_consensus::sighash::taproot_sighash;
use satpool_consensus::taproot::{tapbranch_hash, tapleaf_hash, taptweak_hash};
use satpool_consensus::{verify_input, PrecomputedTx, VerifyFlags};
use serde_json::Value;

use common::{decode_tx, load};

fn bytes32(v: &Value) -> [u8; 32] {
    let s = v.as_str().expect("a hex string");
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

struct Leaf {
    id: u64,
    version: u8,
    hash: [u8; 32],
    path: Vec<[u8; 32]>,
}

/// The root of a script tree and its leaves with their Merkle paths.
fn walk(tree: &Value) -> ([u8; 32], Vec<Leaf>) {
    if let Some([left, right]) = tree.as_array().map(Vec::as_slice) {
        let (hl, mut ll) = walk(left);
        let (hr, mut lr) = walk(right);
        ll.iter_mut().for_each(|l| l.path.push(hr));
        lr.iter_mut().for_each(|l| l.path.push(hl));
        ll.extend(lr);
        return (tapbranch_hash(&hl, &hr), ll);
    }
    let version = tree["leafVersion"].as_u64().expect("leafVersion") as u8;
    let script = hex::decode(tree["script"].as_str().expect("script")).expect("hex");
    let hash = tapleaf_hash(version, &script);
    let leaf = Leaf { id: tree["id"].as_u64().expect("id"), version, hash, path: Vec::new() };
    (hash, vec![leaf])
}

#[test]
fn script_pubkey_construction() {
    let vectors = load("bip341_wallet_vectors.json");
    let secp = Secp256k1::verification_only();
    let cases = vectors["scriptPubKey"].as_array().expect("array");
    for (index, case) in cases.iter().enumerate() {
        let internal_bytes = bytes32(&case["given"]["internalPubkey"]);
        let internal = XOnlyPublicKey::from_slice(&internal_bytes).expect("valid key");
        let tree = &case["given"]["scriptTree"];
        let (root, mut leaves) = if tree.is_null() {
            (None, Vec::new())
        } else {
            let (root, leaves) = walk(tree);
            (Some(root), leaves)
        };
        leaves.sort_by_key(|l| l.id);
        let inter = &case["intermediary"];
        if let Some(expected) = inter["leafHashes"].as_array() {
            let got: Vec<String> = leaves.iter().map(|l| hex::encode(l.hash)).collect();
            let want: Vec<String> = expected.iter().map(|v| v.as_str().expect("hex").to_owned()).collect();
            assert_eq!(got, want, "case {index}: leaf hashes");
        }
        let want_root = inter["merkleRoot"].as_str().map(str::to_owned);
        assert_eq!(root.map(hex::encode), want_root, "case {index}: merkle root");
        let tweak = taptweak_hash(&internal_bytes, root.as_ref());
        assert_eq!(tweak, bytes32(&inter["tweak"]), "case {index}: tweak");
        let scalar = Scalar::from_be_bytes(tweak).expect("below the order");
        let (output, parity) = internal.add_tweak(&secp, &scalar).expect("tweak");
        assert_eq!(output.serialize(), bytes32(&inter["tweakedPubkey"]), "case {index}: output key");
        let expected = &case["expected"];
        let spk = format!("5120{}", hex::encode(output.serialize()));
        assert_eq!(Some(spk.as_str()), expected["scriptPubKey"].as_str(), "case {index}");
        if let Some(blocks) = expected["scriptPathControlBlocks"].as_array() {
            for (leaf, block) in leaves.iter().zip(blocks) {
                let mut control = vec![leaf.version | parity.to_u8()];
                control.extend_from_slice(&internal_bytes);
                leaf.path.iter().for_each(|n| control.extend_from_slice(n));
                assert_eq!(
                    Some(hex::encode(&control).as_str()),
                    block.as_str(),
                    "case {index}: control block of leaf {}",
                    leaf.id
                );
            }
        }
    }
}

#[test]
fn key_path_spending() {
    let vectors = load("bip341_wallet_vectors.json");
    let mut checked = 0;
    for (case_index, case) in vectors["keyPathSpending"].as_array().expect("array").iter().enumerate() {
        let given = &case["given"];
        let unsigned = decode_tx(given["rawUnsignedTx"].as_str().expect("hex")).expect("tx");
        let spent: Vec<TxOut> = given["utxosSpent"]
            .as_array()
            .expect("array")
            .iter()
            .map(|u| TxOut {
                value: Amount::from_sat(u["amountSats"].as_u64().expect("amount")),
                script_pubkey: ScriptBuf::from_bytes(
                    hex::decode(u["scriptPubKey"].as_str().expect("hex")).expect("hex"),
                ),
            })
            .collect();
        let data = PrecomputedTx::new(&unsigned, &spent).expect("one output per input");
        let signed = decode_tx(case["auxiliary"]["fullySignedTx"].as_str().expect("hex")).expect("signed tx");
        let signed_data = PrecomputedTx::new(&signed, &spent).expect("one output per input");
        for input in case["inputSpending"].as_array().expect("array") {
            checked += 1;
            let index = input["given"]["txinIndex"].as_u64().expect("index") as usize;
            let hash_type = input["given"]["hashType"].as_u64().expect("hash type") as u8;
            let sighash = taproot_sighash(&data, index, hash_type, None, None)
                .unwrap_or_else(|| panic!("case {case_index} input {index}: no sighash"));
            assert_eq!(sighash, bytes32(&input["intermediary"]["sigHash"]), "case {case_index} input {index}: sighash");
            // The signed transaction's witness is the expected one, and it
            // verifies under every rule, policy included.
            let witness: Vec<String> = signed.input[index].witness.iter().map(hex::encode).collect();
            let expected: Vec<String> = input["expected"]["witness"]
                .as_array()
                .expect("array")
                .iter()
                .map(|w| w.as_str().expect("hex").to_owned())
                .collect();
            assert_eq!(witness, expected, "case {case_index} input {index}: witness");
            verify_input(&signed_data, index, VerifyFlags::STANDARD)
                .unwrap_or_else(|e| panic!("case {case_index} input {index}: signed input fails: {e}"));
        }
    }
    assert!(checked >= 7, "only {checked} inputs checked");
}
