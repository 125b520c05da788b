//! Block connection throughput: blocks and transactions validated per second
//! on a generated regtest chain full of signed P2WPKH and P2TR key-path
//! spends, and the process's memory at the end.
//!
//! Run with `cargo bench -p satpool-node --bench connect`. Knobs, from the
//! environment:
//!
//! - `SATPOOL_BENCH_BLOCKS`: blocks of signed spends (default 1000), after a
//!   premine of coinbase-only blocks that are connected untimed;
//! - `SATPOOL_BENCH_TXS`: transactions per block once the wallet has fanned
//!   out (default 200);
//! - `SATPOOL_BENCH_DIR`: where the temporary chainstates and the blocks
//!   file go (default the system's temporary directory; redb syncs every
//!   block, so the disk under it matters);
//! - `SATPOOL_BENCH_KEEP`: a file to write the generated blocks to and keep,
//!   so that the measured phase can be rerun alone under a profiler (the
//!   command is printed).
//!
//! Two phases. Generation (untimed as validation): a generator chainstate
//! mines the premine to keys of a deterministic wallet, then blocks whose
//! transactions spend earlier outputs with real BIP143 ECDSA and BIP341
//! Schnorr signatures; each is connected there so the blocks are known to be
//! valid; they are written to a file. Measurement, in a fresh process of
//! this executable so that its memory figures hold nothing of the
//! generator's: a fresh chainstate in another directory is fed the same
//! blocks through `process_block`, each must come back `Connected`, and the
//! final tip and UTXO set hash must equal the generator's.
//!
//! Under `cargo test --benches` (no `--bench` argument) it runs a small
//! smoke version instead of the full benchmark.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{
    absolute, transaction, Amount, Block, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness,
};
use rayon::prelude::*;
use satpool_node::chain::{BlockOutcome, Chainstate};
use satpool_node::mining;
use satpool_node::params::{ChainParams, Network};

/// The fixed clock of both chainstates: well after every generated block.
const NOW: i64 = 2_000_000_000;
/// Coinbase-only blocks mined before the spends; their coinbases mature one
/// per block from height 101 on and seed the wallet.
const PREMINE: usize = 110;
/// Keys of each kind in the wallet.
const KEYS_PER_KIND: usize = 16;
/// Fee per transaction.
const FEE: Amount = Amount::from_sat(2_000);
/// No output is made smaller than this.
const MIN_OUTPUT: u64 = 10_000;
/// Outputs of a fan-out transaction, made while the wallet has too few coins.
const FANOUT: u64 = 100;

/// Benchmark size, from the environment.
struct Config {
    blocks: usize,
    txs_per_block: usize,
    dir: Option<std::path::PathBuf>,
    keep: Option<std::path::PathBuf>,
    smoke: bool,
}

impl Config {
    fn from_env() -> Config {
        // `cargo bench` passes `--bench`; `cargo test --benches` does not.
        let smoke = !std::env::args().any(|a| a == "--bench");
        let number = |name: &str, default: usize| match std::env::var(name) {
            Ok(v) => v.parse().unwrap_or_else(|e| panic!("{name}={v:?} is not a count: {e}")),
            Err(_) => default,
        };
        let (blocks, txs) = if smoke { (5, 20) } else { (1000, 200) };
        Config {
            blocks: number("SATPOOL_BENCH_BLOCKS", blocks),
            txs_per_block: number("SATPOOL_BENCH_TXS", txs),
            dir: std::env::var_os("SATPOOL_BENCH_DIR").map(Into::into),
            keep: std::env::var_os("SATPOOL_BENCH_KEEP").map(Into::into),
            smoke,
        }
    }

    fn temp_dir(&self) -> tempfile::TempDir {
        match &self.dir {
            Some(dir) => tempfile::tempdir_in(dir).expect("temp dir under SATPOOL_BENCH_DIR"),
            None => tempfile::tempdir().expect("temp dir"),
        }
    }
}

/// Which wallet key locks a coin.
#[derive(Debug, Clone, Copy)]
enum KeyRef {
    Wpkh(usize),
    Tr(usize),
}

struct WpkhKey {
    secret: SecretKey,
    public: PublicKey,
    script: ScriptBuf,
}

struct TrKey {
    /// The output key's pair: the internal key tweaked with no script tree.
    tweaked: Keypair,
    script: ScriptBuf,
}

/// Deterministic keys, and signing.
struct Wallet {
    secp: Secp256k1<All>,
    wpkh: Vec<WpkhKey>,
    tr: Vec<TrKey>,
}

impl Wallet {
    fn new() -> Wallet {
        let secp = Secp256k1::new();
        let secret = |kind: &str, i: usize| {
            let seed = bitcoin::hashes::sha256::Hash::hash(format!("satpool bench {kind} key {i}").as_bytes());
            SecretKey::from_slice(seed.as_byte_array()).expect("a SHA-256 output is a valid key but with odds 2^-128")
        };
        let wpkh = (0..KEYS_PER_KIND)
            .map(|i| {
                let secret = secret("p2wpkh", i);
                let public = PublicKey::from_secret_key(&secp, &secret);
                let script = ScriptBuf::new_p2wpkh(&CompressedPublicKey(public).wpubkey_hash());
                WpkhKey { secret, public, script }
            })
            .collect();
        let tr = (0..KEYS_PER_KIND)
            .map(|i| {
                let internal = Keypair::from_secret_key(&secp, &secret("p2tr", i));
                let script = ScriptBuf::new_p2tr(&secp, internal.x_only_public_key().0, None);
                let tweaked = internal.tap_tweak(&secp, None).to_keypair();
                TrKey { tweaked, script }
            })
            .collect();
        Wallet { secp, wpkh, tr }
    }

    fn script(&self, key: KeyRef) -> &ScriptBuf {
        match key {
            KeyRef::Wpkh(i) => &self.wpkh[i].script,
            KeyRef::Tr(i) => &self.tr[i].script,
        }
    }

    /// Fills every input's witness of `tx`, which spends `coins` in order.
    fn sign(&self, tx: &mut Transaction, coins: &[Utxo]) {
        let prevouts: Vec<TxOut> =
            coins.iter().map(|c| TxOut { value: c.value, script_pubkey: self.script(c.key).clone() }).collect();
        let mut cache = SighashCache::new(&*tx);
        let witnesses: Vec<Witness> = coins
            .iter()
            .enumerate()
            .map(|(i, coin)| match coin.key {
                KeyRef::Wpkh(k) => {
                    let key = &self.wpkh[k];
                    let sighash = cache
                        .p2wpkh_signature_hash(i, &key.script, coin.value, EcdsaSighashType::All)
                        .expect("the input exists and its script is P2WPKH");
                    let signature = self.secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &key.secret);
                    let signature = bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All };
                    Witness::p2wpkh(&signature, &key.public)
                }
                KeyRef::Tr(k) => {
                    let key = &self.tr[k];
                    let sighash = cache
                        .taproot_key_spend_signature_hash(i, &Prevouts::All(&prevouts), TapSighashType::Default)
                        .expect("one prevout per input");
                    let signature = self
                        .secp
                        .sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &key.tweaked);
                    let signature = bitcoin::taproot::Signature { signature, sighash_type: TapSighashType::Default };
                    Witness::p2tr_key_spend(&signature)
                }
            })
            .collect();
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness = witness;
        }
    }
}

/// A wallet coin.
#[derive(Debug, Clone, Copy)]
struct Utxo {
    outpoint: OutPoint,
    value: Amount,
    key: KeyRef,
}

/// SplitMix64: a deterministic, dependency-free source of choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `1..=n` (near enough for a benchmark).
    fn one_to(&mut self, n: u64) -> u64 {
        1 + self.next() % n
    }

    fn key(&mut self) -> KeyRef {
        let r = self.next();
        let i = (r >> 1) as usize % KEYS_PER_KIND;
        if r & 1 == 0 {
            KeyRef::Wpkh(i)
        } else {
            KeyRef::Tr(i)
        }
    }
}

/// The generator: a chainstate plus the wallet's coins.
struct Generator {
    chain: Chainstate,
    _dir: tempfile::TempDir,
    wallet: Wallet,
    rng: Rng,
    /// Spendable coins, oldest first.
    pool: VecDeque<Utxo>,
    /// Coinbase outputs with the height from which they may be spent.
    immature: VecDeque<(u32, Utxo)>,
    next_time: u32,
    txs_per_block: usize,
}

impl Generator {
    fn new(dir: tempfile::TempDir, txs_per_block: usize) -> Generator {
        let chain = open_chain(dir.path());
        let next_time = chain.tip().header.time + 1;
        Generator {
            chain,
            _dir: dir,
            wallet: Wallet::new(),
            rng: Rng(0x5a7_9001),
            pool: VecDeque::new(),
            immature: VecDeque::new(),
            next_time,
            txs_per_block,
        }
    }

    /// Builds, connects and returns the next block: coinbase-only when
    /// `spend` is false.
    fn next_block(&mut self, spend: bool) -> Block {
        let height = self.chain.tip().height + 1;
        let maturity = self.chain.params().coinbase_maturity;
        while self.immature.front().is_some_and(|(h, _)| *h <= height) {
            let (_, coin) = self.immature.pop_front().expect("checked just above");
            self.pool.push_back(coin);
        }
        let (mut txs, spent, fees) = if spend { self.spends() } else { (Vec::new(), Vec::new(), Amount::ZERO) };
        txs.par_iter_mut().zip(spent.par_iter()).for_each(|(tx, coins)| self.wallet.sign(tx, coins));

        let coinbase_key = self.rng.key();
        let mut block = mining::block_template(&self.chain, self.wallet.script(coinbase_key).clone(), txs, fees);
        block.header.time = self.next_time.max(self.chain.tip_median_time_past() + 1);
        self.next_time = block.header.time + 1;
        block.header.bits = self.chain.next_work_required(block.header.time);
        let stop = std::sync::atomic::AtomicBool::new(false);
        assert!(mining::solve_header(&mut block.header, u64::MAX, &stop), "regtest target is trivial");
        let outcome = self.chain.process_block(&block).expect("the generator builds valid blocks");
        assert_eq!(outcome, BlockOutcome::Connected, "generated block at height {height}");

        // The coins it made join the wallet.
        let coinbase = &block.txdata[0];
        self.immature.push_back((
            height + maturity,
            Utxo {
                outpoint: OutPoint { txid: coinbase.compute_txid(), vout: 0 },
                value: coinbase.output[0].value,
                key: coinbase_key,
            },
        ));
        block
    }

    /// Unsigned spends for one block, the coins each spends, and their fees.
    fn spends(&mut self) -> (Vec<Transaction>, Vec<Vec<Utxo>>, Amount) {
        let mut txs = Vec::with_capacity(self.txs_per_block);
        let mut spent = Vec::with_capacity(self.txs_per_block);
        let mut created = Vec::new();
        // Enough coins for the next block's inputs (at most 4 a transaction).
        let low_water = self.txs_per_block * 4;
        while txs.len() < self.txs_per_block && !self.pool.is_empty() {
            let inputs = (self.rng.one_to(4) as usize).min(self.pool.len());
            let coins: Vec<Utxo> = self.pool.drain(..inputs).collect();
            let total = coins.iter().map(|c| c.value).sum::<Amount>();
            let Some(available) = total.checked_sub(FEE).filter(|a| a.to_sat() >= MIN_OUTPUT) else {
                continue; // dust: dropped from the wallet
            };
            let short = self.pool.len() + created.len() < low_water;
            let wanted = if short { FANOUT } else { self.rng.one_to(3) };
            let outputs = wanted.min(available.to_sat() / MIN_OUTPUT).max(1);
            let each = available.to_sat() / outputs;
            let keys: Vec<KeyRef> = (0..outputs).map(|_| self.rng.key()).collect();
            let tx = Transaction {
                version: transaction::Version::TWO,
                lock_time: absolute::LockTime::ZERO,
                input: coins
                    .iter()
                    .map(|c| TxIn {
                        previous_output: c.outpoint,
                        script_sig: ScriptBuf::new(),
                        sequence: Sequence::MAX,
                        witness: Witness::default(),
                    })
                    .collect(),
                output: keys
                    .iter()
                    .enumerate()
                    .map(|(i, &key)| {
                        // The remainder of the division goes to the first output.
                        let value = if i == 0 { available.to_sat() - each * (outputs - 1) } else { each };
                        TxOut { value: Amount::from_sat(value), script_pubkey: self.wallet.script(key).clone() }
                    })
                    .collect(),
            };
            // The txid does not cover witnesses: known before signing.
            let txid = tx.compute_txid();
            created.extend(tx.output.iter().zip(&keys).enumerate().map(|(vout, (out, &key))| Utxo {
                outpoint: OutPoint { txid, vout: vout as u32 },
                value: out.value,
                key,
            }));
            txs.push(tx);
            spent.push(coins);
        }
        // Spendable from the next block on.
        self.pool.extend(created);
        let fees = FEE * txs.len() as u64;
        (txs, spent, fees)
    }
}

fn open_chain(dir: &Path) -> Chainstate {
    Chainstate::open(dir, ChainParams::new(Network::Regtest), Arc::new(|| NOW)).expect("open chainstate")
}

/// `VmHWM` (peak) and `VmRSS` (current) of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Blocks written by the generator for the measuring process: the premine
/// count and the spend-block count (little-endian `u32` each), then every
/// block in consensus encoding.
fn write_blocks(path: &Path, premine: &[Block], blocks: &[Block]) -> std::io::Result<u64> {
    use bitcoin::consensus::Encodable;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(&(premine.len() as u32).to_le_bytes())?;
    out.write_all(&(blocks.len() as u32).to_le_bytes())?;
    let mut bytes = 8;
    for block in premine.iter().chain(blocks) {
        bytes += block.consensus_encode(&mut out)? as u64;
    }
    out.flush()?;
    Ok(bytes)
}

fn main() {
    let mut args = std::env::args().skip_while(|a| a != "--measure").skip(1);
    if let Some(file) = args.next() {
        let usage = "--measure FILE EXPECTED_TIP EXPECTED_UTXO_HASH";
        let (tip, utxo_hash) = (args.next().expect(usage), args.next().expect(usage));
        measure(Path::new(&file), &tip, &utxo_hash);
        return;
    }

    let config = Config::from_env();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "== satpool-node connect benchmark{}",
        if config.smoke { " (smoke run: no --bench argument)" } else { "" }
    );
    println!(
        "command: SATPOOL_BENCH_BLOCKS={} SATPOOL_BENCH_TXS={} cargo {} -p satpool-node --bench connect",
        config.blocks,
        config.txs_per_block,
        if config.smoke { "test" } else { "bench" }
    );
    println!("cores: {cores} available, rayon threads: {}", rayon::current_num_threads());
    println!(
        "chain: regtest, {PREMINE} premined coinbase-only blocks, then {} blocks of up to {} signed spends",
        config.blocks, config.txs_per_block
    );

    // Generation.
    let started = Instant::now();
    let mut generator = Generator::new(config.temp_dir(), config.txs_per_block);
    let premine: Vec<Block> = (0..PREMINE).map(|_| generator.next_block(false)).collect();
    let blocks: Vec<Block> = (0..config.blocks).map(|_| generator.next_block(true)).collect();
    let expected = generator.chain.utxo_set_info().expect("generator UTXO set");
    drop(generator);
    let generation = started.elapsed();
    let blocks_dir = config.temp_dir();
    let blocks_file = match &config.keep {
        Some(path) => path.clone(),
        None => blocks_dir.path().join("blocks.dat"),
    };
    let bytes = write_blocks(&blocks_file, &premine, &blocks).expect("write the generated blocks");
    println!(
        "generated in {:.1} s (signing, and connecting on the generator's chainstate); {:.1} MiB of blocks",
        generation.as_secs_f64(),
        mib(bytes),
    );
    drop((premine, blocks));

    // Measurement in a fresh process, so that its memory figures hold the
    // chainstate and nothing of the generator's.
    let exe = std::env::current_exe().expect("own executable");
    let (expected_tip, expected_hash) = (expected.best_block.to_string(), expected.hash_serialized.to_string());
    if config.keep.is_some() {
        println!(
            "to measure again (a profiler's command): {} --measure {} {expected_tip} {expected_hash}",
            exe.display(),
            blocks_file.display()
        );
    }
    let status = std::process::Command::new(exe)
        .arg("--measure")
        .arg(&blocks_file)
        .arg(&expected_tip)
        .arg(&expected_hash)
        .status()
        .expect("start the measuring process");
    assert!(status.success(), "the measuring process failed: {status}");
}

/// The measured phase: a fresh chainstate fed the blocks in `file` one by
/// one, read from disk as it goes (decoding is not timed).
fn measure(file: &Path, expected_tip: &str, expected_utxo_hash: &str) {
    use bitcoin::consensus::Decodable;
    let mut input = std::io::BufReader::new(std::fs::File::open(file).expect("open the generated blocks"));
    let mut count = || {
        let mut word = [0u8; 4];
        input.read_exact(&mut word).expect("blocks file header");
        u32::from_le_bytes(word) as usize
    };
    let (premine, spends) = (count(), count());
    let mut next_block = || Block::consensus_decode(&mut input).expect("a generated block");

    let dir = tempfile::tempdir_in(file.parent().expect("the blocks file is in a directory")).expect("temp dir");
    println!("measured chainstate: {} (fresh process)", dir.path().display());
    let (peak, rss) = memory_kib();
    println!("memory before opening it: peak {:.1} MiB, current {:.1} MiB", kib_to_mib(peak), kib_to_mib(rss));
    let mut chain = open_chain(dir.path());
    for _ in 0..premine {
        let block = next_block();
        assert_eq!(chain.process_block(&block).expect("premined block"), BlockOutcome::Connected);
    }

    let (mut txs, mut inputs, mut p2wpkh) = (0, 0, 0);
    let mut txs_per_block = Vec::with_capacity(spends);
    let mut per_block = Vec::with_capacity(spends);
    let mut elapsed = Duration::ZERO;
    for _ in 0..spends {
        let block = next_block();
        let spends_in_block = block.txdata.len() - 1;
        txs += spends_in_block;
        txs_per_block.push(spends_in_block);
        for tx in &block.txdata[1..] {
            inputs += tx.input.len();
            // A P2WPKH witness is signature and key; a key-path spend's is one signature.
            p2wpkh += tx.input.iter().filter(|i| i.witness.len() == 2).count();
        }
        let started = Instant::now();
        let outcome = chain.process_block(&block).expect("a generated block connects");
        let took = started.elapsed();
        assert_eq!(outcome, BlockOutcome::Connected, "block {}", block.block_hash());
        elapsed += took;
        per_block.push(took);
    }
    let (peak, rss) = memory_kib();

    let actual = chain.utxo_set_info().expect("measured UTXO set");
    assert_eq!(actual.best_block.to_string(), expected_tip, "the tip differs from the generator's");
    assert_eq!(
        actual.hash_serialized.to_string(),
        expected_utxo_hash,
        "the UTXO set differs from the generator's at tip {} height {}",
        actual.best_block,
        actual.height
    );

    let secs = elapsed.as_secs_f64();
    per_block.sort();
    let max_txs = txs_per_block.iter().copied().max().unwrap_or(0);
    let full = txs_per_block.iter().filter(|&&n| n == max_txs).count();
    println!(
        "blocks:       {spends} ({txs} txs, {:.1} a block, {full} with {max_txs}; {inputs} inputs: {p2wpkh} P2WPKH, {} P2TR key path)",
        txs as f64 / spends as f64,
        inputs - p2wpkh
    );
    println!("== results (every block Connected)");
    println!("total:        {secs:.3} s in process_block");
    println!("blocks/s:     {:.1}", spends as f64 / secs);
    println!("txs/s:        {:.0}", txs as f64 / secs);
    println!("inputs/s:     {:.0} (one signature check each)", inputs as f64 / secs);
    println!(
        "per block:    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&per_block, 0.5),
        percentile(&per_block, 0.9),
        percentile(&per_block, 0.99),
        percentile(&per_block, 1.0),
    );
    println!(
        "tip:          height {} {}, {} UTXOs, UTXO hash {} (tip and hash equal to the generator's)",
        actual.height, actual.best_block, actual.txouts, actual.hash_serialized
    );
    println!(
        "memory at end: peak {:.1} MiB, current {:.1} MiB (VmHWM, VmRSS of the measuring process)",
        kib_to_mib(peak),
        kib_to_mib(rss)
    );
    drop(chain);
    println!("datadir on disk: {:.1} MiB", mib(dir_size(dir.path())));
}
