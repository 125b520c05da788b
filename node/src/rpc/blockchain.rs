//! Chain queries and chain management: `getblockchaininfo`, `getblock`,
//! `getblockheader`, `getchaintips`, `gettxoutsetinfo`, `invalidateblock`,
//! `validateaddress` and the like.

use std::str::FromStr;

use bitcoin::{Address, BlockHash, ScriptBuf};
use satpool_rpc::{Arg, Request, RpcError};
use serde_json::{json, Value};

use super::encode::{self, block_hash, block_json, header_json, hex256};
use super::{store_error, NodeRpc};
use crate::chain::ChainError;
use crate::pow::difficulty;

impl NodeRpc {
    pub(super) fn getblockchaininfo(&self, request: &Request) -> Result<Value, RpcError> {
        let mut info = self.blockchain_info(request)?;
        let chain = &self.node().chain;
        let mode = chain.prune_mode();
        info["pruned"] = json!(mode.is_on());
        if mode.is_on() {
            info["pruneheight"] = json!(chain.prune_height().unwrap_or(0));
            info["automatic_pruning"] = json!(mode.target_bytes().is_some());
            if let Some(target) = mode.target_bytes() {
                info["prune_target_size"] = json!(target);
            }
        }
        Ok(info)
    }

    fn blockchain_info(&self, request: &Request) -> Result<Value, RpcError> {
        request.params(&[])?;
        let node = self.node();
        let chain = &node.chain;
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
            "difficulty": encode::float(difficulty(tip.header.bits)),
            "time": tip.header.time,
            "mediantime": chain.tip_median_time_past(),
            "verificationprogress": encode::float(if headers == 0 { 1.0 } else { f64::from(tip.height) / f64::from(headers) }),
            "initialblockdownload": ibd,
            "chainwork": hex256(tip.chainwork.to_be_bytes()),
            "size_on_disk": chain.size_on_disk(),
            "pruned": false,
            "warnings": [],
        }))
    }

    pub(super) fn getblockhash(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("height")])?;
        let height: i64 = params.required(0)?;
        let node = self.node();
        let chain = &node.chain;
        u32::try_from(height)
            .ok()
            .and_then(|h| chain.index().active_hash(h))
            .map(|h| json!(h.to_string()))
            .ok_or_else(|| RpcError::invalid_parameter("Block height out of range"))
    }

    pub(super) fn getblockheader(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("blockhash"), Arg::Optional("verbose")])?;
        let hash = block_hash(params.hash(0)?);
        let verbose: bool = params.or(1, true)?;
        let node = self.node();
        let chain = &node.chain;
        let entry = chain.index().get(&hash).ok_or_else(|| RpcError::invalid_address_or_key("Block not found"))?;
        if !verbose {
            return Ok(json!(bitcoin::consensus::encode::serialize_hex(&entry.header)));
        }
        let mut obj = header_json(chain, entry);
        if let Ok(Some(count)) = chain.tx_count(&hash) {
            obj.insert("nTx".into(), json!(count));
        }
        Ok(Value::Object(obj))
    }

    pub(super) fn getblock(&self, request: &Request) -> Result<Value, RpcError> {
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
        let node = self.node();
        let chain = &node.chain;
        let entry =
            chain.index().get(&hash).ok_or_else(|| RpcError::invalid_address_or_key("Block not found"))?.clone();
        if entry.status & crate::chain::status::PRUNED != 0 {
            return Err(RpcError::misc("Block not available (pruned data)"));
        }
        if verbosity == 0 {
            let raw = chain.raw_block(&hash).map_err(store_error)?;
            return raw.map(|r| json!(hex::encode(r))).ok_or_else(|| RpcError::misc("Block not available"));
        }
        let block = chain.block(&hash).map_err(store_error)?.ok_or_else(|| RpcError::misc("Block not available"))?;
        Ok(block_json(chain, &entry, &block, verbosity))
    }

    pub(super) fn getchaintips(&self, request: &Request) -> Result<Value, RpcError> {
        request.params(&[])?;
        let node = self.node();
        let chain = &node.chain;
        let tips: Vec<Value> = chain
            .chain_tips()
            .into_iter()
            .map(|t| json!({"height": t.height, "hash": t.hash.to_string(), "branchlen": t.branch_len, "status": t.status}))
            .collect();
        Ok(Value::Array(tips))
    }

    pub(super) fn gettxoutsetinfo(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Optional("hash_type")])?;
        let hash_type: String = params.or(0, "hash_serialized_3".to_owned())?;
        if hash_type != "hash_serialized_3" && hash_type != "none" {
            return Err(RpcError::invalid_parameter(format!("'{hash_type}' is not a valid hash_type")));
        }
        let info = self.node().chain.utxo_set_info().map_err(store_error)?;
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

    pub(super) fn invalidateblock(&self, request: &Request, invalidate: bool) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("blockhash")])?;
        let hash: BlockHash = block_hash(params.hash(0)?);
        if self.node().chain.index().get(&hash).is_none() {
            return Err(RpcError::invalid_address_or_key("Block not found"));
        }
        let result =
            self.node.with(|node| if invalidate { node.invalidate_block(&hash) } else { node.reconsider_block(&hash) });
        match result {
            Ok(()) => Ok(Value::Null),
            Err(ChainError::Store(e)) => Err(store_error(ChainError::Store(e))),
            Err(e) => Err(RpcError::database(e.to_string())),
        }
    }

    pub(super) fn validateaddress(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("address")])?;
        let text: String = params.required(0)?;
        let network = self.node().chain.params().network.address_network();
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

    pub(super) fn parse_address(&self, text: &str) -> Option<ScriptBuf> {
        let network = self.node().chain.params().network.address_network();
        Address::from_str(text).ok()?.require_network(network).ok().map(|a| a.script_pubkey())
    }
}
