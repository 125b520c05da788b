//! The node's JSON-RPC methods, with Bitcoin Core's names, parameters,
//! result shapes and errors. The transport is `satpool-rpc`'s.

pub mod encode;

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::consensus::deserialize;
use bitcoin::{Address, Block, BlockHash, ScriptBuf, Transaction};
use satpool_rpc::{Arg, Request, RpcError, RpcHandler};
use serde_json::{json, Value};

use crate::chain::{BlockOutcome, ChainError, Chainstate};
use crate::mining;
use crate::pow::difficulty;
use encode::{block_hash, block_json, header_json, hex256};

/// Core's default `maxtries` for the generate methods.
const DEFAULT_MAX_TRIES: u64 = 1_000_000;

/// The node's RPC methods over a shared chainstate.
pub struct NodeRpc {
    chain: Arc<Mutex<Chainstate>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Set on shutdown so that a long `generate` call stops searching.
    stopping: Arc<AtomicBool>,
}

impl NodeRpc {
    /// Methods over `chain`; `stop` sends `true` on `shutdown`.
    pub fn new(
        chain: Arc<Mutex<Chainstate>>,
        shutdown: tokio::sync::watch::Sender<bool>,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        NodeRpc { chain, shutdown, stopping }
    }

    fn chain(&self) -> MutexGuard<'_, Chainstate> {
        // A panic while holding the lock leaves the chainstate as its last
        // commit left it (every change is one commit), so going on is safe.
        self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RpcHandler for NodeRpc {
    fn call(&self, request: &Request) -> Result<Value, RpcError> {
        match request.method.as_str() {
            "getblockchaininfo" => self.getblockchaininfo(request),
            "getbestblockhash" => {
                request.params(&[])?;
                Ok(json!(self.chain().tip().hash.to_string()))
            }
            "getblockcount" => {
                request.params(&[])?;
                Ok(json!(self.chain().tip().height))
            }
            "getblockhash" => self.getblockhash(request),
            "getblock" => self.getblock(request),
            "getblockheader" => self.getblockheader(request),
            "getdifficulty" => {
                request.params(&[])?;
                Ok(json!(difficulty(self.chain().tip().header.bits)))
            }
            "getchaintips" => self.getchaintips(request),
            "gettxoutsetinfo" => self.gettxoutsetinfo(request),
            "submitblock" => self.submitblock(request),
            "generatetoaddress" => self.generatetoaddress(request),
            "generateblock" => self.generateblock(request),
            "invalidateblock" => self.invalidateblock(request, true),
            "reconsiderblock" => self.invalidateblock(request, false),
            "validateaddress" => self.validateaddress(request),
            "stop" => {
                request.params(&[Arg::Optional("wait")])?;
                self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = self.shutdown.send(true);
                Ok(json!("satpool-node stopping"))
            }
            _ => Err(RpcError::method_not_found()),
        }
    }
}

fn store_error(e: ChainError) -> RpcError {
    tracing::error!("chainstate failure: {e}");
    RpcError::database(e.to_string())
}

impl NodeRpc {
    fn getblockchaininfo(&self, request: &Request) -> Result<Value, RpcError> {
        request.params(&[])?;
        let chain = self.chain();
        let tip = chain.tip();
        let headers = chain.index().entries().filter(|e| !e.failed()).map(|e| e.height).max().unwrap_or(0);
        let now = chain.now();
        // Core's rule: in initial download while the tip is more than a day old.
        let ibd = i64::from(tip.header.time) < now - 24 * 60 * 60;
        Ok(json!({
            "chain": chain.params().network.name(),
            "blocks": tip.height,
            "headers": headers,
            "bestblockhash": tip.hash.to_string(),
            "bits": format!("{:08x}", tip.header.bits.to_consensus()),
            "target": hex256(tip.header.target().to_be_bytes()),
            "difficulty": difficulty(tip.header.bits),
            "time": tip.header.time,
            "mediantime": chain.tip_median_time_past(),
            "verificationprogress": if headers == 0 { 1.0 } else { f64::from(tip.height) / f64::from(headers) },
            "initialblockdownload": ibd,
            "chainwork": hex256(tip.chainwork.to_be_bytes()),
            "size_on_disk": 0,
            "pruned": false,
            "warnings": [],
        }))
    }

    fn getblockhash(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("height")])?;
        let height: i64 = params.required(0)?;
        let chain = self.chain();
        u32::try_from(height)
            .ok()
            .and_then(|h| chain.index().active_hash(h))
            .map(|h| json!(h.to_string()))
            .ok_or_else(|| RpcError::invalid_parameter("Block height out of range"))
    }

    fn getblockheader(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("blockhash"), Arg::Optional("verbose")])?;
        let hash = block_hash(params.hash(0)?);
        let verbose: bool = params.or(1, true)?;
        let chain = self.chain();
        let entry = chain.index().get(&hash).ok_or_else(|| RpcError::invalid_address_or_key("Block not found"))?;
        if !verbose {
            return Ok(json!(bitcoin::consensus::encode::serialize_hex(&entry.header)));
        }
        let mut obj = header_json(&chain, entry);
        if let Ok(Some(block)) = chain.block(&hash) {
            obj.insert("nTx".into(), json!(block.txdata.len()));
        }
        Ok(Value::Object(obj))
    }

    fn getblock(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("blockhash"), Arg::Optional("verbosity|verbose")])?;
        let hash = block_hash(params.hash(0)?);
        // Core accepts a boolean here too (the old `verbose`).
        let verbosity = match params.raw(1) {
            None | Some(Value::Null) => 1,
            Some(Value::Bool(b)) => u8::from(*b),
            Some(_) => {
                let v: i64 = params.required(1)?;
                v.clamp(0, 3) as u8
            }
        };
        let chain = self.chain();
        let entry =
            chain.index().get(&hash).ok_or_else(|| RpcError::invalid_address_or_key("Block not found"))?.clone();
        if verbosity == 0 {
            let raw = chain.raw_block(&hash).map_err(store_error)?;
            return raw.map(|r| json!(hex::encode(r))).ok_or_else(|| RpcError::misc("Block not available"));
        }
        let block = chain.block(&hash).map_err(store_error)?.ok_or_else(|| RpcError::misc("Block not available"))?;
        Ok(block_json(&chain, &entry, &block, verbosity))
    }

    fn getchaintips(&self, request: &Request) -> Result<Value, RpcError> {
        request.params(&[])?;
        let chain = self.chain();
        let tips: Vec<Value> = chain
            .chain_tips()
            .into_iter()
            .map(|t| json!({"height": t.height, "hash": t.hash.to_string(), "branchlen": t.branch_len, "status": t.status}))
            .collect();
        Ok(Value::Array(tips))
    }

    fn gettxoutsetinfo(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Optional("hash_type")])?;
        let hash_type: String = params.or(0, "hash_serialized_3".to_owned())?;
        if hash_type != "hash_serialized_3" && hash_type != "none" {
            return Err(RpcError::invalid_parameter(format!("'{hash_type}' is not a valid hash_type")));
        }
        let info = self.chain().utxo_set_info().map_err(store_error)?;
        let mut out = json!({
            "height": info.height,
            "bestblock": info.best_block.to_string(),
            "txouts": info.txouts,
            "transactions": info.transactions,
            "total_amount": encode::amount(bitcoin::Amount::from_sat(info.total_amount)),
        });
        if hash_type == "hash_serialized_3" {
            out["hash_serialized_3"] = json!(info.hash_serialized.to_string());
        }
        Ok(out)
    }

    fn submitblock(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("hexdata"), Arg::Optional("dummy")])?;
        let bytes = params.hex(0)?;
        let block: Block = deserialize(&bytes).map_err(|_| RpcError::deserialization("Block decode failed"))?;
        if block.txdata.first().is_none_or(|tx| !tx.is_coinbase()) {
            return Err(RpcError::deserialization("Block does not start with a coinbase"));
        }
        let hash = block.block_hash();
        let outcome = self.chain().process_block(&block);
        Ok(match outcome {
            Ok(BlockOutcome::Connected) => Value::Null,
            Ok(BlockOutcome::Duplicate) => json!("duplicate"),
            Ok(BlockOutcome::SideBranch) => json!("inconclusive"),
            Err(ChainError::PrevBlockNotFound(_)) => json!("inconclusive"),
            Err(e) => match e.reject_reason() {
                Some(reason) => {
                    tracing::info!(block = %hash, %reason, "submitblock rejected: {e}");
                    json!(reason)
                }
                None => return Err(store_error(e)),
            },
        })
    }

    fn generatetoaddress(&self, request: &Request) -> Result<Value, RpcError> {
        let params =
            request.params(&[Arg::Required("nblocks"), Arg::Required("address"), Arg::Optional("maxtries")])?;
        let nblocks: i64 = params.required(0)?;
        let address: String = params.required(1)?;
        let max_tries: u64 = params.or(2, DEFAULT_MAX_TRIES)?;
        let script =
            self.parse_address(&address).ok_or_else(|| RpcError::invalid_address_or_key("Error: Invalid address"))?;
        let mut hashes = Vec::new();
        let mut tries_left = max_tries;
        for _ in 0..nblocks.max(0) {
            match self.mine_one(script.clone(), Vec::new(), &mut tries_left, true)? {
                Some(block) => hashes.push(json!(block.block_hash().to_string())),
                None => break,
            }
        }
        Ok(Value::Array(hashes))
    }

    fn generateblock(&self, request: &Request) -> Result<Value, RpcError> {
        let params =
            request.params(&[Arg::Required("output"), Arg::Required("transactions"), Arg::Optional("submit")])?;
        let output: String = params.required(0)?;
        let raw_txs: Vec<Value> = params.required(1)?;
        let submit: bool = params.or(2, true)?;
        let script = self
            .parse_address(&output)
            .ok_or_else(|| RpcError::invalid_address_or_key("Error: Invalid address or descriptor"))?;
        let mut txs = Vec::with_capacity(raw_txs.len());
        for raw in raw_txs {
            let text = raw.as_str().ok_or_else(|| RpcError::type_error("JSON value is not a string as expected"))?;
            let bytes = hex::decode(text)
                .map_err(|_| RpcError::deserialization(format!("Transaction decode failed for {text}")))?;
            let tx: Transaction = deserialize(&bytes).map_err(|_| {
                if text.len() == 64 {
                    // A txid: there is no mempool to find it in yet.
                    RpcError::invalid_address_or_key(format!("Transaction {text} not in mempool."))
                } else {
                    RpcError::deserialization(format!(
                        "Transaction decode failed for {text}. Make sure the tx has at least one input."
                    ))
                }
            })?;
            txs.push(tx);
        }
        let mut tries = u64::MAX;
        let block =
            self.mine_one(script, txs, &mut tries, submit)?.ok_or_else(|| RpcError::misc("Failed to make block."))?;
        let mut out = json!({"hash": block.block_hash().to_string()});
        if !submit {
            out["hex"] = json!(bitcoin::consensus::encode::serialize_hex(&block));
        }
        Ok(out)
    }

    /// Builds a block on the tip, searches for its nonce without holding the
    /// chainstate lock, and submits it. `None` when the tries ran out.
    fn mine_one(
        &self,
        script: ScriptBuf,
        txs: Vec<Transaction>,
        tries_left: &mut u64,
        submit: bool,
    ) -> Result<Option<Block>, RpcError> {
        let fees = {
            let chain = self.chain();
            block_fees(&chain, &txs)?
        };
        let mut block = {
            let chain = self.chain();
            mining::block_template(&chain, script, txs, fees)
        };
        let start_nonce = block.header.nonce;
        let found = mining::solve_header(&mut block.header, *tries_left, &self.stopping);
        *tries_left = tries_left.saturating_sub(u64::from(block.header.nonce.wrapping_sub(start_nonce)) + 1);
        if !found {
            return Ok(None);
        }
        if !submit {
            return Ok(Some(block));
        }
        match self.chain().process_block(&block) {
            Ok(_) => Ok(Some(block)),
            Err(e) => match e.reject_reason() {
                Some(reason) => Err(RpcError::verify(format!("TestBlockValidity failed: {reason}"))),
                None => Err(store_error(e)),
            },
        }
    }

    fn invalidateblock(&self, request: &Request, invalidate: bool) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("blockhash")])?;
        let hash: BlockHash = block_hash(params.hash(0)?);
        let mut chain = self.chain();
        if chain.index().get(&hash).is_none() {
            return Err(RpcError::invalid_address_or_key("Block not found"));
        }
        let result = if invalidate { chain.invalidate_block(&hash) } else { chain.reconsider_block(&hash) };
        match result {
            Ok(()) => Ok(Value::Null),
            Err(ChainError::Store(e)) => Err(store_error(ChainError::Store(e))),
            Err(e) => Err(RpcError::database(e.to_string())),
        }
    }

    fn validateaddress(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("address")])?;
        let text: String = params.required(0)?;
        let network = self.chain().params().network.address_network();
        match Address::from_str(&text) {
            Ok(unchecked) => match unchecked.require_network(network) {
                Ok(address) => {
                    let script = address.script_pubkey();
                    let mut out = json!({
                        "isvalid": true,
                        "address": address.to_string(),
                        "scriptPubKey": hex::encode(script.as_bytes()),
                        "isscript": script.is_p2sh() || script.is_p2wsh(),
                        "iswitness": script.is_witness_program(),
                    });
                    if let Some(program) = address.witness_program() {
                        out["witness_version"] = json!(program.version().to_num());
                        out["witness_program"] = json!(hex::encode(program.program().as_bytes()));
                    }
                    Ok(out)
                }
                Err(_) => Ok(
                    json!({"isvalid": false, "error_locations": [], "error": "Invalid or unsupported Base58-encoded address, or address of another network."}),
                ),
            },
            Err(e) => Ok(json!({"isvalid": false, "error_locations": [], "error": format!("Invalid address: {e}")})),
        }
    }

    fn parse_address(&self, text: &str) -> Option<ScriptBuf> {
        let network = self.chain().params().network.address_network();
        Address::from_str(text).ok()?.require_network(network).ok().map(|a| a.script_pubkey())
    }
}

/// Fees of transactions that spend the UTXO set or each other, for the
/// coinbase of a generated block. Invalid transactions are refused later by
/// the block's own validation; here only the sum is needed.
fn block_fees(chain: &Chainstate, txs: &[Transaction]) -> Result<bitcoin::Amount, RpcError> {
    let mut created = std::collections::HashMap::new();
    let mut fees = bitcoin::Amount::ZERO;
    for tx in txs {
        let mut value_in = bitcoin::Amount::ZERO;
        for input in &tx.input {
            let value = match created.get(&input.previous_output) {
                Some(v) => *v,
                None => {
                    chain.coin(&input.previous_output).map_err(store_error)?.map(|c| c.value()).ok_or_else(|| {
                        RpcError::verify(format!(
                            "TestBlockValidity failed: bad-txns-inputs-missingorspent, {}",
                            tx.compute_txid()
                        ))
                    })?
                }
            };
            value_in += value;
        }
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            created.insert(bitcoin::OutPoint { txid, vout: vout as u32 }, out.value);
        }
        let value_out: bitcoin::Amount = tx.output.iter().map(|o| o.value).sum();
        fees += value_in.checked_sub(value_out).unwrap_or(bitcoin::Amount::ZERO);
    }
    Ok(fees)
}
