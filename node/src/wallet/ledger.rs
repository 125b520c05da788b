//! The wallet's state without storage: the scripts it watches (derived ahead
//! of use, the gap), its transactions with the blocks that hold them, and
//! what follows from them: unspent outputs and balances. Pure; the shell in
//! `wallet/mod.rs` persists every change it reports.

use std::collections::{BTreeMap, HashMap};

use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Address, Amount, Block, BlockHash, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use serde::{Deserialize, Serialize};

use super::keys::{Accounts, AddressType, KeyPath};

/// Confirmations a coinbase needs before the wallet spends it: Core's wallet
/// waits for 101 (`COINBASE_MATURITY + 1`), one more than consensus, so the
/// spend is valid in any block that could come next.
pub const COINBASE_MATURITY: u32 = 100;

/// Keys derived beyond the last one used or handed out on each chain, so that
/// payments to addresses derived ahead (by another copy of the wallet) are seen.
pub const GAP_LIMIT: u32 = 20;

/// The block a wallet transaction is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Its header's time.
    pub time: u32,
}

/// A transaction that pays or spends the wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletTx {
    /// The transaction.
    pub tx: Transaction,
    /// The active-chain block holding it; `None` while unconfirmed.
    pub block: Option<BlockRef>,
    /// Unix time the wallet first saw it.
    pub received: u64,
    /// A coinbase whose block left the active chain: it can never confirm
    /// again unless that block returns, and counts for nothing.
    pub abandoned: bool,
    /// `sendtoaddress`'s `comment`.
    pub comment: Option<String>,
    /// `sendtoaddress`'s `comment_to`.
    pub comment_to: Option<String>,
}

impl WalletTx {
    /// Confirmations at `tip_height`: 0 while unconfirmed.
    pub fn confirmations(&self, tip_height: u32) -> u32 {
        self.block.map_or(0, |b| tip_height.saturating_sub(b.height) + 1)
    }

    /// Whether it is a coinbase still short of [`COINBASE_MATURITY`] + 1 confirmations.
    pub fn is_immature(&self, tip_height: u32) -> bool {
        self.tx.is_coinbase() && self.confirmations(tip_height) <= COINBASE_MATURITY
    }
}

/// An output the wallet can spend (or will, once mature).
#[derive(Debug, Clone, PartialEq)]
pub struct Utxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// The output.
    pub txout: TxOut,
    /// The key that spends it.
    pub path: KeyPath,
    /// Confirmations of its transaction.
    pub confirmations: u32,
    /// From a coinbase.
    pub coinbase: bool,
    /// An immature coinbase output.
    pub immature: bool,
    /// Confirmed, or unconfirmed but wholly funded by this wallet (Core's `IsTrusted`).
    pub trusted: bool,
}

/// Core's `getbalances().mine`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balances {
    /// Spendable: confirmed, or unconfirmed and from the wallet itself.
    pub trusted: Amount,
    /// Unconfirmed payments from others.
    pub untrusted_pending: Amount,
    /// Coinbase outputs not yet mature.
    pub immature: Amount,
}

/// The wallet's watched scripts and transactions.
pub struct Ledger {
    network: bitcoin::Network,
    accounts: Accounts,
    secp: Secp256k1<All>,
    scripts: HashMap<ScriptBuf, KeyPath>,
    /// The next index to hand out on each (kind, internal) chain.
    next: BTreeMap<(AddressType, bool), u32>,
    /// Keys derived on each chain (indexes below this are watched).
    derived: BTreeMap<(AddressType, bool), u32>,
    txs: HashMap<Txid, WalletTx>,
    /// Which wallet transaction spends each outpoint.
    spenders: HashMap<OutPoint, Txid>,
}

impl Ledger {
    /// A ledger over `accounts` with the given next indexes (missing chains
    /// start at 0) and transactions.
    pub fn new(
        network: bitcoin::Network,
        accounts: Accounts,
        next: BTreeMap<(AddressType, bool), u32>,
        txs: impl IntoIterator<Item = WalletTx>,
    ) -> Ledger {
        let mut ledger = Ledger {
            network,
            accounts,
            secp: Secp256k1::new(),
            scripts: HashMap::new(),
            next,
            derived: BTreeMap::new(),
            txs: HashMap::new(),
            spenders: HashMap::new(),
        };
        ledger.top_up();
        for wtx in txs {
            ledger.index_tx(&wtx.tx);
            ledger.txs.insert(wtx.tx.compute_txid(), wtx);
        }
        ledger
    }

    /// The address network.
    pub fn network(&self) -> bitcoin::Network {
        self.network
    }

    /// The account xpubs.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The next indexes, for storage.
    pub fn next_indexes(&self) -> &BTreeMap<(AddressType, bool), u32> {
        &self.next
    }

    /// Hands out the next key on a chain; it is never handed out again.
    pub fn new_address(&mut self, kind: AddressType, internal: bool) -> (KeyPath, Address) {
        let slot = self.next.entry((kind, internal)).or_insert(0);
        let path = KeyPath { kind, internal, index: *slot };
        *slot += 1;
        self.top_up();
        (path, self.accounts.address(&self.secp, path, self.network))
    }

    /// The address of a key.
    pub fn address(&self, path: KeyPath) -> Address {
        self.accounts.address(&self.secp, path, self.network)
    }

    /// The key behind `script`, if it is one of the wallet's.
    pub fn is_mine(&self, script: &ScriptBuf) -> Option<KeyPath> {
        self.scripts.get(script).copied()
    }

    /// A wallet transaction.
    pub fn tx(&self, txid: &Txid) -> Option<&WalletTx> {
        self.txs.get(txid)
    }

    /// Every wallet transaction.
    pub fn txs(&self) -> impl Iterator<Item = &WalletTx> {
        self.txs.values()
    }

    /// Records a comment on a wallet transaction.
    pub fn set_comments(&mut self, txid: &Txid, comment: Option<String>, comment_to: Option<String>) {
        if let Some(wtx) = self.txs.get_mut(txid) {
            wtx.comment = comment;
            wtx.comment_to = comment_to;
        }
    }

    /// Derives keys until every chain has [`GAP_LIMIT`] beyond its next index.
    fn top_up(&mut self) {
        for kind in AddressType::ALL {
            for internal in [false, true] {
                let want = self.next.get(&(kind, internal)).copied().unwrap_or(0) + GAP_LIMIT;
                let have = self.derived.entry((kind, internal)).or_insert(0);
                while *have < want {
                    let path = KeyPath { kind, internal, index: *have };
                    self.scripts.insert(self.accounts.script(&self.secp, path, self.network), path);
                    *have += 1;
                }
            }
        }
    }

    /// A key seen on the chain is never handed out: the next index moves past it.
    fn mark_used(&mut self, path: KeyPath) -> bool {
        let slot = self.next.entry((path.kind, path.internal)).or_insert(0);
        if path.index >= *slot {
            *slot = path.index + 1;
            self.top_up();
            true
        } else {
            false
        }
    }

    fn index_tx(&mut self, tx: &Transaction) {
        if tx.is_coinbase() {
            return;
        }
        let txid = tx.compute_txid();
        for input in &tx.input {
            self.spenders.insert(input.previous_output, txid);
        }
    }

    /// The value of `outpoint` if it is a wallet output.
    fn my_output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        let wtx = self.txs.get(&outpoint.txid)?;
        let out = wtx.tx.output.get(usize::try_from(outpoint.vout).ok()?)?;
        self.scripts.contains_key(&out.script_pubkey).then_some(out)
    }

    /// Whether `tx` pays or spends the wallet.
    pub fn is_relevant(&self, tx: &Transaction) -> bool {
        tx.output.iter().any(|o| self.scripts.contains_key(&o.script_pubkey))
            || (!tx.is_coinbase() && tx.input.iter().any(|i| self.my_output(&i.previous_output).is_some()))
    }

    /// Adds or updates a transaction if it is relevant; `block` is where it
    /// confirmed (`None`: seen unconfirmed). Returns whether anything changed
    /// (and so must be stored), and whether the key indexes moved.
    pub fn add_tx(&mut self, tx: &Transaction, block: Option<BlockRef>, now: u64) -> (bool, bool) {
        let txid = tx.compute_txid();
        if let Some(existing) = self.txs.get_mut(&txid) {
            let changed = (block.is_some() && existing.block != block) || existing.abandoned;
            if block.is_some() {
                existing.block = block;
            }
            existing.abandoned = false;
            return (changed, false);
        }
        if !self.is_relevant(tx) {
            return (false, false);
        }
        let mut moved = false;
        for out in &tx.output {
            if let Some(path) = self.scripts.get(&out.script_pubkey).copied() {
                moved |= self.mark_used(path);
            }
        }
        self.index_tx(tx);
        let wtx = WalletTx { tx: tx.clone(), block, received: now, abandoned: false, comment: None, comment_to: None };
        self.txs.insert(txid, wtx);
        (true, moved)
    }

    /// Scans a block joining the active chain. Returns the transactions to
    /// store and whether the key indexes moved.
    pub fn connect_block(&mut self, block: &Block, height: u32, now: u64) -> (Vec<Txid>, bool) {
        let at = BlockRef { hash: block.block_hash(), height, time: block.header.time };
        let mut changed = Vec::new();
        let mut moved = false;
        for tx in &block.txdata {
            let (c, m) = self.add_tx(tx, Some(at), now);
            if c {
                changed.push(tx.compute_txid());
            }
            moved |= m;
        }
        (changed, moved)
    }

    /// A block left the active chain: its transactions go back to
    /// unconfirmed, except a coinbase, which is abandoned. Returns the
    /// transactions to store.
    pub fn disconnect_block(&mut self, block: &Block) -> Vec<Txid> {
        let hash = block.block_hash();
        let mut changed = Vec::new();
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if let Some(wtx) = self.txs.get_mut(&txid) {
                if wtx.block.is_some_and(|b| b.hash == hash) {
                    wtx.block = None;
                    wtx.abandoned = tx.is_coinbase();
                    changed.push(txid);
                }
            }
        }
        changed
    }

    /// Unconfirms every transaction in a block above `height` (blocks that
    /// left the chain while the wallet was not loaded); coinbases are abandoned.
    /// Returns the transactions to store.
    pub fn unconfirm_above(&mut self, height: u32) -> Vec<Txid> {
        let mut changed = Vec::new();
        for (txid, wtx) in &mut self.txs {
            if wtx.block.is_some_and(|b| b.height > height) {
                wtx.block = None;
                wtx.abandoned = wtx.tx.is_coinbase();
                changed.push(*txid);
            }
        }
        changed
    }

    /// Whether a wallet transaction is abandoned (or unknown).
    fn is_live(&self, txid: &Txid) -> bool {
        self.txs.get(txid).is_some_and(|w| !w.abandoned)
    }

    /// Whether every input of `tx` spends a wallet output (Core's `IsFromMe`
    /// for all inputs).
    pub fn all_inputs_mine(&self, tx: &Transaction) -> bool {
        !tx.is_coinbase() && tx.input.iter().all(|i| self.my_output(&i.previous_output).is_some())
    }

    /// What `tx` takes from the wallet: the sum of its inputs that are wallet outputs.
    pub fn debit(&self, tx: &Transaction) -> Amount {
        if tx.is_coinbase() {
            return Amount::ZERO;
        }
        tx.input.iter().filter_map(|i| self.my_output(&i.previous_output)).map(|o| o.value).sum()
    }

    /// What `tx` pays the wallet.
    pub fn credit(&self, tx: &Transaction) -> Amount {
        tx.output.iter().filter(|o| self.scripts.contains_key(&o.script_pubkey)).map(|o| o.value).sum()
    }

    /// Whether an output pays the wallet's change chain.
    pub fn is_change(&self, out: &TxOut) -> bool {
        self.scripts.get(&out.script_pubkey).is_some_and(|p| p.internal)
    }

    /// The fee of a transaction the wallet funded entirely; `None` otherwise.
    pub fn fee(&self, tx: &Transaction) -> Option<Amount> {
        if !self.all_inputs_mine(tx) {
            return None;
        }
        let out: Amount = tx.output.iter().map(|o| o.value).sum();
        self.debit(tx).checked_sub(out)
    }

    /// The wallet's unspent outputs at `tip_height`, abandoned transactions
    /// and outputs spent by live wallet transactions left out.
    pub fn utxos(&self, tip_height: u32) -> Vec<Utxo> {
        let mut out = Vec::new();
        for (txid, wtx) in &self.txs {
            if wtx.abandoned {
                continue;
            }
            let confirmations = wtx.confirmations(tip_height);
            let trusted = confirmations > 0 || self.all_inputs_mine(&wtx.tx);
            for (vout, txout) in wtx.tx.output.iter().enumerate() {
                let Some(path) = self.scripts.get(&txout.script_pubkey).copied() else { continue };
                let outpoint = OutPoint { txid: *txid, vout: vout as u32 };
                if self.spenders.get(&outpoint).is_some_and(|s| self.is_live(s)) {
                    continue;
                }
                out.push(Utxo {
                    outpoint,
                    txout: txout.clone(),
                    path,
                    confirmations,
                    coinbase: wtx.tx.is_coinbase(),
                    immature: wtx.is_immature(tip_height),
                    trusted,
                });
            }
        }
        out.sort_by_key(|u| (std::cmp::Reverse(u.confirmations), u.outpoint));
        out
    }

    /// Balances at `tip_height`; `min_conf` limits `trusted` to outputs with
    /// at least that many confirmations (`getbalance`'s `minconf`).
    pub fn balances(&self, tip_height: u32, min_conf: u32) -> Balances {
        let mut b = Balances::default();
        for utxo in self.utxos(tip_height) {
            let value = utxo.txout.value;
            if utxo.immature {
                b.immature += value;
            } else if utxo.trusted {
                if utxo.confirmations >= min_conf {
                    b.trusted += value;
                }
            } else {
                b.untrusted_pending += value;
            }
        }
        b
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::{absolute, transaction, NetworkKind, Sequence, TxIn, Witness};

    use super::*;
    use crate::wallet::keys::Seed;

    pub(crate) fn ledger() -> Ledger {
        let seed = Seed::from_bytes(&[7u8; 32]).expect("32 bytes");
        let accounts = Accounts::from_seed(&Secp256k1::new(), &seed, NetworkKind::Test);
        Ledger::new(bitcoin::Network::Regtest, accounts, BTreeMap::new(), [])
    }

    pub(crate) fn tx(inputs: &[OutPoint], outputs: &[(ScriptBuf, u64)]) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|o| TxIn {
                    previous_output: *o,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|(s, v)| TxOut { value: Amount::from_sat(*v), script_pubkey: s.clone() })
                .collect(),
        }
    }

    fn coinbase(script: ScriptBuf, value: u64, height: u32) -> Transaction {
        let mut t = tx(&[OutPoint::null()], &[(script, value)]);
        t.input[0].script_sig = bitcoin::script::Builder::new().push_int(i64::from(height)).into_script();
        t
    }

    fn block_of(txs: Vec<Transaction>, nonce: u32) -> Block {
        Block {
            header: bitcoin::block::Header {
                version: bitcoin::block::Version::TWO,
                prev_blockhash: BlockHash::all_zeros(),
                merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                time: 1_700_000_000,
                bits: bitcoin::CompactTarget::from_consensus(0x207fffff),
                nonce,
            },
            txdata: txs,
        }
    }

    fn foreign() -> ScriptBuf {
        ScriptBuf::new_op_return([1u8; 4])
    }

    #[test]
    fn fresh_addresses_are_never_reused() {
        let mut l = ledger();
        let (_, a) = l.new_address(AddressType::Bech32, false);
        let (_, b) = l.new_address(AddressType::Bech32, false);
        let (change_path, c) = l.new_address(AddressType::Bech32, true);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(change_path.internal);
        assert!(l.is_mine(&c.script_pubkey()).is_some());
    }

    #[test]
    fn payment_to_an_address_derived_ahead_is_seen_and_moves_the_index() {
        let mut l = ledger();
        let ahead = l.address(KeyPath { kind: AddressType::Bech32, internal: false, index: 5 });
        let payment = tx(&[OutPoint { txid: Txid::all_zeros(), vout: 0 }], &[(ahead.script_pubkey(), 1000)]);
        let (changed, moved) = l.add_tx(&payment, None, 0);
        assert!(changed && moved);
        let (path, _) = l.new_address(AddressType::Bech32, false);
        assert_eq!(path.index, 6, "index 5 was used on the chain, so it is never handed out");
        // and the gap moved with it
        assert!(l.is_mine(&l.address(KeyPath { index: 6 + GAP_LIMIT, ..path }).script_pubkey()).is_some());
    }

    #[test]
    fn balance_states() {
        let mut l = ledger();
        let (_, mine) = l.new_address(AddressType::Bech32, false);
        let (_, change) = l.new_address(AddressType::Bech32, true);
        let cb = coinbase(mine.script_pubkey(), 50_0000_0000, 1);
        let cb_block = block_of(vec![cb.clone()], 1);
        l.connect_block(&cb_block, 1, 0);
        let b = l.balances(1, 0);
        assert_eq!((b.immature.to_sat(), b.trusted.to_sat()), (50_0000_0000, 0), "a fresh coinbase is immature");
        let b = l.balances(100, 0);
        assert_eq!(b.immature.to_sat(), 50_0000_0000, "100 confirmations are not yet enough");
        let b = l.balances(101, 0);
        assert_eq!((b.immature.to_sat(), b.trusted.to_sat()), (0, 50_0000_0000), "101 confirmations: mature");

        // A payment from someone else, unconfirmed: untrusted pending.
        let incoming = tx(&[OutPoint { txid: Txid::all_zeros(), vout: 3 }], &[(mine.script_pubkey(), 1_000)]);
        l.add_tx(&incoming, None, 0);
        assert_eq!(l.balances(101, 0).untrusted_pending.to_sat(), 1_000);

        // Our own spend with change, unconfirmed: the change is trusted.
        let spend = tx(
            &[OutPoint { txid: cb.compute_txid(), vout: 0 }],
            &[(foreign(), 10_0000_0000), (change.script_pubkey(), 39_9999_0000)],
        );
        l.add_tx(&spend, None, 0);
        let b = l.balances(101, 0);
        assert_eq!(b.trusted.to_sat(), 39_9999_0000);
        assert_eq!(b.untrusted_pending.to_sat(), 1_000);
        assert_eq!(l.balances(101, 1).trusted, Amount::ZERO, "minconf 1 leaves unconfirmed change out");
        assert_eq!(l.fee(&spend), Some(Amount::from_sat(10_000)));
        assert_eq!(l.debit(&spend).to_sat(), 50_0000_0000);
    }

    #[test]
    fn disconnect_unconfirms_payments_and_abandons_coinbases() {
        let mut l = ledger();
        let (_, mine) = l.new_address(AddressType::Bech32, false);
        let cb = coinbase(mine.script_pubkey(), 50_0000_0000, 1);
        let pay = tx(&[OutPoint { txid: Txid::all_zeros(), vout: 1 }], &[(mine.script_pubkey(), 7_000)]);
        let block = block_of(vec![cb.clone(), pay.clone()], 2);
        l.connect_block(&block, 1, 0);
        assert_eq!(l.balances(1, 0).trusted.to_sat(), 7_000);
        let changed = l.disconnect_block(&block);
        assert_eq!(changed.len(), 2);
        let b = l.balances(0, 0);
        assert_eq!(b.immature, Amount::ZERO, "the coinbase left the chain and counts for nothing");
        assert_eq!(b.untrusted_pending.to_sat(), 7_000, "the payment is unconfirmed again");
        assert!(l.tx(&cb.compute_txid()).expect("kept").abandoned);
        // The block comes back: both confirm again.
        l.connect_block(&block, 1, 0);
        assert_eq!(l.balances(1, 0).immature.to_sat(), 50_0000_0000);
        assert!(!l.tx(&cb.compute_txid()).expect("kept").abandoned);
    }

    #[test]
    fn unrelated_transactions_are_ignored() {
        let mut l = ledger();
        let other = tx(&[OutPoint { txid: Txid::all_zeros(), vout: 0 }], &[(foreign(), 5)]);
        assert_eq!(l.add_tx(&other, None, 0), (false, false));
        assert_eq!(l.txs().count(), 0);
    }
}
