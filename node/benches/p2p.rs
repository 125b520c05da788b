//! P2P benchmark with real `satpool-node` binaries on loopback (regtest):
//!
//! 1. blocks per second while a fresh node syncs a 10,000-block chain
//!    (headers first, then blocks) from one other node;
//! 2. the time for a newly mined block to reach all of four nodes in a ring.
//!
//! `cargo bench -p satpool-node --bench p2p`; `SATPOOL_BENCH_BLOCKS=2000`
//! for a shorter chain, `SATPOOL_BENCH_RELAYS` for the number of relays timed.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{regtest_address, Daemon};
use serde_json::{json, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn best(node: &Daemon) -> String {
    node.call("getbestblockhash", json!([])).await
}

async fn wait_tip(node: &Daemon, hash: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while best(node).await != hash {
        assert!(Instant::now() < deadline, "no sync within {limit:?}:\n{}", node.log_tail());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn connect(from: &Daemon, to: &Daemon) {
    let _: Value = from.call("addnode", json!([to.p2p_addr(), "onetry"])).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let peers: Vec<Value> = from.call("getpeerinfo", json!([])).await;
        if peers.iter().any(|p| p["addr"] == to.p2p_addr()) {
            return;
        }
        assert!(Instant::now() < deadline, "no connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let blocks = env_or("SATPOOL_BENCH_BLOCKS", 10_000);
    let relays = env_or("SATPOOL_BENCH_RELAYS", 20);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("a temp dir")).collect();
    let flags = ["--connect=0"];
    let a = Daemon::start("regtest", dirs[0].path(), &flags).await;
    let address = regtest_address().to_string();
    let mining = Instant::now();
    let mut left = blocks;
    while left > 0 {
        let n = left.min(1000);
        let _: Value = a.call("generatetoaddress", json!([n, address])).await;
        left -= n;
    }
    println!("mined {blocks} blocks on node A in {:.1} s", mining.elapsed().as_secs_f64());

    let b = Daemon::start("regtest", dirs[1].path(), &flags).await;
    let tip = best(&a).await;
    let started = Instant::now();
    connect(&b, &a).await;
    wait_tip(&b, &tip, Duration::from_secs(3600)).await;
    let secs = started.elapsed().as_secs_f64();
    println!("initial sync of {blocks} blocks A -> B: {secs:.2} s, {:.0} blocks/s", blocks as f64 / secs);

    let c = Daemon::start("regtest", dirs[2].path(), &flags).await;
    let d = Daemon::start("regtest", dirs[3].path(), &flags).await;
    connect(&c, &b).await;
    connect(&d, &c).await;
    connect(&a, &d).await;
    for n in [&c, &d] {
        wait_tip(n, &tip, Duration::from_secs(3600)).await;
    }
    let nodes = [&a, &b, &c, &d];
    let mut times = Vec::new();
    for i in 0..relays {
        let miner = nodes[i as usize % 4];
        let t = Instant::now();
        let hashes: Vec<String> = miner.call("generatetoaddress", json!([1, address])).await;
        for n in nodes {
            wait_tip(n, &hashes[0], Duration::from_secs(60)).await;
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "new block to all of 4 nodes (ring, {relays} blocks, mined in turn on each): median {:.1} ms, mean {mean:.1} ms, min {:.1} ms, max {:.1} ms",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    let peers: Vec<Value> = b.call("getpeerinfo", json!([])).await;
    let hb: Vec<bool> = peers.iter().map(|p| p["bip152_hb_from"].as_bool().unwrap_or(false)).collect();
    println!("node B's high-bandwidth compact block peers: {hb:?}");
}
