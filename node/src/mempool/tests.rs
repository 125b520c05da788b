//! The pool against an in-memory chain: every reject reason of acceptance,
//! the package limits, replacement, eviction, expiry and prioritisation.
//! Spends are of P2WSH `OP_TRUE` outputs, valid without signatures (the
//! integration tests in `tests/mempool.rs` use real signatures).

use std::collections::HashMap;
use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};

use super::*;

const NOW: i64 = 1_800_000_000;
const TIP: u32 = 200;
const COIN_VALUE: u64 = 100_000;

struct MemChain {
    coins: HashMap<OutPoint, Coin>,
}

impl ChainView for MemChain {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ChainError> {
        Ok(self.coins.get(outpoint).cloned())
    }
    fn tip_height(&self) -> u32 {
        TIP
    }
    fn tip_median_time_past(&self) -> u32 {
        1_700_000_000
    }
    fn median_time_past_at(&self, height: u32) -> u32 {
        1_700_000_000 - (TIP - height.min(TIP)) * 600
    }
    fn coinbase_maturity(&self) -> u32 {
        100
    }
}

fn witness_script(script: &[u8]) -> ScriptBuf {
    ScriptBuf::new_p2wsh(&Script::from_bytes(script).wscript_hash())
}

fn op_true() -> ScriptBuf {
    witness_script(&[0x51])
}

/// A chain whose UTXO set holds `n` P2WSH `OP_TRUE` coins at height 1 (and
/// one coinbase coin at the tip, and one bare `OP_TRUE` coin).
fn chain(n: u32) -> (MemChain, Vec<OutPoint>) {
    let mut coins = HashMap::new();
    let mut outpoints = Vec::new();
    for i in 0..n {
        let op = OutPoint { txid: bitcoin::Txid::from_byte_array([i as u8 + 1; 32]), vout: i };
        coins.insert(
            op,
            Coin {
                output: TxOut { value: Amount::from_sat(COIN_VALUE), script_pubkey: op_true() },
                height: 1,
                is_coinbase: false,
            },
        );
        outpoints.push(op);
    }
    (MemChain { coins }, outpoints)
}

fn special_coin(chain: &mut MemChain, tag: u8, script: ScriptBuf, height: u32, is_coinbase: bool) -> OutPoint {
    let op = OutPoint { txid: bitcoin::Txid::from_byte_array([tag; 32]), vout: 0 };
    chain.coins.insert(
        op,
        Coin { output: TxOut { value: Amount::from_sat(COIN_VALUE), script_pubkey: script }, height, is_coinbase },
    );
    op
}

fn input(previous_output: OutPoint, script: &[u8]) -> TxIn {
    let mut witness = Witness::default();
    witness.push(script);
    TxIn { previous_output, script_sig: ScriptBuf::new(), sequence: Sequence::MAX, witness }
}

/// Spends `inputs` (P2WSH `OP_TRUE`) into outputs of the given values.
fn spend(inputs: &[OutPoint], outputs: &[u64]) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs.iter().map(|op| input(*op, &[0x51])).collect(),
        output: outputs.iter().map(|v| TxOut { value: Amount::from_sat(*v), script_pubkey: op_true() }).collect(),
    }
}

fn out(tx: &Transaction, vout: u32) -> OutPoint {
    OutPoint { txid: tx.compute_txid(), vout }
}

fn accept(pool: &mut Mempool, chain: &MemChain, tx: &Transaction) -> Result<Accepted, MempoolReject> {
    pool.accept(Arc::new(tx.clone()), chain, NOW, AcceptOptions::default())
}

fn reason(result: Result<Accepted, MempoolReject>) -> String {
    match result {
        Ok(a) => panic!("accepted {}", a.txid),
        Err(e) => e.as_invalid().map(ToString::to_string).unwrap_or_else(|| panic!("not a rejection: {e}")),
    }
}

#[test]
fn every_reject_reason() {
    let (mut c, coins) = chain(4);
    let immature = special_coin(&mut c, 0xc0, op_true(), TIP - 50, true);
    let bare = special_coin(&mut c, 0xb0, ScriptBuf::from_bytes(vec![0x51]), 1, false);
    let policy_only = special_coin(&mut c, 0xb1, witness_script(&[0xb3, 0x51]), 1, false);
    let wrong = special_coin(&mut c, 0xb2, witness_script(&[0x52]), 1, false);
    let fee = COIN_VALUE - 1000;

    let mut coinbase = spend(&[OutPoint::null()], &[fee]);
    coinbase.input[0].script_sig = ScriptBuf::from_bytes(vec![1, 1]);
    coinbase.input[0].witness = Witness::default();
    let mut version = spend(&[coins[0]], &[fee]);
    version.version = transaction::Version(4);
    let mut small = spend(&[coins[0]], &[]);
    small.output.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::from_bytes(vec![0x6a]) });
    let mut non_final = spend(&[coins[0]], &[fee]);
    non_final.lock_time = absolute::LockTime::from_height(TIP + 2).unwrap();
    non_final.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
    let mut bip68 = spend(&[coins[0]], &[fee]);
    bip68.input[0].sequence = Sequence::from_height(500);
    let mut missing = spend(&[coins[0]], &[fee]);
    missing.input[0].previous_output.vout = 77;
    let mut policy_script = spend(&[policy_only], &[fee]);
    policy_script.input[0].witness = Witness::from_slice(&[vec![0xb3, 0x51]]);
    let mut bad_script = spend(&[wrong], &[fee]);
    bad_script.input[0].witness = Witness::from_slice(&[vec![0x51]]);
    let mut bare_spend = spend(&[bare], &[fee]);
    bare_spend.input[0].witness = Witness::default();

    let cases: Vec<(&str, Transaction, &str)> = vec![
        ("no inputs", Transaction { input: vec![], ..spend(&[], &[fee]) }, "bad-txns-vin-empty"),
        ("coinbase", coinbase, "coinbase"),
        ("version", version, "version"),
        ("dust", spend(&[coins[0]], &[100]), "dust"),
        ("tx-size-small", small, "tx-size-small"),
        ("non-final", non_final, "non-final"),
        ("missing inputs", missing, "bad-txns-inputs-missingorspent"),
        ("bip68", bip68, "non-BIP68-final"),
        (
            "immature coinbase",
            spend(&[immature], &[fee]),
            "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 51",
        ),
        (
            "in below out",
            spend(&[coins[0]], &[COIN_VALUE + 1]),
            "bad-txns-in-belowout, value in (0.001) < value out (0.00100001)",
        ),
        ("nonstandard input", bare_spend, "bad-txns-nonstandard-inputs"),
        ("min relay fee", spend(&[coins[0]], &[COIN_VALUE]), "min relay fee not met, 0 < 10"),
        (
            "policy script failure",
            policy_script,
            "mempool-script-verify-flag-failed (NOPx reserved for soft-fork upgrades)",
        ),
        ("consensus script failure", bad_script, "mandatory-script-verify-flag-failed (Witness program hash mismatch)"),
    ];
    let mut pool = Mempool::default();
    for (name, tx, expected) in cases {
        assert_eq!(reason(accept(&mut pool, &c, &tx)), expected, "{name}");
    }
    assert!(pool.is_empty());

    let good = spend(&[coins[0]], &[fee]);
    accept(&mut pool, &c, &good).expect("valid");
    assert_eq!(reason(accept(&mut pool, &c, &good)), "txn-already-in-mempool");
    let mut same_txid = good.clone();
    same_txid.input[0].witness = Witness::from_slice(&[vec![0x51], vec![]]);
    assert_eq!(reason(accept(&mut pool, &c, &same_txid)), "txn-same-nonwitness-data-in-mempool");

    // Outputs already in the UTXO set: a confirmed transaction sent again.
    let confirmed = spend(&[coins[1]], &[fee]);
    c.coins.remove(&coins[1]);
    c.coins.insert(out(&confirmed, 0), Coin { output: confirmed.output[0].clone(), height: 5, is_coinbase: false });
    assert_eq!(reason(accept(&mut pool, &c, &confirmed)), "txn-already-known");
    let submitted = pool.submit(confirmed, &c, NOW).unwrap_err();
    assert_eq!(submitted.as_invalid().map(|r| r.class), Some(RejectClass::AlreadyInChain));
}

#[test]
fn chains_of_children_and_the_ancestor_limit() {
    let (c, coins) = chain(1);
    let mut pool = Mempool::default();
    let mut prev = coins[0];
    let mut value = COIN_VALUE;
    let mut txids = Vec::new();
    for _ in 0..25 {
        value -= 200;
        let tx = spend(&[prev], &[value]);
        accept(&mut pool, &c, &tx).expect("within the limits");
        prev = out(&tx, 0);
        txids.push(tx.compute_txid());
    }
    let last = txids[24];
    assert_eq!(pool.ancestor_stats(&last).count, 25);
    assert_eq!(pool.descendant_stats(&txids[0]).count, 25);
    assert_eq!(pool.get(&last).unwrap().parents().collect::<Vec<_>>(), vec![&txids[23]]);
    let too_long = spend(&[prev], &[value - 200]);
    let r = reason(accept(&mut pool, &c, &too_long));
    assert!(r.starts_with("too-long-mempool-chain, "), "{r}");
    assert!(r.contains("[limit: 25]"), "{r}");
    assert_eq!(pool.len(), 25);
}

#[test]
fn descendant_size_limit() {
    let (c, coins) = chain(1);
    let config = MempoolConfig { descendant_size_vbytes: 300, ..MempoolConfig::default() };
    let mut pool = Mempool::new(config);
    let parent = spend(&[coins[0]], &[40_000, 40_000, 10_000]);
    accept(&mut pool, &c, &parent).unwrap();
    accept(&mut pool, &c, &spend(&[out(&parent, 0)], &[39_000])).unwrap();
    let r = reason(accept(&mut pool, &c, &spend(&[out(&parent, 1)], &[39_000])));
    assert_eq!(
        r,
        format!("too-long-mempool-chain, exceeds descendant size limit for tx {} [limit: 300]", parent.compute_txid())
    );
}

#[test]
fn replacement_rules() {
    let (c, coins) = chain(3);
    let mut pool = Mempool::default();
    let original = spend(&[coins[0]], &[COIN_VALUE - 1000]);
    accept(&mut pool, &c, &original).unwrap();
    let child = spend(&[out(&original, 0)], &[COIN_VALUE - 2000]);
    accept(&mut pool, &c, &child).unwrap();

    // Lower fee rate than the original.
    let cheaper = spend(&[coins[0]], &[COIN_VALUE - 900]);
    let r = reason(accept(&mut pool, &c, &cheaper));
    assert!(r.starts_with("insufficient fee, rejecting replacement") && r.contains("new feerate"), "{r}");
    // Higher rate than the original but less than original plus child.
    let not_enough = spend(&[coins[0]], &[COIN_VALUE - 1500]);
    let r = reason(accept(&mut pool, &c, &not_enough));
    assert!(r.contains("less fees than conflicting txs; 0.000015 < 0.00002"), "{r}");
    // Pays exactly the originals' fees: no more for its own relay.
    let no_relay = spend(&[coins[0]], &[COIN_VALUE - 2000]);
    let r = reason(accept(&mut pool, &c, &no_relay));
    assert!(r.contains("not enough additional fees to relay; 0.00 < 0.0000001"), "{r}");
    // New unconfirmed input.
    let other = spend(&[coins[1]], &[COIN_VALUE - 1000]);
    accept(&mut pool, &c, &other).unwrap();
    let adds = spend(&[coins[0], out(&other, 0)], &[COIN_VALUE]);
    let r = reason(accept(&mut pool, &c, &adds));
    assert!(
        r.starts_with("replacement-adds-unconfirmed, replacement ") && r.ends_with("adds unconfirmed input, idx 1"),
        "{r}"
    );
    // Spending the transaction it replaces.
    let self_spend = spend(&[coins[0], out(&original, 0)], &[COIN_VALUE]);
    assert!(reason(accept(&mut pool, &c, &self_spend)).starts_with("bad-txns-spends-conflicting-tx"));

    let before = pool.sequence();
    let better = spend(&[coins[0]], &[COIN_VALUE - 5000]);
    let accepted = accept(&mut pool, &c, &better).expect("a valid replacement");
    let replaced: Vec<_> = accepted.replaced.iter().map(|t| t.compute_txid()).collect();
    assert_eq!(replaced.len(), 2);
    assert!(replaced.contains(&original.compute_txid()) && replaced.contains(&child.compute_txid()));
    assert!(!pool.contains(&original.compute_txid()) && !pool.contains(&child.compute_txid()));
    assert!(pool.sequence() > before);

    // Without full RBF, a non-signalling transaction cannot be replaced.
    let mut strict = Mempool::new(MempoolConfig { full_rbf: false, ..MempoolConfig::default() });
    accept(&mut strict, &c, &spend(&[coins[2]], &[COIN_VALUE - 1000])).unwrap();
    assert_eq!(reason(accept(&mut strict, &c, &spend(&[coins[2]], &[COIN_VALUE - 9000]))), "txn-mempool-conflict");
}

#[test]
fn too_many_replacements() {
    let (c, coins) = chain(5);
    let mut pool = Mempool::default();
    for coin in &coins {
        let mut prev = *coin;
        let mut value = COIN_VALUE;
        for _ in 0..21 {
            value -= 150;
            let tx = spend(&[prev], &[value]);
            accept(&mut pool, &c, &tx).unwrap();
            prev = out(&tx, 0);
        }
    }
    let replacement = spend(&coins, &[COIN_VALUE]);
    let r = reason(accept(&mut pool, &c, &replacement));
    assert!(r.starts_with("too many potential replacements, ") && r.contains("(105 > 100)"), "{r}");
}

#[test]
fn eviction_raises_the_minimum_fee() {
    let (c, coins) = chain(4);
    let one = entry_usage(&spend(&[coins[0]], &[1]));
    let config = MempoolConfig { max_size_bytes: one * 2 + one / 2, ..MempoolConfig::default() };
    let mut pool = Mempool::new(config);
    let cheap = spend(&[coins[0]], &[COIN_VALUE - 200]);
    let mid = spend(&[coins[1]], &[COIN_VALUE - 2000]);
    accept(&mut pool, &c, &cheap).unwrap();
    accept(&mut pool, &c, &mid).unwrap();
    let rich = spend(&[coins[2]], &[COIN_VALUE - 5000]);
    accept(&mut pool, &c, &rich).unwrap();
    assert!(!pool.contains(&cheap.compute_txid()), "the lowest fee rate goes first");
    assert_eq!(pool.len(), 2);
    let min = pool.min_fee(NOW);
    assert!(min > FeeRate::from_sat_per_kvb(1000), "{min}");
    let r = reason(accept(&mut pool, &c, &spend(&[coins[3]], &[COIN_VALUE - 150])));
    assert!(r.starts_with("mempool min fee not met, "), "{r}");
    // A transaction that is itself the cheapest is refused as the pool is full.
    let mut pool = Mempool::new(MempoolConfig { max_size_bytes: one / 2, ..MempoolConfig::default() });
    assert_eq!(reason(accept(&mut pool, &c, &spend(&[coins[3]], &[COIN_VALUE - 300]))), "mempool full");
}

#[test]
fn expiry_and_prioritisation() {
    let (c, coins) = chain(2);
    let mut pool = Mempool::default();
    let free = spend(&[coins[0]], &[COIN_VALUE]);
    assert!(reason(accept(&mut pool, &c, &free)).starts_with("min relay fee not met"));
    let before = pool.sequence();
    pool.prioritise(free.compute_txid(), 1000);
    assert!(pool.sequence() > before);
    let accepted = accept(&mut pool, &c, &free).expect("prioritised");
    assert_eq!(accepted.modified_fee, 1000);
    assert_eq!(pool.get(&free.compute_txid()).unwrap().modified_fee(), 1000);

    let old = spend(&[coins[1]], &[COIN_VALUE - 1000]);
    pool.accept(
        Arc::new(old.clone()),
        &c,
        NOW,
        AcceptOptions { time: Some(NOW - 300 * 3600), ..AcceptOptions::default() },
    )
    .unwrap();
    assert!(pool.contains(&old.compute_txid()));
    pool.limit_size(NOW + 40 * 3600);
    assert!(!pool.contains(&old.compute_txid()), "older than 336 hours");
    assert!(pool.contains(&free.compute_txid()));
}

#[test]
fn blocks_remove_mined_and_conflicting() {
    let (c, coins) = chain(2);
    let mut pool = Mempool::default();
    let a = spend(&[coins[0]], &[COIN_VALUE - 1000]);
    let a_child = spend(&[out(&a, 0)], &[COIN_VALUE - 2000]);
    let b = spend(&[coins[1]], &[COIN_VALUE - 1000]);
    let b_child = spend(&[out(&b, 0)], &[COIN_VALUE - 2000]);
    for tx in [&a, &a_child, &b, &b_child] {
        accept(&mut pool, &c, tx).unwrap();
    }
    // The block mines `a` and a double spend of `b`'s input.
    let b_conflict = spend(&[coins[1]], &[COIN_VALUE - 3000]);
    pool.remove_for_block(&[a.clone(), b_conflict], NOW);
    assert!(!pool.contains(&a.compute_txid()));
    assert!(pool.contains(&a_child.compute_txid()), "children of mined transactions stay");
    assert_eq!(pool.get(&a_child.compute_txid()).unwrap().parents().count(), 0);
    assert!(!pool.contains(&b.compute_txid()) && !pool.contains(&b_child.compute_txid()));
    assert_eq!(pool.len(), 1);
}

#[test]
fn packages_are_tested_without_being_added() {
    let (c, coins) = chain(1);
    let mut pool = Mempool::default();
    let parent = spend(&[coins[0]], &[COIN_VALUE - 1000]);
    let child = spend(&[out(&parent, 0)], &[COIN_VALUE - 2000]);
    let results = pool.test_accept(&[parent.clone(), child.clone()], &c, NOW).unwrap();
    assert!(results.iter().all(|r| matches!(r, Some(Ok(_)))));
    assert!(pool.is_empty());
    assert_eq!(pool.sequence(), 0);
    let unsorted = pool.test_accept(&[child.clone(), parent.clone()], &c, NOW).unwrap_err();
    assert_eq!(unsorted.reason, "package-not-sorted");
    let bad_child = spend(&[out(&parent, 0)], &[COIN_VALUE]);
    let results = pool.test_accept(&[bad_child, parent.clone(), child], &c, NOW);
    assert_eq!(results.unwrap_err().reason, "package-not-sorted");
    let lone_child = spend(&[out(&parent, 0)], &[COIN_VALUE - 2000]);
    let results = pool.test_accept(&[lone_child], &c, NOW).unwrap();
    assert_eq!(results[0].as_ref().unwrap().as_ref().unwrap_err().reason(), Some("bad-txns-inputs-missingorspent"));
}
