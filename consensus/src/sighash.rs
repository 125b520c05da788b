//! Signature hashes: legacy (with the SIGHASH_SINGLE bug), BIP143 (segwit
//! v0) and BIP341 (taproot), and the per-transaction data they share.
//!
//! [`PrecomputedTx`] hashes the prevouts, sequences, outputs, spent amounts
//! and spent scripts once per transaction (Core's
//! `PrecomputedTransactionData`), so that the segwit and taproot hash of one
//! input costs time in the size of that input, not of the transaction.
//! Legacy hashes serialise the whole transaction for every signature; that
//! cost is inherent in the legacy scheme.
//!
//! Hashes are returned in the byte order the hash function produced them
//! (Core's `uint256` memory order, the reverse of its hex display).

use bitcoin::hashes::{sha256, sha256d, Hash, HashEngine};
use bitcoin::{OutPoint, Transaction, TxOut};

use crate::script::without_codeseparators;
use crate::taproot::tagged_engine;

/// `SIGHASH_ALL`.
pub const SIGHASH_ALL: u32 = 1;
/// `SIGHASH_NONE`.
pub const SIGHASH_NONE: u32 = 2;
/// `SIGHASH_SINGLE`.
pub const SIGHASH_SINGLE: u32 = 3;
/// `SIGHASH_ANYONECANPAY`.
pub const SIGHASH_ANYONECANPAY: u32 = 0x80;
/// BIP341's `SIGHASH_DEFAULT` (a 64-byte signature, hashed as ALL).
pub const SIGHASH_DEFAULT: u8 = 0;

/// The spent outputs do not match the transaction's inputs one for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("transaction has {inputs} inputs but {spent_outputs} spent outputs were given")]
pub struct SpentOutputsMismatch {
    /// Inputs of the transaction.
    pub inputs: usize,
    /// Spent outputs given.
    pub spent_outputs: usize,
}

/// A transaction with the outputs it spends and the hashes that every
/// segwit and taproot signature of it shares. It is `Sync`: inputs may be
/// verified from several threads at once.
#[derive(Debug, Clone)]
pub struct PrecomputedTx<'a> {
    tx: &'a Transaction,
    spent_outputs: &'a [TxOut],
    // BIP341 single SHA256 hashes.
    sha_prevouts: [u8; 32],
    sha_sequences: [u8; 32],
    sha_outputs: [u8; 32],
    sha_amounts: [u8; 32],
    sha_scriptpubkeys: [u8; 32],
    // BIP143 double SHA256 hashes: SHA256 of the ones above.
    hash_prevouts: [u8; 32],
    hash_sequences: [u8; 32],
    hash_outputs: [u8; 32],
}

impl<'a> PrecomputedTx<'a> {
    /// Hashes what the signatures of `tx` share. `spent_outputs[i]` is the
    /// output that input `i` spends.
    pub fn new(tx: &'a Transaction, spent_outputs: &'a [TxOut]) -> Result<Self, SpentOutputsMismatch> {
        if tx.input.len() != spent_outputs.len() {
            return Err(SpentOutputsMismatch { inputs: tx.input.len(), spent_outputs: spent_outputs.len() });
        }
        let mut prevouts = sha256::Hash::engine();
        let mut sequences = sha256::Hash::engine();
        for input in &tx.input {
            write_outpoint(&mut prevouts, &input.previous_output);
            sequences.input(&input.sequence.0.to_le_bytes());
        }
        let mut outputs = sha256::Hash::engine();
        for output in &tx.output {
            write_txout(&mut outputs, output);
        }
        let mut amounts = sha256::Hash::engine();
        let mut scripts = sha256::Hash::engine();
        for spent in spent_outputs {
            amounts.input(&spent.value.to_sat().to_le_bytes());
            write_script(&mut scripts, spent.script_pubkey.as_bytes());
        }
        let finish = |e: sha256::HashEngine| sha256::Hash::from_engine(e).to_byte_array();
        let again = |h: &[u8; 32]| sha256::Hash::hash(h).to_byte_array();
        let sha_prevouts = finish(prevouts);
        let sha_sequences = finish(sequences);
        let sha_outputs = finish(outputs);
        Ok(Self {
            tx,
            spent_outputs,
            hash_prevouts: again(&sha_prevouts),
            hash_sequences: again(&sha_sequences),
            hash_outputs: again(&sha_outputs),
            sha_prevouts,
            sha_sequences,
            sha_outputs,
            sha_amounts: finish(amounts),
            sha_scriptpubkeys: finish(scripts),
        })
    }

    /// The transaction.
    pub fn tx(&self) -> &'a Transaction {
        self.tx
    }

    /// The outputs its inputs spend.
    pub fn spent_outputs(&self) -> &'a [TxOut] {
        self.spent_outputs
    }
}

pub(crate) fn write_compact_size(engine: &mut impl HashEngine, n: usize) {
    // usize fits u64 on every supported target.
    let n = n as u64;
    match n {
        0..=0xfc => engine.input(&[n as u8]),
        0xfd..=0xffff => {
            engine.input(&[0xfd]);
            engine.input(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            engine.input(&[0xfe]);
            engine.input(&(n as u32).to_le_bytes());
        }
        _ => {
            engine.input(&[0xff]);
            engine.input(&n.to_le_bytes());
        }
    }
}

fn write_script(engine: &mut impl HashEngine, script: &[u8]) {
    write_compact_size(engine, script.len());
    engine.input(script);
}

fn write_outpoint(engine: &mut impl HashEngine, outpoint: &OutPoint) {
    engine.input(outpoint.txid.as_byte_array());
    engine.input(&outpoint.vout.to_le_bytes());
}

fn write_txout(engine: &mut impl HashEngine, output: &TxOut) {
    engine.input(&output.value.to_sat().to_le_bytes());
    write_script(engine, output.script_pubkey.as_bytes());
}

/// The hash legacy signatures sign when the hash type makes no sense for
/// the input (Core's `uint256::ONE`): 1 as a little-endian 256-bit number.
pub const LEGACY_ONE: [u8; 32] = {
    let mut one = [0u8; 32];
    one[0] = 1;
    one
};

/// The legacy signature hash (Core's `SignatureHash` for `SigVersion::BASE`)
/// of input `input_index` for `script_code` (its OP_CODESEPARATORs are
/// removed here) and the full 32-bit `hash_type`.
///
/// An input index past the inputs, or SIGHASH_SINGLE with no output at the
/// input's index, gives [`LEGACY_ONE`], as in Core.
pub fn legacy_sighash(tx: &Transaction, input_index: usize, script_code: &[u8], hash_type: u32) -> [u8; 32] {
    if input_index >= tx.input.len() {
        return LEGACY_ONE;
    }
    let base_type = hash_type & 0x1f;
    let anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY != 0;
    if base_type == SIGHASH_SINGLE && input_index >= tx.output.len() {
        return LEGACY_ONE;
    }
    let script_code = without_codeseparators(script_code);
    let mut e = sha256d::Hash::engine();
    e.input(&tx.version.0.to_le_bytes());
    let write_input = |e: &mut sha256::HashEngine, index: usize| {
        let input = &tx.input[index];
        write_outpoint(e, &input.previous_output);
        if index == input_index {
            write_script(e, &script_code);
        } else {
            write_script(e, &[]);
        }
        let zero_sequence = index != input_index && (base_type == SIGHASH_NONE || base_type == SIGHASH_SINGLE);
        let sequence = if zero_sequence { 0 } else { input.sequence.0 };
        e.input(&sequence.to_le_bytes());
    };
    if anyone_can_pay {
        write_compact_size(&mut e, 1);
        write_input(&mut e, input_index);
    } else {
        write_compact_size(&mut e, tx.input.len());
        for index in 0..tx.input.len() {
            write_input(&mut e, index);
        }
    }
    match base_type {
        SIGHASH_NONE => write_compact_size(&mut e, 0),
        SIGHASH_SINGLE => {
            write_compact_size(&mut e, input_index + 1);
            for _ in 0..input_index {
                // A null output: value -1, empty script.
                e.input(&(-1i64).to_le_bytes());
                write_script(&mut e, &[]);
            }
            write_txout(&mut e, &tx.output[input_index]);
        }
        _ => {
            write_compact_size(&mut e, tx.output.len());
            for output in &tx.output {
                write_txout(&mut e, output);
            }
        }
    }
    e.input(&tx.lock_time.to_consensus_u32().to_le_bytes());
    e.input(&hash_type.to_le_bytes());
    sha256d::Hash::from_engine(e).to_byte_array()
}

/// The BIP143 signature hash of input `input_index` (segwit v0), for the
/// script code as it is, the spent `amount` and the full `hash_type`.
///
/// # Panics
///
/// If `input_index` is not an input of the transaction.
pub fn segwit_v0_sighash(
    data: &PrecomputedTx<'_>,
    input_index: usize,
    script_code: &[u8],
    amount: u64,
    hash_type: u32,
) -> [u8; 32] {
    let tx = data.tx;
    let base_type = hash_type & 0x1f;
    let anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY != 0;
    let zero = [0u8; 32];
    let hash_prevouts = if anyone_can_pay { zero } else { data.hash_prevouts };
    let hash_sequences = if anyone_can_pay || base_type == SIGHASH_SINGLE || base_type == SIGHASH_NONE {
        zero
    } else {
        data.hash_sequences
    };
    let hash_outputs = if base_type != SIGHASH_SINGLE && base_type != SIGHASH_NONE {
        data.hash_outputs
    } else if base_type == SIGHASH_SINGLE && input_index < tx.output.len() {
        let mut e = sha256d::Hash::engine();
        write_txout(&mut e, &tx.output[input_index]);
        sha256d::Hash::from_engine(e).to_byte_array()
    } else {
        zero
    };
    let input = &tx.input[input_index];
    let mut e = sha256d::Hash::engine();
    e.input(&tx.version.0.to_le_bytes());
    e.input(&hash_prevouts);
    e.input(&hash_sequences);
    write_outpoint(&mut e, &input.previous_output);
    write_script(&mut e, script_code);
    e.input(&amount.to_le_bytes());
    e.input(&input.sequence.0.to_le_bytes());
    e.input(&hash_outputs);
    e.input(&tx.lock_time.to_consensus_u32().to_le_bytes());
    e.input(&hash_type.to_le_bytes());
    sha256d::Hash::from_engine(e).to_byte_array()
}

/// What a tapscript signature commits to beyond a key path one (BIP342).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapscriptCommitment {
    /// The tapleaf hash of the script being executed.
    pub tapleaf_hash: [u8; 32],
    /// The opcode position of the last executed OP_CODESEPARATOR, or
    /// `u32::MAX` if none.
    pub codeseparator_pos: u32,
}

/// The BIP341 signature hash of input `input_index`, for `hash_type` (the
/// 65th signature byte, or [`SIGHASH_DEFAULT`]), the SHA256 of the annex
/// (with its length prefix) if there is one, and for tapscript the leaf data.
/// `None` where BIP341 defines no hash: an unknown hash type, or
/// SIGHASH_SINGLE without an output at the input's index.
///
/// # Panics
///
/// If `input_index` is not an input of the transaction.
pub fn taproot_sighash(
    data: &PrecomputedTx<'_>,
    input_index: usize,
    hash_type: u8,
    annex_hash: Option<&[u8; 32]>,
    tapscript: Option<&TapscriptCommitment>,
) -> Option<[u8; 32]> {
    let tx = data.tx;
    if !(hash_type <= 0x03 || (0x81..=0x83).contains(&hash_type)) {
        return None;
    }
    let output_type = if hash_type == SIGHASH_DEFAULT { SIGHASH_ALL as u8 } else { hash_type & 0x03 };
    let anyone_can_pay = hash_type & 0x80 != 0;
    let mut e = tagged_engine("TapSighash");
    e.input(&[0]); // epoch
    e.input(&[hash_type]);
    e.input(&tx.version.0.to_le_bytes());
    e.input(&tx.lock_time.to_consensus_u32().to_le_bytes());
    if !anyone_can_pay {
        e.input(&data.sha_prevouts);
        e.input(&data.sha_amounts);
        e.input(&data.sha_scriptpubkeys);
        e.input(&data.sha_sequences);
    }
    if output_type == SIGHASH_ALL as u8 {
        e.input(&data.sha_outputs);
    }
    let ext_flag = u8::from(tapscript.is_some());
    let spend_type = (ext_flag << 1) | u8::from(annex_hash.is_some());
    e.input(&[spend_type]);
    if anyone_can_pay {
        let input = &tx.input[input_index];
        write_outpoint(&mut e, &input.previous_output);
        write_txout(&mut e, &data.spent_outputs[input_index]);
        e.input(&input.sequence.0.to_le_bytes());
    } else {
        // Transactions cannot have 2^32 inputs.
        e.input(&(input_index as u32).to_le_bytes());
    }
    if let Some(annex_hash) = annex_hash {
        e.input(annex_hash);
    }
    if output_type == SIGHASH_SINGLE as u8 {
        let output = tx.output.get(input_index)?;
        let mut single = sha256::Hash::engine();
        write_txout(&mut single, output);
        e.input(sha256::Hash::from_engine(single).as_byte_array());
    }
    if let Some(leaf) = tapscript {
        e.input(&leaf.tapleaf_hash);
        e.input(&[0]); // key version
        e.input(&leaf.codeseparator_pos.to_le_bytes());
    }
    Some(sha256::Hash::from_engine(e).to_byte_array())
}
