//! Raw transactions: `sendrawtransaction`, `getrawtransaction`,
//! `decoderawtransaction`, `decodescript` and `createrawtransaction`, with
//! Bitcoin Core's parameters, results and error texts.

use std::str::FromStr;

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::script::PushBytesBuf;
use bitcoin::{
    absolute, transaction, Address, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use satpool_rpc::{Arg, Hash256, Params, Request, RpcError, Satoshis};
use serde_json::{json, Map, Value};

use super::encode::{block_hash, script_asm, script_pubkey_json, script_type, tx_json};
use super::mempool::reject_error;
use super::{store_error, NodeRpc};
use crate::mempool::policy::{self, ScriptKind};
use crate::mempool::FeeRate;

/// Core's `DEFAULT_MAX_RAW_TX_FEE_RATE`: 0.10 BTC/kvB.
const DEFAULT_MAX_RAW_TX_FEE_RATE: u64 = 10_000_000;
/// One coin in satoshis.
const COIN: i64 = 100_000_000;

/// Core's `DecodeHexTx`, trying the witness serialisation (what rust-bitcoin
/// reads) and nothing else.
pub(super) fn decode_tx(hex_text: &str) -> Option<Transaction> {
    let bytes = hex::decode(hex_text).ok()?;
    deserialize::<Transaction>(&bytes).ok()
}

/// Core's `ParseFeeRate`: BTC/kvB, below one coin per kvB.
pub(super) fn fee_rate_param(params: &Params, index: usize) -> Result<FeeRate, RpcError> {
    let rate = match params.raw(index) {
        None => return Ok(FeeRate::from_sat_per_kvb(DEFAULT_MAX_RAW_TX_FEE_RATE)),
        Some(_) => params.required::<Satoshis>(index)?.0,
    };
    if rate >= COIN {
        return Err(RpcError::invalid_parameter("Fee rates larger than or equal to 1BTC/kvB are not accepted"));
    }
    Ok(FeeRate::from_sat_per_kvb(rate as u64))
}

impl NodeRpc {
    pub(super) fn sendrawtransaction(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[
            Arg::Required("hexstring"),
            Arg::Optional("maxfeerate"),
            Arg::Optional("maxburnamount"),
        ])?;
        let text = params.str(0)?;
        let tx = decode_tx(text)
            .ok_or_else(|| RpcError::deserialization("TX decode failed. Make sure the tx has at least one input."))?;
        let max_rate = fee_rate_param(&params, 1)?;
        let max_burn = params.optional::<Satoshis>(2)?.map_or(0, |s| s.0);
        for output in &tx.output {
            let unspendable = output.script_pubkey.is_op_return() || output.script_pubkey.len() > 10_000;
            if unspendable && output.value.to_sat() as i64 > max_burn {
                return Err(RpcError::verify("Unspendable output exceeds maximum configured by user (maxburnamount)"));
            }
        }
        let max_fee = max_rate.fee(tx.vsize() as u64);
        let txid = tx.compute_txid();
        self.node.with(|node| {
            if max_fee > Amount::ZERO && !node.mempool.contains(&txid) {
                if let Ok(results) = node.test_accept(std::slice::from_ref(&tx)) {
                    if let Some(Some(Ok(accepted))) = results.first() {
                        if accepted.fee > max_fee {
                            return Err(RpcError::verify(
                                "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
                            ));
                        }
                    }
                }
            }
            node.submit_transaction(tx).map_err(reject_error)
        })?;
        Ok(json!(txid.to_string()))
    }

    pub(super) fn getrawtransaction(&self, request: &Request) -> Result<Value, RpcError> {
        let params =
            request.params(&[Arg::Required("txid"), Arg::Optional("verbosity|verbose"), Arg::Optional("blockhash")])?;
        let txid = Txid::from_byte_array(params.hash(0)?);
        let verbosity = match params.raw(1) {
            None => 0,
            Some(Value::Bool(b)) => u8::from(*b),
            Some(_) => params.required::<i64>(1)?.clamp(0, 2) as u8,
        };
        let node = self.node();
        let chain = &node.chain;
        let network = chain.params().network.address_network();
        if txid == chain.params().genesis.txdata[0].compute_txid() {
            return Err(RpcError::invalid_address_or_key(
                "The genesis block coinbase is not considered an ordinary transaction and cannot be retrieved",
            ));
        }
        let Some(hash) = params.optional::<Hash256>(2)?.map(|h| block_hash(h.0)) else {
            let entry = node.mempool.get(&txid).ok_or_else(|| {
                RpcError::invalid_address_or_key(
                    "No such mempool transaction. Use -txindex or provide a block hash to enable blockchain transaction queries. Use gettransaction for wallet transactions.",
                )
            })?;
            if verbosity == 0 {
                return Ok(json!(bitcoin::consensus::encode::serialize_hex(entry.tx().as_ref())));
            }
            return Ok(tx_json(entry.tx(), network));
        };
        let index_entry =
            chain.index().get(&hash).ok_or_else(|| RpcError::invalid_address_or_key("Block hash not found"))?.clone();
        let block = chain.block(&hash).map_err(store_error)?.ok_or_else(|| RpcError::misc("Block not available"))?;
        let tx = block.txdata.iter().find(|t| t.compute_txid() == txid).ok_or_else(|| {
            RpcError::invalid_address_or_key(
                "No such transaction found in the provided block. Use gettransaction for wallet transactions.",
            )
        })?;
        if verbosity == 0 {
            return Ok(json!(bitcoin::consensus::encode::serialize_hex(tx)));
        }
        let mut out = tx_json(tx, network);
        let active = chain.index().is_active(&hash);
        out["in_active_chain"] = json!(active);
        out["blockhash"] = json!(hash.to_string());
        if active {
            out["confirmations"] = json!(chain.tip().height - index_entry.height + 1);
            out["time"] = json!(index_entry.header.time);
            out["blocktime"] = json!(index_entry.header.time);
        } else {
            out["confirmations"] = json!(0);
        }
        Ok(out)
    }

    pub(super) fn decoderawtransaction(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("hexstring"), Arg::Optional("iswitness")])?;
        let text = params.str(0)?;
        let tx = decode_tx(text).ok_or_else(|| RpcError::deserialization("TX decode failed"))?;
        let network = self.node().chain.params().network.address_network();
        let mut out = tx_json(&tx, network);
        if let Some(obj) = out.as_object_mut() {
            obj.remove("hex");
        }
        Ok(out)
    }

    pub(super) fn decodescript(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("hexstring")])?;
        let bytes = params.hex(0)?;
        let network = self.node().chain.params().network.address_network();
        Ok(decode_script_json(&ScriptBuf::from_bytes(bytes), network))
    }

    pub(super) fn createrawtransaction(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[
            Arg::Required("inputs"),
            Arg::Required("outputs"),
            Arg::Optional("locktime"),
            Arg::Optional("replaceable"),
            Arg::Optional("version"),
        ])?;
        let inputs: Vec<Value> = params.required(0)?;
        let outputs = params.raw(1).cloned().unwrap_or(Value::Null);
        let locktime: i64 = params.or(2, 0)?;
        if !(0..=i64::from(u32::MAX)).contains(&locktime) {
            return Err(RpcError::invalid_parameter("Invalid parameter, locktime out of range"));
        }
        let replaceable: bool = params.or(3, false)?;
        let version: i64 = params.or(4, 2)?;
        if !(1..=3).contains(&version) {
            return Err(RpcError::invalid_parameter(format!(
                "Invalid parameter, version out of range({}~{})",
                policy::TX_MIN_STANDARD_VERSION,
                policy::TX_MAX_STANDARD_VERSION
            )));
        }
        let network = self.node().chain.params().network.address_network();
        let default_sequence = if replaceable {
            Sequence::ENABLE_RBF_NO_LOCKTIME
        } else if locktime != 0 {
            Sequence::ENABLE_LOCKTIME_NO_RBF
        } else {
            Sequence::MAX
        };
        let mut tx = Transaction {
            version: transaction::Version(version as i32),
            lock_time: absolute::LockTime::from_consensus(locktime as u32),
            input: Vec::with_capacity(inputs.len()),
            output: Vec::new(),
        };
        for input in &inputs {
            let obj =
                input.as_object().ok_or_else(|| RpcError::type_error("JSON value is not an object as expected"))?;
            let txid = parse_txid_field(obj)?;
            let vout = match obj.get("vout") {
                Some(Value::Number(n)) => {
                    n.as_i64().ok_or_else(|| RpcError::type_error("JSON integer out of range"))?
                }
                Some(_) => return Err(RpcError::type_error("JSON value is not an integer as expected")),
                None => return Err(RpcError::invalid_parameter("Invalid parameter, missing vout key")),
            };
            if vout < 0 {
                return Err(RpcError::invalid_parameter("Invalid parameter, vout cannot be negative"));
            }
            let vout =
                u32::try_from(vout).map_err(|_| RpcError::invalid_parameter("Invalid parameter, vout out of range"))?;
            let sequence = match obj.get("sequence") {
                None => default_sequence,
                Some(v) => match v.as_i64() {
                    Some(s) if (0..=i64::from(u32::MAX)).contains(&s) => Sequence(s as u32),
                    _ => return Err(RpcError::invalid_parameter("Invalid parameter, sequence number is out of range")),
                },
            };
            tx.input.push(TxIn {
                previous_output: OutPoint { txid, vout },
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::default(),
            });
        }
        tx.output = parse_outputs(&outputs, network)?;
        Ok(json!(bitcoin::consensus::encode::serialize_hex(&tx)))
    }
}

/// Core's `ParseHashO(o, "txid")`.
fn parse_txid_field(obj: &Map<String, Value>) -> Result<Txid, RpcError> {
    let text = match obj.get("txid") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(RpcError::type_error("JSON value is not a string as expected")),
        None => return Err(RpcError::invalid_parameter("txid must be of length 64 (not 0, for '')")),
    };
    if text.len() != 64 {
        return Err(RpcError::invalid_parameter(format!(
            "txid must be of length 64 (not {}, for '{text}')",
            text.len()
        )));
    }
    Txid::from_str(text)
        .map_err(|_| RpcError::invalid_parameter(format!("txid must be hexadecimal string (not '{text}')")))
}

/// Core's `ParseOutputs`: an object of `address: amount` and `data: hex`,
/// or an array of one-key objects.
fn parse_outputs(outputs: &Value, network: bitcoin::Network) -> Result<Vec<TxOut>, RpcError> {
    let pairs: Vec<(String, Value)> = match outputs {
        Value::Null => return Err(RpcError::invalid_parameter("Invalid parameter, output argument must be non-null")),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(items) => {
            let mut pairs = Vec::new();
            for item in items {
                let obj = item.as_object().ok_or_else(|| {
                    RpcError::invalid_parameter("Invalid parameter, key-value pair not an object as expected")
                })?;
                if obj.len() != 1 {
                    return Err(RpcError::invalid_parameter(
                        "Invalid parameter, key-value pair must contain exactly one key",
                    ));
                }
                pairs.extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            pairs
        }
        _ => return Err(RpcError::type_error("JSON value is not an object or array as expected")),
    };
    let mut seen_addresses = std::collections::HashSet::new();
    let mut have_data = false;
    let mut out = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if key == "data" {
            if have_data {
                return Err(RpcError::invalid_parameter("Invalid parameter, duplicate key: data"));
            }
            have_data = true;
            let text = value.as_str().ok_or_else(|| RpcError::type_error("JSON value is not a string as expected"))?;
            let data = hex::decode(text)
                .map_err(|_| RpcError::invalid_parameter(format!("Data must be hexadecimal string (not '{text}')")))?;
            let push = PushBytesBuf::try_from(data)
                .map_err(|_| RpcError::invalid_parameter("Data is too large for a single push"))?;
            out.push(TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::new_op_return(push) });
            continue;
        }
        let address = Address::from_str(&key)
            .ok()
            .and_then(|a| a.require_network(network).ok())
            .ok_or_else(|| RpcError::invalid_address_or_key(format!("Invalid Bitcoin address: {key}")))?;
        if !seen_addresses.insert(key.clone()) {
            return Err(RpcError::invalid_parameter(format!("Invalid parameter, duplicated address: {key}")));
        }
        let sats = <Satoshis as satpool_rpc::FromParam>::from_param(&value, "amount")?.0;
        out.push(TxOut { value: Amount::from_sat(sats as u64), script_pubkey: address.script_pubkey() });
    }
    Ok(out)
}

/// Core's `decodescript` result.
pub fn decode_script_json(script: &ScriptBuf, network: bitcoin::Network) -> Value {
    let mut out = Map::new();
    out.insert("asm".into(), json!(script_asm(script, false)));
    let kind = policy::classify(script);
    out.insert("type".into(), json!(script_type(script)));
    if let Ok(address) = Address::from_script(script, network) {
        out.insert("address".into(), json!(address.to_string()));
    }
    let can_wrap = matches!(
        kind,
        ScriptKind::Multisig { .. }
            | ScriptKind::NonStandard
            | ScriptKind::PubKey
            | ScriptKind::PubKeyHash
            | ScriptKind::WitnessV0KeyHash
            | ScriptKind::WitnessV0ScriptHash
    );
    if can_wrap {
        if let Ok(p2sh) = Address::p2sh(script, network) {
            out.insert("p2sh".into(), json!(p2sh.to_string()));
        }
        let bytes = script.as_bytes();
        let segwit = match kind {
            ScriptKind::PubKey => {
                let key = &bytes[1..bytes.len() - 1];
                (key.len() == 33).then(|| {
                    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(
                        bitcoin::hashes::hash160::Hash::hash(key).to_byte_array(),
                    ))
                })
            }
            ScriptKind::PubKeyHash => {
                let mut hash = [0u8; 20];
                hash.copy_from_slice(&bytes[3..23]);
                Some(ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(hash)))
            }
            ScriptKind::Multisig { .. } => {
                // Uncompressed keys cannot be used in segwit.
                let compressed = satpool_consensus::script::Instructions::new(bytes)
                    .filter_map(Result::ok)
                    .filter(|op| op.data.len() > 1)
                    .all(|op| op.data.len() == 33);
                compressed.then(|| ScriptBuf::new_p2wsh(&script.wscript_hash()))
            }
            ScriptKind::NonStandard => Some(ScriptBuf::new_p2wsh(&script.wscript_hash())),
            _ => None,
        };
        if let Some(segwit) = segwit {
            let mut sr = script_pubkey_json(&segwit, network);
            if let (Some(obj), Ok(wrapped)) = (sr.as_object_mut(), Address::p2sh(&segwit, network)) {
                obj.insert("p2sh-segwit".into(), json!(wrapped.to_string()));
            }
            out.insert("segwit".into(), sr);
        }
    }
    Value::Object(out)
}
