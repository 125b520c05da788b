//! End to end: the real `satpool-node` binary on regtest, driven over
//! loopback JSON-RPC, answering as Bitcoin Core does (results, error codes
//! and messages, HTTP statuses, shutdown).

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness,
};
use harness::{cookie_authorization, p2wpkh_address, regtest_address, Daemon};
use satpool_rpc::{Auth, ClientError, ErrorCode, RpcClient};
use serde_json::{json, Value};

const REGTEST_GENESIS: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

/// Core's `getdifficulty` for regtest's `207fffff`, as Core prints it
/// (UniValue writes doubles with 16 significant digits).
const REGTEST_DIFFICULTY: &str = "4.656542373906925e-10";

/// A JSON number as UniValue would print it: 16 significant digits.
///
/// The node prints the shortest text that round-trips (`4.6565423739069247e-10`),
/// Core 16 digits (`4.656542373906925e-10`): the same computation, a
/// different double once parsed. Compared this way until the node prints as
/// Core does.
fn core_digits(value: &Value) -> String {
    let x = value.as_f64().unwrap_or_else(|| panic!("{value} is a number"));
    let text = format!("{x:.15e}");
    // Rust writes `4.656542373906925e-10`; trim zeros of the mantissa as %g does.
    let (mantissa, exponent) = text.split_once('e').expect("an exponent");
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e{exponent}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regtest_rpc_answers_like_bitcoin_core() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Daemon::regtest(dir.path()).await;
    let address = regtest_address();
    assert!(address.to_string().starts_with("bcrt1q"), "{address}");

    // The genesis block.
    let genesis: String = node.call("getblockhash", json!([0])).await;
    assert_eq!(genesis, REGTEST_GENESIS);
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 0);

    // Mining.
    let hashes: Vec<String> = node.call("generatetoaddress", json!([101, address.to_string()])).await;
    assert_eq!(hashes.len(), 101);
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 101);
    assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, hashes[100]);
    for (height, hash) in [(1, &hashes[0]), (50, &hashes[49]), (101, &hashes[100])] {
        assert_eq!(&node.call::<String>("getblockhash", json!([height])).await, hash, "height {height}");
    }
    let info: Value = node.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["chain"], "regtest");
    assert_eq!(info["blocks"], 101);
    assert_eq!(info["headers"], 101);
    assert_eq!(info["bestblockhash"], hashes[100].as_str());
    assert_eq!(info["chainwork"], chainwork_at(101));
    assert_eq!(core_digits(&node.call("getdifficulty", json!([])).await), REGTEST_DIFFICULTY);
    assert_eq!(core_digits(&info["difficulty"]), REGTEST_DIFFICULTY);

    // getblock, verbosity 0: the raw block, whose hash is the one asked for.
    let at_100 = &hashes[99];
    let raw: String = node.call("getblock", json!([at_100, 0])).await;
    let block: Block = deserialize_hex(&raw).expect("getblock 0 is a serialized block");
    assert_eq!(block.block_hash().to_string(), *at_100);
    assert_eq!(serialize_hex(&block), raw, "hex round-trips");
    let coinbase = &block.txdata[0];

    // Verbosity 1: header fields and transaction ids.
    let v1: Value = node.call("getblock", json!([at_100, 1])).await;
    assert_eq!(v1["hash"], at_100.as_str());
    assert_eq!(v1["height"], 100);
    assert_eq!(v1["confirmations"], 2);
    assert_eq!(v1["previousblockhash"], hashes[98].as_str());
    assert_eq!(v1["nextblockhash"], hashes[100].as_str());
    assert_eq!(v1["merkleroot"], block.header.merkle_root.to_string());
    assert_eq!(v1["chainwork"], chainwork_at(100));
    assert_eq!(v1["bits"], "207fffff");
    assert_eq!(core_digits(&v1["difficulty"]), REGTEST_DIFFICULTY);
    assert_eq!(v1["version"], block.header.version.to_consensus());
    assert_eq!(v1["time"], block.header.time);
    assert_eq!(v1["nonce"], block.header.nonce);
    assert_eq!(v1["nTx"], 1);
    assert_eq!(v1["size"], raw.len() / 2);
    assert_eq!(v1["tx"], json!([coinbase.compute_txid().to_string()]));
    for field in ["mediantime", "strippedsize", "weight", "versionHex", "target"] {
        assert!(v1.get(field).is_some(), "getblock 1 has {field}: {v1}");
    }
    // The default verbosity is 1.
    assert_eq!(node.call::<Value>("getblock", json!([at_100])).await, v1);

    // Verbosity 2: decoded transactions.
    let v2: Value = node.call("getblock", json!([at_100, 2])).await;
    let tx = &v2["tx"][0];
    assert_eq!(tx["txid"], coinbase.compute_txid().to_string());
    assert_eq!(tx["hex"], serialize_hex(coinbase));
    assert_eq!(tx["vin"][0]["coinbase"], hex::encode(coinbase.input[0].script_sig.as_bytes()));
    assert_eq!(tx["vin"][0]["sequence"], 0xffff_ffffu32);
    assert_eq!(tx["vout"][0]["value"], 50.0);
    assert_eq!(tx["vout"][0]["n"], 0);
    assert_eq!(tx["vout"][0]["scriptPubKey"]["address"], address.to_string());
    assert_eq!(tx["vout"][0]["scriptPubKey"]["type"], "witness_v0_keyhash");
    assert_eq!(tx["vout"][0]["scriptPubKey"]["hex"], hex::encode(address.script_pubkey().as_bytes()));
    // Segwit is active from genesis on regtest: the witness commitment.
    assert_eq!(tx["vout"][1]["scriptPubKey"]["type"], "nulldata");
    assert_eq!(v2["nextblockhash"], hashes[100].as_str());

    // getblockheader: 80 bytes when not verbose, the start of the block.
    let header_hex: String = node.call("getblockheader", json!([at_100, false])).await;
    assert_eq!(header_hex.len(), 160);
    assert_eq!(header_hex, raw[..160]);
    let header: Header = deserialize_hex(&header_hex).expect("an 80-byte header");
    assert_eq!(header.block_hash().to_string(), *at_100);
    let verbose: Value = node.call("getblockheader", json!([at_100])).await;
    assert_eq!(verbose["hash"], at_100.as_str());
    assert_eq!(verbose["height"], 100);
    assert_eq!(verbose["nTx"], 1);
    assert_eq!(verbose["nextblockhash"], hashes[100].as_str());
    let genesis_header: Value = node.call("getblockheader", json!([REGTEST_GENESIS, true])).await;
    assert_eq!(genesis_header["height"], 0);
    assert_eq!(genesis_header["confirmations"], 102);
    assert!(genesis_header.get("previousblockhash").is_none(), "{genesis_header}");

    // Errors, with Core's codes and messages.
    for height in [102, -1] {
        let e = node.call_err("getblockhash", json!([height])).await;
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidParameter, "Block height out of range"));
    }
    let unknown = "11".repeat(32);
    for method in ["getblock", "getblockheader"] {
        let e = node.call_err(method, json!([unknown])).await;
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidAddressOrKey, "Block not found"), "{method}");
    }
    let e = node.call_err("getblock", json!(["abcd"])).await;
    assert_eq!(e.code, ErrorCode::InvalidParameter);
    assert!(e.message.contains("must be of length 64 (not 4, for 'abcd')"), "{}", e.message);
    let e = node.call_err("getblockhash", json!(["1"])).await;
    assert_eq!(e.code, ErrorCode::TypeError, "{}", e.message);
    let e = node.call_err("getblock", json!([12])).await;
    assert_eq!(e.code, ErrorCode::TypeError, "{}", e.message);
    let e = node.call_err("nosuchmethod", json!([])).await;
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::MethodNotFound, "Method not found"));

    // invalidateblock / reconsiderblock and getchaintips.
    node.call::<Value>("invalidateblock", json!([at_100])).await;
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 99);
    assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, hashes[98]);
    let tips: Vec<Value> = node.call("getchaintips", json!([])).await;
    assert_eq!(tips.len(), 2, "{tips:?}");
    assert!(
        tips.contains(&json!({"height": 101, "hash": hashes[100], "branchlen": 2, "status": "invalid"})),
        "{tips:?}"
    );
    assert!(tips.contains(&json!({"height": 99, "hash": hashes[98], "branchlen": 0, "status": "active"})), "{tips:?}");
    let off_chain: Value = node.call("getblockheader", json!([at_100])).await;
    assert_eq!(off_chain["confirmations"], -1);
    assert!(off_chain.get("nextblockhash").is_none(), "{off_chain}");
    node.call::<Value>("reconsiderblock", json!([at_100])).await;
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 101);
    assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, hashes[100]);
    let tips: Vec<Value> = node.call("getchaintips", json!([])).await;
    assert_eq!(tips, vec![json!({"height": 101, "hash": hashes[100], "branchlen": 0, "status": "active"})]);

    // submitblock.
    let known: String = node.call("getblock", json!([hashes[49], 0])).await;
    assert_eq!(node.call::<Value>("submitblock", json!([known])).await, json!("duplicate"));
    for malformed in ["zz", "00", "abc", "", &raw[..raw.len() - 2]] {
        let e = node.call_err("submitblock", json!([malformed])).await;
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::DeserializationError, "Block decode failed"),
            "submitblock {malformed:.20}"
        );
    }
    let e = node.call_err("submitblock", json!([12])).await;
    assert_eq!(e.code, ErrorCode::TypeError, "{}", e.message);
    let tip: Value = node.call("getblockheader", json!([hashes[100]])).await;
    let tip_time = tip["time"].as_u64().expect("a header has a time") as u32;
    let tip_hash: BlockHash = hashes[100].parse().expect("a block hash");
    let mut bad_merkle = regtest_block(tip_hash, 102, tip_time + 1);
    bad_merkle.header.merkle_root = TxMerkleNode::from_byte_array([0x42; 32]);
    solve(&mut bad_merkle);
    assert_eq!(node.call::<Value>("submitblock", json!([serialize_hex(&bad_merkle)])).await, json!("bad-txnmrklroot"));
    // A block made here (no witness commitment: it has no witness data).
    let mut handmade = regtest_block(tip_hash, 102, tip_time + 1);
    solve(&mut handmade);
    assert_eq!(node.call::<Value>("submitblock", json!([serialize_hex(&handmade)])).await, Value::Null);
    assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, handmade.block_hash().to_string());
    assert_eq!(node.call::<Value>("submitblock", json!([serialize_hex(&handmade)])).await, json!("duplicate"));

    // generateblock without submitting, then submitblock of its hex.
    let generated: Value = node.call("generateblock", json!([address.to_string(), [], false])).await;
    let hex = generated["hex"].as_str().expect("generateblock submit=false returns hex");
    let block: Block = deserialize_hex(hex).expect("generateblock returns a block");
    assert_eq!(generated["hash"], block.block_hash().to_string());
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 102, "not submitted yet");
    assert_eq!(node.call::<Value>("submitblock", json!([hex])).await, Value::Null);
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 103);
    assert_eq!(node.call::<String>("getbestblockhash", json!([])).await, block.block_hash().to_string());
    let submitted: Value = node.call("generateblock", json!([address.to_string(), []])).await;
    assert!(submitted.get("hex").is_none(), "{submitted}");
    assert_eq!(node.call::<Value>("getbestblockhash", json!([])).await, submitted["hash"]);

    // validateaddress.
    let mainnet = p2wpkh_address(bitcoin::Network::Bitcoin);
    assert!(mainnet.to_string().starts_with("bc1q"), "{mainnet}");
    for other in ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", &mainnet.to_string(), "notanaddress"] {
        let v: Value = node.call("validateaddress", json!([other])).await;
        assert_eq!(v["isvalid"], false, "{other}: {v}");
    }
    let v: Value = node.call("validateaddress", json!([address.to_string()])).await;
    assert_eq!(v["isvalid"], true, "{v}");
    assert_eq!(v["address"], address.to_string());
    assert_eq!(v["scriptPubKey"], hex::encode(address.script_pubkey().as_bytes()));
    assert_eq!(v["iswitness"], true);
    assert_eq!(v["witness_version"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_wrong_credentials_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Daemon::regtest(dir.path()).await;
    let authorization = cookie_authorization(dir.path());

    // 100 MB, announced in Content-Length: refused before it is read.
    let (port, auth) = (node.port(), authorization.clone());
    let status = tokio::task::spawn_blocking(move || post_large_body(port, &auth, BodyFraming::ContentLength))
        .await
        .expect("the request thread finishes");
    assert_eq!(status, 413);
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 0, "the node still answers");

    // 100 MB, chunked (its size unannounced): refused once the limit is passed.
    let (port, auth) = (node.port(), authorization.clone());
    let status = tokio::task::spawn_blocking(move || post_large_body(port, &auth, BodyFraming::Chunked))
        .await
        .expect("the request thread finishes");
    assert_eq!(status, 413);
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 0, "the node still answers");

    // Wrong password, and no credentials at all: 401.
    let wrong = RpcClient::new(node.url(), Auth::user_password(satpool_rpc::COOKIE_USER, "wrong"))
        .expect("an rpc client can be built");
    match wrong.call::<Value>("getblockcount", json!([])).await {
        Err(ClientError::Unauthorized { .. }) => {}
        other => panic!("expected 401 Unauthorized, got {other:?}"),
    }
    let (port, head) = (node.port(), raw_post_head(None, 2));
    let status = tokio::task::spawn_blocking(move || raw_status(port, &head, b"{}")).await.expect("thread");
    assert_eq!(status, 401);
    let (port, head) = (node.port(), raw_post_head(Some(&authorization), 2));
    let status = tokio::task::spawn_blocking(move || raw_status(port, &head, b"[]")).await.expect("thread");
    assert_eq!(status, 200, "the right cookie is accepted over raw HTTP");
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 0, "the node still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_rpc_exits_with_status_zero_and_removes_the_cookie() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = Daemon::regtest(dir.path()).await;
    let cookie = dir.path().join(satpool_rpc::COOKIE_FILE);
    assert!(cookie.exists());
    let reply: Value = node.call("stop", json!([])).await;
    assert!(reply.as_str().is_some_and(|s| s.contains("stopping")), "{reply}");
    let status = node.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", node.log_tail());
    assert!(!cookie.exists(), "the cookie is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_with_status_zero_and_removes_the_cookie() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = Daemon::regtest(dir.path()).await;
    let cookie = dir.path().join(satpool_rpc::COOKIE_FILE);
    let address = regtest_address().to_string();
    node.call::<Vec<String>>("generatetoaddress", json!([3, address])).await;
    node.terminate();
    let status = node.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", node.log_tail());
    assert!(!cookie.exists(), "the cookie is removed at shutdown");

    // What it committed is there on the next start.
    let node = Daemon::regtest(dir.path()).await;
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 3);
}

/// Regtest's chainwork after `height` blocks past genesis: 2 per block.
fn chainwork_at(height: u64) -> String {
    format!("{:064x}", 2 * (height + 1))
}

/// A regtest block at `height` on `prev`: one coinbase (BIP 34 height and
/// `OP_0`, as Core's miner writes it) paying 50 coins to `OP_TRUE`, no
/// witness; the nonce is not searched.
fn regtest_block(prev: BlockHash, height: i64, time: u32) -> Block {
    let coinbase = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new().push_int(height).push_opcode(bitcoin::opcodes::OP_0).into_script(),
            sequence: Sequence::MAX,
            witness: Witness::default(),
        }],
        output: vec![TxOut { value: Amount::from_btc(50.0).expect("50 coins"), script_pubkey: op_true() }],
    };
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata: vec![coinbase],
    };
    block.header.merkle_root = block.compute_merkle_root().expect("a block with a coinbase has a merkle root");
    block
}

fn op_true() -> bitcoin::ScriptBuf {
    bitcoin::ScriptBuf::from_bytes(vec![0x51])
}

/// Searches the nonce (regtest: about one try in two).
fn solve(block: &mut Block) {
    while !block.header.target().is_met_by(block.block_hash()) {
        block.header.nonce += 1;
    }
}

#[derive(Debug, Clone, Copy)]
enum BodyFraming {
    ContentLength,
    Chunked,
}

/// The size of the oversized body.
const LARGE_BODY: usize = 100 * 1024 * 1024;

/// POSTs a 100 MB body, writing it on another thread while the reply is read
/// here, and returns the HTTP status. The writer stops at the first error (the
/// server may close the connection without reading the rest).
fn post_large_body(port: u16, authorization: &str, framing: BodyFraming) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the node listens");
    // Safety limits only: a server that neither answers nor reads fails the test.
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("set a read timeout");
    stream.set_write_timeout(Some(Duration::from_secs(120))).expect("set a write timeout");
    let framing_header = match framing {
        BodyFraming::ContentLength => format!("Content-Length: {LARGE_BODY}"),
        BodyFraming::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\n{framing_header}\r\n\r\n"
    );
    let mut writer = stream.try_clone().expect("a socket can be cloned");
    let writing = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < LARGE_BODY {
            match framing {
                BodyFraming::ContentLength => writer.write_all(&chunk)?,
                BodyFraming::Chunked => {
                    writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                    writer.write_all(&chunk)?;
                    writer.write_all(b"\r\n")?;
                }
            }
            sent += chunk.len();
        }
        if let BodyFraming::Chunked = framing {
            writer.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    });
    let status = read_status(&mut stream);
    // Unblocks the writer if the server stopped reading but kept the connection.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writing.join().expect("the writer thread does not panic");
    status
}

fn raw_post_head(authorization: Option<&str>, body_len: usize) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n")
}

fn raw_status(port: u16, head: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the node listens");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("set a read timeout");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    read_status(&mut stream)
}

/// Reads an HTTP status line (`HTTP/1.1 413 ...`) and returns the code.
fn read_status(stream: &mut TcpStream) -> u16 {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => break,
            Err(e) => panic!("reading the status line failed after {:?}: {e}", String::from_utf8_lossy(&line)),
        }
    }
    let text = String::from_utf8_lossy(&line);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {text:?}"))
}
