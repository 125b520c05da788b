//! The memory pool: unconfirmed transactions that are valid against the
//! tip and meet the relay policy, waiting for a block (Core's `CTxMemPool`
//! and `MemPoolAccept`).
//!
//! What it is: acceptance in Core's order (`AcceptToMemoryPool`) with Core's
//! reject reasons, standardness ([`policy`]), the graph of in-mempool
//! parents and children with Core's package limits, full replace-by-fee
//! ([`replacement`]), the size limit with eviction by descendant fee rate and
//! a rising minimum fee, expiry, prioritisation, and removal as blocks
//! connect or disconnect. It is synchronous and does no I/O (saving and
//! loading the pool live in [`persist`]): the chain comes in through
//! [`ChainView`] and the time as an argument.
//!
//! What it is not: relay to peers, package relay (TRUC topology rules,
//! ephemeral dust, CPFP carve-out), or fee estimation.

pub mod follow;
mod graph;
pub mod persist;
pub mod policy;
pub mod replacement;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid, Wtxid};
use satpool_consensus::{PrecomputedTx, VerifyFlags};

pub use graph::PackageStats;
pub use policy::FeeRate;

use crate::chain::{ChainError, Chainstate};
use crate::utxo::Coin;

/// The height Core gives coins created by mempool transactions.
pub const MEMPOOL_HEIGHT: u32 = 0x7FFF_FFFF;
/// Default size limit in MB (`-maxmempool`).
pub const DEFAULT_MAX_MEMPOOL_MB: usize = 300;
/// Default hours a transaction may wait (`-mempoolexpiry`).
pub const DEFAULT_MEMPOOL_EXPIRY_HOURS: i64 = 336;
/// Default limit on in-mempool ancestors, the transaction included.
pub const DEFAULT_ANCESTOR_LIMIT: usize = 25;
/// Default limit on the virtual size of a transaction with its ancestors.
pub const DEFAULT_ANCESTOR_SIZE_LIMIT_KVB: u64 = 101;
/// Default limit on in-mempool descendants, the transaction included.
pub const DEFAULT_DESCENDANT_LIMIT: usize = 25;
/// Default limit on the virtual size of a transaction with its descendants.
pub const DEFAULT_DESCENDANT_SIZE_LIMIT_KVB: u64 = 101;
/// Half-life of the rising minimum fee after a block (`ROLLING_FEE_HALFLIFE`).
const ROLLING_FEE_HALFLIFE: i64 = 12 * 60 * 60;

/// The pool's policy settings (Core's `MemPoolOptions`).
#[derive(Debug, Clone)]
pub struct MempoolConfig {
    /// Size limit in bytes of memory (`-maxmempool`, in MB there).
    pub max_size_bytes: usize,
    /// Seconds after which a transaction is dropped (`-mempoolexpiry`).
    pub expiry_secs: i64,
    /// Lowest fee rate relayed (`-minrelaytxfee`).
    pub min_relay_fee: FeeRate,
    /// Fee rate a replacement or the rising minimum adds (`-incrementalrelayfee`).
    pub incremental_relay_fee: FeeRate,
    /// Standardness settings.
    pub standardness: policy::StandardnessConfig,
    /// Apply the standardness rules (`-acceptnonstdtxn=0`).
    pub require_standard: bool,
    /// Replace without BIP 125 signalling (`-mempoolfullrbf`, on in current Core).
    pub full_rbf: bool,
    /// `-limitancestorcount`.
    pub ancestor_count: usize,
    /// `-limitancestorsize`, in virtual bytes.
    pub ancestor_size_vbytes: u64,
    /// `-limitdescendantcount`.
    pub descendant_count: usize,
    /// `-limitdescendantsize`, in virtual bytes.
    pub descendant_size_vbytes: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_size_bytes: DEFAULT_MAX_MEMPOOL_MB * 1_000_000,
            expiry_secs: DEFAULT_MEMPOOL_EXPIRY_HOURS * 60 * 60,
            min_relay_fee: FeeRate::DEFAULT_MIN_RELAY,
            incremental_relay_fee: FeeRate::DEFAULT_INCREMENTAL_RELAY,
            standardness: policy::StandardnessConfig::default(),
            require_standard: true,
            full_rbf: true,
            ancestor_count: DEFAULT_ANCESTOR_LIMIT,
            ancestor_size_vbytes: DEFAULT_ANCESTOR_SIZE_LIMIT_KVB * 1000,
            descendant_count: DEFAULT_DESCENDANT_LIMIT,
            descendant_size_vbytes: DEFAULT_DESCENDANT_SIZE_LIMIT_KVB * 1000,
        }
    }
}

/// What the pool needs to know of the active chain.
pub trait ChainView {
    /// The unspent output at `outpoint` in the chain's UTXO set.
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ChainError>;
    /// Height of the tip; the next block is one higher.
    fn tip_height(&self) -> u32;
    /// Median time past of the tip (the lock-time cutoff of the next block).
    fn tip_median_time_past(&self) -> u32;
    /// Median time past of the active block at `height` (at most the tip's).
    fn median_time_past_at(&self, height: u32) -> u32;
    /// Blocks a coinbase output must wait.
    fn coinbase_maturity(&self) -> u32;
}

impl ChainView for Chainstate {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ChainError> {
        Chainstate::coin(self, outpoint)
    }

    fn tip_height(&self) -> u32 {
        self.tip().height
    }

    fn tip_median_time_past(&self) -> u32 {
        Chainstate::tip_median_time_past(self)
    }

    fn median_time_past_at(&self, height: u32) -> u32 {
        match self.index().active_hash(height) {
            Some(hash) => self.index().median_time_past(&hash),
            None => Chainstate::tip_median_time_past(self),
        }
    }

    fn coinbase_maturity(&self) -> u32 {
        self.params().coinbase_maturity
    }
}

/// Core's `TxValidationResult`: the class of a rejection, which decides
/// the RPC error code and whether a peer is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectClass {
    /// Breaks a consensus rule.
    Consensus,
    /// Breaks a standardness rule.
    NotStandard,
    /// Spends a non-standard output.
    InputsNotStandard,
    /// Carries non-standard witness data.
    WitnessMutated,
    /// Spends an output that is neither in the UTXO set nor in the pool.
    MissingInputs,
    /// Not final in the next block (lock time or BIP 68).
    PrematureSpend,
    /// Already known, or conflicts in a way replacement cannot resolve.
    Conflict,
    /// Breaks a pool policy (limits, replacement rules).
    MempoolPolicy,
    /// Pays too little now; might pass later or in a package.
    Reconsiderable,
    /// Its outputs are already in the UTXO set (Core's `ALREADY_IN_UTXO_SET`,
    /// found before acceptance by `sendrawtransaction`).
    AlreadyInChain,
}

/// A rejected transaction, as Core's `TxValidationState`: a class, the
/// reject reason and an optional debug message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxReject {
    /// The class.
    pub class: RejectClass,
    /// Core's reject reason (`min relay fee not met`).
    pub reason: String,
    /// Core's debug message, if any.
    pub details: Option<String>,
}

impl TxReject {
    /// A rejection.
    pub fn new(class: RejectClass, reason: impl Into<String>, details: Option<String>) -> TxReject {
        TxReject { class, reason: reason.into(), details }
    }
}

impl fmt::Display for TxReject {
    /// Core's `ValidationState::ToString`: `reason, details`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.details {
            Some(d) => write!(f, "{}, {d}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for TxReject {}

/// Why a transaction did not enter the pool.
#[derive(Debug, thiserror::Error)]
pub enum MempoolReject {
    /// The transaction broke a rule.
    #[error(transparent)]
    Invalid(#[from] TxReject),
    /// Reading the chainstate failed; the transaction's fault is unknown.
    #[error("while reading the chainstate: {0}")]
    Chain(#[from] ChainError),
}

impl MempoolReject {
    /// Core's reject reason; `None` for a chainstate failure.
    pub fn reason(&self) -> Option<&str> {
        match self {
            MempoolReject::Invalid(r) => Some(&r.reason),
            MempoolReject::Chain(_) => None,
        }
    }

    /// The rejection, when the transaction is at fault.
    pub fn as_invalid(&self) -> Option<&TxReject> {
        match self {
            MempoolReject::Invalid(r) => Some(r),
            MempoolReject::Chain(_) => None,
        }
    }
}

fn reject(class: RejectClass, reason: &str) -> MempoolReject {
    MempoolReject::Invalid(TxReject::new(class, reason, None))
}

fn reject_with(class: RejectClass, reason: &str, details: String) -> MempoolReject {
    MempoolReject::Invalid(TxReject::new(class, reason, Some(details)))
}

/// A transaction in the pool.
#[derive(Debug, Clone)]
pub struct MempoolEntry {
    tx: Arc<Transaction>,
    txid: Txid,
    wtxid: Wtxid,
    fee: Amount,
    fee_delta: i64,
    weight: u64,
    vsize: u64,
    sigop_cost: usize,
    time: i64,
    height: u32,
    spends_coinbase: bool,
    usage: usize,
    parents: BTreeSet<Txid>,
    children: BTreeSet<Txid>,
}

impl MempoolEntry {
    /// The transaction.
    pub fn tx(&self) -> &Arc<Transaction> {
        &self.tx
    }

    /// Its txid.
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// Its witness txid.
    pub fn wtxid(&self) -> Wtxid {
        self.wtxid
    }

    /// The fee it pays (inputs less outputs).
    pub fn fee(&self) -> Amount {
        self.fee
    }

    /// The fee with `prioritisetransaction`'s delta, in satoshis (may be
    /// negative); what mining and eviction go by.
    pub fn modified_fee(&self) -> i64 {
        self.fee.to_sat() as i64 + self.fee_delta
    }

    /// The delta `prioritisetransaction` added, in satoshis.
    pub fn fee_delta(&self) -> i64 {
        self.fee_delta
    }

    /// Weight units (BIP 141).
    pub fn weight(&self) -> u64 {
        self.weight
    }

    /// Virtual size as policy counts it: weight or sigop cost times 20,
    /// whichever is more, over four (Core's `GetTxSize`).
    pub fn vsize(&self) -> u64 {
        self.vsize
    }

    /// Sigop cost (BIP 141 units).
    pub fn sigop_cost(&self) -> usize {
        self.sigop_cost
    }

    /// Unix time it entered the pool.
    pub fn time(&self) -> i64 {
        self.time
    }

    /// Tip height when it entered the pool.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Whether it spends a coinbase output.
    pub fn spends_coinbase(&self) -> bool {
        self.spends_coinbase
    }

    /// The in-mempool transactions it spends outputs of.
    pub fn parents(&self) -> impl ExactSizeIterator<Item = &Txid> {
        self.parents.iter()
    }

    /// The in-mempool transactions that spend its outputs.
    pub fn children(&self) -> impl ExactSizeIterator<Item = &Txid> {
        self.children.iter()
    }
}

/// How to accept a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptOptions {
    /// Check everything but add nothing (`testmempoolaccept`).
    pub test_only: bool,
    /// Skip the fee floors and the size limit (re-adding transactions from
    /// disconnected blocks).
    pub bypass_limits: bool,
    /// Allow replacing conflicting transactions.
    pub allow_replacement: bool,
    /// The entry time to record, if not now (loading a saved pool).
    pub time: Option<i64>,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        AcceptOptions { test_only: false, bypass_limits: false, allow_replacement: true, time: None }
    }
}

/// A transaction that passed (or, under `test_only`, would pass).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its txid.
    pub txid: Txid,
    /// Its witness txid.
    pub wtxid: Wtxid,
    /// Its policy virtual size.
    pub vsize: u64,
    /// Its fee.
    pub fee: Amount,
    /// Its modified fee, in satoshis.
    pub modified_fee: i64,
    /// The fee rate it was judged by (Core's `m_effective_feerate`).
    pub effective_fee_rate: FeeRate,
    /// What it replaced (nothing under `test_only`).
    pub replaced: Vec<Arc<Transaction>>,
}

/// A transaction that passed the checks, ready to go in.
struct Candidate {
    entry: MempoolEntry,
    replaced: BTreeSet<Txid>,
}

/// Summary numbers of the pool (`getmempoolinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolInfo {
    /// Transactions.
    pub size: usize,
    /// Sum of virtual sizes.
    pub bytes: u64,
    /// Estimated memory use in bytes.
    pub usage: usize,
    /// Sum of fees (not modified).
    pub total_fee: Amount,
}

/// The memory pool.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Txid, MempoolEntry>,
    by_wtxid: HashMap<Wtxid, Txid>,
    /// Which entry spends each outpoint (Core's `mapNextTx`).
    spenders: HashMap<OutPoint, Txid>,
    /// `prioritisetransaction` deltas, also for transactions not (yet) here.
    deltas: HashMap<Txid, i64>,
    /// Transactions submitted here and not yet seen relayed.
    unbroadcast: HashSet<Txid>,
    total_vsize: u64,
    total_fee: Amount,
    usage: usize,
    sequence: u64,
    /// The rising minimum fee in sat/kvB. A rate that decays continuously
    /// (halved every twelve hours), as Core keeps it; it only becomes an
    /// amount through [`FeeRate`], rounded.
    rolling_min_fee: f64,
    last_rolling_update: i64,
    block_since_bump: bool,
    loaded: bool,
}

impl Default for Mempool {
    fn default() -> Self {
        Mempool::new(MempoolConfig::default())
    }
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Mempool {
        Mempool {
            config,
            entries: HashMap::new(),
            by_wtxid: HashMap::new(),
            spenders: HashMap::new(),
            deltas: HashMap::new(),
            unbroadcast: HashSet::new(),
            total_vsize: 0,
            total_fee: Amount::ZERO,
            usage: 0,
            sequence: 0,
            rolling_min_fee: 0.0,
            last_rolling_update: 0,
            block_since_bump: false,
            loaded: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// The number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An entry by txid.
    pub fn get(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// An entry by witness txid.
    pub fn get_by_wtxid(&self, wtxid: &Wtxid) -> Option<&MempoolEntry> {
        self.by_wtxid.get(wtxid).and_then(|t| self.entries.get(t))
    }

    /// Whether a transaction is here.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// Every entry, in no particular order. For block templates: each gives
    /// [`MempoolEntry::txid`], [`MempoolEntry::wtxid`], [`MempoolEntry::tx`],
    /// [`MempoolEntry::fee`], [`MempoolEntry::modified_fee`],
    /// [`MempoolEntry::weight`], [`MempoolEntry::sigop_cost`] and
    /// [`MempoolEntry::parents`].
    pub fn entries(&self) -> impl Iterator<Item = &MempoolEntry> {
        self.entries.values()
    }

    /// The in-mempool transaction that spends `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spenders.get(outpoint).copied()
    }

    /// The output `outpoint` of an in-mempool transaction.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.entries.get(&outpoint.txid).and_then(|e| e.tx.output.get(outpoint.vout as usize))
    }

    /// A counter that moves on every addition, removal and prioritisation
    /// (Core's `mempool_sequence` and `GetTransactionsUpdated` in one):
    /// block templates and long polls watch it.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Size, bytes, memory use and fees.
    pub fn info(&self) -> MempoolInfo {
        MempoolInfo { size: self.entries.len(), bytes: self.total_vsize, usage: self.usage, total_fee: self.total_fee }
    }

    /// Whether the saved pool has been loaded (`getmempoolinfo`'s `loaded`).
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Marks the saved pool as loaded (or found absent).
    pub fn set_loaded(&mut self) {
        self.loaded = true;
    }

    /// Transactions submitted locally and not yet seen relayed.
    pub fn unbroadcast(&self) -> &HashSet<Txid> {
        &self.unbroadcast
    }

    /// Records a local transaction as waiting to be broadcast.
    pub fn add_unbroadcast(&mut self, txid: Txid) {
        if self.entries.contains_key(&txid) {
            self.unbroadcast.insert(txid);
        }
    }

    /// Records that a peer has the transaction.
    pub fn remove_unbroadcast(&mut self, txid: &Txid) {
        self.unbroadcast.remove(txid);
    }

    /// The `prioritisetransaction` deltas in force, by txid.
    pub fn deltas(&self) -> &HashMap<Txid, i64> {
        &self.deltas
    }

    /// `prioritisetransaction`: adds `delta` satoshis to the fee the
    /// transaction is judged by, now or when it arrives.
    pub fn prioritise(&mut self, txid: Txid, delta: i64) {
        let total = {
            let d = self.deltas.entry(txid).or_insert(0);
            *d = d.saturating_add(delta);
            *d
        };
        if total == 0 {
            self.deltas.remove(&txid);
        }
        if let Some(entry) = self.entries.get_mut(&txid) {
            entry.fee_delta = total;
        }
        self.sequence += 1;
    }

    /// Whether `tx` or an in-mempool ancestor signals BIP 125 (the RPC's
    /// `bip125-replaceable`; with full RBF any transaction can be replaced).
    pub fn signals_replaceable(&self, txid: &Txid) -> bool {
        let Some(entry) = self.entries.get(txid) else { return false };
        policy::signals_rbf(&entry.tx)
            || self.ancestors(txid).iter().filter_map(|a| self.entries.get(a)).any(|e| policy::signals_rbf(&e.tx))
    }

    /// The fee rate below which transactions are refused because the pool
    /// was full (Core's `GetMinFee`), as of `now`; decays after blocks.
    pub fn min_fee(&mut self, now: i64) -> FeeRate {
        if !self.block_since_bump || self.rolling_min_fee == 0.0 {
            return FeeRate::from_sat_per_kvb(self.rolling_min_fee.round() as u64);
        }
        if now > self.last_rolling_update + 10 {
            let mut halflife = ROLLING_FEE_HALFLIFE as f64;
            if self.usage < self.config.max_size_bytes / 4 {
                halflife /= 4.0;
            } else if self.usage < self.config.max_size_bytes / 2 {
                halflife /= 2.0;
            }
            self.rolling_min_fee /= 2f64.powf((now - self.last_rolling_update) as f64 / halflife);
            self.last_rolling_update = now;
            if self.rolling_min_fee < self.config.incremental_relay_fee.sat_per_kvb() as f64 / 2.0 {
                self.rolling_min_fee = 0.0;
                return FeeRate::ZERO;
            }
        }
        FeeRate::from_sat_per_kvb(self.rolling_min_fee.round() as u64).max(self.config.incremental_relay_fee)
    }

    /// `AcceptToMemoryPool`: checks `tx` in Core's order against the chain
    /// and the pool, and adds it unless `options.test_only`.
    pub fn accept(
        &mut self,
        tx: Arc<Transaction>,
        chain: &dyn ChainView,
        now: i64,
        options: AcceptOptions,
    ) -> Result<Accepted, MempoolReject> {
        let min_fee = if options.bypass_limits { FeeRate::ZERO } else { self.min_fee(now) };
        let candidate = self.prepare(tx, chain, now, min_fee, options)?;
        let entry = &candidate.entry;
        let mut accepted = Accepted {
            txid: entry.txid,
            wtxid: entry.wtxid,
            vsize: entry.vsize,
            fee: entry.fee,
            modified_fee: entry.modified_fee(),
            effective_fee_rate: FeeRate::from_fee(entry.modified_fee(), entry.vsize),
            replaced: Vec::new(),
        };
        if options.test_only {
            return Ok(accepted);
        }
        let txid = entry.txid;
        for r in &candidate.replaced {
            if let Some(e) = self.remove_one(r) {
                tracing::debug!(replaced = %r, by = %txid, "replaced mempool transaction");
                accepted.replaced.push(e.tx);
            }
        }
        self.insert(candidate.entry);
        if !options.bypass_limits {
            self.limit_size(now);
            if !self.entries.contains_key(&txid) {
                return Err(reject(RejectClass::Reconsiderable, "mempool full"));
            }
        }
        Ok(accepted)
    }

    /// Core's `PreChecks`, `ReplacementChecks` and script checks.
    fn prepare(
        &self,
        tx: Arc<Transaction>,
        chain: &dyn ChainView,
        now: i64,
        min_fee: FeeRate,
        options: AcceptOptions,
    ) -> Result<Candidate, MempoolReject> {
        let config = &self.config;
        satpool_consensus::check_transaction(&tx).map_err(|e| reject(RejectClass::Consensus, e.reject_reason()))?;
        if tx.is_coinbase() {
            return Err(reject(RejectClass::Consensus, "coinbase"));
        }
        if config.require_standard {
            policy::check_standard(&tx, &config.standardness).map_err(|r| reject(RejectClass::NotStandard, r))?;
        }
        if tx.base_size() < policy::MIN_STANDARD_TX_NONWITNESS_SIZE {
            return Err(reject(RejectClass::NotStandard, "tx-size-small"));
        }
        let next_height = chain.tip_height() + 1;
        let tip_mtp = chain.tip_median_time_past();
        if !policy::is_final(&tx, next_height, tip_mtp) {
            return Err(reject(RejectClass::PrematureSpend, "non-final"));
        }
        let txid = tx.compute_txid();
        let wtxid = tx.compute_wtxid();
        if self.by_wtxid.contains_key(&wtxid) {
            return Err(reject(RejectClass::Conflict, "txn-already-in-mempool"));
        }
        if self.entries.contains_key(&txid) {
            return Err(reject(RejectClass::Conflict, "txn-same-nonwitness-data-in-mempool"));
        }

        let mut direct_conflicts = BTreeSet::new();
        for input in &tx.input {
            if let Some(conflict) = self.spenders.get(&input.previous_output) {
                if !options.allow_replacement {
                    return Err(reject_with(
                        RejectClass::MempoolPolicy,
                        "bip125-replacement-disallowed",
                        format!("replacement of {conflict} not allowed"),
                    ));
                }
                let replaceable = config.full_rbf || self.signals_replaceable(conflict);
                if !replaceable {
                    return Err(reject(RejectClass::MempoolPolicy, "txn-mempool-conflict"));
                }
                direct_conflicts.insert(*conflict);
            }
        }

        // The coins spent, from the pool or the chain.
        let mut spent = Vec::with_capacity(tx.input.len());
        let mut coin_heights = Vec::with_capacity(tx.input.len());
        let mut parents = BTreeSet::new();
        let mut spends_coinbase = false;
        let mut value_in = Amount::ZERO;
        let maturity = chain.coinbase_maturity();
        for input in &tx.input {
            let outpoint = input.previous_output;
            let coin = if let Some(output) = self.output(&outpoint) {
                parents.insert(outpoint.txid);
                Coin { output: output.clone(), height: MEMPOOL_HEIGHT, is_coinbase: false }
            } else if let Some(coin) = chain.coin(&outpoint)? {
                coin
            } else {
                for vout in 0..tx.output.len() as u32 {
                    if chain.coin(&OutPoint { txid, vout })?.is_some() {
                        return Err(reject(RejectClass::Conflict, "txn-already-known"));
                    }
                }
                return Err(reject(RejectClass::MissingInputs, "bad-txns-inputs-missingorspent"));
            };
            if coin.is_coinbase {
                spends_coinbase = true;
            }
            value_in = value_in
                .checked_add(coin.value())
                .filter(|v| *v <= Amount::MAX_MONEY && coin.value() <= Amount::MAX_MONEY)
                .ok_or_else(|| reject(RejectClass::Consensus, "bad-txns-inputvalues-outofrange"))?;
            coin_heights.push(coin.height);
            spent.push(coin);
        }

        let median_time_past_at = |h: u32| chain.median_time_past_at(h);
        let (min_height, min_time) =
            crate::validation::sequence_locks(&tx, &coin_heights, next_height, &median_time_past_at);
        if min_height >= i64::from(next_height) || min_time >= i64::from(tip_mtp) {
            return Err(reject(RejectClass::PrematureSpend, "non-BIP68-final"));
        }

        // Core's `Consensus::CheckTxInputs` at the next height.
        for coin in &spent {
            if coin.is_coinbase && next_height - coin.height < maturity {
                return Err(reject_with(
                    RejectClass::PrematureSpend,
                    "bad-txns-premature-spend-of-coinbase",
                    format!("tried to spend coinbase at depth {}", next_height - coin.height),
                ));
            }
        }
        let value_out = tx.output.iter().map(|o| o.value).sum::<Amount>();
        if value_in < value_out {
            return Err(reject_with(
                RejectClass::Consensus,
                "bad-txns-in-belowout",
                format!("value in ({}) < value out ({})", money(value_in), money(value_out)),
            ));
        }
        let fee = value_in - value_out;

        let spent_outputs: Vec<TxOut> = spent.into_iter().map(|c| c.output).collect();
        if config.require_standard && !policy::inputs_standard(&tx, &spent_outputs) {
            return Err(reject(RejectClass::InputsNotStandard, "bad-txns-nonstandard-inputs"));
        }
        if config.require_standard
            && tx.input.iter().any(|i| !i.witness.is_empty())
            && !policy::witness_standard(&tx, &spent_outputs)
        {
            return Err(reject(RejectClass::WitnessMutated, "bad-witness-nonstandard"));
        }
        let sigop_cost = satpool_consensus::transaction_sigop_cost(&tx, &spent_outputs, VerifyFlags::STANDARD);
        let weight = tx.weight().to_wu();
        let vsize = policy::virtual_size(weight, sigop_cost);
        let fee_delta = self.deltas.get(&txid).copied().unwrap_or(0);
        let modified_fee = fee.to_sat() as i64 + fee_delta;
        if sigop_cost > policy::MAX_STANDARD_TX_SIGOPS_COST {
            return Err(reject_with(RejectClass::NotStandard, "bad-txns-too-many-sigops", sigop_cost.to_string()));
        }

        if !options.bypass_limits {
            let pool_fee = min_fee.fee(vsize).to_sat() as i64;
            if pool_fee > 0 && modified_fee < pool_fee {
                return Err(reject_with(
                    RejectClass::Reconsiderable,
                    "mempool min fee not met",
                    format!("{modified_fee} < {pool_fee}"),
                ));
            }
            let relay_fee = config.min_relay_fee.fee(vsize).to_sat() as i64;
            if modified_fee < relay_fee {
                return Err(reject_with(
                    RejectClass::Reconsiderable,
                    "min relay fee not met",
                    format!("{modified_fee} < {relay_fee}"),
                ));
            }
        }

        let ancestors = self
            .ancestors_within_limits(&parents, vsize, config)
            .map_err(|d| reject_with(RejectClass::MempoolPolicy, "too-long-mempool-chain", d))?;
        if let Some(both) = direct_conflicts.iter().find(|c| ancestors.contains(*c)) {
            return Err(reject_with(
                RejectClass::Consensus,
                "bad-txns-spends-conflicting-tx",
                format!("{txid} spends conflicting transaction {both}"),
            ));
        }

        let replaced = if direct_conflicts.is_empty() {
            BTreeSet::new()
        } else {
            self.check_replacement(&tx, &txid, &direct_conflicts, modified_fee, vsize)?
        };

        check_scripts(&tx, &spent_outputs)?;

        let usage = entry_usage(&tx);
        let entry = MempoolEntry {
            tx,
            txid,
            wtxid,
            fee,
            fee_delta,
            weight,
            vsize,
            sigop_cost,
            time: options.time.unwrap_or(now),
            height: chain.tip_height(),
            spends_coinbase,
            usage,
            parents,
            children: BTreeSet::new(),
        };
        Ok(Candidate { entry, replaced })
    }

    /// Adds a checked entry, linking it to its parents and to any children
    /// already here (which happens when a block's transactions come back).
    fn insert(&mut self, mut entry: MempoolEntry) {
        let txid = entry.txid;
        entry.parents =
            entry.tx.input.iter().map(|i| i.previous_output.txid).filter(|p| self.entries.contains_key(p)).collect();
        for vout in 0..entry.tx.output.len() as u32 {
            if let Some(child) = self.spenders.get(&OutPoint { txid, vout }) {
                entry.children.insert(*child);
            }
        }
        for p in &entry.parents {
            if let Some(parent) = self.entries.get_mut(p) {
                parent.children.insert(txid);
            }
        }
        for c in &entry.children {
            if let Some(child) = self.entries.get_mut(c) {
                child.parents.insert(txid);
            }
        }
        for input in &entry.tx.input {
            self.spenders.insert(input.previous_output, txid);
        }
        self.by_wtxid.insert(entry.wtxid, txid);
        self.total_vsize += entry.vsize;
        self.total_fee += entry.fee;
        self.usage += entry.usage;
        self.sequence += 1;
        self.entries.insert(txid, entry);
    }

    /// Removes one entry, leaving its descendants (callers remove those
    /// first or want them kept, as when its block connects).
    fn remove_one(&mut self, txid: &Txid) -> Option<MempoolEntry> {
        let entry = self.entries.remove(txid)?;
        for p in &entry.parents {
            if let Some(parent) = self.entries.get_mut(p) {
                parent.children.remove(txid);
            }
        }
        for c in &entry.children {
            if let Some(child) = self.entries.get_mut(c) {
                child.parents.remove(txid);
            }
        }
        for input in &entry.tx.input {
            if self.spenders.get(&input.previous_output) == Some(txid) {
                self.spenders.remove(&input.previous_output);
            }
        }
        self.by_wtxid.remove(&entry.wtxid);
        self.unbroadcast.remove(txid);
        self.total_vsize -= entry.vsize;
        self.total_fee -= entry.fee;
        self.usage -= entry.usage;
        self.sequence += 1;
        Some(entry)
    }

    /// Removes `txid` and all its descendants; returns what was removed.
    pub fn remove_recursive(&mut self, txid: &Txid) -> Vec<Arc<Transaction>> {
        if !self.entries.contains_key(txid) {
            return Vec::new();
        }
        let mut doomed: Vec<Txid> = self.descendants(txid).into_iter().collect();
        doomed.push(*txid);
        doomed.into_iter().filter_map(|t| self.remove_one(&t)).map(|e| e.tx).collect()
    }

    /// Core's `removeForBlock`: drops the block's transactions (their
    /// children stay, now spending confirmed outputs) and everything that
    /// conflicts with them, with descendants; resets the rising minimum
    /// fee's clock.
    pub fn remove_for_block(&mut self, txdata: &[Transaction], now: i64) {
        for tx in txdata.iter().filter(|tx| !tx.is_coinbase()) {
            let txid = tx.compute_txid();
            self.remove_one(&txid);
            for input in &tx.input {
                if let Some(conflict) = self.spenders.get(&input.previous_output).copied() {
                    if conflict != txid {
                        let removed = self.remove_recursive(&conflict);
                        tracing::debug!(%conflict, block_tx = %txid, removed = removed.len(), "removed conflicting transaction");
                    }
                }
            }
            self.deltas.remove(&txid);
        }
        self.last_rolling_update = now;
        self.block_since_bump = true;
    }

    /// Core's `removeForReorg`: after the tip went back, drops what can no
    /// longer be mined in the next block (non-final, BIP 68 locks unmet,
    /// spending an immature coinbase or a coin that is gone), with
    /// descendants.
    pub fn remove_for_reorg(&mut self, chain: &dyn ChainView) -> Result<usize, ChainError> {
        let next_height = chain.tip_height() + 1;
        let tip_mtp = chain.tip_median_time_past();
        let maturity = chain.coinbase_maturity();
        let mut doomed = Vec::new();
        for entry in self.entries.values() {
            let tx = &entry.tx;
            let mut ok = policy::is_final(tx, next_height, tip_mtp);
            let mut heights = Vec::with_capacity(tx.input.len());
            for input in &tx.input {
                if !ok {
                    break;
                }
                if self.entries.contains_key(&input.previous_output.txid) {
                    heights.push(MEMPOOL_HEIGHT);
                    continue;
                }
                match chain.coin(&input.previous_output)? {
                    Some(coin) if coin.is_coinbase && next_height - coin.height < maturity => ok = false,
                    Some(coin) => heights.push(coin.height),
                    None => ok = false,
                }
            }
            if ok {
                let mtp_at = |h: u32| chain.median_time_past_at(h);
                let (min_height, min_time) = crate::validation::sequence_locks(tx, &heights, next_height, &mtp_at);
                ok = min_height < i64::from(next_height) && min_time < i64::from(tip_mtp);
            }
            if !ok {
                doomed.push(entry.txid);
            }
        }
        let mut removed = 0;
        for txid in doomed {
            removed += self.remove_recursive(&txid).len();
        }
        Ok(removed)
    }

    /// Core's `LimitMempoolSize`: expiry, then eviction down to the size
    /// limit.
    pub fn limit_size(&mut self, now: i64) {
        let expired = self.expire(now - self.config.expiry_secs);
        if expired > 0 {
            tracing::debug!(expired, "expired mempool transactions");
        }
        self.trim_to_size(self.config.max_size_bytes);
    }

    /// Core's `Expire`: removes what entered before `cutoff`, with
    /// descendants; returns how many went.
    pub fn expire(&mut self, cutoff: i64) -> usize {
        let old: Vec<Txid> = self.entries.values().filter(|e| e.time < cutoff).map(|e| e.txid).collect();
        old.iter().map(|t| self.remove_recursive(t).len()).sum()
    }

    /// Core's `TrimToSize`: while over `limit` bytes, evicts the entry with
    /// the lowest descendant score (its descendant package's fee rate, or its
    /// own if higher) with its descendants, and raises the minimum fee to
    /// that package's rate plus the incremental relay fee.
    pub fn trim_to_size(&mut self, limit: usize) {
        while self.usage > limit {
            let victim = self
                .entries
                .values()
                .map(|e| {
                    let package = self.descendant_stats(&e.txid);
                    let package_rate = FeeRate::from_fee(package.fees, package.vsize);
                    let own = FeeRate::from_fee(e.modified_fee(), e.vsize);
                    (package_rate.max(own), package_rate, e.txid)
                })
                .min();
            let Some((_, package_rate, txid)) = victim else { break };
            let removed =
                package_rate.sat_per_kvb().saturating_add(self.config.incremental_relay_fee.sat_per_kvb()) as f64;
            if removed > self.rolling_min_fee {
                self.rolling_min_fee = removed;
                self.block_since_bump = false;
            }
            let gone = self.remove_recursive(&txid);
            tracing::debug!(%txid, evicted = gone.len(), "mempool full: evicted");
        }
    }
}

/// Core's `PolicyScriptChecks`: every input under the standard flags; a
/// failure that the consensus flags alone do not reproduce is a policy
/// failure.
fn check_scripts(tx: &Transaction, spent_outputs: &[TxOut]) -> Result<(), MempoolReject> {
    let pre = PrecomputedTx::new(tx, spent_outputs).expect("one spent output was collected per input");
    for i in 0..tx.input.len() {
        if let Err(error) = satpool_consensus::verify_input(&pre, i, VerifyFlags::STANDARD) {
            if satpool_consensus::verify_input(&pre, i, VerifyFlags::MANDATORY).is_ok() {
                return Err(reject(RejectClass::NotStandard, &format!("mempool-script-verify-flag-failed ({error})")));
            }
            return Err(reject(RejectClass::Consensus, &format!("mandatory-script-verify-flag-failed ({error})")));
        }
    }
    Ok(())
}

/// An estimate of the memory an entry takes: the transaction's heap
/// (scripts, witnesses, vectors) and the entry with its index slots.
fn entry_usage(tx: &Transaction) -> usize {
    const ENTRY_OVERHEAD: usize = 400;
    const PER_INPUT: usize = 120;
    const PER_OUTPUT: usize = 64;
    ENTRY_OVERHEAD + tx.total_size() + PER_INPUT * tx.input.len() + PER_OUTPUT * tx.output.len()
}

fn money(amount: Amount) -> String {
    policy::format_money(amount.to_sat() as i64)
}
