//! Shared by the vector tests: where the vectors are, Core's script
//! assembly and flag formats, and Core's test transactions.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;
use std::str::FromStr;

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use satpool_consensus::opcodes;
use satpool_consensus::script::push_data;
use satpool_consensus::VerifyFlags;
use serde_json::Value;

/// The folder of Core's vectors: `$SATPOOL_VECTORS`, else `shared/vectors`
/// beside the repository.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("SATPOOL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors")))
}

/// Reads and parses one vector file.
pub fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Parses Core's script assembly (`ParseScript`): decimal numbers, `0x` raw
/// bytes, `'text'` pushes and opcode names with or without `OP_`.
pub fn parse_script(asm: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for word in asm.split_whitespace() {
        let digits = word.strip_prefix('-').unwrap_or(word);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = word.parse().map_err(|e| format!("number {word:?}: {e}"))?;
            push_int(&mut out, n);
        } else if let Some(hex_digits) = word.strip_prefix("0x") {
            let bytes = hex::decode(hex_digits).map_err(|e| format!("hex {word:?}: {e}"))?;
            out.extend_from_slice(&bytes);
        } else if word.len() >= 2 && word.starts_with('\'') && word.ends_with('\'') {
            push_data(&mut out, &word.as_bytes()[1..word.len() - 1]);
        } else if let Some(op) = opcodes::from_name(word) {
            out.push(op);
        } else {
            return Err(format!("unknown token {word:?}"));
        }
    }
    Ok(out)
}

/// Core's `CScript::push_int64`.
fn push_int(script: &mut Vec<u8>, n: i64) {
    if n == -1 || (1..=16).contains(&n) {
        script.push((n + i64::from(opcodes::OP_1) - 1) as u8);
    } else if n == 0 {
        script.push(opcodes::OP_0);
    } else {
        push_data(script, &satpool_consensus::num::encode(n));
    }
}

/// Parses Core's flag list.
pub fn parse_flags(s: &str) -> VerifyFlags {
    VerifyFlags::from_str(s).unwrap_or_else(|e| panic!("bad flags {s:?}: {e}"))
}

/// Core's `FillFlags`: CLEANSTACK needs WITNESS, WITNESS needs P2SH.
pub fn fill_flags(mut flags: VerifyFlags) -> VerifyFlags {
    if flags.contains(VerifyFlags::CLEANSTACK) {
        flags |= VerifyFlags::WITNESS;
    }
    if flags.contains(VerifyFlags::WITNESS) {
        flags |= VerifyFlags::P2SH;
    }
    flags
}

/// Core's `TrimFlags`: the inverse of [`fill_flags`].
pub fn trim_flags(mut flags: VerifyFlags) -> VerifyFlags {
    if !flags.contains(VerifyFlags::P2SH) {
        flags = flags.without(VerifyFlags::WITNESS);
    }
    if !flags.contains(VerifyFlags::WITNESS) {
        flags = flags.without(VerifyFlags::CLEANSTACK);
    }
    flags
}

/// Core's `BuildCreditingTransaction`.
pub fn crediting_tx(script_pubkey: &[u8], amount: Amount) -> Transaction {
    Transaction {
        version: transaction::Version(1),
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(vec![0x00, 0x00]),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: amount, script_pubkey: ScriptBuf::from_bytes(script_pubkey.to_vec()) }],
    }
}

/// Core's `BuildSpendingTransaction`.
pub fn spending_tx(script_sig: &[u8], witness: &[Vec<u8>], credit: &Transaction) -> Transaction {
    Transaction {
        version: transaction::Version(1),
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(credit.compute_txid(), 0),
            script_sig: ScriptBuf::from_bytes(script_sig.to_vec()),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(witness),
        }],
        output: vec![TxOut { value: credit.output[0].value, script_pubkey: ScriptBuf::new() }],
    }
}

/// Decodes a hex transaction.
pub fn decode_tx(hex_tx: &str) -> Result<Transaction, String> {
    let bytes = hex::decode(hex_tx).map_err(|e| format!("bad hex: {e}"))?;
    deserialize(&bytes).map_err(|e| format!("bad transaction: {e}"))
}

/// A txid from Core's display hex.
pub fn txid(display_hex: &str) -> Txid {
    Txid::from_str(display_hex).unwrap_or_else(|e| panic!("bad txid {display_hex}: {e}"))
}

/// The all-zero txid.
pub fn null_txid() -> Txid {
    Txid::all_zeros()
}

/// One row of `tx_valid.json` or `tx_invalid.json`.
pub struct TxCase {
    /// Where the row is in its file.
    pub index: usize,
    /// The transaction.
    pub tx: Transaction,
    /// The outputs its inputs spend, in input order; `None` where the row
    /// does not give the prevout.
    pub spent: Option<Vec<TxOut>>,
    /// The flags field as written.
    pub flags_field: String,
}

/// Parses the rows of a transaction vector file; comments are skipped.
pub fn tx_cases(file: &str) -> Vec<Result<TxCase, String>> {
    use std::collections::HashMap;
    let rows = load(file);
    let rows = rows.as_array().expect("top level is an array");
    let mut cases = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let row = row.as_array().expect("rows are arrays");
        if !row.first().is_some_and(Value::is_array) {
            continue; // a comment
        }
        let parsed = (|| -> Result<TxCase, String> {
            let mut prevouts = HashMap::new();
            for prevout in row[0].as_array().ok_or("prevouts not an array")? {
                let p = prevout.as_array().ok_or("prevout not an array")?;
                let id = txid(p[0].as_str().ok_or("prevout hash")?);
                // -1 stands for the null index, 0xffffffff.
                let vout = p[1].as_i64().ok_or("prevout index")? as u32;
                let script = parse_script(p[2].as_str().ok_or("prevout script")?)?;
                let amount = p.get(3).and_then(Value::as_i64).unwrap_or(0);
                let value = Amount::from_sat(amount as u64);
                prevouts.insert(OutPoint::new(id, vout), TxOut { value, script_pubkey: ScriptBuf::from_bytes(script) });
            }
            let tx = decode_tx(row[1].as_str().ok_or("tx not a string")?)?;
            let spent = tx.input.iter().map(|i| prevouts.get(&i.previous_output).cloned()).collect();
            let flags_field = row[2].as_str().ok_or("flags not a string")?.to_owned();
            Ok(TxCase { index, tx, spent, flags_field })
        })();
        cases.push(parsed.map_err(|e| format!("row {index} {row:?}: {e}")));
    }
    cases
}

/// Core's `CheckTxScripts`: whether every input verifies under `flags`.
/// Missing prevouts make the transaction invalid.
pub fn tx_scripts_pass(case: &TxCase, flags: VerifyFlags) -> Result<(), String> {
    let spent = case.spent.as_ref().ok_or("a prevout is missing")?;
    let data = satpool_consensus::PrecomputedTx::new(&case.tx, spent).map_err(|e| e.to_string())?;
    for index in 0..case.tx.input.len() {
        satpool_consensus::verify_input(&data, index, flags)
            .map_err(|e| format!("input {index}: {} ({e})", e.name()))?;
    }
    Ok(())
}

/// Core's `ExcludeIndividualFlags`: `flags` less one flag, trimmed, for each
/// flag whose removal changes it.
pub fn exclude_individual_flags(flags: VerifyFlags) -> Vec<VerifyFlags> {
    VerifyFlags::NAMED.iter().map(|(_, flag)| trim_flags(flags.without(*flag))).filter(|f| *f != flags).collect()
}
