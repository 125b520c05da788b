//! Blocks, headers, transactions and scripts as Bitcoin Core's RPC prints
//! them (`blockheaderToJSON`, `blockToJSON`, `TxToUniv`, `ScriptToAsmStr`).

use bitcoin::hashes::Hash;
use bitcoin::script::Instruction;
use bitcoin::{Address, Amount, Block, Script, Transaction};
use serde_json::{json, Map, Value};

use crate::chain::{Chainstate, IndexEntry};
use crate::pow::difficulty;

/// An amount in coins as a JSON number. Core prints eight decimals; the
/// shortest decimal that round-trips to the same double is the same number
/// to every JSON parser, and amounts up to 21 million coins are exact in a
/// double to the satoshi.
pub fn amount(value: Amount) -> Value {
    json!(value.to_btc())
}

/// A double as Core's univalue prints it: 16 significant digits, so that
/// clients comparing with Core's output see the same number.
pub fn float(x: f64) -> Value {
    let rounded: f64 = format!("{x:.15e}").parse().expect("a formatted float parses back");
    json!(rounded)
}

/// A 256-bit value as Core prints `uint256`: 64 hex digits, big-endian.
pub fn hex256(bytes_be: [u8; 32]) -> String {
    hex::encode(bytes_be)
}

/// The header fields Core prints for `getblockheader` and `getblock`.
pub fn header_json(chain: &Chainstate, entry: &IndexEntry) -> Map<String, Value> {
    let index = chain.index();
    let tip_height = chain.tip().height;
    let active = index.is_active(&entry.hash);
    let confirmations: i64 = if active { i64::from(tip_height - entry.height) + 1 } else { -1 };
    let header = &entry.header;
    let mut obj = Map::new();
    obj.insert("hash".into(), json!(entry.hash.to_string()));
    obj.insert("confirmations".into(), json!(confirmations));
    obj.insert("height".into(), json!(entry.height));
    obj.insert("version".into(), json!(header.version.to_consensus()));
    obj.insert("versionHex".into(), json!(format!("{:08x}", header.version.to_consensus() as u32)));
    obj.insert("merkleroot".into(), json!(header.merkle_root.to_string()));
    obj.insert("time".into(), json!(header.time));
    obj.insert("mediantime".into(), json!(index.median_time_past(&entry.hash)));
    obj.insert("nonce".into(), json!(header.nonce));
    obj.insert("bits".into(), json!(format!("{:08x}", header.bits.to_consensus())));
    obj.insert("target".into(), json!(hex256(header.target().to_be_bytes())));
    obj.insert("difficulty".into(), float(difficulty(header.bits)));
    obj.insert("chainwork".into(), json!(hex256(entry.chainwork.to_be_bytes())));
    obj.insert("nTx".into(), json!(0));
    if entry.height > 0 {
        obj.insert("previousblockhash".into(), json!(header.prev_blockhash.to_string()));
    }
    if active {
        if let Some(next) = index.active_hash(entry.height + 1) {
            obj.insert("nextblockhash".into(), json!(next.to_string()));
        }
    }
    obj
}

/// `getblock` at verbosity 1 (txids) or 2 (decoded transactions).
pub fn block_json(chain: &Chainstate, entry: &IndexEntry, block: &Block, verbosity: u8) -> Value {
    let mut obj = header_json(chain, entry);
    obj.insert("nTx".into(), json!(block.txdata.len()));
    let size = block.total_size();
    let weight = block.weight().to_wu();
    let stripped = (weight as usize - size) / 3;
    obj.insert("strippedsize".into(), json!(stripped));
    obj.insert("size".into(), json!(size));
    obj.insert("weight".into(), json!(weight));
    let network = chain.params().network.address_network();
    let txs: Vec<Value> = block
        .txdata
        .iter()
        .map(|tx| if verbosity >= 2 { tx_json(tx, network) } else { json!(tx.compute_txid().to_string()) })
        .collect();
    obj.insert("tx".into(), Value::Array(txs));
    Value::Object(obj)
}

/// Core's `TxToUniv` without the prevouts (which need undo data).
pub fn tx_json(tx: &Transaction, network: bitcoin::Network) -> Value {
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|input| {
            let mut o = Map::new();
            if tx.is_coinbase() {
                o.insert("coinbase".into(), json!(hex::encode(input.script_sig.as_bytes())));
            } else {
                o.insert("txid".into(), json!(input.previous_output.txid.to_string()));
                o.insert("vout".into(), json!(input.previous_output.vout));
                o.insert(
                    "scriptSig".into(),
                    json!({"asm": script_asm(&input.script_sig, true), "hex": hex::encode(input.script_sig.as_bytes())}),
                );
            }
            if !input.witness.is_empty() {
                o.insert("txinwitness".into(), json!(input.witness.iter().map(hex::encode).collect::<Vec<_>>()));
            }
            o.insert("sequence".into(), json!(input.sequence.0));
            Value::Object(o)
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, out)| json!({"value": amount(out.value), "n": n, "scriptPubKey": script_pubkey_json(&out.script_pubkey, network)}))
        .collect();
    json!({
        "txid": tx.compute_txid().to_string(),
        "hash": tx.compute_wtxid().to_string(),
        "version": tx.version.0,
        "size": tx.total_size(),
        "vsize": tx.vsize(),
        "weight": tx.weight().to_wu(),
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": vin,
        "vout": vout,
        "hex": bitcoin::consensus::encode::serialize_hex(tx),
    })
}

/// `scriptPubKey` as Core prints it: asm, hex, type and, where there is one,
/// address.
pub fn script_pubkey_json(script: &Script, network: bitcoin::Network) -> Value {
    let mut o = Map::new();
    o.insert("asm".into(), json!(script_asm(script, false)));
    o.insert("hex".into(), json!(hex::encode(script.as_bytes())));
    if let Ok(address) = Address::from_script(script, network) {
        o.insert("address".into(), json!(address.to_string()));
    }
    o.insert("type".into(), json!(script_type(script)));
    Value::Object(o)
}

/// Core's `GetTxnOutputType` names.
pub fn script_type(script: &Script) -> &'static str {
    let b = script.as_bytes();
    if script.is_p2pkh() {
        "pubkeyhash"
    } else if script.is_p2sh() {
        "scripthash"
    } else if script.is_p2wpkh() {
        "witness_v0_keyhash"
    } else if script.is_p2wsh() {
        "witness_v0_scripthash"
    } else if script.is_p2tr() {
        "witness_v1_taproot"
    } else if b == [0x51, 0x02, 0x4e, 0x73] {
        "anchor"
    } else if script.is_witness_program() {
        "witness_unknown"
    } else if script.is_op_return() {
        "nulldata"
    } else if script.is_p2pk() {
        "pubkey"
    } else if script.is_multisig() {
        "multisig"
    } else {
        "nonstandard"
    }
}

/// Core's `ScriptToAsmStr`: pushes of up to four bytes as numbers, longer
/// ones as hex, opcodes by name; with `decode_signatures`, a push that is a
/// DER signature gets its sighash type appended (`[ALL]`).
pub fn script_asm(script: &Script, decode_signatures: bool) -> String {
    let mut parts = Vec::new();
    for ins in script.instructions() {
        match ins {
            Err(_) => {
                parts.push("[error]".to_owned());
                break;
            }
            Ok(Instruction::Op(op)) => {
                let code = op.to_u8();
                let name = if code == 0x00 {
                    "0".to_owned()
                } else if (0x51..=0x60).contains(&code) {
                    (code - 0x50).to_string()
                } else if code == 0x4f {
                    "-1".to_owned()
                } else {
                    let n = format!("{op:?}");
                    // rust-bitcoin names the NOPs and some aliases differently from Core.
                    match n.as_str() {
                        "OP_CLTV" => "OP_CHECKLOCKTIMEVERIFY".to_owned(),
                        "OP_CSV" => "OP_CHECKSEQUENCEVERIFY".to_owned(),
                        _ if n.starts_with("OP_RETURN_") => "OP_UNKNOWN".to_owned(),
                        _ => n,
                    }
                };
                parts.push(name);
            }
            Ok(Instruction::PushBytes(bytes)) => {
                let bytes = bytes.as_bytes();
                if bytes.is_empty() {
                    parts.push("0".to_owned());
                } else if bytes.len() <= 4 {
                    parts.push(script_num(bytes).to_string());
                } else if decode_signatures && bitcoin::ecdsa::Signature::from_slice(bytes).is_ok() {
                    let sighash = bytes[bytes.len() - 1];
                    let name = match sighash {
                        0x01 => "ALL",
                        0x02 => "NONE",
                        0x03 => "SINGLE",
                        0x81 => "ALL|ANYONECANPAY",
                        0x82 => "NONE|ANYONECANPAY",
                        0x83 => "SINGLE|ANYONECANPAY",
                        _ => "",
                    };
                    parts.push(format!("{}[{name}]", hex::encode(&bytes[..bytes.len() - 1])));
                } else {
                    parts.push(hex::encode(bytes));
                }
            }
        }
    }
    parts.join(" ")
}

/// A script number (little-endian, sign bit in the top byte).
fn script_num(bytes: &[u8]) -> i64 {
    let mut value: i64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        value |= i64::from(*b) << (8 * i);
    }
    let last = bytes[bytes.len() - 1];
    if last & 0x80 != 0 {
        -(value & !(0x80i64 << (8 * (bytes.len() - 1))))
    } else {
        value
    }
}

/// The block hash of a 32-byte RPC argument (already in internal order).
pub fn block_hash(bytes: [u8; 32]) -> bitcoin::BlockHash {
    bitcoin::BlockHash::from_byte_array(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_like_core() {
        assert_eq!(amount(Amount::from_sat(5_000_000_000)).as_f64(), Some(50.0));
        assert_eq!(amount(Amount::from_sat(1)).to_string(), "1e-8");
        assert_eq!(amount(Amount::from_sat(2_099_999_997_690_000)).as_f64(), Some(20_999_999.976_9));
    }

    #[test]
    fn floats_have_cores_sixteen_digits() {
        assert_eq!(float(4.6565423739069247e-10).to_string(), "4.656542373906925e-10");
        assert_eq!(float(1.0).to_string(), "1.0");
        assert_eq!(float(0.000244140625).to_string(), "0.000244140625");
    }

    #[test]
    fn asm_like_core() {
        let p2pkh = bitcoin::ScriptBuf::from_hex("76a914eadbac7f36c37e39361168b7aaee3cb24a25312d88ac").unwrap();
        assert_eq!(
            script_asm(&p2pkh, false),
            "OP_DUP OP_HASH160 eadbac7f36c37e39361168b7aaee3cb24a25312d OP_EQUALVERIFY OP_CHECKSIG"
        );
        let numbers = bitcoin::ScriptBuf::from_hex("51000281000380ff00020180").unwrap();
        assert_eq!(script_asm(&numbers, false), "1 0 129 65408 -1");
    }
}
