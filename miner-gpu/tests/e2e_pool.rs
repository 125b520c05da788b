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

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use satpool_testkit::{free_port, profile_dir, regtest_address, Process, RegtestNode};
use serde_json::Value;

const DIFFICULTY: &str = "0.001";
const START_LIMIT: Duration = Duration::from_secs(120);
const MINE_LIMIT: Duration = Duration::from_secs(120);

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
    let bin = profile_dir(&[("satpool-node", "satpool-node"), ("satpool", "satpool")]);

    // The node, with one block so that it is out of initial block download.
    let node = RegtestNode::start(&bin.join("satpool-node"), dir.path(), "info").await;
    node.generate(1).await;
    let start_height = node.height().await;

    // The pool.
    let stratum = free_port();
    let pool = Process::spawn(
        Command::new(bin.join("satpool"))
            .args(["--network", "regtest"])
            .args(["--node-url", &node.rpc_url()])
            .arg("--node-cookie")
            .arg(&node.datadir)
            .args(["--stratum", &format!("127.0.0.1:{stratum}")])
            .args(["--http", &format!("127.0.0.1:{}", free_port())])
            .args(["--db", &format!("sqlite:{}", dir.path().join("ledger.sqlite").display())])
            .arg("--data-dir")
            .arg(dir.path().join("pool"))
            .args(["--pool-address", &regtest_address(1).to_string()])
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
        assert!(Instant::now() < deadline, "the pool did not listen:\n{}", pool.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The miner.
    let miner_address = regtest_address(2);
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
        let height = node.height().await;
        while paying_block.is_none() && checked < height {
            checked += 1;
            let block = node.block_at(checked).await;
            if block.txdata[0].output.iter().any(|o| o.script_pubkey == script && o.value.to_sat() > 0) {
                paying_block = Some((checked, block.block_hash()));
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
            miner.log_tail(30),
            pool.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only the pool mines after the first block: it found the blocks, and
    // the node accepted them onto its chain.
    assert!(node.height().await > start_height, "the node's chain grew");
    drop(miner);
    drop(pool);
    drop(node);
}
