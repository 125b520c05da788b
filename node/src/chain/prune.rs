//! Pruning (whitepaper section 7, "Reclaiming disk space"): deleting the
//! data and undo data of old blocks, oldest first, once their transactions
//! are buried deep enough that only the UTXO set is needed to go on.
//!
//! As in Bitcoin Core (`-prune`, `pruneblockchain`):
//! - the last [`MIN_BLOCKS_TO_KEEP`] blocks of the active chain always keep
//!   their data and undo data, so a reorganisation of that depth can still
//!   disconnect blocks; every block above the prune height keeps both;
//! - nothing is pruned until the chain is longer than the network's
//!   [`prune_after_height`];
//! - the block index keeps every header (status [`status::PRUNED`] instead of
//!   [`status::HAVE_DATA`]); the UTXO set is not touched;
//! - in automatic mode the stored block and undo bytes are kept under the
//!   target, with Core's minimum target of [`MIN_PRUNE_TARGET_MIB`] MiB.
//!
//! Unlike Core, which deletes whole block files, the unit here is one block:
//! its data and undo data are redb values. Each prune step (all the blocks it
//! removes, their index entries and their transaction counts) is one commit,
//! so a crash leaves either all of a step or none of it. redb frees the
//! pages at the commit and reuses them for the blocks that follow, so the
//! file stops growing; it shrinks only where the freed pages are at its end.

use bitcoin::consensus::encode::{Decodable, VarInt};
use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::index::status;
use super::store::{StoreError, BLOCKS, INDEX, TX_COUNT, UNDO};
use super::{ChainError, Chainstate, IndexEntry};
use crate::params::Network;

/// Blocks at the tip of the active chain whose data is never pruned (Core's
/// `MIN_BLOCKS_TO_KEEP`): the deepest reorganisation a pruned node can follow.
pub const MIN_BLOCKS_TO_KEEP: u32 = 288;

/// The smallest automatic target Core accepts, in MiB (`-prune=550`).
pub const MIN_PRUNE_TARGET_MIB: u64 = 550;

/// Headroom kept under the target when pruning (Core keeps room for a block
/// file chunk and an undo file chunk, 17 MiB of a 550 MiB minimum): a step
/// prunes until usage is this fraction of the target below it, so that steps
/// come in batches rather than one block at a time.
const BUFFER_DIVISOR: u64 = 32;

/// Bytes of a key in the block and undo tables; usage counts keys and values,
/// as redb's `stored_bytes` does.
const KEY_LEN: u64 = 32;

/// How blocks are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneMode {
    /// Every block is kept (`-prune=0`).
    #[default]
    Off,
    /// Only the `pruneblockchain` RPC prunes (`-prune=1`).
    Manual,
    /// Block and undo data are kept under a target, oldest pruned first.
    Automatic {
        /// The target in bytes (`-prune=<MiB>` · 2^20).
        target_bytes: u64,
    },
}

impl PruneMode {
    /// Whether any pruning may happen (Core's `IsPruneMode`).
    pub fn is_on(self) -> bool {
        self != PruneMode::Off
    }

    /// The automatic target in bytes, if automatic.
    pub fn target_bytes(self) -> Option<u64> {
        match self {
            PruneMode::Automatic { target_bytes } => Some(target_bytes),
            _ => None,
        }
    }
}

/// Why a prune setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneConfigError {
    /// A target below Core's minimum (Core's own message).
    #[error("Prune configured below the minimum of {MIN_PRUNE_TARGET_MIB} MiB.  Please use a higher number.")]
    BelowMinimum(u64),
}

impl PruneMode {
    /// Core's reading of `-prune=<n>`: 0 off, 1 manual, 550 or more a target
    /// in MiB; anything between is refused.
    pub fn from_mib(mib: u64) -> Result<PruneMode, PruneConfigError> {
        match mib {
            0 => Ok(PruneMode::Off),
            1 => Ok(PruneMode::Manual),
            n if n < MIN_PRUNE_TARGET_MIB => Err(PruneConfigError::BelowMinimum(n)),
            n => Ok(PruneMode::Automatic { target_bytes: n.saturating_mul(1024 * 1024) }),
        }
    }
}

/// The height the chain must pass before anything is pruned (Core's
/// `nPruneAfterHeight`): 100,000 on mainnet, 1,000 elsewhere.
pub fn prune_after_height(network: Network) -> u32 {
    match network {
        Network::Mainnet => 100_000,
        Network::Testnet4 | Network::Regtest | Network::Devnet => 1_000,
    }
}

/// What the chainstate remembers about pruning.
#[derive(Debug, Default)]
pub(super) struct PruneState {
    pub(super) mode: PruneMode,
    /// Height of the highest block whose data was pruned (any branch).
    pub(super) last_pruned: Option<u32>,
    /// Bytes of block and undo data stored, once measured (automatic mode).
    pub(super) usage: Option<u64>,
}

impl PruneState {
    /// The state a loaded index implies.
    pub(super) fn from_index<'a>(entries: impl Iterator<Item = &'a IndexEntry>) -> PruneState {
        let last_pruned = entries.filter(|e| e.status & status::PRUNED != 0).map(|e| e.height).max();
        PruneState { last_pruned, ..PruneState::default() }
    }
}

/// What one prune step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneOutcome {
    /// Blocks whose data was deleted.
    pub blocks: u32,
    /// Bytes of block and undo data deleted (keys included).
    pub bytes: u64,
}

impl Chainstate {
    /// Sets how blocks are pruned (at start-up, from `-prune`).
    pub fn set_prune_mode(&mut self, mode: PruneMode) {
        self.prune.mode = mode;
    }

    /// How blocks are pruned.
    pub fn prune_mode(&self) -> PruneMode {
        self.prune.mode
    }

    /// Whether this node is a pruning node: pruning is configured, or block
    /// data was pruned before (Core advertises `NODE_NETWORK_LIMITED` rather
    /// than `NODE_NETWORK` in prune mode, from the start).
    pub fn is_pruned(&self) -> bool {
        self.prune.mode.is_on() || self.prune.last_pruned.is_some()
    }

    /// The lowest height from which every block of the active chain up to
    /// the tip has its data and undo data (what `getblockchaininfo` calls
    /// `pruneheight`); `None` while nothing has been pruned. A peer may be
    /// served blocks at this height and above.
    pub fn prune_height(&self) -> Option<u32> {
        self.prune.last_pruned.map(|h| h + 1)
    }

    /// Number of transactions of an indexed block, whether its data is
    /// stored or pruned (Core's `nTx`); `None` for a header without data.
    pub fn tx_count(&self, hash: &BlockHash) -> Result<Option<u32>, ChainError> {
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        if let Some(raw) =
            txn.open_table(BLOCKS).map_err(StoreError::from)?.get(hash.as_byte_array()).map_err(StoreError::from)?
        {
            return tx_count_of_raw(raw.value())
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("block {hash}")).into());
        }
        let counts = txn.open_table(TX_COUNT).map_err(StoreError::from)?;
        let count = counts.get(hash.as_byte_array()).map_err(StoreError::from)?.map(|v| v.value());
        Ok(count)
    }

    /// `pruneblockchain`: deletes the data of every block at or below
    /// `height`, never one of the last [`MIN_BLOCKS_TO_KEEP`] of the active
    /// chain (the height is lowered to keep them). One commit. (The RPC
    /// refuses a chain shorter than [`prune_after_height`], as Core does.)
    pub fn prune_to_height(&mut self, height: u32) -> Result<PruneOutcome, ChainError> {
        let tip = self.tip().height;
        let limit = height.min(tip.saturating_sub(MIN_BLOCKS_TO_KEEP));
        let victims = self.prunable(limit, None)?;
        self.prune_blocks(&victims)
    }

    /// Automatic pruning after a block: when stored block and undo data
    /// exceed the target, prunes the oldest blocks (never one of the last
    /// [`MIN_BLOCKS_TO_KEEP`]) until they are under it by a margin.
    /// `new` is the block just stored (`bytes` long), whose undo data, if
    /// it was connected, is counted too; the first call measures the tables.
    pub(super) fn prune_if_needed(&mut self, new: &BlockHash, bytes: u64) -> Result<PruneOutcome, ChainError> {
        let Some(target) = self.prune.mode.target_bytes() else { return Ok(PruneOutcome::default()) };
        let usage = match self.prune.usage {
            Some(usage) => usage + KEY_LEN + bytes + self.undo_len(new)?,
            None => self.measure_usage()?,
        };
        self.prune.usage = Some(usage);
        let tip = self.tip().height;
        if usage <= target || tip <= prune_after_height(self.params.network) {
            return Ok(PruneOutcome::default());
        }
        let goal = target - target / BUFFER_DIVISOR;
        let victims = self.prunable(tip.saturating_sub(MIN_BLOCKS_TO_KEEP), Some(usage - goal))?;
        self.prune_blocks(&victims)
    }

    /// Bytes a block's undo data takes, key included (0 if none).
    fn undo_len(&self, hash: &BlockHash) -> Result<u64, ChainError> {
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let undo = txn.open_table(UNDO).map_err(StoreError::from)?;
        let len =
            undo.get(hash.as_byte_array()).map_err(StoreError::from)?.map_or(0, |v| KEY_LEN + v.value().len() as u64);
        Ok(len)
    }

    /// Bytes of block and undo data stored, measured over the tables.
    fn measure_usage(&self) -> Result<u64, ChainError> {
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let blocks = txn.open_table(BLOCKS).map_err(StoreError::from)?.stats().map_err(StoreError::from)?;
        let undo = txn.open_table(UNDO).map_err(StoreError::from)?.stats().map_err(StoreError::from)?;
        Ok(blocks.stored_bytes() + undo.stored_bytes())
    }

    /// Blocks with data at heights 1 to `limit` (any branch), oldest first;
    /// with `bytes`, only as many as free that many bytes. The genesis block
    /// is kept, as Core does in effect (it has no undo data to free and
    /// `pruneheight` never counts it).
    fn prunable(&self, limit: u32, bytes: Option<u64>) -> Result<Vec<(BlockHash, u32)>, ChainError> {
        let mut candidates: Vec<&IndexEntry> =
            self.index.entries().filter(|e| e.height >= 1 && e.height <= limit && e.have_data()).collect();
        candidates.sort_by_key(|e| (e.height, e.sequence));
        let Some(mut wanted) = bytes else {
            return Ok(candidates.into_iter().map(|e| (e.hash, e.height)).collect());
        };
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let blocks = txn.open_table(BLOCKS).map_err(StoreError::from)?;
        let undo = txn.open_table(UNDO).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for e in candidates {
            if wanted == 0 {
                break;
            }
            let key = e.hash.as_byte_array();
            let size = blocks.get(key).map_err(StoreError::from)?.map_or(0, |v| KEY_LEN + v.value().len() as u64)
                + undo.get(key).map_err(StoreError::from)?.map_or(0, |v| KEY_LEN + v.value().len() as u64);
            wanted = wanted.saturating_sub(size);
            out.push((e.hash, e.height));
        }
        Ok(out)
    }

    /// Deletes the data and undo data of `victims`, records their
    /// transaction counts and marks their index entries pruned, in one commit.
    fn prune_blocks(&mut self, victims: &[(BlockHash, u32)]) -> Result<PruneOutcome, ChainError> {
        if victims.is_empty() {
            return Ok(PruneOutcome::default());
        }
        let mut changed = Vec::with_capacity(victims.len());
        let mut outcome = PruneOutcome::default();
        let txn = self.store.db.begin_write().map_err(StoreError::from)?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(StoreError::from)?;
            let mut undo = txn.open_table(UNDO).map_err(StoreError::from)?;
            let mut counts = txn.open_table(TX_COUNT).map_err(StoreError::from)?;
            let mut index = txn.open_table(INDEX).map_err(StoreError::from)?;
            for (hash, _) in victims {
                let key = hash.as_byte_array();
                let Some(raw) = blocks.remove(key).map_err(StoreError::from)? else { continue };
                let raw = raw.value();
                let count = tx_count_of_raw(raw).ok_or_else(|| StoreError::Corrupt(format!("block {hash}")))?;
                outcome.bytes += KEY_LEN + raw.len() as u64;
                counts.insert(key, count).map_err(StoreError::from)?;
                if let Some(u) = undo.remove(key).map_err(StoreError::from)? {
                    outcome.bytes += KEY_LEN + u.value().len() as u64;
                }
                let mut entry = self.index.get(hash).expect("victims come from the index").clone();
                entry.status = (entry.status & !status::HAVE_DATA) | status::PRUNED;
                index.insert(key, entry.encode().as_slice()).map_err(StoreError::from)?;
                changed.push(entry);
                outcome.blocks += 1;
            }
        }
        txn.commit().map_err(StoreError::from)?;
        for entry in changed {
            self.candidates.remove(&(entry.chainwork, std::cmp::Reverse(entry.sequence), entry.hash));
            self.prune.last_pruned = Some(self.prune.last_pruned.map_or(entry.height, |h| h.max(entry.height)));
            let hash = entry.hash;
            *self.index.get_mut(&hash).expect("indexed") = entry;
        }
        if let Some(usage) = &mut self.prune.usage {
            *usage = usage.saturating_sub(outcome.bytes);
        }
        tracing::info!(
            blocks = outcome.blocks,
            bytes = outcome.bytes,
            prune_height = ?self.prune_height(),
            "pruned block data"
        );
        Ok(outcome)
    }
}

/// The transaction count of a serialised block: the compact size after the
/// 80-byte header (the same with or without witness data).
fn tx_count_of_raw(raw: &[u8]) -> Option<u32> {
    let mut rest = raw.get(80..)?;
    let count = VarInt::consensus_decode(&mut rest).ok()?.0;
    u32::try_from(count).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bitcoin::{Amount, ScriptBuf};

    use super::*;
    use crate::params::ChainParams;

    #[test]
    fn prune_setting_follows_core() {
        assert_eq!(PruneMode::from_mib(0), Ok(PruneMode::Off));
        assert_eq!(PruneMode::from_mib(1), Ok(PruneMode::Manual));
        assert_eq!(PruneMode::from_mib(2), Err(PruneConfigError::BelowMinimum(2)));
        assert_eq!(PruneMode::from_mib(549), Err(PruneConfigError::BelowMinimum(549)));
        assert_eq!(PruneMode::from_mib(550), Ok(PruneMode::Automatic { target_bytes: 550 * 1024 * 1024 }));
        assert_eq!(
            PruneConfigError::BelowMinimum(5).to_string(),
            "Prune configured below the minimum of 550 MiB.  Please use a higher number."
        );
    }

    fn mine(chain: &mut Chainstate, n: u32) {
        let never = std::sync::atomic::AtomicBool::new(false);
        for _ in 0..n {
            let mut block =
                crate::mining::block_template(chain, ScriptBuf::from_bytes(vec![0x51]), Vec::new(), Amount::ZERO);
            assert!(crate::mining::solve_header(&mut block.header, u64::MAX, &never));
            chain.process_block(&block).expect("valid block");
        }
    }

    fn open(dir: &std::path::Path) -> Chainstate {
        Chainstate::open(dir, ChainParams::new(Network::Regtest), Arc::new(|| 2_000_000_000)).expect("opens")
    }

    #[test]
    fn manual_pruning_keeps_the_last_288_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut chain = open(dir.path());
        chain.set_prune_mode(PruneMode::Manual);
        mine(&mut chain, 1_100);
        assert_eq!(chain.prune_height(), None, "manual mode prunes only when asked");
        let before = chain.utxo_set_info().expect("utxo set").hash_serialized;
        let outcome = chain.prune_to_height(500).expect("prunes");
        assert_eq!(outcome.blocks, 500);
        assert_eq!(chain.prune_height(), Some(501));
        // Asking for more than allowed keeps the last 288.
        chain.prune_to_height(1_100).expect("prunes");
        assert_eq!(chain.prune_height(), Some(1_100 - MIN_BLOCKS_TO_KEEP + 1));
        let last_pruned = chain.index().active_hash(1_100 - MIN_BLOCKS_TO_KEEP).expect("active");
        let first_kept = chain.index().active_hash(1_100 - MIN_BLOCKS_TO_KEEP + 1).expect("active");
        assert!(chain.block(&last_pruned).expect("reads").is_none());
        assert!(chain.block(&first_kept).expect("reads").is_some());
        assert_eq!(chain.tx_count(&last_pruned).expect("reads"), Some(1));
        assert_eq!(chain.tx_count(&first_kept).expect("reads"), Some(1));
        assert!(chain.index().get(&last_pruned).expect("indexed").status & status::PRUNED != 0);
        assert!(chain.block(&chain.params().genesis_hash()).expect("reads").is_some(), "genesis kept");
        assert_eq!(chain.utxo_set_info().expect("utxo set").hash_serialized, before);

        // A reorganisation within the kept blocks still works.
        let tip = chain.tip().hash;
        let third = chain.index().active_hash(1_098).expect("active");
        chain.invalidate_block(&third).expect("disconnects");
        assert_eq!(chain.tip().height, 1_097);
        chain.reconsider_block(&third).expect("reconnects");
        assert_eq!(chain.tip().hash, tip);
        // Below the prune height it is refused, and nothing changes.
        assert!(matches!(chain.invalidate_block(&last_pruned), Err(ChainError::PrunedData(h)) if h == last_pruned));
        assert_eq!(chain.tip().hash, tip);

        drop(chain);
        let mut chain = open(dir.path());
        assert_eq!(chain.prune_height(), Some(1_100 - MIN_BLOCKS_TO_KEEP + 1));
        assert!(chain.is_pruned());
        assert_eq!(chain.tip().hash, tip);
        mine(&mut chain, 1);
        assert_eq!(chain.tip().height, 1_101);
    }

    #[test]
    fn automatic_pruning_holds_the_target_and_reuses_space() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut chain = open(dir.path());
        // Each coinbase-only regtest block is about 200 bytes with its undo data.
        chain.set_prune_mode(PruneMode::Automatic { target_bytes: 100_000 });
        mine(&mut chain, 1_000);
        assert_eq!(chain.prune_height(), None, "nothing before the prune-after height");
        mine(&mut chain, 50);
        let first = chain.prune_height().expect("pruned past the target");
        assert!(first <= 1_050 - MIN_BLOCKS_TO_KEEP + 1);
        let measured = chain.measure_usage().expect("measures");
        assert!(measured <= 100_000, "{measured} bytes, estimated {:?}, prune height {first}", chain.prune.usage);
        // Growing on: the file size levels off, freed pages are reused.
        mine(&mut chain, 100);
        let size = chain.size_on_disk();
        mine(&mut chain, 400);
        assert!(chain.size_on_disk() <= size + size / 4, "{} grew from {size}", chain.size_on_disk());
        assert!(chain.prune_height().expect("pruned") > first);
    }

    #[test]
    fn tx_count_reads_the_compact_size() {
        let genesis = ChainParams::new(Network::Regtest).genesis;
        assert_eq!(tx_count_of_raw(&bitcoin::consensus::serialize(&genesis)), Some(1));
        assert_eq!(tx_count_of_raw(&[0; 81]), Some(0));
        assert_eq!(tx_count_of_raw(&[0; 80]), None);
        assert_eq!(tx_count_of_raw(&[0; 79]), None);
    }
}
