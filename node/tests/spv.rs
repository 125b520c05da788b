//! Whitepaper section 8 end to end on regtest: `gettxoutproof` and
//! `verifytxoutproof` against the real binary, as Bitcoin Core answers them
//! without a transaction index, and a headers-only client checking a proof.

mod harness;

use bitcoin::block::Header;
use bitcoin::consensus::deserialize;
use harness::{regtest_address, Daemon};
use satpool_node::params::{ChainParams, Network};
use satpool_node::spv::{self, Anchor, DifficultyCheck, HeaderChain};
use serde_json::{json, Value};

async fn block_hash(node: &Daemon, height: u32) -> String {
    node.call("getblockhash", json!([height])).await
}

async fn txids_of(node: &Daemon, height: u32) -> Vec<String> {
    let block: Value = node.call("getblock", json!([block_hash(node, height).await, 1])).await;
    block["tx"].as_array().expect("tx list").iter().map(|t| t.as_str().expect("txid").to_owned()).collect()
}

async fn expect_error(node: &Daemon, method: &str, params: Value, code: i32, message: &str) {
    let err = node.call_err(method, params.clone()).await;
    assert_eq!((err.code.code(), err.message.as_str()), (code, message), "{method} {params}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gettxoutproof_and_verifytxoutproof_on_regtest() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = Daemon::regtest(dir.path()).await;
    let _: Value = node.call("createwallet", json!(["spv"])).await;
    let mine_to: String = node.call("getnewaddress", json!([])).await;
    let other = regtest_address().to_string();

    // Block 1 pays the wallet; once mature the wallet spends it.
    let _: Value = node.call("generatetoaddress", json!([1, mine_to])).await;
    let _: Value = node.call("generatetoaddress", json!([100, other])).await;
    let coinbase1 = txids_of(&node, 1).await[0].clone();
    let payment: String = node.call("sendtoaddress", json!([other, 10.0])).await;
    let _: Value = node.call("generatetoaddress", json!([1, other])).await;
    let block102 = txids_of(&node, 102).await;
    assert_eq!(block102.len(), 2);
    assert_eq!(block102[1], payment);
    let coinbase102 = block102[0].clone();
    let hash1 = block_hash(&node, 1).await;
    let hash102 = block_hash(&node, 102).await;

    // A coinbase with an unspent output: found without a block hash.
    let proof: String = node.call("gettxoutproof", json!([[coinbase102]])).await;
    let proven: Vec<String> = node.call("verifytxoutproof", json!([proof])).await;
    assert_eq!(proven, std::slice::from_ref(&coinbase102));

    // The payment (its change and payment are unspent), alone and with the coinbase.
    let proof_payment: String = node.call("gettxoutproof", json!([[payment]])).await;
    let proven: Vec<String> = node.call("verifytxoutproof", json!([proof_payment])).await;
    assert_eq!(proven, std::slice::from_ref(&payment));
    let both: String = node.call("gettxoutproof", json!([[payment, coinbase102], hash102])).await;
    let proven: Vec<String> = node.call("verifytxoutproof", json!([both])).await;
    assert_eq!(proven, [coinbase102.clone(), payment.clone()], "block order");

    // A spent transaction: only with its block's hash.
    expect_error(&node, "gettxoutproof", json!([[coinbase1]]), -5, "Transaction not yet in block").await;
    let proof1: String = node.call("gettxoutproof", json!([[coinbase1], hash1])).await;
    let proven: Vec<String> = node.call("verifytxoutproof", json!([proof1])).await;
    assert_eq!(proven, std::slice::from_ref(&coinbase1));

    // Core's errors.
    expect_error(
        &node,
        "gettxoutproof",
        json!([[payment], hash1]),
        -5,
        "Not all transactions found in specified or retrieved block",
    )
    .await;
    expect_error(&node, "gettxoutproof", json!([[payment], "00".repeat(32)]), -5, "Block not found").await;
    expect_error(
        &node,
        "gettxoutproof",
        json!([[payment, payment]]),
        -8,
        &format!("Invalid parameter, duplicated txid: {payment}"),
    )
    .await;
    expect_error(&node, "gettxoutproof", json!([[]]), -8, "Parameter 'txids' cannot be empty").await;

    // A damaged proof proves nothing; a proof with another transaction count neither.
    let mut bytes = hex::decode(&proof_payment).expect("hex");
    bytes[80 + 4 + 1] ^= 1; // the first hash of the tree
    let proven: Vec<String> = node.call("verifytxoutproof", json!([hex::encode(&bytes)])).await;
    assert!(proven.is_empty());
    let mut bytes = hex::decode(&proof_payment).expect("hex");
    bytes[80] += 1;
    let proven: Vec<String> = node.call("verifytxoutproof", json!([hex::encode(&bytes)])).await;
    assert!(proven.is_empty());

    // Off the active chain: Core's error; back on it, valid again.
    let _: Value = node.call("invalidateblock", json!([hash102])).await;
    expect_error(&node, "verifytxoutproof", json!([proof_payment]), -5, "Block not found in chain").await;
    let _: Value = node.call("reconsiderblock", json!([hash102])).await;
    let proven: Vec<String> = node.call("verifytxoutproof", json!([proof_payment])).await;
    assert_eq!(proven, std::slice::from_ref(&payment));

    // A headers-only client: the chain's headers and the proof are enough.
    let _: Value = node.call("generatetoaddress", json!([5, other])).await;
    let mut headers = Vec::new();
    for height in 0..=107 {
        let hex: String = node.call("getblockheader", json!([block_hash(&node, height).await, false])).await;
        headers.push(deserialize::<Header>(&hex::decode(hex).expect("hex")).expect("a header"));
    }
    let chain =
        HeaderChain::verify(headers, Anchor::Genesis, &ChainParams::new(Network::Regtest), DifficultyCheck::Rule)
            .expect("the node's chain checks out");
    let proof = spv::decode_proof(&hex::decode(&proof_payment).expect("hex")).expect("decodes");
    let txid = payment.parse().expect("a txid");
    assert_eq!(chain.verify_payment(&proof, &txid, 6).expect("six confirmations"), 6);
}
