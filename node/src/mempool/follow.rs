//! The pool and the chain: following blocks as they connect and disconnect
//! (Core's `removeForBlock` and `MaybeUpdateMempoolForReorg`), submitting a
//! transaction as `sendrawtransaction` and the wallet do
//! (`BroadcastTransaction`), and test acceptance of packages
//! (`testmempoolaccept`).

use std::collections::HashSet;
use std::sync::Arc;

use bitcoin::{Block, OutPoint, Transaction, Txid};

use super::{AcceptOptions, Accepted, ChainView, Mempool, MempoolReject, RejectClass, TxReject};
use crate::chain::{ChainError, ChainEvent};

/// Most transactions `testmempoolaccept` takes at once (`MAX_PACKAGE_COUNT`).
pub const MAX_PACKAGE_COUNT: usize = 25;
/// Largest total weight of a package (`MAX_PACKAGE_WEIGHT`).
pub const MAX_PACKAGE_WEIGHT: u64 = 404_000;

/// What following a batch of chain events did to the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorgOutcome {
    /// Transactions of disconnected blocks that came back.
    pub readded: usize,
    /// Transactions of disconnected blocks that no longer fit.
    pub dropped: usize,
    /// Pool transactions removed because the new tip made them invalid.
    pub removed: usize,
}

impl Mempool {
    /// Brings the pool up to date with the chain's events (oldest first):
    /// a connected block takes its transactions and their conflicts out; the
    /// transactions of disconnected blocks go back in, checked against the
    /// new tip, after which whatever the new tip made invalid is removed.
    pub fn follow_chain(
        &mut self,
        events: &[ChainEvent],
        chain: &dyn ChainView,
        now: i64,
    ) -> Result<ReorgOutcome, ChainError> {
        let mut disconnected: Vec<Arc<Block>> = Vec::new();
        let mut confirmed: HashSet<Txid> = HashSet::new();
        for event in events {
            match event {
                ChainEvent::Connected { block, .. } => {
                    self.remove_for_block(&block.txdata, now);
                    if !disconnected.is_empty() {
                        confirmed.extend(block.txdata.iter().map(Transaction::compute_txid));
                    }
                }
                ChainEvent::Disconnected { block, .. } => disconnected.push(block.clone()),
            }
        }
        let mut outcome = ReorgOutcome::default();
        if disconnected.is_empty() {
            return Ok(outcome);
        }
        // Oldest block first, each in block order, so parents come first.
        let options = AcceptOptions { bypass_limits: true, ..AcceptOptions::default() };
        for block in disconnected.iter().rev() {
            for tx in block.txdata.iter().skip(1) {
                let txid = tx.compute_txid();
                if confirmed.contains(&txid) {
                    continue;
                }
                match self.accept(Arc::new(tx.clone()), chain, now, options) {
                    Ok(_) => outcome.readded += 1,
                    Err(MempoolReject::Chain(e)) => return Err(e),
                    Err(MempoolReject::Invalid(reason)) => {
                        tracing::debug!(%txid, %reason, "transaction of a disconnected block dropped");
                        outcome.dropped += 1;
                    }
                }
            }
        }
        outcome.removed = self.remove_for_reorg(chain)?;
        self.limit_size(now);
        Ok(outcome)
    }

    /// Core's `BroadcastTransaction` without the relay: a transaction
    /// already here is fine as it is; one whose outputs are in the UTXO set
    /// is already confirmed; anything else goes through acceptance. A
    /// transaction accepted here waits in the unbroadcast set.
    pub fn submit(&mut self, tx: Transaction, chain: &dyn ChainView, now: i64) -> Result<Txid, MempoolReject> {
        let txid = tx.compute_txid();
        if self.contains(&txid) {
            return Ok(txid);
        }
        for vout in 0..tx.output.len() as u32 {
            if chain.coin(&OutPoint { txid, vout })?.is_some() {
                return Err(TxReject::new(RejectClass::AlreadyInChain, "txn-already-known", None).into());
            }
        }
        self.accept(Arc::new(tx), chain, now, AcceptOptions::default())?;
        self.add_unbroadcast(txid);
        Ok(txid)
    }

    /// `testmempoolaccept`: checks `txs` without adding them. One
    /// transaction is checked on its own (replacement allowed); several form
    /// a package, checked in order with each one seeing the earlier ones,
    /// without replacement, stopping at the first failure (later ones get
    /// `None`, as Core leaves them without a verdict). A malformed package is
    /// refused whole with Core's package error.
    pub fn test_accept(
        &mut self,
        txs: &[Transaction],
        chain: &dyn ChainView,
        now: i64,
    ) -> Result<Vec<Option<Result<Accepted, MempoolReject>>>, TxReject> {
        if txs.len() == 1 {
            let options = AcceptOptions { test_only: true, ..AcceptOptions::default() };
            return Ok(vec![Some(self.accept(Arc::new(txs[0].clone()), chain, now, options))]);
        }
        check_package(txs)?;
        let sequence = self.sequence;
        let mut staged: Vec<Txid> = Vec::new();
        let mut results = Vec::with_capacity(txs.len());
        let mut failed = false;
        for tx in txs {
            if failed {
                results.push(None);
                continue;
            }
            let options = AcceptOptions { allow_replacement: false, ..AcceptOptions::default() };
            let min_fee = self.min_fee(now);
            match self.prepare(Arc::new(tx.clone()), chain, now, min_fee, options) {
                Ok(candidate) => {
                    let entry = &candidate.entry;
                    let accepted = Accepted {
                        txid: entry.txid,
                        wtxid: entry.wtxid,
                        vsize: entry.vsize,
                        fee: entry.fee,
                        modified_fee: entry.modified_fee(),
                        effective_fee_rate: super::FeeRate::from_fee(entry.modified_fee(), entry.vsize),
                        replaced: Vec::new(),
                    };
                    staged.push(entry.txid);
                    self.insert(candidate.entry);
                    results.push(Some(Ok(accepted)));
                }
                Err(e) => {
                    failed = true;
                    results.push(Some(Err(e)));
                }
            }
        }
        for txid in staged.iter().rev() {
            self.remove_one(txid);
        }
        self.sequence = sequence;
        Ok(results)
    }
}

/// Core's `IsWellFormedPackage`, with its reject reasons.
fn check_package(txs: &[Transaction]) -> Result<(), TxReject> {
    let package_error = |reason: &str| TxReject::new(RejectClass::MempoolPolicy, reason, None);
    if txs.len() > MAX_PACKAGE_COUNT {
        return Err(package_error("package-too-many-transactions"));
    }
    let weight: u64 = txs.iter().map(|t| t.weight().to_wu()).sum();
    if weight > MAX_PACKAGE_WEIGHT {
        return Err(package_error("package-too-large"));
    }
    let txids: Vec<Txid> = txs.iter().map(Transaction::compute_txid).collect();
    let unique: HashSet<&Txid> = txids.iter().collect();
    if unique.len() != txids.len() {
        return Err(package_error("package-contains-duplicates"));
    }
    // Topologically sorted: no transaction spends a later one.
    for (i, tx) in txs.iter().enumerate() {
        if tx.input.iter().any(|input| txids[i..].contains(&input.previous_output.txid)) {
            return Err(package_error("package-not-sorted"));
        }
    }
    let mut spent = HashSet::new();
    for tx in txs {
        for input in &tx.input {
            if !spent.insert(input.previous_output) {
                return Err(package_error("conflict-in-package"));
            }
        }
    }
    Ok(())
}
