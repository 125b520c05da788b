//! Script errors: one variant per Bitcoin Core `ScriptError_t`.
//!
//! [`ScriptError::name`] gives the names used in Core's `script_tests.json`
//! (success, which is no error here, is `"OK"` there), and `Display` gives
//! Core's `ScriptErrorString` text, which reject reasons quote, as in
//! `mandatory-script-verify-flag-failed (<text>)`.

/// Why a script failed to verify (Core's `SCRIPT_ERR_*`, less `OK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// `SCRIPT_ERR_UNKNOWN_ERROR`: unknown error.
    #[error("unknown error")]
    UnknownError,
    /// `SCRIPT_ERR_EVAL_FALSE`: Script evaluated without error but finished with a false/empty top stack element.
    #[error("Script evaluated without error but finished with a false/empty top stack element")]
    EvalFalse,
    /// `SCRIPT_ERR_OP_RETURN`: OP_RETURN was encountered.
    #[error("OP_RETURN was encountered")]
    OpReturn,
    /// `SCRIPT_ERR_SCRIPT_SIZE`: Script is too big.
    #[error("Script is too big")]
    ScriptSize,
    /// `SCRIPT_ERR_PUSH_SIZE`: Push value size limit exceeded.
    #[error("Push value size limit exceeded")]
    PushSize,
    /// `SCRIPT_ERR_OP_COUNT`: Operation limit exceeded.
    #[error("Operation limit exceeded")]
    OpCount,
    /// `SCRIPT_ERR_STACK_SIZE`: Stack size limit exceeded.
    #[error("Stack size limit exceeded")]
    StackSize,
    /// `SCRIPT_ERR_SIG_COUNT`: Signature count negative or greater than pubkey count.
    #[error("Signature count negative or greater than pubkey count")]
    SigCount,
    /// `SCRIPT_ERR_PUBKEY_COUNT`: Pubkey count negative or limit exceeded.
    #[error("Pubkey count negative or limit exceeded")]
    PubkeyCount,
    /// `SCRIPT_ERR_VERIFY`: Script failed an OP_VERIFY operation.
    #[error("Script failed an OP_VERIFY operation")]
    Verify,
    /// `SCRIPT_ERR_EQUALVERIFY`: Script failed an OP_EQUALVERIFY operation.
    #[error("Script failed an OP_EQUALVERIFY operation")]
    EqualVerify,
    /// `SCRIPT_ERR_CHECKMULTISIGVERIFY`: Script failed an OP_CHECKMULTISIGVERIFY operation.
    #[error("Script failed an OP_CHECKMULTISIGVERIFY operation")]
    CheckMultisigVerify,
    /// `SCRIPT_ERR_CHECKSIGVERIFY`: Script failed an OP_CHECKSIGVERIFY operation.
    #[error("Script failed an OP_CHECKSIGVERIFY operation")]
    CheckSigVerify,
    /// `SCRIPT_ERR_NUMEQUALVERIFY`: Script failed an OP_NUMEQUALVERIFY operation.
    #[error("Script failed an OP_NUMEQUALVERIFY operation")]
    NumEqualVerify,
    /// `SCRIPT_ERR_BAD_OPCODE`: Opcode missing or not understood.
    #[error("Opcode missing or not understood")]
    BadOpcode,
    /// `SCRIPT_ERR_DISABLED_OPCODE`: Attempted to use a disabled opcode.
    #[error("Attempted to use a disabled opcode")]
    DisabledOpcode,
    /// `SCRIPT_ERR_INVALID_STACK_OPERATION`: Operation not valid with the current stack size.
    #[error("Operation not valid with the current stack size")]
    InvalidStackOperation,
    /// `SCRIPT_ERR_INVALID_ALTSTACK_OPERATION`: Operation not valid with the current altstack size.
    #[error("Operation not valid with the current altstack size")]
    InvalidAltstackOperation,
    /// `SCRIPT_ERR_UNBALANCED_CONDITIONAL`: Invalid OP_IF construction.
    #[error("Invalid OP_IF construction")]
    UnbalancedConditional,
    /// `SCRIPT_ERR_SCRIPTNUM`: a numeric operand is too long, or not
    /// minimally encoded under MINIMALDATA (Core's `scriptnum_error`).
    #[error("Script number overflow or non-minimal encoding")]
    ScriptNum,
    /// `SCRIPT_ERR_NEGATIVE_LOCKTIME`: Negative locktime.
    #[error("Negative locktime")]
    NegativeLocktime,
    /// `SCRIPT_ERR_UNSATISFIED_LOCKTIME`: Locktime requirement not satisfied.
    #[error("Locktime requirement not satisfied")]
    UnsatisfiedLocktime,
    /// `SCRIPT_ERR_SIG_HASHTYPE`: Signature hash type missing or not understood.
    #[error("Signature hash type missing or not understood")]
    SigHashtype,
    /// `SCRIPT_ERR_SIG_DER`: Non-canonical DER signature.
    #[error("Non-canonical DER signature")]
    SigDer,
    /// `SCRIPT_ERR_MINIMALDATA`: Data push larger than necessary.
    #[error("Data push larger than necessary")]
    MinimalData,
    /// `SCRIPT_ERR_SIG_PUSHONLY`: Only push operators allowed in signatures.
    #[error("Only push operators allowed in signatures")]
    SigPushOnly,
    /// `SCRIPT_ERR_SIG_HIGH_S`: Non-canonical signature: S value is unnecessarily high.
    #[error("Non-canonical signature: S value is unnecessarily high")]
    SigHighS,
    /// `SCRIPT_ERR_SIG_NULLDUMMY`: Dummy CHECKMULTISIG argument must be zero.
    #[error("Dummy CHECKMULTISIG argument must be zero")]
    SigNullDummy,
    /// `SCRIPT_ERR_PUBKEYTYPE`: Public key is neither compressed or uncompressed.
    #[error("Public key is neither compressed or uncompressed")]
    PubkeyType,
    /// `SCRIPT_ERR_CLEANSTACK`: Stack size must be exactly one after execution.
    #[error("Stack size must be exactly one after execution")]
    CleanStack,
    /// `SCRIPT_ERR_MINIMALIF`: OP_IF/NOTIF argument must be minimal.
    #[error("OP_IF/NOTIF argument must be minimal")]
    MinimalIf,
    /// `SCRIPT_ERR_SIG_NULLFAIL`: Signature must be zero for failed CHECK(MULTI)SIG operation.
    #[error("Signature must be zero for failed CHECK(MULTI)SIG operation")]
    SigNullFail,
    /// `SCRIPT_ERR_DISCOURAGE_UPGRADABLE_NOPS`: NOPx reserved for soft-fork upgrades.
    #[error("NOPx reserved for soft-fork upgrades")]
    DiscourageUpgradableNops,
    /// `SCRIPT_ERR_DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM`: Witness version reserved for soft-fork upgrades.
    #[error("Witness version reserved for soft-fork upgrades")]
    DiscourageUpgradableWitnessProgram,
    /// `SCRIPT_ERR_DISCOURAGE_UPGRADABLE_TAPROOT_VERSION`: Taproot version reserved for soft-fork upgrades.
    #[error("Taproot version reserved for soft-fork upgrades")]
    DiscourageUpgradableTaprootVersion,
    /// `SCRIPT_ERR_DISCOURAGE_OP_SUCCESS`: OP_SUCCESSx reserved for soft-fork upgrades.
    #[error("OP_SUCCESSx reserved for soft-fork upgrades")]
    DiscourageOpSuccess,
    /// `SCRIPT_ERR_DISCOURAGE_UPGRADABLE_PUBKEYTYPE`: Public key version reserved for soft-fork upgrades.
    #[error("Public key version reserved for soft-fork upgrades")]
    DiscourageUpgradablePubkeyType,
    /// `SCRIPT_ERR_WITNESS_PROGRAM_WRONG_LENGTH`: Witness program has incorrect length.
    #[error("Witness program has incorrect length")]
    WitnessProgramWrongLength,
    /// `SCRIPT_ERR_WITNESS_PROGRAM_WITNESS_EMPTY`: Witness program was passed an empty witness.
    #[error("Witness program was passed an empty witness")]
    WitnessProgramWitnessEmpty,
    /// `SCRIPT_ERR_WITNESS_PROGRAM_MISMATCH`: Witness program hash mismatch.
    #[error("Witness program hash mismatch")]
    WitnessProgramMismatch,
    /// `SCRIPT_ERR_WITNESS_MALLEATED`: Witness requires empty scriptSig.
    #[error("Witness requires empty scriptSig")]
    WitnessMalleated,
    /// `SCRIPT_ERR_WITNESS_MALLEATED_P2SH`: Witness requires only-redeemscript scriptSig.
    #[error("Witness requires only-redeemscript scriptSig")]
    WitnessMalleatedP2sh,
    /// `SCRIPT_ERR_WITNESS_UNEXPECTED`: Witness provided for non-witness script.
    #[error("Witness provided for non-witness script")]
    WitnessUnexpected,
    /// `SCRIPT_ERR_WITNESS_PUBKEYTYPE`: Using non-compressed keys in segwit.
    #[error("Using non-compressed keys in segwit")]
    WitnessPubkeyType,
    /// `SCRIPT_ERR_SCHNORR_SIG_SIZE`: Invalid Schnorr signature size.
    #[error("Invalid Schnorr signature size")]
    SchnorrSigSize,
    /// `SCRIPT_ERR_SCHNORR_SIG_HASHTYPE`: Invalid Schnorr signature hash type.
    #[error("Invalid Schnorr signature hash type")]
    SchnorrSigHashtype,
    /// `SCRIPT_ERR_SCHNORR_SIG`: Invalid Schnorr signature.
    #[error("Invalid Schnorr signature")]
    SchnorrSig,
    /// `SCRIPT_ERR_TAPROOT_WRONG_CONTROL_SIZE`: Invalid Taproot control block size.
    #[error("Invalid Taproot control block size")]
    TaprootWrongControlSize,
    /// `SCRIPT_ERR_TAPSCRIPT_VALIDATION_WEIGHT`: Too much signature validation relative to witness weight.
    #[error("Too much signature validation relative to witness weight")]
    TapscriptValidationWeight,
    /// `SCRIPT_ERR_TAPSCRIPT_CHECKMULTISIG`: OP_CHECKMULTISIG(VERIFY) is not available in tapscript.
    #[error("OP_CHECKMULTISIG(VERIFY) is not available in tapscript")]
    TapscriptCheckMultisig,
    /// `SCRIPT_ERR_TAPSCRIPT_MINIMALIF`: OP_IF/NOTIF argument must be minimal in tapscript.
    #[error("OP_IF/NOTIF argument must be minimal in tapscript")]
    TapscriptMinimalIf,
    /// `SCRIPT_ERR_TAPSCRIPT_EMPTY_PUBKEY`: Empty public key in tapscript.
    #[error("Empty public key in tapscript")]
    TapscriptEmptyPubkey,
    /// `SCRIPT_ERR_OP_CODESEPARATOR`: Using OP_CODESEPARATOR in non-witness script.
    #[error("Using OP_CODESEPARATOR in non-witness script")]
    OpCodeSeparator,
    /// `SCRIPT_ERR_SIG_FINDANDDELETE`: Signature is found in scriptCode.
    #[error("Signature is found in scriptCode")]
    SigFindAndDelete,
}

impl ScriptError {
    /// Every error, in Core's order.
    pub const ALL: [ScriptError; 54] = [
        ScriptError::UnknownError,
        ScriptError::EvalFalse,
        ScriptError::OpReturn,
        ScriptError::ScriptSize,
        ScriptError::PushSize,
        ScriptError::OpCount,
        ScriptError::StackSize,
        ScriptError::SigCount,
        ScriptError::PubkeyCount,
        ScriptError::Verify,
        ScriptError::EqualVerify,
        ScriptError::CheckMultisigVerify,
        ScriptError::CheckSigVerify,
        ScriptError::NumEqualVerify,
        ScriptError::BadOpcode,
        ScriptError::DisabledOpcode,
        ScriptError::InvalidStackOperation,
        ScriptError::InvalidAltstackOperation,
        ScriptError::UnbalancedConditional,
        ScriptError::ScriptNum,
        ScriptError::NegativeLocktime,
        ScriptError::UnsatisfiedLocktime,
        ScriptError::SigHashtype,
        ScriptError::SigDer,
        ScriptError::MinimalData,
        ScriptError::SigPushOnly,
        ScriptError::SigHighS,
        ScriptError::SigNullDummy,
        ScriptError::PubkeyType,
        ScriptError::CleanStack,
        ScriptError::MinimalIf,
        ScriptError::SigNullFail,
        ScriptError::DiscourageUpgradableNops,
        ScriptError::DiscourageUpgradableWitnessProgram,
        ScriptError::DiscourageUpgradableTaprootVersion,
        ScriptError::DiscourageOpSuccess,
        ScriptError::DiscourageUpgradablePubkeyType,
        ScriptError::WitnessProgramWrongLength,
        ScriptError::WitnessProgramWitnessEmpty,
        ScriptError::WitnessProgramMismatch,
        ScriptError::WitnessMalleated,
        ScriptError::WitnessMalleatedP2sh,
        ScriptError::WitnessUnexpected,
        ScriptError::WitnessPubkeyType,
        ScriptError::SchnorrSigSize,
        ScriptError::SchnorrSigHashtype,
        ScriptError::SchnorrSig,
        ScriptError::TaprootWrongControlSize,
        ScriptError::TapscriptValidationWeight,
        ScriptError::TapscriptCheckMultisig,
        ScriptError::TapscriptMinimalIf,
        ScriptError::TapscriptEmptyPubkey,
        ScriptError::OpCodeSeparator,
        ScriptError::SigFindAndDelete,
    ];

    /// The name Core's test vectors use for this error (`"EVAL_FALSE"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ScriptError::UnknownError => "UNKNOWN_ERROR",
            ScriptError::EvalFalse => "EVAL_FALSE",
            ScriptError::OpReturn => "OP_RETURN",
            ScriptError::ScriptSize => "SCRIPT_SIZE",
            ScriptError::PushSize => "PUSH_SIZE",
            ScriptError::OpCount => "OP_COUNT",
            ScriptError::StackSize => "STACK_SIZE",
            ScriptError::SigCount => "SIG_COUNT",
            ScriptError::PubkeyCount => "PUBKEY_COUNT",
            ScriptError::Verify => "VERIFY",
            ScriptError::EqualVerify => "EQUALVERIFY",
            ScriptError::CheckMultisigVerify => "CHECKMULTISIGVERIFY",
            ScriptError::CheckSigVerify => "CHECKSIGVERIFY",
            ScriptError::NumEqualVerify => "NUMEQUALVERIFY",
            ScriptError::BadOpcode => "BAD_OPCODE",
            ScriptError::DisabledOpcode => "DISABLED_OPCODE",
            ScriptError::InvalidStackOperation => "INVALID_STACK_OPERATION",
            ScriptError::InvalidAltstackOperation => "INVALID_ALTSTACK_OPERATION",
            ScriptError::UnbalancedConditional => "UNBALANCED_CONDITIONAL",
            ScriptError::ScriptNum => "SCRIPTNUM",
            ScriptError::NegativeLocktime => "NEGATIVE_LOCKTIME",
            ScriptError::UnsatisfiedLocktime => "UNSATISFIED_LOCKTIME",
            ScriptError::SigHashtype => "SIG_HASHTYPE",
            ScriptError::SigDer => "SIG_DER",
            ScriptError::MinimalData => "MINIMALDATA",
            ScriptError::SigPushOnly => "SIG_PUSHONLY",
            ScriptError::SigHighS => "SIG_HIGH_S",
            ScriptError::SigNullDummy => "SIG_NULLDUMMY",
            ScriptError::PubkeyType => "PUBKEYTYPE",
            ScriptError::CleanStack => "CLEANSTACK",
            ScriptError::MinimalIf => "MINIMALIF",
            ScriptError::SigNullFail => "NULLFAIL",
            ScriptError::DiscourageUpgradableNops => "DISCOURAGE_UPGRADABLE_NOPS",
            ScriptError::DiscourageUpgradableWitnessProgram => "DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM",
            ScriptError::DiscourageUpgradableTaprootVersion => "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION",
            ScriptError::DiscourageOpSuccess => "DISCOURAGE_OP_SUCCESS",
            ScriptError::DiscourageUpgradablePubkeyType => "DISCOURAGE_UPGRADABLE_PUBKEYTYPE",
            ScriptError::WitnessProgramWrongLength => "WITNESS_PROGRAM_WRONG_LENGTH",
            ScriptError::WitnessProgramWitnessEmpty => "WITNESS_PROGRAM_WITNESS_EMPTY",
            ScriptError::WitnessProgramMismatch => "WITNESS_PROGRAM_MISMATCH",
            ScriptError::WitnessMalleated => "WITNESS_MALLEATED",
            ScriptError::WitnessMalleatedP2sh => "WITNESS_MALLEATED_P2SH",
            ScriptError::WitnessUnexpected => "WITNESS_UNEXPECTED",
            ScriptError::WitnessPubkeyType => "WITNESS_PUBKEYTYPE",
            ScriptError::SchnorrSigSize => "SCHNORR_SIG_SIZE",
            ScriptError::SchnorrSigHashtype => "SCHNORR_SIG_HASHTYPE",
            ScriptError::SchnorrSig => "SCHNORR_SIG",
            ScriptError::TaprootWrongControlSize => "TAPROOT_WRONG_CONTROL_SIZE",
            ScriptError::TapscriptValidationWeight => "TAPSCRIPT_VALIDATION_WEIGHT",
            ScriptError::TapscriptCheckMultisig => "TAPSCRIPT_CHECKMULTISIG",
            ScriptError::TapscriptMinimalIf => "TAPSCRIPT_MINIMALIF",
            ScriptError::TapscriptEmptyPubkey => "TAPSCRIPT_EMPTY_PUBKEY",
            ScriptError::OpCodeSeparator => "OP_CODESEPARATOR",
            ScriptError::SigFindAndDelete => "SIG_FINDANDDELETE",
        }
    }

    /// The error Core's test vectors call `name`; `None` for `"OK"` and
    /// unknown names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts() {
        assert_eq!(
            ScriptError::EvalFalse.to_string(),
            "Script evaluated without error but finished with a false/empty top stack element"
        );
        assert_eq!(ScriptError::SigNullFail.name(), "NULLFAIL");
        for e in ScriptError::ALL {
            assert_eq!(ScriptError::from_name(e.name()), Some(e));
        }
    }
}
