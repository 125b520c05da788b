//! Load generator for the Stratum server, run against the real processes:
//! `satpool-node` on regtest and the `satpool` binary, on loopback.
//!
//! ```text
//! cargo bench -p satpool --bench stratum_load                 # SQLite
//! SATPOOL_TEST_POSTGRES_URL=postgres://… cargo bench -p satpool --bench stratum_load
//! STRATUM_LOAD_CONNECTIONS=1000,10000 STRATUM_LOAD_SECONDS=10 cargo bench …
//! ```
//!
//! It measures, and prints:
//! - shares validated and recorded per second: 200 connections, each with
//!   32 submits in flight, counting `true` answers (each one is on disk);
//! - connections held, and the pool's resident memory per connection
//!   (VmRSS of the pool process before and after, subscribed and authorized);
//! - new tip to `mining.notify` (clean) at every connection: from the wall
//!   clock just before the `generatetoaddress` call that makes the tip,
//!   p50, p99 and max over all connections and 10 tips; this includes the
//!   node's long poll and the pool's job maker, not only the broadcast. Two
//!   ends, both on the wall clock (CLOCK_REALTIME), so comparable sample by
//!   sample:
//!   - *in the client's socket*: the kernel's receive timestamp
//!     (`SO_TIMESTAMPNS`, Linux only) of the read that brought the notify's
//!     final newline, i.e. when the bytes reached the client's socket;
//!   - *read by the client's task*: when the generator's reader task got the
//!     line (the figure this bench printed alone before). The generator, the
//!     pool and the node share the machine's cores, so a notify can wait in
//!     the socket before its reader task runs: the first figure leaves the
//!     generator's scheduling out, and the wait itself (task − kernel, per
//!     sample) is printed under the second;
//! - the pool's own histogram of publication → notify written, per
//!   connection, scraped from its `/metrics`.
//!
//! The share difficulty is pinned at 4e-10 (under regtest's network
//! difficulty), and only shares that are not blocks are sent, so the tip
//! moves only when the benchmark moves it.

use std::collections::HashMap;
use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bitcoin::{BlockHash, Target};
use satpool_rpc::{Auth, RpcClient};
use satpool_stratum::{
    check_share, meets, Extranonce1, Extranonce2, Message, Method, Notify, ShareDifficulty, Submit, VersionMask,
};
use satpool_testkit::{free_port, profile_dir, regtest_address, Process, RegtestNode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const DIFFICULTY: f64 = 4e-10;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Setup {
    _node: RegtestNode,
    pool: Process,
    rpc: Arc<RpcClient>,
    stratum: u16,
    http: u16,
    _dir: tempfile::TempDir,
}

async fn setup(db: Option<String>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bin = profile_dir(&[("satpool-node", "satpool-node")]);
    let node = RegtestNode::start(&bin.join("satpool-node"), dir.path(), "warn").await;
    node.generate(1).await;
    let rpc = Arc::new(RpcClient::new(node.rpc_url(), Auth::cookie_in(&node.datadir)).unwrap());
    let stratum = free_port();
    let http = free_port();
    let db = db.unwrap_or_else(|| format!("sqlite:{}", dir.path().join("ledger.sqlite").display()));
    let pool = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_satpool"))
            .args(["--network", "regtest", "--node-url", &node.rpc_url()])
            .arg("--node-cookie")
            .arg(&node.datadir)
            .args(["--stratum", &format!("127.0.0.1:{stratum}"), "--http", &format!("127.0.0.1:{http}")])
            .args(["--db", &db])
            .arg("--data-dir")
            .arg(dir.path().join("pool"))
            .args(["--pool-address", &regtest_address(1).to_string(), "--pplns-window", "1000", "--min-payout", "1"])
            .args(["--start-difficulty", "4e-10", "--min-difficulty", "4e-10", "--max-difficulty", "4e-10"])
            .args(["--max-connections", "20000", "--max-connections-per-ip", "20000"])
            .env("RUST_LOG", "warn"),
        dir.path().join("pool.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", stratum)).await.is_err() {
        assert!(Instant::now() < deadline, "pool did not listen:\n{}", pool.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Setup { _node: node, pool, rpc, stratum, http, _dir: dir }
}

/// When a line reached the client, on the wall clock.
#[derive(Clone, Copy)]
struct Arrival {
    /// The kernel's receive timestamp of the read that brought the line's
    /// final newline; `None` where the kernel gave none (not Linux).
    socket: Option<SystemTime>,
    /// When the reader task got the line, before any parsing.
    task: SystemTime,
}

/// One connection, subscribed and authorized, with a reader task that
/// reports jobs and counts `true` answers.
struct Conn {
    write: tokio::net::tcp::OwnedWriteHalf,
    extranonce1: Extranonce1,
    extranonce2_size: usize,
    jobs: watch::Receiver<Option<(String, Arrival)>>,
    answers: mpsc::UnboundedReceiver<bool>,
}

async fn connect(port: u16, user: &str) -> Conn {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    kernel_stamp::enable(&stream).expect("the socket takes SO_TIMESTAMPNS");
    let (read, mut write) = stream.into_split();
    let mut lines = StampedLines::new(read);
    let hello = format!(
        "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"loadgen\"]}}\n{{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"{user}\",\"x\"]}}\n"
    );
    write.write_all(hello.as_bytes()).await.unwrap();
    let (line, _) = lines.next_line().await.unwrap().unwrap();
    let subscribe: Value = serde_json::from_str(&line).unwrap();
    let extranonce1: Extranonce1 = subscribe["result"][1].as_str().unwrap().parse().unwrap();
    let extranonce2_size = subscribe["result"][2].as_u64().unwrap() as usize;
    let (job_tx, jobs) = watch::channel(None);
    let (answer_tx, answers) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some((line, socket))) = lines.next_line().await {
            // The task's time before any parsing: the client's own work
            // must not count against the server.
            let arrival = Arrival { socket, task: SystemTime::now() };
            if line.contains("\"mining.notify\"") {
                // Parsed by whoever reads it, not here in the hot path.
                job_tx.send_replace(Some((line, arrival)));
                continue;
            }
            match Message::parse(&line) {
                Ok(Message::Request(_)) => {}
                Ok(Message::Response(response)) => {
                    if response.id != satpool_stratum::Id::from(2) && response.id != satpool_stratum::Id::from(1) {
                        let _ = answer_tx.send(response.outcome == Ok(Value::Bool(true)));
                    }
                }
                Err(_) => {}
            }
        }
    });
    Conn { write, extranonce1, extranonce2_size, jobs, answers }
}

/// Lines from the read half of a connection, like `BufReader::lines`, each
/// with the kernel's receive timestamp of the read that completed it.
struct StampedLines {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    /// Where the bytes not yet returned begin.
    start: usize,
    /// `buf[start..scanned]` holds no newline.
    scanned: usize,
    /// The timestamp of the latest read.
    stamp: Option<SystemTime>,
}

impl StampedLines {
    /// Bytes asked of the kernel per read.
    const READ: usize = 4096;

    fn new(read: OwnedReadHalf) -> Self {
        StampedLines { read, buf: Vec::new(), start: 0, scanned: 0, stamp: None }
    }

    /// The next line without its `\n` (or `\r\n`), and its timestamp;
    /// `None` at the end of the stream (a last line with no newline is
    /// dropped).
    async fn next_line(&mut self) -> io::Result<Option<(String, Option<SystemTime>)>> {
        loop {
            if let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + at;
                let line = self.buf[self.start..end].strip_suffix(b"\r").unwrap_or(&self.buf[self.start..end]);
                let line =
                    String::from_utf8(line.to_vec()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                self.start = end + 1;
                self.scanned = self.start;
                // The buffer is read into only when it holds no newline, so
                // every newline in it came with the latest read.
                return Ok(Some((line, self.stamp)));
            }
            self.buf.drain(..self.start);
            self.start = 0;
            self.scanned = self.buf.len();
            let filled = self.buf.len();
            self.buf.resize(filled + Self::READ, 0);
            let stream: &TcpStream = self.read.as_ref();
            let read = loop {
                if let Err(e) = stream.readable().await {
                    break Err(e);
                }
                match kernel_stamp::try_read(stream, &mut self.buf[filled..]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => break other,
                }
            };
            let (n, stamp) = match read {
                Ok(read) => read,
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            };
            self.buf.truncate(filled + n);
            if n == 0 {
                return Ok(None);
            }
            self.stamp = stamp;
        }
    }
}

/// The kernel's receive timestamps on a TCP socket (`SO_TIMESTAMPNS`).
///
/// What Linux reports for TCP, checked by experiment on loopback (kernel
/// 6.18): each `recvmsg` that returns data carries one `SCM_TIMESTAMPNS`,
/// the CLOCK_REALTIME arrival of the newest received segment the read took
/// bytes from (`tcp_recvmsg` keeps the last skb's stamp). Segments queued
/// behind one another are often coalesced into one skb, which then carries
/// the newest one's stamp; so the stamp is when the read's last bytes reached
/// the socket, or a little later, never before, and never after the read.
/// For a notify alone on an idle connection it is the notify's arrival. On
/// loopback a segment is stamped as it enters the receive path, with the
/// default `net.core.netdev_tstamp_prequeue=1` within the pool's own write,
/// so the stamp is in effect when the pool wrote the notify.
// unsafe: `setsockopt` and `recvmsg` with control messages have no safe
// wrapper among our dependencies; each block says why it is sound.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod kernel_stamp {
    use std::io;
    use std::mem::size_of;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// Asks the kernel to stamp every read from `stream`.
    pub fn enable(stream: &TcpStream) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: the fd is open for the life of `stream`, and the option
        // value is a live `c_int` whose size is passed along.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One non-blocking read into `buf`: the bytes read and the kernel's
    /// timestamp; `WouldBlock` (and tokio's readiness cleared) when there
    /// is nothing to read.
    pub fn try_read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        stream.try_io(Interest::READABLE, || recv(stream.as_raw_fd(), buf))
    }

    fn recv(fd: libc::c_int, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        // Room for one `timespec` control message and more, aligned for
        // `cmsghdr` (8 bytes).
        let mut control = [0u64; 16];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: all-zero is a valid `msghdr` (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        // SAFETY: `msg` points at `iov` (over `buf`) and at `control`, all
        // live and writable for the lengths given, until the call returns.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        // SAFETY: the kernel filled `msg.msg_control` with
        // `msg.msg_controllen` bytes of well-formed control messages, and
        // the CMSG_* macros stay within them; the payload of an
        // SCM_TIMESTAMPNS message is one `timespec`, read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                    stamp = Some(SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((n as usize, stamp))
    }
}

/// Elsewhere, plain reads with no timestamp: the socket figure is not
/// measured.
#[cfg(not(target_os = "linux"))]
mod kernel_stamp {
    use std::io;
    use std::time::SystemTime;

    use tokio::net::TcpStream;

    pub fn enable(_: &TcpStream) -> io::Result<()> {
        Ok(())
    }

    pub fn try_read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        stream.try_read(buf).map(|n| (n, None))
    }
}

fn parse_notify(line: &str) -> Notify {
    match Message::parse(line) {
        Ok(Message::Request(request)) => match request.method {
            Method::Notify(notify) => notify,
            other => panic!("not a notify: {other:?}"),
        },
        other => panic!("not a notify: {other:?}"),
    }
}

fn solve(job: &Notify, e1: &Extranonce1, size: usize, user: &str, counter: &mut u64) -> Submit {
    let share_target = ShareDifficulty::new(DIFFICULTY).unwrap().to_target();
    let network_target = Target::from_compact(job.nbits);
    loop {
        *counter += 1;
        let mut submit = Submit {
            worker: user.into(),
            job_id: job.job_id.clone(),
            extranonce2: Extranonce2::from_counter(*counter, size).unwrap(),
            ntime: job.ntime,
            nonce: 0,
            version_bits: None,
        };
        for nonce in 0..16 {
            submit.nonce = nonce;
            let share = check_share(job, e1, size, &submit, VersionMask::NONE).unwrap();
            if meets(&share.hash, &share_target) && !meets(&share.hash, &network_target) {
                return submit;
            }
        }
    }
}

async fn throughput(setup: &Setup, connections: usize, seconds: u64) -> f64 {
    let accepted = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(seconds + 2);
    let mut tasks = Vec::new();
    for n in 0..connections {
        let user = format!("{}.t{n}", regtest_address(2));
        let mut conn = connect(setup.stratum, &user).await;
        let (accepted, rejected) = (accepted.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            let job = loop {
                if let Some((line, _)) = conn.jobs.borrow_and_update().clone() {
                    break parse_notify(&line);
                }
                conn.jobs.changed().await.unwrap();
            };
            let mut counter = 0;
            let mut in_flight = 0usize;
            let mut id = 10u64;
            while Instant::now() < stop {
                let mut batch = String::new();
                while in_flight < 32 {
                    let s = solve(&job, &conn.extranonce1, conn.extranonce2_size, &user, &mut counter);
                    id += 1;
                    let params = json!([
                        s.worker,
                        s.job_id,
                        s.extranonce2.to_string(),
                        format!("{:08x}", s.ntime),
                        format!("{:08x}", s.nonce)
                    ]);
                    batch.push_str(&json!({"id": id, "method": "mining.submit", "params": params}).to_string());
                    batch.push('\n');
                    in_flight += 1;
                }
                if conn.write.write_all(batch.as_bytes()).await.is_err() {
                    return;
                }
                match tokio::time::timeout(Duration::from_secs(10), conn.answers.recv()).await {
                    Ok(Some(ok)) => {
                        in_flight -= 1;
                        if ok { &accepted } else { &rejected }.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
        }));
    }
    // Measure over the middle `seconds`, after the ramp-up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = accepted.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let rate = (accepted.load(Ordering::Relaxed) - start) as f64 / started.elapsed().as_secs_f64();
    for task in tasks {
        let _ = task.await;
    }
    if rejected.load(Ordering::Relaxed) > 0 {
        eprintln!("  ({} rejected)", rejected.load(Ordering::Relaxed));
    }
    rate
}

async fn hold_and_notify(setup: &Setup, connections: usize) {
    let pid = setup.pool.id().expect("the pool runs");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    let mut conns = Vec::with_capacity(connections);
    let opened = Instant::now();
    for n in 0..connections {
        conns.push(connect(setup.stratum, &format!("{}.h{n}", regtest_address(3))).await);
    }
    for conn in &mut conns {
        while conn.jobs.borrow_and_update().is_none() {
            conn.jobs.changed().await.unwrap();
        }
    }
    let open_time = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / connections as f64;
    println!(
        "connections held: {connections} (opened, subscribed, authorized, first job in {:.2} s); pool RSS {} → {} MiB: {:.1} KB per connection",
        open_time.as_secs_f64(),
        before / 1024,
        after / 1024,
        per_conn / 1000.0
    );
    // Per sample, from the wall clock before the call that makes the tip:
    // to the notify in the socket (kernel stamp), to its read by the task.
    let mut in_socket = Vec::new();
    let mut read = Vec::new();
    let mut waited = Vec::new();
    let (mut unstamped, mut inverted) = (0usize, 0usize);
    let since = |start: SystemTime, at: SystemTime| at.duration_since(start).unwrap_or(Duration::ZERO);
    for _ in 0..10 {
        let started = SystemTime::now();
        let hashes: Vec<String> =
            setup.rpc.call("generatetoaddress", json!([1, regtest_address(99).to_string()])).await.unwrap();
        let tip: BlockHash = hashes[0].parse().unwrap();
        for conn in &mut conns {
            loop {
                if let Some((line, at)) = conn.jobs.borrow_and_update().clone() {
                    let job = parse_notify(&line);
                    if job.prev_hash == tip && job.clean_jobs {
                        read.push(since(started, at.task));
                        match at.socket {
                            Some(socket) => {
                                in_socket.push(since(started, socket));
                                waited.push(since(socket, at.task));
                                inverted += usize::from(socket > at.task);
                            }
                            None => unstamped += 1,
                        }
                        break;
                    }
                }
                tokio::time::timeout(Duration::from_secs(30), conn.jobs.changed()).await.unwrap().unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if in_socket.is_empty() {
        println!(
            "new tip → clean notify in the client's socket (kernel receive timestamp): not measured (no timestamps)"
        );
    } else {
        println!(
            "new tip → clean notify in the client's socket (kernel receive timestamp) at {connections} connections: {}",
            quantiles(&mut in_socket)
        );
    }
    println!("new tip → clean notify read by the client's task at {connections} connections: {}", quantiles(&mut read));
    if !waited.is_empty() {
        println!("  of which waiting in the socket for the generator's task: {}", quantiles(&mut waited));
    }
    if unstamped > 0 || inverted > 0 {
        println!("  ({unstamped} notifies without a kernel timestamp, {inverted} stamped after the task read them)");
    }
    let metrics = scrape(setup.http).await;
    let count = metric(&metrics, "satpool_pool_job_broadcast_seconds_count");
    if count > 0.0 {
        let sum = metric(&metrics, "satpool_pool_job_broadcast_seconds_sum");
        let buckets = histogram_buckets(&metrics, "satpool_pool_job_broadcast_seconds");
        println!(
            "  server side, publication → notify written, per connection: mean {:.1} ms, p50 ≤ {:.1} ms, p99 ≤ {:.1} ms ({count} notifies)",
            sum / count * 1e3,
            bucket_quantile(&buckets, 0.5) * 1e3,
            bucket_quantile(&buckets, 0.99) * 1e3,
        );
    }
}

/// "p50 …, p99 …, max … (n samples)" of `samples`, which it sorts.
fn quantiles(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)", ms(0.5), ms(0.99), ms(1.0), samples.len())
}

/// A histogram's cumulative buckets `(le, count)` from the metrics text.
fn histogram_buckets(text: &str, family: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{family}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket holding quantile `q`.
fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets.iter().find(|(_, count)| *count >= q * total).map_or(f64::NAN, |(le, _)| *le)
}

/// GET /metrics from the pool's HTTP port, by hand (one request).
async fn scrape(port: u16) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else { return String::new() };
    let request = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut body).await;
    body
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let seconds: u64 = std::env::var("STRATUM_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
        let counts: Vec<usize> = std::env::var("STRATUM_LOAD_CONNECTIONS")
            .unwrap_or_else(|_| "1000,10000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let mut backends: Vec<(&str, Option<String>)> = vec![("sqlite", None)];
        // PostgreSQL in a schema of its own, dropped at the end.
        let postgres = match std::env::var("SATPOOL_TEST_POSTGRES_URL") {
            Ok(base) => {
                let schema = format!("satpool_load_{}", std::process::id());
                let admin = sqlx::PgPool::connect(&base).await.expect("the PostgreSQL server answers");
                sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
                let separator = if base.contains('?') { '&' } else { '?' };
                backends.push(("postgres", Some(format!("{base}{separator}options=-c%20search_path%3D{schema}"))));
                Some((admin, schema))
            }
            Err(_) => {
                println!("notice: SATPOOL_TEST_POSTGRES_URL not set; PostgreSQL not measured");
                None
            }
        };
        let mut summary: HashMap<&str, f64> = HashMap::new();
        for (name, db) in backends {
            let setup = setup(db).await;
            let rate = throughput(&setup, 200, seconds).await;
            println!("{name}: {rate:.0} shares validated and recorded per second (200 connections, 32 in flight each)");
            summary.insert(name, rate);
            drop(setup);
            if name == "sqlite" {
                for &n in &counts {
                    let setup = self::setup(None).await;
                    hold_and_notify(&setup, n).await;
                }
            }
        }
        if let Some((admin, schema)) = postgres {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
            admin.close().await;
        }
    });
}
