//! End to end: `kill -9` of a regtest node while it mines and reorganises,
//! at random moments, then a restart on the same datadir. Each time the node
//! must start, serve its whole active chain, hold exactly the UTXO set that
//! a fresh node builds from that chain's blocks, and go on accepting blocks.
//!
//! The schedule is random; the seed is printed, and `SATPOOL_TEST_SEED=<n>`
//! replays it (up to the moment of each kill, which the OS decides).

mod harness;

use std::sync::Arc;
use std::time::Duration;

use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::Block;
use harness::{numbered_address, regtest_address, Daemon, Rng};
use satpool_rpc::{ClientError, RpcClient};
use serde_json::{json, Value};

/// Kill-and-restart rounds.
const ROUNDS: usize = 6;
/// The longest wait before a kill, in milliseconds.
const MAX_KILL_DELAY_MS: u64 = 1_500;
/// Blocks fed to the replay node per JSON-RPC batch.
const REPLAY_BATCH: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_committed() {
    let mut rng = Rng::from_env_or_clock("kill_9_at_random_moments_loses_nothing_committed");
    let dir = tempfile::tempdir().expect("temp dir");
    let address = regtest_address().to_string();
    let mut node = Daemon::regtest(dir.path()).await;
    node.call::<Vec<String>>("generatetoaddress", json!([10, address])).await;

    for round in 1..=ROUNDS {
        // Mine and reorganise in the background; kill the process mid-way.
        let worker = tokio::spawn(churn(node.rpc(), Rng::new(rng.next_u64())));
        let delay = rng.below(MAX_KILL_DELAY_MS + 1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill();
        let churned = match worker.await.expect("the churn task does not panic") {
            Ok(churned) => churned,
            Err(e) => panic!("round {round}: an rpc call failed before the kill: {e}\n{}", node.log_tail()),
        };
        drop(node);

        node = Daemon::regtest(dir.path()).await;
        let tip = check_against_replay(&node, round).await;
        eprintln!("round {round}: killed after {delay} ms and {churned} calls; restarted at height {}", tip.height);

        // It goes on accepting blocks (paid to an address of this round's:
        // see `churn` on why).
        let address = numbered_address(round as u64, bitcoin::Network::Regtest).to_string();
        let mined: Vec<String> = node.call("generatetoaddress", json!([2, address])).await;
        assert_eq!(mined.len(), 2);
        assert_eq!(node.call::<u64>("getblockcount", json!([])).await, tip.height + 2, "round {round}");
        assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, mined[1], "round {round}");
    }
}

/// Mines blocks, and now and then invalidates a recent block, mines a
/// competing branch and maybe reconsiders the old one, until a call fails for
/// want of a node. Returns how many calls succeeded; an error that is not the
/// connection's (a refused block, a failed invalidation) is an `Err`.
///
/// Each `generatetoaddress` pays a new address: a block built on the same
/// parent in the same second to the same address would be the very block
/// just invalidated, which the node (as Core) refuses as `duplicate-invalid`.
async fn churn(rpc: Arc<RpcClient>, mut rng: Rng) -> Result<u64, String> {
    let mut calls = 0u64;
    loop {
        let address = numbered_address(rng.next_u64(), bitcoin::Network::Regtest).to_string();
        let step = match rng.below(10) {
            0 | 1 => reorg(&rpc, &address, &mut rng, &mut calls).await,
            _ => {
                let n = 1 + rng.below(4);
                call::<Vec<String>>(&rpc, "generatetoaddress", json!([n, address]), &mut calls).await.map(drop)
            }
        };
        match step {
            Ok(()) => {}
            Err(ClientError::Transport { .. }) => return Ok(calls), // killed
            Err(e) => return Err(format!("{e}: {e:?}")),
        }
    }
}

async fn reorg(rpc: &RpcClient, address: &str, rng: &mut Rng, calls: &mut u64) -> Result<(), ClientError> {
    let height: u64 = call(rpc, "getblockcount", json!([]), calls).await?;
    let depth = rng.below(3).min(height.saturating_sub(1));
    let hash: String = call(rpc, "getblockhash", json!([height - depth]), calls).await?;
    call::<Value>(rpc, "invalidateblock", json!([hash]), calls).await?;
    let n = rng.below(depth + 3);
    if n > 0 {
        call::<Vec<String>>(rpc, "generatetoaddress", json!([n, address]), calls).await?;
    }
    if rng.below(2) == 0 {
        // The old branch comes back, and wins where it has more work.
        call::<Value>(rpc, "reconsiderblock", json!([hash]), calls).await?;
    }
    Ok(())
}

async fn call<T: serde::de::DeserializeOwned>(
    rpc: &RpcClient,
    method: &str,
    params: Value,
    calls: &mut u64,
) -> Result<T, ClientError> {
    let result = rpc.call(method, params).await?;
    *calls += 1;
    Ok(result)
}

/// The active tip after a restart.
struct Tip {
    height: u64,
}

/// Checks that `node` answers `getblockchaininfo`, serves every block of its
/// active chain (each linked to the one before), and that a fresh node fed
/// those blocks through `submitblock` ends with the same tip and UTXO set.
async fn check_against_replay(node: &Daemon, round: usize) -> Tip {
    let info: Value = node.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["chain"], "regtest", "round {round}");
    let height = info["blocks"].as_u64().expect("blocks is a number");
    let best = info["bestblockhash"].as_str().expect("bestblockhash is a string").to_owned();
    assert!(info["headers"].as_u64().expect("headers is a number") >= height, "round {round}: {info}");
    assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, best, "round {round}");

    let rpc = node.rpc();
    let hashes = batch_strings(&rpc, (0..=height).map(|h| ("getblockhash", json!([h]))).collect()).await;
    assert_eq!(hashes.last(), Some(&best), "round {round}: the tip is the last block of the active chain");
    let raw_blocks = batch_strings(&rpc, hashes.iter().map(|h| ("getblock", json!([h, 0]))).collect()).await;
    for (h, (hash, raw)) in hashes.iter().zip(&raw_blocks).enumerate() {
        let block: Block = deserialize_hex(raw).unwrap_or_else(|e| panic!("round {round}: block {h} decodes: {e}"));
        assert_eq!(&block.block_hash().to_string(), hash, "round {round}: block {h}");
        if h > 0 {
            assert_eq!(block.header.prev_blockhash.to_string(), hashes[h - 1], "round {round}: block {h} links");
        }
    }

    let replay_dir = tempfile::tempdir().expect("temp dir");
    let replay = Daemon::regtest(replay_dir.path()).await;
    let replay_rpc = replay.rpc();
    for (i, chunk) in raw_blocks[1..].chunks(REPLAY_BATCH).enumerate() {
        let calls: Vec<(&str, Value)> = chunk.iter().map(|raw| ("submitblock", json!([raw]))).collect();
        let outcomes = replay_rpc.batch(&calls).await.expect("the replay node answers a batch");
        for (j, outcome) in outcomes.into_iter().enumerate() {
            let h = 1 + i * REPLAY_BATCH + j;
            assert_eq!(outcome, Ok(Value::Null), "round {round}: replaying block {h}");
        }
    }
    assert_eq!(replay.call::<String>("getbestblockhash", json!([])).await, best, "round {round}");
    let ours: Value = node.call("gettxoutsetinfo", json!([])).await;
    let fresh: Value = replay.call("gettxoutsetinfo", json!([])).await;
    assert_eq!(ours["bestblock"], best.as_str(), "round {round}");
    for field in ["height", "bestblock", "txouts", "transactions", "total_amount", "hash_serialized_3"] {
        assert_eq!(ours[field], fresh[field], "round {round}: gettxoutsetinfo {field}\nnode: {ours}\nreplay: {fresh}");
    }
    Tip { height }
}

/// Runs `calls` as batches and returns their string results, in order.
async fn batch_strings(rpc: &RpcClient, calls: Vec<(&str, Value)>) -> Vec<String> {
    let mut out = Vec::with_capacity(calls.len());
    for chunk in calls.chunks(REPLAY_BATCH) {
        for (i, outcome) in rpc.batch(chunk).await.expect("the node answers a batch").into_iter().enumerate() {
            match outcome {
                Ok(Value::String(s)) => out.push(s),
                other => panic!("{} {}: {other:?}", chunk[i].0, chunk[i].1),
            }
        }
    }
    out
}
