//! The PPLNS window from running totals: pure arithmetic, no I/O.
//!
//! The ledger keeps the pool's running total of share weight after each
//! batch of shares it commits, and each worker's after each batch it has
//! shares in. The window of weight `N` is the last `N` of the pool's total
//! `T`: it starts at `S = T − N` (zero when the pool has less), inside the
//! *boundary batch*, the first whose total after it exceeds `S`. Only that
//! batch's shares are read: walked in order from the total before it, each
//! counts for its part above `S` ([`inside_boundary_batch`]). A worker's
//! part of the window is then its total now, less its total after the
//! boundary batch (after its last batch up to that one), plus what it has
//! above `S` inside the boundary batch. That is exactly what a walk back
//! from the newest share would find, share by share, cutting the one that
//! crosses `S` ([`walk_window`]), but it costs one lookup per worker in the
//! window and one batch of shares, instead of a row per share in it.
//!
//! Totals are kept in the database as two BIGINTs ([`split`], [`join`]):
//! weights are difficulty × 2^32 and a pool's lifetime total outgrows
//! 64 bits.

use std::collections::BTreeMap;

use super::{LedgerError, WindowWorker};
use crate::payout::ShareWeight;

/// The bits of a total's low column: `value = hi × 2^62 + lo`. The sum of
/// two low columns stays below 2^63, so the database can add them (and
/// carry into `hi`) without overflow.
pub(crate) const LO_BITS: u32 = 62;

/// `2^LO_BITS`, for the SQL that carries from the low column.
pub(crate) const LO_BASE: i64 = 1 << LO_BITS;

/// A total as its two columns `(hi, lo)`.
pub(crate) fn split(value: u128) -> Result<(i64, i64), LedgerError> {
    let hi = i64::try_from(value >> LO_BITS)
        .map_err(|_| LedgerError::Corrupt { column: "running total", value: format!("{value}, beyond 2^125") })?;
    Ok((hi, (value & (LO_BASE as u128 - 1)) as i64))
}

/// A total back from its two columns.
pub(crate) fn join(hi: i64, lo: i64, column: &'static str) -> Result<u128, LedgerError> {
    if hi < 0 || !(0..LO_BASE).contains(&lo) {
        return Err(LedgerError::Corrupt { column, value: format!("({hi}, {lo})") });
    }
    Ok(((hi as u128) << LO_BITS) | lo as u128)
}

/// The weight a recorded share counts for.
pub(crate) fn share_weight(difficulty: f64) -> u128 {
    ShareWeight::from_difficulty(difficulty).0
}

/// A batch's weight in all, and by worker, before it is recorded.
#[derive(Debug, Default)]
pub(crate) struct BatchWeights<'a> {
    /// The sum of its shares' weights.
    pub total: u128,
    /// Their sum by `(address, worker)`.
    pub by_worker: BTreeMap<(&'a str, &'a str), u128>,
}

impl<'a> BatchWeights<'a> {
    /// Weighs `(address, worker, difficulty)` shares in batch order.
    pub(crate) fn new(shares: impl IntoIterator<Item = (&'a str, &'a str, f64)>) -> BatchWeights<'a> {
        let mut batch = BatchWeights::default();
        for (address, worker, difficulty) in shares {
            let weight = share_weight(difficulty);
            batch.total = batch.total.saturating_add(weight);
            let sum = batch.by_worker.entry((address, worker)).or_default();
            *sum = sum.saturating_add(weight);
        }
        batch
    }
}

/// What each worker has above the window's start `start` inside the
/// boundary batch: its `(address, worker, weight)` shares in the order they
/// were accepted, walked from the pool's total before the batch (its total
/// after, `total_after`, less their sum).
pub(crate) fn inside_boundary_batch(
    shares: impl IntoIterator<Item = (String, String, u128)>,
    total_after: u128,
    start: u128,
) -> Result<BTreeMap<(String, String), u128>, LedgerError> {
    let shares: Vec<_> = shares.into_iter().collect();
    let sum = shares.iter().try_fold(0u128, |sum, s| sum.checked_add(s.2));
    let mut running = sum.and_then(|sum| total_after.checked_sub(sum)).ok_or_else(|| LedgerError::Corrupt {
        column: "share_batches.total",
        value: format!("{total_after}, below the sum of the batch's shares"),
    })?;
    let mut inside: BTreeMap<(String, String), u128> = BTreeMap::new();
    for (address, worker, weight) in shares {
        let end = running + weight;
        if end > start {
            *inside.entry((address, worker)).or_default() += end - running.max(start);
        }
        running = end;
    }
    Ok(inside)
}

/// A worker with a share in the window, as the window's read finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerTotals {
    /// The payout address.
    pub address: String,
    /// The worker name.
    pub worker: String,
    /// Its total now.
    pub total: u128,
    /// Its total after the boundary batch: after its last batch up to that
    /// one (zero when it has none, or when the window holds every share).
    pub at_boundary: u128,
}

/// Each worker's part of the window, by address then worker: its total now
/// less its total after the boundary batch, plus what it has `inside` that
/// batch above the window's start. `expected` (the window's weight, or the
/// pool's whole total if less) is checked against the parts' sum: a
/// mismatch means totals out of step, which is logged, and the parts are
/// used as found.
pub(crate) fn window_parts(
    workers: Vec<WorkerTotals>,
    inside: &BTreeMap<(String, String), u128>,
    expected: u128,
) -> Result<Vec<WindowWorker>, LedgerError> {
    let mut parts = Vec::with_capacity(workers.len());
    let mut sum: u128 = 0;
    for w in workers {
        let after = w.total.checked_sub(w.at_boundary).ok_or_else(|| LedgerError::Corrupt {
            column: "batch_workers.total",
            value: format!(
                "{}.{}: total {} below {} at the window's start",
                w.address, w.worker, w.total, w.at_boundary
            ),
        })?;
        let key = (w.address, w.worker);
        let part = after + inside.get(&key).copied().unwrap_or(0);
        if part > 0 {
            sum += part;
            parts.push(WindowWorker { address: key.0, worker: key.1, weight: ShareWeight(part) });
        }
    }
    if sum != expected {
        tracing::warn!(
            expected = %expected, found = %sum,
            "the PPLNS window's parts do not add up to its weight: worker and pool totals are out of step"
        );
    }
    parts.sort_by(|a, b| (&a.address, &a.worker).cmp(&(&b.address, &b.worker)));
    Ok(parts)
}

/// The window cut by walking newest-first `(address, worker, weight)` shares
/// one by one, the last cut at the window's edge, summed by worker: the
/// definition [`window_parts`] computes from totals (and the in-memory
/// store's way).
pub(crate) fn walk_window<'a>(
    newest_first: impl IntoIterator<Item = (&'a str, &'a str, u128)>,
    window: u128,
) -> Vec<WindowWorker> {
    let mut left = window;
    let mut sums: BTreeMap<(&str, &str), u128> = BTreeMap::new();
    for (address, worker, weight) in newest_first {
        if left == 0 {
            break;
        }
        let counted = weight.min(left);
        left -= counted;
        *sums.entry((address, worker)).or_default() += counted;
    }
    sums.into_iter()
        .filter(|(_, w)| *w > 0)
        .map(|((address, worker), weight)| WindowWorker {
            address: address.to_owned(),
            worker: worker.to_owned(),
            weight: ShareWeight(weight),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn totals_split_and_join() {
        for value in [0u128, 1, (1 << 62) - 1, 1 << 62, (1 << 62) + 5, 3 << 90, (i64::MAX as u128) << 62] {
            let (hi, lo) = split(value).unwrap();
            assert!((0..LO_BASE).contains(&lo));
            assert_eq!(join(hi, lo, "t").unwrap(), value);
        }
        assert!(split(u128::MAX).is_err(), "beyond 2^125 does not fit");
        assert!(join(0, LO_BASE, "t").is_err());
        assert!(join(-1, 0, "t").is_err());
    }

    /// The database's carry: `lo' = (lo + a) mod 2^62`,
    /// `hi' = hi + b + (lo + a) div 2^62`, in i64, is the u128 sum.
    #[test]
    fn sql_carry_is_the_sum() {
        let add = |x: u128, y: u128| {
            let ((xh, xl), (yh, yl)) = (split(x).unwrap(), split(y).unwrap());
            let lo = (xl + yl) % LO_BASE;
            let hi = xh + yh + (xl + yl) / LO_BASE;
            join(hi, lo, "t").unwrap()
        };
        for (x, y) in [(0, 0), ((1 << 62) - 1, 1), ((1 << 62) - 1, (1 << 62) - 1), (7 << 80, (1 << 63) + 9)] {
            assert_eq!(add(x, y), x + y);
        }
    }

    /// A ledger simulated in memory the way the SQL keeps it: batches with
    /// the pool's total after each, workers' totals after each of their
    /// batches, and their totals now.
    /// A batch's shares (address, worker, weight) and the pool's total after it.
    type Batch = (Vec<(String, String, u128)>, u128);

    struct Simulated {
        batches: Vec<Batch>,
        pool: u128,
        /// (address, worker) → its total after each of its batches (batch
        /// index, total), the last being its total now.
        workers: BTreeMap<(String, String), Vec<(usize, u128)>>,
    }

    impl Simulated {
        fn record(batches: &[Vec<(String, String, f64)>]) -> Simulated {
            let mut sim = Simulated { batches: Vec::new(), pool: 0, workers: BTreeMap::new() };
            for (index, batch) in batches.iter().enumerate() {
                let weights = BatchWeights::new(batch.iter().map(|(a, w, d)| (a.as_str(), w.as_str(), *d)));
                sim.pool += weights.total;
                for (&(a, w), &sum) in &weights.by_worker {
                    let history = sim.workers.entry((a.to_owned(), w.to_owned())).or_default();
                    let before = history.last().map_or(0, |h| h.1);
                    history.push((index, before + sum));
                }
                let shares = batch.iter().map(|(a, w, d)| (a.clone(), w.clone(), share_weight(*d)));
                sim.batches.push((shares.collect(), sim.pool));
            }
            sim
        }

        /// The lookups the SQL read makes, then [`window_parts`].
        fn window(&self, window: u128) -> Vec<WindowWorker> {
            if self.pool == 0 {
                return Vec::new();
            }
            let start = self.pool.saturating_sub(window);
            let boundary = (start > 0).then(|| self.batches.iter().position(|b| b.1 > start).unwrap());
            let inside = boundary.map_or_else(BTreeMap::new, |b| {
                inside_boundary_batch(self.batches[b].0.clone(), self.batches[b].1, start).unwrap()
            });
            let workers = self
                .workers
                .iter()
                .filter(|(_, history)| boundary.is_none_or(|b| history.last().unwrap().0 >= b))
                .map(|((a, w), history)| WorkerTotals {
                    address: a.clone(),
                    worker: w.clone(),
                    total: history.last().unwrap().1,
                    at_boundary: boundary.map_or(0, |b| history.iter().rfind(|h| h.0 <= b).map_or(0, |h| h.1)),
                })
                .collect();
            window_parts(workers, &inside, window.min(self.pool)).unwrap()
        }

        fn walk(&self, window: u128) -> Vec<WindowWorker> {
            let newest_first = self.batches.iter().rev().flat_map(|b| b.0.iter().rev());
            walk_window(newest_first.map(|(a, w, weight)| (a.as_str(), w.as_str(), *weight)), window)
        }
    }

    fn batch(rows: &[(&str, &str, f64)]) -> Vec<(String, String, f64)> {
        rows.iter().map(|(a, w, d)| ((*a).to_owned(), (*w).to_owned(), *d)).collect()
    }

    #[test]
    fn the_boundary_share_counts_its_part_inside() {
        let sim = Simulated::record(&[
            batch(&[("alice", "a", 4.0), ("bob", "b", 2.0)]),
            batch(&[("alice", "a", 1.0), ("carol", "c", 3.0)]),
        ]);
        // The newest 5 difficulty: carol's 3, alice's 1, then 1 of bob's 2.
        let d = |x: f64| ShareWeight::from_difficulty(x);
        let expect = |rows: &[(&str, f64)]| -> Vec<(String, ShareWeight)> {
            rows.iter().map(|(a, x)| ((*a).to_owned(), d(*x))).collect()
        };
        let got = |window: f64| -> Vec<(String, ShareWeight)> {
            sim.window(d(window).0).into_iter().map(|w| (w.address, w.weight)).collect()
        };
        assert_eq!(got(5.0), expect(&[("alice", 1.0), ("bob", 1.0), ("carol", 3.0)]));
        assert_eq!(got(4.0), expect(&[("alice", 1.0), ("carol", 3.0)]), "a boundary at a share's edge");
        assert_eq!(got(8.5), expect(&[("alice", 3.5), ("bob", 2.0), ("carol", 3.0)]));
        assert_eq!(got(1e9), expect(&[("alice", 5.0), ("bob", 2.0), ("carol", 3.0)]), "all, when the pool has less");
        assert_eq!(got(0.5), expect(&[("carol", 0.5)]));
    }

    fn shares_strategy() -> impl Strategy<Value = Vec<Vec<(String, String, f64)>>> {
        let share = (0usize..4, 0usize..2, prop_oneof![Just(1.0), Just(0.00001), 0.001f64..1e6, Just(2e14)])
            .prop_map(|(a, w, d)| (["alice", "bob", "carol", "dave"][a].to_owned(), ["rig1", "rig2"][w].to_owned(), d));
        prop::collection::vec(prop::collection::vec(share, 1..8), 1..12)
    }

    proptest! {
        /// The totals' window is the share-by-share walk, exactly, at any
        /// window size (mainnet's 2^80-unit windows included).
        #[test]
        fn totals_give_the_walk(batches in shares_strategy(), window in prop_oneof![0u128..=1u128 << 40, 0u128..=1u128 << 90]) {
            let sim = Simulated::record(&batches);
            let walked = sim.walk(window);
            prop_assert_eq!(sim.window(window), walked.clone());
            // The window holds its size, or every share when they are fewer.
            let all: u128 = sim.batches.iter().flat_map(|b| &b.0).map(|s| s.2).sum();
            prop_assert_eq!(walked.iter().map(|w| w.weight.0).sum::<u128>(), window.min(all));
        }
    }
}
