//! The node's JSON-RPC methods, with Bitcoin Core's names, parameters,
//! result shapes and errors. The transport is `satpool-rpc`'s.

mod blockchain;
pub mod encode;
mod generating;
mod mempool;
pub mod mining;
mod network;
mod prune;
mod rawtransactions;
mod spv;
mod wallet;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, MutexGuard};

use satpool_rpc::{Arg, Request, RpcError, RpcHandler};
use serde_json::{json, Value};

use crate::chain::ChainError;
use crate::node::{Node, SharedNode};
use crate::pow::difficulty;

/// The node's RPC methods over the shared node.
pub struct NodeRpc {
    node: Arc<SharedNode>,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Set on shutdown so that a long `generate` call stops searching.
    stopping: Arc<AtomicBool>,
    /// What `getblocktemplate` remembers between calls.
    mining: mining::MiningState,
    /// The P2P network, when it runs.
    network: Option<crate::p2p::NetHandle>,
}

impl NodeRpc {
    /// Methods over `node`; `stop` sends `true` on `shutdown`.
    pub fn new(node: Arc<SharedNode>, shutdown: tokio::sync::watch::Sender<bool>, stopping: Arc<AtomicBool>) -> Self {
        NodeRpc { node, shutdown, stopping, mining: mining::MiningState::default(), network: None }
    }

    /// Serves the network methods from `network`.
    pub fn with_network(mut self, network: crate::p2p::NetHandle) -> Self {
        self.network = Some(network);
        self
    }

    /// The node, locked, for reading.
    fn node(&self) -> MutexGuard<'_, Node> {
        self.node.lock()
    }
}

impl RpcHandler for NodeRpc {
    fn call(&self, request: &Request) -> Result<Value, RpcError> {
        match request.method.as_str() {
            "getblockchaininfo" => self.getblockchaininfo(request),
            "getbestblockhash" => {
                request.params(&[])?;
                Ok(json!(self.node().chain.tip().hash.to_string()))
            }
            "getblockcount" => {
                request.params(&[])?;
                Ok(json!(self.node().chain.tip().height))
            }
            "getblockhash" => self.getblockhash(request),
            "getblock" => self.getblock(request),
            "getblockheader" => self.getblockheader(request),
            "getdifficulty" => {
                request.params(&[])?;
                Ok(encode::float(difficulty(self.node().chain.tip().header.bits)))
            }
            "getchaintips" => self.getchaintips(request),
            "gettxoutsetinfo" => self.gettxoutsetinfo(request),
            "pruneblockchain" => self.pruneblockchain(request),
            "gettxoutproof" => self.gettxoutproof(request),
            "verifytxoutproof" => self.verifytxoutproof(request),
            "submitblock" => self.submitblock(request),
            "generatetoaddress" => self.generatetoaddress(request),
            "generateblock" => self.generateblock(request),
            "getblocktemplate" => self.getblocktemplate(request),
            "getmininginfo" => self.getmininginfo(request),
            "getnetworkhashps" => self.getnetworkhashps(request),
            "invalidateblock" => self.invalidateblock(request, true),
            "reconsiderblock" => self.invalidateblock(request, false),
            "validateaddress" => self.validateaddress(request),
            "sendrawtransaction" => self.sendrawtransaction(request),
            "testmempoolaccept" => self.testmempoolaccept(request),
            "getrawmempool" => self.getrawmempool(request),
            "getmempoolinfo" => self.getmempoolinfo(request),
            "getmempoolentry" => self.getmempoolentry(request),
            "getmempoolancestors" => self.getmempoolrelatives(request, true),
            "getmempooldescendants" => self.getmempoolrelatives(request, false),
            "gettxout" => self.gettxout(request),
            "getrawtransaction" => self.getrawtransaction(request),
            "decoderawtransaction" => self.decoderawtransaction(request),
            "decodescript" => self.decodescript(request),
            "createrawtransaction" => self.createrawtransaction(request),
            "prioritisetransaction" => self.prioritisetransaction(request),
            "stop" => {
                request.params(&[Arg::Optional("wait")])?;
                self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = self.shutdown.send(true);
                Ok(json!("satpool-node stopping"))
            }
            method if wallet::METHODS.contains(&method) => self.wallet_call(request),
            method if network::METHODS.contains(&method) => self.network_call(request),
            _ => Err(RpcError::method_not_found()),
        }
    }
}

pub(super) fn store_error(e: ChainError) -> RpcError {
    tracing::error!("chainstate failure: {e}");
    RpcError::database(e.to_string())
}
