//! The Stratum server over real loopback sockets, with the in-memory node
//! and ledger: the flows of cpuminer, cgminer and ASIC firmware, every
//! rejection code, a block found and submitted, clean jobs on a new tip,
//! limits, bans, timeouts and shutdown.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, CompactTarget, Target};
use satpool::config::{
    Config, Database, Limits, Network, NodeConfig, PayoutConfig, PayoutMode, PoolFee, PplnsWindow, StratumConfig,
};
use satpool::ledger::{MemoryStore, ShareStore};
use satpool::service::{Pool, Tasks};
use satpool::stratum::{StratumOptions, StratumServer, StratumStats};
use satpool::template::{MemoryNode, Template};
use satpool_stratum::{
    check_share, meets, Extranonce1, Extranonce2, Message, Method, Notify, ShareDifficulty, Submit, VersionMask,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// The share difficulty of these tests: about 430 hashes a share.
const DIFFICULTY: f64 = 1e-7;
/// Safety limit for one expected line.
const WAIT: Duration = Duration::from_secs(10);

/// Compact bits: Bitcoin's difficulty 1 (no share is a block) or regtest's (every share is).
const HARD_BITS: u32 = 0x1d00ffff;
const REGTEST_BITS: u32 = 0x207fffff;

fn template(height: u32, prev: u8, bits: u32) -> Template {
    let bits = CompactTarget::from_consensus(bits);
    Template {
        height,
        previous_block_hash: BlockHash::from_byte_array([prev; 32]),
        bits,
        target: Target::from_compact(bits),
        cur_time: 1_700_000_000 + height,
        min_time: 1_699_990_000,
        version: Version::from_consensus(0x2000_0000),
        coinbase_value: Amount::from_sat(5_000_000_000),
        transactions: Vec::new(),
        default_witness_commitment: None,
        longpollid: Some(format!("{height}-{prev}")),
    }
}

fn config() -> Config {
    Config {
        network: Network::Regtest,
        data_dir: std::env::temp_dir(),
        database: Database::Sqlite(std::env::temp_dir().join("unused.sqlite")),
        node: NodeConfig {
            url: "http://127.0.0.1:1/".into(),
            auth: satpool_rpc::Auth::user_password("u".to_owned(), "p".to_owned()),
        },
        stratum: StratumConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            extranonce2_size: 4,
            start_difficulty: DIFFICULTY,
            min_difficulty: 1e-9,
            max_difficulty: 1e6,
            share_rate: Duration::from_secs(10),
        },
        http_listen: "127.0.0.1:0".parse().unwrap(),
        payout: PayoutConfig {
            mode: PayoutMode::Pplns,
            // The operator: P2WSH of OP_TRUE.
            address: bitcoin::Address::p2wsh(bitcoin::Script::from_bytes(&[0x51]), bitcoin::KnownHrp::Regtest),
            fee: PoolFee::from_percent(1.0).unwrap(),
            window: PplnsWindow::Fixed(1.0),
            min_payout: Amount::from_sat(1),
            max_outputs: 50,
        },
        pool_tag: "/satpool-test/".into(),
        template_refresh: Duration::from_secs(30),
        limits: Limits::default(),
    }
}

struct Harness {
    addr: SocketAddr,
    shutdown: CancellationToken,
    node: Arc<MemoryNode>,
    store: Arc<MemoryStore>,
    pool: Pool<MemoryStore, MemoryNode>,
    stats: Arc<StratumStats>,
    server: JoinHandle<()>,
    tasks: Option<Tasks>,
}

impl Harness {
    async fn start(bits: u32, tune: impl FnOnce(&mut StratumOptions)) -> Harness {
        Harness::start_with(config(), bits, tune).await
    }

    async fn start_with(config: Config, bits: u32, tune: impl FnOnce(&mut StratumOptions)) -> Harness {
        let node = Arc::new(MemoryNode::new());
        node.set_template(template(101, 1, bits));
        let store = Arc::new(MemoryStore::new());
        let shutdown = CancellationToken::new();
        let (pool, tasks) = Pool::start(config, store.clone(), node.clone(), &shutdown);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut options = StratumOptions::from_config(&pool.config).unwrap();
        tune(&mut options);
        let server = StratumServer::new(options, pool.clone());
        let stats = server.stats();
        let server = tokio::spawn(server.run(listener, shutdown.clone()));
        let deadline = Instant::now() + WAIT;
        while pool.jobs.latest().is_none() {
            assert!(Instant::now() < deadline, "no job was made");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Harness { addr, shutdown, node, store, pool, stats, server, tasks: Some(tasks) }
    }

    async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A new tip: the next template, on another previous block.
    fn new_tip(&self, height: u32, prev: u8, bits: u32) {
        self.node.set_template(template(height, prev, bits));
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, &mut self.server).await.expect("the server stops").expect("no panic");
        let tasks = self.tasks.take().expect("tasks");
        tokio::time::timeout(WAIT, tasks.join(self.pool)).await.expect("every task stops");
    }
}

/// A Stratum client over a real socket that keeps the notifications it
/// reads while waiting for a response.
struct Client {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    inbox: VecDeque<Value>,
    extranonce1: Option<Extranonce1>,
    extranonce2_size: usize,
    difficulty: f64,
    job: Option<Notify>,
    next_id: u64,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (read, write) = stream.into_split();
        Client {
            lines: BufReader::new(read).lines(),
            write,
            inbox: VecDeque::new(),
            extranonce1: None,
            extranonce2_size: 0,
            difficulty: 1.0,
            job: None,
            next_id: 1,
        }
    }

    async fn send_line(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
    }

    /// The next line as JSON; `None` at EOF (or a reset).
    async fn read(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(WAIT, self.lines.next_line()).await.expect("a line in time");
        let line = line.ok().flatten()?;
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if value["method"] == "mining.set_difficulty" {
            self.difficulty = value["params"][0].as_f64().unwrap();
        }
        if value["method"] == "mining.notify" {
            match Message::parse(&line).unwrap() {
                Message::Request(request) => match request.method {
                    Method::Notify(notify) => self.job = Some(notify),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
        }
        Some(value)
    }

    /// Sends a request and returns its response, keeping notifications.
    async fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        self.send_line(&line).await;
        loop {
            let value = self.read().await.unwrap_or_else(|| panic!("connection closed awaiting {method}"));
            if value.get("method").is_some() {
                self.inbox.push_back(value);
            } else {
                assert_eq!(value["id"], id, "responses come in order");
                return value;
            }
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.call(json!(id), method, params).await
    }

    /// The next notification of `method` (from the inbox first).
    async fn notification(&mut self, method: &str) -> Value {
        if let Some(pos) = self.inbox.iter().position(|v| v["method"] == method) {
            return self.inbox.remove(pos).unwrap();
        }
        loop {
            let value = self.read().await.unwrap_or_else(|| panic!("connection closed awaiting {method}"));
            if value["method"] == method {
                return value;
            }
            self.inbox.push_back(value);
        }
    }

    async fn subscribe(&mut self, params: Value) -> Value {
        let response = self.request("mining.subscribe", params).await;
        let result = &response["result"];
        self.extranonce1 = Some(result[1].as_str().unwrap().parse().unwrap());
        self.extranonce2_size = result[2].as_u64().unwrap() as usize;
        response
    }

    async fn authorize(&mut self, user: &str) -> Value {
        self.request("mining.authorize", json!([user, "x"])).await
    }

    /// Waits until the connection has a job.
    async fn wait_job(&mut self) -> Notify {
        if self.job.is_none() {
            self.notification("mining.notify").await;
        }
        self.job.clone().unwrap()
    }

    /// A share for the current job (meeting, or with `meeting = false`
    /// failing, the current difficulty), rolled with `version_bits`.
    fn share(&self, worker: &str, e2: u64, version_bits: Option<u32>, meeting: bool) -> Submit {
        let job = self.job.as_ref().expect("a job");
        let e1 = self.extranonce1.as_ref().expect("subscribed");
        let target = ShareDifficulty::new(self.difficulty).unwrap().to_target();
        let mask = if version_bits.is_some() { VersionMask::BIP320 } else { VersionMask::NONE };
        let mut submit = Submit {
            worker: worker.into(),
            job_id: job.job_id.clone(),
            extranonce2: Extranonce2::from_counter(e2, self.extranonce2_size).unwrap(),
            ntime: job.ntime,
            nonce: 0,
            version_bits,
        };
        for nonce in 0.. {
            submit.nonce = nonce;
            let share = check_share(job, e1, self.extranonce2_size, &submit, mask).unwrap();
            if meets(&share.hash, &target) == meeting {
                return submit;
            }
        }
        unreachable!()
    }

    async fn submit(&mut self, submit: &Submit) -> Value {
        let mut params = vec![
            json!(submit.worker),
            json!(submit.job_id),
            json!(submit.extranonce2.to_string()),
            json!(format!("{:08x}", submit.ntime)),
            json!(format!("{:08x}", submit.nonce)),
        ];
        if let Some(bits) = submit.version_bits {
            params.push(json!(format!("{bits:08x}")));
        }
        self.request("mining.submit", Value::Array(params)).await
    }

    /// EOF (or a reset) within the wait, skipping lines.
    async fn closed(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match tokio::time::timeout(WAIT, self.lines.next_line()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

fn error_code(response: &Value) -> i64 {
    response["error"][0].as_i64().unwrap_or_else(|| panic!("an error reply: {response}"))
}

fn worker(name: &str) -> String {
    format!("{ADDRESS}.{name}")
}

#[tokio::test]
async fn cpuminer_flow() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut c = h.client().await;
    let response = c.subscribe(json!(["cpuminer/2.5.1"])).await;
    assert_eq!(response["error"], Value::Null);
    assert_eq!(response["result"][0][0][0], "mining.set_difficulty");
    assert_eq!(response["result"][1].as_str().unwrap().len(), 8, "4-byte extranonce1");
    assert_eq!(c.authorize(ADDRESS).await["result"], true);
    // set_difficulty comes before the notify it applies to.
    let first = c.read().await.unwrap();
    assert_eq!(first["method"], "mining.set_difficulty");
    assert_eq!(first["params"][0].as_f64(), Some(DIFFICULTY));
    let notify = c.read().await.unwrap();
    assert_eq!(notify["method"], "mining.notify");
    assert_eq!(notify["params"].as_array().unwrap().len(), 9);
    assert_eq!(notify["params"][8], true, "the first job is clean");
    for e2 in 0..3 {
        let share = c.share(ADDRESS, e2, None, true);
        let response = c.submit(&share).await;
        assert_eq!(response["result"], true, "{response}");
    }
    // Answered true only once recorded.
    assert_eq!(h.store.shares().len(), 3);
    assert_eq!(h.store.shares()[0].address, ADDRESS);
    assert_eq!(h.stats.shares_accepted.load(Ordering::Relaxed), 3);
    h.stop().await;
}

#[tokio::test]
async fn cgminer_flow_with_string_ids_and_extensions() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut c = h.client().await;
    let response = c.call(json!("s1"), "mining.subscribe", json!(["cgminer/4.12.0"])).await;
    assert_eq!(response["id"], "s1");
    c.extranonce1 = Some(response["result"][1].as_str().unwrap().parse().unwrap());
    c.extranonce2_size = response["result"][2].as_u64().unwrap() as usize;
    assert_eq!(c.request("mining.extranonce.subscribe", json!([])).await["result"], true);
    let rig = worker("rig1");
    assert_eq!(c.call(json!("a1"), "mining.authorize", json!([rig, "x"])).await["result"], true);
    c.wait_job().await;
    // Unknown methods are answered with code 20, not silence.
    let response = c.request("mining.capabilities", json!([])).await;
    assert_eq!(error_code(&response), 20);
    let share = c.share(&rig, 7, None, true);
    assert_eq!(c.submit(&share).await["result"], true);
    assert_eq!(h.store.shares()[0].worker, "rig1");
    h.stop().await;
}

#[tokio::test]
async fn asic_flow_configure_first_and_suggest_before_subscribe() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut c = h.client().await;
    let response = c
        .request(
            "mining.configure",
            json!([["version-rolling"], {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}]),
        )
        .await;
    assert_eq!(response["result"]["version-rolling"], true);
    assert_eq!(response["result"]["version-rolling.mask"], "1fffe000");
    assert_eq!(c.request("mining.suggest_difficulty", json!([2e-7])).await["result"], true);
    c.subscribe(json!(["bitaxe/2.4.0"])).await;
    assert_eq!(c.authorize(&worker("bitaxe")).await["result"], true);
    let difficulty = c.notification("mining.set_difficulty").await;
    assert_eq!(difficulty["params"][0].as_f64(), Some(2e-7), "the suggestion is honoured");
    c.wait_job().await;
    let share = c.share(&worker("bitaxe"), 1, Some(0x0000_6000), true);
    assert_eq!(c.submit(&share).await["result"], true);
    // Rolling negotiated: the sixth param is mandatory.
    let share = c.share(&worker("bitaxe"), 2, None, true);
    let response = c.submit(&share).await;
    assert_eq!(error_code(&response), 20);
    assert!(response["error"][1].as_str().unwrap().contains("Version bits missing"));
    // Outside the mask.
    let mut share = c.share(&worker("bitaxe"), 3, Some(0x0000_2000), true);
    share.version_bits = Some(0x4000_0000);
    assert_eq!(error_code(&c.submit(&share).await), 20);
    h.stop().await;
}

#[tokio::test]
async fn suggested_difficulty_is_clamped() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut c = h.client().await;
    c.subscribe(json!(["miner"])).await;
    c.authorize(ADDRESS).await;
    c.wait_job().await;
    c.inbox.clear();
    assert_eq!(c.request("mining.suggest_difficulty", json!([1e12])).await["result"], true);
    let set = c.notification("mining.set_difficulty").await;
    assert_eq!(set["params"][0].as_f64(), Some(1e6), "clamped to the maximum");
    // The job comes again after the change, not clean.
    let notify = c.notification("mining.notify").await;
    assert_eq!(notify["params"][8], false);
    h.stop().await;
}

#[tokio::test]
async fn every_rejection_code() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut c = h.client().await;
    // 25: submit before subscribe.
    let response = c.request("mining.submit", json!([ADDRESS, "1", "00000000", "6553f100", "00000000"])).await;
    assert_eq!(error_code(&response), 25);
    // Authorization refused with a reason, code 24.
    c.subscribe(json!(["miner"])).await;
    let response = c.authorize("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4").await;
    assert_eq!(error_code(&response), 24);
    assert!(response["error"][1].as_str().unwrap().contains("regtest payout address"), "{response}");
    let response = c.authorize("alice").await;
    assert_eq!(error_code(&response), 24);
    c.authorize(ADDRESS).await;
    c.wait_job().await;
    // 24: a worker not authorized on this connection.
    let share = c.share(&worker("other"), 1, None, true);
    assert_eq!(error_code(&c.submit(&share).await), 24);
    // 21: unknown job.
    let mut share = c.share(ADDRESS, 1, None, true);
    share.job_id = "nope".into();
    assert_eq!(error_code(&c.submit(&share).await), 21);
    // 22: duplicate.
    let share = c.share(ADDRESS, 2, None, true);
    assert_eq!(c.submit(&share).await["result"], true);
    assert_eq!(error_code(&c.submit(&share).await), 22);
    // 23: low difficulty.
    let share = c.share(ADDRESS, 3, None, false);
    assert_eq!(error_code(&c.submit(&share).await), 23);
    // 20: ntime out of range, extranonce2 of the wrong size, malformed params.
    let mut share = c.share(ADDRESS, 4, None, true);
    share.ntime += 7_201 + 101;
    assert_eq!(error_code(&c.submit(&share).await), 20);
    let response = c.request("mining.submit", json!([ADDRESS, "1", "00", "6553f100", "00000000"])).await;
    assert_eq!(error_code(&response), 20);
    let response = c.request("mining.submit", json!([ADDRESS, "1", "00000000", "6553f1", "00000000"])).await;
    assert_eq!(error_code(&response), 20);
    // 21: stale after a new tip.
    let old = c.share(ADDRESS, 5, None, true);
    h.new_tip(102, 2, HARD_BITS);
    let notify = c.notification("mining.notify").await;
    assert_eq!(notify["params"][8], true);
    let response = c.submit(&old).await;
    assert_eq!(error_code(&response), 21);
    assert!(response["error"][1].as_str().unwrap().contains("Stale"));
    assert_eq!(h.store.shares().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_block_is_submitted_recorded_and_followed_by_clean_jobs() {
    let h = Harness::start(REGTEST_BITS, |_| {}).await;
    let mut miners = Vec::new();
    for n in 0..3 {
        let mut c = h.client().await;
        c.subscribe(json!(["miner"])).await;
        c.authorize(&worker(&format!("m{n}"))).await;
        c.wait_job().await;
        miners.push(c);
    }
    let share = miners[0].share(&worker("m0"), 1, None, true);
    let response = miners[0].submit(&share).await;
    assert_eq!(response["result"], true);
    // Submitted at once and recorded.
    let deadline = Instant::now() + WAIT;
    while h.node.submitted().is_empty() || h.store.recent_blocks(1).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the block was not submitted and recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let block = &h.node.submitted()[0];
    assert_eq!(block.header.prev_blockhash, BlockHash::from_byte_array([1; 32]));
    assert!(block.check_merkle_root());
    let recorded = &h.store.recent_blocks(1).await.unwrap()[0];
    assert_eq!(recorded.hash, block.block_hash());
    assert_eq!(recorded.finder_worker, "m0");
    assert_eq!(h.store.shares()[0].block_hash, Some(block.block_hash()));
    // The node's new tip reaches every miner as a clean job.
    let broadcasts_before = job_broadcasts(&h.pool.metrics.render());
    let started = Instant::now();
    h.new_tip(102, 9, REGTEST_BITS);
    for c in &mut miners {
        loop {
            let notify = c.notification("mining.notify").await;
            if notify["params"][8] == true {
                break;
            }
        }
        assert_eq!(c.job.as_ref().unwrap().prev_hash, BlockHash::from_byte_array([9; 32]));
    }
    let elapsed = started.elapsed();
    eprintln!("new tip to clean notify on 3 connections: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // The broadcast latency is observed once per connection written to
    // (a job of the refresh in between may add more).
    let broadcasts = job_broadcasts(&h.pool.metrics.render());
    assert!(broadcasts >= broadcasts_before + 3, "{broadcasts_before} → {broadcasts}");
    h.stop().await;
}

/// `satpool_pool_job_broadcast_seconds_count` in the pool's metrics text.
fn job_broadcasts(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("satpool_pool_job_broadcast_seconds_count "))
        .map_or(0, |count| count.parse().expect("a count"))
}

/// The coinbase a notify's halves make (zero extranonce2).
fn notify_coinbase(c: &Client) -> bitcoin::Transaction {
    let job = c.job.as_ref().expect("a job");
    let e2 = Extranonce2::from_counter(0, c.extranonce2_size).unwrap();
    let (_, coinbase) =
        satpool_stratum::build_header(job, c.extranonce1.as_ref().unwrap(), &e2, job.ntime, 0, Version::ONE);
    bitcoin::consensus::deserialize(&coinbase).expect("a coinbase")
}

#[tokio::test]
async fn solo_sessions_mine_their_own_coinbase_and_a_block_pays_its_finder() {
    const BOB: &str = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry";
    let mut solo = config();
    solo.payout.mode = PayoutMode::Solo;
    let operator = solo.payout.address.script_pubkey();
    let network = solo.network;
    let h = Harness::start_with(solo, REGTEST_BITS, |_| {}).await;
    let script = |address: &str| satpool::config::parse_address(address, network).unwrap().script_pubkey();
    let value = Amount::from_sat(5_000_000_000);
    let fee = Amount::from_sat(50_000_000); // 1%
    let mut alice = h.client().await;
    alice.subscribe(json!(["miner"])).await;
    assert_eq!(alice.authorize(&worker("a")).await["result"], true);
    // A second worker, of another address, does not change what the session's jobs pay.
    assert_eq!(alice.authorize(&format!("{BOB}.x")).await["result"], true);
    alice.wait_job().await;
    let mut bob = h.client().await;
    bob.subscribe(json!(["miner"])).await;
    assert_eq!(bob.authorize(&format!("{BOB}.b")).await["result"], true);
    bob.wait_job().await;
    let mut alice2 = h.client().await;
    alice2.subscribe(json!(["miner"])).await;
    assert_eq!(alice2.authorize(&worker("a2")).await["result"], true);
    alice2.wait_job().await;

    let shared = h.pool.jobs.latest().expect("the shared job");
    let (a, b, a2) = (alice.job.clone().unwrap(), bob.job.clone().unwrap(), alice2.job.clone().unwrap());
    assert_ne!(a.job_id, shared.id(), "solo sessions never get the shared job");
    assert_ne!(a.job_id, b.job_id, "each address has its own job");
    assert_eq!(a.job_id, a2.job_id, "sessions of one address share its job");
    assert_eq!(a.coinb2, a2.coinb2);
    for (client, address) in [(&alice, ADDRESS), (&bob, BOB)] {
        let coinbase = notify_coinbase(client);
        let outputs: Vec<(bitcoin::ScriptBuf, Amount)> =
            coinbase.output.iter().map(|o| (o.script_pubkey.clone(), o.value)).collect();
        assert_eq!(outputs, vec![(operator.clone(), fee), (script(address), value - fee)], "{address}");
    }

    // Bob finds a block: it pays Bob.
    let share = bob.share(&format!("{BOB}.b"), 1, None, true);
    let response = bob.submit(&share).await;
    assert_eq!(response["result"], true, "{response}");
    let deadline = Instant::now() + WAIT;
    while h.node.submitted().is_empty() || h.store.recent_blocks(1).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the block was not submitted and recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let block = &h.node.submitted()[0];
    assert!(block.check_merkle_root());
    let coinbase = &block.txdata[0];
    let paid: Amount = coinbase.output.iter().map(|o| o.value).sum();
    assert_eq!(paid, value, "the outputs sum to the coinbase value");
    let outputs: Vec<(bitcoin::ScriptBuf, Amount)> =
        coinbase.output.iter().map(|o| (o.script_pubkey.clone(), o.value)).collect();
    assert_eq!(outputs, vec![(operator.clone(), fee), (script(BOB), value - fee)]);
    let recorded = &h.store.recent_blocks(1).await.unwrap()[0];
    assert_eq!(recorded.hash, block.block_hash());
    assert_eq!(recorded.finder_address, BOB);
    assert_eq!(recorded.finder_worker, "b");

    // A share on an unknown job is still 21; on a new tip, each session gets its own clean job.
    let mut unknown = alice.share(&worker("a"), 2, None, true);
    unknown.job_id = "ffff".into();
    assert_eq!(error_code(&alice.submit(&unknown).await), 21);
    h.new_tip(102, 9, REGTEST_BITS);
    for (client, address) in [(&mut alice, ADDRESS), (&mut bob, BOB)] {
        client.inbox.clear();
        loop {
            let notify = client.notification("mining.notify").await;
            if client.job.as_ref().unwrap().prev_hash == BlockHash::from_byte_array([9; 32]) {
                assert_eq!(notify["params"][8], true, "a new tip's job is clean");
                break;
            }
        }
        let coinbase = notify_coinbase(client);
        assert_eq!(coinbase.output[1].script_pubkey, script(address), "{address}");
    }
    // A share on the old tip's private job is stale (21).
    let stale = alice2.share(&worker("a2"), 3, None, true);
    assert_eq!(error_code(&alice2.submit(&stale).await), 21);
    h.stop().await;
}

#[tokio::test]
async fn a_long_line_is_answered_and_disconnected() {
    let h = Harness::start(HARD_BITS, |o| o.max_line_length = 1024).await;
    let mut c = h.client().await;
    let long = format!("{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"{}\"]}}", "x".repeat(2000));
    c.send_line(&long).await;
    let reply = c.read().await.expect("an error reply");
    assert_eq!(error_code(&reply), 20);
    assert!(reply["error"][1].as_str().unwrap().contains("line too long"));
    assert!(c.closed().await);
    h.stop().await;
}

#[tokio::test]
async fn connection_limits() {
    let h = Harness::start(HARD_BITS, |o| {
        o.max_connections_per_ip = 2;
    })
    .await;
    let mut a = h.client().await;
    let mut b = h.client().await;
    a.subscribe(json!(["a"])).await;
    b.subscribe(json!(["b"])).await;
    let mut c = h.client().await;
    assert!(c.closed().await, "a third connection from one address is refused");
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut d = h.client().await;
    d.subscribe(json!(["d"])).await;
    h.stop().await;

    let h = Harness::start(HARD_BITS, |o| o.max_connections = 1).await;
    let mut a = h.client().await;
    a.subscribe(json!(["a"])).await;
    let mut b = h.client().await;
    assert!(b.closed().await, "the server is full");
    assert!(h.stats.connections_refused.load(Ordering::Relaxed) >= 1);
    h.stop().await;
}

#[tokio::test]
async fn handshake_timeout_closes_silent_connections() {
    let h = Harness::start(HARD_BITS, |o| o.handshake_timeout = Duration::from_millis(200)).await;
    let mut c = h.client().await;
    let started = Instant::now();
    assert!(c.closed().await);
    assert!(started.elapsed() >= Duration::from_millis(150));
    h.stop().await;
}

#[tokio::test]
async fn a_flood_of_invalid_shares_bans_the_address() {
    let h = Harness::start(HARD_BITS, |o| o.ban_threshold = 3).await;
    let mut c = h.client().await;
    c.subscribe(json!(["m"])).await;
    c.authorize(ADDRESS).await;
    c.wait_job().await;
    for e2 in 0..2 {
        let share = c.share(ADDRESS, e2, None, false);
        assert_eq!(error_code(&c.submit(&share).await), 23);
    }
    let share = c.share(ADDRESS, 9, None, false);
    let params = json!([
        ADDRESS,
        share.job_id,
        share.extranonce2.to_string(),
        format!("{:08x}", share.ntime),
        format!("{:08x}", share.nonce)
    ]);
    c.send_line(&json!({"id": 99, "method": "mining.submit", "params": params}).to_string()).await;
    assert!(c.closed().await, "banned and disconnected");
    let mut again = h.client().await;
    assert!(again.closed().await, "the ban holds for new connections");
    h.stop().await;
}

#[tokio::test]
async fn session_resumption_keeps_the_extranonce1() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut a = h.client().await;
    a.subscribe(json!(["m"])).await;
    let e1 = a.extranonce1.clone().unwrap().to_string();
    let mut other = h.client().await;
    other.subscribe(json!(["m", e1])).await;
    assert_ne!(other.extranonce1.clone().unwrap().to_string(), e1, "in use: not handed out twice");
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut b = h.client().await;
    b.subscribe(json!(["m", e1])).await;
    assert_eq!(b.extranonce1.clone().unwrap().to_string(), e1, "resumed");
    h.stop().await;
}

#[tokio::test]
async fn shutdown_sends_client_reconnect_to_everyone() {
    let h = Harness::start(HARD_BITS, |_| {}).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = h.client().await;
        c.subscribe(json!(["m"])).await;
        c.authorize(ADDRESS).await;
        c.wait_job().await;
        clients.push(c);
    }
    let shutdown = h.shutdown.clone();
    let stop = tokio::spawn(h.stop());
    shutdown.cancel();
    for c in &mut clients {
        let reconnect = c.notification("client.reconnect").await;
        assert_eq!(reconnect["method"], "client.reconnect");
        assert!(c.closed().await);
    }
    tokio::time::timeout(WAIT, stop).await.expect("stopped in time").expect("no panic");
    let _ = Extranonce1::from_u32(0);
}
