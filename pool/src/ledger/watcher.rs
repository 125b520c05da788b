//! [`BlockWatcher`]: follows the blocks the pool found until they are deep
//! enough to spend (confirmed) or have left the active chain (orphaned).
//! An orphaned block is looked at again while it is recent, since a
//! reorganisation can bring it back.
//!
//! Orphaning a block takes its changes to the balances owed back, and its
//! return applies them again ([`ShareStore::set_block_status`]). Within one
//! look the watcher moves blocks as a node moves its chain in a
//! reorganisation: first it orphans, newest first, then it brings back,
//! oldest first. So a later block that paid an earlier one's credits gives
//! its payment back before the earlier block's credits are withdrawn, and no
//! balance stops at zero on the way when it need not.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{BlockStatus, LedgerError, ShareStore};
use crate::template::{ChainQuery, NodeError};

/// Confirmations after which a coinbase is spendable (`COINBASE_MATURITY`).
pub const CONFIRMATIONS_NEEDED: i64 = 100;

/// How the watcher paces itself.
#[derive(Debug, Clone)]
pub struct WatcherOptions {
    /// Time between two looks.
    pub interval: Duration,
    /// Blocks below the tip by more than this are no longer looked at.
    pub horizon: u32,
}

impl Default for WatcherOptions {
    fn default() -> Self {
        WatcherOptions { interval: Duration::from_secs(30), horizon: 1_000 }
    }
}

/// Why one look failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The node did not answer.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Updates the status of found blocks from the node's view.
#[derive(Debug)]
pub struct BlockWatcher<S, C> {
    store: Arc<S>,
    chain: Arc<C>,
    options: WatcherOptions,
}

impl<S: ShareStore, C: ChainQuery> BlockWatcher<S, C> {
    /// A watcher of `store`'s blocks against `chain`.
    pub fn new(store: Arc<S>, chain: Arc<C>, options: WatcherOptions) -> Self {
        BlockWatcher { store, chain, options }
    }

    /// One look at every unconfirmed block; returns how many changed.
    pub async fn check(&self) -> Result<usize, WatchError> {
        let (_, tip_height) = self.chain.tip().await?;
        let blocks = self.store.unconfirmed_blocks(tip_height.saturating_sub(self.options.horizon)).await?;
        let mut updates = Vec::new();
        for block in blocks {
            let confirmations = self.chain.confirmations(&block.hash).await?;
            let (status, confirmations) = match confirmations {
                Some(n) if n >= CONFIRMATIONS_NEEDED => (BlockStatus::Confirmed, n),
                Some(n) if n >= 1 => (BlockStatus::Pending, n),
                Some(n) => (BlockStatus::Orphaned, n),
                None => (BlockStatus::Orphaned, -1),
            };
            if status != block.status || confirmations != block.confirmations {
                updates.push((block, status, confirmations));
            }
        }
        // Orphans first, newest first; then the rest, oldest first (the
        // store gave them oldest first).
        let (mut orphaned, rest): (Vec<_>, Vec<_>) =
            updates.into_iter().partition(|(_, status, _)| *status == BlockStatus::Orphaned);
        orphaned.reverse();
        let changed = orphaned.len() + rest.len();
        for (block, status, confirmations) in orphaned.into_iter().chain(rest) {
            self.store.set_block_status(&block.hash, status, confirmations).await?;
            if status != block.status {
                tracing::info!(height = block.height, hash = %block.hash, status = status.as_str(), "block status");
            }
        }
        Ok(changed)
    }

    /// Looks every `interval` until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.check().await {
                tracing::warn!(error = %error, "cannot check the found blocks; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.options.interval) => {}
            }
        }
        tracing::debug!("block watcher stopped");
    }
}
