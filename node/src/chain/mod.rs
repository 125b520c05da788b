//! The chainstate: the block index, the active chain (the one with the most
//! work), the UTXO set with undo data, and the logic that moves between
//! branches (Core's `ChainstateManager` and `Chainstate`).
//!
//! Every state change is one redb commit: storing a block with its index
//! entry, or connecting/disconnecting one block (its UTXO changes, undo data,
//! status and the new tip together). A crash at any moment leaves the last
//! committed tip, and the UTXO set that belongs to it.

mod index;
mod invalid;
mod proposal;
mod prune;
mod reorg;
mod store;
mod undo;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, OutPoint, Work};
use redb::{ReadableDatabase, ReadableTable};

pub use index::{status, BlockIndex, IndexEntry};
pub use prune::{
    prune_after_height, PruneConfigError, PruneMode, PruneOutcome, MIN_BLOCKS_TO_KEEP, MIN_PRUNE_TARGET_MIB,
};
pub use store::{Store, StoreError};

use crate::params::ChainParams;
use crate::pow::Parent;
use crate::utxo::{outpoint_key, Coin, CoinView};
use crate::validation::{self, BlockError, HeaderContext};
use store::{BLOCKS, INDEX, META, META_TIP, UTXO};

/// Why a block or header was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// It breaks a consensus rule.
    #[error(transparent)]
    Invalid(#[from] BlockError),
    /// Its parent is unknown.
    #[error("prev-blk-not-found: parent {0} is unknown")]
    PrevBlockNotFound(BlockHash),
    /// Its parent is known to be invalid.
    #[error("bad-prevblk: parent {0} is invalid")]
    BadPrevBlock(BlockHash),
    /// It is already known to be invalid.
    #[error("duplicate-invalid: block {0} is known to be invalid")]
    DuplicateInvalid(BlockHash),
    /// The genesis block cannot be invalidated.
    #[error("the genesis block cannot be invalidated")]
    GenesisInvalidation,
    /// Disconnecting down to this block needs block and undo data that were pruned.
    #[error("block {0} is at or below the prune height: its data and undo data were deleted")]
    PrunedData(BlockHash),
    /// Storage failed; the node must stop.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChainError {
    /// Bitcoin Core's reject reason, where the failure is the block's fault.
    pub fn reject_reason(&self) -> Option<String> {
        match self {
            ChainError::Invalid(e) => Some(e.reject_reason()),
            ChainError::PrevBlockNotFound(_) => Some("prev-blk-not-found".into()),
            ChainError::BadPrevBlock(_) => Some("bad-prevblk".into()),
            ChainError::DuplicateInvalid(_) => Some("duplicate-invalid".into()),
            ChainError::GenesisInvalidation | ChainError::PrunedData(_) | ChainError::Store(_) => None,
        }
    }
}

/// What became of a block handed to [`Chainstate::process_block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOutcome {
    /// New, valid, and now part of the active chain.
    Connected,
    /// New and stored, but not (or not yet) on the active chain: a side
    /// branch with less work (Core's "inconclusive").
    SideBranch,
    /// Already stored.
    Duplicate,
}

/// A tip the block index knows of (`getchaintips`).
#[derive(Debug, Clone)]
pub struct ChainTip {
    /// The tip.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Blocks from the fork point with the active chain.
    pub branch_len: u32,
    /// Core's status word: active, valid-fork, valid-headers, headers-only, invalid.
    pub status: &'static str,
}

/// A summary of the UTXO set (`gettxoutsetinfo`).
#[derive(Debug, Clone)]
pub struct UtxoSetInfo {
    /// Tip the set belongs to.
    pub best_block: BlockHash,
    /// Its height.
    pub height: u32,
    /// Distinct transactions with unspent outputs.
    pub transactions: u64,
    /// Unspent outputs.
    pub txouts: u64,
    /// Sum of their values, in satoshis.
    pub total_amount: u64,
    /// Core's `hash_serialized_3`: SHA-256d of every (outpoint, code, output)
    /// in key order; equal UTXO sets give equal hashes.
    pub hash_serialized: bitcoin::hashes::sha256d::Hash,
}

/// The database page cache when none is configured: 256 MiB (redb's own
/// default, 1 GiB, is more than a pool's node host should give by default).
pub const DEFAULT_DB_CACHE_BYTES: usize = 256 << 20;

/// The clock validation reads ("now" for `time-too-new`).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The chainstate.
pub struct Chainstate {
    params: ChainParams,
    store: Store,
    index: BlockIndex,
    /// Entries whose data and all ancestors' data are stored, not failed:
    /// ordered by work, then by earliest arrival.
    candidates: BTreeSet<(Work, std::cmp::Reverse<u64>, BlockHash)>,
    clock: Clock,
    /// Why the last block that failed to connect failed, for `process_block`'s answer.
    last_connect_error: Option<BlockError>,
    /// What happened to the active chain since the last
    /// [`Chainstate::take_events`]; `None` until a follower asks for them.
    events: Option<Vec<ChainEvent>>,
    /// The prune mode and what was pruned.
    prune: prune::PruneState,
}

/// A change of the active chain, in the order it happened. The mempool and
/// the wallet follow the chain by draining these after each call.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// A block joined the active chain at `height`.
    Connected {
        /// The block.
        block: Arc<Block>,
        /// Its height.
        height: u32,
    },
    /// A block left the active chain (a reorganisation or `invalidateblock`).
    Disconnected {
        /// The block.
        block: Arc<Block>,
        /// The height it had.
        height: u32,
    },
}

impl Chainstate {
    /// Opens the chainstate under `datadir`, creating it with the genesis
    /// block if it is new, and connects any stored block that has more work
    /// than the stored tip (a crash may have left one stored but unconnected).
    pub fn open(datadir: &Path, params: ChainParams, clock: Clock) -> Result<Chainstate, ChainError> {
        Self::open_with_cache(datadir, params, clock, DEFAULT_DB_CACHE_BYTES)
    }

    /// As [`Chainstate::open`], with the database's page cache limited to
    /// `cache_bytes` (Core's `-dbcache`). The cache is what the node's memory
    /// grows into as the chain grows; reads beyond it go to the OS page cache.
    pub fn open_with_cache(
        datadir: &Path,
        params: ChainParams,
        clock: Clock,
        cache_bytes: usize,
    ) -> Result<Chainstate, ChainError> {
        let store = Store::open(datadir, params.network.name(), cache_bytes)?;
        let mut chain = Chainstate {
            params,
            store,
            index: BlockIndex::default(),
            candidates: BTreeSet::new(),
            clock,
            last_connect_error: None,
            events: None,
            prune: prune::PruneState::default(),
        };
        let entries = chain.store.load_index()?;
        if entries.is_empty() {
            chain.init_genesis()?;
        } else {
            let mut entries = entries;
            entries.sort_by_key(|e| e.height);
            for entry in entries {
                chain.index.insert(entry);
            }
            let tip = chain.store.tip()?.ok_or_else(|| StoreError::Corrupt("index without a tip".into()))?;
            if chain.index.get(&tip).is_none() {
                return Err(StoreError::Corrupt(format!("tip {tip} is not in the index")).into());
            }
            chain.index.set_active_tip(tip);
            chain.prune = prune::PruneState::from_index(chain.index.entries());
            chain.rebuild_candidates();
        }
        chain.activate_best_chain()?;
        Ok(chain)
    }

    fn init_genesis(&mut self) -> Result<(), ChainError> {
        let genesis = self.params.genesis.clone();
        let hash = genesis.block_hash();
        let entry = IndexEntry {
            hash,
            header: genesis.header,
            height: 0,
            chainwork: genesis.header.work(),
            status: status::HAVE_DATA | status::VALID_SCRIPTS,
            sequence: 0,
        };
        // The genesis outputs are not spendable (as in Core): no UTXO entries.
        let txn = self.store.db.begin_write().map_err(StoreError::from)?;
        {
            let mut index = txn.open_table(INDEX).map_err(StoreError::from)?;
            index.insert(hash.as_byte_array(), entry.encode().as_slice()).map_err(StoreError::from)?;
            let mut blocks = txn.open_table(BLOCKS).map_err(StoreError::from)?;
            blocks
                .insert(hash.as_byte_array(), bitcoin::consensus::serialize(&genesis).as_slice())
                .map_err(StoreError::from)?;
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            meta.insert(META_TIP, hash.as_byte_array().as_slice()).map_err(StoreError::from)?;
        }
        txn.commit().map_err(StoreError::from)?;
        self.index.insert(entry);
        self.index.set_active_tip(hash);
        self.rebuild_candidates();
        Ok(())
    }

    /// Recomputes the candidate set from the index: every entry that is not
    /// failed and whose whole branch has data. A pruned block had its data
    /// and links its descendants, but is no candidate itself.
    fn rebuild_candidates(&mut self) {
        self.candidates.clear();
        let mut linked: std::collections::HashSet<BlockHash> = std::collections::HashSet::new();
        let mut by_height: Vec<&IndexEntry> = self.index.entries().collect();
        by_height.sort_by_key(|e| e.height);
        for e in by_height {
            let parent_linked = e.height == 0 || linked.contains(&e.header.prev_blockhash);
            let pruned = e.status & status::PRUNED != 0;
            if parent_linked && (e.have_data() || pruned) && !e.failed() {
                linked.insert(e.hash);
                if !pruned {
                    self.candidates.insert((e.chainwork, std::cmp::Reverse(e.sequence), e.hash));
                }
            }
        }
    }

    /// Starts recording [`ChainEvent`]s for [`Chainstate::take_events`].
    /// Off by default, so that nothing accumulates when nobody follows.
    pub fn record_events(&mut self) {
        self.events.get_or_insert_with(Vec::new);
    }

    /// The changes of the active chain since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<ChainEvent> {
        self.events.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn push_event(&mut self, event: impl FnOnce() -> ChainEvent) {
        if let Some(events) = &mut self.events {
            events.push(event());
        }
    }

    /// Bytes the chainstate takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.store.size_on_disk()
    }

    /// The network parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The block index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// The active tip.
    pub fn tip(&self) -> &IndexEntry {
        self.index.tip()
    }

    /// The node's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        Ok(self.store.block(hash)?)
    }

    /// A stored block, serialised.
    pub fn raw_block(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, ChainError> {
        Ok(self.store.raw_block(hash)?)
    }

    /// An unspent output of the active chain.
    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ChainError> {
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let table = txn.open_table(UTXO).map_err(StoreError::from)?;
        read_coin(&table, outpoint).map_err(ChainError::from)
    }

    /// The first unspent output of `txid` in the active chain's UTXO set, if
    /// any (Core's `AccessByTxid`, which `gettxoutproof` uses without a txindex).
    pub fn first_unspent_of(&self, txid: &bitcoin::Txid) -> Result<Option<(OutPoint, Coin)>, ChainError> {
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let table = txn.open_table(UTXO).map_err(StoreError::from)?;
        let start = outpoint_key(&OutPoint { txid: *txid, vout: 0 });
        let end = outpoint_key(&OutPoint { txid: *txid, vout: u32::MAX });
        let first = table.range::<&[u8; 36]>(&start..=&end).map_err(StoreError::from)?.next();
        match first {
            None => Ok(None),
            Some(row) => {
                let (key, value) = row.map_err(StoreError::from)?;
                let outpoint = crate::utxo::outpoint_from_key(key.value());
                let coin = Coin::from_bytes(value.value())
                    .map_err(|e| StoreError::Corrupt(format!("coin {outpoint}: {e}")))?;
                Ok(Some((outpoint, coin)))
            }
        }
    }

    /// The header context (parent, median time past, clock) for a child of `parent`.
    fn with_header_context<R>(&self, parent: &IndexEntry, f: impl FnOnce(&HeaderContext<'_>) -> R) -> R {
        let tip_hash = parent.hash;
        let ancestor =
            |h: u32| self.index.ancestor(&tip_hash, h).expect("ancestors of an indexed entry are indexed").header;
        let ctx = HeaderContext {
            parent: Parent { height: parent.height, header: parent.header, ancestor: &ancestor },
            median_time_past: self.index.median_time_past(&tip_hash),
            now: self.now(),
        };
        f(&ctx)
    }

    /// The `bits` a child of the tip with time `time` must carry.
    pub fn next_work_required(&self, time: u32) -> bitcoin::CompactTarget {
        let tip = self.tip().clone();
        self.with_header_context(&tip, |ctx| crate::pow::next_work_required(&self.params, &ctx.parent, time))
    }

    /// Median time past of the tip.
    pub fn tip_median_time_past(&self) -> u32 {
        self.index.median_time_past(&self.tip().hash)
    }

    /// Accepts a header into the index (Core's `AcceptBlockHeader`): its
    /// proof of work and its rules against its parent. Returns its hash.
    pub fn accept_header(&mut self, header: &bitcoin::block::Header) -> Result<BlockHash, ChainError> {
        let hash = header.block_hash();
        if let Some(entry) = self.index.get(&hash) {
            if entry.failed() {
                return Err(ChainError::DuplicateInvalid(hash));
            }
            return Ok(hash);
        }
        validation::check_header(header, &self.params)?;
        let parent =
            self.index.get(&header.prev_blockhash).ok_or(ChainError::PrevBlockNotFound(header.prev_blockhash))?;
        if parent.failed() {
            return Err(ChainError::BadPrevBlock(parent.hash));
        }
        let parent = parent.clone();
        self.with_header_context(&parent, |ctx| validation::contextual_check_header(header, ctx, &self.params))?;
        let entry = IndexEntry {
            hash,
            header: *header,
            height: parent.height + 1,
            chainwork: parent.chainwork + header.work(),
            status: 0,
            sequence: self.index.take_sequence(),
        };
        self.store.write_entries(&[&entry], None)?;
        self.index.insert(entry);
        Ok(hash)
    }

    /// Core's `ProcessNewBlock`: checks a block, stores it durably, and moves
    /// the active chain to the branch with the most work.
    pub fn process_block(&mut self, block: &Block) -> Result<BlockOutcome, ChainError> {
        let hash = block.block_hash();
        if let Some(entry) = self.index.get(&hash) {
            if entry.failed() {
                return Err(ChainError::DuplicateInvalid(hash));
            }
            if entry.have_data() {
                return Ok(BlockOutcome::Duplicate);
            }
        }
        validation::check_block(block, &self.params)?;
        self.accept_header(&block.header)?;
        let entry = self.index.get(&hash).expect("accepted just above").clone();
        let parent_mtp = self.index.median_time_past(&block.header.prev_blockhash);
        if let Err(e) = validation::contextual_check_block(block, entry.height, parent_mtp, &self.params) {
            if !e.may_be_mutation() {
                self.mark_invalid(&hash)?;
            }
            return Err(e.into());
        }

        // Stored durably before anything else happens to it.
        let entry = {
            let e = self.index.get_mut(&hash).expect("accepted just above");
            e.status |= status::HAVE_DATA;
            e.clone()
        };
        self.store.write_entries(&[&entry], Some(block))?;
        self.add_candidates_from(&hash);

        self.activate_best_chain_with(Some(block))?;
        self.prune_if_needed(&hash, block.total_size() as u64)?;
        let entry = self.index.get(&hash).expect("still indexed");
        if entry.failed() {
            // It was tried, and failed to connect.
            return Err(self
                .last_connect_error
                .take()
                .map(ChainError::Invalid)
                .unwrap_or(ChainError::DuplicateInvalid(hash)));
        }
        if self.index.is_active(&hash) {
            Ok(BlockOutcome::Connected)
        } else {
            Ok(BlockOutcome::SideBranch)
        }
    }
}

/// Reads a coin from the UTXO table.
fn read_coin(
    table: &impl ReadableTable<&'static [u8; 36], &'static [u8]>,
    outpoint: &OutPoint,
) -> Result<Option<Coin>, StoreError> {
    let row = table.get(&outpoint_key(outpoint))?;
    match row {
        None => Ok(None),
        Some(v) => {
            Coin::from_bytes(v.value()).map(Some).map_err(|e| StoreError::Corrupt(format!("coin {outpoint}: {e}")))
        }
    }
}

/// A [`CoinView`] over an open UTXO table. A read error is remembered and
/// reported after validation, since the view's interface cannot carry it.
struct TableView<'t, T> {
    table: &'t T,
    error: std::cell::RefCell<Option<StoreError>>,
}

impl<T: ReadableTable<&'static [u8; 36], &'static [u8]>> CoinView for TableView<'_, T> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        match read_coin(self.table, outpoint) {
            Ok(coin) => coin,
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}
