//! Signature operation counting, with Core's semantics: legacy counts
//! (`GetSigOpCount`, accurate and not), P2SH counts, witness counts
//! (`CountWitnessSigOps`) and the weighted cost of a transaction
//! (`GetTransactionSigOpCost`).

use bitcoin::{Script, Transaction, TxOut, Witness};

use crate::flags::VerifyFlags;
use crate::opcodes::{
    decode_op_n, OP_1, OP_16, OP_CHECKMULTISIG, OP_CHECKMULTISIGVERIFY, OP_CHECKSIG, OP_CHECKSIGVERIFY,
};
use crate::script::{is_p2sh, is_push_only, witness_program, Instructions};

/// How many sigops a bare OP_CHECKMULTISIG counts for when its key count is
/// not known.
pub const MAX_PUBKEYS_PER_MULTISIG: usize = 20;
/// The weight of a legacy or P2SH sigop relative to a witness one.
pub const WITNESS_SCALE_FACTOR: usize = 4;

/// Counts the sigops of a script (Core's `GetSigOpCount(fAccurate)`). With
/// `accurate`, an OP_CHECKMULTISIG preceded by `OP_1`..`OP_16` counts as that
/// many; otherwise it counts as 20. Counting stops at a truncated push.
pub fn script_sigop_count(script: &[u8], accurate: bool) -> usize {
    let mut count = 0;
    let mut last_opcode = None;
    for op in Instructions::new(script) {
        let Ok(op) = op else { break };
        match op.opcode {
            OP_CHECKSIG | OP_CHECKSIGVERIFY => count += 1,
            OP_CHECKMULTISIG | OP_CHECKMULTISIGVERIFY => {
                count += match last_opcode {
                    Some(n @ OP_1..=OP_16) if accurate => usize::from(decode_op_n(n).unwrap_or(20)),
                    _ => MAX_PUBKEYS_PER_MULTISIG,
                };
            }
            _ => {}
        }
        last_opcode = Some(op.opcode);
    }
    count
}

/// The sigops of a P2SH spend: those of the redeem script, the last push of
/// `script_sig` (Core's `GetSigOpCount(scriptSig)`). Scripts that are not
/// P2SH count accurately; a scriptSig that is not push-only counts 0.
pub fn p2sh_script_sigop_count(script_pubkey: &[u8], script_sig: &[u8]) -> usize {
    if !is_p2sh(script_pubkey) {
        return script_sigop_count(script_pubkey, true);
    }
    let mut last_push: &[u8] = &[];
    for op in Instructions::new(script_sig) {
        match op {
            Ok(op) if op.opcode <= OP_16 => last_push = op.data,
            _ => return 0,
        }
    }
    script_sigop_count(last_push, true)
}

/// Core's `GetLegacySigOpCount`: the inaccurate count of every scriptSig and
/// scriptPubKey of the transaction.
pub fn legacy_sigop_count(tx: &Transaction) -> usize {
    let inputs: usize = tx.input.iter().map(|i| script_sigop_count(i.script_sig.as_bytes(), false)).sum();
    let outputs: usize = tx.output.iter().map(|o| script_sigop_count(o.script_pubkey.as_bytes(), false)).sum();
    inputs + outputs
}

/// Core's `GetP2SHSigOpCount`: the redeem script sigops of the inputs that
/// spend P2SH outputs; `spent_outputs[i]` is what input `i` spends. A
/// coinbase counts 0.
pub fn p2sh_sigop_count(tx: &Transaction, spent_outputs: &[TxOut]) -> usize {
    if tx.is_coinbase() {
        return 0;
    }
    tx.input
        .iter()
        .zip(spent_outputs)
        .filter(|(_, spent)| is_p2sh(spent.script_pubkey.as_bytes()))
        .map(|(input, spent)| p2sh_script_sigop_count(spent.script_pubkey.as_bytes(), input.script_sig.as_bytes()))
        .sum()
}

/// Core's `WitnessSigOps`: the sigops of a witness program of `version`.
pub fn witness_sigops(version: u8, program: &[u8], witness: &Witness) -> usize {
    if version != 0 {
        return 0;
    }
    match program.len() {
        20 => 1,
        32 => witness.last().map_or(0, |script| script_sigop_count(script, true)),
        _ => 0,
    }
}

/// Core's `CountWitnessSigOps`: the witness sigops of one input, bare or
/// nested in P2SH; 0 without the WITNESS flag.
pub fn count_witness_sigops(
    script_sig: &Script,
    script_pubkey: &Script,
    witness: &Witness,
    flags: VerifyFlags,
) -> usize {
    if !flags.contains(VerifyFlags::WITNESS) {
        return 0;
    }
    let script_pubkey = script_pubkey.as_bytes();
    if let Some((version, program)) = witness_program(script_pubkey) {
        return witness_sigops(version, program, witness);
    }
    let script_sig = script_sig.as_bytes();
    if is_p2sh(script_pubkey) && is_push_only(script_sig) {
        let redeem_script = Instructions::new(script_sig).filter_map(Result::ok).last().map_or(&[][..], |op| op.data);
        if let Some((version, program)) = witness_program(redeem_script) {
            return witness_sigops(version, program, witness);
        }
    }
    0
}

/// Core's `GetTransactionSigOpCost`: legacy sigops times 4, plus P2SH
/// sigops times 4 (with the P2SH flag), plus witness sigops. A coinbase
/// counts only its legacy sigops.
pub fn transaction_sigop_cost(tx: &Transaction, spent_outputs: &[TxOut], flags: VerifyFlags) -> usize {
    let mut cost = legacy_sigop_count(tx) * WITNESS_SCALE_FACTOR;
    if tx.is_coinbase() {
        return cost;
    }
    if flags.contains(VerifyFlags::P2SH) {
        cost += p2sh_sigop_count(tx, spent_outputs) * WITNESS_SCALE_FACTOR;
    }
    for (input, spent) in tx.input.iter().zip(spent_outputs) {
        cost += count_witness_sigops(&input.script_sig, &spent.script_pubkey, &input.witness, flags);
    }
    cost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multisig_counts() {
        // 2 <k1> <k2> 2 CHECKMULTISIG, keys shortened to one byte.
        let script = [0x52, 0x01, 0x02, 0x01, 0x03, 0x52, OP_CHECKMULTISIG];
        assert_eq!(script_sigop_count(&script, true), 2);
        assert_eq!(script_sigop_count(&script, false), 20);
        assert_eq!(script_sigop_count(&[OP_CHECKSIG, OP_CHECKSIGVERIFY], false), 2);
    }
}
