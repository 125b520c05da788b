//! Selection cases built from synthetic candidates: weight, sigops and fees
//! are set directly so each case reads as the rule it checks.

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, SignedAmount, Transaction, TxIn, TxOut, Txid, Witness,
};

use super::{select, Candidate, FeeRatePerKvb, Selection, SelectionOptions};

/// A transaction spending output 0 of each of `spends` (or a made-up
/// confirmed outpoint when empty), made unique by `tag`.
fn tx(tag: u32, spends: &[Txid]) -> Transaction {
    let confirmed = [Txid::from_byte_array([0xee; 32])];
    let spends = if spends.is_empty() { &confirmed[..] } else { spends };
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: spends
            .iter()
            .map(|txid| TxIn {
                previous_output: OutPoint { txid: *txid, vout: 0 },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::default(),
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::from_sat(u64::from(tag)),
            script_pubkey: ScriptBuf::from_bytes(tag.to_le_bytes().to_vec()),
        }],
    }
}

/// A candidate of `vsize` virtual bytes paying `fee`, spending `parents`.
fn candidate(tag: u32, fee: i64, vsize: u64, parents: &[&Candidate]) -> Candidate {
    let parent_ids: Vec<Txid> = parents.iter().map(|p| p.txid).collect();
    let tx = tx(tag, &parent_ids);
    Candidate {
        txid: tx.compute_txid(),
        wtxid: tx.compute_wtxid(),
        tx: Arc::new(tx),
        fee: Amount::from_sat(fee.max(0) as u64),
        modified_fee: SignedAmount::from_sat(fee),
        weight: vsize * 4,
        sigop_cost: 0,
        parents: parent_ids,
    }
}

fn options() -> SelectionOptions {
    SelectionOptions::new(200, 1_700_000_000)
}

fn txids(selection: &Selection) -> Vec<Txid> {
    selection.transactions.iter().map(|t| t.txid).collect()
}

#[test]
fn child_pays_for_parent_ahead_of_a_medium_transaction() {
    // Parent alone: 0.5 sat/vB, below the block minimum of 1 sat/vB.
    let parent = candidate(1, 50, 100, &[]);
    // Child: 100 sat/vB; with its parent 50.25 sat/vB.
    let child = candidate(2, 10_000, 100, &[&parent]);
    // Medium: 30 sat/vB.
    let medium = candidate(3, 3_000, 100, &[]);
    let all = vec![medium.clone(), child.clone(), parent.clone()];

    let selection = select(&all, &options());
    assert_eq!(txids(&selection), vec![parent.txid, child.txid, medium.txid]);
    assert_eq!(selection.transactions[1].depends, vec![1], "the child depends on the parent at position 1");
    assert!(selection.transactions[0].depends.is_empty());
    assert_eq!(selection.fees, Amount::from_sat(13_050));
    assert_eq!(selection.packages, 2);

    // Room for two transactions only: the pair wins, the medium one waits.
    let mut tight = options();
    tight.max_weight = tight.reserved_weight + 2 * 400 + 1;
    let selection = select(&all, &tight);
    assert_eq!(txids(&selection), vec![parent.txid, child.txid]);

    // Without the child, the parent stays out (below the minimum fee rate).
    let selection = select(&[parent.clone(), medium.clone()], &options());
    assert_eq!(txids(&selection), vec![medium.txid]);
}

#[test]
fn weight_limit_keeps_the_best_paying_within_core_accounting() {
    // 1,200 independent transactions of 1,000 vB (4,000 weight), fees rising with the tag.
    let all: Vec<Candidate> = (1..=1200).map(|t| candidate(t, 2_000 + i64::from(t), 1_000, &[])).collect();
    let selection = select(&all, &options());
    // Core's TestPackage: 8,000 + 4,000·k + 4,000 < 4,000,000 admits k up to 996, so 997 fit.
    assert_eq!(selection.transactions.len(), 997);
    assert_eq!(selection.block_weight, 8_000 + 997 * 4_000);
    assert!(selection.block_weight <= 4_000_000);
    let lowest_chosen = selection.transactions.iter().map(|t| t.fee).min().expect("some were chosen");
    assert_eq!(lowest_chosen, Amount::from_sat(2_000 + 1200 - 996), "the 997 best-paying are chosen");
    let fees: Amount = selection.transactions.iter().map(|t| t.fee).sum();
    assert_eq!(selection.fees, fees);
}

#[test]
fn sigop_limit_leaves_the_coinbase_reservation() {
    let all: Vec<Candidate> = (1..=20)
        .map(|t| {
            let mut c = candidate(t, 1_000_000 + i64::from(t), 250, &[]);
            c.sigop_cost = 8_000;
            c
        })
        .collect();
    let selection = select(&all, &options());
    // 400 reserved + 8,000·k + 8,000 < 80,000 admits k up to 8: nine transactions.
    assert_eq!(selection.transactions.len(), 9);
    assert_eq!(selection.block_sigop_cost, 400 + 9 * 8_000);
    // Highest fees first (equal sizes).
    let chosen: Vec<u64> = selection.transactions.iter().map(|t| t.fee.to_sat()).collect();
    assert_eq!(chosen, (12..=20).rev().map(|t| 1_000_000 + t).collect::<Vec<u64>>());
}

#[test]
fn parents_come_before_children_and_rates_descend() {
    // A diamond: a -> (b, c) -> d, all paying well; plus independent x and y.
    let a = candidate(1, 5_000, 100, &[]);
    let b = candidate(2, 9_000, 100, &[&a]);
    let c = candidate(3, 1_000, 100, &[&a]);
    let d = candidate(4, 20_000, 100, &[&b, &c]);
    let x = candidate(5, 4_000, 100, &[]);
    let y = candidate(6, 60_000, 100, &[]);
    let all = vec![d.clone(), c.clone(), b.clone(), a.clone(), x.clone(), y.clone()];
    let selection = select(&all, &options());
    let order = txids(&selection);
    let at = |t: &Candidate| order.iter().position(|o| *o == t.txid).expect("chosen");
    assert_eq!(order.len(), 6);
    assert_eq!(at(&y), 0, "the best rate comes first");
    assert!(at(&a) < at(&b) && at(&a) < at(&c) && at(&b) < at(&d) && at(&c) < at(&d));
    // d's package (a, b, c, d: 35,000 / 400) beats x (40 sat/vB).
    assert_eq!(at(&x), 5);
    let d_entry = &selection.transactions[at(&d)];
    let mut deps = d_entry.depends.clone();
    deps.sort_unstable();
    let mut expected = vec![at(&b) + 1, at(&c) + 1];
    expected.sort_unstable();
    assert_eq!(deps, expected);
}

#[test]
fn modified_fees_rank_but_base_fees_are_paid() {
    let low = candidate(1, 200, 100, &[]);
    let mut prioritised = low.clone();
    prioritised.modified_fee = SignedAmount::from_sat(1_000_000);
    let high = candidate(2, 50_000, 100, &[]);
    let selection = select(&[high.clone(), prioritised.clone()], &options());
    assert_eq!(txids(&selection), vec![prioritised.txid, high.txid]);
    assert_eq!(selection.transactions[0].fee, Amount::from_sat(200));
    assert_eq!(selection.fees, Amount::from_sat(50_200));

    // A negative delta takes a transaction below the minimum fee rate.
    let mut deprioritised = high.clone();
    deprioritised.modified_fee = SignedAmount::from_sat(-1);
    let selection = select(&[deprioritised, low.clone()], &options());
    assert_eq!(txids(&selection), vec![low.txid]);
}

#[test]
fn a_deep_chain_is_mined_in_order_when_its_tip_pays() {
    let mut chain: Vec<Candidate> = Vec::new();
    for t in 0..200u32 {
        // Every link pays 0 except the last, which pays for all of them.
        let fee = if t == 199 { 1_000_000 } else { 0 };
        let parents: Vec<&Candidate> = chain.last().into_iter().collect();
        let c = candidate(t + 1, fee, 100, &parents);
        chain.push(c);
    }
    let mut shuffled = chain.clone();
    shuffled.reverse();
    let selection = select(&shuffled, &options());
    assert_eq!(txids(&selection), chain.iter().map(|c| c.txid).collect::<Vec<_>>());
    for (k, t) in selection.transactions.iter().enumerate() {
        let expected: Vec<usize> = if k == 0 { vec![] } else { vec![k] };
        assert_eq!(t.depends, expected, "link {k}");
    }
    assert_eq!(selection.packages, 1);
}

#[test]
fn a_chosen_parent_reranks_its_children() {
    // p pays a lot; its child k pays 20 sat/vB alone, but ranks by its own
    // rate once p is in. x pays 30 sat/vB and must come before k.
    let p = candidate(1, 100_000, 100, &[]);
    let k = candidate(2, 2_000, 100, &[&p]);
    let x = candidate(3, 3_000, 100, &[]);
    let selection = select(&[k.clone(), x.clone(), p.clone()], &options());
    assert_eq!(txids(&selection), vec![p.txid, x.txid, k.txid]);
}

#[test]
fn minimum_fee_rate_is_configurable() {
    let cheap = candidate(1, 10, 100, &[]);
    assert!(select(std::slice::from_ref(&cheap), &options()).transactions.is_empty());
    let mut free = options();
    free.min_fee_rate = FeeRatePerKvb(0);
    assert_eq!(txids(&select(std::slice::from_ref(&cheap), &free)), vec![cheap.txid]);
    // Exactly at the rate is enough (Core compares with `<`).
    let exact = candidate(2, 100, 100, &[]);
    assert_eq!(txids(&select(std::slice::from_ref(&exact), &options())), vec![exact.txid]);
}

#[test]
fn inconsistent_snapshots_leave_out_the_broken_part() {
    let orphan_parent = candidate(1, 5_000, 100, &[]);
    let orphan = candidate(2, 5_000, 100, &[&orphan_parent]);
    let orphan_child = candidate(3, 5_000, 100, &[&orphan]);
    let fine = candidate(4, 5_000, 100, &[]);
    let selection = select(&[orphan.clone(), orphan_child, fine.clone(), fine.clone()], &options());
    assert_eq!(txids(&selection), vec![fine.txid]);
    assert_eq!(selection.inconsistent, 3);
}

#[test]
fn non_final_transactions_are_left_out() {
    let mut locked = candidate(1, 50_000, 100, &[]);
    let mut tx = (*locked.tx).clone();
    tx.lock_time = absolute::LockTime::from_height(500).expect("a valid height");
    tx.input[0].sequence = Sequence::ENABLE_LOCKTIME_NO_RBF;
    locked.txid = tx.compute_txid();
    locked.tx = Arc::new(tx);
    let child = candidate(2, 90_000, 100, &[&locked]);
    let fine = candidate(3, 1_000, 100, &[]);
    let selection = select(&[locked, child, fine.clone()], &options());
    assert_eq!(txids(&selection), vec![fine.txid]);
}

#[test]
fn empty_input_gives_an_empty_template() {
    let selection = select(&[], &options());
    assert!(selection.transactions.is_empty());
    assert_eq!(selection.fees, Amount::ZERO);
    assert_eq!(selection.block_weight, 8_000);
    assert_eq!(selection.block_sigop_cost, 400);
}
