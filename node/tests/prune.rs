//! Whitepaper section 7 end to end on regtest: a node with a low (test-only)
//! prune target follows a chain of 1,100 blocks, deletes the old block data,
//! keeps the last 288 blocks and what a reorganisation needs, keeps its
//! state across a restart, and ends with the same UTXO set as a node that
//! prunes nothing.

mod harness;

use std::process::{Command, Stdio};

use harness::{regtest_address, Daemon, NODE_BIN};
use serde_json::{json, Value};

const BLOCKS: u32 = 1_100;
const KEEP: u32 = 288;
/// Bytes of block and undo data the pruned node keeps (about 300 small blocks).
const TARGET: &str = "--test-prune-target-bytes=120000";

async fn expect_error(node: &Daemon, method: &str, params: Value, code: i32, message: &str) {
    let err = node.call_err(method, params.clone()).await;
    assert_eq!((err.code.code(), err.message.as_str()), (code, message), "{method} {params}");
}

async fn hash_at(node: &Daemon, height: u32) -> String {
    node.call("getblockhash", json!([height])).await
}

/// Runs the binary with `args` and returns its exit success and output.
fn run_refused(datadir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(NODE_BIN)
        .arg("--network=regtest")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--rpcport={}", harness::free_port()))
        .args(args)
        .env_remove("SATPOOL_NETWORK")
        .env_remove("SATPOOL_DATADIR")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "satpool-node {args:?} should refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn pruned_node_follows_a_long_chain() {
    let full_dir = tempfile::tempdir().expect("a temp dir");
    let pruned_dir = tempfile::tempdir().expect("a temp dir");
    let full = Daemon::regtest(full_dir.path()).await;
    let pruned_flags = ["--prune=550", TARGET];
    let mut pruned = Daemon::start("regtest", pruned_dir.path(), &pruned_flags).await;

    // Core's refusals of the setting itself.
    let refused = run_refused(tempfile::tempdir().expect("a temp dir").path(), &["--prune=100"]);
    assert!(refused.contains("Prune configured below the minimum of 550 MiB"), "{refused}");

    let info: Value = pruned.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["pruned"], true);
    assert_eq!(info["automatic_pruning"], true);
    assert_eq!(info["prune_target_size"], 120_000);
    assert_eq!(info["pruneheight"], 0, "nothing pruned yet");
    let info: Value = full.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["pruned"], false);
    assert!(info.get("pruneheight").is_none());

    // The unpruned node mines; the pruned one receives every block.
    let _: Value = full.call("generatetoaddress", json!([BLOCKS, regtest_address().to_string()])).await;
    for height in 1..=BLOCKS {
        let hash = hash_at(&full, height).await;
        let raw: String = full.call("getblock", json!([hash, 0])).await;
        let result: Value = pruned.call("submitblock", json!([raw])).await;
        assert_eq!(result, Value::Null, "block {height}");
    }
    assert_eq!(pruned.call::<u32>("getblockcount", json!([])).await, BLOCKS);

    let info: Value = pruned.call("getblockchaininfo", json!([])).await;
    let first = u32::try_from(info["pruneheight"].as_u64().expect("pruneheight")).expect("a height");
    assert!(first > 1 && first <= BLOCKS - KEEP + 1, "pruneheight {first}");
    // Below it: gone, with Core's error; the header stays.
    let gone = hash_at(&pruned, first - 1).await;
    expect_error(&pruned, "getblock", json!([gone, 1]), -1, "Block not available (pruned data)").await;
    expect_error(&pruned, "getblock", json!([gone, 0]), -1, "Block not available (pruned data)").await;
    let header: Value = pruned.call("getblockheader", json!([gone])).await;
    assert_eq!(header["nTx"], 1);
    // From it up, and surely the last 288: still there.
    for height in [first, BLOCKS - KEEP + 1, BLOCKS] {
        let _: Value = pruned.call("getblock", json!([hash_at(&pruned, height).await, 1])).await;
    }

    // Same UTXO set as the node that keeps everything.
    let utxo = |node: &Daemon| {
        let rpc = node.rpc();
        async move { rpc.call::<Value>("gettxoutsetinfo", json!([])).await.expect("gettxoutsetinfo") }
    };
    let (a, b) = (utxo(&full).await, utxo(&pruned).await);
    assert_eq!(a["hash_serialized_3"], b["hash_serialized_3"]);
    assert_eq!(a["txouts"], b["txouts"]);

    // A reorganisation within the kept blocks still works.
    let tip = hash_at(&pruned, BLOCKS).await;
    let third = hash_at(&pruned, BLOCKS - 2).await;
    let _: Value = pruned.call("invalidateblock", json!([third])).await;
    assert_eq!(pruned.call::<u32>("getblockcount", json!([])).await, BLOCKS - 3);
    let _: Value = pruned.call("reconsiderblock", json!([third])).await;
    assert_eq!(pruned.call::<String>("getbestblockhash", json!([])).await, tip);

    // pruneblockchain: Core's checks, then down to the last 288.
    expect_error(
        &pruned,
        "pruneblockchain",
        json!([BLOCKS + 1]),
        -8,
        "Blockchain is shorter than the attempted prune height.",
    )
    .await;
    expect_error(&pruned, "pruneblockchain", json!([-1]), -8, "Negative block height.").await;
    let last: i64 = pruned.call("pruneblockchain", json!([BLOCKS])).await;
    assert_eq!(last, i64::from(BLOCKS - KEEP));
    expect_error(&full, "pruneblockchain", json!([10]), -1, "Cannot prune blocks because node is not in prune mode.")
        .await;

    // A restart keeps it all; without --prune the node refuses to start.
    let _: Value = pruned.call("stop", json!([])).await;
    assert!(pruned.wait_exit().await.success());
    drop(pruned);
    let refused = run_refused(pruned_dir.path(), &[]);
    assert!(refused.contains("You need to rebuild the database using -reindex"), "{refused}");
    let pruned = Daemon::start("regtest", pruned_dir.path(), &pruned_flags).await;
    let info: Value = pruned.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["pruneheight"], BLOCKS - KEEP + 1);
    assert_eq!(info["blocks"], BLOCKS);
    expect_error(&pruned, "getblock", json!([gone, 1]), -1, "Block not available (pruned data)").await;
    assert_eq!(utxo(&pruned).await["hash_serialized_3"], a["hash_serialized_3"]);
    // And it goes on: new blocks, pruned as they age.
    let _: Value = pruned.call("generatetoaddress", json!([10, regtest_address().to_string()])).await;
    let info: Value = pruned.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["blocks"], BLOCKS + 10);
}
