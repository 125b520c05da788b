//! The template source: the node, over Bitcoin Core's JSON-RPC
//! (`getblocktemplate` with long polling, `submitblock`), behind small
//! traits — [`TemplateSource`], [`BlockSubmitter`], [`ChainQuery`] — that
//! [`RpcNode`] implements for satpool-node or Bitcoin Core and
//! [`MemoryNode`] in memory for tests. [`TemplatePoller`] keeps the newest
//! template on a watch channel and rides out the node's absences.

use std::future::Future;
use std::str::FromStr;

use bitcoin::consensus::encode;
use bitcoin::{block, Amount, Block, BlockHash, CompactTarget, ScriptBuf, Target, Transaction, Txid, Wtxid};
use serde::Deserialize;
use serde_json::Value;

mod memory;
mod poller;
mod rpc;

pub use memory::MemoryNode;
pub use poller::{Backoff, PollerOptions, TemplateBoard, TemplatePoller};
pub use rpc::RpcNode;

/// A transaction of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateTransaction {
    /// The transaction, decoded from `data`.
    pub transaction: Transaction,
    /// Its txid (checked against `data`).
    pub txid: Txid,
    /// Its wtxid (`hash`).
    pub wtxid: Wtxid,
    /// Its fee, when the node says.
    pub fee: Option<Amount>,
    /// Its weight, when the node says.
    pub weight: Option<u64>,
    /// Its signature operations cost, when the node says.
    pub sigops: Option<u64>,
}

/// A block template, typed from `getblocktemplate`'s JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The height of the block to build.
    pub height: u32,
    /// The tip it builds on.
    pub previous_block_hash: BlockHash,
    /// The header's `bits`.
    pub bits: CompactTarget,
    /// The network target.
    pub target: Target,
    /// The time to put in the header.
    pub cur_time: u32,
    /// The earliest time allowed.
    pub min_time: u32,
    /// The header's version.
    pub version: block::Version,
    /// Subsidy plus the fees of `transactions`.
    pub coinbase_value: Amount,
    /// The transactions after the coinbase, in block order.
    pub transactions: Vec<TemplateTransaction>,
    /// The coinbase's witness commitment output script, when segwit is active.
    pub default_witness_commitment: Option<ScriptBuf>,
    /// The id to long-poll for the next template, when the node offers it.
    pub longpollid: Option<String>,
}

impl Template {
    /// The fees of the transactions, where the node gave them.
    pub fn fees(&self) -> Amount {
        self.transactions.iter().filter_map(|t| t.fee).sum()
    }

    /// The network difficulty (difficulty 1 = the maximum target), for
    /// PPLNS windows and effort.
    pub fn network_difficulty(&self) -> f64 {
        self.target.difficulty_float()
    }
}

/// Why a template was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The JSON is not a template.
    #[error("the template is not the JSON expected")]
    Json(#[source] serde_json::Error),
    /// A field does not parse.
    #[error("the template's {field} '{value}' does not parse")]
    Field {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A transaction's data does not decode.
    #[error("the template's transaction {index} does not decode")]
    Transaction {
        /// Its position.
        index: usize,
        /// The cause.
        #[source]
        source: encode::Error,
    },
    /// A transaction's data does not hash to its txid.
    #[error("the template's transaction {index} hashes to {computed}, not its txid {given}")]
    TxidMismatch {
        /// Its position.
        index: usize,
        /// The txid given.
        given: Txid,
        /// The txid of its data.
        computed: Txid,
    },
}

#[derive(Debug, Deserialize)]
struct GbtTransaction {
    data: String,
    txid: String,
    hash: Option<String>,
    fee: Option<i64>,
    weight: Option<u64>,
    sigops: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct GbtTemplate {
    height: u32,
    previousblockhash: String,
    bits: String,
    target: Option<String>,
    curtime: u32,
    mintime: Option<u32>,
    version: i32,
    coinbasevalue: u64,
    #[serde(default)]
    transactions: Vec<GbtTransaction>,
    default_witness_commitment: Option<String>,
    longpollid: Option<String>,
}

fn field(field: &'static str, value: &str) -> TemplateError {
    TemplateError::Field { field, value: value.to_owned() }
}

impl Template {
    /// Parses `getblocktemplate`'s result.
    pub fn from_json(value: Value) -> Result<Template, TemplateError> {
        let gbt: GbtTemplate = serde_json::from_value(value).map_err(TemplateError::Json)?;
        let previous_block_hash = BlockHash::from_str(&gbt.previousblockhash)
            .map_err(|_| field("previousblockhash", &gbt.previousblockhash))?;
        let bits = u32::from_str_radix(&gbt.bits, 16)
            .map(CompactTarget::from_consensus)
            .map_err(|_| field("bits", &gbt.bits))?;
        let target = match &gbt.target {
            Some(text) => {
                let bytes: [u8; 32] =
                    hex::decode(text).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| field("target", text))?;
                Target::from_be_bytes(bytes)
            }
            None => Target::from_compact(bits),
        };
        let coinbase_value = Amount::from_sat(gbt.coinbasevalue);
        if coinbase_value > Amount::MAX_MONEY {
            return Err(field("coinbasevalue", &gbt.coinbasevalue.to_string()));
        }
        let default_witness_commitment = match &gbt.default_witness_commitment {
            Some(text) => {
                Some(ScriptBuf::from_bytes(hex::decode(text).map_err(|_| field("default_witness_commitment", text))?))
            }
            None => None,
        };
        let transactions = gbt
            .transactions
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let bytes = hex::decode(&t.data).map_err(|_| field("transactions[].data", &t.data))?;
                let transaction: Transaction =
                    encode::deserialize(&bytes).map_err(|source| TemplateError::Transaction { index, source })?;
                let txid = Txid::from_str(&t.txid).map_err(|_| field("transactions[].txid", &t.txid))?;
                let computed = transaction.compute_txid();
                if computed != txid {
                    return Err(TemplateError::TxidMismatch { index, given: txid, computed });
                }
                let wtxid = match &t.hash {
                    Some(hash) => Wtxid::from_str(hash).map_err(|_| field("transactions[].hash", hash))?,
                    None => transaction.compute_wtxid(),
                };
                let fee = match t.fee {
                    Some(fee) => Some(
                        u64::try_from(fee)
                            .map(Amount::from_sat)
                            .map_err(|_| field("transactions[].fee", &fee.to_string()))?,
                    ),
                    None => None,
                };
                Ok(TemplateTransaction { transaction, txid, wtxid, fee, weight: t.weight, sigops: t.sigops })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Template {
            height: gbt.height,
            previous_block_hash,
            bits,
            target,
            cur_time: gbt.curtime,
            min_time: gbt.mintime.unwrap_or(0),
            version: block::Version::from_consensus(gbt.version),
            coinbase_value,
            transactions,
            default_witness_commitment,
            longpollid: gbt.longpollid,
        })
    }
}

/// Why a call to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The call failed: the node is away, refused, or answered an error.
    #[error("the node call {method} failed")]
    Rpc {
        /// The method.
        method: &'static str,
        /// The cause.
        #[source]
        source: satpool_rpc::ClientError,
    },
    /// The template did not parse.
    #[error("the node's template is unusable")]
    Template(#[from] TemplateError),
    /// Another reply did not parse.
    #[error("the node's reply to {method} is unusable: {value}")]
    Reply {
        /// The method.
        method: &'static str,
        /// The reply.
        value: String,
    },
    /// The in-memory node was told to be away.
    #[error("the node is unreachable")]
    Unreachable,
}

impl NodeError {
    /// Whether a long poll only ran out of time (not a failure).
    pub fn is_timeout(&self) -> bool {
        matches!(self, NodeError::Rpc { source, .. } if source.is_timeout())
    }
}

/// What `submitblock` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Accepted (`null`).
    Accepted,
    /// Refused, with Core's reason (`"duplicate"`, `"high-hash"`, `"bad-txnmrklroot"`, …).
    Rejected(String),
}

impl SubmitOutcome {
    /// Whether the node kept a valid block but another one at the same
    /// height came first (Core answers `"inconclusive"` for a side branch
    /// and `"duplicate"` for a block it has): a lost race, routine when
    /// blocks come fast, not a fault of the pool.
    pub fn is_lost_race(&self) -> bool {
        matches!(self, SubmitOutcome::Rejected(reason) if reason == "inconclusive" || reason == "duplicate")
    }
}

/// Where templates come from.
pub trait TemplateSource: Send + Sync + 'static {
    /// A template now (`longpoll: None`), or once the node has one newer than
    /// the template with that long-poll id (or the node's long-poll limit).
    fn get_template(&self, longpoll: Option<&str>) -> impl Future<Output = Result<Template, NodeError>> + Send;
}

/// Where found blocks go.
pub trait BlockSubmitter: Send + Sync + 'static {
    /// Submits a full block.
    fn submit_block(&self, block: &Block) -> impl Future<Output = Result<SubmitOutcome, NodeError>> + Send;
}

/// The network as the node sees it (`getmininginfo`), for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkInfo {
    /// The active chain's height.
    pub height: u32,
    /// The tip's difficulty.
    pub difficulty: f64,
    /// The network's hashrate estimated from recent blocks (`networkhashps`),
    /// in hashes per second.
    pub hashes_per_second: f64,
}

/// What the pool asks the node about its chain.
pub trait ChainQuery: Send + Sync + 'static {
    /// The active chain's tip and height.
    fn tip(&self) -> impl Future<Output = Result<(BlockHash, u32), NodeError>> + Send;

    /// A block's confirmations: `Some(n ≥ 1)` in the active chain, `Some(-1)`
    /// known but off it, `None` unknown to the node.
    fn confirmations(&self, hash: &BlockHash) -> impl Future<Output = Result<Option<i64>, NodeError>> + Send;

    /// The network's height, difficulty and hashrate; `None` from a node
    /// that does not say (the default).
    fn network_info(&self) -> impl Future<Output = Result<Option<NetworkInfo>, NodeError>> + Send {
        async { Ok(None) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_core_template() {
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn::default()],
            output: vec![bitcoin::TxOut { value: Amount::from_sat(1), script_pubkey: ScriptBuf::new() }],
        };
        let data = encode::serialize_hex(&tx);
        let json = json!({
            "capabilities": ["proposal"], "version": 0x20000000, "rules": ["csv", "!segwit", "taproot"],
            "previousblockhash": "00000000000000000328e9fea9914ad83b7404a838aa66aefb970e5689c2f63d",
            "transactions": [{"data": data, "txid": tx.compute_txid().to_string(),
                "hash": tx.compute_wtxid().to_string(), "depends": [], "fee": 1000, "sigops": 4, "weight": 240}],
            "coinbaseaux": {}, "coinbasevalue": 625_001_000u64, "longpollid": "abc1",
            "target": "00000000000000000003a30c0000000000000000000000000000000000000000",
            "mintime": 1_700_000_000u32, "curtime": 1_700_000_100u32, "bits": "1703a30c", "height": 820_000,
            "default_witness_commitment": "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
        });
        let template = Template::from_json(json).expect("a valid template");
        assert_eq!(template.height, 820_000);
        assert_eq!(template.bits.to_consensus(), 0x1703a30c);
        assert_eq!(template.target, Target::from_compact(template.bits));
        assert_eq!(template.version.to_consensus(), 0x20000000);
        assert_eq!(template.fees(), Amount::from_sat(1000));
        assert_eq!(template.transactions[0].weight, Some(240));
        assert_eq!(template.longpollid.as_deref(), Some("abc1"));
        assert_eq!(template.default_witness_commitment.as_ref().map(|s| s.len()), Some(38));
    }

    #[test]
    fn refuses_bad_fields() {
        let base = json!({"height": 1, "previousblockhash": "00", "bits": "207fffff", "curtime": 1, "version": 4,
            "coinbasevalue": 1});
        assert!(matches!(Template::from_json(base), Err(TemplateError::Field { field: "previousblockhash", .. })));
        assert!(matches!(Template::from_json(json!({"height": "x"})), Err(TemplateError::Json(_))));
    }
}
