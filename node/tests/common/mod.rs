//! A regtest chainstate in a temporary directory, with a fixed clock and
//! helpers to build, tweak and submit blocks.

#![allow(dead_code)] // each test file uses a different subset

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, Block, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use satpool_node::chain::{BlockOutcome, ChainError, Chainstate};
use satpool_node::mining;
use satpool_node::params::{ChainParams, Network};

/// Bare `OP_TRUE`: spendable with an empty scriptSig.
pub fn op_true() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x51])
}

/// A clock fixed well after every block the tests make.
pub const NOW: i64 = 2_000_000_000;

pub struct TestChain {
    pub chain: Chainstate,
    pub dir: tempfile::TempDir,
    /// Block times advance one second per block from here.
    pub next_time: u32,
}

impl TestChain {
    pub fn new(network: Network) -> TestChain {
        let dir = tempfile::tempdir().expect("temp dir");
        let chain = Chainstate::open(dir.path(), ChainParams::new(network), Arc::new(|| NOW)).expect("open chainstate");
        let next_time = chain.tip().header.time + 1;
        TestChain { chain, dir, next_time }
    }

    pub fn regtest() -> TestChain {
        Self::new(Network::Regtest)
    }

    /// Reopens the chainstate from disk (as after a restart).
    pub fn reopen(self) -> TestChain {
        let TestChain { chain, dir, next_time } = self;
        let params = chain.params().clone();
        drop(chain);
        let chain = Chainstate::open(dir.path(), params, Arc::new(|| NOW)).expect("reopen chainstate");
        TestChain { chain, dir, next_time }
    }

    /// A solved block on the tip with `txs`, after `tweak` (which may break
    /// anything; call [`fix`] inside it after changing transactions). Only
    /// the nonce is searched after the tweak.
    pub fn build(&mut self, txs: Vec<Transaction>, tweak: impl FnOnce(&mut Block)) -> Block {
        let fees = Amount::ZERO;
        let mut block = mining::block_template(&self.chain, op_true(), txs, fees);
        block.header.time = self.next_time.max(self.chain.tip_median_time_past() + 1);
        self.next_time = block.header.time + 1;
        block.header.bits = self.chain.next_work_required(block.header.time);
        tweak(&mut block);
        solve_header_only(&mut block);
        block
    }

    /// A block on the tip paying `fees` more to the coinbase.
    pub fn build_with_fees(&mut self, txs: Vec<Transaction>, fees: Amount) -> Block {
        let mut block = mining::block_template(&self.chain, op_true(), txs, fees);
        block.header.time = self.next_time.max(self.chain.tip_median_time_past() + 1);
        self.next_time = block.header.time + 1;
        block.header.bits = self.chain.next_work_required(block.header.time);
        solve(&mut block);
        block
    }

    pub fn submit(&mut self, block: &Block) -> Result<BlockOutcome, ChainError> {
        self.chain.process_block(block)
    }

    /// Mines and connects `n` empty blocks; returns them.
    pub fn mine(&mut self, n: usize) -> Vec<Block> {
        (0..n)
            .map(|_| {
                let block = self.build(Vec::new(), |_| {});
                assert_eq!(self.submit(&block).expect("valid block"), BlockOutcome::Connected);
                block
            })
            .collect()
    }

    /// The reject reason a block gets.
    pub fn reject_reason(&mut self, block: &Block) -> String {
        match self.submit(block) {
            Ok(outcome) => panic!("block was accepted ({outcome:?})"),
            Err(e) => e.reject_reason().unwrap_or_else(|| panic!("not a consensus failure: {e}")),
        }
    }
}

/// Redoes the merkle root (and witness commitment, if present) and searches a nonce.
pub fn solve(block: &mut Block) {
    mining::set_merkle_root(block);
    let stop = std::sync::atomic::AtomicBool::new(false);
    assert!(mining::solve_header(&mut block.header, u64::MAX, &stop));
}

/// Searches a nonce without touching the merkle root.
pub fn solve_header_only(block: &mut Block) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    assert!(mining::solve_header(&mut block.header, u64::MAX, &stop));
}

/// After changing a block's transactions: redoes the witness commitment (if
/// the coinbase has one) and the merkle root.
pub fn fix(block: &mut Block) {
    if let Some(index) = satpool_node::validation::witness_commitment_index(&block.txdata[0]) {
        block.txdata[0].output[index].script_pubkey = mining::witness_commitment_script(&block.txdata);
    }
    mining::set_merkle_root(block);
}

/// A version-2 transaction spending `outpoints` (empty scriptSigs) to one output per value.
pub fn spend(outpoints: &[OutPoint], outputs: &[(Amount, ScriptBuf)]) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: outpoints
            .iter()
            .map(|&previous_output| TxIn {
                previous_output,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::default(),
            })
            .collect(),
        output: outputs.iter().map(|(value, script)| TxOut { value: *value, script_pubkey: script.clone() }).collect(),
    }
}

/// The coinbase output of a block.
pub fn coinbase_outpoint(block: &Block) -> OutPoint {
    OutPoint { txid: block.txdata[0].compute_txid(), vout: 0 }
}

pub fn txid_zero() -> Txid {
    Txid::all_zeros()
}
