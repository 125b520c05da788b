//! [`ShareStore`] in memory: the ledger's twin for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bitcoin::{Amount, BlockHash, SignedAmount};

use super::window::{share_weight, walk_window};
use super::{
    bucket_start, log_moved, log_recorded, merge_changes, move_balance, to_millis, BalanceChange, BalanceMove,
    BlockRecord, BlockStatus, LedgerError, PaidTotal, PayoutRecord, SeriesPoint, ShareRecord, ShareStore, WindowWorker,
    WorkerActivity,
};
use crate::payout::ShareWeight;

#[derive(Debug, Default)]
struct Inner {
    shares: Vec<ShareRecord>,
    blocks: Vec<BlockRecord>,
    payouts: Vec<(BlockHash, String, Amount)>,
    balances: Vec<(String, Amount)>,
    /// Each block's changes to the balances: `(address, delta, applied)`.
    changes: HashMap<BlockHash, Vec<(String, i64, i64)>>,
    /// Whether each block's changes are in `balances` now.
    in_effect: HashMap<BlockHash, bool>,
    batches: usize,
    fail_next: usize,
}

/// Everything in a mutex; commits count batches so tests can see the group
/// commit at work, and can be made to fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("no test panics while holding the store's lock")
    }

    /// Every share stored, oldest first.
    pub fn shares(&self) -> Vec<ShareRecord> {
        self.lock().shares.clone()
    }

    /// How many share batches were committed.
    pub fn batches(&self) -> usize {
        self.lock().batches
    }

    /// A block's changes to the balances owed, by address, as
    /// [`super::Ledger::balance_changes`] gives them.
    pub fn balance_changes(&self, block: &BlockHash) -> Vec<BalanceChange> {
        let inner = self.lock();
        let mut changes: Vec<BalanceChange> = inner
            .changes
            .get(block)
            .into_iter()
            .flatten()
            .map(|(address, delta, applied)| BalanceChange {
                address: address.clone(),
                delta: SignedAmount::from_sat(*delta),
                applied: SignedAmount::from_sat(*applied),
            })
            .collect();
        changes.sort_by(|a, b| a.address.cmp(&b.address));
        changes
    }

    /// Makes the next `n` share batches fail.
    pub fn fail_next_batches(&self, n: usize) {
        self.lock().fail_next = n;
    }
}

impl ShareStore for MemoryStore {
    async fn record_shares(&self, shares: &[ShareRecord]) -> Result<(), LedgerError> {
        let mut inner = self.lock();
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return Err(LedgerError::Query { operation: "inserting shares", source: sqlx::Error::PoolTimedOut });
        }
        inner.shares.extend_from_slice(shares);
        inner.batches += 1;
        Ok(())
    }

    async fn difficulty_since(&self, since: SystemTime, address: Option<&str>) -> Result<f64, LedgerError> {
        let inner = self.lock();
        Ok(inner
            .shares
            .iter()
            .filter(|s| s.time >= since && address.is_none_or(|a| a == s.address))
            .map(|s| s.difficulty)
            .sum())
    }

    async fn balances(&self) -> Result<Vec<(String, Amount)>, LedgerError> {
        let mut balances = self.lock().balances.clone();
        balances.sort();
        Ok(balances)
    }

    async fn record_block(
        &self,
        block: &BlockRecord,
        payouts: &[(String, Amount)],
        changes: &[(String, SignedAmount)],
    ) -> Result<(), LedgerError> {
        let changes = merge_changes(changes)?;
        let in_effect = block.status != BlockStatus::Orphaned;
        let mut inner = self.lock();
        // Computed in full before anything changes: all or nothing, as a transaction.
        let mut balances: BTreeMap<String, i64> =
            inner.balances.iter().map(|(a, v)| (a.clone(), i64::try_from(v.to_sat()).unwrap_or(i64::MAX))).collect();
        let mut rows = Vec::with_capacity(changes.len());
        let mut moved = Vec::with_capacity(changes.len());
        for (address, delta) in changes {
            if !in_effect {
                rows.push((address, delta, delta));
                continue;
            }
            let current = balances.get(&address).copied().unwrap_or(0);
            let m = move_balance(current, delta, BalanceMove::Reapply)?;
            balances.insert(address.clone(), m.balance);
            rows.push((address.clone(), delta, m.applied));
            moved.push((address, m));
        }
        inner.blocks.push(block.clone());
        inner.payouts.extend(payouts.iter().map(|(a, v)| (block.hash, a.clone(), *v)));
        inner.changes.insert(block.hash, rows);
        inner.in_effect.insert(block.hash, in_effect);
        inner.balances = balances
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(|(a, v)| (a, Amount::from_sat(v.unsigned_abs())))
            .collect();
        drop(inner);
        log_recorded(&block.hash, &moved);
        Ok(())
    }

    async fn unconfirmed_blocks(&self, min_height: u32) -> Result<Vec<BlockRecord>, LedgerError> {
        let mut blocks: Vec<_> = self
            .lock()
            .blocks
            .iter()
            .filter(|b| b.status != BlockStatus::Confirmed && b.height >= min_height)
            .cloned()
            .collect();
        blocks.sort_by_key(|b| b.height);
        Ok(blocks)
    }

    async fn recent_blocks(&self, limit: u32) -> Result<Vec<BlockRecord>, LedgerError> {
        let mut blocks = self.lock().blocks.clone();
        blocks.sort_by(|a, b| b.found_at.cmp(&a.found_at).then(b.height.cmp(&a.height)));
        blocks.truncate(limit as usize);
        Ok(blocks)
    }

    async fn payouts(&self, block: &BlockHash) -> Result<Vec<(String, Amount)>, LedgerError> {
        let mut payouts: Vec<_> =
            self.lock().payouts.iter().filter(|(h, _, _)| h == block).map(|(_, a, v)| (a.clone(), *v)).collect();
        payouts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(payouts)
    }

    async fn set_block_status(
        &self,
        hash: &BlockHash,
        status: BlockStatus,
        confirmations: i64,
    ) -> Result<(), LedgerError> {
        let mut inner = self.lock();
        let set_status = |inner: &mut Inner| {
            for block in inner.blocks.iter_mut().filter(|b| &b.hash == hash) {
                block.status = status;
                block.confirmations = confirmations;
            }
        };
        let in_effect = inner.in_effect.get(hash).copied();
        let Some(direction) = in_effect.and_then(|e| BalanceMove::between(e, status)) else {
            set_status(&mut inner);
            return Ok(());
        };
        // Computed in full before anything changes: all or nothing, as a transaction.
        let mut balances: BTreeMap<String, i64> =
            inner.balances.iter().map(|(a, v)| (a.clone(), i64::try_from(v.to_sat()).unwrap_or(i64::MAX))).collect();
        let mut changes = inner.changes.get(hash).cloned().unwrap_or_default();
        let mut moved = Vec::with_capacity(changes.len());
        for (address, _, applied) in changes.iter_mut() {
            let current = balances.get(address.as_str()).copied().unwrap_or(0);
            let m = move_balance(current, *applied, direction)?;
            *applied = m.applied;
            balances.insert(address.clone(), m.balance);
            moved.push((address.clone(), m));
        }
        inner.balances = balances
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(|(a, v)| (a, Amount::from_sat(v.unsigned_abs())))
            .collect();
        inner.changes.insert(*hash, changes);
        inner.in_effect.insert(*hash, direction == BalanceMove::Reapply);
        set_status(&mut inner);
        drop(inner);
        moved.sort_by(|a, b| a.0.cmp(&b.0));
        log_moved(hash, direction, &moved);
        Ok(())
    }

    async fn worker_activity(
        &self,
        since: SystemTime,
        address: Option<&str>,
    ) -> Result<Vec<WorkerActivity>, LedgerError> {
        let inner = self.lock();
        let mut workers: BTreeMap<(String, String), WorkerActivity> = BTreeMap::new();
        for share in inner.shares.iter().filter(|s| s.time >= since && address.is_none_or(|a| a == s.address)) {
            let entry =
                workers.entry((share.address.clone(), share.worker.clone())).or_insert_with(|| WorkerActivity {
                    address: share.address.clone(),
                    worker: share.worker.clone(),
                    shares: 0,
                    difficulty: 0.0,
                    last_share: share.time,
                });
            entry.shares += 1;
            entry.difficulty += share.difficulty;
            entry.last_share = entry.last_share.max(share.time);
        }
        Ok(workers.into_values().collect())
    }

    async fn difficulty_series(
        &self,
        since: SystemTime,
        bucket: Duration,
        address: Option<&str>,
        worker: Option<&str>,
    ) -> Result<Vec<SeriesPoint>, LedgerError> {
        let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let inner = self.lock();
        let mut buckets: BTreeMap<i64, f64> = BTreeMap::new();
        for share in inner.shares.iter().filter(|s| {
            s.time >= since && address.is_none_or(|a| a == s.address) && worker.is_none_or(|w| w == s.worker)
        }) {
            *buckets.entry(bucket_start(to_millis(share.time), bucket_ms)).or_default() += share.difficulty;
        }
        Ok(buckets
            .into_iter()
            .map(|(start, difficulty)| SeriesPoint { start: super::from_millis(start), difficulty })
            .collect())
    }

    async fn window_workers(&self, window: ShareWeight) -> Result<Vec<WindowWorker>, LedgerError> {
        let inner = self.lock();
        let rows =
            inner.shares.iter().rev().map(|s| (s.address.as_str(), s.worker.as_str(), share_weight(s.difficulty)));
        Ok(walk_window(rows, window.0))
    }

    async fn recent_payouts(&self, address: Option<&str>, limit: u32) -> Result<Vec<PayoutRecord>, LedgerError> {
        let inner = self.lock();
        let mut blocks: Vec<&BlockRecord> = inner.blocks.iter().collect();
        blocks.sort_by(|a, b| b.found_at.cmp(&a.found_at).then(b.height.cmp(&a.height)));
        let mut out = Vec::new();
        for block in blocks {
            let mut paid: Vec<_> = inner
                .payouts
                .iter()
                .filter(|(h, a, _)| *h == block.hash && address.is_none_or(|x| x == a))
                .map(|(_, a, v)| (a.clone(), *v))
                .collect();
            paid.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            out.extend(paid.into_iter().map(|(address, amount)| PayoutRecord {
                block_hash: block.hash,
                height: block.height,
                found_at: block.found_at,
                status: block.status,
                address,
                amount,
            }));
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn paid_totals(&self, address: Option<&str>) -> Result<Vec<PaidTotal>, LedgerError> {
        let inner = self.lock();
        let mut totals: BTreeMap<String, (Amount, Amount)> = BTreeMap::new();
        for (hash, paid_to, amount) in inner.payouts.iter().filter(|(_, a, _)| address.is_none_or(|x| x == a)) {
            let Some(block) = inner.blocks.iter().find(|b| &b.hash == hash) else { continue };
            let entry = totals.entry(paid_to.clone()).or_insert((Amount::ZERO, Amount::ZERO));
            match block.status {
                BlockStatus::Confirmed => entry.0 += *amount,
                BlockStatus::Pending => entry.1 += *amount,
                BlockStatus::Orphaned => {}
            }
        }
        Ok(totals
            .into_iter()
            .filter(|(_, (c, p))| *c > Amount::ZERO || *p > Amount::ZERO)
            .map(|(address, (confirmed, pending))| PaidTotal { address, confirmed, pending })
            .collect())
    }
}
