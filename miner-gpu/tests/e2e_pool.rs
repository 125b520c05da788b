//! End to end with real processes on loopback: `satpool-node` on regtest,
//! the `satpool` pool and the `satpool-miner` binary (CPU only, one thread).
//!
//! The share difficulty is pinned (min = start = max) at 0.001: a single
//! CPU thread meets it within a second or so, and as regtest's network
//! difficulty is far lower, every share is also a block. The first block's
//! coinbase pays only the operator (no shares yet); the ones after it pay the
//! miner's address from its earlier shares (PPLNS).
//!
//! Asserted: the miner reports accepted shares in its `--json` status lines,
//! and the node's chain grows by blocks that the pool found whose coinbase
//! has an output to the miner's address. Every wait is a safety limit, not a
//! claim about speed.

use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, Block, CompressedPublicKey};
use satpool_rpc::{Auth, RpcClient};
use serde_json::{json, Value};

const DIFFICULTY: &str = "0.001";
const START_LIMIT: Duration = Duration::from_secs(120);
const MINE_LIMIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn address(n: u8) -> Address {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[n; 32]).unwrap();
    let public = CompressedPublicKey(key.public_key(&secp));
    Address::p2wpkh(&public, bitcoin::Network::Regtest)
}

/// `target/<profile>/`, with `satpool-node` and `satpool` built there first
/// (a no-op when up to date).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps").to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "satpool-node", "--bin", "satpool-node", "-p", "satpool", "--bin", "satpool"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p satpool-node -p satpool failed");
    profile_dir
}

/// A child process, SIGKILLed when dropped; its stdout and stderr go to `log`.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Process {
        let file = OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Process { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(rpc: &RpcClient, method: &str, params: Value) -> Value {
    rpc.call(method, params.clone()).await.unwrap_or_else(|e| panic!("{method} {params}: {e:?}"))
}

/// The highest `accepted` of the miner's `--json` status lines.
fn accepted(miner_log: &str) -> u64 {
    miner_log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|status| status["accepted"].as_u64())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn miner_binary_mines_blocks_through_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let bin = profile_dir();

    // The node.
    let datadir = dir.path().join("node");
    std::fs::create_dir_all(&datadir).unwrap();
    let rpc_port = free_port();
    let node = Process::spawn(
        Command::new(bin.join("satpool-node"))
            .arg("--network=regtest")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--rpcport={rpc_port}"))
            .arg("--rpcbind=127.0.0.1")
            .arg(format!("--port={}", free_port()))
            .env_remove("SATPOOL_NETWORK")
            .env_remove("SATPOOL_DATADIR")
            .env("RUST_LOG", "info"),
        dir.path().join("node.log"),
    );
    let rpc = RpcClient::new(format!("http://127.0.0.1:{rpc_port}/"), Auth::cookie_in(&datadir)).unwrap();
    let deadline = Instant::now() + START_LIMIT;
    while !(datadir.join(satpool_rpc::COOKIE_FILE).exists()
        && rpc.call::<u64>("getblockcount", Value::Null).await.is_ok())
    {
        assert!(Instant::now() < deadline, "the node did not start:\n{}", node.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One block, so that the node is out of initial block download.
    call(&rpc, "generatetoaddress", json!([1, address(99).to_string()])).await;
    let start_height = call(&rpc, "getblockcount", Value::Null).await.as_u64().unwrap();

    // The pool.
    let stratum = free_port();
    let pool = Process::spawn(
        Command::new(bin.join("satpool"))
            .args(["--network", "regtest"])
            .args(["--node-url", &format!("http://127.0.0.1:{rpc_port}/")])
            .arg("--node-cookie")
            .arg(&datadir)
            .args(["--stratum", &format!("127.0.0.1:{stratum}")])
            .args(["--http", &format!("127.0.0.1:{}", free_port())])
            .args(["--db", &format!("sqlite:{}", dir.path().join("ledger.sqlite").display())])
            .arg("--data-dir")
            .arg(dir.path().join("pool"))
            .args(["--pool-address", &address(1).to_string()])
            .args(["--pplns-window", "1000"])
            .args(["--min-payout", "1"])
            .args(["--start-difficulty", DIFFICULTY])
            .args(["--min-difficulty", DIFFICULTY])
            .args(["--max-difficulty", DIFFICULTY])
            .env("RUST_LOG", "info"),
        dir.path().join("pool.log"),
    );
    let deadline = Instant::now() + START_LIMIT;
    while TcpStream::connect(("127.0.0.1", stratum)).is_err() {
        assert!(Instant::now() < deadline, "the pool did not listen:\n{}", pool.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The miner.
    let miner_address = address(2);
    let miner = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_satpool-miner"))
            .args(["--url", &format!("stratum+tcp://127.0.0.1:{stratum}")])
            .args(["--user", &format!("{miner_address}.rig")])
            .args(["--gpu", "none", "--cpu-threads", "1", "--json", "--status-interval", "1"])
            .env("RUST_LOG", "info"),
        dir.path().join("miner.log"),
    );

    // Accepted shares, and a block on the node whose coinbase pays the miner.
    let script = miner_address.script_pubkey();
    let deadline = Instant::now() + MINE_LIMIT;
    let mut checked = start_height;
    let mut paying_block = None;
    loop {
        let height = call(&rpc, "getblockcount", Value::Null).await.as_u64().unwrap();
        while paying_block.is_none() && checked < height {
            checked += 1;
            let hash = call(&rpc, "getblockhash", json!([checked])).await.as_str().unwrap().to_owned();
            let hex = call(&rpc, "getblock", json!([hash, 0])).await;
            let block: Block = encode::deserialize(&hex::decode(hex.as_str().unwrap()).unwrap()).unwrap();
            if block.txdata[0].output.iter().any(|o| o.script_pubkey == script && o.value.to_sat() > 0) {
                paying_block = Some((checked, hash));
            }
        }
        let accepted = accepted(&miner.log());
        if let (true, Some((height, hash))) = (accepted > 0, &paying_block) {
            eprintln!("{accepted} shares accepted; block {hash} at height {height} pays {miner_address}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no accepted share and paying block in time (height {height}, accepted {accepted})\n\
             miner:\n{}\npool:\n{}",
            miner.log_tail(),
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only the pool mines after the first block: it found the blocks, and
    // the node accepted them onto its chain.
    let best = call(&rpc, "getbestblockhash", Value::Null).await;
    let tip = call(&rpc, "getblock", json!([best, 1])).await;
    assert!(tip["height"].as_u64().unwrap() > start_height, "the node's chain grew: {tip}");
    drop(miner);
    drop(pool);
    drop(node);
}
