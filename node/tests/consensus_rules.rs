//! One block per consensus rule, each breaking exactly that rule, each
//! refused with Bitcoin Core's reject reason.

mod common;

use bitcoin::hashes::Hash;
use bitcoin::{absolute, block, Amount, OutPoint, ScriptBuf, Sequence, TxMerkleNode, Witness};
use common::*;

/// A chain with 101 blocks, so that the first coinbase is mature; returns
/// the chain and the first block's coinbase outpoint.
fn mature() -> (TestChain, OutPoint) {
    let mut t = TestChain::regtest();
    let blocks = t.mine(101);
    let coinbase = coinbase_outpoint(&blocks[0]);
    (t, coinbase)
}

const COIN: u64 = 100_000_000;

#[test]
fn header_rules() {
    let mut t = TestChain::regtest();
    t.mine(11);

    // high-hash: a nonce whose hash misses the target.
    let mut b = t.build(vec![], |_| {});
    while b.header.target().is_met_by(b.block_hash()) {
        b.header.nonce += 1;
    }
    assert_eq!(t.reject_reason(&b), "high-hash");

    // bad-diffbits: easier or harder bits than the rule says (still solved).
    let b = t.build(vec![], |b| b.header.bits = bitcoin::CompactTarget::from_consensus(0x207ffffe));
    assert_eq!(t.reject_reason(&b), "bad-diffbits");

    // time-too-old: at the median time past.
    let mtp = t.chain.tip_median_time_past();
    let b = t.build(vec![], |b| b.header.time = mtp);
    assert_eq!(t.reject_reason(&b), "time-too-old");

    // time-too-new: more than two hours ahead of the clock.
    let b = t.build(vec![], |b| b.header.time = (NOW + 2 * 3600 + 1) as u32);
    assert_eq!(t.reject_reason(&b), "time-too-new");
    // ...while exactly two hours is fine.
    let b = t.build(vec![], |b| b.header.time = (NOW + 2 * 3600) as u32);
    assert!(t.submit(&b).is_ok());

    // bad-version: version 1 after BIP 34 (regtest: height 1).
    let b = t.build(vec![], |b| b.header.version = block::Version::ONE);
    assert_eq!(t.reject_reason(&b), "bad-version(0x00000001)");
}

#[test]
fn structure_rules() {
    let (mut t, coin) = mature();
    let tx = spend(&[coin], &[(Amount::from_sat(49 * COIN), op_true())]);

    let b = t.build(vec![tx.clone()], |b| b.header.merkle_root = TxMerkleNode::all_zeros());
    assert_eq!(t.reject_reason(&b), "bad-txnmrklroot");

    // CVE-2012-2459: [cb, tx, tx2, tx2] has the root of [cb, tx, tx2].
    let tx2 = spend(&[OutPoint { txid: tx.compute_txid(), vout: 0 }], &[(Amount::from_sat(48 * COIN), op_true())]);
    let b = t.build(vec![tx.clone(), tx2.clone()], |b| {
        let last = b.txdata.last().unwrap().clone();
        b.txdata.push(last);
    });
    assert_eq!(t.reject_reason(&b), "bad-txns-duplicate");

    let b = t.build(vec![tx.clone()], |b| {
        b.txdata.swap(0, 1);
        fix(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-cb-missing");

    let b = t.build(vec![], |b| {
        let mut second = b.txdata[0].clone();
        second.input[0].script_sig = ScriptBuf::from_bytes(vec![0x02, 0x01, 0x01, 0x99]);
        b.txdata.push(second);
        fix(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-cb-multiple");

    let b = t.build(vec![], |b| {
        b.txdata[0].input[0].script_sig = ScriptBuf::from_bytes(vec![0x02, 0x05, 0x05, 0x00]);
        fix(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-cb-height");

    let b = t.build(vec![], |b| {
        b.txdata[0].output[0].value += Amount::from_sat(1);
        fix(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-cb-amount");

    // Subsidy plus the fee is fine; one satoshi more is not.
    let fee_tx = spend(&[coin], &[(Amount::from_sat(50 * COIN - 1000), op_true())]);
    let b = t.build(vec![fee_tx.clone()], |b| {
        b.txdata[0].output[0].value += Amount::from_sat(1001);
        fix(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-cb-amount");
    let b = t.build_with_fees(vec![fee_tx], Amount::from_sat(1000));
    assert!(t.submit(&b).is_ok());
}

#[test]
fn weight_and_sigops() {
    let (mut t, coin) = mature();
    // 20,001 legacy sigops in outputs: 80,004 sigop cost.
    let many_checksigs = ScriptBuf::from_bytes(vec![0xac; 10_000]);
    let sigops_tx = spend(
        &[coin],
        &[
            (Amount::from_sat(COIN), many_checksigs.clone()),
            (Amount::from_sat(COIN), many_checksigs),
            (Amount::from_sat(COIN), ScriptBuf::from_bytes(vec![0xac])),
        ],
    );
    let b = t.build(vec![sigops_tx], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-blk-sigops");

    // Witness data of 4 MB: the stripped size is tiny, the weight is not.
    let mut heavy = spend(&[coin], &[(Amount::from_sat(COIN), op_true())]);
    heavy.input[0].witness = Witness::from_slice(&[vec![0u8; 4_000_000]]);
    let b = t.build(vec![heavy], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-blk-weight");
}

#[test]
fn witness_commitment_rules() {
    let (mut t, coin) = mature();
    let mut witness_tx = spend(&[coin], &[(Amount::from_sat(COIN), op_true())]);
    witness_tx.input[0].witness = Witness::from_slice(&[vec![1u8]]);

    let b = t.build(vec![witness_tx.clone()], |b| {
        let n = b.txdata[0].output.len() - 1;
        let mut script = b.txdata[0].output[n].script_pubkey.to_bytes();
        script[10] ^= 1;
        b.txdata[0].output[n].script_pubkey = ScriptBuf::from_bytes(script);
        mining_root(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-witness-merkle-match");

    let b = t.build(vec![witness_tx.clone()], |b| {
        b.txdata[0].output.pop();
        b.txdata[0].input[0].witness = Witness::default();
        mining_root(b);
    });
    assert_eq!(t.reject_reason(&b), "unexpected-witness");

    let b = t.build(vec![witness_tx], |b| {
        b.txdata[0].input[0].witness = Witness::from_slice(&[vec![0u8; 31]]);
        mining_root(b);
    });
    assert_eq!(t.reject_reason(&b), "bad-witness-nonce-size");
}

fn mining_root(b: &mut bitcoin::Block) {
    satpool_node::mining::set_merkle_root(b);
}

#[test]
fn transaction_rules() {
    let (mut t, coin) = mature();
    let young = coinbase_outpoint(&t.chain.block(&t.chain.tip().hash).unwrap().unwrap());

    let missing = spend(&[OutPoint { txid: txid_zero(), vout: 7 }], &[(Amount::from_sat(1), op_true())]);
    let b = t.build(vec![missing], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-inputs-missingorspent");

    let premature = spend(&[young], &[(Amount::from_sat(1), op_true())]);
    let b = t.build(vec![premature], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-premature-spend-of-coinbase");

    let negative = spend(&[coin], &[(Amount::from_sat(u64::MAX), op_true())]);
    let b = t.build(vec![negative], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-vout-negative");

    let too_large = spend(&[coin], &[(Amount::MAX_MONEY + Amount::from_sat(1), op_true())]);
    let b = t.build(vec![too_large], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-vout-toolarge");

    let below = spend(&[coin], &[(Amount::from_sat(50 * COIN + 1), op_true())]);
    let b = t.build(vec![below], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-in-belowout");

    // Absolute lock time: a height not yet reached, with a non-final sequence.
    let mut locked = spend(&[coin], &[(Amount::from_sat(COIN), op_true())]);
    locked.lock_time = absolute::LockTime::from_height(t.chain.tip().height + 2).unwrap();
    locked.input[0].sequence = Sequence::ENABLE_LOCKTIME_NO_RBF;
    let b = t.build(vec![locked.clone()], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-nonfinal");
    // With every sequence final the lock time does not apply.
    locked.input[0].sequence = Sequence::MAX;
    let b = t.build(vec![locked], |_| {});
    assert!(t.submit(&b).is_ok());
}

#[test]
fn relative_lock_time_bip68() {
    let (mut t, _) = mature();
    // The coinbase of block 2 is mature at height 102 (the next block).
    let coin = coinbase_outpoint(&t.chain.block(&t.chain.index().active_hash(2).unwrap()).unwrap().unwrap());
    let mut tx = spend(&[coin], &[(Amount::from_sat(COIN), op_true())]);
    // 200 blocks after the coin's height: far from met.
    tx.input[0].sequence = Sequence::from_height(200);
    let b = t.build(vec![tx.clone()], |_| {});
    assert_eq!(t.reject_reason(&b), "bad-txns-nonfinal");
    // 100 blocks: the coin (height 2) is 100 deep in block 102: met.
    tx.input[0].sequence = Sequence::from_height(100);
    let b = t.build(vec![tx], |_| {});
    assert!(t.submit(&b).is_ok(), "a met relative lock time is valid");
}

#[test]
fn script_failure() {
    let (mut t, coin) = mature();
    // An output locked by OP_FALSE, then a spend of it.
    let fund = spend(&[coin], &[(Amount::from_sat(49 * COIN), ScriptBuf::from_bytes(vec![0x00]))]);
    let b = t.build_with_fees(vec![fund.clone()], Amount::from_sat(COIN));
    t.submit(&b).expect("funding block");
    let bad = spend(&[OutPoint { txid: fund.compute_txid(), vout: 0 }], &[(Amount::from_sat(COIN), op_true())]);
    let b = t.build(vec![bad], |_| {});
    assert_eq!(
        t.reject_reason(&b),
        "block-script-verify-flag-failed (Script evaluated without error but finished with a false/empty top stack element)"
    );
}

#[test]
fn invalid_block_marks_descendants_and_is_remembered() {
    let (mut t, _) = mature();
    let tip_before = t.chain.tip().hash;
    let bad = t.build(vec![], |b| {
        b.txdata[0].output[0].value += Amount::from_sat(1);
        fix(b);
    });
    assert_eq!(t.reject_reason(&bad), "bad-cb-amount");
    assert_eq!(t.chain.tip().hash, tip_before);
    // The same block again: known invalid.
    assert_eq!(t.reject_reason(&bad), "duplicate-invalid");
}
