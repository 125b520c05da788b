//! The mempool through the node, with real signed P2WPKH transactions on a
//! regtest chainstate: acceptance, unconfirmed chains, double spends and
//! replacement, the chain limit, blocks that mine or conflict, blocks that
//! go away (`invalidateblock`), a restart with the pool saved and loaded,
//! and the RPC methods as a client sees them.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Amount, Block, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid, Witness,
};
use common::{solve, NOW};
use satpool_node::chain::{BlockOutcome, Chainstate};
use satpool_node::mempool::persist;
use satpool_node::mining;
use satpool_node::node::{Node, SharedNode};
use satpool_node::params::{ChainParams, Network};
use satpool_node::rpc::NodeRpc;
use satpool_rpc::{Request, RpcHandler};
use serde_json::{json, Value};

const COINBASE_VALUE: u64 = 50 * 100_000_000;

/// A P2WPKH key that signs.
struct Key {
    secret: SecretKey,
    public: CompressedPublicKey,
    script: ScriptBuf,
}

impl Key {
    fn new(seed: u8) -> Key {
        let secp = Secp256k1::new();
        let secret = SecretKey::from_slice(&[seed; 32]).expect("a valid secret");
        let public = CompressedPublicKey(secret.public_key(&secp));
        let script = ScriptBuf::new_p2wpkh(&public.wpubkey_hash());
        Key { secret, public, script }
    }

    /// Signs every input of `tx`, each spending one of our outputs worth `values[i]`.
    fn sign(&self, tx: &mut Transaction, values: &[u64]) {
        let secp = Secp256k1::signing_only();
        let mut witnesses = Vec::new();
        {
            let mut cache = SighashCache::new(&*tx);
            for (i, value) in values.iter().enumerate() {
                let sighash = cache
                    .p2wpkh_signature_hash(i, &self.script, Amount::from_sat(*value), EcdsaSighashType::All)
                    .expect("input exists");
                let signature = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &self.secret);
                let sig = bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All };
                witnesses.push(Witness::p2wpkh(&sig, &self.public.0));
            }
        }
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness = witness;
        }
    }

    /// A signed spend of `inputs` (outpoint, value) paying `outputs` to ourselves.
    fn spend(&self, inputs: &[(OutPoint, u64)], outputs: &[u64]) -> Transaction {
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::default(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|v| TxOut { value: Amount::from_sat(*v), script_pubkey: self.script.clone() })
                .collect(),
        };
        let values: Vec<u64> = inputs.iter().map(|(_, v)| *v).collect();
        self.sign(&mut tx, &values);
        tx
    }
}

use bitcoin::hashes::Hash as _;

struct Harness {
    node: Node,
    key: Key,
    /// Coinbases paying the key, by height (index 0 is height 1).
    coinbases: Vec<OutPoint>,
    dir: tempfile::TempDir,
}

fn open_node(dir: &std::path::Path) -> Node {
    let chain = Chainstate::open(dir, ChainParams::new(Network::Regtest), Arc::new(|| NOW)).expect("open chainstate");
    Node::new(chain)
}

impl Harness {
    /// A regtest node with `blocks` blocks paying the key.
    fn new(blocks: usize) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = open_node(dir.path());
        let mut h = Harness { node, key: Key::new(7), coinbases: Vec::new(), dir };
        for _ in 0..blocks {
            let block = h.mine(Vec::new());
            h.coinbases.push(OutPoint { txid: block.txdata[0].compute_txid(), vout: 0 });
        }
        h
    }

    fn mine(&mut self, txs: Vec<Transaction>) -> Block {
        let mut block = mining::block_template(&self.node.chain, self.key.script.clone(), txs, Amount::ZERO);
        solve(&mut block);
        assert_eq!(self.node.process_block(&block).expect("valid block"), BlockOutcome::Connected);
        block
    }

    /// A spend of the coinbase at `height` into one output, paying `fee`.
    fn spend_coinbase(&self, height: usize, fee: u64) -> Transaction {
        self.key.spend(&[(self.coinbases[height - 1], COINBASE_VALUE)], &[COINBASE_VALUE - fee])
    }

    fn submit(&mut self, tx: &Transaction) -> Result<Txid, String> {
        self.node.submit_transaction(tx.clone()).map_err(|e| e.to_string())
    }

    fn in_pool(&self, tx: &Transaction) -> bool {
        self.node.mempool.contains(&tx.compute_txid())
    }
}

fn first(tx: &Transaction) -> OutPoint {
    OutPoint { txid: tx.compute_txid(), vout: 0 }
}

#[test]
fn accepts_chains_refuses_double_spends_and_replaces_by_fee() {
    let mut h = Harness::new(101);
    let parent = h.spend_coinbase(1, 1_000);
    assert_eq!(h.submit(&parent), Ok(parent.compute_txid()));
    // Submitting again is fine (Core re-announces it).
    assert_eq!(h.submit(&parent), Ok(parent.compute_txid()));
    let child = h.key.spend(&[(first(&parent), COINBASE_VALUE - 1_000)], &[COINBASE_VALUE - 2_000]);
    h.submit(&child).expect("a child of an unconfirmed parent");
    let entry = h.node.mempool.get(&child.compute_txid()).expect("in the pool");
    assert_eq!(entry.parents().copied().collect::<Vec<_>>(), vec![parent.compute_txid()]);
    assert_eq!(entry.fee(), Amount::from_sat(1_000));
    assert_eq!(h.node.mempool.ancestor_stats(&child.compute_txid()).count, 2);

    // A double spend paying less is refused; one paying for both and its relay replaces both.
    let cheaper = h.spend_coinbase(1, 1_500);
    let err = h.submit(&cheaper).unwrap_err();
    assert!(err.starts_with("insufficient fee, rejecting replacement"), "{err}");
    let richer = h.spend_coinbase(1, 5_000);
    h.submit(&richer).expect("a replacement paying more");
    assert!(h.in_pool(&richer) && !h.in_pool(&parent) && !h.in_pool(&child));

    // A coinbase that is not mature yet.
    let immature = h.spend_coinbase(5, 1_000);
    assert!(h.submit(&immature).unwrap_err().starts_with("bad-txns-premature-spend-of-coinbase"));
    // A bad signature is a consensus failure.
    let mut forged = h.spend_coinbase(1, 9_000);
    forged.output[0].value = Amount::from_sat(COINBASE_VALUE - 8_000);
    let err = h.submit(&forged).unwrap_err();
    assert!(err.starts_with("mandatory-script-verify-flag-failed ("), "{err}");
}

#[test]
fn unconfirmed_chains_stop_at_the_limit() {
    let mut h = Harness::new(101);
    let mut prev = (h.coinbases[0], COINBASE_VALUE);
    for i in 0..25 {
        let value = prev.1 - 1_000;
        let tx = h.key.spend(&[prev], &[value]);
        h.submit(&tx).unwrap_or_else(|e| panic!("transaction {i}: {e}"));
        prev = (first(&tx), value);
    }
    let too_long = h.key.spend(&[prev], &[prev.1 - 1_000]);
    let err = h.submit(&too_long).unwrap_err();
    assert_eq!(err, "too-long-mempool-chain, too many unconfirmed ancestors [limit: 25]");
    assert_eq!(h.node.mempool.len(), 25);
}

#[test]
fn blocks_take_mined_and_conflicting_transactions_and_give_them_back() {
    let mut h = Harness::new(103);
    let x = h.spend_coinbase(1, 1_000);
    let y = h.spend_coinbase(2, 1_000);
    let y_child = h.key.spend(&[(first(&y), COINBASE_VALUE - 1_000)], &[COINBASE_VALUE - 2_000]);
    let z = h.spend_coinbase(3, 1_000);
    for tx in [&x, &y, &y_child, &z] {
        h.submit(tx).expect("valid");
    }
    // A block mines x and a double spend of y's coin.
    let y_conflict = h.spend_coinbase(2, 3_000);
    let block = h.mine(vec![x.clone(), y_conflict.clone()]);
    assert!(!h.in_pool(&x), "mined");
    assert!(!h.in_pool(&y) && !h.in_pool(&y_child), "conflicted, with the child");
    assert!(h.in_pool(&z));
    assert_eq!(h.node.mempool.len(), 1);

    // The block goes away: its transactions come back.
    h.node.invalidate_block(&block.block_hash()).expect("invalidate");
    assert!(h.in_pool(&x) && h.in_pool(&y_conflict) && h.in_pool(&z));
    assert_eq!(h.node.mempool.len(), 3);

    // At tip 104 the coinbase of height 5 is mature for the next block;
    // once the tip goes back to 103, a spend of it is not.
    let mature_now = h.spend_coinbase(5, 1_000);
    assert!(h.submit(&mature_now).unwrap_err().starts_with("bad-txns-premature-spend-of-coinbase"));
    let tip = h.mine(Vec::new());
    h.submit(&mature_now).expect("mature at tip 104");
    h.node.invalidate_block(&tip.block_hash()).expect("invalidate");
    assert!(!h.in_pool(&mature_now), "immature again after the tip went back");
    assert!(h.in_pool(&z));
}

#[test]
fn restart_keeps_the_mempool() {
    let mut h = Harness::new(101);
    let a = h.spend_coinbase(1, 1_000);
    let a_child = h.key.spend(&[(first(&a), COINBASE_VALUE - 1_000)], &[COINBASE_VALUE - 2_000]);
    let b = h.spend_coinbase(2, 2_000);
    for tx in [&a, &a_child, &b] {
        h.submit(tx).expect("valid");
    }
    h.node.mempool.prioritise(b.compute_txid(), 777);
    let path = h.dir.path().join(persist::FILE_NAME);
    h.node.save_mempool(&path).expect("saved");
    let Harness { node, dir, .. } = h;
    drop(node);

    let mut node = open_node(dir.path());
    assert!(!node.mempool.is_loaded());
    let loaded = node.load_mempool(&dir.path().join(persist::FILE_NAME)).expect("loaded");
    assert_eq!(loaded.accepted, 3);
    assert!(node.mempool.is_loaded());
    for tx in [&a, &a_child, &b] {
        assert!(node.mempool.contains(&tx.compute_txid()));
    }
    assert_eq!(node.mempool.get(&b.compute_txid()).unwrap().modified_fee(), 2_777);
    assert_eq!(node.mempool.unbroadcast().len(), 3);

    // A missing file is an empty, loaded pool.
    let empty = tempfile::tempdir().unwrap();
    let mut fresh = open_node(empty.path());
    fresh.load_mempool(&empty.path().join(persist::FILE_NAME)).expect("no file is fine");
    assert!(fresh.mempool.is_loaded() && fresh.mempool.is_empty());
}

fn call(rpc: &NodeRpc, method: &str, params: Value) -> Result<Value, satpool_rpc::RpcError> {
    rpc.call(&Request::new(method, params))
}

#[test]
fn rpc_methods() {
    let h = Harness::new(101);
    let parent = h.spend_coinbase(1, 10_000);
    let child = h.key.spend(&[(first(&parent), COINBASE_VALUE - 10_000)], &[COINBASE_VALUE - 20_000]);
    let lone = h.key.spend(&[(OutPoint { txid: Txid::all_zeros(), vout: 3 }, COINBASE_VALUE)], &[1_000_000]);
    let Harness { node, key, coinbases, dir: _dir } = h;
    let shared = Arc::new(SharedNode::new(node));
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let rpc = NodeRpc::new(shared.clone(), shutdown, Arc::new(AtomicBool::new(false)));
    let hex = |tx: &Transaction| bitcoin::consensus::encode::serialize_hex(tx);

    // testmempoolaccept: a package, and a failure.
    let verdict = call(&rpc, "testmempoolaccept", json!([[hex(&parent), hex(&child)]])).unwrap();
    assert_eq!(verdict[0]["allowed"], json!(true));
    assert_eq!(verdict[1]["allowed"], json!(true));
    assert_eq!(verdict[0]["fees"]["base"], json!(0.0001));
    assert_eq!(verdict[0]["vsize"], json!(110));
    let verdict = call(&rpc, "testmempoolaccept", json!([[hex(&lone)]])).unwrap();
    assert_eq!(verdict[0]["reject-reason"], json!("missing-inputs"));
    let verdict = call(&rpc, "testmempoolaccept", json!([[hex(&parent)], 0.00001])).unwrap();
    assert_eq!(verdict[0]["reject-reason"], json!("max-fee-exceeded"));
    assert_eq!(call(&rpc, "getrawmempool", json!([])).unwrap(), json!([]));

    // sendrawtransaction: errors as Core words them, then success.
    let err = call(&rpc, "sendrawtransaction", json!([hex(&lone)])).unwrap_err();
    assert_eq!((err.code.code(), err.message.as_str()), (-25, "bad-txns-inputs-missingorspent"));
    let err = call(&rpc, "sendrawtransaction", json!([hex(&parent), 0.00001])).unwrap_err();
    assert_eq!(err.code.code(), -25);
    assert_eq!(err.message, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)");
    let err = call(&rpc, "sendrawtransaction", json!(["00"])).unwrap_err();
    assert_eq!(err.code.code(), -22);
    let txid = call(&rpc, "sendrawtransaction", json!([hex(&parent)])).unwrap();
    assert_eq!(txid, json!(parent.compute_txid().to_string()));
    call(&rpc, "sendrawtransaction", json!([hex(&child)])).unwrap();
    let free = key.spend(&[(coinbases[1], COINBASE_VALUE)], &[COINBASE_VALUE]);
    let err = call(&rpc, "sendrawtransaction", json!([hex(&free)])).unwrap_err();
    assert_eq!(err.code.code(), -26);
    assert!(err.message.starts_with("min relay fee not met, 0 < "), "{}", err.message);

    // The pool's views.
    let pool = call(&rpc, "getrawmempool", json!([false, true])).unwrap();
    assert_eq!(pool["txids"].as_array().unwrap().len(), 2);
    assert!(pool["mempool_sequence"].as_u64().unwrap() >= 2);
    let entry = call(&rpc, "getmempoolentry", json!([child.compute_txid().to_string()])).unwrap();
    assert_eq!(entry["depends"], json!([parent.compute_txid().to_string()]));
    assert_eq!(entry["ancestorcount"], json!(2));
    assert_eq!(entry["fees"]["ancestor"], json!(0.0002));
    assert_eq!(entry["bip125-replaceable"], json!(true));
    assert_eq!(entry["unbroadcast"], json!(true));
    let entry = call(&rpc, "getmempoolentry", json!([parent.compute_txid().to_string()])).unwrap();
    assert_eq!(entry["spentby"], json!([child.compute_txid().to_string()]));
    assert_eq!(entry["descendantcount"], json!(2));
    let err = call(&rpc, "getmempoolentry", json!([Txid::all_zeros().to_string()])).unwrap_err();
    assert_eq!((err.code.code(), err.message.as_str()), (-5, "Transaction not in mempool"));
    let verbose = call(&rpc, "getrawmempool", json!([true])).unwrap();
    assert_eq!(verbose.as_object().unwrap().len(), 2);
    let info = call(&rpc, "getmempoolinfo", json!([])).unwrap();
    assert_eq!(info["size"], json!(2));
    assert_eq!(info["total_fee"], json!(0.0002));
    assert_eq!(info["maxmempool"], json!(300_000_000));
    assert_eq!(info["minrelaytxfee"], json!(0.000001));
    assert_eq!(info["unbroadcastcount"], json!(2));
    assert_eq!(info["fullrbf"], json!(true));

    // gettxout: spent in the pool, created in the pool, confirmed.
    let parent_txid = parent.compute_txid().to_string();
    assert_eq!(call(&rpc, "gettxout", json!([coinbases[0].txid.to_string(), 0])).unwrap(), Value::Null);
    let confirmed = call(&rpc, "gettxout", json!([coinbases[0].txid.to_string(), 0, false])).unwrap();
    assert_eq!(confirmed["confirmations"], json!(101));
    assert_eq!(confirmed["coinbase"], json!(true));
    assert_eq!(confirmed["value"], json!(50.0));
    assert_eq!(confirmed["scriptPubKey"]["type"], json!("witness_v0_keyhash"));
    assert_eq!(call(&rpc, "gettxout", json!([parent_txid, 0])).unwrap(), Value::Null, "spent by the child");
    let child_out = call(&rpc, "gettxout", json!([child.compute_txid().to_string(), 0])).unwrap();
    assert_eq!(child_out["confirmations"], json!(0));

    // getrawtransaction from the pool, and the not-found text.
    let raw = call(&rpc, "getrawtransaction", json!([parent_txid])).unwrap();
    assert_eq!(raw, json!(hex(&parent)));
    let decoded = call(&rpc, "getrawtransaction", json!([parent_txid, 1])).unwrap();
    assert_eq!(decoded["txid"], json!(parent_txid));
    let err = call(&rpc, "getrawtransaction", json!([Txid::all_zeros().to_string()])).unwrap_err();
    assert!(err.message.starts_with("No such mempool transaction."), "{}", err.message);

    // prioritisetransaction moves the sequence and the modified fee.
    let before = shared.lock().mempool.sequence();
    assert_eq!(call(&rpc, "prioritisetransaction", json!([parent_txid, 0, 5000])).unwrap(), json!(true));
    assert!(shared.lock().mempool.sequence() > before);
    let entry = call(&rpc, "getmempoolentry", json!([parent_txid])).unwrap();
    assert_eq!(entry["fees"]["modified"], json!(0.00015));
    let err = call(&rpc, "prioritisetransaction", json!([parent_txid, 1, 5000])).unwrap_err();
    assert_eq!(err.code.code(), -8);

    // Decoding and creating.
    let decoded = call(&rpc, "decoderawtransaction", json!([hex(&child)])).unwrap();
    assert_eq!(decoded["vin"][0]["txid"], json!(parent_txid));
    assert!(decoded.get("hex").is_none());
    let script = call(&rpc, "decodescript", json!([hex::encode(key.script.as_bytes())])).unwrap();
    assert_eq!(script["type"], json!("witness_v0_keyhash"));
    assert!(script["address"].as_str().unwrap().starts_with("bcrt1q"));
    assert!(script.get("p2sh").is_some());
    let address = script["address"].as_str().unwrap().to_owned();
    let mut pay = serde_json::Map::new();
    pay.insert(address.clone(), json!(1.5));
    let created = call(
        &rpc,
        "createrawtransaction",
        json!([[{"txid": parent_txid, "vout": 0}], [pay.clone(), {"data": "cafe"}], 0, true]),
    )
    .unwrap();
    let tx: Transaction = bitcoin::consensus::encode::deserialize_hex(created.as_str().unwrap()).unwrap();
    assert_eq!(tx.input[0].sequence, Sequence::ENABLE_RBF_NO_LOCKTIME);
    assert_eq!(tx.output[0].value, Amount::from_sat(150_000_000));
    assert!(tx.output[1].script_pubkey.is_op_return());
    let err = call(&rpc, "createrawtransaction", json!([[{"txid": parent_txid}], pay])).unwrap_err();
    assert_eq!((err.code.code(), err.message.as_str()), (-8, "Invalid parameter, missing vout key"));
}
