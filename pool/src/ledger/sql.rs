//! [`ShareStore`] over sqlx: SQLite (a local file, the default) or
//! PostgreSQL. The SQL is shared where the two agree (`$n` parameters work in
//! both); each backend has its own migrations, embedded at build time.
//!
//! # Durability
//!
//! A share answered `true` must survive `kill -9` of the pool, and a block's
//! payouts a power cut. SQLite runs in WAL mode with `synchronous = FULL`:
//! each commit fsyncs the write-ahead log before it returns. (`NORMAL` with
//! WAL would survive a killed process, since the log reaches the kernel before
//! the commit returns, but may lose the last commits on power loss or an OS
//! crash.) The cost of that fsync is paid once per batch, not per share,
//! thanks to the group commit in [`super::ShareRecorder`]. PostgreSQL commits
//! are durable with its defaults (`synchronous_commit = on`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use bitcoin::{Amount, BlockHash, SignedAmount};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::QueryBuilder;

use super::window::{
    inside_boundary_batch, join, share_weight, split, window_parts, BatchWeights, WorkerTotals, LO_BASE,
};
use super::{
    bucket_start, from_millis, log_moved, log_recorded, merge_changes, move_balance, to_millis, BalanceChange,
    BalanceMove, BlockRecord, BlockStatus, LedgerError, MovedBalance, PaidTotal, PayoutRecord, SeriesPoint,
    ShareRecord, ShareStore, WindowWorker, WorkerActivity,
};
use crate::config::Database;
use crate::payout::ShareWeight;

/// The SQLite schema, in order; see `migrations/README.md`.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "ledger", include_str!("../../../migrations/sqlite/0001_ledger.sql")),
    (2, "balance changes", include_str!("../../../migrations/sqlite/0002_balance_changes.sql")),
    (3, "running totals", include_str!("../../../migrations/sqlite/0003_running_totals.sql")),
];

/// The PostgreSQL schema, in order.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "ledger", include_str!("../../../migrations/postgres/0001_ledger.sql")),
    (2, "balance changes", include_str!("../../../migrations/postgres/0002_balance_changes.sql")),
    (3, "running totals", include_str!("../../../migrations/postgres/0003_running_totals.sql")),
];

/// The PostgreSQL advisory lock that the transactions writing balances
/// take first (`pg_advisory_xact_lock`): pool servers sharing one database
/// then never interleave a block's record with another block's revert.
/// (SQLite needs none: those transactions write first, which takes its one
/// write lock before they read.) The value is "satpool1" in ASCII.
const BALANCES_LOCK: i64 = 0x7361_7470_6f6f_6c31;

/// Rows per multi-row `INSERT` (at most 7 parameters each: well under
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement).
const ROWS_PER_INSERT: usize = 500;

/// Shares per batch when [`Ledger::fill_running_totals`] puts older shares
/// into batches.
const FILL_BATCH: i64 = 1_000;

/// Migrations compiled into the binary (sqlx's `migrate!` without the
/// proc-macro and its second build of both drivers).
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> futures_core_compat::BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// `futures_core::future::BoxFuture`, spelled out so as not to depend on
/// `futures-core` for one alias.
mod futures_core_compat {
    use std::future::Future;
    use std::pin::Pin;
    pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
}

/// How to open the ledger.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// PostgreSQL only: keep the tables in this schema (created if absent),
    /// e.g. one per test run or per pool instance.
    pub postgres_schema: Option<String>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions { max_connections: 8, postgres_schema: None }
    }
}

impl LedgerOptions {
    /// The defaults, with the connections from the configuration
    /// (`limits.db_connections`).
    pub fn from_limits(limits: &crate::config::Limits) -> LedgerOptions {
        LedgerOptions { max_connections: limits.db_connections, ..LedgerOptions::default() }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The sqlx ledger. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Ledger {
    backend: Backend,
}

/// Runs `$body` with `$pool` bound to the backend's pool and `$db` to its
/// sqlx database type: one text of code, type-checked for each backend.
macro_rules! with_pool {
    ($ledger:expr, $pool:ident, $db:ident => $body:expr) => {
        match &$ledger.backend {
            Backend::Sqlite($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
            Backend::Postgres($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

/// Every balance owed, by address, as transaction `$tx` sees it.
macro_rules! current_balances {
    ($tx:ident) => {
        sqlx::query_as::<_, (String, i64)>("SELECT address, amount FROM balances")
            .fetch_all(&mut *$tx)
            .await
            .map_err(query_error("reading balances"))?
            .into_iter()
            .collect::<BTreeMap<String, i64>>()
    };
}

/// Sets `$address`'s balance owed to `$balance` sats in transaction `$tx`
/// (a row at zero is deleted: the table holds only what is owed).
macro_rules! set_balance {
    ($tx:ident, $address:expr, $balance:expr, $now:expr) => {
        if $balance > 0 {
            sqlx::query(
                "INSERT INTO balances (address, amount, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (address) DO UPDATE SET amount = excluded.amount, updated_at = excluded.updated_at",
            )
            .bind($address)
            .bind($balance)
            .bind($now)
            .execute(&mut *$tx)
            .await
            .map_err(query_error("updating a balance"))?;
        } else {
            sqlx::query("DELETE FROM balances WHERE address = $1")
                .bind($address)
                .execute(&mut *$tx)
                .await
                .map_err(query_error("clearing a balance"))?;
        }
    };
}

/// Adds `$weight` (u128) to the pool's running total in transaction `$tx`
/// and evaluates to the total after it. The first write of a share batch:
/// it takes the total's row lock, which orders batches.
macro_rules! add_to_pool_total {
    ($tx:ident, $weight:expr) => {{
        let (add_hi, add_lo) = split($weight)?;
        let (hi, lo): (i64, i64) = sqlx::query_as(&format!(
            "UPDATE pool_totals SET total_lo = (total_lo + $1) % {LO_BASE}, \
             total_hi = total_hi + $2 + (total_lo + $1) / {LO_BASE} WHERE id = 1 RETURNING total_hi, total_lo"
        ))
        .bind(add_lo)
        .bind(add_hi)
        .fetch_one(&mut *$tx)
        .await
        .map_err(query_error("adding to the pool's share total"))?;
        join(hi, lo, "pool_totals.total")?
    }};
}

/// Stores a batch's running totals in transaction `$tx` (database type
/// `$db`): its `share_batches` row (shares `$first_id..=$last_id`, the
/// pool's total `$pool_after` after it), its workers' new totals and last
/// batch (inserting workers first seen), and their `batch_workers` rows.
/// `$batch` is a [`BatchRows`].
macro_rules! store_batch {
    ($tx:ident, $db:ident, $batch:expr, $pool_after:expr, $first_id:expr, $last_id:expr) => {{
        let batch = &$batch;
        let (hi, lo) = split($pool_after)?;
        let (batch_id,): (i64,) = sqlx::query_as(
            "INSERT INTO share_batches (first_share, last_share, first_time, last_time, total_hi, total_lo) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind($first_id)
        .bind($last_id)
        .bind(batch.first_time)
        .bind(batch.last_time)
        .bind(hi)
        .bind(lo)
        .fetch_one(&mut *$tx)
        .await
        .map_err(query_error("recording a share batch"))?;
        let mut rows = Vec::with_capacity(batch.seen.len());
        for (key, (first, last)) in &batch.seen {
            rows.push((*key, *first, *last, split(batch.weights.by_worker[key])?));
        }
        let mut totals: Vec<(i64, i64, i64)> = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut upsert = QueryBuilder::<$db>::new(
                "INSERT INTO workers (address, name, first_seen, last_seen, total_hi, total_lo, last_batch) ",
            );
            upsert.push_values(chunk, |mut row, ((address, name), first, last, total)| {
                row.push_bind(*address)
                    .push_bind(*name)
                    .push_bind(*first)
                    .push_bind(*last)
                    .push_bind(total.0)
                    .push_bind(total.1)
                    .push_bind(batch_id);
            });
            upsert.push(format!(
                " ON CONFLICT (address, name) DO UPDATE SET \
                 last_seen = CASE WHEN excluded.last_seen > workers.last_seen \
                 THEN excluded.last_seen ELSE workers.last_seen END, \
                 total_lo = (workers.total_lo + excluded.total_lo) % {LO_BASE}, \
                 total_hi = workers.total_hi + excluded.total_hi + (workers.total_lo + excluded.total_lo) / {LO_BASE}, \
                 last_batch = excluded.last_batch \
                 RETURNING id, total_hi, total_lo"
            ));
            let returned: Vec<(i64, i64, i64)> =
                upsert.build_query_as().fetch_all(&mut *$tx).await.map_err(query_error("updating workers"))?;
            totals.extend(returned);
        }
        for chunk in totals.chunks(ROWS_PER_INSERT) {
            let mut insert =
                QueryBuilder::<$db>::new("INSERT INTO batch_workers (worker_id, batch_id, total_hi, total_lo) ");
            insert.push_values(chunk, |mut row, (worker_id, hi, lo)| {
                row.push_bind(*worker_id).push_bind(batch_id).push_bind(*hi).push_bind(*lo);
            });
            insert.build().execute(&mut *$tx).await.map_err(query_error("recording workers' totals"))?;
        }
    }};
}

/// Begins a read-only transaction on `$pool` that sees one snapshot
/// (PostgreSQL: REPEATABLE READ; SQLite's read transaction is one), reads
/// the pool's running total in it, and evaluates to `(transaction, total)`.
macro_rules! snapshot_with_pool_total {
    ($ledger:expr, $pool:ident, $operation:literal) => {{
        let mut tx = $pool.begin().await.map_err(query_error($operation))?;
        if $ledger.is_postgres() {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(query_error($operation))?;
        }
        let (hi, lo): (i64, i64) = sqlx::query_as("SELECT total_hi, total_lo FROM pool_totals WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(query_error($operation))?;
        (tx, join(hi, lo, "pool_totals.total")?)
    }};
}

/// What a batch of shares adds to the running totals, gathered before it is
/// stored.
struct BatchRows<'a> {
    /// Their weights, in all and by worker.
    weights: BatchWeights<'a>,
    /// `(address, worker)` → first and last share times (Unix ms): one row
    /// each, since PostgreSQL refuses an upsert that touches a row twice.
    seen: BTreeMap<(&'a str, &'a str), (i64, i64)>,
    /// The batch's first and last share times.
    first_time: i64,
    last_time: i64,
}

impl<'a> BatchRows<'a> {
    /// From `(address, worker, time, difficulty)` shares in batch order.
    fn new(shares: impl Iterator<Item = (&'a str, &'a str, SystemTime, f64)> + Clone) -> BatchRows<'a> {
        let weights = BatchWeights::new(shares.clone().map(|(a, w, _, d)| (a, w, d)));
        let mut seen: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        let (mut first_time, mut last_time) = (i64::MAX, i64::MIN);
        for (address, worker, time, _) in shares {
            let t = to_millis(time);
            let entry = seen.entry((address, worker)).or_insert((t, t));
            entry.0 = entry.0.min(t);
            entry.1 = entry.1.max(t);
            first_time = first_time.min(t);
            last_time = last_time.max(t);
        }
        BatchRows { weights, seen, first_time, last_time }
    }
}

fn query_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Query { operation, source }
}

fn sats(amount: Amount) -> Result<i64, LedgerError> {
    i64::try_from(amount.to_sat()).map_err(|_| LedgerError::Amount(i64::MAX))
}

fn amount(sats: i64) -> Result<Amount, LedgerError> {
    u64::try_from(sats).map(Amount::from_sat).map_err(|_| LedgerError::Amount(sats))
}

fn block_hash(text: &str) -> Result<BlockHash, LedgerError> {
    BlockHash::from_str(text).map_err(|_| LedgerError::Corrupt { column: "blocks.hash", value: text.to_owned() })
}

/// A worker of the PPLNS window: address, name, its total, and its total
/// after the window's boundary batch (none when it had no batch by then).
type WindowWorkerRow = (String, String, i64, i64, Option<i64>, Option<i64>);

/// `blocks`' columns in the order [`BlockRow`] holds them.
const BLOCK_COLUMNS: &str = "hash, height, reward, fees, status, confirmations, found_at, finder_address, \
                             finder_worker, network_difficulty, effort";

type BlockRow = (String, i64, i64, i64, String, i64, i64, String, String, f64, f64);

fn block_from_row(row: BlockRow) -> Result<BlockRecord, LedgerError> {
    let (hash, height, reward, fees, status, confirmations, found_at, finder_address, finder_worker, nd, effort) = row;
    Ok(BlockRecord {
        hash: block_hash(&hash)?,
        height: u32::try_from(height)
            .map_err(|_| LedgerError::Corrupt { column: "blocks.height", value: height.to_string() })?,
        reward: amount(reward)?,
        fees: amount(fees)?,
        status: BlockStatus::parse(&status)
            .ok_or_else(|| LedgerError::Corrupt { column: "blocks.status", value: status.clone() })?,
        confirmations,
        found_at: from_millis(found_at),
        finder_address,
        finder_worker,
        network_difficulty: nd,
        effort,
    })
}

impl Ledger {
    /// Opens (creating if needed) the ledger and brings its schema up to date.
    pub async fn open(database: &Database, options: &LedgerOptions) -> Result<Ledger, LedgerError> {
        match database {
            Database::Sqlite(path) => Self::open_sqlite(path, options).await,
            Database::Postgres(url) => Self::open_postgres(url, options).await,
        }
    }

    async fn open_sqlite(path: &Path, options: &LedgerOptions) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::CreateDir { path: dir.to_owned(), source })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|source| LedgerError::Open { location: path.display().to_string(), source })?;
        let migrator = Migrator::new(Embedded(SQLITE_MIGRATIONS)).await.map_err(LedgerError::Migrate)?;
        migrator.run(&pool).await.map_err(LedgerError::Migrate)?;
        let ledger = Ledger { backend: Backend::Sqlite(pool) };
        ledger.fill_running_totals().await?;
        Ok(ledger)
    }

    async fn open_postgres(url: &str, options: &LedgerOptions) -> Result<Ledger, LedgerError> {
        let location = Database::Postgres(url.to_owned());
        let location = format!("{location:?}");
        let open_error = |source| LedgerError::Open { location: location.clone(), source };
        let mut connect = PgConnectOptions::from_str(url).map_err(open_error)?;
        if let Some(schema) = &options.postgres_schema {
            // Create the schema first, through a connection of its own.
            let admin =
                PgPoolOptions::new().max_connections(1).connect_with(connect.clone()).await.map_err(open_error)?;
            let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
                .execute(&admin)
                .await
                .map_err(query_error("creating the schema"))?;
            admin.close().await;
            connect = connect.options([("search_path", quoted.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        let migrator = Migrator::new(Embedded(POSTGRES_MIGRATIONS)).await.map_err(LedgerError::Migrate)?;
        migrator.run(&pool).await.map_err(LedgerError::Migrate)?;
        let ledger = Ledger { backend: Backend::Postgres(pool) };
        ledger.fill_running_totals().await?;
        Ok(ledger)
    }

    /// Puts shares recorded before migration 3 (which added the running
    /// totals) into batches of [`FILL_BATCH`], so that they count in the
    /// PPLNS window: the batches' totals, each worker's, and the pool's.
    /// Runs at open, before anything is recorded, and finds nothing to do
    /// but once; a pool server opening the same database meanwhile waits on
    /// the pool total's row.
    async fn fill_running_totals(&self) -> Result<(), LedgerError> {
        with_pool!(self, pool, Db => {
            let mut tx = pool.begin().await.map_err(query_error("beginning to fill in share totals"))?;
            sqlx::query("UPDATE pool_totals SET total_hi = total_hi WHERE id = 1")
                .execute(&mut *tx)
                .await
                .map_err(query_error("locking the pool's share total"))?;
            let (mut batched,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(last_share), 0) FROM share_batches")
                .fetch_one(&mut *tx)
                .await
                .map_err(query_error("reading share batches"))?;
            let mut filled = 0usize;
            loop {
                let page: Vec<(i64, i64, String, String, f64)> = sqlx::query_as(
                    "SELECT id, time, address, worker, difficulty FROM shares WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(batched)
                .bind(FILL_BATCH)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("reading shares to total"))?;
                let (Some(first), Some(last)) = (page.first(), page.last()) else { break };
                let (first_id, last_id) = (first.0, last.0);
                let batch = BatchRows::new(
                    page.iter().map(|(_, t, a, w, d)| (a.as_str(), w.as_str(), from_millis(*t), *d)),
                );
                let pool_after = add_to_pool_total!(tx, batch.weights.total);
                store_batch!(tx, Db, batch, pool_after, first_id, last_id);
                batched = last_id;
                filled += page.len();
            }
            tx.commit().await.map_err(query_error("committing share totals"))?;
            if filled > 0 {
                tracing::info!(shares = filled, "running totals filled in for shares recorded before this version");
            }
            Ok(())
        })
    }

    /// The pool's share difficulty since `since` (Unix ms) from the running
    /// totals: the total now, less the total after the first batch whose
    /// last share is at or after `since`, plus that batch's shares from
    /// `since` on. A few index lookups and one batch of shares, where a sum
    /// would read every share of the span (a round's effort spans days on
    /// mainnet).
    async fn pool_difficulty_since(&self, since: i64) -> Result<f64, LedgerError> {
        let (now, batch, shares) = with_pool!(self, pool, _Db => {
            let (mut tx, now) = snapshot_with_pool_total!(self, pool, "reading share totals");
            let batch: Option<(i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT first_share, last_share, total_hi, total_lo FROM share_batches WHERE last_time >= $1 \
                 ORDER BY last_time, id LIMIT 1",
            )
            .bind(since)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_error("reading share totals"))?;
            let shares: Vec<(i64, f64)> = match batch {
                Some((first, last, _, _)) => sqlx::query_as(
                    "SELECT time, difficulty FROM shares WHERE id >= $1 AND id <= $2",
                )
                .bind(first)
                .bind(last)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("reading share totals"))?,
                None => Vec::new(),
            };
            tx.commit().await.map_err(query_error("reading share totals"))?;
            (now, batch, shares)
        });
        let Some((_, _, hi, lo)) = batch else { return Ok(0.0) };
        let after_batch = join(hi, lo, "share_batches.total")?;
        let from_since: u128 = shares.iter().filter(|(t, _)| *t >= since).map(|(_, d)| share_weight(*d)).sum();
        Ok(ShareWeight(now.saturating_sub(after_batch) + from_since).difficulty())
    }

    /// Which backend: `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// SQLite's `journal_mode` and `synchronous` as in force (for checks).
    pub async fn sqlite_durability(&self) -> Result<Option<(String, i64)>, LedgerError> {
        let Backend::Sqlite(pool) = &self.backend else { return Ok(None) };
        let mut conn = pool.acquire().await.map_err(query_error("acquiring a connection"))?;
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .map_err(query_error("reading pragmas"))?;
        let (sync,): (i64,) =
            sqlx::query_as("PRAGMA synchronous").fetch_one(&mut *conn).await.map_err(query_error("reading pragmas"))?;
        Ok(Some((mode, sync)))
    }

    /// A block's changes to the balances owed, by address (for checks and
    /// for operators reconciling an orphaned block).
    pub async fn balance_changes(&self, block: &BlockHash) -> Result<Vec<BalanceChange>, LedgerError> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, pool, _Db => {
            sqlx::query_as(
                "SELECT address, delta, applied FROM balance_changes WHERE block_hash = $1 ORDER BY address",
            )
            .bind(block.to_string())
            .fetch_all(pool)
            .await
            .map_err(query_error("reading balance changes"))?
        });
        Ok(rows
            .into_iter()
            .map(|(address, delta, applied)| BalanceChange {
                address,
                delta: SignedAmount::from_sat(delta),
                applied: SignedAmount::from_sat(applied),
            })
            .collect())
    }

    fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Closes every connection (SQLite checkpoints its log).
    pub async fn close(&self) {
        with_pool!(self, pool, _Db => pool.close().await)
    }
}

impl ShareStore for Ledger {
    async fn record_shares(&self, shares: &[ShareRecord]) -> Result<(), LedgerError> {
        if shares.is_empty() {
            return Ok(());
        }
        let batch =
            BatchRows::new(shares.iter().map(|s| (s.address.as_str(), s.worker.as_str(), s.time, s.difficulty)));
        with_pool!(self, pool, Db => {
            let mut tx = pool.begin().await.map_err(query_error("beginning a share batch"))?;
            // The pool's total first: its row lock (PostgreSQL) or the write
            // lock (SQLite) orders this batch after any other being stored.
            let pool_after = add_to_pool_total!(tx, batch.weights.total);
            let (mut first_id, mut last_id) = (i64::MAX, i64::MIN);
            for chunk in shares.chunks(ROWS_PER_INSERT) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO shares (time, address, worker, difficulty, height, job_id, block_hash) ",
                );
                insert.push_values(chunk, |mut row, share| {
                    row.push_bind(to_millis(share.time))
                        .push_bind(share.address.as_str())
                        .push_bind(share.worker.as_str())
                        .push_bind(share.difficulty)
                        .push_bind(i64::from(share.height))
                        .push_bind(share.job_id.as_str())
                        .push_bind(share.block_hash.map(|h| h.to_string()));
                });
                insert.push(" RETURNING id");
                let ids: Vec<(i64,)> =
                    insert.build_query_as().fetch_all(&mut *tx).await.map_err(query_error("inserting shares"))?;
                for (id,) in ids {
                    first_id = first_id.min(id);
                    last_id = last_id.max(id);
                }
            }
            store_batch!(tx, Db, batch, pool_after, first_id, last_id);
            tx.commit().await.map_err(query_error("committing a share batch"))
        })
    }

    async fn difficulty_since(&self, since: SystemTime, address: Option<&str>) -> Result<f64, LedgerError> {
        let since = to_millis(since);
        let Some(address) = address else { return self.pool_difficulty_since(since).await };
        let (total,): (f64,) = with_pool!(self, pool, _Db => {
            sqlx::query_as("SELECT COALESCE(SUM(difficulty), 0.0) FROM shares WHERE time >= $1 AND address = $2")
                .bind(since)
                .bind(address)
                .fetch_one(pool)
                .await
        })
        .map_err(query_error("summing share difficulty"))?;
        Ok(total)
    }

    async fn balances(&self) -> Result<Vec<(String, Amount)>, LedgerError> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool, _Db => {
            sqlx::query_as("SELECT address, amount FROM balances ORDER BY address")
                .fetch_all(pool)
                .await
                .map_err(query_error("reading balances"))?
        });
        rows.into_iter().map(|(address, sats)| Ok((address, amount(sats)?))).collect()
    }

    async fn record_block(
        &self,
        block: &BlockRecord,
        payouts: &[(String, Amount)],
        changes: &[(String, SignedAmount)],
    ) -> Result<(), LedgerError> {
        let payouts = payouts.iter().map(|(a, v)| Ok((a.as_str(), sats(*v)?))).collect::<Result<Vec<_>, _>>()?;
        let changes = merge_changes(changes)?;
        let now = to_millis(SystemTime::now());
        let reward = sats(block.reward)?;
        let fees = sats(block.fees)?;
        let in_effect = block.status != BlockStatus::Orphaned;
        let hash = block.hash.to_string();
        let postgres = self.is_postgres();
        let moved: Vec<(String, MovedBalance)> = with_pool!(self, pool, Db => {
            let mut tx = pool.begin().await.map_err(query_error("beginning a block record"))?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(BALANCES_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("locking the balances"))?;
            }
            // First a write: on SQLite it takes the write lock before the balances are read.
            sqlx::query(&format!(
                "INSERT INTO blocks ({BLOCK_COLUMNS}, balances_in_effect) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(hash.as_str())
            .bind(i64::from(block.height))
            .bind(reward)
            .bind(fees)
            .bind(block.status.as_str())
            .bind(block.confirmations)
            .bind(to_millis(block.found_at))
            .bind(block.finder_address.as_str())
            .bind(block.finder_worker.as_str())
            .bind(block.network_difficulty)
            .bind(block.effort)
            .bind(in_effect)
            .execute(&mut *tx)
            .await
            .map_err(query_error("inserting a block"))?;
            for (address, value) in &payouts {
                sqlx::query("INSERT INTO payouts (block_hash, address, amount) VALUES ($1, $2, $3)")
                    .bind(hash.as_str())
                    .bind(*address)
                    .bind(*value)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("inserting payouts"))?;
            }
            // Each change on top of the balance as it is now (not as it was
            // when the job was built), stopping at zero.
            let balances = current_balances!(tx);
            let mut moved = Vec::with_capacity(changes.len());
            let mut rows = Vec::with_capacity(changes.len());
            for (address, delta) in &changes {
                if !in_effect {
                    rows.push((address.as_str(), *delta, *delta));
                    continue;
                }
                let current = balances.get(address).copied().unwrap_or(0);
                let m = move_balance(current, *delta, BalanceMove::Reapply)?;
                set_balance!(tx, address.as_str(), m.balance, now);
                rows.push((address.as_str(), *delta, m.applied));
                moved.push((address.clone(), m));
            }
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut insert =
                    QueryBuilder::<Db>::new("INSERT INTO balance_changes (block_hash, address, delta, applied) ");
                insert.push_values(chunk, |mut row, (address, delta, applied)| {
                    row.push_bind(hash.as_str()).push_bind(*address).push_bind(*delta).push_bind(*applied);
                });
                insert.build().execute(&mut *tx).await.map_err(query_error("inserting balance changes"))?;
            }
            tx.commit().await.map_err(query_error("committing a block record"))?;
            moved
        });
        log_recorded(&block.hash, &moved);
        Ok(())
    }

    async fn unconfirmed_blocks(&self, min_height: u32) -> Result<Vec<BlockRecord>, LedgerError> {
        let rows: Vec<BlockRow> = with_pool!(self, pool, _Db => {
            sqlx::query_as(&format!(
                "SELECT {BLOCK_COLUMNS} FROM blocks WHERE status <> 'confirmed' AND height >= $1 ORDER BY height"
            ))
            .bind(i64::from(min_height))
            .fetch_all(pool)
            .await
            .map_err(query_error("reading unconfirmed blocks"))?
        });
        rows.into_iter().map(block_from_row).collect()
    }

    async fn recent_blocks(&self, limit: u32) -> Result<Vec<BlockRecord>, LedgerError> {
        let rows: Vec<BlockRow> = with_pool!(self, pool, _Db => {
            sqlx::query_as(&format!("SELECT {BLOCK_COLUMNS} FROM blocks ORDER BY found_at DESC, height DESC LIMIT $1"))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(query_error("reading recent blocks"))?
        });
        rows.into_iter().map(block_from_row).collect()
    }

    async fn payouts(&self, block: &BlockHash) -> Result<Vec<(String, Amount)>, LedgerError> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool, _Db => {
            sqlx::query_as("SELECT address, amount FROM payouts WHERE block_hash = $1 ORDER BY amount DESC, address")
                .bind(block.to_string())
                .fetch_all(pool)
                .await
                .map_err(query_error("reading payouts"))?
        });
        rows.into_iter().map(|(address, sats)| Ok((address, amount(sats)?))).collect()
    }

    async fn set_block_status(
        &self,
        hash: &BlockHash,
        status: BlockStatus,
        confirmations: i64,
    ) -> Result<(), LedgerError> {
        let in_effect = status != BlockStatus::Orphaned;
        let direction = if in_effect { BalanceMove::Reapply } else { BalanceMove::Revert };
        let hash_text = hash.to_string();
        let now = to_millis(SystemTime::now());
        let postgres = self.is_postgres();
        let moved: Option<Vec<(String, MovedBalance)>> = with_pool!(self, pool, _Db => {
            let mut tx = pool.begin().await.map_err(query_error("beginning a block status change"))?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(BALANCES_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("locking the balances"))?;
            }
            // The flag flips here or not at all: the balances below move
            // only in the one transaction that flipped it. (First a write:
            // on SQLite it takes the write lock before anything is read.)
            let flipped = sqlx::query(
                "UPDATE blocks SET status = $1, confirmations = $2, balances_in_effect = $3 \
                 WHERE hash = $4 AND balances_in_effect <> $5",
            )
            .bind(status.as_str())
            .bind(confirmations)
            .bind(in_effect)
            .bind(hash_text.as_str())
            .bind(in_effect)
            .execute(&mut *tx)
            .await
            .map_err(query_error("updating a block's status"))?
            .rows_affected()
                > 0;
            let moved = if flipped {
                let changes: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT address, applied FROM balance_changes WHERE block_hash = $1 ORDER BY address",
                )
                .bind(hash_text.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("reading balance changes"))?;
                let balances = current_balances!(tx);
                let mut moved = Vec::with_capacity(changes.len());
                for (address, applied) in changes {
                    let current = balances.get(&address).copied().unwrap_or(0);
                    let m = move_balance(current, applied, direction)?;
                    set_balance!(tx, address.as_str(), m.balance, now);
                    sqlx::query("UPDATE balance_changes SET applied = $1 WHERE block_hash = $2 AND address = $3")
                        .bind(m.applied)
                        .bind(hash_text.as_str())
                        .bind(address.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("updating a balance change"))?;
                    moved.push((address, m));
                }
                Some(moved)
            } else {
                sqlx::query("UPDATE blocks SET status = $1, confirmations = $2 WHERE hash = $3")
                    .bind(status.as_str())
                    .bind(confirmations)
                    .bind(hash_text.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("updating a block's status"))?;
                None
            };
            tx.commit().await.map_err(query_error("committing a block status change"))?;
            moved
        });
        if let Some(moved) = moved {
            log_moved(hash, direction, &moved);
        }
        Ok(())
    }

    async fn worker_activity(
        &self,
        since: SystemTime,
        address: Option<&str>,
    ) -> Result<Vec<WorkerActivity>, LedgerError> {
        let rows: Vec<(String, String, i64, f64, i64)> = with_pool!(self, pool, Db => {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT address, worker, COUNT(*), SUM(difficulty), MAX(time) FROM shares WHERE time >= ",
            );
            query.push_bind(to_millis(since));
            if let Some(address) = address {
                query.push(" AND address = ").push_bind(address);
            }
            query.push(" GROUP BY address, worker ORDER BY address, worker");
            query.build_query_as().fetch_all(pool).await.map_err(query_error("reading worker activity"))?
        });
        Ok(rows
            .into_iter()
            .map(|(address, worker, shares, difficulty, last)| WorkerActivity {
                address,
                worker,
                shares: u64::try_from(shares).unwrap_or(0),
                difficulty,
                last_share: from_millis(last),
            })
            .collect())
    }

    async fn difficulty_series(
        &self,
        since: SystemTime,
        bucket: Duration,
        address: Option<&str>,
        worker: Option<&str>,
    ) -> Result<Vec<SeriesPoint>, LedgerError> {
        let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        // Integer division in both SQLite and PostgreSQL (BIGINT / BIGINT);
        // times are after the epoch, so it floors.
        let rows: Vec<(i64, f64)> = with_pool!(self, pool, Db => {
            let mut query = QueryBuilder::<Db>::new("SELECT (time / ");
            query.push_bind(bucket_ms).push(") AS b, SUM(difficulty) FROM shares WHERE time >= ");
            query.push_bind(to_millis(since));
            if let Some(address) = address {
                query.push(" AND address = ").push_bind(address);
            }
            if let Some(worker) = worker {
                query.push(" AND worker = ").push_bind(worker);
            }
            query.push(" GROUP BY b ORDER BY b");
            query.build_query_as().fetch_all(pool).await.map_err(query_error("reading a difficulty series"))?
        });
        Ok(rows
            .into_iter()
            .map(|(b, difficulty)| SeriesPoint {
                start: from_millis(bucket_start(b.saturating_mul(bucket_ms), bucket_ms)),
                difficulty,
            })
            .collect())
    }

    async fn window_workers(&self, window: ShareWeight) -> Result<Vec<WindowWorker>, LedgerError> {
        with_pool!(self, pool, _Db => {
            // One snapshot for every read below, so that the pool's and the
            // workers' totals agree.
            let (mut tx, total) = snapshot_with_pool_total!(self, pool, "reading the PPLNS window");
            if total == 0 {
                return Ok(Vec::new());
            }
            let start = total.saturating_sub(window.0);
            let (start_hi, start_lo) = split(start)?;
            // The batch the window starts in: the first whose total after it
            // exceeds the start (batch 0, none, when it holds every share),
            // and what each worker has above the start inside it.
            let (boundary, inside) = if start == 0 {
                (0, BTreeMap::new())
            } else {
                let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
                    "SELECT id, first_share, last_share, total_hi, total_lo FROM share_batches \
                     WHERE (total_hi, total_lo) > ($1, $2) ORDER BY total_hi, total_lo LIMIT 1",
                )
                .bind(start_hi)
                .bind(start_lo)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error("finding the PPLNS window's first batch"))?;
                let Some((id, first, last, hi, lo)) = row else {
                    return Err(LedgerError::Corrupt {
                        column: "share_batches.total",
                        value: format!("no batch reaches the pool total {total}"),
                    });
                };
                let shares: Vec<(String, String, f64)> = sqlx::query_as(
                    "SELECT address, worker, difficulty FROM shares WHERE id >= $1 AND id <= $2 ORDER BY id",
                )
                .bind(first)
                .bind(last)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("reading the PPLNS window's first batch"))?;
                let shares = shares.into_iter().map(|(a, w, d)| (a, w, share_weight(d)));
                (id, inside_boundary_batch(shares, join(hi, lo, "share_batches.total")?, start)?)
            };
            // Each worker with a batch from the boundary on, with its total
            // after the boundary batch: one index lookup per worker
            // (PostgreSQL's LATERAL join fetches both columns at once;
            // SQLite, in process, takes two cheap lookups).
            let sql = if self.is_postgres() {
                "SELECT w.address, w.name, w.total_hi, w.total_lo, b.total_hi, b.total_lo FROM workers w \
                 LEFT JOIN LATERAL (SELECT total_hi, total_lo FROM batch_workers \
                  WHERE worker_id = w.id AND batch_id <= $1 ORDER BY batch_id DESC LIMIT 1) b ON TRUE \
                 WHERE w.last_batch >= $1 AND w.last_batch > 0"
            } else {
                "SELECT w.address, w.name, w.total_hi, w.total_lo, \
                 (SELECT b.total_hi FROM batch_workers b WHERE b.worker_id = w.id AND b.batch_id <= $1 \
                  ORDER BY b.batch_id DESC LIMIT 1), \
                 (SELECT b.total_lo FROM batch_workers b WHERE b.worker_id = w.id AND b.batch_id <= $1 \
                  ORDER BY b.batch_id DESC LIMIT 1) \
                 FROM workers w WHERE w.last_batch >= $1 AND w.last_batch > 0"
            };
            let rows: Vec<WindowWorkerRow> = sqlx::query_as(sql)
            .bind(boundary)
            .fetch_all(&mut *tx)
            .await
            .map_err(query_error("reading the PPLNS window's workers"))?;
            tx.commit().await.map_err(query_error("ending the PPLNS window's read"))?;
            let workers = rows
                .into_iter()
                .map(|(address, worker, hi, lo, at_hi, at_lo)| {
                    Ok(WorkerTotals {
                        address,
                        worker,
                        total: join(hi, lo, "workers.total")?,
                        at_boundary: join(at_hi.unwrap_or(0), at_lo.unwrap_or(0), "batch_workers.total")?,
                    })
                })
                .collect::<Result<Vec<_>, LedgerError>>()?;
            window_parts(workers, &inside, total - start)
        })
    }

    async fn recent_payouts(&self, address: Option<&str>, limit: u32) -> Result<Vec<PayoutRecord>, LedgerError> {
        let rows: Vec<(String, i64, i64, String, String, i64)> = with_pool!(self, pool, Db => {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT b.hash, b.height, b.found_at, b.status, p.address, p.amount \
                 FROM payouts p JOIN blocks b ON b.hash = p.block_hash",
            );
            if let Some(address) = address {
                query.push(" WHERE p.address = ").push_bind(address);
            }
            query.push(" ORDER BY b.found_at DESC, b.height DESC, p.amount DESC, p.address LIMIT ");
            query.push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await.map_err(query_error("reading recent payouts"))?
        });
        rows.into_iter()
            .map(|(hash, height, found_at, status, address, sats)| {
                Ok(PayoutRecord {
                    block_hash: block_hash(&hash)?,
                    height: u32::try_from(height)
                        .map_err(|_| LedgerError::Corrupt { column: "blocks.height", value: height.to_string() })?,
                    found_at: from_millis(found_at),
                    status: BlockStatus::parse(&status)
                        .ok_or_else(|| LedgerError::Corrupt { column: "blocks.status", value: status.clone() })?,
                    address,
                    amount: amount(sats)?,
                })
            })
            .collect()
    }

    async fn paid_totals(&self, address: Option<&str>) -> Result<Vec<PaidTotal>, LedgerError> {
        // SUM of BIGINT is NUMERIC in PostgreSQL: cast it back.
        let rows: Vec<(String, i64, i64)> = with_pool!(self, pool, Db => {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT p.address, \
                 CAST(COALESCE(SUM(CASE WHEN b.status = 'confirmed' THEN p.amount ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN b.status = 'pending' THEN p.amount ELSE 0 END), 0) AS BIGINT) \
                 FROM payouts p JOIN blocks b ON b.hash = p.block_hash WHERE b.status <> 'orphaned'",
            );
            if let Some(address) = address {
                query.push(" AND p.address = ").push_bind(address);
            }
            query.push(" GROUP BY p.address ORDER BY p.address");
            query.build_query_as().fetch_all(pool).await.map_err(query_error("summing payouts"))?
        });
        rows.into_iter()
            .map(|(address, confirmed, pending)| {
                Ok(PaidTotal { address, confirmed: amount(confirmed)?, pending: amount(pending)? })
            })
            .collect()
    }
}
