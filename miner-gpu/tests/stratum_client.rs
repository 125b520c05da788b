//! The Stratum client and the mining loop against a fake pool on loopback:
//! configure/subscribe/authorize, jobs, submits checked by the shared share
//! check, rejections counted with their reasons, clean_jobs takeover,
//! client.reconnect and failover.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use satpool_miner::client::{self, ClientConfig, PoolStats, PoolUrl};
use satpool_miner::cpu::CpuPath;
use satpool_miner::miner::Miner;
use satpool_stratum::{
    check_share, meets, ConfigureResult, ErrorCode, Extranonce1, Id, Message, Method, Notify, Request, Response,
    ShareDifficulty, SubscribeResult, VersionMask,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// About one hash in 256 meets it: shares flow quickly from one thread.
fn easy() -> ShareDifficulty {
    ShareDifficulty::new(2f64.powi(-24)).expect("positive")
}

fn notify(job_id: &str, clean: bool) -> Notify {
    Notify {
        job_id: job_id.to_owned(),
        prev_hash: BlockHash::from_byte_array([job_id.len() as u8; 32]),
        coinb1: hex::decode("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20")
            .expect("hex"),
        coinb2: hex::decode("ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000")
            .expect("hex"),
        merkle_branch: vec![TxMerkleNode::from_byte_array([7; 32])],
        version: Version::from_consensus(0x2000_0000),
        nbits: CompactTarget::from_consensus(0x207f_ffff),
        ntime: 0x6650_0000,
        clean_jobs: clean,
    }
}

struct FakeSession {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    extranonce1: Extranonce1,
    mask: VersionMask,
}

impl FakeSession {
    async fn send(&mut self, line: String) {
        self.write.write_all(line.as_bytes()).await.expect("fake pool writes");
    }

    async fn next_request(&mut self) -> Request {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("the miner says something within 20 s")
                .expect("read")
                .expect("the miner keeps the connection open");
            if let Message::Request(r) = Message::parse(&line).expect("the miner speaks Stratum") {
                return r;
            }
        }
    }

    /// Accepts a connection and answers the handshake; `configure` says
    /// whether version rolling is granted.
    async fn accept(listener: &TcpListener, extranonce1: u32, configure: bool) -> FakeSession {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .expect("the miner connects within 20 s")
            .expect("accept");
        let (read, write) = stream.into_split();
        let mut s = FakeSession {
            lines: BufReader::new(read).lines(),
            write,
            extranonce1: Extranonce1::from_u32(extranonce1),
            mask: VersionMask::NONE,
        };
        let mut answered = 0;
        while answered < 3 {
            let r = s.next_request().await;
            let reply = match r.method {
                Method::Configure(c) if configure => {
                    let result = ConfigureResult::answer(&c, VersionMask::BIP320);
                    s.mask = result.version_rolling.unwrap_or(VersionMask::NONE);
                    Response::ok(r.id, result.to_value())
                }
                Method::Configure(_) => Response::unknown_method(r.id, "mining.configure"),
                Method::Subscribe(_) => {
                    answered += 1;
                    Response::ok(r.id, SubscribeResult::new("1", s.extranonce1.clone(), 4).to_value())
                }
                Method::Authorize(a) => {
                    answered += 1;
                    assert_eq!(a.user, "worker.1");
                    Response::ok(r.id, serde_json::Value::Bool(true))
                }
                Method::ExtranonceSubscribe => {
                    answered += 1;
                    Response::ok(r.id, serde_json::Value::Bool(true))
                }
                other => panic!("unexpected {other:?} during the handshake"),
            };
            s.send(reply.to_line()).await;
        }
        s
    }

    async fn set_job(&mut self, difficulty: ShareDifficulty, job: &Notify) {
        self.send(Request::notification(Method::SetDifficulty(difficulty)).to_line()).await;
        self.send(Request::notification(Method::Notify(job.clone())).to_line()).await;
    }

    /// The next submit, checked as the pool would; returns its job id and id.
    async fn next_submit(&mut self, jobs: &[&Notify], difficulty: ShareDifficulty) -> (String, Id) {
        loop {
            let r = self.next_request().await;
            if let Method::Submit(submit) = r.method {
                let job = jobs.iter().find(|j| j.job_id == submit.job_id).expect("a known job");
                assert_eq!(submit.worker, "worker.1");
                if self.mask != VersionMask::NONE {
                    assert!(submit.version_bits.is_some(), "version bits are mandatory after configure");
                }
                let share = check_share(job, &self.extranonce1, 4, &submit, self.mask).expect("well-formed share");
                assert!(meets(&share.hash, &difficulty.to_target()), "the share meets the target");
                return (submit.job_id, r.id);
            }
        }
    }
}

struct Running {
    miner: Arc<Miner>,
    stats: Arc<PoolStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    client: tokio::task::JoinHandle<()>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(urls: Vec<PoolUrl>) -> Running {
        let _ = tracing_subscriber::fmt().with_env_filter("satpool_miner=debug").with_test_writer().try_init();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let miner = Miner::new(Duration::from_millis(20), tx);
        let (path, _) = CpuPath::fastest(Duration::from_millis(5));
        let worker = miner.spawn_cpu(0, path).expect("spawn a CPU worker");
        let stats = Arc::new(PoolStats::default());
        let mut config = ClientConfig::new(urls, "worker.1".into(), "x".into());
        config.backoff_min = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(100);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let client = tokio::spawn(client::run(config, miner.clone(), rx, stats.clone(), async move {
            let _ = stopped.await;
        }));
        Running { miner, stats, stop: Some(stop), client, worker: Some(worker) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.client).await.expect("client stops").expect("no panic");
        self.miner.shutdown();
        self.worker.take().expect("worker").join().expect("worker ends cleanly");
    }
}

fn url(listener: &TcpListener) -> PoolUrl {
    let addr = listener.local_addr().expect("bound");
    PoolUrl { host: addr.ip().to_string(), port: addr.port() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_jobs_submits_and_rejection_reasons() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = Running::start(vec![url(&listener)]);
    let mut pool = FakeSession::accept(&listener, 0x0102_0304, true).await;
    assert_eq!(pool.mask, VersionMask::BIP320);
    let job = notify("a", true);
    pool.set_job(easy(), &job).await;
    // Accept two shares, reject the third as low difficulty.
    for _ in 0..2 {
        let (job_id, id) = pool.next_submit(&[&job], easy()).await;
        assert_eq!(job_id, "a");
        pool.send(Response::ok(id, serde_json::Value::Bool(true)).to_line()).await;
    }
    let (_, id) = pool.next_submit(&[&job], easy()).await;
    pool.send(Response::reject(id, ErrorCode::LowDifficulty).to_line()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.stats.rejected.load(Ordering::Relaxed) < 1 || running.stats.accepted.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "verdicts counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(running.stats.reasons().get("23 Low difficulty share"), Some(&1));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_job_takes_over_within_50_ms() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = Running::start(vec![url(&listener)]);
    // No version rolling this time: the pool does not know mining.configure.
    let mut pool = FakeSession::accept(&listener, 7, false).await;
    let a = notify("a", true);
    let b = notify("bb", true);
    pool.set_job(easy(), &a).await;
    let (job_id, _) = pool.next_submit(&[&a], easy()).await;
    assert_eq!(job_id, "a");
    pool.send(Request::notification(Method::Notify(b.clone())).to_line()).await;
    let sent = Instant::now();
    // Shares of a may still be on the wire; the first of bb must come soon
    // and none of a after the takeover window.
    let mut last_a = sent;
    loop {
        let (job_id, _) = pool.next_submit(&[&a, &b], easy()).await;
        if job_id == "bb" {
            break;
        }
        last_a = Instant::now();
    }
    let first_b = sent.elapsed();
    assert!(
        last_a.duration_since(sent) < Duration::from_millis(50),
        "a share of the old job {:?} after",
        last_a - sent
    );
    assert!(first_b < Duration::from_secs(2), "first share of the new job after {first_b:?}");
    for _ in 0..5 {
        let (job_id, _) = pool.next_submit(&[&a, &b], easy()).await;
        assert_eq!(job_id, "bb", "no share of the replaced job after the takeover");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_client_reconnect() {
    let first = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = Running::start(vec![url(&first)]);
    let mut pool = FakeSession::accept(&first, 1, true).await;
    let port = second.local_addr().expect("bound").port();
    let reconnect = satpool_stratum::Reconnect { host: Some("127.0.0.1".into()), port: Some(port), wait_secs: Some(0) };
    pool.send(Request::notification(Method::Reconnect(reconnect)).to_line()).await;
    let mut moved = FakeSession::accept(&second, 2, true).await;
    let job = notify("c", true);
    moved.set_job(easy(), &job).await;
    let (job_id, _) = moved.next_submit(&[&job], easy()).await;
    assert_eq!(job_id, "c");
    assert_eq!(running.stats.connections.load(Ordering::Relaxed), 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_pool_and_reconnects_after_a_drop() {
    // A port with nobody listening: bind, learn the port, close.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        url(&l)
    };
    let live = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = Running::start(vec![dead, url(&live)]);
    let pool = FakeSession::accept(&live, 3, true).await;
    // The pool drops the connection: the client comes back (to the same
    // pool, as it had a working session there).
    drop(pool);
    let mut again = FakeSession::accept(&live, 4, true).await;
    let job = notify("d", true);
    again.set_job(easy(), &job).await;
    let (job_id, _) = again.next_submit(&[&job], easy()).await;
    assert_eq!(job_id, "d");
    running.stop().await;
    let _ = TcpStream::connect(live.local_addr().expect("bound")).await;
}
