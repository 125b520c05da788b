//! Mempool acceptance throughput: signed P2WPKH transactions accepted per
//! second through `Node::submit_transaction`, for 1-in-1-out and 2-in-2-out
//! spends of confirmed outputs (every check of acceptance, scripts and
//! signatures included, one transaction at a time as `sendrawtransaction`
//! does it).
//!
//! Run with `cargo bench -p satpool-node --bench mempool`. Knob, from the
//! environment: `SATPOOL_BENCH_TXS`, transactions of each shape (default
//! 5000). Set-up, untimed: a regtest chainstate in a temporary directory,
//! 104 blocks to one key, then one block fanning the first four coinbases out into
//! the outputs the measured transactions spend; the transactions are signed
//! before the clock starts.
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs a small
//! smoke version instead.

use std::sync::Arc;
use std::time::Instant;

use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness,
};
use rayon::prelude::*;
use satpool_node::chain::{BlockOutcome, Chainstate};
use satpool_node::mining;
use satpool_node::node::Node;
use satpool_node::params::{ChainParams, Network};

const NOW: i64 = 2_000_000_000;
const FANOUTS: usize = 4;

struct Key {
    secret: SecretKey,
    public: CompressedPublicKey,
    script: ScriptBuf,
}

impl Key {
    fn new() -> Key {
        let secret = SecretKey::from_slice(&[0x42; 32]).expect("a valid secret");
        let public = CompressedPublicKey(secret.public_key(&Secp256k1::new()));
        let script = ScriptBuf::new_p2wpkh(&public.wpubkey_hash());
        Key { secret, public, script }
    }

    fn spend(&self, inputs: &[(OutPoint, u64)], outputs: &[u64]) -> Transaction {
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::default(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|v| TxOut { value: Amount::from_sat(*v), script_pubkey: self.script.clone() })
                .collect(),
        };
        let secp = Secp256k1::signing_only();
        let witnesses: Vec<Witness> = {
            let mut cache = SighashCache::new(&tx);
            inputs
                .iter()
                .enumerate()
                .map(|(i, (_, value))| {
                    let sighash = cache
                        .p2wpkh_signature_hash(i, &self.script, Amount::from_sat(*value), EcdsaSighashType::All)
                        .expect("input exists");
                    let signature = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &self.secret);
                    let sig = bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All };
                    Witness::p2wpkh(&sig, &self.public.0)
                })
                .collect()
        };
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness = witness;
        }
        tx
    }
}

use bitcoin::hashes::Hash as _;

fn mine(node: &mut Node, script: &ScriptBuf, txs: Vec<Transaction>) -> bitcoin::Block {
    let mut block = mining::block_template(&node.chain, script.clone(), txs, Amount::ZERO);
    mining::set_merkle_root(&mut block);
    let stop = std::sync::atomic::AtomicBool::new(false);
    assert!(mining::solve_header(&mut block.header, u64::MAX, &stop));
    assert_eq!(node.process_block(&block).expect("valid block"), BlockOutcome::Connected);
    block
}

/// Measures accepting `txs`; returns transactions per second.
fn measure(node: &mut Node, txs: Vec<Transaction>) -> (f64, f64) {
    let n = txs.len();
    let started = Instant::now();
    for tx in txs {
        if let Err(e) = node.submit_transaction(tx) {
            panic!("benchmark transaction refused: {e}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    (n as f64 / secs, secs * 1e6 / n as f64)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let per_shape: usize =
        if full { std::env::var("SATPOOL_BENCH_TXS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000) } else { 50 };
    let key = Key::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let chain =
        Chainstate::open(dir.path(), ChainParams::new(Network::Regtest), Arc::new(|| NOW)).expect("open chainstate");
    let mut node = Node::new(chain);

    // 104 blocks (the first four coinbases mature), then a block that fans them out.
    let coinbases: Vec<OutPoint> = (0..104)
        .map(|_| OutPoint { txid: mine(&mut node, &key.script, Vec::new()).txdata[0].compute_txid(), vout: 0 })
        .collect();
    let outputs_needed = per_shape * 3; // one per 1-in-1-out, two per 2-in-2-out
    let per_fanout = outputs_needed.div_ceil(FANOUTS);
    let value = (50 * 100_000_000 - 1_000_000) / per_fanout as u64;
    let fanouts: Vec<Transaction> =
        coinbases[..FANOUTS].iter().map(|cb| key.spend(&[(*cb, 50 * 100_000_000)], &vec![value; per_fanout])).collect();
    let mut coins: Vec<(OutPoint, u64)> = fanouts
        .iter()
        .flat_map(|tx| {
            let txid = tx.compute_txid();
            (0..per_fanout as u32).map(move |vout| (OutPoint { txid, vout }, value))
        })
        .collect();
    mine(&mut node, &key.script, fanouts);

    let pairs: Vec<(OutPoint, u64)> = coins.split_off(per_shape);
    let one_in_one_out: Vec<Transaction> =
        coins.par_iter().map(|coin| key.spend(&[*coin], &[coin.1 - 1_000])).collect();
    let two_in_two_out: Vec<Transaction> =
        pairs[..per_shape * 2].par_chunks(2).map(|c| key.spend(c, &[c[0].1 - 1_000, c[1].1 - 1_000])).collect();

    let (rate1, us1) = measure(&mut node, one_in_one_out);
    let (rate2, us2) = measure(&mut node, two_in_two_out);
    let info = node.mempool.info();
    println!("mempool acceptance ({} transactions of each shape, regtest, signed P2WPKH):", per_shape);
    println!("  1-in-1-out: {rate1:>9.0} tx/s  ({us1:.1} µs each)");
    println!("  2-in-2-out: {rate2:>9.0} tx/s  ({us2:.1} µs each)");
    println!(
        "  pool afterwards: {} transactions, {} vbytes, {} bytes of memory (estimate)",
        info.size, info.bytes, info.usage
    );
    assert_eq!(info.size, per_shape * 2);
}
