//! Orphan transactions (Core's `TxOrphanage`): transactions whose parents we
//! have not seen, kept (bounded, expiring) until a parent arrives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bitcoin::{Transaction, Txid, Wtxid};

use super::sync::PeerId;

/// Core's `DEFAULT_MAX_ORPHAN_TRANSACTIONS`.
pub const MAX_ORPHANS: usize = 100;
/// Core's `ORPHAN_TX_EXPIRE_TIME`: 20 minutes.
pub const ORPHAN_EXPIRE_SECONDS: i64 = 20 * 60;
/// Core's `MAX_STANDARD_TX_WEIGHT`: larger orphans are not kept.
const MAX_ORPHAN_WEIGHT: u64 = 400_000;

#[derive(Debug, Clone)]
struct Orphan {
    tx: Arc<Transaction>,
    from: PeerId,
    expires: i64,
    order: u64,
}

/// The orphan pool.
#[derive(Debug, Default)]
pub struct Orphanage {
    orphans: HashMap<Wtxid, Orphan>,
    /// Parent txid -> orphans spending one of its outputs.
    by_parent: HashMap<Txid, HashSet<Wtxid>>,
    /// Insertion order, for eviction.
    order: BTreeMap<u64, Wtxid>,
    next: u64,
}

impl Orphanage {
    /// Orphans held.
    pub fn len(&self) -> usize {
        self.orphans.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.orphans.is_empty()
    }

    /// Whether `wtxid` is held.
    pub fn contains(&self, wtxid: &Wtxid) -> bool {
        self.orphans.contains_key(wtxid)
    }

    /// Whether an orphan with this txid is held.
    pub fn contains_txid(&self, txid: &Txid) -> bool {
        self.orphans.values().any(|o| o.tx.compute_txid() == *txid)
    }

    /// Keeps `tx` from `from`; the oldest orphan goes when the pool is full.
    /// Whether it was added.
    pub fn add(&mut self, tx: Arc<Transaction>, from: PeerId, now: i64) -> bool {
        let wtxid = tx.compute_wtxid();
        if self.orphans.contains_key(&wtxid) || tx.weight().to_wu() > MAX_ORPHAN_WEIGHT {
            return false;
        }
        while self.orphans.len() >= MAX_ORPHANS {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.remove(&oldest);
        }
        for input in &tx.input {
            self.by_parent.entry(input.previous_output.txid).or_default().insert(wtxid);
        }
        let order = self.next;
        self.next += 1;
        self.order.insert(order, wtxid);
        self.orphans.insert(wtxid, Orphan { tx, from, expires: now + ORPHAN_EXPIRE_SECONDS, order });
        true
    }

    /// Removes one orphan.
    pub fn remove(&mut self, wtxid: &Wtxid) -> Option<Arc<Transaction>> {
        let orphan = self.orphans.remove(wtxid)?;
        self.order.remove(&orphan.order);
        for input in &orphan.tx.input {
            let parent = input.previous_output.txid;
            if let Some(set) = self.by_parent.get_mut(&parent) {
                set.remove(wtxid);
                if set.is_empty() {
                    self.by_parent.remove(&parent);
                }
            }
        }
        Some(orphan.tx)
    }

    /// Takes out the orphans that spend an output of `parent`, with the
    /// peers they came from, to be tried again.
    pub fn take_children(&mut self, parent: &Txid) -> Vec<(Arc<Transaction>, PeerId)> {
        let children: Vec<Wtxid> = self.by_parent.get(parent).map(|s| s.iter().copied().collect()).unwrap_or_default();
        let mut out = Vec::new();
        for wtxid in children {
            let from = self.orphans.get(&wtxid).map(|o| o.from);
            if let (Some(tx), Some(from)) = (self.remove(&wtxid), from) {
                out.push((tx, from));
            }
        }
        out
    }

    /// Forgets orphans from a peer that went away.
    pub fn erase_for_peer(&mut self, peer: PeerId) {
        let theirs: Vec<Wtxid> = self.orphans.iter().filter(|(_, o)| o.from == peer).map(|(w, _)| *w).collect();
        for wtxid in theirs {
            self.remove(&wtxid);
        }
    }

    /// Forgets expired orphans.
    pub fn expire(&mut self, now: i64) {
        let old: Vec<Wtxid> = self.orphans.iter().filter(|(_, o)| o.expires <= now).map(|(w, _)| *w).collect();
        for wtxid in old {
            self.remove(&wtxid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};

    fn tx(parent: Txid, n: u32) -> Arc<Transaction> {
        Arc::new(Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint { txid: parent, vout: n },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(1000), script_pubkey: ScriptBuf::new() }],
        })
    }

    #[test]
    fn a_parent_releases_its_children() {
        let mut pool = Orphanage::default();
        let parent = Txid::from_byte_array([1; 32]);
        assert!(pool.add(tx(parent, 0), 7, 0));
        assert!(pool.add(tx(parent, 1), 8, 0));
        assert!(!pool.add(tx(parent, 1), 8, 0), "duplicate");
        let children = pool.take_children(&parent);
        assert_eq!(children.len(), 2);
        assert!(pool.is_empty());
    }

    #[test]
    fn the_pool_is_bounded_and_expires() {
        let mut pool = Orphanage::default();
        for i in 0..(MAX_ORPHANS as u32 + 10) {
            pool.add(tx(Txid::from_byte_array([2; 32]), i), 1, 0);
        }
        assert_eq!(pool.len(), MAX_ORPHANS);
        assert!(!pool.contains(&tx(Txid::from_byte_array([2; 32]), 0).compute_wtxid()), "the oldest went first");
        pool.erase_for_peer(1);
        assert!(pool.is_empty());
        pool.add(tx(Txid::from_byte_array([3; 32]), 0), 2, 0);
        pool.expire(ORPHAN_EXPIRE_SECONDS - 1);
        assert_eq!(pool.len(), 1);
        pool.expire(ORPHAN_EXPIRE_SECONDS);
        assert!(pool.is_empty());
    }
}
