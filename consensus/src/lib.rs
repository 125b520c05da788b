//! Context-free Bitcoin consensus rules.
//!
//! What it is: the script interpreter (legacy, P2SH, segwit v0, taproot key
//! path and tapscript) with Bitcoin Core's verification flags and error
//! names, signature hashes, sigop counting, and `CheckTransaction`.
//!
//! What it is not: anything that needs the chain (UTXO lookups, heights,
//! median time past, block rules). Those live in `satpool-node`.
//!
//! The usual entry points: [`check_transaction`] for a transaction on its
//! own, then [`PrecomputedTx::new`] with the outputs it spends and
//! [`verify_input`] for each input (from any thread), and
//! [`transaction_sigop_cost`] for the block's sigop budget.

#![warn(missing_docs)]

pub mod checker;
pub mod error;
pub mod flags;
pub mod interpreter;
pub mod num;
pub mod opcodes;
pub mod script;
pub mod sighash;
pub mod signature;
pub mod sigops;
pub mod taproot;
pub mod tx_check;

pub use checker::{NoSignatureChecker, SignatureChecker, TransactionSignatureChecker};
pub use error::ScriptError;
pub use flags::{UnknownFlagError, VerifyFlags};
pub use interpreter::{eval_script, verify_script, verify_script_bytes, ExecutionData, SigVersion};
pub use num::ScriptNum;
pub use sighash::{PrecomputedTx, SpentOutputsMismatch};
pub use sigops::{
    count_witness_sigops, legacy_sigop_count, p2sh_sigop_count, script_sigop_count, transaction_sigop_cost,
    witness_sigops,
};
pub use tx_check::{check_transaction, TxCheckError};

/// Verifies input `input_index` of the precomputed transaction against the
/// output it spends, under `flags` (Core's `CScriptCheck`).
///
/// # Panics
///
/// If `input_index` is not an input of the transaction.
pub fn verify_input(data: &PrecomputedTx<'_>, input_index: usize, flags: VerifyFlags) -> Result<(), ScriptError> {
    let input = &data.tx().input[input_index];
    let spent = &data.spent_outputs()[input_index];
    let checker = TransactionSignatureChecker::new(data, input_index);
    verify_script(&input.script_sig, &spent.script_pubkey, &input.witness, spent.value, flags, &checker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_sync<T: Sync + Send>() {}

    #[test]
    fn precomputed_is_sync() {
        assert_sync::<PrecomputedTx<'static>>();
    }
}
