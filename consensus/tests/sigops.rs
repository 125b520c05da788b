//! Sigop counting through the public API, case by case.

use bitcoin::hashes::{hash160, sha256, Hash};
use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use satpool_consensus::opcodes::{OP_0, OP_2, OP_3, OP_CHECKMULTISIG, OP_CHECKSIG, OP_EQUAL, OP_HASH160};
use satpool_consensus::script::push_data;
use satpool_consensus::{legacy_sigop_count, p2sh_sigop_count, transaction_sigop_cost, VerifyFlags};

fn multisig_2_of_3() -> Vec<u8> {
    let mut s = vec![OP_2];
    for k in 0..3u8 {
        push_data(&mut s, &[2 + (k & 1); 33]);
    }
    s.extend([OP_3, OP_CHECKMULTISIG]);
    s
}

fn p2sh(redeem: &[u8]) -> Vec<u8> {
    let mut s = vec![OP_HASH160];
    push_data(&mut s, hash160::Hash::hash(redeem).as_byte_array());
    s.push(OP_EQUAL);
    s
}

fn input(n: u32, script_sig: Vec<u8>, witness: Vec<Vec<u8>>) -> TxIn {
    TxIn {
        previous_output: OutPoint::new(Txid::all_zeros(), n),
        script_sig: ScriptBuf::from_bytes(script_sig),
        sequence: Sequence::MAX,
        witness: Witness::from_slice(&witness),
    }
}

fn out(script: Vec<u8>) -> TxOut {
    TxOut { value: Amount::from_sat(1000), script_pubkey: ScriptBuf::from_bytes(script) }
}

#[test]
fn p2sh_and_witness_sigops() {
    let redeem = multisig_2_of_3();
    // Input 0: P2SH multisig. Input 1: P2WPKH. Input 2: P2WSH multisig.
    // Input 3: P2SH-wrapped P2WPKH.
    let mut p2sh_sig = vec![OP_0];
    push_data(&mut p2sh_sig, &[0x30; 71]);
    push_data(&mut p2sh_sig, &redeem);
    let p2wpkh = {
        let mut s = vec![OP_0];
        push_data(&mut s, &[7; 20]);
        s
    };
    let p2wsh = {
        let mut s = vec![OP_0];
        push_data(&mut s, sha256::Hash::hash(&redeem).as_byte_array());
        s
    };
    let mut nested_sig = Vec::new();
    push_data(&mut nested_sig, &p2wpkh);
    let tx = Transaction {
        version: transaction::Version(2),
        lock_time: absolute::LockTime::ZERO,
        input: vec![
            input(0, p2sh_sig, vec![]),
            input(1, vec![], vec![vec![0x30; 72], vec![2; 33]]),
            input(2, vec![], vec![vec![], vec![0x30; 72], redeem.clone()]),
            input(3, nested_sig, vec![vec![0x30; 72], vec![2; 33]]),
        ],
        // One bare CHECKSIG and one bare CHECKMULTISIG (inaccurate: 20).
        output: vec![out(vec![OP_CHECKSIG]), out(vec![OP_CHECKMULTISIG])],
    };
    let spent = vec![out(p2sh(&redeem)), out(p2wpkh.clone()), out(p2wsh), out(p2sh(&p2wpkh))];
    assert_eq!(legacy_sigop_count(&tx), 21);
    assert_eq!(p2sh_sigop_count(&tx, &spent), 3);
    // 21*4 + 3*4 + witness (1 + 3 + 1).
    assert_eq!(transaction_sigop_cost(&tx, &spent, VerifyFlags::MANDATORY), 84 + 12 + 5);
    // Without WITNESS the witness sigops do not count; without P2SH neither
    // do the redeem script's.
    assert_eq!(transaction_sigop_cost(&tx, &spent, VerifyFlags::P2SH), 84 + 12);
    assert_eq!(transaction_sigop_cost(&tx, &spent, VerifyFlags::NONE), 84);
}
