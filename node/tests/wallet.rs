//! End to end: the wallet of the real `satpool-node` binary on regtest, over
//! loopback JSON-RPC with Bitcoin Core's wallet methods: mining to a wallet,
//! maturity, payments with change, spending unconfirmed change, a reorg, a
//! restart, and an encrypted wallet.

mod harness;

use std::sync::Arc;

use harness::{regtest_address, Daemon};
use satpool_rpc::{Auth, ClientError, ErrorCode, RpcClient, RpcError};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// A client addressed to `/wallet/<name>`.
struct WalletClient {
    rpc: Arc<RpcClient>,
    name: String,
}

impl WalletClient {
    fn new(daemon: &Daemon, name: &str) -> WalletClient {
        let rpc = RpcClient::new(format!("{}wallet/{name}", daemon.url()), Auth::cookie_in(daemon.datadir()))
            .expect("an rpc client can be built");
        WalletClient { rpc: Arc::new(rpc), name: name.to_owned() }
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> T {
        match self.rpc.call(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{} {method} {params} failed: {e:?}", self.name),
        }
    }

    async fn call_err(&self, method: &str, params: Value) -> RpcError {
        match self.rpc.call::<Value>(method, params.clone()).await {
            Err(ClientError::Rpc(e)) => e,
            other => panic!("{} {method} {params}: expected an rpc error, got {other:?}", self.name),
        }
    }

    async fn balances(&self) -> (f64, f64, f64) {
        let b: Value = self.call("getbalances", json!([])).await;
        let mine = &b["mine"];
        (
            mine["trusted"].as_f64().expect("trusted"),
            mine["untrusted_pending"].as_f64().expect("untrusted_pending"),
            mine["immature"].as_f64().expect("immature"),
        )
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-8
}

/// Mines one block paying `address` with `txs` (hex) in it; its hash.
async fn mine_with(node: &Daemon, address: &str, txs: Vec<String>) -> String {
    let out: Value = node.call("generateblock", json!([address, txs])).await;
    out["hash"].as_str().expect("a hash").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_end_to_end() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut node = Daemon::regtest(dir.path()).await;

    // No wallet yet.
    let err = node.call_err("getbalance", json!([])).await;
    assert_eq!(err.code, ErrorCode::Other(-18), "{err:?}");
    assert!(err.message.starts_with("No wallet is loaded"), "{}", err.message);

    let _: Value = node.call("createwallet", json!(["alice"])).await;
    let err = node.call_err("createwallet", json!(["alice"])).await;
    assert_eq!(err.code, ErrorCode::Other(-36));
    // One wallet: requests without /wallet/ reach it.
    let first: String = node.call("getnewaddress", json!([])).await;
    let _: Value = node.call("createwallet", json!(["bob"])).await;
    let err = node.call_err("getnewaddress", json!([])).await;
    assert_eq!(err.code, ErrorCode::Other(-19));
    assert_eq!(err.message, "Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).");
    let wallets: Vec<String> = node.call("listwallets", json!([])).await;
    assert_eq!(wallets, ["alice", "bob"]);

    let alice = WalletClient::new(&node, "alice");
    let bob = WalletClient::new(&node, "bob");

    // Fresh addresses, never reused; the three kinds.
    let a1: String = alice.call("getnewaddress", json!(["mining"])).await;
    assert_ne!(a1, first);
    assert!(a1.starts_with("bcrt1q"));
    let taproot: String = alice.call("getnewaddress", json!(["", "bech32m"])).await;
    assert!(taproot.starts_with("bcrt1p"));
    let legacy: String = alice.call("getnewaddress", json!({"address_type": "legacy"})).await;
    assert!(legacy.starts_with('m') || legacy.starts_with('n'), "{legacy}");
    let err = alice.call_err("getnewaddress", json!(["", "p2sh-segwit"])).await;
    assert_eq!(err.code, ErrorCode::InvalidAddressOrKey);

    // Mine to alice: immature, then trusted once 100 more blocks are on top.
    let _: Value = node.call("generatetoaddress", json!([1, a1])).await;
    assert_eq!(alice.balances().await, (0.0, 0.0, 50.0));
    let _: Value = node.call("generatetoaddress", json!([99, regtest_address().to_string()])).await;
    assert_eq!(alice.balances().await, (0.0, 0.0, 50.0), "100 confirmations: still immature");
    let _: Value = node.call("generatetoaddress", json!([1, regtest_address().to_string()])).await;
    assert_eq!(alice.balances().await, (50.0, 0.0, 0.0));
    let balance: f64 = alice.call("getbalance", json!(["*", 1])).await;
    assert!(close(balance, 50.0));

    // Pay bob; change goes to a fresh change address.
    let b1: String = bob.call("getnewaddress", json!([])).await;
    let txid: String = alice.call("sendtoaddress", json!([b1, 10.0, "rent", "bob"])).await;
    let tx: Value = alice.call("gettransaction", json!([txid])).await;
    assert_eq!(tx["confirmations"], 0);
    assert!(close(tx["amount"].as_f64().expect("amount"), -10.0), "{tx}");
    let fee = -tx["fee"].as_f64().expect("fee");
    assert!(fee > 0.0 && fee < 0.001, "{tx}");
    assert_eq!(tx["comment"], "rent");
    assert_eq!(tx["to"], "bob");
    assert_eq!(tx["reversal_probability"].as_f64(), Some(1.0));
    let unspent: Vec<Value> = alice.call("listunspent", json!([0])).await;
    assert_eq!(unspent.len(), 1, "{unspent:?}");
    let change_address = unspent[0]["address"].as_str().expect("address").to_owned();
    assert!(![&a1, &first, &taproot, &legacy].contains(&&change_address), "change to a fresh address");
    assert!(close(unspent[0]["amount"].as_f64().expect("amount"), 40.0 - fee));
    let (trusted, pending, _) = bob.balances().await;
    assert_eq!((trusted, pending), (0.0, 10.0));
    let (trusted, _, _) = alice.balances().await;
    assert!(close(trusted, 40.0 - fee), "alice's unconfirmed change is trusted");

    // Spend the unconfirmed change.
    let b2: String = bob.call("getnewaddress", json!([])).await;
    let txid2: String = alice.call("sendtoaddress", json!({"address": b2, "amount": 5, "fee_rate": 2})).await;
    let tx2: Value = alice.call("gettransaction", json!([txid2])).await;
    let fee2 = -tx2["fee"].as_f64().expect("fee");
    assert_eq!(bob.balances().await.1, 15.0);

    // Insufficient funds.
    let err = bob.call_err("sendtoaddress", json!([a1, 1000])).await;
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::Other(-6), "Insufficient funds"));

    // Confirm both in a block whose coinbase pays alice.
    let a2: String = alice.call("getnewaddress", json!([])).await;
    let hexes = vec![tx["hex"].as_str().expect("hex").to_owned(), tx2["hex"].as_str().expect("hex").to_owned()];
    let block = mine_with(&node, &a2, hexes).await;
    assert_eq!(bob.balances().await, (15.0, 0.0, 0.0));
    let tx: Value = alice.call("gettransaction", json!([txid])).await;
    assert_eq!(tx["confirmations"], 1);
    assert_eq!(tx["blockhash"], block.as_str());
    assert!((tx["reversal_probability"].as_f64().expect("p") - 0.2045873).abs() < 1e-6, "{tx}");
    let (alice_trusted, _, alice_immature) = alice.balances().await;
    assert!(close(alice_trusted, 35.0 - fee - fee2));
    assert!(alice_immature >= 50.0);
    let listed: Vec<Value> = bob.call("listtransactions", json!(["*", 10, 0])).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e["category"] == "receive"));

    // A reorg: the payments go back to unconfirmed, the coinbase disappears.
    let _: Value = node.call("invalidateblock", json!([block])).await;
    let tx: Value = alice.call("gettransaction", json!([txid])).await;
    assert_eq!(tx["confirmations"], 0, "{tx}");
    let (trusted, pending, _) = bob.balances().await;
    assert_eq!((trusted, pending), (0.0, 15.0));
    let (_, _, immature) = alice.balances().await;
    assert_eq!(immature, 0.0, "the coinbase of the invalidated block is not counted");
    let _: Value = node.call("reconsiderblock", json!([block])).await;
    assert_eq!(bob.balances().await, (15.0, 0.0, 0.0));
    let alice_before = alice.balances().await;

    // An encrypted wallet refuses to send until unlocked.
    let _: Value = node.call("createwallet", json!({"wallet_name": "carol", "passphrase": "s3cret"})).await;
    let carol = WalletClient::new(&node, "carol");
    let c1: String = carol.call("getnewaddress", json!([])).await;
    let pay: String = alice.call("sendtoaddress", json!([c1, 1])).await;
    let pay_hex: Value = alice.call("gettransaction", json!([pay])).await;
    mine_with(&node, &regtest_address().to_string(), vec![pay_hex["hex"].as_str().expect("hex").to_owned()]).await;
    assert_eq!(carol.balances().await, (1.0, 0.0, 0.0));
    let err = carol.call_err("sendtoaddress", json!([b1, 0.5])).await;
    assert_eq!(err.code, ErrorCode::Other(-13));
    assert_eq!(err.message, "Error: Please enter the wallet passphrase with walletpassphrase first.");
    let err = carol.call_err("walletpassphrase", json!(["wrong", 60])).await;
    assert_eq!(err.code, ErrorCode::Other(-14));
    let _: Value = carol.call("walletpassphrase", json!(["s3cret", 60])).await;
    let _: String = carol.call("sendtoaddress", json!([b1, 0.5])).await;
    let _: Value = carol.call("walletlock", json!([])).await;
    let err = carol.call_err("sendtoaddress", json!([b1, 0.1])).await;
    assert_eq!(err.code, ErrorCode::Other(-13));
    let alice_after_pay = alice.balances().await;

    // A restart keeps everything.
    let _: Value = node.call("stop", json!([])).await;
    node.wait_exit().await;
    drop(node);
    let node = Daemon::regtest(dir.path()).await;
    let wallets: Vec<String> = node.call("listwallets", json!([])).await;
    assert_eq!(wallets, ["alice", "bob", "carol"]);
    let alice = WalletClient::new(&node, "alice");
    let bob = WalletClient::new(&node, "bob");
    let carol = WalletClient::new(&node, "carol");
    assert_eq!(alice.balances().await, alice_after_pay);
    assert!(alice_before.0 > alice_after_pay.0);
    let (bob_trusted, bob_pending, _) = bob.balances().await;
    assert_eq!((bob_trusted, bob_pending), (15.0, 0.5));
    let tx: Value = alice.call("gettransaction", json!([txid])).await;
    assert_eq!(tx["blockhash"], block.as_str());
    let err = carol.call_err("sendtoaddress", json!([b1, 0.1])).await;
    assert_eq!(err.code, ErrorCode::Other(-13), "still locked after a restart");
    let next: String = alice.call("getnewaddress", json!([])).await;
    assert!(![&a1, &a2, &first, &taproot, &legacy, &change_address].contains(&&next), "indexes survive the restart");

    // Unload and load again.
    let _: Value = node.call("unloadwallet", json!(["bob"])).await;
    let err = bob.call_err("getbalances", json!([])).await;
    assert_eq!(err.code, ErrorCode::Other(-18));
    let _: Value = node.call("loadwallet", json!(["bob"])).await;
    assert_eq!(bob.balances().await.0, 15.0);
}
