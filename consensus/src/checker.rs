//! What the interpreter asks of the transaction it verifies: signature
//! checks and lock time checks (Core's `BaseSignatureChecker` and
//! `GenericTransactionSignatureChecker`).

use bitcoin::Amount;

use crate::error::ScriptError;
use crate::interpreter::{ExecutionData, SigVersion};
use crate::sighash::{
    legacy_sighash, segwit_v0_sighash, taproot_sighash, PrecomputedTx, TapscriptCommitment, SIGHASH_DEFAULT,
};
use crate::signature::{parse_pubkey, verify_ecdsa, verify_schnorr};

/// `CTxIn::SEQUENCE_FINAL`.
pub const SEQUENCE_FINAL: u32 = 0xffff_ffff;
/// BIP68: the sequence number carries no relative lock time.
pub const SEQUENCE_LOCKTIME_DISABLE_FLAG: u32 = 1 << 31;
/// BIP68: the relative lock time is in units of 512 seconds.
pub const SEQUENCE_LOCKTIME_TYPE_FLAG: u32 = 1 << 22;
/// BIP68: the bits that hold the relative lock time.
pub const SEQUENCE_LOCKTIME_MASK: u32 = 0x0000_ffff;
/// Lock times below this are block heights, from it on they are times.
pub const LOCKTIME_THRESHOLD: i64 = 500_000_000;

/// The checks the script interpreter delegates to its context. The
/// defaults fail every check, like Core's `BaseSignatureChecker`.
pub trait SignatureChecker {
    /// Whether `sig` (DER with hash type byte) is `pubkey`'s signature of
    /// the transaction for `script_code`, spending `amount`.
    fn check_ecdsa_signature(
        &self,
        sig: &[u8],
        pubkey: &[u8],
        script_code: &[u8],
        amount: Amount,
        sigversion: SigVersion,
    ) -> bool {
        let _ = (sig, pubkey, script_code, amount, sigversion);
        false
    }

    /// Checks a BIP340 signature (64 bytes, or 65 with a hash type) by the
    /// 32-byte `pubkey`, for a key path (`SigVersion::Taproot`) or tapscript
    /// spend.
    fn check_schnorr_signature(
        &self,
        sig: &[u8],
        pubkey: &[u8],
        sigversion: SigVersion,
        execdata: &ExecutionData,
    ) -> Result<(), ScriptError> {
        let _ = (sig, pubkey, sigversion, execdata);
        Err(ScriptError::SchnorrSig)
    }

    /// Whether the transaction satisfies OP_CHECKLOCKTIMEVERIFY's argument.
    fn check_lock_time(&self, lock_time: i64) -> bool {
        let _ = lock_time;
        false
    }

    /// Whether the input satisfies OP_CHECKSEQUENCEVERIFY's argument.
    fn check_sequence(&self, sequence: i64) -> bool {
        let _ = sequence;
        false
    }
}

/// A checker that fails every signature and lock time check (for scripts
/// evaluated outside a transaction).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSignatureChecker;

impl SignatureChecker for NoSignatureChecker {}

/// Checks signatures and lock times of one input of a transaction.
#[derive(Debug, Clone, Copy)]
pub struct TransactionSignatureChecker<'p, 'a> {
    data: &'p PrecomputedTx<'a>,
    input_index: usize,
}

impl<'p, 'a> TransactionSignatureChecker<'p, 'a> {
    /// A checker for input `input_index` of `data`'s transaction.
    ///
    /// # Panics
    ///
    /// If `input_index` is not an input of the transaction.
    pub fn new(data: &'p PrecomputedTx<'a>, input_index: usize) -> Self {
        assert!(input_index < data.tx().input.len(), "input index {input_index} out of range");
        Self { data, input_index }
    }
}

impl SignatureChecker for TransactionSignatureChecker<'_, '_> {
    fn check_ecdsa_signature(
        &self,
        sig: &[u8],
        pubkey: &[u8],
        script_code: &[u8],
        amount: Amount,
        sigversion: SigVersion,
    ) -> bool {
        let Some(pubkey) = parse_pubkey(pubkey) else {
            return false;
        };
        let Some((&hash_type, der)) = sig.split_last() else {
            return false;
        };
        let hash_type = u32::from(hash_type);
        let sighash = match sigversion {
            SigVersion::Base => legacy_sighash(self.data.tx(), self.input_index, script_code, hash_type),
            SigVersion::WitnessV0 => {
                segwit_v0_sighash(self.data, self.input_index, script_code, amount.to_sat(), hash_type)
            }
            SigVersion::Taproot | SigVersion::Tapscript => return false,
        };
        verify_ecdsa(der, &pubkey, sighash)
    }

    fn check_schnorr_signature(
        &self,
        sig: &[u8],
        pubkey: &[u8],
        sigversion: SigVersion,
        execdata: &ExecutionData,
    ) -> Result<(), ScriptError> {
        let (sig, hash_type) = match sig.len() {
            64 => (sig, SIGHASH_DEFAULT),
            65 => {
                let hash_type = sig[64];
                if hash_type == SIGHASH_DEFAULT {
                    return Err(ScriptError::SchnorrSigHashtype);
                }
                (&sig[..64], hash_type)
            }
            _ => return Err(ScriptError::SchnorrSigSize),
        };
        let tapscript = match sigversion {
            SigVersion::Tapscript => Some(TapscriptCommitment {
                tapleaf_hash: execdata.tapleaf_hash.ok_or(ScriptError::UnknownError)?,
                codeseparator_pos: execdata.codeseparator_pos,
            }),
            SigVersion::Taproot => None,
            SigVersion::Base | SigVersion::WitnessV0 => return Err(ScriptError::UnknownError),
        };
        let sighash =
            taproot_sighash(self.data, self.input_index, hash_type, execdata.annex_hash.as_ref(), tapscript.as_ref())
                .ok_or(ScriptError::SchnorrSigHashtype)?;
        if verify_schnorr(sig, pubkey, sighash) {
            Ok(())
        } else {
            Err(ScriptError::SchnorrSig)
        }
    }

    fn check_lock_time(&self, lock_time: i64) -> bool {
        let tx = self.data.tx();
        let tx_lock_time = i64::from(tx.lock_time.to_consensus_u32());
        // Both heights or both times: comparing one with the other means
        // nothing.
        let same_kind = (tx_lock_time < LOCKTIME_THRESHOLD && lock_time < LOCKTIME_THRESHOLD)
            || (tx_lock_time >= LOCKTIME_THRESHOLD && lock_time >= LOCKTIME_THRESHOLD);
        if !same_kind || lock_time > tx_lock_time {
            return false;
        }
        // A final input would let the lock time be bypassed.
        tx.input[self.input_index].sequence.0 != SEQUENCE_FINAL
    }

    fn check_sequence(&self, sequence: i64) -> bool {
        let tx = self.data.tx();
        let tx_sequence = i64::from(tx.input[self.input_index].sequence.0);
        // BIP68 applies from version 2 on; Core compares the version as
        // unsigned, so "negative" versions qualify.
        if (tx.version.0 as u32) < 2 {
            return false;
        }
        if tx_sequence & i64::from(SEQUENCE_LOCKTIME_DISABLE_FLAG) != 0 {
            return false;
        }
        let mask = i64::from(SEQUENCE_LOCKTIME_TYPE_FLAG | SEQUENCE_LOCKTIME_MASK);
        let tx_masked = tx_sequence & mask;
        let masked = sequence & mask;
        let type_flag = i64::from(SEQUENCE_LOCKTIME_TYPE_FLAG);
        let same_kind =
            (tx_masked < type_flag && masked < type_flag) || (tx_masked >= type_flag && masked >= type_flag);
        same_kind && masked <= tx_masked
    }
}
