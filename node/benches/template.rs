//! `getblocktemplate` latency without the transport: choosing transactions
//! from a mempool of synthetic candidates (Core's package selection) and
//! producing the template's JSON text, as the RPC method does after taking
//! its snapshot.
//!
//! Run with `cargo bench -p satpool-node --bench template`. Knobs, from the
//! environment:
//!
//! - `SATPOOL_BENCH_CANDIDATES`: mempool transactions (default 5000);
//! - `SATPOOL_BENCH_ROUNDS`: timed templates (default 200).
//!
//! The candidates are synthetic: P2WPKH-shaped transactions (one input with
//! a two-item witness, two outputs) with made-up fees; about half are
//! independent, a third form chains of up to 25 (the mempool's ancestor
//! limit), the rest child-pays-for-parent pairs. Nothing is signed or
//! validated: selection and encoding do not look at scripts. At 5,000 such
//! transactions (about 2.9 million weight units) the whole mempool fits in
//! one block, the slowest case for the encoding.
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs a small
//! smoke version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, SignedAmount, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use satpool_node::rpc::mining::{template_json, Template};
use satpool_node::template::{select, Candidate, SelectionOptions};

/// A P2WPKH-shaped transaction spending `spends` (a made-up confirmed coin
/// when `None`), unique by `n`.
fn transaction(n: u64, spends: Option<Txid>) -> Transaction {
    let previous_output = match spends {
        Some(txid) => OutPoint { txid, vout: 0 },
        None => OutPoint {
            txid: Txid::from_byte_array(bitcoin::hashes::sha256d::Hash::hash(&n.to_le_bytes()).to_byte_array()),
            vout: 1,
        },
    };
    let mut witness = Witness::new();
    witness.push([0x30u8; 71]);
    witness.push([0x02u8; 33]);
    let mut program = [0u8; 20];
    program[..8].copy_from_slice(&n.to_le_bytes());
    let script = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(program));
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn { previous_output, script_sig: ScriptBuf::new(), sequence: Sequence::MAX, witness }],
        output: vec![
            TxOut { value: Amount::from_sat(100_000 + n), script_pubkey: script.clone() },
            TxOut { value: Amount::from_sat(50_000), script_pubkey: script },
        ],
    }
}

/// `count` candidates: independent ones, chains, and CPFP pairs, with fees
/// from a fixed pseudo-random sequence.
fn candidates(count: usize) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::with_capacity(count);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next_fee = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        200 + state % 20_000
    };
    let mut n = 0u64;
    while out.len() < count {
        let kind = n % 6;
        let links = match kind {
            0..=2 => 1,
            3 | 4 => 2 + (n as usize % 24),
            _ => 2,
        };
        let mut parent: Option<Txid> = None;
        for link in 0..links {
            if out.len() == count {
                break;
            }
            let tx = transaction(n * 100 + link as u64, parent);
            let fee = if kind == 5 && link == 0 { 100 } else { next_fee() };
            let weight = tx.weight().to_wu();
            let candidate = Candidate {
                txid: tx.compute_txid(),
                wtxid: tx.compute_wtxid(),
                tx: Arc::new(tx),
                fee: Amount::from_sat(fee),
                modified_fee: SignedAmount::from_sat(fee as i64),
                weight,
                sigop_cost: 1,
                parents: parent.into_iter().collect(),
            };
            parent = Some(candidate.txid);
            out.push(candidate);
        }
        n += 1;
    }
    out
}

/// One template: selection, then the JSON text the server would send.
fn one_template(candidates: &[Candidate]) -> (usize, usize) {
    let selection = select(candidates, &SelectionOptions::new(1_000, 1_700_000_000));
    let template = Template {
        previous_block_hash: BlockHash::all_zeros(),
        height: 1_000,
        version: 0x2000_0000,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        min_time: 1_700_000_001,
        cur_time: 1_700_000_100,
        coinbase_value: Amount::from_sat(5_000_000_000) + selection.fees,
        witness_commitment: Some(satpool_node::mining::witness_commitment_for(
            selection.transactions.iter().map(|t| t.wtxid),
        )),
        pre_segwit: false,
        longpollid: format!("{}0", BlockHash::all_zeros()),
        selection,
    };
    let text = serde_json::to_string(&template_json(&template)).expect("JSON values serialise");
    (template.selection.transactions.len(), text.len())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let number = |name: &str, default: usize| match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|e| panic!("{name}={v:?} is not a count: {e}")),
        Err(_) => default,
    };
    let count = number("SATPOOL_BENCH_CANDIDATES", if smoke { 500 } else { 5_000 });
    let rounds = number("SATPOOL_BENCH_ROUNDS", if smoke { 3 } else { 200 });
    let pool = candidates(count);
    let offered: u64 = pool.iter().map(|c| c.weight).sum();

    let (chosen, bytes) = one_template(&pool); // warm-up
    let mut times: Vec<Duration> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(one_template(std::hint::black_box(&pool)));
        times.push(started.elapsed());
    }
    let mut selection_times: Vec<Duration> = Vec::with_capacity(rounds);
    let options = SelectionOptions::new(1_000, 1_700_000_000);
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(select(std::hint::black_box(&pool), &options));
        selection_times.push(started.elapsed());
    }
    times.sort_unstable();
    selection_times.sort_unstable();
    let quantile = |times: &[Duration], q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let at = |q: f64| quantile(&times, q);
    println!(
        "template bench{}: {count} synthetic candidates ({offered} WU offered), {chosen} chosen, {bytes} bytes of JSON",
        if smoke { " (smoke run: no --bench argument)" } else { "" }
    );
    println!(
        "selection + JSON, {rounds} rounds: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
    println!(
        "selection alone: median {:.2} ms, p90 {:.2} ms",
        quantile(&selection_times, 0.5).as_secs_f64() * 1e3,
        quantile(&selection_times, 0.9).as_secs_f64() * 1e3
    );
    println!(
        "command: SATPOOL_BENCH_CANDIDATES={count} SATPOOL_BENCH_ROUNDS={rounds} cargo {} -p satpool-node --bench template",
        if smoke { "test --benches" } else { "bench" }
    );
}
