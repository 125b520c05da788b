//! Mining for others: `getblocktemplate` (BIP 22/23, with long polling and
//! proposals), `getmininginfo` and `getnetworkhashps`, answered as Bitcoin
//! Core answers them, so that pool software written for Core works as it is.
//!
//! The lock is held only to read the chain and snapshot the mempool; the
//! selection, the JSON and every long-poll wait run without it.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, BlockHash, CompactTarget, ScriptBuf, Target};
use num_bigint::BigUint;
use satpool_rpc::{Arg, Request, RpcError};
use serde_json::{json, Map, Value};

use super::encode::{self, hex256};
use super::{store_error, NodeRpc};
use crate::chain::{status, ChainError, Chainstate};
use crate::node::Node;
use crate::params::DifficultyRule;
use crate::pow::difficulty;
use crate::template::{self, Candidate, Selection, SelectionOptions};
use crate::validation::{MAX_BLOCK_SIGOPS_COST, MAX_BLOCK_WEIGHT, WITNESS_SCALE_FACTOR};

/// The version templates carry: BIP 9's top bits, no deployment signalled.
const TEMPLATE_VERSION: i32 = 0x2000_0000;
/// Core's `MAX_TIMEWARP`: at a retarget height the time may not be more
/// than this before the parent's (BIP 94, applied by Core's miner everywhere).
const MAX_TIMEWARP: u32 = 600;
/// Core's retarget interval, which regtest keeps although its target is fixed.
const CORE_RETARGET_INTERVAL: u32 = 2016;
/// How often a long poll looks at the mempool.
const LONGPOLL_MEMPOOL_CHECK: Duration = Duration::from_secs(1);
/// Core's long-poll timeout: after a minute, any mempool change ends the
/// wait, even one that adds no fees to the template.
const LONGPOLL_MEMPOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Long-poll ids whose template fees are remembered.
const REMEMBERED_TEMPLATES: usize = 64;
/// Core's default `nblocks` for `getnetworkhashps`.
const DEFAULT_HASHPS_BLOCKS: i64 = 120;

/// What the mining methods remember between calls: the last template's size
/// (`getmininginfo`'s `currentblockweight` and `currentblocktx`), and the
/// fees of recent templates by long-poll id, so that a long poll can tell
/// whether the mempool now pays more.
#[derive(Debug, Default)]
pub struct MiningState {
    inner: Mutex<MiningMemory>,
}

#[derive(Debug, Default)]
struct MiningMemory {
    last_block_weight: Option<u64>,
    last_block_txs: Option<usize>,
    fees_by_longpollid: VecDeque<(String, Amount)>,
}

impl MiningState {
    fn memory(&self) -> std::sync::MutexGuard<'_, MiningMemory> {
        // Only plain values live here; a panic mid-update leaves them usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, template: &Template) {
        let mut memory = self.memory();
        memory.last_block_weight = Some(template.selection.block_weight);
        memory.last_block_txs = Some(template.selection.transactions.len());
        if !memory.fees_by_longpollid.iter().any(|(id, _)| *id == template.longpollid) {
            if memory.fees_by_longpollid.len() == REMEMBERED_TEMPLATES {
                memory.fees_by_longpollid.pop_front();
            }
            memory.fees_by_longpollid.push_back((template.longpollid.clone(), template.selection.fees));
        }
    }

    fn fees_of(&self, longpollid: &str) -> Option<Amount> {
        self.memory().fees_by_longpollid.iter().find(|(id, _)| id == longpollid).map(|(_, fees)| *fees)
    }
}

/// A block template: everything `getblocktemplate` prints.
#[derive(Debug, Clone)]
pub struct Template {
    /// The tip it builds on.
    pub previous_block_hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// The header version.
    pub version: i32,
    /// The bits the block must carry at `cur_time`.
    pub bits: CompactTarget,
    /// Earliest allowed time.
    pub min_time: u32,
    /// The time to use: the clock, or `min_time` if later.
    pub cur_time: u32,
    /// Subsidy plus the fees of exactly the chosen transactions.
    pub coinbase_value: Amount,
    /// The chosen transactions.
    pub selection: Selection,
    /// The BIP 141 commitment output, when segwit is in force.
    pub witness_commitment: Option<ScriptBuf>,
    /// Whether segwit is not yet in force at `height` (limits are printed
    /// in pre-segwit units then).
    pub pre_segwit: bool,
    /// The tip and the mempool sequence the template was built from.
    pub longpollid: String,
}

/// What a template needs from the node, read under the lock.
struct Snapshot {
    candidates: Vec<Candidate>,
    mempool_sequence: u64,
    tip: BlockHash,
    height: u32,
    min_time: u32,
    cur_time: u32,
    bits: CompactTarget,
    subsidy: Amount,
    segwit: bool,
    lock_time_cutoff: u32,
}

/// The mempool as selection candidates, with its sequence number.
fn mempool_candidates(node: &Node) -> (Vec<Candidate>, u64) {
    Candidate::from_mempool(&node.mempool)
}

/// Core's `GetMinimumTime`: the median time past plus one, and at a
/// retarget height no more than [`MAX_TIMEWARP`] before the parent.
fn minimum_time(chain: &Chainstate) -> u32 {
    let tip = chain.tip();
    let mut min_time = chain.tip_median_time_past() + 1;
    let interval = match chain.params().difficulty {
        DifficultyRule::Retarget { interval, .. } => Some(interval),
        DifficultyRule::Fixed => Some(CORE_RETARGET_INTERVAL),
        DifficultyRule::Asert { .. } => None,
    };
    if interval.is_some_and(|i| (tip.height + 1).is_multiple_of(i)) {
        min_time = min_time.max(tip.header.time.saturating_sub(MAX_TIMEWARP));
    }
    min_time
}

fn snapshot(node: &Node) -> Snapshot {
    let chain = &node.chain;
    let (candidates, mempool_sequence) = mempool_candidates(node);
    let tip = chain.tip();
    let height = tip.height + 1;
    let params = chain.params();
    let min_time = minimum_time(chain);
    let now = u32::try_from(chain.now().max(0)).unwrap_or(u32::MAX);
    let cur_time = now.max(min_time);
    let mtp = chain.tip_median_time_past();
    Snapshot {
        candidates,
        mempool_sequence,
        tip: tip.hash,
        height,
        min_time,
        cur_time,
        // On networks with min-difficulty blocks the bits depend on the time (Core's `UpdateTime`).
        bits: chain.next_work_required(cur_time),
        subsidy: params.block_subsidy(height),
        segwit: height >= params.segwit_height,
        lock_time_cutoff: if height >= params.csv_height { mtp } else { cur_time },
    }
}

/// Builds a template from a snapshot: the selection and the coinbase's parts.
fn build(snapshot: Snapshot) -> Template {
    let options = SelectionOptions::new(snapshot.height, snapshot.lock_time_cutoff);
    let selection = template::select(&snapshot.candidates, &options);
    let coinbase_value =
        snapshot.subsidy.checked_add(selection.fees).expect("subsidy plus fees stay within the money supply");
    let witness_commitment =
        snapshot.segwit.then(|| crate::mining::witness_commitment_for(selection.transactions.iter().map(|t| t.wtxid)));
    Template {
        previous_block_hash: snapshot.tip,
        height: snapshot.height,
        version: TEMPLATE_VERSION,
        bits: snapshot.bits,
        min_time: snapshot.min_time,
        cur_time: snapshot.cur_time,
        coinbase_value,
        selection,
        witness_commitment,
        pre_segwit: !snapshot.segwit,
        longpollid: format!("{}{}", snapshot.tip, snapshot.mempool_sequence),
    }
}

/// The transactions of a template as `getblocktemplate` lists them.
pub fn transactions_json(selection: &Selection, pre_segwit: bool) -> Vec<Value> {
    selection
        .transactions
        .iter()
        .map(|t| {
            let sigops = if pre_segwit { t.sigop_cost / WITNESS_SCALE_FACTOR as u64 } else { t.sigop_cost };
            json!({
                "data": serialize_hex(&*t.tx),
                "txid": t.txid.to_string(),
                "hash": t.wtxid.to_string(),
                "depends": t.depends,
                "fee": t.fee.to_sat(),
                "sigops": sigops,
                "weight": t.weight,
            })
        })
        .collect()
}

/// `getblocktemplate`'s answer for a template, field for field as Core's.
pub fn template_json(template: &Template) -> Value {
    let scale = if template.pre_segwit { WITNESS_SCALE_FACTOR as u64 } else { 1 };
    let mut rules = vec!["csv"];
    if !template.pre_segwit {
        rules.push("!segwit");
    }
    rules.push("taproot");
    let mut out = Map::new();
    out.insert("capabilities".into(), json!(["proposal"]));
    out.insert("version".into(), json!(template.version));
    out.insert("rules".into(), json!(rules));
    out.insert("vbavailable".into(), json!({}));
    out.insert("vbrequired".into(), json!(0));
    out.insert("previousblockhash".into(), json!(template.previous_block_hash.to_string()));
    out.insert("transactions".into(), Value::Array(transactions_json(&template.selection, template.pre_segwit)));
    out.insert("coinbaseaux".into(), json!({}));
    out.insert("coinbasevalue".into(), json!(template.coinbase_value.to_sat()));
    out.insert("longpollid".into(), json!(template.longpollid));
    out.insert("target".into(), json!(hex256(Target::from_compact(template.bits).to_be_bytes())));
    out.insert("mintime".into(), json!(template.min_time));
    out.insert("mutable".into(), json!(["time", "transactions", "prevblock"]));
    out.insert("noncerange".into(), json!("00000000ffffffff"));
    out.insert("sigoplimit".into(), json!(MAX_BLOCK_SIGOPS_COST as u64 / scale));
    out.insert("sizelimit".into(), json!(MAX_BLOCK_WEIGHT / scale));
    if !template.pre_segwit {
        out.insert("weightlimit".into(), json!(MAX_BLOCK_WEIGHT));
    }
    out.insert("curtime".into(), json!(template.cur_time));
    out.insert("bits".into(), json!(format!("{:08x}", template.bits.to_consensus())));
    out.insert("height".into(), json!(template.height));
    if let Some(script) = &template.witness_commitment {
        out.insert("default_witness_commitment".into(), json!(hex::encode(script.as_bytes())));
    }
    Value::Object(out)
}

/// Waits at most `limit` for the tip to change, without any lock. It looks
/// every 10 ms rather than awaiting the watch on the runtime: a handler runs
/// on a blocking thread, and blocking on the runtime's timers there panics
/// once the runtime shuts down under a long poll.
fn wait_for_tip(rx: &mut tokio::sync::watch::Receiver<BlockHash>, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !rx.has_changed().unwrap_or(true) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Splits a long-poll id, `<tip hash><mempool sequence>`, as Core does
/// (a sequence that does not parse counts as 0).
fn parse_longpollid(id: &str) -> Result<(BlockHash, u64), RpcError> {
    let hash_part = id.get(..64).ok_or_else(|| {
        RpcError::invalid_parameter(format!("longpollid must be of length 64 (not {}, for '{id}')", id.len()))
    })?;
    let hash = BlockHash::from_str(hash_part)
        .map_err(|_| RpcError::invalid_parameter(format!("longpollid must be hexadecimal string (not '{id}')")))?;
    let sequence = id[64..].parse().unwrap_or(0);
    Ok((hash, sequence))
}

impl NodeRpc {
    pub(super) fn getblocktemplate(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Optional("template_request")])?;
        let template_request = match params.raw(0) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(other) => {
                return Err(RpcError::type_error(format!(
                    "JSON value of type {} is not of expected type object",
                    json_type(other)
                )))
            }
        };
        let mode = match template_request.get("mode") {
            None | Some(Value::Null) => "template",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(RpcError::invalid_parameter("Invalid mode")),
        };
        if mode == "proposal" {
            return self.block_proposal(&template_request);
        }
        if mode != "template" {
            return Err(RpcError::invalid_parameter("Invalid mode"));
        }
        let rules: Vec<&str> = match template_request.get("rules") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !rules.contains(&"segwit") {
            return Err(RpcError::invalid_parameter(
                "getblocktemplate must be called with the segwit rule set (call with {\"rules\": [\"segwit\"]})",
            ));
        }
        if self.node().chain.params().network == crate::params::Network::Mainnet {
            // Core's rule on its main network: no templates while the tip is
            // more than a day old (a test chain answers regardless).
            let node = self.node();
            if i64::from(node.chain.tip().header.time) < node.chain.now() - 24 * 60 * 60 {
                return Err(RpcError::in_initial_download("Bitcoin is in initial sync and waiting for blocks..."));
            }
        }
        if let Some(longpollid) = template_request.get("longpollid").filter(|id| !id.is_null()) {
            self.long_poll(longpollid)?;
        }
        let snapshot = {
            let node = self.node();
            snapshot(&node)
        };
        let template = build(snapshot);
        self.mining.remember(&template);
        Ok(template_json(&template))
    }

    /// Waits, without the node's lock, until the tip is no longer the one
    /// in `longpollid`, or the mempool would give a template paying more
    /// fees than the one `longpollid` names (looked at every second), or,
    /// after a minute, the mempool changed at all (Core's timeout).
    fn long_poll(&self, longpollid: &Value) -> Result<(), RpcError> {
        let (watched, sequence, id) = match longpollid {
            Value::String(id) => {
                let (hash, sequence) = parse_longpollid(id)?;
                (hash, sequence, Some(id.clone()))
            }
            // Core: a non-string id watches the present state (handy in tests).
            _ => {
                let node = self.node();
                (node.chain.tip().hash, node.mempool.sequence(), None)
            }
        };
        let baseline = id.as_deref().and_then(|id| self.mining.fees_of(id));
        let mut tip = self.node.watch_tip();
        let started = Instant::now();
        let mut last_sequence = sequence;
        loop {
            if *tip.borrow_and_update() != watched {
                return Ok(());
            }
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(RpcError::not_connected("Shutting down"));
            }
            wait_for_tip(&mut tip, LONGPOLL_MEMPOOL_CHECK);
            if tip.has_changed().unwrap_or(false) {
                continue;
            }
            let snapshot = {
                let node = self.node();
                if node.chain.tip().hash != watched {
                    return Ok(());
                }
                let now_sequence = node.mempool.sequence();
                (now_sequence != last_sequence).then(|| snapshot(&node))
            };
            if let Some(snapshot) = snapshot {
                last_sequence = snapshot.mempool_sequence;
                if let Some(baseline) = baseline {
                    let fees = template::select(
                        &snapshot.candidates,
                        &SelectionOptions::new(snapshot.height, snapshot.lock_time_cutoff),
                    )
                    .fees;
                    if fees > baseline {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() >= LONGPOLL_MEMPOOL_TIMEOUT && last_sequence != sequence {
                return Ok(());
            }
        }
    }

    /// A block on the tip holding the transactions a template would hold
    /// now, its coinbase paying subsidy plus their fees to `script`; its
    /// nonce not yet searched (`generatetoaddress`).
    pub(super) fn block_from_mempool(&self, script: ScriptBuf) -> bitcoin::Block {
        let node = self.node();
        let snapshot = snapshot(&node);
        let options = SelectionOptions::new(snapshot.height, snapshot.lock_time_cutoff);
        let selection = template::select(&snapshot.candidates, &options);
        let txs = selection.transactions.iter().map(|t| (*t.tx).clone()).collect();
        crate::mining::block_template(&node.chain, script, txs, selection.fees)
    }

    /// BIP 23 proposals: every check of a block built on the tip, nothing kept.
    fn block_proposal(&self, template_request: &Map<String, Value>) -> Result<Value, RpcError> {
        let data = template_request
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::deserialization("Missing data String key for proposal"))?;
        let block: bitcoin::Block = hex::decode(data)
            .ok()
            .and_then(|bytes| bitcoin::consensus::deserialize(&bytes).ok())
            .ok_or_else(|| RpcError::deserialization("Block decode failed"))?;
        let hash = block.block_hash();
        let node = self.node();
        let chain = &node.chain;
        if let Some(entry) = chain.index().get(&hash) {
            let answer = if entry.status & status::VALID_SCRIPTS != 0 {
                "duplicate"
            } else if entry.failed() {
                "duplicate-invalid"
            } else {
                "duplicate-inconclusive"
            };
            return Ok(json!(answer));
        }
        if block.header.prev_blockhash != chain.tip().hash {
            return Ok(json!("inconclusive-not-best-prevblk"));
        }
        match chain.test_block_validity(&block, false) {
            Ok(Ok(())) => Ok(Value::Null),
            Ok(Err(e)) => {
                tracing::debug!(block = %hash, reason = %e.reject_reason(), "block proposal rejected: {e}");
                Ok(json!(e.reject_reason()))
            }
            Err(ChainError::PrevBlockNotFound(_)) => Ok(json!("inconclusive-not-best-prevblk")),
            Err(e) => Err(store_error(e)),
        }
    }

    pub(super) fn getmininginfo(&self, request: &Request) -> Result<Value, RpcError> {
        request.params(&[])?;
        let mut out = {
            let node = self.node();
            let chain = &node.chain;
            let tip = chain.tip();
            let next_bits =
                chain.next_work_required(minimum_time(chain).max(chain.now().clamp(0, i64::from(u32::MAX)) as u32));
            let mut out = Map::new();
            out.insert("blocks".into(), json!(tip.height));
            let memory = self.mining.memory();
            if let Some(weight) = memory.last_block_weight {
                out.insert("currentblockweight".into(), json!(weight));
            }
            if let Some(txs) = memory.last_block_txs {
                out.insert("currentblocktx".into(), json!(txs));
            }
            drop(memory);
            out.insert("bits".into(), json!(format!("{:08x}", tip.header.bits.to_consensus())));
            out.insert("difficulty".into(), encode::float(difficulty(tip.header.bits)));
            out.insert("target".into(), json!(hex256(tip.header.target().to_be_bytes())));
            out.insert("networkhashps".into(), encode::float(network_hashps(chain, DEFAULT_HASHPS_BLOCKS, -1)?));
            out.insert("pooledtx".into(), json!(node.mempool.len()));
            out.insert("chain".into(), json!(chain.params().network.name()));
            out.insert(
                "next".into(),
                json!({
                    "height": tip.height + 1,
                    "bits": format!("{:08x}", next_bits.to_consensus()),
                    "difficulty": encode::float(difficulty(next_bits)),
                    "target": hex256(Target::from_compact(next_bits).to_be_bytes()),
                }),
            );
            out
        };
        out.insert("warnings".into(), json!([]));
        Ok(Value::Object(out))
    }

    pub(super) fn getnetworkhashps(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Optional("nblocks"), Arg::Optional("height")])?;
        let nblocks: i64 = params.or(0, DEFAULT_HASHPS_BLOCKS)?;
        let height: i64 = params.or(1, -1)?;
        let node = self.node();
        Ok(encode::float(network_hashps(&node.chain, nblocks, height)?))
    }
}

/// Core's `GetNetworkHashPS`: the work done over the last `lookup` blocks
/// up to `height` (the tip for -1) divided by the time they spanned
/// (earliest to latest timestamp in the window). `lookup` -1 means since
/// the last difficulty change.
fn network_hashps(chain: &Chainstate, lookup: i64, height: i64) -> Result<f64, RpcError> {
    if lookup < -1 || lookup == 0 {
        return Err(RpcError::invalid_parameter("Invalid nblocks. Must be a positive number or -1."));
    }
    let tip_height = i64::from(chain.tip().height);
    if height < -1 || height > tip_height {
        return Err(RpcError::invalid_parameter("Block does not exist at specified height"));
    }
    let index = chain.index();
    let end_height = if height >= 0 { height as u32 } else { chain.tip().height };
    let Some(end) = index.active_hash(end_height).and_then(|h| index.get(&h)) else { return Ok(0.0) };
    if end.height == 0 {
        return Ok(0.0);
    }
    let mut lookup = lookup;
    if lookup == -1 {
        // Devnet retargets every block.
        let interval = match chain.params().difficulty {
            DifficultyRule::Retarget { interval, .. } => interval,
            DifficultyRule::Fixed => CORE_RETARGET_INTERVAL,
            DifficultyRule::Asert { .. } => 1,
        };
        lookup = i64::from(end.height % interval) + 1;
    }
    let lookup = lookup.min(i64::from(end.height)) as u32;
    let mut min_time = end.header.time;
    let mut max_time = min_time;
    let mut start = end;
    for _ in 0..lookup {
        start = index.get(&start.header.prev_blockhash).expect("ancestors of an active block are indexed");
        min_time = min_time.min(start.header.time);
        max_time = max_time.max(start.header.time);
    }
    if min_time == max_time {
        return Ok(0.0);
    }
    let work =
        BigUint::from_bytes_be(&end.chainwork.to_be_bytes()) - BigUint::from_bytes_be(&start.chainwork.to_be_bytes());
    let work = work.to_bytes_be().iter().fold(0.0f64, |acc, b| acc * 256.0 + f64::from(*b));
    Ok(work / f64::from(max_time - min_time))
}

/// Core's name for a JSON value's type, for type errors.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
