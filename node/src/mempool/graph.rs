//! The mempool as a graph: in-mempool ancestors and descendants of an entry,
//! their aggregate counts, sizes and fees (Core keeps these cached in each
//! entry; here they are walked on demand, which the limits of 25 keep cheap),
//! and Core's package limits (`CalculateMemPoolAncestors`).

use std::collections::{BTreeSet, HashSet};

use bitcoin::Txid;

use super::{Mempool, MempoolConfig};

/// Count, virtual size and modified fees of an entry together with its
/// ancestors or its descendants (the entry itself included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackageStats {
    /// Transactions.
    pub count: usize,
    /// Virtual bytes.
    pub vsize: u64,
    /// Modified fees, in satoshis.
    pub fees: i64,
}

impl Mempool {
    /// Walks `start` and everything reachable through `next`, `start` excluded.
    fn walk(&self, start: impl IntoIterator<Item = Txid>, next: impl Fn(&Txid) -> Vec<Txid>) -> HashSet<Txid> {
        let mut seen = HashSet::new();
        let mut stack: Vec<Txid> = start.into_iter().collect();
        while let Some(txid) = stack.pop() {
            if seen.insert(txid) {
                stack.extend(next(&txid));
            }
        }
        seen
    }

    fn parents_of(&self, txid: &Txid) -> Vec<Txid> {
        self.entries.get(txid).map(|e| e.parents.iter().copied().collect()).unwrap_or_default()
    }

    fn children_of(&self, txid: &Txid) -> Vec<Txid> {
        self.entries.get(txid).map(|e| e.children.iter().copied().collect()).unwrap_or_default()
    }

    /// The in-mempool ancestors of `txid`, itself excluded.
    pub fn ancestors(&self, txid: &Txid) -> HashSet<Txid> {
        self.walk(self.parents_of(txid), |t| self.parents_of(t))
    }

    /// The in-mempool descendants of `txid`, itself excluded.
    pub fn descendants(&self, txid: &Txid) -> HashSet<Txid> {
        self.walk(self.children_of(txid), |t| self.children_of(t))
    }

    fn stats(&self, txid: &Txid, others: &HashSet<Txid>) -> PackageStats {
        let mut stats = PackageStats::default();
        for t in others.iter().chain(std::iter::once(txid)) {
            if let Some(e) = self.entries.get(t) {
                stats.count += 1;
                stats.vsize += e.vsize;
                stats.fees += e.modified_fee();
            }
        }
        stats
    }

    /// The entry with its ancestors: Core's `CountWithAncestors`,
    /// `SizeWithAncestors`, `ModFeesWithAncestors`.
    pub fn ancestor_stats(&self, txid: &Txid) -> PackageStats {
        self.stats(txid, &self.ancestors(txid))
    }

    /// The entry with its descendants: Core's `CountWithDescendants`,
    /// `SizeWithDescendants`, `ModFeesWithDescendants`.
    pub fn descendant_stats(&self, txid: &Txid) -> PackageStats {
        self.stats(txid, &self.descendants(txid))
    }

    /// Core's `CalculateAncestorsAndCheckLimits` for a new transaction of
    /// `vsize` whose in-mempool parents are `parents`: walks the ancestors
    /// in Core's order (staged by txid) with Core's checks, and returns them
    /// (the parents included). The error is Core's message for
    /// `too-long-mempool-chain`.
    pub(super) fn ancestors_within_limits(
        &self,
        parents: &BTreeSet<Txid>,
        vsize: u64,
        config: &MempoolConfig,
    ) -> Result<HashSet<Txid>, String> {
        if parents.len() + 1 > config.ancestor_count {
            return Err(format!("too many unconfirmed parents [limit: {}]", config.ancestor_count));
        }
        let mut staged: BTreeSet<Txid> = parents.clone();
        let mut ancestors = HashSet::new();
        let mut ancestor_size = vsize;
        while let Some(txid) = staged.pop_first() {
            let Some(entry) = self.entries.get(&txid) else { continue };
            ancestors.insert(txid);
            ancestor_size += entry.vsize;
            let desc = self.descendant_stats(&txid);
            if desc.vsize + vsize > config.descendant_size_vbytes {
                return Err(format!(
                    "exceeds descendant size limit for tx {txid} [limit: {}]",
                    config.descendant_size_vbytes
                ));
            }
            if desc.count + 1 > config.descendant_count {
                return Err(format!("too many descendants for tx {txid} [limit: {}]", config.descendant_count));
            }
            if ancestor_size > config.ancestor_size_vbytes {
                return Err(format!("exceeds ancestor size limit [limit: {}]", config.ancestor_size_vbytes));
            }
            for parent in &entry.parents {
                if !ancestors.contains(parent) {
                    staged.insert(*parent);
                }
            }
            if staged.len() + ancestors.len() + 1 > config.ancestor_count {
                return Err(format!("too many unconfirmed ancestors [limit: {}]", config.ancestor_count));
            }
        }
        Ok(ancestors)
    }
}
