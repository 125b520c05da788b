//! Block templates: which mempool transactions go into the next block, in
//! which order, as Bitcoin Core's `BlockAssembler` chooses them.
//!
//! What it is: a pure, synchronous selection ([`select`]) over a snapshot of
//! the mempool given as [`Candidate`]s. Transactions are taken by the fee
//! rate of their *ancestor package* (the transaction with every in-mempool
//! ancestor not yet chosen), so a child paying for a low-fee parent brings
//! the parent in with it (Core's `addPackageTxs`); parents always come before
//! children; the weight and sigop budgets leave Core's reservation for the
//! coinbase; selection stops at Core's minimum block fee rate, or after
//! repeated failures once the block is nearly full.
//!
//! What it is not: the mempool itself, the coinbase, the header, or the JSON
//! of `getblocktemplate` (see `rpc::mining`). No clock, no lock, no I/O.

mod select;

use std::sync::Arc;

use bitcoin::{Amount, SignedAmount, Transaction, Txid, Wtxid};

use crate::mempool::{Mempool, MempoolEntry};

pub use select::select;

/// Core's `DEFAULT_BLOCK_RESERVED_WEIGHT` (v29): weight kept free for the
/// header, the transaction count and the coinbase.
pub const DEFAULT_BLOCK_RESERVED_WEIGHT: u64 = 8_000;
/// Core's `DEFAULT_COINBASE_OUTPUT_MAX_ADDITIONAL_SIGOPS`: sigop cost kept
/// free for the coinbase's outputs.
pub const DEFAULT_COINBASE_RESERVED_SIGOPS: u64 = 400;
/// Core's `DEFAULT_BLOCK_MIN_TX_FEE` (v29 and earlier; v30 lowered it to 1),
/// in satoshis per 1,000 virtual bytes.
pub const DEFAULT_BLOCK_MIN_TX_FEE: u64 = 1_000;
/// Core's `DEFAULT_BYTES_PER_SIGOP`: how much virtual size one sigop costs.
pub const DEFAULT_BYTES_PER_SIGOP: u64 = 20;

/// One mempool transaction offered to the selection, with what the mempool
/// knows of it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// The fee it pays (inputs less outputs): what the coinbase may claim.
    pub fee: Amount,
    /// The fee the selection ranks it by: `fee` plus any
    /// `prioritisetransaction` delta (Core's modified fee).
    pub modified_fee: SignedAmount,
    /// Its weight (BIP 141).
    pub weight: u64,
    /// Its sigop cost (legacy, P2SH and witness sigops, BIP 141).
    pub sigop_cost: u64,
    /// The txids of its parents that are in the mempool too (not those it
    /// spends from the UTXO set).
    pub parents: Vec<Txid>,
}

impl Candidate {
    /// The candidate a mempool entry offers.
    pub fn from_entry(entry: &MempoolEntry) -> Candidate {
        Candidate {
            txid: entry.txid(),
            wtxid: entry.wtxid(),
            tx: entry.tx().clone(),
            fee: entry.fee(),
            modified_fee: SignedAmount::from_sat(entry.modified_fee()),
            weight: entry.weight(),
            sigop_cost: entry.sigop_cost() as u64,
            parents: entry.parents().copied().collect(),
        }
    }

    /// Every transaction of `mempool` as a candidate, with the mempool's
    /// sequence number at that moment.
    pub fn from_mempool(mempool: &Mempool) -> (Vec<Candidate>, u64) {
        (mempool.entries().map(Candidate::from_entry).collect(), mempool.sequence())
    }

    /// Core's virtual size (`GetVirtualTransactionSize`): the weight, or the
    /// sigop cost times [`DEFAULT_BYTES_PER_SIGOP`] if larger, divided by four
    /// and rounded up; at least 1.
    pub fn vsize(&self) -> u64 {
        virtual_size(self.weight, self.sigop_cost)
    }
}

/// Core's `GetVirtualTransactionSize` with the default bytes per sigop, at least 1.
pub fn virtual_size(weight: u64, sigop_cost: u64) -> u64 {
    weight.max(sigop_cost.saturating_mul(DEFAULT_BYTES_PER_SIGOP)).div_ceil(4).max(1)
}

/// A fee rate in satoshis per 1,000 virtual bytes, as Core's `CFeeRate`
/// (`-blockmintxfee` is given in this unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeeRatePerKvb(pub u64);

impl FeeRatePerKvb {
    /// Core's `CFeeRate::GetFee`: the fee for `vsize` virtual bytes, rounded
    /// up, and at least one satoshi for a non-zero rate and size.
    pub fn fee_for(self, vsize: u64) -> i64 {
        let fee = u128::from(self.0) * u128::from(vsize);
        let fee = i64::try_from(fee.div_ceil(1000)).unwrap_or(i64::MAX);
        if fee == 0 && self.0 > 0 && vsize > 0 {
            1
        } else {
            fee
        }
    }
}

/// What limits the selection, and the block it is for.
#[derive(Debug, Clone)]
pub struct SelectionOptions {
    /// Largest block weight to build (Core's `-blockmaxweight`, 4,000,000).
    pub max_weight: u64,
    /// Weight reserved for the header and the coinbase (Core's
    /// `-blockreservedweight`, [`DEFAULT_BLOCK_RESERVED_WEIGHT`]).
    pub reserved_weight: u64,
    /// Largest block sigop cost (80,000, BIP 141).
    pub max_sigop_cost: u64,
    /// Sigop cost reserved for the coinbase ([`DEFAULT_COINBASE_RESERVED_SIGOPS`]).
    pub reserved_sigop_cost: u64,
    /// Packages paying less than this are left out (Core's `-blockmintxfee`).
    pub min_fee_rate: FeeRatePerKvb,
    /// Height of the block being built (for lock-time finality).
    pub height: u32,
    /// Its lock-time cutoff: the parent's median time past under BIP 113.
    pub lock_time_cutoff: u32,
}

impl SelectionOptions {
    /// Core's defaults for a block at `height` with lock-time cutoff `lock_time_cutoff`.
    pub fn new(height: u32, lock_time_cutoff: u32) -> SelectionOptions {
        SelectionOptions {
            max_weight: crate::validation::MAX_BLOCK_WEIGHT,
            reserved_weight: DEFAULT_BLOCK_RESERVED_WEIGHT,
            max_sigop_cost: crate::validation::MAX_BLOCK_SIGOPS_COST as u64,
            reserved_sigop_cost: DEFAULT_COINBASE_RESERVED_SIGOPS,
            min_fee_rate: FeeRatePerKvb(DEFAULT_BLOCK_MIN_TX_FEE),
            height,
            lock_time_cutoff,
        }
    }
}

/// A transaction chosen for the block.
#[derive(Debug, Clone)]
pub struct SelectedTx {
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Its fee (not the modified fee): what it adds to the coinbase.
    pub fee: Amount,
    /// Its sigop cost.
    pub sigop_cost: u64,
    /// Its weight.
    pub weight: u64,
    /// 1-based positions, in the template's transaction list, of the
    /// transactions whose outputs it spends, one per such input (Core's
    /// `depends`: position 0 is the coinbase).
    pub depends: Vec<usize>,
}

/// The outcome of [`select`].
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The chosen transactions in block order (parents first).
    pub transactions: Vec<SelectedTx>,
    /// Sum of their fees.
    pub fees: Amount,
    /// The block's weight as Core counts it: the reservation plus the
    /// transactions' weights (Core's `currentblockweight`).
    pub block_weight: u64,
    /// The block's sigop cost, the coinbase reservation included.
    pub block_sigop_cost: u64,
    /// Packages chosen.
    pub packages: usize,
    /// Candidates left out because the snapshot was inconsistent: a
    /// duplicate txid, a parent missing from the snapshot, or a cycle (and
    /// their descendants). Always zero for a consistent mempool.
    pub inconsistent: usize,
}

#[cfg(test)]
mod tests;
