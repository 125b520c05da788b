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
//!
//! # Balances owed, and orphaned blocks
//!
//! Credits too small for a coinbase output are kept as balances owed and
//! paid by a later coinbase. Each block records, with itself and in the same
//! transaction, its change to each address's balance ([`BalanceChange`]: the
//! balance after it less the balance its job's payout started from), and
//! applies that change to the balances as they are then. It does not replace
//! them with those its job computed: between the job's build and the block,
//! another block may have been recorded or an orphaned block given its
//! changes back, and those moves stay. An orphaned block's coinbase
//! paid nobody, so orphaning it takes its changes back — the balances it paid
//! off are owed again, the credits it added are withdrawn — and a block that
//! comes back into the active chain applies them again. A flag on the block
//! says whether its changes are in the balances now; it flips in the same
//! transaction as the balances move, and only when it differs from what the
//! status wants, so a repeated call or one after a crash moves nothing twice.
//!
//! A balance never goes below zero: when taking a block's credit back would
//! do so, the credit was already paid by a later block (the miner was
//! overpaid, and the pool cannot take it back); the balance stops at zero and
//! a warning names the address and the amount. Likewise when a block is
//! recorded whose coinbase paid a balance that is no longer owed (two jobs
//! built on the same balances both paid it, or an orphaned block took the
//! credit back in the meantime). The block remembers what it
//! actually moved ([`BalanceChange::applied`]), so that applying it again
//! moves exactly that back.
//!
//! # The PPLNS window
//!
//! The ledger keeps running totals of share weight: the pool's, after each
//! batch the group commit stores (`share_batches`), and each worker's, after
//! each batch it has shares in (`batch_workers`) and now (`workers`). The
//! window is then found from one lookup for the batch where it starts, that
//! batch's shares, and one lookup per worker in it, never by reading the
//! shares inside it: a mainnet window (twice the network difficulty) holds
//! about a billion ASIC shares. The arithmetic, and why it gives exactly the
//! walk back share by share, is in `window.rs`. A batch's totals are written
//! in the transaction that stores it, after taking the pool total's row
//! first, so batches from several pool servers on one PostgreSQL database
//! are ordered and never lose an addition.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::{Amount, BlockHash, SignedAmount};

use crate::payout::ShareWeight;

mod memory;
mod recorder;
mod sql;
mod watcher;
mod window;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowWorker {
    /// The payout address.
    pub address: String,
    /// The worker name.
    pub worker: String,
    /// Its weight inside the window (the boundary share counted only for
    /// its part inside).
    pub weight: ShareWeight,
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

/// A block's change to one address's balance owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceChange {
    /// The payout address.
    pub address: String,
    /// The balance after the block less the balance its job's payout
    /// started from (never zero).
    pub delta: SignedAmount,
    /// What the block's last move of this balance actually moved: `delta`,
    /// unless the balance stopped at zero (see the module's "Balances owed").
    pub applied: SignedAmount,
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

    /// The sum of share difficulty since `since`, of one address or of all.
    /// Of all, the SQL ledger reads it from the running totals (the shares
    /// of the batches from the first one that ends at or after `since`, that
    /// batch counted from `since` on), which is the same while the batches
    /// are stored in the order their shares were accepted.
    fn difficulty_since(
        &self,
        since: SystemTime,
        address: Option<&str>,
    ) -> impl Future<Output = Result<f64, LedgerError>> + Send;

    /// Every balance owed, by address.
    fn balances(&self) -> impl Future<Output = Result<Vec<(String, Amount)>, LedgerError>> + Send;

    /// Stores a found block and its coinbase's outputs, and applies its
    /// `changes` to the balances owed, in one transaction. `changes` are its
    /// payout's ([`crate::payout::Payout::balance_changes`]): each address's
    /// balance after the block less the balance the payout started from.
    /// Each is added to the balance as it is now, which keeps whatever moved
    /// the balances since the job was built; a balance that would go below
    /// zero stops there, with a warning (see the module's "Balances owed").
    /// The changes are kept with the block (an address listed twice counts
    /// their sum). A block stored as already orphaned leaves the balances
    /// as they are: its changes are kept, not in effect.
    fn record_block(
        &self,
        block: &BlockRecord,
        payouts: &[(String, Amount)],
        changes: &[(String, SignedAmount)],
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The blocks that are not yet confirmed (pending or orphaned) from
    /// `min_height` up, oldest first.
    fn unconfirmed_blocks(&self, min_height: u32)
        -> impl Future<Output = Result<Vec<BlockRecord>, LedgerError>> + Send;

    /// The newest blocks found, newest first.
    fn recent_blocks(&self, limit: u32) -> impl Future<Output = Result<Vec<BlockRecord>, LedgerError>> + Send;

    /// A block's payouts.
    fn payouts(&self, block: &BlockHash) -> impl Future<Output = Result<Vec<(String, Amount)>, LedgerError>> + Send;

    /// Sets a block's status and confirmations. Into `Orphaned`, the block's
    /// balance changes are taken back; out of it, applied again: in the same
    /// transaction as the status, once only (a repeated call is a no-op).
    /// Callers moving several blocks should revert newest first and apply
    /// oldest first, as [`BlockWatcher`] does.
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

    /// The PPLNS window: the newest shares until their weight adds up to
    /// `window` (the one that crosses its edge counted only for its part
    /// inside), summed by worker, by address then worker name. Workers
    /// without weight in it are left out. (See the module's "The PPLNS
    /// window" for how it is found without reading every share.)
    fn window_workers(
        &self,
        window: ShareWeight,
    ) -> impl Future<Output = Result<Vec<WindowWorker>, LedgerError>> + Send;

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

/// A block's changes to the balances owed as stored: in satoshis, summed by
/// address, zeros left out, by address.
pub(crate) fn merge_changes(changes: &[(String, SignedAmount)]) -> Result<Vec<(String, i64)>, LedgerError> {
    let mut merged: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (address, delta) in changes {
        let entry = merged.entry(address.as_str()).or_default();
        *entry = entry.checked_add(delta.to_sat()).ok_or(LedgerError::Amount(delta.to_sat()))?;
    }
    Ok(merged.into_iter().filter(|(_, delta)| *delta != 0).map(|(a, d)| (a.to_owned(), d)).collect())
}

/// Which way a block's balance changes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BalanceMove {
    /// The block left the active chain: take its changes back.
    Revert,
    /// The block is back in the active chain: apply them again.
    Reapply,
}

impl BalanceMove {
    /// The move that takes a block from its changes being in effect or not
    /// to what `status` wants; `None` when they already agree.
    pub(crate) fn between(in_effect: bool, status: BlockStatus) -> Option<BalanceMove> {
        match (in_effect, status == BlockStatus::Orphaned) {
            (true, true) => Some(BalanceMove::Revert),
            (false, false) => Some(BalanceMove::Reapply),
            _ => None,
        }
    }
}

/// One balance after a block's change moved it ([`move_balance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MovedBalance {
    /// The balance now, in satoshis (zero: no row).
    pub balance: i64,
    /// The change's new `applied`: what this move actually moved, as a
    /// change of the block (so that the opposite move moves it back).
    pub applied: i64,
    /// How far below zero the balance would have gone: what the miner was
    /// paid beyond what it is owed.
    pub overpaid: i64,
}

/// Moves a balance of `current` satoshis by a block's change that last
/// moved it by `applied`: back (`Revert`, subtract) or again (`Reapply`,
/// add), stopping at zero.
pub(crate) fn move_balance(current: i64, applied: i64, direction: BalanceMove) -> Result<MovedBalance, LedgerError> {
    let target = match direction {
        BalanceMove::Revert => current.checked_sub(applied),
        BalanceMove::Reapply => current.checked_add(applied),
    }
    .ok_or(LedgerError::Amount(applied))?;
    let balance = target.max(0);
    let applied = match direction {
        BalanceMove::Revert => current - balance,
        BalanceMove::Reapply => balance - current,
    };
    Ok(MovedBalance { balance, applied, overpaid: balance - target })
}

/// Logs what moving `block`'s balance changes did: a warning for every
/// balance that stopped at zero.
pub(crate) fn log_moved(block: &BlockHash, direction: BalanceMove, moved: &[(String, MovedBalance)]) {
    for (address, m) in moved.iter().filter(|(_, m)| m.overpaid > 0) {
        let overpaid = Amount::from_sat(m.overpaid.unsigned_abs());
        match direction {
            BalanceMove::Revert => tracing::warn!(
                %block, address = %address, overpaid_sats = m.overpaid,
                "an orphaned block's credit to {address} was already paid by a later block: \
                 {overpaid} overpaid; the balance stops at zero"
            ),
            BalanceMove::Reapply => tracing::warn!(
                %block, address = %address, overpaid_sats = m.overpaid,
                "a block back in the active chain paid {address} a balance that another block also paid: \
                 {overpaid} overpaid; the balance stops at zero"
            ),
        }
    }
    let verb = match direction {
        BalanceMove::Revert => "orphaned block: its balance changes taken back",
        BalanceMove::Reapply => "block back in the active chain: its balance changes applied again",
    };
    tracing::info!(%block, balances = moved.len(), "{verb}");
}

/// Logs what recording `block` did to the balances: a warning for every
/// balance that stopped at zero (its coinbase paid more than is owed now).
pub(crate) fn log_recorded(block: &BlockHash, moved: &[(String, MovedBalance)]) {
    for (address, m) in moved.iter().filter(|(_, m)| m.overpaid > 0) {
        let overpaid = Amount::from_sat(m.overpaid.unsigned_abs());
        tracing::warn!(
            %block, address = %address, overpaid_sats = m.overpaid,
            "a new block paid {address} a balance no longer owed (another block paid it, or an orphaned \
             block took the credit back): {overpaid} overpaid; the balance stops at zero"
        );
    }
}

/// The start of the bucket of length `bucket_ms` holding `millis`.
pub(crate) fn bucket_start(millis: i64, bucket_ms: i64) -> i64 {
    millis.div_euclid(bucket_ms.max(1)) * bucket_ms.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn changes_merge_by_address() {
        let sat = SignedAmount::from_sat;
        let changes = [
            ("b".to_owned(), sat(30)),
            ("a".to_owned(), sat(-100)),
            ("b".to_owned(), sat(5)),
            ("gone".to_owned(), sat(7)),
            ("gone".to_owned(), sat(-7)),
            ("zero".to_owned(), sat(0)),
        ];
        assert_eq!(merge_changes(&changes).expect("in range"), [("a".to_owned(), -100), ("b".to_owned(), 35)]);
        assert!(merge_changes(&[("a".to_owned(), sat(i64::MAX)), ("a".to_owned(), sat(1))]).is_err());
    }

    /// Table: name, balance, the change's `applied`, direction, then the
    /// balance, `applied` and overpaid amount after the move.
    #[test]
    fn moves_stop_at_zero_and_remember_what_moved() {
        use BalanceMove::{Reapply, Revert};
        /// Balance, `applied` and overpaid after the move.
        type After = (i64, i64, i64);
        let cases: &[(&str, i64, i64, BalanceMove, After)] = &[
            ("revert a credit", 500, 200, Revert, (300, 200, 0)),
            ("revert a credit already paid", 0, 200, Revert, (0, 0, 200)),
            ("revert a credit partly paid", 50, 200, Revert, (0, 50, 150)),
            ("revert a payment", 0, -300, Revert, (300, -300, 0)),
            ("reapply a credit", 300, 200, Reapply, (500, 200, 0)),
            ("reapply a payment", 300, -300, Reapply, (0, -300, 0)),
            ("reapply a payment another block made", 0, -300, Reapply, (0, 0, 300)),
            ("reapply what a clamp left", 0, 0, Reapply, (0, 0, 0)),
        ];
        for &(name, current, applied, direction, (balance, moved, overpaid)) in cases {
            let m = move_balance(current, applied, direction).expect(name);
            assert_eq!((m.balance, m.applied, m.overpaid), (balance, moved, overpaid), "{name}");
        }
        assert!(move_balance(i64::MAX, -1, Revert).is_err(), "overflow is an error, not a wrap");
    }

    #[test]
    fn a_change_applies_for_the_orphan_status_only() {
        assert_eq!(BalanceMove::between(true, BlockStatus::Orphaned), Some(BalanceMove::Revert));
        assert_eq!(BalanceMove::between(false, BlockStatus::Pending), Some(BalanceMove::Reapply));
        assert_eq!(BalanceMove::between(false, BlockStatus::Confirmed), Some(BalanceMove::Reapply));
        assert_eq!(BalanceMove::between(true, BlockStatus::Pending), None);
        assert_eq!(BalanceMove::between(false, BlockStatus::Orphaned), None);
    }

    proptest! {
        /// Reverting then applying again (or the other way round) gives the
        /// balance back exactly, clamped or not.
        #[test]
        fn opposite_moves_are_inverses(current in 0i64..=2_100_000_000_000_000, applied in -2_100_000_000_000_000i64..=2_100_000_000_000_000) {
            for (first, second) in [(BalanceMove::Revert, BalanceMove::Reapply), (BalanceMove::Reapply, BalanceMove::Revert)] {
                let one = move_balance(current, applied, first).unwrap();
                prop_assert!(one.balance >= 0);
                let two = move_balance(one.balance, one.applied, second).unwrap();
                prop_assert_eq!(two.balance, current);
                prop_assert_eq!(two.overpaid, 0);
            }
        }
    }
}
