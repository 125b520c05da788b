//! Core's `BlockAssembler::addPackageTxs`: greedy selection by ancestor
//! package fee rate, with "modified" packages for transactions some of whose
//! ancestors are already in the block.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};

use bitcoin::{Amount, Txid};

use super::{Candidate, SelectedTx, Selection, SelectionOptions};
use crate::validation::{is_final, WITNESS_SCALE_FACTOR};

/// Core's `MAX_CONSECUTIVE_FAILURES`: packages that may fail in a row once
/// the block is nearly full before the selection gives up.
const MAX_CONSECUTIVE_FAILURES: u32 = 1000;
/// Core's `BLOCK_FULL_ENOUGH_WEIGHT_DELTA`: "nearly full" is within this of
/// the maximum weight.
const BLOCK_FULL_ENOUGH_WEIGHT_DELTA: u64 = 4000;

/// A package's totals: virtual size, modified fee and sigop cost.
#[derive(Debug, Clone, Copy)]
struct Package {
    vsize: u64,
    fee: i64,
    sigops: u64,
}

/// The key a transaction is ranked by: Core's `CompareTxMemPoolEntryByAncestorFee`.
/// The fee rate used is the lower of the transaction's own and its
/// package's, so a low-fee child is not ranked by its high-fee parent's
/// rate. Higher rates sort first; equal rates by txid. Rates are compared exactly by
/// cross-multiplication (Core uses doubles, which agree except at ties
/// beyond 2^53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Score {
    fee: i64,
    vsize: u64,
    txid: Txid,
    index: usize,
}

impl Score {
    fn new(own_fee: i64, own_vsize: u64, package: Package, txid: Txid, index: usize) -> Score {
        let own = i128::from(own_fee) * i128::from(package.vsize);
        let pkg = i128::from(package.fee) * i128::from(own_vsize);
        if own > pkg {
            Score { fee: package.fee, vsize: package.vsize, txid, index }
        } else {
            Score { fee: own_fee, vsize: own_vsize, txid, index }
        }
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        let mine = i128::from(self.fee) * i128::from(other.vsize);
        let theirs = i128::from(other.fee) * i128::from(self.vsize);
        theirs.cmp(&mine).then_with(|| self.txid.cmp(&other.txid)).then_with(|| self.index.cmp(&other.index))
    }
}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The snapshot as a graph: only consistent candidates, with their parents,
/// children and full ancestor sets.
struct Graph<'a> {
    candidates: &'a [Candidate],
    /// Whether the candidate takes part (consistent).
    valid: Vec<bool>,
    children: Vec<Vec<usize>>,
    /// Every in-mempool ancestor (not itself).
    ancestors: Vec<Vec<usize>>,
    /// Own virtual size and modified fee.
    own: Vec<Package>,
    /// Totals over the transaction and all its ancestors.
    with_ancestors: Vec<Package>,
}

impl<'a> Graph<'a> {
    fn build(candidates: &'a [Candidate]) -> Graph<'a> {
        let n = candidates.len();
        let mut position: HashMap<Txid, usize> = HashMap::with_capacity(n);
        let mut valid = vec![true; n];
        for (i, c) in candidates.iter().enumerate() {
            match position.entry(c.txid) {
                // A duplicate: the first one seen stands.
                std::collections::hash_map::Entry::Occupied(_) => valid[i] = false,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        let mut parents: Vec<Vec<usize>> = Vec::with_capacity(n);
        for (i, c) in candidates.iter().enumerate() {
            let mut ps = Vec::with_capacity(c.parents.len());
            for p in &c.parents {
                match position.get(p) {
                    Some(&j) if j != i => ps.push(j),
                    _ => valid[i] = false,
                }
            }
            ps.sort_unstable();
            ps.dedup();
            parents.push(ps);
        }
        let mut children = vec![Vec::new(); n];
        let mut pending = vec![0usize; n];
        for (i, ps) in parents.iter().enumerate() {
            pending[i] = ps.len();
            for &p in ps {
                children[p].push(i);
            }
        }
        // Kahn's order: a candidate is reached once all its parents are;
        // those in a cycle never are. Validity flows down to children.
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
        let mut reached = vec![false; n];
        let mut ancestors: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut mark = vec![usize::MAX; n];
        while let Some(i) = queue.pop_front() {
            reached[i] = true;
            if parents[i].iter().any(|&p| !valid[p]) {
                valid[i] = false;
            }
            if valid[i] {
                let mut set = Vec::new();
                for &p in &parents[i] {
                    for &a in ancestors[p].iter().chain(std::iter::once(&p)) {
                        if mark[a] != i {
                            mark[a] = i;
                            set.push(a);
                        }
                    }
                }
                ancestors[i] = set;
            }
            for &c in &children[i] {
                pending[c] -= 1;
                if pending[c] == 0 {
                    queue.push_back(c);
                }
            }
        }
        for i in 0..n {
            if !reached[i] {
                valid[i] = false;
            }
        }
        for list in &mut children {
            list.retain(|&c| valid[c]);
        }
        let own: Vec<Package> = candidates
            .iter()
            .map(|c| Package { vsize: c.vsize(), fee: c.modified_fee.to_sat(), sigops: c.sigop_cost })
            .collect();
        let with_ancestors = (0..n)
            .map(|i| {
                ancestors[i].iter().fold(own[i], |acc, &a| Package {
                    vsize: acc.vsize + own[a].vsize,
                    fee: acc.fee.saturating_add(own[a].fee),
                    sigops: acc.sigops + own[a].sigops,
                })
            })
            .collect();
        Graph { candidates, valid, children, ancestors, own, with_ancestors }
    }

    fn score(&self, i: usize, package: Package) -> Score {
        Score::new(self.own[i].fee, self.own[i].vsize, package, self.candidates[i].txid, i)
    }
}

/// The block being filled.
struct Block<'a> {
    options: &'a SelectionOptions,
    weight: u64,
    sigops: u64,
    chosen: Vec<usize>,
    in_block: Vec<bool>,
}

impl Block<'_> {
    /// Core's `TestPackage` (with its `>=`, and the package counted at four
    /// times its virtual size).
    fn fits(&self, package: Package) -> bool {
        self.weight + WITNESS_SCALE_FACTOR as u64 * package.vsize < self.options.max_weight
            && self.sigops + package.sigops < self.options.max_sigop_cost
    }
}

/// Chooses transactions for a block from `candidates` as Core's
/// `BlockAssembler::addPackageTxs` does, and returns them in block order with
/// their `depends`, and the total fees.
///
/// Inconsistent input (a duplicate txid, a parent not in `candidates`, a
/// cycle) is left out with every descendant and counted in
/// [`Selection::inconsistent`]; nothing here fails.
pub fn select(candidates: &[Candidate], options: &SelectionOptions) -> Selection {
    let graph = Graph::build(candidates);
    let n = candidates.len();
    let mut order: Vec<usize> = (0..n).filter(|&i| graph.valid[i]).collect();
    order.sort_by_cached_key(|&i| graph.score(i, graph.with_ancestors[i]));

    let mut block = Block {
        options,
        weight: options.reserved_weight,
        sigops: options.reserved_sigop_cost,
        chosen: Vec::new(),
        in_block: vec![false; n],
    };
    let mut failed = vec![false; n];
    // Packages some of whose ancestors are in the block, with what is left.
    let mut modified: HashMap<usize, Package> = HashMap::new();
    let mut modified_order: BTreeSet<Score> = BTreeSet::new();
    let mut next = 0;
    let mut consecutive_failures = 0u32;
    let mut packages = 0;
    let mut visit = vec![usize::MAX; n];

    while next < order.len() || !modified_order.is_empty() {
        if let Some(&i) = order.get(next) {
            if modified.contains_key(&i) || block.in_block[i] || failed[i] {
                next += 1;
                continue;
            }
        }
        // The better of the next unmodified package and the best modified one.
        let best_modified = modified_order.first().copied();
        let (tx, using_modified) = match (order.get(next), best_modified) {
            (None, Some(m)) => (m.index, true),
            (Some(&i), Some(m)) if m < graph.score(i, graph.with_ancestors[i]) => (m.index, true),
            (Some(&i), _) => {
                next += 1;
                (i, false)
            }
            (None, None) => break,
        };
        let package = if using_modified { modified[&tx] } else { graph.with_ancestors[tx] };
        let drop_modified = |modified: &mut HashMap<usize, Package>, modified_order: &mut BTreeSet<Score>| {
            if let Some(p) = modified.remove(&tx) {
                modified_order.remove(&graph.score(tx, p));
            }
        };

        if package.fee < options.min_fee_rate.fee_for(package.vsize) {
            // Everything else pays a lower rate.
            break;
        }
        if !block.fits(package) {
            if using_modified {
                drop_modified(&mut modified, &mut modified_order);
                failed[tx] = true;
            }
            consecutive_failures += 1;
            if consecutive_failures > MAX_CONSECUTIVE_FAILURES
                && block.weight > options.max_weight.saturating_sub(BLOCK_FULL_ENOUGH_WEIGHT_DELTA)
            {
                break;
            }
            continue;
        }

        let mut members: Vec<usize> =
            graph.ancestors[tx].iter().copied().filter(|&a| !block.in_block[a]).chain(std::iter::once(tx)).collect();
        if !members.iter().all(|&m| is_final(&candidates[m].tx, options.height, options.lock_time_cutoff)) {
            if using_modified {
                drop_modified(&mut modified, &mut modified_order);
                failed[tx] = true;
            }
            continue;
        }
        consecutive_failures = 0;

        // Core's `SortForBlock`: fewer ancestors first, which puts every
        // parent before its children.
        members.sort_by_key(|&m| (graph.ancestors[m].len(), candidates[m].txid));
        for &m in &members {
            block.in_block[m] = true;
            block.chosen.push(m);
            block.weight += candidates[m].weight;
            block.sigops += candidates[m].sigop_cost;
            if let Some(p) = modified.remove(&m) {
                modified_order.remove(&graph.score(m, p));
            }
        }
        packages += 1;

        // Core's `UpdatePackagesForAdded`: every descendant's package loses
        // what just went into the block.
        for &m in &members {
            let mut stack: Vec<usize> = graph.children[m].clone();
            while let Some(d) = stack.pop() {
                if visit[d] == m {
                    continue;
                }
                visit[d] = m;
                stack.extend_from_slice(&graph.children[d]);
                if block.in_block[d] {
                    continue;
                }
                let entry = modified.entry(d).or_insert(graph.with_ancestors[d]);
                modified_order.remove(&graph.score(d, *entry));
                entry.vsize -= graph.own[m].vsize;
                entry.fee = entry.fee.saturating_sub(graph.own[m].fee);
                entry.sigops -= graph.own[m].sigops;
                modified_order.insert(graph.score(d, *entry));
            }
        }
    }

    finish(candidates, &graph, block, packages)
}

/// Lays the chosen transactions out with their positions and `depends`.
fn finish(candidates: &[Candidate], graph: &Graph<'_>, block: Block<'_>, packages: usize) -> Selection {
    let mut position: HashMap<Txid, usize> = HashMap::with_capacity(block.chosen.len());
    let mut transactions = Vec::with_capacity(block.chosen.len());
    let mut fees = Amount::ZERO;
    for (k, &i) in block.chosen.iter().enumerate() {
        let c = &candidates[i];
        let depends =
            c.tx.input.iter().filter_map(|input| position.get(&input.previous_output.txid).copied()).collect();
        position.insert(c.txid, k + 1);
        fees = fees.checked_add(c.fee).expect("fees of distinct spends add up to less than the money supply");
        transactions.push(SelectedTx {
            txid: c.txid,
            wtxid: c.wtxid,
            tx: c.tx.clone(),
            fee: c.fee,
            sigop_cost: c.sigop_cost,
            weight: c.weight,
            depends,
        });
    }
    Selection {
        transactions,
        fees,
        block_weight: block.weight,
        block_sigop_cost: block.sigops,
        packages,
        inconsistent: graph.valid.iter().filter(|v| !**v).count(),
    }
}
