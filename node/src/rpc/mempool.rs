//! The mempool's methods: `testmempoolaccept`, `getrawmempool`,
//! `getmempoolinfo`, `getmempoolentry`, `getmempoolancestors`,
//! `getmempooldescendants`, `gettxout` and `prioritisetransaction`, with
//! Bitcoin Core's results and errors.

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, SignedAmount, Txid};
use satpool_rpc::{Arg, Request, RpcError};
use serde_json::{json, Map, Value};

use super::encode::{amount, script_pubkey_json};
use super::rawtransactions::{decode_tx, fee_rate_param};
use super::{store_error, NodeRpc};
use crate::mempool::follow::MAX_PACKAGE_COUNT;
use crate::mempool::{Mempool, MempoolEntry, MempoolReject, RejectClass, MEMPOOL_HEIGHT};

/// A signed amount in coins, as Core's `ValueFromAmount`.
fn signed_amount(sat: i64) -> Value {
    json!(SignedAmount::from_sat(sat).to_btc())
}

/// The RPC error for a refused transaction, as Core's
/// `JSONRPCTransactionError` words it.
pub(super) fn reject_error(e: MempoolReject) -> RpcError {
    match e {
        MempoolReject::Chain(e) => store_error(e),
        MempoolReject::Invalid(r) => match r.class {
            RejectClass::MissingInputs => RpcError::verify(r.to_string()),
            RejectClass::AlreadyInChain => RpcError::verify_already_in_chain("Transaction outputs already in utxo set"),
            _ => RpcError::verify_rejected(r.to_string()),
        },
    }
}

/// Core's `entryToJSON`.
pub fn entry_json(pool: &Mempool, entry: &MempoolEntry) -> Value {
    let txid = entry.txid();
    let ancestors = pool.ancestor_stats(&txid);
    let descendants = pool.descendant_stats(&txid);
    let mut o = Map::new();
    o.insert("vsize".into(), json!(entry.vsize()));
    o.insert("weight".into(), json!(entry.weight()));
    o.insert("time".into(), json!(entry.time()));
    o.insert("height".into(), json!(entry.height()));
    o.insert("descendantcount".into(), json!(descendants.count));
    o.insert("descendantsize".into(), json!(descendants.vsize));
    o.insert("ancestorcount".into(), json!(ancestors.count));
    o.insert("ancestorsize".into(), json!(ancestors.vsize));
    o.insert("wtxid".into(), json!(entry.wtxid().to_string()));
    o.insert(
        "fees".into(),
        json!({
            "base": amount(entry.fee()),
            "modified": signed_amount(entry.modified_fee()),
            "ancestor": signed_amount(ancestors.fees),
            "descendant": signed_amount(descendants.fees),
        }),
    );
    o.insert("depends".into(), json!(entry.parents().map(|t| t.to_string()).collect::<Vec<_>>()));
    o.insert("spentby".into(), json!(entry.children().map(|t| t.to_string()).collect::<Vec<_>>()));
    o.insert("bip125-replaceable".into(), json!(pool.signals_replaceable(&txid)));
    o.insert("unbroadcast".into(), json!(pool.unbroadcast().contains(&txid)));
    Value::Object(o)
}

impl NodeRpc {
    pub(super) fn testmempoolaccept(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("rawtxs"), Arg::Optional("maxfeerate")])?;
        let raw: Vec<Value> = params.required(0)?;
        if raw.is_empty() || raw.len() > MAX_PACKAGE_COUNT {
            return Err(RpcError::invalid_parameter(format!(
                "Array must contain between 1 and {MAX_PACKAGE_COUNT} transactions."
            )));
        }
        let max_rate = fee_rate_param(&params, 1)?;
        let mut txs = Vec::with_capacity(raw.len());
        for value in &raw {
            let text = value.as_str().ok_or_else(|| RpcError::type_error("JSON value is not a string as expected"))?;
            let tx = decode_tx(text).ok_or_else(|| {
                RpcError::deserialization(format!("TX decode failed: {text} Make sure the tx has at least one input."))
            })?;
            txs.push(tx);
        }
        let verdicts = self.node.with(|node| node.test_accept(&txs));
        let mut out = Vec::with_capacity(txs.len());
        let mut exit_early = false;
        for (i, tx) in txs.iter().enumerate() {
            let mut o = Map::new();
            o.insert("txid".into(), json!(tx.compute_txid().to_string()));
            o.insert("wtxid".into(), json!(tx.compute_wtxid().to_string()));
            let verdict = match &verdicts {
                Err(package_error) => {
                    o.insert("package-error".into(), json!(package_error.to_string()));
                    None
                }
                Ok(v) => v.get(i).and_then(Option::as_ref),
            };
            match verdict {
                _ if exit_early => {}
                None => {}
                Some(Ok(accepted)) => {
                    let max_fee = max_rate.fee(accepted.vsize);
                    if max_fee > bitcoin::Amount::ZERO && accepted.fee > max_fee {
                        o.insert("allowed".into(), json!(false));
                        o.insert("reject-reason".into(), json!("max-fee-exceeded"));
                        exit_early = true;
                    } else {
                        o.insert("allowed".into(), json!(true));
                        o.insert("vsize".into(), json!(accepted.vsize));
                        o.insert(
                            "fees".into(),
                            json!({
                                "base": amount(accepted.fee),
                                "effective-feerate": amount(accepted.effective_fee_rate.per_kvb()),
                                "effective-includes": [accepted.wtxid.to_string()],
                            }),
                        );
                    }
                }
                Some(Err(MempoolReject::Chain(e))) => return Err(RpcError::database(e.to_string())),
                Some(Err(MempoolReject::Invalid(r))) => {
                    o.insert("allowed".into(), json!(false));
                    if r.class == RejectClass::MissingInputs {
                        o.insert("reject-reason".into(), json!("missing-inputs"));
                    } else {
                        o.insert("reject-reason".into(), json!(r.reason));
                        o.insert("reject-details".into(), json!(r.to_string()));
                    }
                }
            }
            out.push(Value::Object(o));
        }
        Ok(Value::Array(out))
    }

    pub(super) fn getrawmempool(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Optional("verbose"), Arg::Optional("mempool_sequence")])?;
        let verbose: bool = params.or(0, false)?;
        let with_sequence: bool = params.or(1, false)?;
        if verbose && with_sequence {
            return Err(RpcError::invalid_parameter("Verbose results cannot contain mempool sequence values."));
        }
        let node = self.node();
        let pool = &node.mempool;
        let mut entries: Vec<&MempoolEntry> = pool.entries().collect();
        entries.sort_by_key(|e| e.txid());
        if verbose {
            let map: Map<String, Value> = entries.iter().map(|e| (e.txid().to_string(), entry_json(pool, e))).collect();
            return Ok(Value::Object(map));
        }
        let txids: Vec<Value> = entries.iter().map(|e| json!(e.txid().to_string())).collect();
        if with_sequence {
            return Ok(json!({"txids": txids, "mempool_sequence": pool.sequence()}));
        }
        Ok(Value::Array(txids))
    }

    pub(super) fn getmempoolinfo(&self, request: &Request) -> Result<Value, RpcError> {
        request.params(&[])?;
        self.node.with(|node| {
            let now = node.chain.now();
            let pool = &mut node.mempool;
            let min_fee = pool.min_fee(now).max(pool.config().min_relay_fee);
            let info = pool.info();
            let config = pool.config();
            Ok(json!({
                "loaded": pool.is_loaded(),
                "size": info.size,
                "bytes": info.bytes,
                "usage": info.usage,
                "total_fee": amount(info.total_fee),
                "maxmempool": config.max_size_bytes,
                "mempoolminfee": amount(min_fee.per_kvb()),
                "minrelaytxfee": amount(config.min_relay_fee.per_kvb()),
                "incrementalrelayfee": amount(config.incremental_relay_fee.per_kvb()),
                "unbroadcastcount": pool.unbroadcast().len(),
                "fullrbf": config.full_rbf,
                "permitbaremultisig": config.standardness.permit_bare_multisig,
                "maxdatacarriersize": config.standardness.max_datacarrier_bytes.unwrap_or(0),
            }))
        })
    }

    pub(super) fn getmempoolentry(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("txid")])?;
        let txid = Txid::from_byte_array(params.hash(0)?);
        let node = self.node();
        let entry =
            node.mempool.get(&txid).ok_or_else(|| RpcError::invalid_address_or_key("Transaction not in mempool"))?;
        Ok(entry_json(&node.mempool, entry))
    }

    pub(super) fn getmempoolrelatives(&self, request: &Request, ancestors: bool) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("txid"), Arg::Optional("verbose")])?;
        let txid = Txid::from_byte_array(params.hash(0)?);
        let verbose: bool = params.or(1, false)?;
        let node = self.node();
        let pool = &node.mempool;
        if !pool.contains(&txid) {
            return Err(RpcError::invalid_address_or_key("Transaction not in mempool"));
        }
        let mut relatives: Vec<Txid> =
            if ancestors { pool.ancestors(&txid) } else { pool.descendants(&txid) }.into_iter().collect();
        relatives.sort();
        if verbose {
            let map: Map<String, Value> = relatives
                .iter()
                .filter_map(|t| pool.get(t))
                .map(|e| (e.txid().to_string(), entry_json(pool, e)))
                .collect();
            return Ok(Value::Object(map));
        }
        Ok(json!(relatives.iter().map(|t| t.to_string()).collect::<Vec<_>>()))
    }

    pub(super) fn gettxout(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("txid"), Arg::Required("n"), Arg::Optional("include_mempool")])?;
        let txid = Txid::from_byte_array(params.hash(0)?);
        let n: i64 = params.required(1)?;
        let include_mempool: bool = params.or(2, true)?;
        let Ok(vout) = u32::try_from(n) else { return Ok(Value::Null) };
        let outpoint = OutPoint { txid, vout };
        let node = self.node();
        let chain = &node.chain;
        let (output, height, coinbase) = if include_mempool && node.mempool.spender(&outpoint).is_some() {
            return Ok(Value::Null);
        } else if let Some(output) = include_mempool.then(|| node.mempool.output(&outpoint)).flatten() {
            (output.clone(), MEMPOOL_HEIGHT, false)
        } else {
            match chain.coin(&outpoint).map_err(store_error)? {
                Some(coin) => (coin.output, coin.height, coin.is_coinbase),
                None => return Ok(Value::Null),
            }
        };
        let tip = chain.tip();
        let confirmations = if height == MEMPOOL_HEIGHT { 0 } else { tip.height - height + 1 };
        let network = chain.params().network.address_network();
        Ok(json!({
            "bestblock": tip.hash.to_string(),
            "confirmations": confirmations,
            "value": amount(output.value),
            "scriptPubKey": script_pubkey_json(&output.script_pubkey, network),
            "coinbase": coinbase,
        }))
    }

    pub(super) fn prioritisetransaction(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("txid"), Arg::Optional("dummy"), Arg::Required("fee_delta")])?;
        let txid = Txid::from_byte_array(params.hash(0)?);
        let dummy: Option<f64> = params.optional(1)?;
        if dummy.is_some_and(|d| d != 0.0) {
            return Err(RpcError::invalid_parameter(
                "Priority is no longer supported, dummy argument to prioritisetransaction must be 0.",
            ));
        }
        let delta: i64 = params.required(2)?;
        self.node.with(|node| node.mempool.prioritise(txid, delta));
        Ok(json!(true))
    }
}
