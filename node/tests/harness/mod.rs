//! Runs the real `satpool-node` binary on loopback for end-to-end tests: a
//! free port, a log file in the datadir, a bounded wait until JSON-RPC
//! answers, and a guard that kills the process when dropped.
//!
//! Every wait here is a safety limit, never an assertion about speed: a slow
//! machine only makes the tests slower.

#![allow(dead_code)] // each test file uses a different subset

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, PrivateKey};
use satpool_rpc::{Auth, ClientError, RpcClient, RpcError};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The binary under test, built by Cargo for this test run.
pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_satpool-node");

/// Safety limit for a node to start answering JSON-RPC.
const START_LIMIT: Duration = Duration::from_secs(90);
/// Safety limit for a node to exit after `stop` or SIGTERM.
pub const EXIT_LIMIT: Duration = Duration::from_secs(60);
/// Safety limit for one RPC call (mining a hundred regtest blocks included).
const CALL_LIMIT: Duration = Duration::from_secs(120);
/// The log file each node writes (appended to across restarts).
const LOG_FILE: &str = "satpool-node-test.log";

/// A running `satpool-node`; killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    datadir: PathBuf,
    port: u16,
    /// The P2P port it listens on (`--port`), unless the test chose its own.
    p2p_port: Option<u16>,
    rpc: Arc<RpcClient>,
}

impl Daemon {
    /// Starts a regtest node on `datadir` with the cookie and waits until it answers.
    pub async fn regtest(datadir: &Path) -> Daemon {
        Self::start("regtest", datadir, &[]).await
    }

    /// Starts a node of `network` on `datadir` with `extra` flags on a free
    /// loopback port, and waits until `getblockcount` answers. A port taken
    /// between our probe and the node's bind is retried with another.
    pub async fn start(network: &str, datadir: &Path, extra: &[&str]) -> Daemon {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            // A free P2P port too, so that nodes of concurrent tests never
            // meet on the network's default port.
            let chooses_p2p = extra.iter().any(|a| a.starts_with("--port") || a.starts_with("--listen"));
            let p2p_port = (!chooses_p2p).then(free_port);
            let log_start = std::fs::metadata(datadir.join(LOG_FILE)).map_or(0, |m| m.len() as usize);
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(datadir.join(LOG_FILE))
                .expect("the test datadir is writable");
            let child = Command::new(NODE_BIN)
                .arg(format!("--network={network}"))
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--rpcport={port}"))
                .arg("--rpcbind=127.0.0.1")
                .args(p2p_port.map(|p| format!("--port={p}")))
                .args(extra)
                .env_remove("SATPOOL_NETWORK")
                .env_remove("SATPOOL_DATADIR")
                .env_remove("SATPOOL_RPCUSER")
                .env_remove("SATPOOL_RPCPASSWORD")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("a log file handle can be duplicated"))
                .stderr(log)
                .spawn()
                .expect("the satpool-node binary starts");
            let rpc = RpcClient::new(format!("http://127.0.0.1:{port}/"), Auth::cookie_in(datadir))
                .expect("an rpc client can be built")
                .with_timeout(CALL_LIMIT);
            let mut daemon =
                Daemon { child: Some(child), datadir: datadir.to_owned(), port, p2p_port, rpc: Arc::new(rpc) };
            match daemon.wait_ready().await {
                Ok(()) => return daemon,
                Err(exited)
                    if attempt < ATTEMPTS
                        && daemon.log().get(log_start..).is_some_and(|l| l.contains("Address already in use")) =>
                {
                    eprintln!("port {port} was taken ({exited}); retrying with another");
                }
                Err(exited) => panic!("satpool-node did not start ({exited}); its log:\n{}", daemon.log_tail()),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// Polls until JSON-RPC answers; `Err` when the process exited first.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(format!("exited with {status}"));
            }
            // The cookie appears after the port is bound; a stale one from a
            // killed process is replaced, and the client re-reads it on 401.
            if self.datadir.join(satpool_rpc::COOKIE_FILE).exists() {
                let probe = self.rpc.call_with_timeout::<u64>("getblockcount", Value::Null, Duration::from_secs(10));
                if probe.await.is_ok() {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "satpool-node did not answer within {START_LIMIT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The JSON-RPC client (cookie auth), shareable with background tasks.
    pub fn rpc(&self) -> Arc<RpcClient> {
        self.rpc.clone()
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The JSON-RPC port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The P2P port the harness gave it (`--port`), if it chose one.
    pub fn p2p_port(&self) -> Option<u16> {
        self.p2p_port
    }

    /// `127.0.0.1:<p2p port>`, for `addnode` and `--connect`.
    pub fn p2p_addr(&self) -> String {
        format!("127.0.0.1:{}", self.p2p_port.expect("the harness chose the P2P port"))
    }

    /// The data directory.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node is running").id()
    }

    /// Calls `method`; panics (with the node's log) if it fails.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> T {
        match self.rpc.call(method, params.clone()).await {
            Ok(value) => value,
            Err(e) => panic!("{method} {params} failed: {e:?}\nnode log:\n{}", self.log_tail()),
        }
    }

    /// Calls `method` expecting a JSON-RPC error, and returns it.
    pub async fn call_err(&self, method: &str, params: Value) -> RpcError {
        match self.rpc.call::<Value>(method, params.clone()).await {
            Err(ClientError::Rpc(e)) => e,
            Ok(v) => panic!("{method} {params} succeeded with {v}, expected an rpc error"),
            Err(e) => {
                panic!("{method} {params} failed with {e:?}, expected an rpc error\nnode log:\n{}", self.log_tail())
            }
        }
    }

    /// SIGKILL (`Child::kill`), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM through the `kill` command (the workspace forbids the
    /// `unsafe` a direct `libc::kill` would need).
    pub fn terminate(&self) {
        let status =
            Command::new("kill").args(["-s", "TERM", &self.pid().to_string()]).status().expect("the kill command runs");
        assert!(status.success(), "kill -s TERM {} failed: {status}", self.pid());
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("waiting on a child does not fail")
    }

    /// Waits (at most [`EXIT_LIMIT`], a safety limit) for the process to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_LIMIT;
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "satpool-node did not exit within {EXIT_LIMIT:?}:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The whole log of every process started on this datadir.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.datadir.join(LOG_FILE)) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// The last lines of [`Daemon::log`], for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("loopback can be bound");
    listener.local_addr().expect("a bound listener has an address").port()
}

/// A fixed regtest P2WPKH address (`bcrt1q…`) from the secret key 0x11…11.
pub fn regtest_address() -> Address {
    p2wpkh_address(bitcoin::Network::Regtest)
}

/// The P2WPKH address of the secret key 0x11…11 on `network`.
pub fn p2wpkh_address(network: bitcoin::Network) -> Address {
    numbered_address(0, network)
}

/// The P2WPKH address of the secret key 0x11…11 with its last eight bytes
/// replaced by `n`: one distinct address per number.
pub fn numbered_address(n: u64, network: bitcoin::Network) -> Address {
    let mut bytes = [0x11; 32];
    if n > 0 {
        bytes[24..].copy_from_slice(&n.to_be_bytes());
    }
    let secret = SecretKey::from_slice(&bytes).expect("a key below 0x12 << 248 is a valid secret key");
    let key = PrivateKey::new(secret, network);
    let public = CompressedPublicKey::from_private_key(&Secp256k1::new(), &key).expect("the key is compressed");
    Address::p2wpkh(&public, network)
}

/// SplitMix64: a small seeded generator, so that a failing random schedule
/// can be replayed with the seed it prints.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `SATPOOL_TEST_SEED` when set, else from the clock; prints the seed.
    pub fn from_env_or_clock(name: &str) -> Rng {
        let seed = std::env::var("SATPOOL_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
        });
        eprintln!("{name}: SATPOOL_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `Basic <base64(user:password)>` for the cookie in `datadir`, for raw HTTP requests.
pub fn cookie_authorization(datadir: &Path) -> String {
    let cookie = std::fs::read_to_string(datadir.join(satpool_rpc::COOKIE_FILE)).expect("the node wrote its cookie");
    format!("Basic {}", base64(cookie.trim_end().as_bytes()))
}

/// Standard base64 with padding (RFC 4648), enough for an HTTP Basic header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc_4648() {
    for (plain, encoded) in
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
    {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
    }
}
