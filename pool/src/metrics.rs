//! The pool's metrics, behind one type that owns the Prometheus registry:
//! [`PoolMetrics`]. Names are `satpool_pool_…`; durations are histograms in
//! seconds.
//!
//! Where they come from:
//!
//! - the ledger and the node are wrapped in [`Metered`], which times every
//!   commit (`ledger_commit_seconds`), counts the shares committed (accepted
//!   shares: a share is accepted once it is on disk) and the blocks recorded,
//!   times `getblocktemplate` and counts its errors, and counts `submitblock`
//!   by outcome — so these need nothing from the Stratum server;
//! - the Stratum server calls [`PoolMetrics::share_rejected`],
//!   [`PoolMetrics::connection_opened`] / [`PoolMetrics::connection_closed`],
//!   [`PoolMetrics::connection_refused`] and
//!   [`PoolMetrics::observe_job_broadcast`] (reachable as `pool.metrics`);
//! - the hashrate and workers online are read from the ledger when
//!   `/metrics` is scraped ([`PoolMetrics::set_hashrate`]).
//!
//! [`PoolMetrics`] also keeps, per worker, the rejected and stale shares
//! since the pool started ([`WorkerTally`]): the ledger stores accepted
//! shares only, and the dashboard shows both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bitcoin::{Block, BlockHash};
use prometheus::{Counter, GaugeVec};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::ledger::{
    BlockRecord, BlockStatus, LedgerError, PaidTotal, PayoutRecord, SeriesPoint, ShareRecord, ShareStore, WindowWorker,
    WorkerActivity,
};
use crate::payout::ShareWeight;
use crate::share::{MissingJob, Reject};
use crate::template::{BlockSubmitter, ChainQuery, NetworkInfo, NodeError, SubmitOutcome, Template, TemplateSource};

/// The metrics' namespace and subsystem: `satpool_pool_…`.
const NAMESPACE: &str = "satpool";
const SUBSYSTEM: &str = "pool";

/// Workers the tally keeps at most; rejects of further ones are counted in
/// the totals only (a flood of made-up worker names must not grow memory).
const MAX_TALLIED_WORKERS: usize = 10_000;

/// The label of a rejected share's reason (`reason="…"`): a fixed set.
pub fn reject_reason(reject: &Reject) -> &'static str {
    match reject {
        Reject::NotSubscribed => "not_subscribed",
        Reject::Unauthorized { .. } => "unauthorized",
        Reject::JobNotFound { cause: MissingJob::Full, .. } => "job_full",
        Reject::JobNotFound { .. } => "job_not_found",
        Reject::Stale { .. } => "stale",
        Reject::Extranonce2Size { .. } => "extranonce2_size",
        Reject::VersionBitsMissing | Reject::VersionBitsOutsideMask { .. } => "version_bits",
        Reject::NtimeOutOfRange { .. } => "ntime",
        Reject::Duplicate => "duplicate",
        Reject::LowDifficulty { .. } => "low_difficulty",
    }
}

/// One worker's rejected shares since the pool started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerRejects {
    /// Rejected for any reason but staleness.
    pub rejected: u64,
    /// Stale: its job was from before the current tip (or forgotten).
    pub stale: u64,
}

/// Rejected and stale shares per `(address, worker)` since the pool started.
#[derive(Debug)]
pub struct WorkerTally {
    since: SystemTime,
    workers: Mutex<HashMap<(String, String), WorkerRejects>>,
}

impl WorkerTally {
    fn new() -> WorkerTally {
        WorkerTally { since: SystemTime::now(), workers: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), WorkerRejects>> {
        // Counters only: a panic elsewhere leaves them usable.
        self.workers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When counting began.
    pub fn since(&self) -> SystemTime {
        self.since
    }

    /// One worker's counts.
    pub fn get(&self, address: &str, worker: &str) -> WorkerRejects {
        self.lock().get(&(address.to_owned(), worker.to_owned())).copied().unwrap_or_default()
    }

    /// Every worker's counts.
    pub fn all(&self) -> Vec<((String, String), WorkerRejects)> {
        self.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn count(&self, address: &str, worker: &str, stale: bool) {
        let mut workers = self.lock();
        let key = (address.to_owned(), worker.to_owned());
        if !workers.contains_key(&key) && workers.len() >= MAX_TALLIED_WORKERS {
            return;
        }
        let entry = workers.entry(key).or_default();
        if stale {
            entry.stale += 1;
        } else {
            entry.rejected += 1;
        }
    }
}

/// Splits a Stratum user name `address.worker` (the worker may be empty).
pub fn split_user(user: &str) -> (&str, &str) {
    user.split_once('.').unwrap_or((user, ""))
}

/// The pool's metrics and the registry that holds them. Cheap to share in an
/// `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct PoolMetrics {
    registry: Registry,
    hashrate: GaugeVec,
    workers_online: IntGauge,
    shares_accepted: IntCounter,
    share_difficulty_accepted: Counter,
    shares_rejected: IntCounterVec,
    connections: IntGauge,
    connections_opened: IntCounter,
    connections_refused: IntCounter,
    blocks_found: IntCounter,
    block_submissions: IntCounterVec,
    job_broadcast: Histogram,
    template_fetch: HistogramVec,
    template_fetch_errors: IntCounterVec,
    ledger_commit: HistogramVec,
    ledger_errors: IntCounterVec,
    tally: WorkerTally,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE).subsystem(SUBSYSTEM)
}

fn histogram_opts(name: &str, help: &str, buckets: Vec<f64>) -> HistogramOpts {
    HistogramOpts::new(name, help).namespace(NAMESPACE).subsystem(SUBSYSTEM).buckets(buckets)
}

/// 0.1 ms to about 26 s, doubling.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0001, 2.0, 19).expect("start > 0, factor > 1, count > 0")
}

impl Default for PoolMetrics {
    fn default() -> Self {
        PoolMetrics::new()
    }
}

impl PoolMetrics {
    /// Every metric, registered, at zero.
    pub fn new() -> PoolMetrics {
        let registry = Registry::new();
        // The names are fixed and distinct: registration cannot fail.
        macro_rules! register {
            ($metric:expr) => {{
                let metric = $metric.expect("a valid metric definition");
                registry.register(Box::new(metric.clone())).expect("metric names are distinct");
                metric
            }};
        }
        let hashrate = register!(GaugeVec::new(
            opts(
                "hashrate_hashes_per_second",
                "Pool hashrate from the difficulty of accepted shares over a trailing window."
            ),
            &["window"]
        ));
        let workers_online = register!(IntGauge::with_opts(opts(
            "workers_online",
            "Workers with an accepted share in the last 10 minutes."
        )));
        let shares_accepted = register!(IntCounter::with_opts(opts(
            "shares_accepted_total",
            "Shares accepted and committed to the ledger."
        )));
        let share_difficulty_accepted = register!(Counter::with_opts(opts(
            "share_difficulty_accepted_total",
            "Sum of the difficulty of accepted shares (rate() × 2^32 is the hashrate)."
        )));
        let shares_rejected =
            register!(IntCounterVec::new(opts("shares_rejected_total", "Shares rejected, by reason."), &["reason"]));
        let connections = register!(IntGauge::with_opts(opts("connections", "Stratum connections open now.")));
        let connections_opened =
            register!(IntCounter::with_opts(opts("connections_opened_total", "Stratum connections accepted.")));
        let connections_refused = register!(IntCounter::with_opts(opts(
            "connections_refused_total",
            "Stratum connections turned away (limits, bans)."
        )));
        let blocks_found =
            register!(IntCounter::with_opts(opts("blocks_found_total", "Blocks found and recorded in the ledger.")));
        let block_submissions = register!(IntCounterVec::new(
            opts("block_submissions_total", "submitblock calls, by outcome (accepted, rejected, error)."),
            &["outcome"]
        ));
        let job_broadcast = register!(Histogram::with_opts(histogram_opts(
            "job_broadcast_seconds",
            "Time from a job's publication to its mining.notify written to a connection's socket, observed for each connection that was mining when it was published.",
            latency_buckets()
        )));
        let template_fetch = register!(HistogramVec::new(
            histogram_opts(
                "template_fetch_seconds",
                "getblocktemplate latency; kind=direct for a plain call, longpoll for a long poll (includes the wait).",
                latency_buckets()
            ),
            &["kind"]
        ));
        let template_fetch_errors = register!(IntCounterVec::new(
            opts("template_fetch_errors_total", "getblocktemplate calls that failed (long-poll timeouts excluded)."),
            &["kind"]
        ));
        let ledger_commit = register!(HistogramVec::new(
            histogram_opts(
                "ledger_commit_seconds",
                "Ledger transaction latency: op=shares for a share batch, op=block for a block and its payouts.",
                latency_buckets()
            ),
            &["op"]
        ));
        let ledger_errors =
            register!(IntCounterVec::new(opts("ledger_errors_total", "Ledger commits that failed, by op."), &["op"]));
        // Make the labelled series visible at zero.
        for window in ["1m", "1h", "24h"] {
            hashrate.with_label_values(&[window]).set(0.0);
        }
        for kind in ["direct", "longpoll"] {
            let _ = template_fetch.with_label_values(&[kind]);
            let _ = template_fetch_errors.with_label_values(&[kind]);
        }
        for op in ["shares", "block"] {
            let _ = ledger_commit.with_label_values(&[op]);
            let _ = ledger_errors.with_label_values(&[op]);
        }
        PoolMetrics {
            registry,
            hashrate,
            workers_online,
            shares_accepted,
            share_difficulty_accepted,
            shares_rejected,
            connections,
            connections_opened,
            connections_refused,
            blocks_found,
            block_submissions,
            job_broadcast,
            template_fetch,
            template_fetch_errors,
            ledger_commit,
            ledger_errors,
            tally: WorkerTally::new(),
        }
    }

    /// Stratum: a share was rejected. `user` is the submit's worker name as
    /// sent (`address.worker`); stale shares are counted apart.
    pub fn share_rejected(&self, user: &str, reject: &Reject) {
        let reason = reject_reason(reject);
        self.shares_rejected.with_label_values(&[reason]).inc();
        let (address, worker) = split_user(user);
        let stale = matches!(reject, Reject::Stale { .. } | Reject::JobNotFound { .. });
        self.tally.count(address, worker, stale);
    }

    /// Stratum: a connection was accepted.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_opened.inc();
    }

    /// Stratum: an accepted connection ended.
    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// Stratum: a connection was turned away.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Stratum: the time from a job's publication to its notify written to
    /// one connection's socket.
    pub fn observe_job_broadcast(&self, elapsed: Duration) {
        self.job_broadcast.observe(elapsed.as_secs_f64());
    }

    /// Shares committed to the ledger (called by [`Metered`]).
    pub fn shares_committed(&self, shares: &[ShareRecord]) {
        self.shares_accepted.inc_by(shares.len() as u64);
        let difficulty: f64 = shares.iter().map(|s| s.difficulty).filter(|d| d.is_finite() && *d > 0.0).sum();
        self.share_difficulty_accepted.inc_by(difficulty);
    }

    /// Sets the hashrate over a window (`"1m"`, `"1h"`, `"24h"`) and the
    /// workers online, as read from the ledger at scrape time.
    pub fn set_hashrate(&self, window: &str, hashes_per_second: f64) {
        self.hashrate.with_label_values(&[window]).set(hashes_per_second);
    }

    /// Sets the number of workers online.
    pub fn set_workers_online(&self, workers: usize) {
        self.workers_online.set(i64::try_from(workers).unwrap_or(i64::MAX));
    }

    /// The per-worker reject counts.
    pub fn tally(&self) -> &WorkerTally {
        &self.tally
    }

    /// Every metric in Prometheus' text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into memory only fails on an invalid metric family, which
        // the fixed definitions above rule out.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        String::from_utf8(buf).expect("the text encoder writes UTF-8")
    }

    fn time_commit<T>(&self, op: &str, started: Instant, result: &Result<T, LedgerError>) {
        self.ledger_commit.with_label_values(&[op]).observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.ledger_errors.with_label_values(&[op]).inc();
        }
    }
}

/// The content type of [`PoolMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A ledger or a node with its calls measured into [`PoolMetrics`]; it
/// implements the same traits as what it wraps, so the pool runs over it
/// unchanged.
#[derive(Debug)]
pub struct Metered<T> {
    inner: Arc<T>,
    metrics: Arc<PoolMetrics>,
}

impl<T> Metered<T> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<T>, metrics: Arc<PoolMetrics>) -> Metered<T> {
        Metered { inner, metrics }
    }

    /// What is wrapped.
    pub fn inner(&self) -> &Arc<T> {
        &self.inner
    }
}

impl<S: ShareStore> ShareStore for Metered<S> {
    async fn record_shares(&self, shares: &[ShareRecord]) -> Result<(), LedgerError> {
        let started = Instant::now();
        let result = self.inner.record_shares(shares).await;
        self.metrics.time_commit("shares", started, &result);
        if result.is_ok() {
            self.metrics.shares_committed(shares);
        }
        result
    }

    async fn difficulty_since(&self, since: SystemTime, address: Option<&str>) -> Result<f64, LedgerError> {
        self.inner.difficulty_since(since, address).await
    }

    async fn balances(&self) -> Result<Vec<(String, bitcoin::Amount)>, LedgerError> {
        self.inner.balances().await
    }

    async fn record_block(
        &self,
        block: &BlockRecord,
        payouts: &[(String, bitcoin::Amount)],
        changes: &[(String, bitcoin::SignedAmount)],
    ) -> Result<(), LedgerError> {
        let started = Instant::now();
        let result = self.inner.record_block(block, payouts, changes).await;
        self.metrics.time_commit("block", started, &result);
        if result.is_ok() {
            self.metrics.blocks_found.inc();
        }
        result
    }

    async fn unconfirmed_blocks(&self, min_height: u32) -> Result<Vec<BlockRecord>, LedgerError> {
        self.inner.unconfirmed_blocks(min_height).await
    }

    async fn recent_blocks(&self, limit: u32) -> Result<Vec<BlockRecord>, LedgerError> {
        self.inner.recent_blocks(limit).await
    }

    async fn payouts(&self, block: &BlockHash) -> Result<Vec<(String, bitcoin::Amount)>, LedgerError> {
        self.inner.payouts(block).await
    }

    async fn set_block_status(
        &self,
        hash: &BlockHash,
        status: BlockStatus,
        confirmations: i64,
    ) -> Result<(), LedgerError> {
        self.inner.set_block_status(hash, status, confirmations).await
    }

    async fn worker_activity(
        &self,
        since: SystemTime,
        address: Option<&str>,
    ) -> Result<Vec<WorkerActivity>, LedgerError> {
        self.inner.worker_activity(since, address).await
    }

    async fn difficulty_series(
        &self,
        since: SystemTime,
        bucket: Duration,
        address: Option<&str>,
        worker: Option<&str>,
    ) -> Result<Vec<SeriesPoint>, LedgerError> {
        self.inner.difficulty_series(since, bucket, address, worker).await
    }

    async fn window_workers(&self, window: ShareWeight) -> Result<Vec<WindowWorker>, LedgerError> {
        self.inner.window_workers(window).await
    }

    async fn recent_payouts(&self, address: Option<&str>, limit: u32) -> Result<Vec<PayoutRecord>, LedgerError> {
        self.inner.recent_payouts(address, limit).await
    }

    async fn paid_totals(&self, address: Option<&str>) -> Result<Vec<PaidTotal>, LedgerError> {
        self.inner.paid_totals(address).await
    }
}

impl<N: TemplateSource> TemplateSource for Metered<N> {
    async fn get_template(&self, longpoll: Option<&str>) -> Result<Template, NodeError> {
        let kind = if longpoll.is_some() { "longpoll" } else { "direct" };
        let started = Instant::now();
        let result = self.inner.get_template(longpoll).await;
        match &result {
            Ok(_) => self.metrics.template_fetch.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64()),
            Err(error) if error.is_timeout() => {}
            Err(_) => self.metrics.template_fetch_errors.with_label_values(&[kind]).inc(),
        }
        result
    }
}

impl<N: BlockSubmitter> BlockSubmitter for Metered<N> {
    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        let result = self.inner.submit_block(block).await;
        let outcome = match &result {
            Ok(SubmitOutcome::Accepted) => "accepted",
            Ok(SubmitOutcome::Rejected(_)) => "rejected",
            Err(_) => "error",
        };
        self.metrics.block_submissions.with_label_values(&[outcome]).inc();
        result
    }
}

impl<N: ChainQuery> ChainQuery for Metered<N> {
    async fn tip(&self) -> Result<(BlockHash, u32), NodeError> {
        self.inner.tip().await
    }

    async fn confirmations(&self, hash: &BlockHash) -> Result<Option<i64>, NodeError> {
        self.inner.confirmations(hash).await
    }

    async fn network_info(&self) -> Result<Option<NetworkInfo>, NodeError> {
        self.inner.network_info().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_are_counted_by_reason_and_worker() {
        let metrics = PoolMetrics::new();
        metrics.share_rejected("bc1qalice.rig1", &Reject::Duplicate);
        metrics.share_rejected("bc1qalice.rig1", &Reject::Stale { job_id: "1".into() });
        metrics.share_rejected("bc1qbob", &Reject::Duplicate);
        assert_eq!(metrics.tally().get("bc1qalice", "rig1"), WorkerRejects { rejected: 1, stale: 1 });
        assert_eq!(metrics.tally().get("bc1qbob", ""), WorkerRejects { rejected: 1, stale: 0 });
        let text = metrics.render();
        assert!(text.contains("satpool_pool_shares_rejected_total{reason=\"duplicate\"} 2"), "{text}");
        assert!(text.contains("satpool_pool_shares_rejected_total{reason=\"stale\"} 1"), "{text}");
    }
}
