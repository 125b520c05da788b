//! The share ledger: who submitted which shares, the blocks found, what each
//! block paid, and the balances still owed — in SQLite by default, in
//! PostgreSQL for operators who run several pool servers.
//!
//! - [`ShareStore`] is the interface; [`Ledger`] implements it with sqlx,
//!   [`MemoryStore`] in memory for tests.
//! - [`ShareRecorder`] is the group commit in front of it: sessions hand it
//!   shares one by one, it commits them in batches, one transaction each, and
//!   only then tells each session its share is safe to acknowledge.
//! - [`BlockWatcher`] follows the blocks found until they are confirmed (100
//!   confirmations) or leave the active chain.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::{Amount, BlockHash};

mod memory;
mod recorder;
mod sql;
mod watcher;

pub use memory::MemoryStore;
pub use recorder::{RecordError, RecorderOptions, ShareRecorder};
pub use sql::{Ledger, LedgerOptions};
pub use watcher::{BlockWatcher, WatcherOptions, CONFIRMATIONS_NEEDED};

/// An accepted share, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRecord {
    /// When it was accepted.
    pub time: SystemTime,
    /// The payout address the miner authorized with.
    pub address: String,
    /// The worker name after the address (`address.worker`), or empty.
    pub worker: String,
    /// The difficulty it is credited at: its job's share difficulty.
    pub difficulty: f64,
    /// The height of the block its job built.
    pub height: u32,
    /// Its job.
    pub job_id: String,
    /// The block's hash when the share was also a block.
    pub block_hash: Option<BlockHash>,
}

/// A share of the PPLNS window: who, and how much it counts.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowShare {
    /// The payout address.
    pub address: String,
    /// Its difficulty (the last one may be cut at the window's edge).
    pub difficulty: f64,
}

/// Where a found block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Found, not yet deep enough.
    Pending,
    /// [`CONFIRMATIONS_NEEDED`] deep in the active chain: its coinbase is spendable.
    Confirmed,
    /// No longer in the active chain (or never accepted).
    Orphaned,
}

impl BlockStatus {
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockStatus::Pending => "pending",
            BlockStatus::Confirmed => "confirmed",
            BlockStatus::Orphaned => "orphaned",
        }
    }

    /// Parses a `status` column.
    pub fn parse(text: &str) -> Option<BlockStatus> {
        match text {
            "pending" => Some(BlockStatus::Pending),
            "confirmed" => Some(BlockStatus::Confirmed),
            "orphaned" => Some(BlockStatus::Orphaned),
            _ => None,
        }
    }
}

/// A block the pool found.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRecord {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// The coinbase value: subsidy plus fees.
    pub reward: Amount,
    /// The fees within `reward`.
    pub fees: Amount,
    /// Where it stands.
    pub status: BlockStatus,
    /// Its confirmations when last looked at.
    pub confirmations: i64,
    /// When it was found.
    pub found_at: SystemTime,
    /// The finder's payout address.
    pub finder_address: String,
    /// The finder's worker name.
    pub finder_worker: String,
    /// The network difficulty it met.
    pub network_difficulty: f64,
    /// Share difficulty submitted since the previous block, over the network
    /// difficulty (1.0 = as expected; luck is its inverse).
    pub effort: f64,
}

/// One worker's accepted shares since a time, for the dashboard and the API.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerActivity {
    /// The payout address.
    pub address: String,
    /// The worker name (empty when the miner gave none).
    pub worker: String,
    /// How many shares.
    pub shares: u64,
    /// Their sum of difficulty.
    pub difficulty: f64,
    /// When the newest was accepted.
    pub last_share: SystemTime,
}

/// One worker's part of the PPLNS window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowWorker {
    /// The payout address.
    pub address: String,
    /// The worker name.
    pub worker: String,
    /// Its difficulty inside the window (the boundary share cut).
    pub difficulty: f64,
}

/// A bucket of a difficulty time series: the shares accepted in
/// `[start, start + bucket)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// The bucket's start, a multiple of the bucket's length since the epoch.
    pub start: SystemTime,
    /// Their sum of difficulty.
    pub difficulty: f64,
}

/// One coinbase output paid to a miner, with its block.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutRecord {
    /// The block whose coinbase pays it.
    pub block_hash: BlockHash,
    /// That block's height.
    pub height: u32,
    /// When that block was found.
    pub found_at: SystemTime,
    /// Where that block stands.
    pub status: BlockStatus,
    /// The payout address.
    pub address: String,
    /// The amount.
    pub amount: Amount,
}

/// What an address was paid in coinbases, by the status of their blocks
/// (orphaned blocks paid nothing and are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidTotal {
    /// The payout address.
    pub address: String,
    /// In confirmed blocks: spendable.
    pub confirmed: Amount,
    /// In blocks not yet confirmed: immature.
    pub pending: Amount,
}

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database could not be reached or opened.
    #[error("cannot open the ledger at {location}")]
    Open {
        /// The file, or the server with its password hidden.
        location: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// The folder for the SQLite file could not be made.
    #[error("cannot create the ledger's folder {path}")]
    CreateDir {
        /// The folder.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot apply the ledger's migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("the ledger failed while {operation}")]
    Query {
        /// What it was doing.
        operation: &'static str,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value does not parse.
    #[error("the ledger holds a bad {column}: '{value}'")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// The value.
        value: String,
    },
    /// An amount is out of range.
    #[error("the amount {0} is out of range")]
    Amount(i64),
}

/// The ledger's operations, implemented over sqlx by [`Ledger`] and in
/// memory by [`MemoryStore`].
pub trait ShareStore: Send + Sync + 'static {
    /// Stores shares in one transaction: all or none. Workers' first and
    /// last seen times follow.
    fn record_shares(&self, shares: &[ShareRecord]) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The newest shares, newest first, until their difficulty adds up to
    /// `window` (the last one cut to fit), for PPLNS.
    fn window_shares(&self, window: f64) -> impl Future<Output = Result<Vec<WindowShare>, LedgerError>> + Send;

    /// The sum of share difficulty since `since`, of one address or of all.
    fn difficulty_since(
        &self,
        since: SystemTime,
        address: Option<&str>,
    ) -> impl Future<Output = Result<f64, LedgerError>> + Send;

    /// Every balance owed, by address.
    fn balances(&self) -> impl Future<Output = Result<Vec<(String, Amount)>, LedgerError>> + Send;

    /// Stores a found block, its coinbase's outputs, and the balances owed
    /// after it (replacing all balances), in one transaction.
    fn record_block(
        &self,
        block: &BlockRecord,
        payouts: &[(String, Amount)],
        owed: &[(String, Amount)],
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The blocks that are not yet confirmed (pending or orphaned) from
    /// `min_height` up, oldest first.
    fn unconfirmed_blocks(&self, min_height: u32)
        -> impl Future<Output = Result<Vec<BlockRecord>, LedgerError>> + Send;

    /// The newest blocks found, newest first.
    fn recent_blocks(&self, limit: u32) -> impl Future<Output = Result<Vec<BlockRecord>, LedgerError>> + Send;

    /// A block's payouts.
    fn payouts(&self, block: &BlockHash) -> impl Future<Output = Result<Vec<(String, Amount)>, LedgerError>> + Send;

    /// Sets a block's status and confirmations.
    fn set_block_status(
        &self,
        hash: &BlockHash,
        status: BlockStatus,
        confirmations: i64,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Every worker with shares since `since` (of one address, or of all),
    /// by address then worker name.
    fn worker_activity(
        &self,
        since: SystemTime,
        address: Option<&str>,
    ) -> impl Future<Output = Result<Vec<WorkerActivity>, LedgerError>> + Send;

    /// The sum of share difficulty since `since` in buckets of `bucket`
    /// (aligned on the epoch), oldest first; buckets without shares are
    /// absent. Narrowed to an address, and to one of its workers, if given.
    fn difficulty_series(
        &self,
        since: SystemTime,
        bucket: Duration,
        address: Option<&str>,
        worker: Option<&str>,
    ) -> impl Future<Output = Result<Vec<SeriesPoint>, LedgerError>> + Send;

    /// The PPLNS window as [`ShareStore::window_shares`] cuts it, summed by
    /// worker, by address then worker name.
    fn window_workers(&self, window: f64) -> impl Future<Output = Result<Vec<WindowWorker>, LedgerError>> + Send;

    /// The newest coinbase outputs paid (of one address, or of all), newest
    /// block first.
    fn recent_payouts(
        &self,
        address: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<PayoutRecord>, LedgerError>> + Send;

    /// What each address (or one) was paid, by address.
    fn paid_totals(&self, address: Option<&str>) -> impl Future<Output = Result<Vec<PaidTotal>, LedgerError>> + Send;
}

/// The hashrate, in hashes per second, that a sum of share difficulty over a
/// span of time shows (a difficulty-1 share takes 2^32 hashes on average).
pub fn hashrate(difficulty: f64, span: Duration) -> f64 {
    if span.is_zero() {
        return 0.0;
    }
    difficulty * 4_294_967_296.0 / span.as_secs_f64()
}

/// Milliseconds since the Unix epoch (0 before it), as stored.
pub(crate) fn to_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// The stored milliseconds back as a time.
pub(crate) fn from_millis(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// Cuts newest-first `(address, difficulty)` rows to the window.
pub(crate) fn cut_window(rows: impl IntoIterator<Item = (String, f64)>, window: f64) -> (Vec<WindowShare>, bool) {
    let mut left = window;
    let mut kept = Vec::new();
    for (address, difficulty) in rows {
        if left <= 0.0 {
            return (kept, true);
        }
        let difficulty = difficulty.min(left);
        left -= difficulty;
        kept.push(WindowShare { address, difficulty });
    }
    (kept, left <= 0.0)
}

/// Sums cut window rows `(address, worker, difficulty)` by worker, in
/// address then worker order.
pub(crate) fn sum_by_worker(rows: impl IntoIterator<Item = (String, String, f64)>) -> Vec<WindowWorker> {
    let mut sums: std::collections::BTreeMap<(String, String), f64> = std::collections::BTreeMap::new();
    for (address, worker, difficulty) in rows {
        *sums.entry((address, worker)).or_default() += difficulty;
    }
    sums.into_iter().map(|((address, worker), difficulty)| WindowWorker { address, worker, difficulty }).collect()
}

/// The start of the bucket of length `bucket_ms` holding `millis`.
pub(crate) fn bucket_start(millis: i64, bucket_ms: i64) -> i64 {
    millis.div_euclid(bucket_ms.max(1)) * bucket_ms.max(1)
}

/// [`cut_window`] for newest-first `(address, worker, difficulty)` rows.
pub(crate) fn cut_worker_window(
    rows: impl IntoIterator<Item = (String, String, f64)>,
    window: f64,
) -> (Vec<(String, String, f64)>, bool) {
    let mut left = window;
    let mut kept = Vec::new();
    for (address, worker, difficulty) in rows {
        if left <= 0.0 {
            return (kept, true);
        }
        let difficulty = difficulty.min(left);
        left -= difficulty;
        kept.push((address, worker, difficulty));
    }
    (kept, left <= 0.0)
}
