//! [`RpcNode`]: the traits over Bitcoin Core's JSON-RPC, for satpool-node or
//! Bitcoin Core.

use std::time::Duration;

use bitcoin::consensus::encode;
use bitcoin::{Block, BlockHash};
use satpool_rpc::{ClientError, ErrorCode, RpcClient};
use serde_json::{json, Value};

use super::{BlockSubmitter, ChainQuery, NetworkInfo, NodeError, SubmitOutcome, Template, TemplateSource};

/// How long a long poll may wait before the client gives up and asks again
/// (Core answers a long poll on a new tip, or after about a minute with
/// mempool changes; satpool-node likewise). Kept generous so that abandoned
/// long polls do not pile up on the node's RPC threads.
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(600);

/// A node reached over JSON-RPC.
#[derive(Debug)]
pub struct RpcNode {
    client: RpcClient,
}

impl RpcNode {
    /// A node behind `client`.
    pub fn new(client: RpcClient) -> RpcNode {
        RpcNode { client }
    }

    fn rpc(method: &'static str) -> impl FnOnce(ClientError) -> NodeError {
        move |source| NodeError::Rpc { method, source }
    }
}

impl TemplateSource for RpcNode {
    async fn get_template(&self, longpoll: Option<&str>) -> Result<Template, NodeError> {
        let value: Value = match longpoll {
            None => self
                .client
                .call("getblocktemplate", json!([{"rules": ["segwit"]}]))
                .await
                .map_err(Self::rpc("getblocktemplate"))?,
            Some(id) => self
                .client
                .call_with_timeout(
                    "getblocktemplate",
                    json!([{"rules": ["segwit"], "longpollid": id}]),
                    LONG_POLL_TIMEOUT,
                )
                .await
                .map_err(Self::rpc("getblocktemplate"))?,
        };
        Ok(Template::from_json(value)?)
    }
}

impl BlockSubmitter for RpcNode {
    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        let hex = encode::serialize_hex(block);
        let reply: Value = self.client.call("submitblock", json!([hex])).await.map_err(Self::rpc("submitblock"))?;
        Ok(match reply {
            Value::Null => SubmitOutcome::Accepted,
            Value::String(reason) => SubmitOutcome::Rejected(reason),
            other => SubmitOutcome::Rejected(other.to_string()),
        })
    }
}

impl ChainQuery for RpcNode {
    async fn tip(&self) -> Result<(BlockHash, u32), NodeError> {
        let info: Value =
            self.client.call("getblockchaininfo", Value::Null).await.map_err(Self::rpc("getblockchaininfo"))?;
        let hash = info["bestblockhash"].as_str().and_then(|h| h.parse().ok());
        let height = info["blocks"].as_u64().and_then(|h| u32::try_from(h).ok());
        match (hash, height) {
            (Some(hash), Some(height)) => Ok((hash, height)),
            _ => Err(NodeError::Reply { method: "getblockchaininfo", value: info.to_string() }),
        }
    }

    async fn confirmations(&self, hash: &BlockHash) -> Result<Option<i64>, NodeError> {
        let header: Result<Value, _> = self.client.call("getblockheader", json!([hash.to_string(), true])).await;
        match header {
            Ok(header) => header["confirmations"]
                .as_i64()
                .map(Some)
                .ok_or_else(|| NodeError::Reply { method: "getblockheader", value: header.to_string() }),
            Err(ClientError::Rpc(error)) if error.code == ErrorCode::InvalidAddressOrKey => Ok(None),
            Err(source) => Err(NodeError::Rpc { method: "getblockheader", source }),
        }
    }

    async fn network_info(&self) -> Result<Option<NetworkInfo>, NodeError> {
        let info: Value = self.client.call("getmininginfo", Value::Null).await.map_err(Self::rpc("getmininginfo"))?;
        let height = info["blocks"].as_u64().and_then(|h| u32::try_from(h).ok());
        match (height, info["difficulty"].as_f64(), info["networkhashps"].as_f64()) {
            (Some(height), Some(difficulty), Some(hashes_per_second)) => {
                Ok(Some(NetworkInfo { height, difficulty, hashes_per_second }))
            }
            _ => Err(NodeError::Reply { method: "getmininginfo", value: info.to_string() }),
        }
    }
}
