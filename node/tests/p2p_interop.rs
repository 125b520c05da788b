//! Interoperability with a Bitcoin P2P implementation that nobody here wrote:
//! python-bitcoinlib (Debian's `python3-bitcoinlib`, by Peter Todd et al.).
//! Bitcoin Core itself cannot be installed here; python-bitcoinlib encodes
//! and decodes the messages, blocks and transactions on its own, so a
//! mistake in rust-bitcoin or in our framing shows up as a disagreement.
//!
//! `tests/interop/peer.py` is the peer. Against a real `satpool-node
//! --network regtest` it
//!
//! - connects, and checks the node's `version` (protocol 70016, services,
//!   start height, relay flag, the address it sees us at) and Core's
//!   handshake order; pings and answers pings;
//! - asks for headers from genesis and checks them against `getblockhash`;
//! - fetches blocks as witness blocks and plain ones, and decodes them
//!   (hash, transaction count, sizes against `getblock`, and
//!   python-bitcoinlib's own `CheckBlock`: proof of work, merkle root,
//!   witness commitment);
//! - is told of a segwit transaction by `inv`, fetches it with
//!   `MSG_WITNESS_TX` and checks its txid and wtxid against the mempool;
//! - builds a block of its own on `getblocktemplate` (coinbase, witness
//!   commitment, merkle root, proof of work, all in python-bitcoinlib) and
//!   sends it with `block`: the node takes it as its new tip;
//! - then listens, and the node connects out to it (`addnode ... onetry`):
//!   the handshake with our node as the outbound side, and the node
//!   announcing its own address, which it learnt from the peer's `version`.
//!
//! Without python-bitcoinlib the test says so and passes, like the
//! PostgreSQL tests; with `SATPOOL_TEST_REQUIRE_BITCOINLIB` set (CI) it fails.

mod harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::{regtest_address, Daemon};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Safety limit for the peer's next line (never an assertion about speed).
const LIMIT: Duration = Duration::from_secs(300);
/// Set to make a missing python-bitcoinlib a failure instead of a skip.
const REQUIRE_ENV: &str = "SATPOOL_TEST_REQUIRE_BITCOINLIB";

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/peer.py")
}

/// A Python 3 that imports python-bitcoinlib: `$SATPOOL_TEST_PYTHON`, else
/// `python3` from the PATH, else `/usr/bin/python3` (Debian's package
/// installs for the system interpreter, which a pyenv or virtualenv
/// `python3` earlier on the PATH does not see).
fn python_with_bitcoinlib() -> Option<String> {
    let candidates: Vec<String> = match std::env::var("SATPOOL_TEST_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec!["python3".into(), "/usr/bin/python3".into()],
    };
    candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import bitcoin, bitcoin.core, bitcoin.messages"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The peer script as a child process, spoken to through its standard streams.
struct PyPeer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr_path: PathBuf,
}

impl PyPeer {
    fn spawn(python: &str, args: &[&str], dir: &Path, name: &str) -> PyPeer {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("the test dir is writable");
        let mut child = Command::new(python)
            .arg(peer_script())
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().expect("stdin is piped");
        let lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        PyPeer { child, stdin, lines, stderr_path }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The next JSON line it writes.
    async fn next(&mut self) -> Value {
        loop {
            let line = match tokio::time::timeout(LIMIT, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => panic!("peer.py ended without a result; its stderr:\n{}", self.stderr()),
                Ok(Err(e)) => panic!("reading peer.py's output: {e}"),
                Err(_) => panic!("peer.py said nothing within {LIMIT:?}; its stderr:\n{}", self.stderr()),
            };
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.is_object() => return v,
                _ => eprintln!("peer.py: {line}"),
            }
        }
    }

    async fn reply(&mut self, value: Value) {
        let mut line = value.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.expect("peer.py reads its stdin");
        self.stdin.flush().await.expect("peer.py reads its stdin");
    }

    /// Waits for the process to end (it has printed its result).
    async fn finish(mut self) {
        let status = tokio::time::timeout(LIMIT, self.child.wait()).await;
        assert!(matches!(status, Ok(Ok(s)) if s.success()), "peer.py exited with {status:?}:\n{}", self.stderr());
    }
}

/// The node's `getpeerinfo` row for the peer at `addr`, once the peer has
/// answered the node's ping (so the row is complete).
async fn peer_row(node: &Daemon, addr: &str) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let peers: Vec<Value> = node.call("getpeerinfo", json!([])).await;
        match peers.into_iter().find(|p| p["addr"] == addr) {
            Some(p) if p.get("pingtime").is_some() => return p,
            _ => assert!(Instant::now() < deadline, "timed out waiting for {addr} in getpeerinfo with a ping time"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A block as python-bitcoinlib decoded it, against the node's `getblock`:
/// the library's `CheckBlock`, the transactions, and the sizes (`stripped`:
/// fetched without witnesses).
async fn check_block(node: &Daemon, block: &Value, stripped: bool) {
    let info: Value = node.call("getblock", json!([s(&block["hash"])])).await;
    assert_eq!(block["check_block"], "ok", "{block}");
    assert_eq!(block["ntx"], info["nTx"], "{block}");
    assert_eq!(block["txids"], info["tx"], "{block}");
    let size = if stripped { &info["strippedsize"] } else { &info["size"] };
    assert_eq!(&block["size"], size, "{block}");
    assert_eq!(block["stripped_size"], info["strippedsize"], "{block}");
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a string"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_bitcoinlib_peer_syncs_relays_and_mines_with_the_node_both_ways() {
    let Some(python) = python_with_bitcoinlib() else {
        assert!(
            std::env::var_os(REQUIRE_ENV).is_none(),
            "{REQUIRE_ENV} is set but no python3 imports python-bitcoinlib (apt-get install python3-bitcoinlib)"
        );
        eprintln!("skipped: python-bitcoinlib is not installed (apt-get install python3-bitcoinlib)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start("regtest", dir.path(), &["--connect=0"]).await;
    let _: Value = node.call("createwallet", json!(["w"])).await;
    let wallet_address: String = node.call("getnewaddress", json!([])).await;
    let _: Vec<String> = node.call("generatetoaddress", json!([101, wallet_address])).await;
    let payout_script = hex::encode(regtest_address().script_pubkey().as_bytes());

    // ---- The peer connects to the node. ----
    let mut py = PyPeer::spawn(&python, &["connect", &node.p2p_addr()], dir.path(), "connect");
    let mut sent = (String::new(), String::new());
    let mut mined = String::new();
    let mut template_txid = String::new();
    let mut row = Value::Null;
    let result = loop {
        let msg = py.next().await;
        if let Some(result) = msg.get("result") {
            break result.clone();
        }
        match msg["request"].as_str() {
            Some("send_tx") => {
                let txid: String = node.call("sendtoaddress", json!([wallet_address, 1.0])).await;
                let entry: Value = node.call("getmempoolentry", json!([txid])).await;
                sent = (txid, s(&entry["wtxid"]).to_owned());
                py.reply(json!({"txid": sent.0, "wtxid": sent.1})).await;
            }
            Some("mine_block") => {
                let hashes: Vec<String> =
                    node.call("generatetoaddress", json!([1, regtest_address().to_string()])).await;
                mined = hashes[0].clone();
                py.reply(json!({"hash": mined})).await;
            }
            Some("template") => {
                template_txid = node.call("sendtoaddress", json!([wallet_address, 2.0])).await;
                let template: Value = node.call("getblocktemplate", json!([{"rules": ["segwit"]}])).await;
                py.reply(json!({"template": template, "payout_script": payout_script})).await;
            }
            Some("peerinfo") => {
                row = peer_row(&node, s(&msg["addr"])).await;
                py.reply(json!({})).await;
            }
            other => panic!("peer.py asked for {other:?}: {msg}"),
        }
    };
    py.finish().await;
    eprintln!("python-bitcoinlib {}", result["library_version"]);
    assert_eq!(result["error"], Value::Null, "peer.py failed: {result:#}");

    // The handshake: Core's order, and our version's fields as the peer decoded them.
    assert_eq!(result["handshake_order"], json!(["version", "wtxidrelay", "sendaddrv2", "verack"]));
    let v = &result["node_version"];
    assert_eq!(v["version"], 70016);
    assert_eq!(v["services"], 0x409, "NETWORK | WITNESS | NETWORK_LIMITED");
    assert_eq!(v["start_height"], 101);
    assert_eq!(v["relay"], true);
    assert_eq!(v["user_agent"], "/satpool:0.1.0/");
    assert_eq!(v["addr_recv"], result["our_addr"], "the node tells us where it sees us");
    assert_eq!(v["addr_recv_services"], 0);
    assert_eq!(v["nonce_nonzero"], true);
    assert!(v["time_skew"].as_i64().is_some_and(|t| t.abs() < 600), "{v}");
    assert_eq!(result["pong_nonce_matched"], true);
    assert!(result["pings_answered"].as_u64() >= Some(1), "the node pinged us and got our pong");
    let received: Vec<&str> = result["received"].as_array().unwrap().iter().map(s).collect();
    for cmd in ["sendheaders", "sendcmpct", "feefilter", "ping", "pong", "headers", "inv", "tx", "block"] {
        assert!(received.contains(&cmd), "{cmd} in {received:?}");
    }
    // The node's view of the peer.
    assert_eq!(row["inbound"], true);
    assert_eq!(row["connection_type"], "inbound");
    assert_eq!(row["version"], 70016);
    assert!(s(&row["subver"]).starts_with("/python-bitcoinlib:"), "{row}");
    assert_eq!(row["services"], "0000000000000009");
    assert_eq!(row["servicesnames"], json!(["NETWORK", "WITNESS"]));
    assert_eq!(row["startingheight"], 0);
    assert_eq!(row["relaytxes"], true);

    // Headers from genesis: the node's chain, hash for hash.
    let genesis: String = node.call("getblockhash", json!([0])).await;
    assert_eq!(result["genesis"], genesis.as_str(), "python-bitcoinlib's regtest genesis is the node's");
    let headers = result["headers"].as_array().unwrap();
    assert_eq!(headers.len(), 101);
    for (i, hash) in headers.iter().enumerate() {
        let expected: String = node.call("getblockhash", json!([i + 1])).await;
        assert_eq!(s(hash), expected, "header at height {}", i + 1);
    }
    assert_eq!(result["headers_chain"], true);
    assert_eq!(result["headers_pow_ok"], true);

    // Blocks as python-bitcoinlib decodes them, against getblock.
    let tip = &result["tip_block"];
    assert_eq!(s(&tip["hash"]), s(headers.last().unwrap()));
    check_block(&node, tip, false).await;

    // The segwit transaction, announced by inv and fetched with its witness.
    let tx = &result["tx"];
    assert_eq!(s(&tx["txid"]), sent.0);
    assert_eq!(s(&tx["wtxid"]), sent.1);
    assert_ne!(sent.0, sent.1, "a segwit transaction's wtxid is not its txid");
    assert_eq!(tx["has_witness"], true);

    // The block mined by RPC, announced and fetched with and without witnesses.
    let with = &result["mined_block"];
    let without = &result["mined_block_stripped"];
    assert_eq!(s(&with["hash"]), mined);
    assert_eq!(s(&without["hash"]), mined);
    assert_eq!(with["ntx"], 2);
    assert_eq!(s(&with["txids"][1]), sent.0);
    assert_eq!(s(&with["wtxids"][1]), sent.1);
    assert_eq!(with["witness"][1], true);
    assert_eq!(without["witness"], json!([false, false]), "MSG_BLOCK strips witnesses");
    check_block(&node, with, false).await;
    check_block(&node, without, true).await;

    // The peer's own block, built by python-bitcoinlib on our template: the new tip.
    let ours = &result["our_block"];
    assert_eq!(ours["check_block"], "ok", "python-bitcoinlib accepts its own block: {ours}");
    assert_eq!(ours["commitment_matches_template"], true, "the same witness commitment as the template's");
    assert_eq!(result["our_block_in_node_chain"], true);
    let best: String = node.call("getbestblockhash", json!([])).await;
    assert_eq!(best, s(&ours["hash"]), "the node took the peer's block as its tip");
    assert_eq!(s(&ours["txids"][1]), template_txid);
    check_block(&node, ours, false).await;
    let pool: Vec<String> = node.call("getrawmempool", json!([])).await;
    assert!(!pool.contains(&template_txid), "the block's transaction left the mempool");
    let height: u64 = node.call("getblockcount", json!([])).await;
    assert_eq!(height, 103);

    // ---- The node connects out to the peer. ----
    let mut py = PyPeer::spawn(&python, &["listen"], dir.path(), "listen");
    let mut row = Value::Null;
    let result = loop {
        let msg = py.next().await;
        if let Some(result) = msg.get("result") {
            break result.clone();
        }
        match msg["request"].as_str() {
            Some("connect") => {
                let _: Value = node.call("addnode", json!([s(&msg["addr"]), "onetry"])).await;
                py.reply(json!({})).await;
            }
            Some("peerinfo") => {
                row = peer_row(&node, s(&msg["addr"])).await;
                py.reply(json!({})).await;
            }
            other => panic!("peer.py asked for {other:?}: {msg}"),
        }
    };
    py.finish().await;
    assert_eq!(result["error"], Value::Null, "peer.py failed: {result:#}");
    assert_eq!(result["first_messages"], json!(["version"]), "the outbound side speaks first");
    assert_eq!(result["handshake_order"], json!(["version", "wtxidrelay", "sendaddrv2", "verack"]));
    let v = &result["node_version"];
    assert_eq!(v["version"], 70016);
    assert_eq!(v["services"], 0x409);
    assert_eq!(v["start_height"], 103);
    assert_eq!(v["relay"], true);
    assert_eq!(v["addr_recv"], result["listen_addr"]);
    assert_eq!(result["pong_nonce_matched"], true);
    let received: Vec<&str> = result["received"].as_array().unwrap().iter().map(s).collect();
    assert!(received.contains(&"getaddr"), "an outbound node asks for addresses: {received:?}");
    assert_eq!(row["inbound"], false);
    assert_eq!(row["connection_type"], "manual");
    assert_eq!(row["services"], "0000000000000408");
    assert_eq!(row["servicesnames"], json!(["WITNESS", "NETWORK_LIMITED"]));
    assert!(s(&row["subver"]).starts_with("/python-bitcoinlib:"), "{row}");
    // The node learnt its address from the peer's version (addr_recv), paired
    // it with its listening port, and announced it.
    let own = format!("127.0.0.1:{}", node.p2p_port().expect("the harness chose the P2P port"));
    let addrs: Vec<&str> = result["addrs"].as_array().unwrap().iter().map(s).collect();
    assert!(addrs.contains(&own.as_str()), "{own} in {addrs:?}");
    assert!(result["addr_services"].as_array().unwrap().contains(&json!(0x409)), "{result}");
    let info: Value = node.call("getnetworkinfo", json!([])).await;
    let local = json!({"address": "127.0.0.1", "port": node.p2p_port(), "score": 1});
    assert_eq!(info["localaddresses"], json!([local]), "{info}");
}
