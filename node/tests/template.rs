//! End to end: `getblocktemplate` (BIP 22/23), `getmininginfo` and
//! `getnetworkhashps` from the real `satpool-node` binary on regtest, used
//! the way a pool written for Bitcoin Core uses them: build a block from the
//! template, propose it, submit it, long-poll for the next one.

mod harness;

use std::str::FromStr;
use std::time::Duration;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness,
};
use harness::{regtest_address, Daemon};
use satpool_rpc::{ClientError, ErrorCode};
use serde_json::{json, Value};

/// Safety limit for a long poll to answer after the tip moved.
const LONGPOLL_LIMIT: Duration = Duration::from_secs(90);

const SEGWIT_RULE_ERROR: &str =
    "getblocktemplate must be called with the segwit rule set (call with {\"rules\": [\"segwit\"]})";

async fn template(node: &Daemon) -> Value {
    node.call("getblocktemplate", json!([{"rules": ["segwit"]}])).await
}

/// The block a pool would build from `template`: a BIP 34 coinbase paying
/// `coinbasevalue` (plus `overpay`) to `script`, the witness commitment with
/// the all-zero reserved value, the template's transactions in order, and
/// the nonce searched when `solve` is set.
fn block_from_template(template: &Value, script: ScriptBuf, overpay: u64, solve: bool) -> Block {
    let height = template["height"].as_i64().expect("height");
    let value = template["coinbasevalue"].as_u64().expect("coinbasevalue") + overpay;
    let tag = PushBytesBuf::try_from(b"satpool test".to_vec()).expect("a short push");
    let script_sig = Builder::new().push_int(height).push_slice(tag).into_script();
    let mut outputs = vec![TxOut { value: Amount::from_sat(value), script_pubkey: script }];
    let mut witness = Witness::default();
    if let Some(commitment) = template["default_witness_commitment"].as_str() {
        let bytes = hex::decode(commitment).expect("commitment hex");
        outputs.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::from_bytes(bytes) });
        witness.push([0u8; 32]);
    }
    let coinbase = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn { previous_output: OutPoint::null(), script_sig, sequence: Sequence::MAX, witness }],
        output: outputs,
    };
    let mut txdata = vec![coinbase];
    for tx in template["transactions"].as_array().expect("transactions") {
        let raw = hex::decode(tx["data"].as_str().expect("data")).expect("tx hex");
        txdata.push(bitcoin::consensus::deserialize(&raw).expect("a transaction"));
    }
    let bits = u32::from_str_radix(template["bits"].as_str().expect("bits"), 16).expect("bits hex");
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(template["version"].as_i64().expect("version") as i32),
            prev_blockhash: BlockHash::from_str(template["previousblockhash"].as_str().expect("prev"))
                .expect("prev hash"),
            merkle_root: TxMerkleNode::all_zeros(),
            time: template["curtime"].as_u64().expect("curtime") as u32,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().expect("a block has transactions");
    if solve {
        let target = block.header.target();
        while !target.is_met_by(block.header.block_hash()) {
            block.header.nonce += 1;
        }
    }
    block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_as_bitcoin_core_serves_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Daemon::regtest(dir.path()).await;
    let address = regtest_address();
    let script = address.script_pubkey();

    // The segwit rule is required, as in Core.
    for params in [json!([]), json!([{}]), json!([{"rules": []}]), json!([{"rules": ["csv"]}])] {
        let e = node.call_err("getblocktemplate", params.clone()).await;
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{params}");
        assert_eq!(e.message, SEGWIT_RULE_ERROR, "{params}");
    }
    let e = node.call_err("getblocktemplate", json!([{"rules": ["segwit"], "mode": "bogus"}])).await;
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidParameter, "Invalid mode"));

    let _: Vec<String> = node.call("generatetoaddress", json!([5, address.to_string()])).await;
    let best: String = node.call("getbestblockhash", json!([])).await;
    let info: Value = node.call("getblockchaininfo", json!([])).await;

    // An empty mempool: the subsidy alone, and the commitment to no transactions.
    let t = template(&node).await;
    assert_eq!(t["capabilities"], json!(["proposal"]));
    assert_eq!(t["version"], json!(0x2000_0000));
    assert_eq!(t["rules"], json!(["csv", "!segwit", "taproot"]));
    assert_eq!(t["vbavailable"], json!({}));
    assert_eq!(t["vbrequired"], json!(0));
    assert_eq!(t["previousblockhash"], json!(best));
    assert_eq!(t["transactions"], json!([]));
    assert_eq!(t["coinbaseaux"], json!({}));
    assert_eq!(t["coinbasevalue"], json!(5_000_000_000u64));
    assert_eq!(t["longpollid"], json!(format!("{best}0")));
    assert_eq!(t["target"], json!(format!("7fffff{}", "0".repeat(58))));
    assert_eq!(t["mintime"], json!(info["mediantime"].as_u64().expect("mediantime") + 1));
    assert_eq!(t["mutable"], json!(["time", "transactions", "prevblock"]));
    assert_eq!(t["noncerange"], json!("00000000ffffffff"));
    assert_eq!(t["sigoplimit"], json!(80_000));
    assert_eq!(t["sizelimit"], json!(4_000_000));
    assert_eq!(t["weightlimit"], json!(4_000_000));
    assert!(t["curtime"].as_u64() >= t["mintime"].as_u64());
    assert_eq!(t["bits"], json!("207fffff"));
    assert_eq!(t["height"], json!(6));
    // SHA-256d(merkle root of [0…0] ‖ 0…0): the commitment of a coinbase-only block.
    let empty_root = bitcoin::hashes::sha256d::Hash::hash(&[0u8; 64]);
    assert_eq!(t["default_witness_commitment"], json!(format!("6a24aa21a9ed{}", hex::encode(empty_root))));

    // getmininginfo reports that template.
    let mining: Value = node.call("getmininginfo", json!([])).await;
    assert_eq!(mining["blocks"], json!(5));
    assert_eq!(mining["currentblocktx"], json!(0));
    assert_eq!(mining["currentblockweight"], json!(8_000));
    assert_eq!(mining["bits"], json!("207fffff"));
    assert_eq!(mining["chain"], json!("regtest"));
    assert_eq!(mining["pooledtx"], json!(0));
    assert_eq!(mining["warnings"], json!([]));
    assert_eq!(mining["next"]["height"], json!(6));
    assert!(mining["networkhashps"].as_f64().is_some());
    let e = node.call_err("getnetworkhashps", json!([0])).await;
    assert_eq!(e.code, ErrorCode::InvalidParameter);
    let e = node.call_err("getnetworkhashps", json!([120, 6])).await;
    assert_eq!(e.message, "Block does not exist at specified height");
    let at_genesis: f64 = node.call("getnetworkhashps", json!([120, 0])).await;
    assert_eq!(at_genesis, 0.0);

    // Proposals: checked in full against the tip, nothing kept.
    let proposal = block_from_template(&t, script.clone(), 0, false);
    let answer: Value =
        node.call("getblocktemplate", json!([{"mode": "proposal", "data": serialize_hex(&proposal)}])).await;
    assert_eq!(answer, Value::Null, "a valid proposal (proof of work is not checked)");
    let greedy = block_from_template(&t, script.clone(), 1, false);
    let answer: Value =
        node.call("getblocktemplate", json!([{"mode": "proposal", "data": serialize_hex(&greedy)}])).await;
    assert_eq!(answer, json!("bad-cb-amount"));
    let mut elsewhere = proposal.clone();
    elsewhere.header.prev_blockhash = BlockHash::all_zeros();
    let answer: Value =
        node.call("getblocktemplate", json!([{"mode": "proposal", "data": serialize_hex(&elsewhere)}])).await;
    assert_eq!(answer, json!("inconclusive-not-best-prevblk"));
    let e = node.call_err("getblocktemplate", json!([{"mode": "proposal", "data": "00"}])).await;
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::DeserializationError, "Block decode failed"));
    let e = node.call_err("getblocktemplate", json!([{"mode": "proposal"}])).await;
    assert_eq!(e.code, ErrorCode::DeserializationError);
    assert_eq!(node.call::<u32>("getblockcount", json!([])).await, 5, "proposals are not kept");

    // A block built from the template is accepted.
    let block = block_from_template(&t, script.clone(), 0, true);
    let submitted: Value = node.call("submitblock", json!([serialize_hex(&block)])).await;
    assert_eq!(submitted, Value::Null);
    let best: String = node.call("getbestblockhash", json!([])).await;
    assert_eq!(best, block.block_hash().to_string());
    let answer: Value =
        node.call("getblocktemplate", json!([{"mode": "proposal", "data": serialize_hex(&block)}])).await;
    assert_eq!(answer, json!("duplicate"));

    // The next template builds on it.
    let next = template(&node).await;
    assert_eq!(next["previousblockhash"], json!(best));
    assert_eq!(next["height"], json!(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_answers_when_the_tip_moves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Daemon::regtest(dir.path()).await;
    let address = regtest_address();
    let _: Vec<String> = node.call("generatetoaddress", json!([1, address.to_string()])).await;
    let first = template(&node).await;
    let longpollid = first["longpollid"].as_str().expect("longpollid").to_owned();

    // A pool's long poll, on its own connection.
    let rpc = node.rpc();
    let waiting = tokio::spawn(async move {
        rpc.call_with_timeout::<Value>(
            "getblocktemplate",
            json!([{"rules": ["segwit"], "longpollid": longpollid}]),
            LONGPOLL_LIMIT,
        )
        .await
    });
    // Another client mines a block.
    let mined: Vec<String> = node.call("generatetoaddress", json!([1, address.to_string()])).await;
    let answer = tokio::time::timeout(LONGPOLL_LIMIT, waiting)
        .await
        .expect("the long poll answers (safety limit)")
        .expect("the long-poll task ran");
    let fresh = match answer {
        Ok(t) => t,
        Err(ClientError::Rpc(e)) => panic!("long poll failed: {e:?}\n{}", node.log_tail()),
        Err(e) => panic!("long poll failed: {e:?}"),
    };
    // Only a template built after the new block can name it: the poll did not
    // answer early with the old one.
    assert_eq!(fresh["previousblockhash"], json!(mined[0]));
    assert_eq!(fresh["height"], json!(3));
    assert_ne!(fresh["longpollid"], first["longpollid"]);

    // A long-poll id from a tip that is already gone answers at once.
    let stale: Value =
        node.call("getblocktemplate", json!([{"rules": ["segwit"], "longpollid": first["longpollid"]}])).await;
    assert_eq!(stale["previousblockhash"], json!(mined[0]));
    let e = node.call_err("getblocktemplate", json!([{"rules": ["segwit"], "longpollid": "xyz"}])).await;
    assert_eq!(e.code, ErrorCode::InvalidParameter);
}

/// `OP_TRUE` as a P2WSH witness script: anyone can spend, with a standard output.
fn op_true() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x51])
}

/// A P2WSH(`OP_TRUE`) spend of `outpoint` (worth `value`) paying `fee`.
fn spend(outpoint: OutPoint, value: Amount, fee: Amount) -> Transaction {
    let mut witness = Witness::default();
    witness.push(op_true().as_bytes());
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn { previous_output: outpoint, script_sig: ScriptBuf::new(), sequence: Sequence::MAX, witness }],
        output: vec![TxOut { value: value - fee, script_pubkey: ScriptBuf::new_p2wsh(&op_true().wscript_hash()) }],
    }
}

/// The coinbase outpoint of the block at `height`, and its value.
async fn coinbase_at(node: &Daemon, height: u32) -> (OutPoint, Amount) {
    let hash: String = node.call("getblockhash", json!([height])).await;
    let raw: String = node.call("getblock", json!([hash, 0])).await;
    let block: Block = bitcoin::consensus::encode::deserialize_hex(&raw).expect("a block");
    let coinbase = &block.txdata[0];
    (OutPoint { txid: coinbase.compute_txid(), vout: 0 }, coinbase.output[0].value)
}

fn template_txids(template: &Value) -> Vec<String> {
    template["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|t| t["txid"].as_str().expect("txid").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_carry_the_mempool_by_package_fee_rate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Daemon::regtest(dir.path()).await;
    let anyone = bitcoin::Address::p2wsh(&op_true(), bitcoin::Network::Regtest);
    let _: Vec<String> = node.call("generatetoaddress", json!([103, anyone.to_string()])).await;

    // A low-fee parent (about 5 sat/vB), its child paying 200 sat/vB, and an
    // unrelated transaction at about 20 sat/vB.
    let (coin1, value1) = coinbase_at(&node, 1).await;
    let (coin2, value2) = coinbase_at(&node, 2).await;
    let parent = spend(coin1, value1, Amount::from_sat(500));
    let child =
        spend(OutPoint { txid: parent.compute_txid(), vout: 0 }, parent.output[0].value, Amount::from_sat(20_000));
    let medium = spend(coin2, value2, Amount::from_sat(2_000));
    for tx in [&parent, &child, &medium] {
        let txid: String = node.call("sendrawtransaction", json!([serialize_hex(tx)])).await;
        assert_eq!(txid, tx.compute_txid().to_string());
    }

    let t = template(&node).await;
    let (p, c, m) =
        (parent.compute_txid().to_string(), child.compute_txid().to_string(), medium.compute_txid().to_string());
    // The pair's package rate (about 100 sat/vB) beats the medium one.
    assert_eq!(template_txids(&t), vec![p.clone(), c.clone(), m.clone()]);
    let txs = t["transactions"].as_array().expect("transactions");
    assert_eq!(txs[1]["depends"], json!([1]), "the child depends on its parent");
    assert_eq!(txs[0]["depends"], json!([]));
    let fees: u64 = txs.iter().map(|t| t["fee"].as_u64().expect("fee")).sum();
    assert_eq!(fees, 22_500);
    assert_eq!(t["coinbasevalue"], json!(5_000_000_000u64 + fees), "subsidy plus exactly the template's fees");
    for (entry, tx) in txs.iter().zip([&parent, &child, &medium]) {
        assert_eq!(entry["data"], json!(serialize_hex(tx)));
        assert_eq!(entry["hash"], json!(tx.compute_wtxid().to_string()));
        assert_eq!(entry["weight"], json!(tx.weight().to_wu()));
    }
    let mining: Value = node.call("getmininginfo", json!([])).await;
    assert_eq!(mining["pooledtx"], json!(3));
    assert_eq!(mining["currentblocktx"], json!(3));

    // prioritisetransaction reorders without changing what is paid.
    let _: bool = node.call("prioritisetransaction", json!([m, 0, 10_000_000])).await;
    let prioritised = template(&node).await;
    assert_eq!(template_txids(&prioritised), vec![m.clone(), p.clone(), c.clone()]);
    assert_eq!(prioritised["coinbasevalue"], t["coinbasevalue"]);

    // A long poll answers once the mempool would pay more.
    let longpollid = prioritised["longpollid"].as_str().expect("longpollid").to_owned();
    let rpc = node.rpc();
    let waiting = tokio::spawn(async move {
        rpc.call_with_timeout::<Value>(
            "getblocktemplate",
            json!([{"rules": ["segwit"], "longpollid": longpollid}]),
            LONGPOLL_LIMIT,
        )
        .await
    });
    let (coin3, value3) = coinbase_at(&node, 3).await;
    let extra = spend(coin3, value3, Amount::from_sat(5_000));
    let _: String = node.call("sendrawtransaction", json!([serialize_hex(&extra)])).await;
    let fresh = tokio::time::timeout(LONGPOLL_LIMIT, waiting)
        .await
        .expect("the long poll answers (safety limit)")
        .expect("the long-poll task ran")
        .expect("the long poll succeeds");
    assert!(template_txids(&fresh).contains(&extra.compute_txid().to_string()), "answered after the new transaction");
    assert_eq!(fresh["coinbasevalue"], json!(5_000_000_000u64 + 27_500));

    // The block built from the template is accepted, and empties the mempool.
    let block = block_from_template(&fresh, anyone.script_pubkey(), 0, true);
    let answer: Value =
        node.call("getblocktemplate", json!([{"mode": "proposal", "data": serialize_hex(&block)}])).await;
    assert_eq!(answer, Value::Null);
    let submitted: Value = node.call("submitblock", json!([serialize_hex(&block)])).await;
    assert_eq!(submitted, Value::Null);
    let pool: Vec<String> = node.call("getrawmempool", json!([])).await;
    assert!(pool.is_empty(), "{pool:?}");

    // generatetoaddress mines the mempool too, as Core's does.
    let (coin4, value4) = coinbase_at(&node, 4).await;
    let last = spend(coin4, value4, Amount::from_sat(3_000));
    let _: String = node.call("sendrawtransaction", json!([serialize_hex(&last)])).await;
    let mined: Vec<String> = node.call("generatetoaddress", json!([1, anyone.to_string()])).await;
    let raw: String = node.call("getblock", json!([mined[0], 0])).await;
    let block: Block = bitcoin::consensus::encode::deserialize_hex(&raw).expect("a block");
    assert_eq!(block.txdata.len(), 2);
    assert_eq!(block.txdata[1].compute_txid(), last.compute_txid());
    assert_eq!(block.txdata[0].output[0].value, Amount::from_sat(5_000_000_000 + 3_000));
}
