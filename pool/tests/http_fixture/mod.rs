//! A pool over a ledger filled with a known sequence of shares, blocks and
//! payouts, its HTTP server on loopback, and a fixed clock — shared by the
//! HTTP tests. The expected numbers are worked out by hand beside the data.

#![allow(dead_code)] // Each test file uses its own part of the fixture.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash;
use bitcoin::{block, Amount, BlockHash, CompactTarget, Target};
use clap::Parser;
use satpool::config::{Args, Config, Environment, FileConfig};
use satpool::http::{serve, HttpState};
use satpool::ledger::{BlockRecord, BlockStatus, ShareRecord, ShareStore};
use satpool::metrics::PoolMetrics;
use satpool::service::{Pool, Tasks};
use satpool::share::Reject;
use satpool::template::{MemoryNode, NetworkInfo, Template};
use tokio_util::sync::CancellationToken;

/// The operator.
pub const OPERATOR: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// A miner with two workers, `rig1` and `rig2`.
pub const ALICE: &str = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry";
/// A miner with one unnamed worker.
pub const BOB: &str = "bcrt1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l";

/// The fixed "now": a multiple of 60 s, so the 1 h chart's buckets end on it.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_040)
}

/// `now - seconds`.
pub fn ago(seconds: u64) -> SystemTime {
    now() - Duration::from_secs(seconds)
}

/// 2^32.
pub const TWO_32: f64 = 4_294_967_296.0;

/// The shares: (address, worker, difficulty, seconds ago).
pub const SHARES: &[(&str, &str, f64, u64)] = &[
    (ALICE, "rig1", 4.0, 30 * 3_600), // outside every window
    (BOB, "", 8.0, 23 * 3_600),
    (ALICE, "rig1", 4.0, 7_200),
    (ALICE, "rig2", 2.0, 3_000),
    (ALICE, "rig1", 4.0, 1_800),
    (BOB, "", 8.0, 1_200),
    (ALICE, "rig1", 4.0, 90),
    (ALICE, "rig1", 4.0, 30),
    (ALICE, "rig2", 2.0, 10),
];

// By hand, windows are [now - w, now]:
//   1 min: rig1 4 (30 s) + rig2 2 (10 s)                       =  6
//   1 h:   6 + rig1 4 (90 s) + 4 (30 min) + rig2 2 (50 min) + bob 8 (20 min) = 24
//   24 h:  24 + rig1 4 (2 h) + bob 8 (23 h)                    = 36
/// The pool's share difficulty over 1 min, 1 h, 24 h.
pub const POOL_DIFFICULTY: [f64; 3] = [6.0, 24.0, 36.0];
/// alice.rig1's.
pub const RIG1_DIFFICULTY: [f64; 3] = [4.0, 12.0, 16.0];
/// alice.rig2's.
pub const RIG2_DIFFICULTY: [f64; 3] = [2.0, 4.0, 4.0];
/// bob's.
pub const BOB_DIFFICULTY: [f64; 3] = [0.0, 8.0, 16.0];
/// The window lengths.
pub const SECONDS: [f64; 3] = [60.0, 3_600.0, 86_400.0];

/// The last block was found 40 minutes ago: the round holds rig1 4+4+4,
/// rig2 2, bob 8.
pub const ROUND_DIFFICULTY: f64 = 22.0;

/// The coinbase value of the template.
pub const COINBASE: u64 = 5_000_000_000;

/// The template the node serves: difficulty 1,500, in step with the
/// fixture's network hashrate (2.5 GH/s: a block every 43 minutes) and the
/// dashboard test's pool (about 1.8 GH/s), so that round effort and pool
/// share read like a real pool's, not like regtest's easiest target.
pub fn template() -> Template {
    let bits = CompactTarget::from_consensus(0x1b2bb0a3);
    Template {
        height: 101,
        previous_block_hash: BlockHash::from_byte_array([7; 32]),
        bits,
        target: Target::from_compact(bits),
        cur_time: 1_700_000_000,
        min_time: 1_600_000_000,
        version: block::Version::from_consensus(0x2000_0000),
        coinbase_value: Amount::from_sat(COINBASE),
        transactions: Vec::new(),
        default_witness_commitment: None,
        longpollid: Some("lp101".into()),
    }
}

/// Regtest, PPLNS over a fixed window of 100 (wider than all 40 of
/// difficulty stored: every share counts), 1 % fee.
pub fn config() -> Config {
    let args = Args::parse_from([
        "satpool",
        "--network",
        "regtest",
        "--pool-address",
        OPERATOR,
        "--pplns-window",
        "100",
        "--min-payout",
        "0",
        "--pool-fee",
        "1",
    ]);
    Config::from_layers(FileConfig::default(), args, &Environment::default()).expect("a valid configuration")
}

fn found(n: u8, height: u32, seconds_ago: u64, status: BlockStatus, effort: f64) -> BlockRecord {
    BlockRecord {
        hash: BlockHash::from_byte_array([n; 32]),
        height,
        reward: Amount::from_sat(COINBASE),
        fees: Amount::from_sat(1_000 * u64::from(n)),
        status,
        confirmations: match status {
            BlockStatus::Confirmed => 120,
            BlockStatus::Pending => 3,
            BlockStatus::Orphaned => -1,
        },
        found_at: ago(seconds_ago),
        finder_address: ALICE.into(),
        finder_worker: "rig1".into(),
        network_difficulty: 1.0,
        effort,
    }
}

/// Fills `store`: the shares, then three blocks — confirmed (paid alice
/// 1 000 and bob 2 000), orphaned (alice 7) and pending, 40 minutes ago
/// (alice 500) — and a balance owed to bob of 42.
pub async fn fill<S: ShareStore>(store: &S) {
    let shares: Vec<ShareRecord> = SHARES
        .iter()
        .map(|(address, worker, difficulty, seconds)| ShareRecord {
            time: ago(*seconds),
            address: (*address).into(),
            worker: (*worker).into(),
            difficulty: *difficulty,
            height: 101,
            job_id: "1".into(),
            block_hash: None,
        })
        .collect();
    store.record_shares(&shares).await.expect("shares stored");
    let sats = Amount::from_sat;
    store
        .record_block(
            &found(1, 98, 5 * 3_600, BlockStatus::Confirmed, 0.5),
            &[(ALICE.into(), sats(1_000)), (BOB.into(), sats(2_000))],
            &[],
        )
        .await
        .expect("block");
    store
        .record_block(&found(2, 99, 3 * 3_600, BlockStatus::Orphaned, 1.25), &[(ALICE.into(), sats(7))], &[])
        .await
        .expect("block");
    store
        .record_block(
            &found(3, 100, 2_400, BlockStatus::Pending, 2.0),
            &[(ALICE.into(), sats(500))],
            &[(BOB.into(), bitcoin::SignedAmount::from_sat(42))],
        )
        .await
        .expect("block");
}

/// A running pool with its HTTP server.
pub struct Running<S: ShareStore> {
    /// The server's address.
    pub addr: SocketAddr,
    /// The pool.
    pub pool: Pool<S, MemoryNode>,
    /// The node twin.
    pub node: Arc<MemoryNode>,
    shutdown: CancellationToken,
    tasks: Option<Tasks>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl<S: ShareStore> Running<S> {
    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and the pool.
    pub async fn stop(self) {
        let Running { pool, shutdown, tasks, server, .. } = self;
        shutdown.cancel();
        if let Some(server) = server {
            server.await.expect("no panic").expect("the server stops cleanly");
        }
        if let Some(tasks) = tasks {
            // The recorder stops once the last pool handle (this one) is gone.
            tokio::time::timeout(Duration::from_secs(10), tasks.join(pool)).await.expect("the pool stops");
        }
    }
}

/// Starts the pool over `store` (already filled), waits for its template,
/// counts some rejects, and serves HTTP on 127.0.0.1 with the clock at [`now`].
pub async fn start<S: ShareStore>(store: Arc<S>) -> Running<S> {
    start_with_metrics(store, Arc::new(PoolMetrics::new())).await
}

/// [`start`], the pool reporting into `metrics`.
pub async fn start_with_metrics<S: ShareStore>(store: Arc<S>, metrics: Arc<PoolMetrics>) -> Running<S> {
    let node = Arc::new(MemoryNode::new());
    node.set_template(template());
    node.set_network_info(NetworkInfo { height: 100, difficulty: 1_500.0, hashes_per_second: 2.5e9 });
    let shutdown = CancellationToken::new();
    let (pool, tasks) = Pool::start_with_metrics(config(), store, node.clone(), metrics, &shutdown);
    let mut templates = pool.templates.subscribe();
    tokio::time::timeout(Duration::from_secs(5), templates.wait_for(Option::is_some))
        .await
        .expect("a template within 5 s")
        .expect("the board lives");
    // Rejects as the Stratum server reports them.
    let user = format!("{ALICE}.rig1");
    pool.metrics.share_rejected(&user, &Reject::Duplicate);
    pool.metrics.share_rejected(
        &user,
        &Reject::LowDifficulty {
            achieved: 0.5,
            required: satpool_stratum::ShareDifficulty::new(1.0).expect("positive"),
        },
    );
    pool.metrics.share_rejected(&user, &Reject::Stale { job_id: "1".into() });
    pool.metrics.share_rejected(BOB, &Reject::Duplicate);
    let state = Arc::new(HttpState::with_clock(pool.clone(), Arc::new(now)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let server = tokio::spawn(serve(listener, state, shutdown.clone()));
    Running { addr, pool, node, shutdown, tasks: Some(tasks), server: Some(server) }
}
