//! Invalid blocks: marking a block and its descendants, `invalidateblock`
//! and `reconsiderblock`, and the views that report them (`getchaintips`).

use std::cmp::Reverse;

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::BlockHash;
use redb::{ReadableDatabase, ReadableTable};

use super::index::status;
use super::store::{StoreError, UTXO};
use super::{ChainError, ChainTip, Chainstate, IndexEntry, UtxoSetInfo};
use crate::utxo::{outpoint_from_key, Coin};

impl Chainstate {
    /// Marks `hash` as breaking a rule and every descendant as descending
    /// from it, durably, and drops them from the candidates.
    pub(super) fn mark_invalid(&mut self, hash: &BlockHash) -> Result<(), ChainError> {
        let mut changed: Vec<IndexEntry> = Vec::new();
        if let Some(e) = self.index.get_mut(hash) {
            e.status |= status::FAILED_VALID;
            changed.push(e.clone());
        }
        for d in self.index.descendants(hash) {
            let e = self.index.get_mut(&d).expect("descendants are indexed");
            e.status |= status::FAILED_CHILD;
            changed.push(e.clone());
        }
        for e in &changed {
            self.candidates.remove(&(e.chainwork, Reverse(e.sequence), e.hash));
        }
        self.store.write_entries(&changed.iter().collect::<Vec<_>>(), None)?;
        Ok(())
    }

    /// `invalidateblock`: treats a block as invalid, disconnecting it (and its
    /// descendants) if active, and moves to the best remaining branch.
    pub fn invalidate_block(&mut self, hash: &BlockHash) -> Result<(), ChainError> {
        let entry = self.index.get(hash).ok_or(ChainError::PrevBlockNotFound(*hash))?.clone();
        if entry.height == 0 {
            return Err(ChainError::GenesisInvalidation);
        }
        // Disconnecting needs the data and undo data of every block above it.
        if self.index.is_active(hash) && self.prune_height().is_some_and(|first| entry.height < first) {
            return Err(ChainError::PrunedData(*hash));
        }
        while self.index.is_active(hash) {
            self.disconnect_tip()?;
        }
        self.mark_invalid(hash)?;
        // Branches that were behind the invalidated one may now be best.
        self.rebuild_candidates();
        self.activate_best_chain()
    }

    /// `reconsiderblock`: clears the invalid marks of a block, its ancestors
    /// and descendants, and activates the best branch again.
    pub fn reconsider_block(&mut self, hash: &BlockHash) -> Result<(), ChainError> {
        let entry = self.index.get(hash).ok_or(ChainError::PrevBlockNotFound(*hash))?.clone();
        let mut affected = self.index.descendants(hash);
        affected.push(*hash);
        let mut cursor = entry;
        while cursor.height > 0 {
            cursor = self.index.get(&cursor.header.prev_blockhash).expect("ancestors are indexed").clone();
            affected.push(cursor.hash);
        }
        let mut changed = Vec::new();
        for h in affected {
            let e = self.index.get_mut(&h).expect("indexed");
            if e.failed() {
                e.status &= !status::FAILED;
                changed.push(e.clone());
            }
        }
        self.store.write_entries(&changed.iter().collect::<Vec<_>>(), None)?;
        self.rebuild_candidates();
        self.activate_best_chain()
    }

    /// Every tip of the block tree, as `getchaintips` reports them.
    pub fn chain_tips(&self) -> Vec<ChainTip> {
        let mut tips = Vec::new();
        for e in self.index.entries() {
            // Core lists the leaves of the tree, plus the active tip.
            if !self.index.children(&e.hash).is_empty() && !self.index.is_active(&e.hash) {
                continue;
            }
            if self.index.is_active(&e.hash) && e.hash != self.tip().hash {
                continue;
            }
            let fork = self.index.fork_point(&e.hash, &self.tip().hash).expect("every branch reaches genesis");
            let status = if self.index.is_active(&e.hash) {
                "active"
            } else if e.failed() {
                "invalid"
            } else if e.status & (status::HAVE_DATA | status::PRUNED) == 0 {
                "headers-only"
            } else if e.status & status::VALID_SCRIPTS != 0 {
                "valid-fork"
            } else {
                "valid-headers"
            };
            tips.push(ChainTip { hash: e.hash, height: e.height, branch_len: e.height - fork.height, status });
        }
        tips.sort_by(|a, b| b.height.cmp(&a.height).then(a.hash.cmp(&b.hash)));
        tips
    }

    /// Walks the whole UTXO set (`gettxoutsetinfo`).
    pub fn utxo_set_info(&self) -> Result<UtxoSetInfo, ChainError> {
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let table = txn.open_table(UTXO).map_err(StoreError::from)?;
        let mut engine = sha256d::Hash::engine();
        let (mut txouts, mut transactions, mut total) = (0u64, 0u64, 0u64);
        let mut last_txid = None;
        for row in table.iter().map_err(StoreError::from)? {
            let (key, value) = row.map_err(StoreError::from)?;
            let outpoint = outpoint_from_key(key.value());
            let coin =
                Coin::from_bytes(value.value()).map_err(|e| StoreError::Corrupt(format!("coin {outpoint}: {e}")))?;
            // Core's TxOutSer: outpoint, height·2 + coinbase as u32, output.
            let mut ser = bitcoin::consensus::serialize(&outpoint);
            ser.extend_from_slice(&((coin.height << 1) | u32::from(coin.is_coinbase)).to_le_bytes());
            ser.extend_from_slice(&bitcoin::consensus::serialize(&coin.output));
            engine.input(&ser);
            txouts += 1;
            total += coin.value().to_sat();
            if last_txid != Some(outpoint.txid) {
                transactions += 1;
                last_txid = Some(outpoint.txid);
            }
        }
        let tip = self.tip();
        Ok(UtxoSetInfo {
            best_block: tip.hash,
            height: tip.height,
            transactions,
            txouts,
            total_amount: total,
            hash_serialized: sha256d::Hash::from_engine(engine),
        })
    }
}
