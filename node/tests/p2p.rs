//! End to end: the P2P network of real `satpool-node` binaries on regtest
//! over loopback. Blocks and transactions relay between nodes; a network
//! split into halves mines two branches and converges on the heavier one when
//! it heals; a node started late syncs 2,000 blocks headers-first; and a raw
//! TCP peer, speaking the handshake with rust-bitcoin's `p2p` types as
//! Bitcoin Core documents it, is banned for garbage, an oversized message or
//! an invalid block while the honest nodes carry on. A pruned node signals
//! NETWORK_LIMITED and not NETWORK, as Core does, and is asked only for the
//! blocks a limited peer must keep; a node announces its `--externalip` (or
//! the address its outbound peers see) and its peers learn it; a fresh
//! address a peer announces is relayed on to the next node, as Core relays
//! it, while a long `addr` message is not and a flood is rate-limited.
//!
//! The interoperability test against python-bitcoinlib is `p2p_interop.rs`.
//!
//! Bitcoin Core itself is not available here; the raw peer stands in for
//! another implementation of the protocol.

mod harness;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic, ServiceFlags};
use bitcoin::{Block, BlockHash};
use harness::{regtest_address, Daemon};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Safety limit for anything to propagate (never an assertion about speed).
const LIMIT: Duration = Duration::from_secs(120);
const REGTEST_MAGIC: Magic = Magic::REGTEST;

async fn node(dir: &std::path::Path) -> Daemon {
    // Only the connections the test makes: no automatic outbound ones.
    Daemon::start("regtest", dir, &["--connect=0"]).await
}

/// Polls `check` until it holds; panics with `what` after [`LIMIT`].
async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(from: &Daemon, to: &Daemon) {
    let _: Value = from.call("addnode", json!([to.p2p_addr(), "onetry"])).await;
    wait_for("the connection", || async {
        let peers: Vec<Value> = from.call("getpeerinfo", json!([])).await;
        peers.iter().any(|p| p["addr"] == to.p2p_addr())
    })
    .await;
}

async fn best(node: &Daemon) -> String {
    node.call("getbestblockhash", json!([])).await
}

async fn mine(node: &Daemon, n: u64) -> Vec<String> {
    node.call("generatetoaddress", json!([n, regtest_address().to_string()])).await
}

async fn in_mempool(node: &Daemon, txid: &str) -> bool {
    let pool: Vec<String> = node.call("getrawmempool", json!([])).await;
    pool.iter().any(|t| t == txid)
}

async fn all_at(nodes: &[&Daemon], hash: &str) {
    for (i, n) in nodes.iter().enumerate() {
        wait_for(&format!("node {i} to reach {hash}"), || async { best(n).await == hash }).await;
    }
}

/// A wallet on `node` with mature coins; its mining address.
async fn funded_wallet(node: &Daemon) -> String {
    let _: Value = node.call("createwallet", json!(["w"])).await;
    let address: String = node.call("getnewaddress", json!([])).await;
    let _: Value = node.call("generatetoaddress", json!([101, address])).await;
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_handshake_and_relay_blocks_and_transactions() {
    let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d0.path()).await;
    let b = node(d1.path()).await;
    connect(&b, &a).await;

    // The handshake as Core reports it.
    let peers: Vec<Value> = a.call("getpeerinfo", json!([])).await;
    assert_eq!(peers.len(), 1, "{peers:?}");
    let p = &peers[0];
    assert_eq!(p["subver"], "/satpool:0.1.0/");
    assert_eq!(p["version"], 70016);
    assert_eq!(p["services"], "0000000000000409");
    assert_eq!(p["inbound"], true);
    assert_eq!(p["relaytxes"], true);
    assert_eq!(p["connection_type"], "inbound");
    let info: Value = b.call("getnetworkinfo", json!([])).await;
    assert_eq!(info["subversion"], "/satpool:0.1.0/");
    assert_eq!(info["protocolversion"], 70016);
    assert_eq!(info["localservices"], "0000000000000409");
    assert_eq!((info["connections"].as_u64(), info["connections_out"].as_u64()), (Some(1), Some(1)));
    let count: u64 = a.call("getconnectioncount", json!([])).await;
    assert_eq!(count, 1);

    // A block mined on one reaches the other; so does a wallet payment.
    let address = funded_wallet(&a).await;
    all_at(&[&a, &b], &best(&a).await).await;
    let txid: String = a.call("sendtoaddress", json!([address, 1.5])).await;
    wait_for("the transaction to reach b", || in_mempool(&b, &txid)).await;
    let hashes = mine(&b, 1).await;
    all_at(&[&a, &b], &hashes[0]).await;
    wait_for("the mined transaction to leave a's mempool", || async { !in_mempool(&a, &txid).await }).await;

    // Errors with Core's codes.
    let err = a.call_err("disconnectnode", json!(["127.0.0.1:1"])).await;
    assert_eq!(err.code.code(), -29);
    let err = a.call_err("addnode", json!(["127.0.0.1:1", "remove"])).await;
    assert_eq!(err.code.code(), -24);
    let _: Value = a.call("addnode", json!(["127.0.0.1:1", "add"])).await;
    let err = a.call_err("addnode", json!(["127.0.0.1:1", "add"])).await;
    assert_eq!(err.code.code(), -23);
    let err = a.call_err("setban", json!(["not-an-ip", "add"])).await;
    assert_eq!(err.code.code(), -30);
    let _: Value = a.call("ping", json!([])).await;
}

/// `node`'s only `getpeerinfo` row.
async fn only_peer(node: &Daemon) -> Value {
    let peers: Vec<Value> = node.call("getpeerinfo", json!([])).await;
    assert_eq!(peers.len(), 1, "{peers:?}");
    peers.into_iter().next().expect("one peer")
}

/// Whether `node` has the data of block `hash` (connected or not).
async fn has_block(node: &Daemon, hash: &str) -> bool {
    node.rpc().call::<Value>("getblock", json!([hash, 0])).await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pruned_node_signals_network_limited_and_is_asked_only_for_its_last_blocks() {
    let (df, dp, dn) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = node(df.path()).await;
    let hashes = mine(&full, 400).await; // hashes[i] is at height i + 1
    let tip = hashes.last().unwrap().clone();
    let pruned = Daemon::start("regtest", dp.path(), &["--connect=0", "--prune=550"]).await;
    connect(&pruned, &full).await;
    all_at(&[&pruned], &tip).await;

    // Core's service bits, and their names, as each side prints them.
    let info: Value = pruned.call("getnetworkinfo", json!([])).await;
    assert_eq!(info["localservices"], "0000000000000408");
    assert_eq!(info["localservicesnames"], json!(["WITNESS", "NETWORK_LIMITED"]));
    let seen_by_full = only_peer(&full).await;
    assert_eq!(seen_by_full["services"], "0000000000000408", "a pruned node does not claim NETWORK");
    assert_eq!(seen_by_full["servicesnames"], json!(["WITNESS", "NETWORK_LIMITED"]));
    let seen_by_pruned = only_peer(&pruned).await;
    assert_eq!(seen_by_pruned["services"], "0000000000000409", "a full node signals LIMITED too");
    assert_eq!(seen_by_pruned["servicesnames"], json!(["NETWORK", "WITNESS", "NETWORK_LIMITED"]));
    let info: Value = full.call("getnetworkinfo", json!([])).await;
    assert_eq!(info["localservicesnames"], json!(["NETWORK", "WITNESS", "NETWORK_LIMITED"]));

    // A fresh node that knows only the pruned one: every header, but only the
    // blocks less than 286 below its tip (Core's NODE_NETWORK_LIMITED_MIN_BLOCKS
    // of 288, less a margin of 2), so heights 115 to 400.
    let fresh = node(dn.path()).await;
    connect(&fresh, &pruned).await;
    let (lowest_served, highest_unserved) = (&hashes[114], &hashes[113]);
    wait_for("the last 286 blocks from the pruned peer", || async {
        let row = only_peer(&fresh).await;
        has_block(&fresh, lowest_served).await
            && has_block(&fresh, &tip).await
            && row["inflight"].as_array().is_some_and(|a| a.is_empty())
    })
    .await;
    let err = fresh.call_err("getblock", json!([highest_unserved, 0])).await;
    assert!(err.message.contains("not available"), "{err:?}");
    let chain: Value = fresh.call("getblockchaininfo", json!([])).await;
    assert_eq!((chain["blocks"].as_u64(), chain["headers"].as_u64()), (Some(0), Some(400)));
    assert_eq!(only_peer(&fresh).await["addr"], pruned.p2p_addr(), "still connected: never asked too deep");
    assert!(!pruned.log().contains("NODE_NETWORK_LIMITED threshold"), "the pruned node was never asked too deep");

    // A full peer fills the gap, and the fresh node reaches the tip.
    connect(&fresh, &full).await;
    all_at(&[&fresh], &tip).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_announces_its_external_address_and_its_peers_learn_it() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start("regtest", da.path(), &["--connect=0", "--externalip=127.0.0.2"]).await;
    // Core announces nothing during initial block download: leave it.
    mine(&a, 1).await;
    let a_port = a.p2p_port().expect("the harness chose the P2P port");
    let info: Value = a.call("getnetworkinfo", json!([])).await;
    assert_eq!(info["localaddresses"], json!([{"address": "127.0.0.2", "port": a_port, "score": 4}]));

    let b = node(db.path()).await;
    connect(&b, &a).await;
    wait_for("a's announced address in b's address book", || async {
        let book: Vec<Value> = b.call("getnodeaddresses", json!([0])).await;
        book.iter().any(|e| e["address"] == "127.0.0.2" && e["port"] == a_port)
    })
    .await;
    let book: Vec<Value> = b.call("getnodeaddresses", json!([0, "ipv4"])).await;
    let entry = book.iter().find(|e| e["address"] == "127.0.0.2").expect("found above");
    assert_eq!(entry["services"], 0x409);
    assert_eq!(entry["network"], "ipv4");
    assert!(entry["time"].as_i64().is_some_and(|t| t > 1_700_000_000), "{entry}");

    // B has no --externalip: it adopted the address a's version said it
    // has, with its own listening port, and announced that to a.
    let b_port = b.p2p_port().expect("the harness chose the P2P port");
    let discovered = json!([{"address": "127.0.0.1", "port": b_port, "score": 1}]);
    wait_for("b's discovered address", || async {
        let info: Value = b.call("getnetworkinfo", json!([])).await;
        info["localaddresses"] == discovered
    })
    .await;
    wait_for("b's announced address in a's address book", || async {
        let book: Vec<Value> = a.call("getnodeaddresses", json!([0])).await;
        book.iter().any(|e| e["address"] == "127.0.0.1" && e["port"] == b_port)
    })
    .await;

    // getnodeaddresses as Core answers it.
    let one: Vec<Value> = b.call("getnodeaddresses", json!([])).await;
    assert_eq!(one.len(), 1, "one address unless asked for more");
    let none: Vec<Value> = b.call("getnodeaddresses", json!([0, "onion"])).await;
    assert!(none.is_empty());
    assert_eq!(b.call_err("getnodeaddresses", json!([-1])).await.code.code(), -8);
    assert_eq!(b.call_err("getnodeaddresses", json!([0, "tor"])).await.code.code(), -8);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_nodes_relay_split_and_converge_on_the_heavier_chain() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for d in &dirs {
        nodes.push(node(d.path()).await);
    }
    let n: Vec<&Daemon> = nodes.iter().collect();
    // A ring: 1->0, 2->1, 3->2, 3->0 (outbound -> inbound).
    connect(n[1], n[0]).await;
    connect(n[2], n[1]).await;
    connect(n[3], n[2]).await;
    connect(n[3], n[0]).await;

    let address = funded_wallet(n[0]).await;
    all_at(&n, &best(n[0]).await).await;

    // A transaction sent to one node reaches all.
    let txid: String = n[0].call("sendtoaddress", json!([address, 2.0])).await;
    for (i, node) in n.iter().enumerate() {
        wait_for(&format!("the transaction at node {i}"), || in_mempool(node, &txid)).await;
    }
    // A block mined on one reaches all, and takes the transaction with it.
    let hashes = mine(n[2], 1).await;
    all_at(&n, &hashes[0]).await;
    for node in &n {
        wait_for("the transaction to be mined", || async { !in_mempool(node, &txid).await }).await;
    }
    // High-bandwidth compact block relay carried blocks between our nodes.
    for miner in &n {
        let hashes = mine(miner, 1).await;
        all_at(&n, &hashes[0]).await;
    }
    assert!(
        n.iter().any(|node| node.log().contains("block reconstructed from compact block")),
        "some block travelled as a compact block"
    );
    let peers: Vec<Value> = n[0].call("getpeerinfo", json!([])).await;
    assert!(peers.iter().any(|p| p["bip152_hb_from"] == true || p["bip152_hb_to"] == true), "{peers:?}");

    // Split: {0, 1} and {2, 3}.
    let _: Value = n[2].call("disconnectnode", json!([n[1].p2p_addr()])).await;
    let _: Value = n[3].call("disconnectnode", json!([n[0].p2p_addr()])).await;
    for (i, node) in n.iter().enumerate() {
        wait_for(&format!("node {i} to have one peer"), || async {
            node.call::<u64>("getconnectioncount", json!([])).await == 1
        })
        .await;
    }

    // The light side mines a payment into two blocks; the heavy side three.
    let orphaned_tx: String = n[0].call("sendtoaddress", json!([address, 3.0])).await;
    wait_for("the payment at node 1", || in_mempool(n[1], &orphaned_tx)).await;
    let light = mine(n[0], 2).await;
    all_at(&[n[0], n[1]], light.last().unwrap()).await;
    assert!(!in_mempool(n[0], &orphaned_tx).await);
    assert!(!in_mempool(n[2], &orphaned_tx).await, "the halves are apart");
    let heavy = mine(n[3], 3).await;
    all_at(&[n[2], n[3]], heavy.last().unwrap()).await;

    // Heal: every node converges on the heavier chain, and the payment from
    // the orphaned branch is back in every mempool.
    connect(n[2], n[1]).await;
    all_at(&n, heavy.last().unwrap()).await;
    for (i, node) in n.iter().enumerate() {
        wait_for(&format!("the orphaned payment back at node {i}"), || in_mempool(node, &orphaned_tx)).await;
        let tips: Vec<Value> = node.call("getchaintips", json!([])).await;
        if i < 2 {
            assert!(tips.iter().any(|t| t["hash"] == json!(light.last().unwrap())), "{tips:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_node_syncs_2000_blocks_headers_first() {
    let (d0, d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d0.path()).await;
    let b = node(d1.path()).await;
    connect(&b, &a).await;
    mine(&a, 2000).await;
    let tip = best(&a).await;
    all_at(&[&a, &b], &tip).await;

    let late = node(d2.path()).await;
    connect(&late, &a).await;
    connect(&late, &b).await;
    let started = Instant::now();
    all_at(&[&late], &tip).await;
    eprintln!("2000 blocks synced in {:?}", started.elapsed());
    let info: Value = late.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["blocks"], 2000);
    assert_eq!(info["headers"], 2000);
    assert_eq!(info["verificationprogress"].as_f64(), Some(1.0));
    wait_for("both peers to be known synced", || async {
        let peers: Vec<Value> = late.call("getpeerinfo", json!([])).await;
        peers.len() == 2 && peers.iter().all(|p| p["synced_headers"] == 2000 && p["synced_blocks"] == 2000)
    })
    .await;
    assert!(late.log().contains("headers sync"), "a progress line is logged");
    assert!(late.log().contains("block sync progress"), "a progress line is logged");
}

/// A peer written against Core's documented protocol, on its own loopback
/// address so that banning it bans no honest node.
struct RawPeer {
    stream: TcpStream,
}

impl RawPeer {
    async fn connect(from: IpAddr, to: &Daemon) -> std::io::Result<RawPeer> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = socket.connect(to.p2p_addr().parse().unwrap()).await?;
        Ok(RawPeer { stream })
    }

    async fn send(&mut self, msg: NetworkMessage) {
        let bytes = encode::serialize(&RawNetworkMessage::new(REGTEST_MAGIC, msg));
        self.stream.write_all(&bytes).await.expect("the node accepts our bytes");
    }

    async fn recv(&mut self) -> Option<NetworkMessage> {
        let mut head = [0u8; 24];
        self.stream.read_exact(&mut head).await.ok()?;
        let len = u32::from_le_bytes(head[16..20].try_into().unwrap()) as usize;
        let mut frame = head.to_vec();
        frame.resize(24 + len, 0);
        self.stream.read_exact(&mut frame[24..]).await.ok()?;
        Some(encode::deserialize::<RawNetworkMessage>(&frame).expect("the node sends valid messages").into_payload())
    }

    /// version -> (version, wtxidrelay, sendaddrv2, verack) -> verack.
    async fn handshake(&mut self) -> VersionMessage {
        let addr = self.stream.peer_addr().unwrap();
        let mut version = VersionMessage::new(
            ServiceFlags::NETWORK | ServiceFlags::WITNESS,
            0,
            Address::new(&addr, ServiceFlags::NONE),
            Address::new(&self.stream.local_addr().unwrap(), ServiceFlags::NONE),
            rand_nonce(),
            "/raw-test-peer:0.1/".into(),
            0,
        );
        version.version = 70016;
        self.send(NetworkMessage::Version(version)).await;
        let mut theirs = None;
        let mut seen = Vec::new();
        while !seen.contains(&"verack") {
            let msg = tokio::time::timeout(LIMIT, self.recv()).await.expect("the node answers").expect("open");
            seen.push(msg.cmd());
            if let NetworkMessage::Version(v) = msg {
                theirs = Some(v);
            }
        }
        assert_eq!(seen, ["version", "wtxidrelay", "sendaddrv2", "verack"], "Core's handshake order");
        self.send(NetworkMessage::Verack).await;
        theirs.expect("a version came first")
    }

    /// Whether the node closes the connection within the limit.
    async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                _ => {}
            }
        }
        false
    }
}

fn rand_nonce() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

async fn banned(node: &Daemon, subnet: &str) -> bool {
    let list: Vec<Value> = node.call("listbanned", json!([])).await;
    list.iter().any(|b| b["address"] == subnet)
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_peers_are_disconnected_and_banned_while_others_carry_on() {
    let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d0.path()).await;
    let b = node(d1.path()).await;
    connect(&b, &a).await;
    mine(&a, 5).await;
    all_at(&[&a, &b], &best(&a).await).await;

    // Garbage after a good handshake.
    let ip2: IpAddr = "127.0.0.2".parse().unwrap();
    let mut garbage = RawPeer::connect(ip2, &a).await.unwrap();
    let theirs = garbage.handshake().await;
    assert_eq!(theirs.version, 70016);
    assert_eq!(theirs.services.to_u64(), 0x409);
    assert_eq!(theirs.user_agent, "/satpool:0.1.0/");
    assert_eq!(theirs.start_height, 5);
    assert!(theirs.relay);
    garbage.stream.write_all(b"this is not a bitcoin message, not even close!").await.unwrap();
    assert!(garbage.closed().await, "disconnected for garbage");
    wait_for("the garbage peer's ban", || banned(&a, "127.0.0.2/32")).await;
    // A banned address cannot come back.
    let mut again = RawPeer::connect(ip2, &a).await.unwrap();
    assert!(again.closed().await, "a banned address is refused");

    // An oversized message: refused on its header, before the payload.
    let mut big = RawPeer::connect("127.0.0.3".parse().unwrap(), &a).await.unwrap();
    big.handshake().await;
    let mut head = encode::serialize(&RawNetworkMessage::new(REGTEST_MAGIC, NetworkMessage::Ping(1)));
    head.truncate(24);
    head[4..16].copy_from_slice(b"block\0\0\0\0\0\0\0");
    head[16..20].copy_from_slice(&4_000_001u32.to_le_bytes());
    big.stream.write_all(&head).await.unwrap();
    assert!(big.closed().await, "disconnected for an oversized message");
    wait_for("the oversized peer's ban", || banned(&a, "127.0.0.3/32")).await;

    // An invalid block: its merkle root does not match its transactions.
    let mut bad = RawPeer::connect("127.0.0.4".parse().unwrap(), &a).await.unwrap();
    bad.handshake().await;
    let tip: String = best(&a).await;
    let tip_block: String = a.call("getblock", json!([tip, 0])).await;
    let mut block: Block = encode::deserialize(&hex::decode(tip_block).unwrap()).unwrap();
    block.header.prev_blockhash = tip.parse::<BlockHash>().unwrap();
    block.header.merkle_root = bitcoin::TxMerkleNode::from_byte_array([7; 32]);
    block.header.time += 1;
    let target = block.header.target();
    while !target.is_met_by(block.header.block_hash()) {
        block.header.nonce += 1;
    }
    bad.send(NetworkMessage::Block(block)).await;
    assert!(bad.closed().await, "disconnected for an invalid block");
    wait_for("the invalid block peer's ban", || banned(&a, "127.0.0.4/32")).await;

    // The honest nodes carry on.
    let count: u64 = a.call("getconnectioncount", json!([])).await;
    assert_eq!(count, 1);
    let hashes = mine(&b, 1).await;
    all_at(&[&a, &b], &hashes[0]).await;

    // Bans persist across a restart, and can be lifted.
    let list: Vec<Value> = a.call("listbanned", json!([])).await;
    assert_eq!(list.len(), 3, "{list:?}");
    drop(a);
    let a = Daemon::start("regtest", d0.path(), &["--connect=0"]).await;
    assert!(banned(&a, "127.0.0.2/32").await, "the ban list was reloaded");
    let _: Value = a.call("setban", json!(["127.0.0.2", "remove"])).await;
    let err = a.call_err("setban", json!(["127.0.0.2", "remove"])).await;
    assert_eq!(err.code.code(), -30);
    let _: Value = a.call("setban", json!(["10.0.0.0/8", "add", 60])).await;
    let err = a.call_err("setban", json!(["10.0.0.0/8", "add"])).await;
    assert_eq!(err.code.code(), -23);
    let _: Value = a.call("clearbanned", json!([])).await;
    let list: Vec<Value> = a.call("listbanned", json!([])).await;
    assert!(list.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_blocks_are_pushed_to_high_bandwidth_peers_and_missing_transactions_served() {
    use bitcoin::bip152::BlockTransactionsRequest;
    use bitcoin::p2p::message_blockdata::GetHeadersMessage;
    use bitcoin::p2p::message_compact_blocks::{GetBlockTxn, SendCmpct};

    let d0 = tempfile::tempdir().unwrap();
    let a = node(d0.path()).await;
    let address = funded_wallet(&a).await;
    let tip: BlockHash = best(&a).await.parse().unwrap();

    // A peer that asks for high-bandwidth compact blocks (BIP 152 version 2)
    // and tells the node, through its locator, which block it has.
    let mut peer = RawPeer::connect("127.0.0.5".parse().unwrap(), &a).await.unwrap();
    peer.handshake().await;
    peer.send(NetworkMessage::SendCmpct(SendCmpct { send_compact: true, version: 2 })).await;
    peer.send(NetworkMessage::GetHeaders(GetHeadersMessage::new(vec![tip], BlockHash::all_zeros()))).await;
    let mut saw_sendcmpct = false;
    loop {
        match tokio::time::timeout(LIMIT, peer.recv()).await.expect("the node answers").expect("open") {
            NetworkMessage::Headers(h) => {
                assert!(h.is_empty(), "we are at its tip");
                break;
            }
            NetworkMessage::SendCmpct(SendCmpct { version, .. }) => {
                assert_eq!(version, 2);
                saw_sendcmpct = true;
            }
            _ => {}
        }
    }

    let txid: String = a.call("sendtoaddress", json!([address, 1.0])).await;
    let mined = mine(&a, 1).await;
    let compact = loop {
        match tokio::time::timeout(LIMIT, peer.recv()).await.expect("the node pushes").expect("open") {
            NetworkMessage::CmpctBlock(c) => break c.compact_block,
            NetworkMessage::SendCmpct(_) => saw_sendcmpct = true,
            NetworkMessage::Inv(items) => {
                assert!(
                    !items.iter().any(|i| matches!(i, bitcoin::p2p::message_blockdata::Inventory::Block(_))),
                    "a high-bandwidth peer gets the compact block, not an inv"
                );
            }
            _ => {}
        }
    };
    assert!(saw_sendcmpct, "the node offered compact blocks version 2");
    assert_eq!(compact.header.block_hash().to_string(), mined[0]);
    assert_eq!(compact.prefilled_txs.len(), 1, "the coinbase is prefilled");
    assert_eq!(compact.short_ids.len(), 1, "the payment travels as a short id");

    // The peer lacks the payment: getblocktxn brings it.
    let request = BlockTransactionsRequest { block_hash: compact.header.block_hash(), indexes: vec![1] };
    peer.send(NetworkMessage::GetBlockTxn(GetBlockTxn { txs_request: request })).await;
    let txs = loop {
        let msg = tokio::time::timeout(LIMIT, peer.recv()).await.expect("the node answers").expect("open");
        if let NetworkMessage::BlockTxn(t) = msg {
            break t.transactions;
        }
    };
    assert_eq!(txs.transactions.len(), 1);
    assert_eq!(txs.transactions[0].compute_txid().to_string(), txid);
    assert!(!txs.transactions[0].input[0].witness.is_empty(), "sent with its witness");
}

/// Unix seconds now, as an `addr` timestamp.
fn unix_now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32
}

/// Whether `node`'s address book holds `ip:port`.
async fn knows_address(node: &Daemon, ip: &str, port: u16) -> bool {
    let book: Vec<Value> = node.call("getnodeaddresses", json!([0])).await;
    book.iter().any(|e| e["address"] == ip && e["port"] == port)
}

/// `node`'s `getpeerinfo` row for the peer connecting from `ip`, if any.
async fn peer_from(node: &Daemon, ip: IpAddr) -> Option<Value> {
    let peers: Vec<Value> = node.call("getpeerinfo", json!([])).await;
    peers
        .into_iter()
        .find(|p| p["addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok()).is_some_and(|a| a.ip() == ip))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_address_is_relayed_down_a_line_of_nodes_and_a_long_addr_message_is_not() {
    let (da, db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, c) = (node(da.path()).await, node(db.path()).await, node(dc.path()).await);
    // A - B - C: A and C know only B, and ask it for addresses, so B
    // relays addresses to both.
    connect(&a, &b).await;
    connect(&c, &b).await;
    wait_for("b to relay addresses to a and c", || async {
        let peers: Vec<Value> = b.call("getpeerinfo", json!([])).await;
        peers.len() == 2 && peers.iter().all(|p| p["addr_relay_enabled"] == true)
    })
    .await;
    const PORT: u16 = 18444;

    // Eleven fresh addresses in one message: more than Core relays (10).
    // A new peer may send one address at once and then 0.1 a second, so
    // B processes the first (123.0.0.1) and drops the rest, counting them.
    let flooder_ip: IpAddr = "127.0.0.3".parse().unwrap();
    let mut flooder = RawPeer::connect(flooder_ip, &b).await.unwrap();
    flooder.handshake().await;
    let now = unix_now();
    let long: Vec<(u32, Address)> = (1..=11)
        .map(|i| (now, Address::new(&SocketAddr::from(([123, 0, 0, i], PORT)), ServiceFlags::NETWORK)))
        .collect();
    flooder.send(NetworkMessage::Addr(long)).await;
    wait_for("b to process the long addr message", || async {
        peer_from(&b, flooder_ip).await.is_some_and(|p| {
            let (processed, limited) = (p["addr_processed"].as_u64(), p["addr_rate_limited"].as_u64());
            processed.zip(limited).is_some_and(|(p, l)| p >= 1 && l >= 1 && p + l == 11)
        })
    })
    .await;
    assert!(knows_address(&b, "123.0.0.1", PORT).await, "b learnt the address it processed");
    // Gone, so that it is no candidate to relay the next address to.
    drop(flooder);
    wait_for("the flooder to be gone from b", || async { peer_from(&b, flooder_ip).await.is_none() }).await;

    // One fresh address in a message of its own: B relays it to A and C.
    let announcer_ip: IpAddr = "127.0.0.4".parse().unwrap();
    let mut announcer = RawPeer::connect(announcer_ip, &b).await.unwrap();
    announcer.handshake().await;
    let fresh = SocketAddr::from(([123, 0, 0, 99], PORT));
    announcer.send(NetworkMessage::Addr(vec![(unix_now(), Address::new(&fresh, ServiceFlags::NETWORK))])).await;
    wait_for("the fresh address in c's address book", || knows_address(&c, "123.0.0.99", PORT)).await;
    wait_for("the fresh address in a's address book", || knows_address(&a, "123.0.0.99", PORT)).await;
    // B handled the long message first, so had it relayed its address, C
    // would have had it no later than the fresh one.
    assert!(!knows_address(&c, "123.0.0.1", PORT).await, "an address from a long addr message is not relayed");
    assert!(!knows_address(&a, "123.0.0.1", PORT).await, "an address from a long addr message is not relayed");

    let row = peer_from(&b, announcer_ip).await.expect("the announcer is connected");
    assert_eq!((row["addr_processed"].as_u64(), row["addr_rate_limited"].as_u64()), (Some(1), Some(0)), "{row}");
    // C asked B for addresses, so what B relays is within C's allowance.
    let from_b = only_peer(&c).await;
    assert!(from_b["addr_processed"].as_u64().is_some_and(|n| n >= 1), "{from_b}");
    assert_eq!(from_b["addr_rate_limited"], 0, "{from_b}");
}
