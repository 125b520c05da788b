//! Context-free transaction checks (Core's `CheckTransaction`).

use std::collections::HashSet;

use bitcoin::Transaction;

/// The most satoshis that can ever exist (Core's `MAX_MONEY`).
pub const MAX_MONEY: i64 = 21_000_000 * 100_000_000;
/// The largest block weight (Core's `MAX_BLOCK_WEIGHT`).
pub const MAX_BLOCK_WEIGHT: usize = 4_000_000;

/// Why a transaction fails `CheckTransaction`. `Display` is Core's reject
/// reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxCheckError {
    /// The transaction has no inputs.
    #[error("bad-txns-vin-empty")]
    VinEmpty,
    /// The transaction has no outputs.
    #[error("bad-txns-vout-empty")]
    VoutEmpty,
    /// Without witness, the transaction would not fit in a block.
    #[error("bad-txns-oversize")]
    Oversize,
    /// An output value is negative.
    #[error("bad-txns-vout-negative")]
    VoutNegative,
    /// An output value exceeds `MAX_MONEY`.
    #[error("bad-txns-vout-toolarge")]
    VoutTooLarge,
    /// The outputs together exceed `MAX_MONEY`.
    #[error("bad-txns-txouttotal-toolarge")]
    TxoutTotalTooLarge,
    /// Two inputs spend the same outpoint.
    #[error("bad-txns-inputs-duplicate")]
    InputsDuplicate,
    /// A coinbase scriptSig is shorter than 2 or longer than 100 bytes.
    #[error("bad-cb-length")]
    CoinbaseLength,
    /// A non-coinbase input spends the null outpoint.
    #[error("bad-txns-prevout-null")]
    PrevoutNull,
}

impl TxCheckError {
    /// Core's reject reason, as peers and RPC callers see it.
    pub fn reject_reason(self) -> &'static str {
        match self {
            Self::VinEmpty => "bad-txns-vin-empty",
            Self::VoutEmpty => "bad-txns-vout-empty",
            Self::Oversize => "bad-txns-oversize",
            Self::VoutNegative => "bad-txns-vout-negative",
            Self::VoutTooLarge => "bad-txns-vout-toolarge",
            Self::TxoutTotalTooLarge => "bad-txns-txouttotal-toolarge",
            Self::InputsDuplicate => "bad-txns-inputs-duplicate",
            Self::CoinbaseLength => "bad-cb-length",
            Self::PrevoutNull => "bad-txns-prevout-null",
        }
    }
}

/// Core's `CheckTransaction`: the checks that need nothing but the
/// transaction, in Core's order.
pub fn check_transaction(tx: &Transaction) -> Result<(), TxCheckError> {
    if tx.input.is_empty() {
        return Err(TxCheckError::VinEmpty);
    }
    if tx.output.is_empty() {
        return Err(TxCheckError::VoutEmpty);
    }
    // The witness does not count: it has not been checked for malleation.
    if tx.base_size() * 4 > MAX_BLOCK_WEIGHT {
        return Err(TxCheckError::Oversize);
    }
    let mut total: i64 = 0;
    for output in &tx.output {
        // Values are signed on the wire; rust-bitcoin reads them unsigned.
        let value = output.value.to_sat() as i64;
        if value < 0 {
            return Err(TxCheckError::VoutNegative);
        }
        if value > MAX_MONEY {
            return Err(TxCheckError::VoutTooLarge);
        }
        // Both at most MAX_MONEY: no overflow.
        total += value;
        if total > MAX_MONEY {
            return Err(TxCheckError::TxoutTotalTooLarge);
        }
    }
    let mut seen = HashSet::with_capacity(tx.input.len());
    if !tx.input.iter().all(|i| seen.insert(i.previous_output)) {
        return Err(TxCheckError::InputsDuplicate);
    }
    if tx.is_coinbase() {
        let len = tx.input[0].script_sig.len();
        if !(2..=100).contains(&len) {
            return Err(TxCheckError::CoinbaseLength);
        }
    } else if tx.input.iter().any(|i| i.previous_output.is_null()) {
        return Err(TxCheckError::PrevoutNull);
    }
    Ok(())
}
