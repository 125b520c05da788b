//! End to end with real processes on loopback: `satpool-node` on regtest,
//! the `satpool` binary, and a Stratum client in this test that mines.
//!
//! - shares are accepted; a block is found and accepted by the node; its
//!   coinbase pays the PPLNS split computed here, independently; it is
//!   confirmed after 100 more blocks and orphaned once invalidated;
//! - `kill -9` of the pool mid-run loses no share that was answered `true`;
//! - the same suite on PostgreSQL when `SATPOOL_TEST_POSTGRES_URL` is set.
//!
//! The share difficulty is pinned (min = start = max) at 4e-10, just under
//! regtest's network difficulty (4.66e-10): about half of the hashes that
//! meet it are blocks, so the client chooses which it submits — plain shares
//! or a block — and each share weighs exactly 2 in PPLNS (4e-10 · 2^32 ≈ 1.7).
//!
//! Every wait is a safety limit, not a claim about speed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount, BlockHash, Target};
use satpool_stratum::{
    check_share, meets, Extranonce1, Extranonce2, Message, Method, Notify, ShareDifficulty, Submit, VersionMask,
};
use satpool_testkit::{free_port, profile_dir, regtest_address, Process, RegtestNode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const DIFFICULTY: f64 = 4e-10;
const POOL_FEE_PPM: u64 = 10_000; // the default 1 %
const START_LIMIT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(30);

/// The test's node: `satpool-node` on regtest, built first.
async fn start_node(dir: &Path) -> RegtestNode {
    let bin = profile_dir(&[("satpool-node", "satpool-node")]);
    RegtestNode::start(&bin.join("satpool-node"), dir, "info").await
}

/// One connection for one read: the test polls the ledger often, and a
/// throwaway sqlx pool per poll sometimes timed out acquiring its first
/// connection on this loaded 2-core machine while a plain connect worked.
async fn pg_connect(url: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(url).await.expect("the PostgreSQL server answers")
}

/// Where the ledger lives, and how this test reads it.
#[derive(Clone)]
enum Db {
    Sqlite(PathBuf),
    /// The URL the pool and the test use (search path set to the schema),
    /// the server's own URL, and the schema.
    Postgres(String, String, String),
}

impl Db {
    fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{}", path.display()),
            Db::Postgres(url, _, _) => url.clone(),
        }
    }

    /// `(address, worker, difficulty)` of every share.
    async fn shares(&self) -> Vec<(String, String, f64)> {
        const SQL: &str = "SELECT address, worker, difficulty FROM shares ORDER BY id";
        match self {
            Db::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            Db::Postgres(url, _, _) => {
                let mut conn = pg_connect(url).await;
                let rows = sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap();
                let _ = sqlx::Connection::close(conn).await;
                rows
            }
        }
    }

    /// `(hash, status)` of every block found.
    async fn blocks(&self) -> Vec<(String, String)> {
        const SQL: &str = "SELECT hash, status FROM blocks ORDER BY found_at";
        match self {
            Db::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
                let Ok(pool) = sqlx::SqlitePool::connect_with(options).await else { return Vec::new() };
                let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap_or_default();
                pool.close().await;
                rows
            }
            Db::Postgres(url, _, _) => {
                let mut conn = pg_connect(url).await;
                let rows = sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap_or_default();
                let _ = sqlx::Connection::close(conn).await;
                rows
            }
        }
    }
}

/// A fresh database for one test: a SQLite file, or a new schema on the
/// PostgreSQL server of `SATPOOL_TEST_POSTGRES_URL`.
async fn database(dir: &Path, postgres: bool) -> Option<Db> {
    if !postgres {
        return Some(Db::Sqlite(dir.join("ledger.sqlite")));
    }
    let Ok(base) = std::env::var("SATPOOL_TEST_POSTGRES_URL") else {
        eprintln!("notice: SATPOOL_TEST_POSTGRES_URL is not set; skipping the PostgreSQL run");
        return None;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("satpool_e2e_{}_{nanos}", std::process::id());
    let admin = sqlx::PgPool::connect(&base).await.expect("the PostgreSQL server answers");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
    admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    Some(Db::Postgres(url, base, schema))
}

impl Db {
    /// Drops a PostgreSQL run's schema (a SQLite file goes with its folder).
    async fn clean_up(&self) {
        if let Db::Postgres(_, base, schema) = self {
            let admin = sqlx::PgPool::connect(base).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
            admin.close().await;
        }
    }
}

struct PoolProcess {
    process: Process,
    stratum: u16,
}

impl PoolProcess {
    async fn start(dir: &Path, node: &RegtestNode, db: &Db, stratum: u16) -> PoolProcess {
        let process = Process::spawn(
            Command::new(env!("CARGO_BIN_EXE_satpool"))
                .args(["--network", "regtest"])
                .args(["--node-url", &node.rpc_url()])
                .arg("--node-cookie")
                .arg(&node.datadir)
                .args(["--stratum", &format!("127.0.0.1:{stratum}")])
                .args(["--http", &format!("127.0.0.1:{}", free_port())])
                .args(["--db", &db.url()])
                .arg("--data-dir")
                .arg(dir.join("pool"))
                .args(["--pool-address", &regtest_address(1).to_string()])
                .args(["--pplns-window", "1000"])
                .args(["--min-payout", "1"])
                .args(["--start-difficulty", &DIFFICULTY.to_string()])
                .args(["--min-difficulty", &DIFFICULTY.to_string()])
                .args(["--max-difficulty", &DIFFICULTY.to_string()])
                .env("RUST_LOG", "info,satpool=debug"),
            dir.join("pool.log"),
        );
        let pool = PoolProcess { process, stratum };
        let deadline = Instant::now() + START_LIMIT;
        while TcpStream::connect(("127.0.0.1", stratum)).await.is_err() {
            assert!(Instant::now() < deadline, "the pool did not listen:\n{}", pool.process.log_tail(40));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pool
    }
}

/// A miner: one Stratum connection.
struct Miner {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    extranonce1: Extranonce1,
    extranonce2_size: usize,
    job: Option<Notify>,
    next_id: u64,
    e2: u64,
}

impl Miner {
    async fn connect(port: u16, user: &str) -> Miner {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, write) = stream.into_split();
        let mut miner = Miner {
            lines: BufReader::new(read).lines(),
            write,
            extranonce1: Extranonce1::from_u32(0),
            extranonce2_size: 0,
            job: None,
            next_id: 1,
            e2: 0,
        };
        let subscribe = miner.call("mining.subscribe", json!(["e2e-miner/1.0"])).await;
        miner.extranonce1 = subscribe["result"][1].as_str().unwrap().parse().unwrap();
        miner.extranonce2_size = subscribe["result"][2].as_u64().unwrap() as usize;
        assert_eq!(miner.call("mining.authorize", json!([user, "x"])).await["result"], true);
        miner
    }

    async fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "method": method, "params": params}).to_string() + "\n";
        self.write.write_all(line.as_bytes()).await.unwrap();
        id
    }

    /// Reads one line; keeps jobs; returns responses.
    async fn read(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(WAIT, self.lines.next_line()).await.expect("a line in time").ok()??;
        if let Ok(Message::Request(request)) = Message::parse(&line) {
            if let Method::Notify(notify) = request.method {
                self.job = Some(notify);
            }
            return Some(Value::Null);
        }
        Some(serde_json::from_str(&line).unwrap())
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        loop {
            let value = self.read().await.expect("open");
            if value["id"] == id {
                return value;
            }
        }
    }

    /// Waits for a job on `tip`.
    async fn job_on(&mut self, tip: BlockHash) -> Notify {
        let deadline = Instant::now() + WAIT;
        while self.job.as_ref().is_none_or(|j| j.prev_hash != tip) {
            assert!(Instant::now() < deadline, "no job on {tip}");
            self.read().await.expect("open");
        }
        self.job.clone().unwrap()
    }

    /// A submit for the current job that is a block or (`block = false`) a plain share.
    fn solve(&mut self, user: &str, block: bool) -> Submit {
        let job = self.job.clone().expect("a job");
        let share_target = ShareDifficulty::new(DIFFICULTY).unwrap().to_target();
        let network_target = Target::from_compact(job.nbits);
        loop {
            self.e2 += 1;
            let mut submit = Submit {
                worker: user.into(),
                job_id: job.job_id.clone(),
                extranonce2: Extranonce2::from_counter(self.e2, self.extranonce2_size).unwrap(),
                ntime: job.ntime,
                nonce: 0,
                version_bits: None,
            };
            for nonce in 0..64 {
                submit.nonce = nonce;
                let share =
                    check_share(&job, &self.extranonce1, self.extranonce2_size, &submit, VersionMask::NONE).unwrap();
                if meets(&share.hash, &share_target) && meets(&share.hash, &network_target) == block {
                    return submit;
                }
            }
        }
    }

    fn params(submit: &Submit) -> Value {
        json!([
            submit.worker,
            submit.job_id,
            submit.extranonce2.to_string(),
            format!("{:08x}", submit.ntime),
            format!("{:08x}", submit.nonce)
        ])
    }

    async fn submit(&mut self, submit: &Submit) -> Value {
        self.call("mining.submit", Miner::params(submit)).await
    }
}

/// The PPLNS split of `value` over `shares` (address, difficulty), computed
/// here from the rule (fee to the operator, parts by weight rounded down,
/// the remainder to the operator), not with the pool's code.
fn expected_split(value: Amount, shares: &[(String, String, f64)], operator: &str) -> HashMap<String, u64> {
    let value = value.to_sat();
    let fee = value * POOL_FEE_PPM / 1_000_000;
    let pool = u128::from(value - fee);
    let mut weights: HashMap<String, u128> = HashMap::new();
    for (address, _, difficulty) in shares {
        *weights.entry(address.clone()).or_default() += (difficulty * 4_294_967_296.0).round() as u128;
    }
    let total: u128 = weights.values().sum();
    let mut split = HashMap::new();
    let mut paid = 0;
    for (address, weight) in weights {
        let part = (pool * weight / total) as u64;
        paid += part;
        split.insert(address, part);
    }
    *split.entry(operator.to_owned()).or_default() += value - paid;
    split
}

async fn shares_found_and_paid(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(dir.path(), postgres).await else { return };
    let node = start_node(dir.path()).await;
    node.generate(1).await;
    let pool = PoolProcess::start(dir.path(), &node, &db, free_port()).await;
    let (alice, bob) = (format!("{}.rig", regtest_address(2)), format!("{}.rig", regtest_address(3)));
    let mut a = Miner::connect(pool.stratum, &alice).await;
    let mut b = Miner::connect(pool.stratum, &bob).await;
    let tip = node.best().await;
    a.job_on(tip).await;
    b.job_on(tip).await;

    // Plain shares: alice twice as many as bob.
    for _ in 0..6 {
        let share = a.solve(&alice, false);
        assert_eq!(a.submit(&share).await["result"], true);
    }
    for _ in 0..3 {
        let share = b.solve(&bob, false);
        assert_eq!(b.submit(&share).await["result"], true);
    }
    let shares = db.shares().await;
    assert_eq!(shares.len(), 9, "every share answered true is in the ledger");

    // A new tip makes a new job whose coinbase pays those shares.
    let tip = node.generate(1).await[0];
    a.job_on(tip).await;
    let block_share = a.solve(&alice, true);
    assert_eq!(a.submit(&block_share).await["result"], true);
    let deadline = Instant::now() + WAIT;
    let found = loop {
        if let Some((hash, _)) = db.blocks().await.first() {
            break hash.parse::<BlockHash>().unwrap();
        }
        assert!(Instant::now() < deadline, "no block recorded:\n{}", pool.process.log_tail(40));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(node.best().await, found, "the node took the block as its tip");
    let block = node.block(&found).await;
    let coinbase = &block.txdata[0];
    let value: Amount = coinbase.output.iter().map(|o| o.value).sum();
    let paid: HashMap<String, u64> = coinbase
        .output
        .iter()
        .filter(|o| !o.script_pubkey.is_op_return())
        .map(|o| {
            (Address::from_script(&o.script_pubkey, bitcoin::Network::Regtest).unwrap().to_string(), o.value.to_sat())
        })
        .collect();
    let operator = regtest_address(1).to_string();
    assert_eq!(paid, expected_split(value, &shares, &operator), "the coinbase pays the PPLNS split");
    assert_eq!(paid[&regtest_address(2).to_string()], 2 * paid[&regtest_address(3).to_string()]);

    // The new tip reaches the miners as a clean job.
    b.job_on(found).await;

    // Confirmed after 100 more blocks.
    let tip = *node.generate(100).await.last().unwrap();
    wait_status(&db, &found, "confirmed", &pool).await;

    // Another block, orphaned once the node invalidates it. (A confirmed
    // block is final for the pool's watcher, as coinbase maturity is for
    // Core: the orphan is shown on a block not yet 100 deep.)
    a.job_on(tip).await;
    let block_share = a.solve(&alice, true);
    assert_eq!(a.submit(&block_share).await["result"], true);
    let deadline = Instant::now() + WAIT;
    let second = loop {
        let blocks = db.blocks().await;
        if let Some((hash, _)) = blocks.iter().find(|(h, _)| *h != found.to_string()) {
            break hash.parse::<BlockHash>().unwrap();
        }
        assert!(Instant::now() < deadline, "no second block recorded:\n{}", pool.process.log_tail(40));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(node.best().await, second);
    let _: Value = node.call("invalidateblock", json!([second.to_string()])).await;
    wait_status(&db, &second, "orphaned", &pool).await;
    wait_status(&db, &found, "confirmed", &pool).await;
    drop(pool);
    db.clean_up().await;
}

async fn wait_status(db: &Db, hash: &BlockHash, status: &str, pool: &PoolProcess) {
    // The block watcher looks every 30 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let blocks = db.blocks().await;
        if blocks.iter().any(|(h, s)| *h == hash.to_string() && s == status) {
            return;
        }
        assert!(Instant::now() < deadline, "block {hash} never {status}: {blocks:?}\n{}", pool.process.log_tail(40));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// kill -9 while shares are in flight: after a restart, the ledger holds at
/// least every share that was answered `true`, per worker.
async fn kill_9_loses_no_acknowledged_share(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(dir.path(), postgres).await else { return };
    let node = start_node(dir.path()).await;
    node.generate(1).await;
    let port = free_port();
    let mut pool = PoolProcess::start(dir.path(), &node, &db, port).await;
    let tip = node.best().await;
    let acknowledged: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut workers = Vec::new();
    for n in 0..4 {
        let user = format!("{}.w{n}", regtest_address(2));
        let mut miner = Miner::connect(pool.stratum, &user).await;
        miner.job_on(tip).await;
        let acknowledged = acknowledged.clone();
        workers.push(tokio::spawn(async move {
            // Keep up to 32 submits in flight; count the trues.
            let mut in_flight = 0;
            loop {
                while in_flight < 32 {
                    let share = miner.solve(&user, false);
                    let id = miner.next_id;
                    miner.next_id += 1;
                    let line = json!({"id": id, "method": "mining.submit", "params": Miner::params(&share)})
                        .to_string()
                        + "\n";
                    if miner.write.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                    in_flight += 1;
                }
                match tokio::time::timeout(WAIT, miner.lines.next_line()).await {
                    Ok(Ok(Some(line))) => {
                        let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                        if value.get("method").is_none() && value.get("id").is_some() {
                            in_flight -= 1;
                            if value["result"] == true {
                                *acknowledged.lock().await.entry(user.clone()).or_default() += 1;
                            }
                        }
                    }
                    _ => return,
                }
            }
        }));
    }
    // Let shares flow, then kill the pool in the middle of it.
    let deadline = Instant::now() + WAIT;
    while acknowledged.lock().await.values().sum::<u64>() < 400 {
        assert!(Instant::now() < deadline, "shares do not flow:\n{}", pool.process.log_tail(40));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.process.kill9();
    for worker in workers {
        let _ = worker.await;
    }
    let acknowledged = acknowledged.lock().await.clone();
    // Restart on the same ledger; it opens and serves again.
    let pool = PoolProcess::start(dir.path(), &node, &db, port).await;
    let mut miner = Miner::connect(pool.stratum, &format!("{}.after", regtest_address(2))).await;
    miner.job_on(tip).await;
    let mut stored: HashMap<String, u64> = HashMap::new();
    for (address, worker, _) in db.shares().await {
        *stored.entry(format!("{address}.{worker}")).or_default() += 1;
    }
    let total: u64 = acknowledged.values().sum();
    eprintln!("kill -9: {total} shares answered true, {} rows after restart", stored.values().sum::<u64>());
    for (user, count) in &acknowledged {
        let rows = stored.get(user).copied().unwrap_or(0);
        assert!(rows >= *count, "{user}: {count} answered true, {rows} stored");
    }
    drop(pool);
    db.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_shares_blocks_and_payouts() {
    shares_found_and_paid(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_loses_no_acknowledged_share() {
    kill_9_loses_no_acknowledged_share(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shares_blocks_and_payouts() {
    shares_found_and_paid(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_loses_no_acknowledged_share() {
    kill_9_loses_no_acknowledged_share(true).await;
}
