//! The node's state behind one lock (Core's `cs_main`): the chainstate and
//! whatever follows it, with a notification of every tip change for long
//! polls and miners.
//!
//! Every change of the chain goes through [`Node`]'s methods, which pass the
//! chain's events on to its followers before the lock is released, so no
//! reader ever sees a follower behind the chain.

use std::sync::{Mutex, MutexGuard};

use bitcoin::{Block, BlockHash};

use crate::chain::{BlockOutcome, ChainError, ChainEvent, Chainstate};
use crate::mempool::{Accepted, Mempool, MempoolReject};

/// The state one lock guards.
pub struct Node {
    /// The block chain and the UTXO set.
    pub chain: Chainstate,
    /// Unconfirmed transactions, kept valid against the tip.
    pub mempool: Mempool,
    /// The loaded wallets; they follow the chain and the mempool.
    pub wallets: crate::wallet::Wallets,
    /// Where block connect times go, when metrics are served.
    pub metrics: Option<std::sync::Arc<crate::metrics::NodeMetrics>>,
}

impl Node {
    /// Wraps an opened chainstate.
    pub fn new(mut chain: Chainstate) -> Node {
        chain.record_events();
        Node { chain, mempool: Mempool::default(), wallets: crate::wallet::Wallets::default(), metrics: None }
    }

    /// Offers a transaction to the mempool (`sendrawtransaction`, the
    /// wallet, peers): its txid once it is in, also if it already was.
    pub fn submit_transaction(&mut self, tx: bitcoin::Transaction) -> Result<bitcoin::Txid, MempoolReject> {
        let now = self.chain.now();
        let copy = (!self.wallets.is_empty()).then(|| tx.clone());
        let result = self.mempool.submit(tx, &self.chain, now);
        if let (Ok(_), Some(tx)) = (&result, copy) {
            self.wallets.add_unconfirmed(&tx);
        }
        result
    }

    /// `testmempoolaccept`: what the mempool would say of `txs` (one
    /// transaction, or a package in order), adding nothing.
    pub fn test_accept(
        &mut self,
        txs: &[bitcoin::Transaction],
    ) -> Result<Vec<Option<Result<Accepted, MempoolReject>>>, crate::mempool::TxReject> {
        let now = self.chain.now();
        self.mempool.test_accept(txs, &self.chain, now)
    }

    /// Saves the mempool to `path` (at shutdown).
    pub fn save_mempool(&self, path: &std::path::Path) -> Result<(), crate::mempool::persist::PersistError> {
        crate::mempool::persist::save(&self.mempool, path)
    }

    /// Loads a saved mempool from `path`, re-validating every transaction
    /// against the tip; a missing file is an empty pool.
    pub fn load_mempool(
        &mut self,
        path: &std::path::Path,
    ) -> Result<crate::mempool::persist::LoadOutcome, crate::mempool::persist::LoadError> {
        let now = self.chain.now();
        crate::mempool::persist::load(&mut self.mempool, path, &self.chain, now)
    }

    /// Processes a block (see [`Chainstate::process_block`]) and brings the
    /// followers up to date.
    pub fn process_block(&mut self, block: &Block) -> Result<BlockOutcome, ChainError> {
        let started = std::time::Instant::now();
        let outcome = self.chain.process_block(block);
        if let (Some(metrics), Ok(BlockOutcome::Connected)) = (&self.metrics, &outcome) {
            metrics.observe_block_connect(started.elapsed());
        }
        self.follow_chain();
        outcome
    }

    /// `invalidateblock`.
    pub fn invalidate_block(&mut self, hash: &BlockHash) -> Result<(), ChainError> {
        let result = self.chain.invalidate_block(hash);
        self.follow_chain();
        result
    }

    /// `reconsiderblock`.
    pub fn reconsider_block(&mut self, hash: &BlockHash) -> Result<(), ChainError> {
        let result = self.chain.reconsider_block(hash);
        self.follow_chain();
        result
    }

    /// Passes the chain's events to the followers.
    fn follow_chain(&mut self) {
        let events = self.chain.take_events();
        let now = self.chain.now();
        if let Err(e) = self.mempool.follow_chain(&events, &self.chain, now) {
            tracing::error!("mempool could not follow the chain: {e}");
        }
        for event in events {
            match event {
                ChainEvent::Connected { block, height } => self.wallets.connect_block(&block, height),
                ChainEvent::Disconnected { block, height } => self.wallets.disconnect_block(&block, height),
            }
        }
    }
}

/// A [`Node`] shared between the RPC threads, the miner and the network.
pub struct SharedNode {
    state: Mutex<Node>,
    tip: tokio::sync::watch::Sender<BlockHash>,
}

impl SharedNode {
    /// Shares `node`.
    pub fn new(node: Node) -> SharedNode {
        let (tip, _) = tokio::sync::watch::channel(node.chain.tip().hash);
        SharedNode { state: Mutex::new(node), tip }
    }

    /// Runs `f` with the node locked, then tells watchers if the tip moved.
    pub fn with<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut guard = self.lock();
        let result = f(&mut guard);
        let tip = guard.chain.tip().hash;
        drop(guard);
        self.tip.send_if_modified(|old| std::mem::replace(old, tip) != tip);
        result
    }

    /// The node, locked, for reading. Changes go through [`SharedNode::with`]
    /// so that tip watchers hear of them.
    pub fn lock(&self) -> MutexGuard<'_, Node> {
        // Every chain change is one commit, so a panic under the lock leaves
        // a consistent state behind; going on is safe.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver that sees each new tip.
    pub fn watch_tip(&self) -> tokio::sync::watch::Receiver<BlockHash> {
        self.tip.subscribe()
    }
}
