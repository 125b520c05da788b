//! `satpool-node --network=regtest` as a child process, with its RPC.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bitcoin::consensus::encode;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, Block, BlockHash, CompressedPublicKey};
use satpool_rpc::{Auth, RpcClient};
use serde_json::{json, Value};

use crate::process::{free_port, Process};

/// How long a node may take to answer its first RPC.
const START_LIMIT: Duration = Duration::from_secs(120);

/// The P2WPKH regtest address of the secret key `[n; 32]` (n ≥ 1): a
/// distinct, repeatable payout address per role in a test.
pub fn regtest_address(n: u8) -> Address {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[n; 32]).expect("n is a valid secret key");
    Address::p2wpkh(&CompressedPublicKey(key.public_key(&secp)), bitcoin::Network::Regtest)
}

/// A running regtest node: its process, data directory, RPC port and client.
pub struct RegtestNode {
    /// The child process (its log is `node.log` in the test's folder).
    pub process: Process,
    /// Its `--datadir` (the RPC cookie is there).
    pub datadir: PathBuf,
    /// Its RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// A client authenticated by the cookie.
    pub rpc: RpcClient,
}

impl RegtestNode {
    /// Starts `binary` (a `satpool-node`) on regtest in `dir/node`, logging
    /// to `dir/node.log` at `log_level`, and waits until it answers RPC.
    ///
    /// # Panics
    /// When it does not answer within two minutes (with its log's tail).
    pub async fn start(binary: &Path, dir: &Path, log_level: &str) -> RegtestNode {
        let datadir = dir.join("node");
        std::fs::create_dir_all(&datadir).expect("the node's folder");
        let rpc_port = free_port();
        let process = Process::spawn(
            Command::new(binary)
                .arg("--network=regtest")
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--rpcport={rpc_port}"))
                .arg("--rpcbind=127.0.0.1")
                .arg(format!("--port={}", free_port()))
                .env_remove("SATPOOL_NETWORK")
                .env_remove("SATPOOL_DATADIR")
                .env("RUST_LOG", log_level),
            dir.join("node.log"),
        );
        let rpc =
            RpcClient::new(format!("http://127.0.0.1:{rpc_port}/"), Auth::cookie_in(&datadir)).expect("an RPC client");
        let node = RegtestNode { process, datadir, rpc_port, rpc };
        let deadline = Instant::now() + START_LIMIT;
        while !(node.datadir.join(satpool_rpc::COOKIE_FILE).exists()
            && node.rpc.call::<u64>("getblockcount", Value::Null).await.is_ok())
        {
            assert!(Instant::now() < deadline, "the node did not start:\n{}", node.process.log_tail(40));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node
    }

    /// The node's RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.rpc_port)
    }

    /// An RPC call that must succeed.
    ///
    /// # Panics
    /// On any error, with the method and parameters.
    pub async fn call<T: serde::de::DeserializeOwned>(&self, method: &str, params: Value) -> T {
        self.rpc.call(method, params.clone()).await.unwrap_or_else(|e| panic!("{method} {params}: {e:?}"))
    }

    /// Mines `n` blocks paying [`regtest_address`]`(99)`, a key no test
    /// spends from.
    pub async fn generate(&self, n: u32) -> Vec<BlockHash> {
        let hashes: Vec<String> = self.call("generatetoaddress", json!([n, regtest_address(99).to_string()])).await;
        hashes.iter().map(|h| h.parse().expect("a block hash")).collect()
    }

    /// The tip's height.
    pub async fn height(&self) -> u64 {
        self.call("getblockcount", Value::Null).await
    }

    /// The tip's hash.
    pub async fn best(&self) -> BlockHash {
        self.call::<String>("getbestblockhash", Value::Null).await.parse().expect("a block hash")
    }

    /// The block at `height` of the active chain.
    pub async fn block_at(&self, height: u64) -> Block {
        let hash: BlockHash = self.call::<String>("getblockhash", json!([height])).await.parse().expect("a block hash");
        self.block(&hash).await
    }

    /// A block by hash, decoded from `getblock <hash> 0`.
    pub async fn block(&self, hash: &BlockHash) -> Block {
        let hex: String = self.call("getblock", json!([hash.to_string(), 0])).await;
        encode::deserialize(&hex::decode(hex).expect("hex")).expect("a block")
    }
}
