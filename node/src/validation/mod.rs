//! Bitcoin's consensus rules for headers and blocks, with Bitcoin Core's
//! reject reasons.
//!
//! What it is: pure checks in Core's order: `check_header` (proof of work),
//! `contextual_check_header` (difficulty, time, version), `check_block`
//! (structure, merkle root, coinbase, transactions), `contextual_check_block`
//! (finality, BIP 34, witness commitment, weight) and `connect_block`
//! (inputs, sequence locks, sigops, scripts, coinbase amount) against a UTXO
//! view. What it is not: storage or chain selection; `chain` calls these.

mod block;
mod connect;
mod header;
pub mod merkle;

pub use block::{check_block, check_block_contents, contextual_check_block, is_final, witness_commitment_index};
pub use connect::{connect_block, sequence_locks, BlockConnection, SpentCoin};
pub use header::{check_header, contextual_check_header, HeaderContext};

use bitcoin::Txid;

/// Largest block weight (BIP 141).
pub const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// Largest total sigop cost of a block (BIP 141).
pub const MAX_BLOCK_SIGOPS_COST: usize = 80_000;
/// Scale between legacy sigops and sigop cost, and between base size and weight.
pub const WITNESS_SCALE_FACTOR: usize = 4;
/// How far ahead of the node's clock a block's time may be.
pub const MAX_FUTURE_BLOCK_TIME: i64 = 2 * 60 * 60;

/// Why a header or block breaks the consensus rules. `reject_reason()` gives
/// Bitcoin Core's string, which `submitblock` returns and peers are told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The hash does not meet the target of its own bits.
    #[error("high-hash: proof of work failed")]
    HighHash,
    /// `bits` is not what the difficulty rule requires.
    #[error("bad-diffbits: incorrect proof of work (bits {got:#010x}, expected {expected:#010x})")]
    BadDiffBits {
        /// The block's bits.
        got: u32,
        /// The rule's bits.
        expected: u32,
    },
    /// Time at or before the median of the last 11 blocks.
    #[error("time-too-old: block's timestamp {time} is not after median time past {median_time_past}")]
    TimeTooOld {
        /// The block's time.
        time: u32,
        /// Median time past of its parent.
        median_time_past: u32,
    },
    /// Time more than two hours ahead of the node's clock.
    #[error("time-too-new: block timestamp {time} too far in the future (now {now})")]
    TimeTooNew {
        /// The block's time.
        time: u32,
        /// The node's clock.
        now: i64,
    },
    /// BIP 94: the first block of a period earlier than its parent by more than 600 s.
    #[error("time-timewarp-attack: block's timestamp is too early on diff adjustment block")]
    TimewarpAttack,
    /// A version that a soft fork in force has retired.
    #[error("bad-version({0:#010x}): rejected nVersion={0:#010x} block")]
    BadVersion(i32),
    /// Merkle root mismatch.
    #[error("bad-txnmrklroot: hashMerkleRoot mismatch")]
    BadMerkleRoot,
    /// CVE-2012-2459: a transaction list that hashes to the same root as a shorter one.
    #[error("bad-txns-duplicate: duplicate transaction")]
    DuplicateTx,
    /// No transactions, or too many bytes before witness data.
    #[error("bad-blk-length: size limits failed")]
    BadLength,
    /// First transaction is not a coinbase.
    #[error("bad-cb-missing: first tx is not coinbase")]
    CoinbaseMissing,
    /// A coinbase after the first transaction.
    #[error("bad-cb-multiple: more than one coinbase")]
    CoinbaseMultiple,
    /// Too many sigops.
    #[error("bad-blk-sigops: out-of-bounds SigOpCount")]
    Sigops,
    /// A transaction not final at this height and time.
    #[error("bad-txns-nonfinal: non-final transaction {0}")]
    NonFinal(Txid),
    /// A transaction whose BIP 68 relative lock time is not met.
    #[error("bad-txns-nonfinal: contains a non-BIP68-final transaction {0}")]
    NonBip68Final(Txid),
    /// Coinbase does not start with the block height (BIP 34).
    #[error("bad-cb-height: block height mismatch in coinbase")]
    BadCoinbaseHeight,
    /// Coinbase witness is not a single 32-byte reserved value.
    #[error("bad-witness-nonce-size: invalid witness reserved value size")]
    BadWitnessNonceSize,
    /// The witness commitment does not match the transactions.
    #[error("bad-witness-merkle-match: witness merkle commitment mismatch")]
    BadWitnessMerkleMatch,
    /// Witness data in a block without a commitment.
    #[error("unexpected-witness: unexpected witness data found")]
    UnexpectedWitness,
    /// Weight above the limit.
    #[error("bad-blk-weight: weight limit failed")]
    BadWeight,
    /// Coinbase pays more than subsidy plus fees.
    #[error("bad-cb-amount: coinbase pays too much (actual={actual} vs limit={limit})")]
    BadCoinbaseAmount {
        /// What the coinbase pays, in satoshis.
        actual: u64,
        /// Subsidy plus fees, in satoshis.
        limit: u64,
    },
    /// BIP 30: a transaction would overwrite an unspent output.
    #[error("bad-txns-BIP30: tried to overwrite transaction")]
    Bip30,
    /// A transaction breaks a context-free rule (`CheckTransaction`).
    #[error("{reason}: transaction {txid} check failed")]
    TxCheck {
        /// The transaction.
        txid: Txid,
        /// Core's reject reason.
        reason: &'static str,
    },
    /// A transaction's inputs break a rule (`CheckTxInputs`).
    #[error("{reason}: transaction {txid} input check failed")]
    TxInputs {
        /// The transaction.
        txid: Txid,
        /// Core's reject reason.
        reason: &'static str,
    },
    /// An input's script fails.
    #[error("block-script-verify-flag-failed ({error}): input {input} of {txid}")]
    Script {
        /// The transaction.
        txid: Txid,
        /// The input's index.
        input: usize,
        /// The interpreter's error.
        error: satpool_consensus::ScriptError,
    },
}

impl BlockError {
    /// Bitcoin Core's reject reason for this failure.
    pub fn reject_reason(&self) -> String {
        match self {
            BlockError::HighHash => "high-hash".into(),
            BlockError::BadDiffBits { .. } => "bad-diffbits".into(),
            BlockError::TimeTooOld { .. } => "time-too-old".into(),
            BlockError::TimeTooNew { .. } => "time-too-new".into(),
            BlockError::TimewarpAttack => "time-timewarp-attack".into(),
            BlockError::BadVersion(v) => format!("bad-version(0x{:08x})", *v as u32),
            BlockError::BadMerkleRoot => "bad-txnmrklroot".into(),
            BlockError::DuplicateTx => "bad-txns-duplicate".into(),
            BlockError::BadLength => "bad-blk-length".into(),
            BlockError::CoinbaseMissing => "bad-cb-missing".into(),
            BlockError::CoinbaseMultiple => "bad-cb-multiple".into(),
            BlockError::Sigops => "bad-blk-sigops".into(),
            BlockError::NonFinal(_) | BlockError::NonBip68Final(_) => "bad-txns-nonfinal".into(),
            BlockError::BadCoinbaseHeight => "bad-cb-height".into(),
            BlockError::BadWitnessNonceSize => "bad-witness-nonce-size".into(),
            BlockError::BadWitnessMerkleMatch => "bad-witness-merkle-match".into(),
            BlockError::UnexpectedWitness => "unexpected-witness".into(),
            BlockError::BadWeight => "bad-blk-weight".into(),
            BlockError::BadCoinbaseAmount { .. } => "bad-cb-amount".into(),
            BlockError::Bip30 => "bad-txns-BIP30".into(),
            BlockError::TxCheck { reason, .. } | BlockError::TxInputs { reason, .. } => (*reason).into(),
            BlockError::Script { error, .. } => format!("block-script-verify-flag-failed ({error})"),
        }
    }

    /// Whether the failure could be the fault of a corrupted copy of a valid
    /// block (a mutated transaction list or witness) rather than of the block
    /// itself. Such a block must not be marked permanently invalid, since the
    /// genuine block with the same header may still arrive.
    pub fn may_be_mutation(&self) -> bool {
        matches!(
            self,
            BlockError::BadMerkleRoot
                | BlockError::DuplicateTx
                | BlockError::BadWitnessNonceSize
                | BlockError::BadWitnessMerkleMatch
                | BlockError::UnexpectedWitness
        )
    }
}
