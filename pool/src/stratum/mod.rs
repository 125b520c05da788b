//! The Stratum V1 server: line-delimited JSON-RPC over TCP (`:3333` by
//! default) for cpuminer, cgminer, bfgminer, ASIC firmware and
//! satpool-miner.
//!
//! A thin async shell around pure parts: [`session`] (one connection's
//! state), [`crate::share::validate`], [`crate::vardiff`], [`limits`]. Each
//! connection is one task that reads lines and keeps its session, plus a
//! writer task fed through a bounded queue, so that a new job reaches every
//! connection at once and a slow socket delays only itself (when its queue
//! is full it is dropped). Accepted shares are answered `true` only after
//! the [`ShareRecorder`] has committed them; a share that is also a block
//! goes to the block task, which assembles it, submits it to the node at
//! once, and records it in the ledger.
//!
//! Jobs come in on a `watch` channel of [`Job`]s (the service's job builder
//! publishes each new one; a new tip arrives as a job with `clean_jobs`).
//! Shutdown comes from one [`CancellationToken`]: every connection is sent
//! `client.reconnect`, its queue is written out (answers to shares already
//! recorded included), and [`StratumServer::run`] returns once every task
//! it started has ended.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::BlockHash;
use satpool_stratum::{Extranonce1, Extranonce2, Method, Request, ShareDifficulty, VersionMask, DEFAULT_MAX_LINE_LEN};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Network, PayoutMode};
use crate::job::{assemble_block, Job};
use crate::ledger::{ShareRecorder, ShareStore};
use crate::metrics::PoolMetrics;
use crate::service::{Pool, SoloJobs};
use crate::template::{BlockSubmitter, ChainQuery, SubmitOutcome, TemplateSource};
use crate::vardiff::VardiffConfig;

mod connection;
pub mod limits;
pub mod session;

use limits::{ConnectionLimits, Extranonces};
use session::Worker;

/// How the server behaves; [`StratumOptions::from_config`] fills it from
/// the pool's [`Config`].
#[derive(Debug, Clone)]
pub struct StratumOptions {
    /// The network whose addresses miners authorize with.
    pub network: Network,
    /// Bytes of extranonce2 each miner rolls.
    pub extranonce2_size: usize,
    /// The difficulty a connection starts at.
    pub start_difficulty: ShareDifficulty,
    /// Vardiff's policy (aim, window, bounds).
    pub vardiff: VardiffConfig,
    /// The version bits the server lets miners roll (BIP 310): `1fffe000`.
    pub version_mask: VersionMask,
    /// Connections at once, in all.
    pub max_connections: usize,
    /// Connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// The longest line read; a longer one is answered with an error and
    /// the connection closed.
    pub max_line_length: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// A connection not subscribed and authorized this long after it
    /// opened is closed.
    pub handshake_timeout: Duration,
    /// Jobs each connection remembers for late shares.
    pub max_jobs: usize,
    /// Shares remembered per job and connection for the duplicate check
    /// (see [`crate::share::SeenShares`]).
    pub max_shares_per_job: usize,
    /// Lines that may wait for a connection's socket; a full queue drops it.
    pub outbound_queue: usize,
    /// Shares of one connection that may wait for the ledger at once; more
    /// make the connection wait before reading on.
    pub pending_shares: usize,
    /// Invalid shares (or unparsable lines) within `ban_window` that get
    /// an address banned.
    pub ban_threshold: u32,
    /// The window of `ban_threshold`.
    pub ban_window: Duration,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// The wait, in seconds, that `client.reconnect` suggests on shutdown.
    pub reconnect_wait: u64,
    /// A write to a socket that takes longer drops the connection.
    pub write_timeout: Duration,
    /// The first extranonce1 of the counter (an instance prefix, when
    /// several servers share a ledger, goes in the top bits).
    pub first_extranonce1: u32,
    /// How long a closed session's extranonce1 may be resumed.
    pub resume_for: Duration,
}

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum StratumError {
    /// A difficulty in the configuration is not a positive finite number.
    #[error("invalid {key} difficulty {value}")]
    Difficulty {
        /// Which one.
        key: &'static str,
        /// The value.
        value: f64,
    },
}

impl StratumOptions {
    /// The options for `config`, with the defaults for what it does not say.
    pub fn from_config(config: &Config) -> Result<StratumOptions, StratumError> {
        let difficulty =
            |key, value: f64| ShareDifficulty::new(value).map_err(|_| StratumError::Difficulty { key, value });
        let stratum = &config.stratum;
        let min = difficulty("min", stratum.min_difficulty)?;
        let max = difficulty("max", stratum.max_difficulty)?;
        let mut options = StratumOptions::new(config.network, difficulty("start", stratum.start_difficulty)?, min, max);
        options.extranonce2_size = usize::from(stratum.extranonce2_size);
        options.vardiff = VardiffConfig::new(stratum.share_rate, min, max);
        let limits = &config.limits;
        options.max_connections = limits.max_connections;
        options.max_connections_per_ip = limits.max_connections_per_ip;
        options.max_line_length = limits.max_line_length;
        options.idle_timeout = limits.idle_timeout;
        options.handshake_timeout = limits.handshake_timeout;
        options.max_jobs = limits.max_jobs;
        options.max_shares_per_job = limits.max_shares_per_job;
        options.pending_shares = limits.pending_shares;
        options.outbound_queue = limits.outbound_queue;
        options.write_timeout = limits.write_timeout;
        options.ban_threshold = limits.ban_threshold;
        options.ban_window = limits.ban_window;
        options.ban_duration = limits.ban_duration;
        if let Some(window) = limits.vardiff_window {
            options.vardiff.retarget_after = window;
        }
        Ok(options)
    }

    /// Defaults for `network` with these difficulties: one share every 10 s,
    /// extranonce2 of 8 bytes, mask `1fffe000`, 10,000 connections, 256 per
    /// address.
    pub fn new(network: Network, start: ShareDifficulty, min: ShareDifficulty, max: ShareDifficulty) -> StratumOptions {
        StratumOptions {
            network,
            extranonce2_size: 8,
            start_difficulty: start,
            vardiff: VardiffConfig::new(Duration::from_secs(10), min, max),
            version_mask: VersionMask::BIP320,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_line_length: DEFAULT_MAX_LINE_LEN.min(8 * 1024),
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(30),
            max_jobs: 32,
            max_shares_per_job: crate::share::DEFAULT_MAX_SHARES_PER_JOB,
            outbound_queue: 256,
            pending_shares: 64,
            ban_threshold: 100,
            ban_window: Duration::from_secs(60),
            ban_duration: Duration::from_secs(600),
            reconnect_wait: 5,
            write_timeout: Duration::from_secs(10),
            first_extranonce1: 1,
            resume_for: Duration::from_secs(600),
        }
    }
}

/// Counters for the dashboard and metrics.
#[derive(Debug, Default)]
pub struct StratumStats {
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections turned away (limits, bans).
    pub connections_refused: AtomicU64,
    /// Shares answered `true`.
    pub shares_accepted: AtomicU64,
    /// Shares rejected, all codes.
    pub shares_rejected: AtomicU64,
    /// Shares that met the network target.
    pub blocks_found: AtomicU64,
    /// Blocks the node accepted.
    pub blocks_accepted: AtomicU64,
    /// Connections dropped for a full outbound queue.
    pub slow_clients_dropped: AtomicU64,
}

impl StratumStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A job with its `mining.notify` lines rendered once for every connection.
#[derive(Debug)]
struct Published {
    job: Arc<Job>,
    clean_line: Arc<str>,
    line: Arc<str>,
    /// When it was published: each connection reports the time from here
    /// to its notify written to the socket.
    at: Instant,
}

impl Published {
    fn new(job: Arc<Job>) -> Published {
        let mut notify = job.notify.clone();
        notify.clean_jobs = true;
        let clean_line: Arc<str> = Request::notification(Method::Notify(notify.clone())).to_line().into();
        notify.clean_jobs = false;
        let line: Arc<str> = Request::notification(Method::Notify(notify)).to_line().into();
        Published { job, clean_line, line, at: Instant::now() }
    }
}

/// A share that met the network target, for the block task.
#[derive(Debug)]
struct FoundBlock {
    job: Arc<Job>,
    extranonce1: Extranonce1,
    extranonce2: Extranonce2,
    ntime: u32,
    nonce: u32,
    version: bitcoin::block::Version,
    hash: BlockHash,
    worker: Worker,
    peer: SocketAddr,
}

/// What every connection shares.
struct Shared {
    options: StratumOptions,
    recorder: ShareRecorder,
    limits: Arc<ConnectionLimits>,
    extranonces: Extranonces,
    stats: Arc<StratumStats>,
    published: watch::Receiver<Option<Arc<Published>>>,
    blocks: mpsc::UnboundedSender<FoundBlock>,
    shutdown: CancellationToken,
    metrics: Arc<PoolMetrics>,
    /// In solo mode: each session mines its own job, which pays its payout
    /// address, instead of the shared one.
    solo: Option<Arc<SoloJobs>>,
}

/// The Stratum server of a running [`Pool`] over a ledger `S` and a node `N`.
pub struct StratumServer<S, N> {
    options: StratumOptions,
    pool: Pool<S, N>,
    stats: Arc<StratumStats>,
}

impl<S: ShareStore, N: TemplateSource + BlockSubmitter + ChainQuery> StratumServer<S, N> {
    /// A server that takes its jobs from `pool`'s job hub, records shares
    /// through its recorder and hands blocks to [`Pool::block_found`].
    pub fn new(options: StratumOptions, pool: Pool<S, N>) -> StratumServer<S, N> {
        StratumServer { options, pool, stats: Arc::new(StratumStats::default()) }
    }

    /// The counters, live.
    pub fn stats(&self) -> Arc<StratumStats> {
        self.stats.clone()
    }

    /// Serves `listener` until `shutdown` is cancelled; then sends
    /// `client.reconnect` to every connection, closes them, and returns once
    /// every task it started has ended (the last blocks submitted and
    /// recorded included).
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let StratumServer { options, pool, stats } = self;
        let mut jobs = pool.jobs.subscribe();
        let recorder = pool.recorder.clone();
        let metrics = pool.metrics.clone();
        let solo = (pool.config.payout.mode == PayoutMode::Solo).then(|| pool.solo.clone());
        let (published_tx, published_rx) = watch::channel(None::<Arc<Published>>);
        let publisher = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let job = jobs.borrow_and_update().clone();
                    if let Some(job) = job {
                        let changed = published_tx.borrow().as_ref().is_none_or(|p| !Arc::ptr_eq(&p.job, &job));
                        if changed {
                            tracing::debug!(
                                job = job.id(),
                                height = job.height,
                                clean = job.notify.clean_jobs,
                                "new job"
                            );
                            published_tx.send_replace(Some(Arc::new(Published::new(job))));
                        }
                    }
                    tokio::select! {
                        changed = jobs.changed() => if changed.is_err() { break },
                        _ = shutdown.cancelled() => break,
                    }
                }
            })
        };
        let (blocks_tx, blocks_rx) = mpsc::unbounded_channel();
        // The block task holds the pool (and so the recorder) until the
        // last connection is gone.
        let block_task = tokio::spawn(block_loop(pool, blocks_rx, stats.clone()));
        let shared = Arc::new(Shared {
            limits: ConnectionLimits::new(options.max_connections, options.max_connections_per_ip),
            extranonces: Extranonces::new(options.first_extranonce1, options.resume_for),
            options,
            recorder,
            stats: stats.clone(),
            published: published_rx,
            blocks: blocks_tx,
            shutdown: shutdown.clone(),
            metrics,
            solo,
        });
        let local = listener.local_addr().ok();
        tracing::info!(listen = ?local, "stratum server listening");
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match shared.limits.admit(peer.ip(), Instant::now()) {
                        Ok(permit) => {
                            StratumStats::bump(&stats.connections_accepted);
                            shared.metrics.connection_opened();
                            connections.spawn(connection::serve(shared.clone(), stream, peer, permit));
                        }
                        Err(refusal) => {
                            StratumStats::bump(&stats.connections_refused);
                            shared.metrics.connection_refused();
                            tracing::info!(%peer, reason = %refusal, "connection refused");
                            drop(stream);
                        }
                    },
                    Err(error) => {
                        // Out of file descriptors and the like: wait a little
                        // rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let open = connections.len();
        tracing::info!(connections = open, "stratum server stopping: sending client.reconnect");
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(shared.options.write_timeout * 2, drain).await.is_err() {
            tracing::warn!(left = connections.len(), "connections did not close in time; aborting them");
            connections.shutdown().await;
        }
        drop(shared);
        let _ = publisher.await;
        // The block task ends when the last connection's sender is gone,
        // after submitting and recording what it holds.
        let _ = block_task.await;
        tracing::info!("stratum server stopped");
    }
}

/// Submits found blocks at once, one after the other, through
/// [`Pool::block_found`] (submitblock, then the ledger).
async fn block_loop<S: ShareStore, N: TemplateSource + BlockSubmitter + ChainQuery>(
    pool: Pool<S, N>,
    mut found: mpsc::UnboundedReceiver<FoundBlock>,
    stats: Arc<StratumStats>,
) {
    while let Some(found) = found.recv().await {
        let job = &found.job;
        let block = match assemble_block(
            job,
            &found.extranonce1,
            &found.extranonce2,
            found.ntime,
            found.nonce,
            found.version,
        ) {
            Ok(block) => block,
            Err(error) => {
                tracing::error!(%error, hash = %found.hash, "cannot assemble a found block");
                continue;
            }
        };
        let started = Instant::now();
        match pool.block_found(job, &block, &found.worker.address, &found.worker.name).await {
            Ok(SubmitOutcome::Accepted) => {
                StratumStats::bump(&stats.blocks_accepted);
                tracing::info!(
                    hash = %found.hash, height = job.height, address = %found.worker.address, worker = %found.worker.name,
                    peer = %found.peer, elapsed_ms = started.elapsed().as_millis() as u64,
                    "block submitted, accepted and recorded"
                );
            }
            Ok(outcome @ SubmitOutcome::Rejected(_)) if outcome.is_lost_race() => {
                // Logged by the pool already, as a warning.
            }
            Ok(SubmitOutcome::Rejected(reason)) => {
                tracing::error!(hash = %found.hash, height = job.height, %reason, "the node rejected a found block");
            }
            Err(error) => tracing::error!(hash = %found.hash, height = job.height, %error, "a found block failed"),
        }
    }
}
