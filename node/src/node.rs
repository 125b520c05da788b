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

/// The state one lock guards.
pub struct Node {
    /// The block chain and the UTXO set.
    pub chain: Chainstate,
}

impl Node {
    /// Wraps an opened chainstate.
    pub fn new(mut chain: Chainstate) -> Node {
        chain.record_events();
        Node { chain }
    }

    /// Processes a block (see [`Chainstate::process_block`]) and brings the
    /// followers up to date.
    pub fn process_block(&mut self, block: &Block) -> Result<BlockOutcome, ChainError> {
        let outcome = self.chain.process_block(block);
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
        for event in self.chain.take_events() {
            match event {
                ChainEvent::Connected { .. } | ChainEvent::Disconnected { .. } => {}
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
