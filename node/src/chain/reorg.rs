//! Moving the active chain: choosing the branch with the most work, and
//! connecting or disconnecting one block at a time, each in one commit.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Instant;

use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, OutPoint};
use redb::ReadableTable;

use super::index::status;
use super::store::{StoreError, INDEX, META, META_TIP, UNDO, UTXO};
use super::{undo, ChainError, ChainEvent, Chainstate, TableView};
use crate::utxo::outpoint_key;
use crate::validation;

impl Chainstate {
    /// Adds `hash` and every descendant whose branch now has all its data to
    /// the candidate set (Core's `ReceivedBlockTransactions`).
    pub(super) fn add_candidates_from(&mut self, hash: &BlockHash) {
        let entry = self.index.get(hash).expect("caller indexed it");
        let parent_linked = entry.height == 0 || self.is_linked(&entry.header.prev_blockhash);
        if !parent_linked {
            return;
        }
        let mut stack = vec![*hash];
        while let Some(h) = stack.pop() {
            let e = self.index.get(&h).expect("descendants are indexed");
            if !e.have_data() || e.failed() {
                continue;
            }
            self.candidates.insert((e.chainwork, Reverse(e.sequence), h));
            stack.extend_from_slice(self.index.children(&h));
        }
    }

    /// Whether `hash` and all its ancestors have data and none failed.
    fn is_linked(&self, hash: &BlockHash) -> bool {
        match self.index.get(hash) {
            Some(e) => {
                self.index.is_active(hash) || self.candidates.contains(&(e.chainwork, Reverse(e.sequence), *hash))
            }
            None => false,
        }
    }

    /// Core's `ActivateBestChain`.
    pub fn activate_best_chain(&mut self) -> Result<(), ChainError> {
        self.activate_best_chain_with(None)
    }

    /// As [`Chainstate::activate_best_chain`], with a block already in memory
    /// that need not be read back.
    pub(super) fn activate_best_chain_with(&mut self, in_hand: Option<&Block>) -> Result<(), ChainError> {
        loop {
            let Some(best) = self.best_candidate() else { return Ok(()) };
            let tip = self.index.tip().clone();
            let best_entry = self.index.get(&best).expect("candidates are indexed").clone();
            if best == tip.hash || best_entry.chainwork <= tip.chainwork {
                return Ok(());
            }
            let fork = self.index.fork_point(&best, &tip.hash).expect("every branch reaches genesis").clone();
            while self.index.tip().hash != fork.hash {
                self.disconnect_tip()?;
            }
            // The new branch, from just above the fork up to `best`.
            let mut path = Vec::new();
            let mut cursor = best_entry.clone();
            while cursor.hash != fork.hash {
                path.push(cursor.hash);
                cursor = self.index.get(&cursor.header.prev_blockhash).expect("ancestors are indexed").clone();
            }
            path.reverse();
            for hash in path {
                let block = match in_hand.filter(|b| b.block_hash() == hash) {
                    Some(b) => b.clone(),
                    None => self
                        .store
                        .block(&hash)?
                        .ok_or_else(|| StoreError::Corrupt(format!("block {hash} has HAVE_DATA but no data")))?,
                };
                if let Err(e) = self.connect_tip(&block)? {
                    tracing::warn!(block = %hash, reason = %e.reject_reason(), "block failed to connect: {e}");
                    self.mark_invalid(&hash)?;
                    self.last_connect_error = Some(e);
                    // Choose again: the old branch may still have the most work.
                    break;
                }
            }
        }
    }

    fn best_candidate(&mut self) -> Option<BlockHash> {
        while let Some(&(work, seq, hash)) = self.candidates.last() {
            let entry = self.index.get(&hash).expect("candidates are indexed");
            if entry.failed() {
                self.candidates.remove(&(work, seq, hash));
                continue;
            }
            return Some(hash);
        }
        None
    }

    /// Connects `block`, a child of the tip. `Ok(Err(_))` if it breaks a rule
    /// (nothing is written then); `Err(_)` if storage failed.
    fn connect_tip(&mut self, block: &Block) -> Result<Result<(), validation::BlockError>, ChainError> {
        let started = Instant::now();
        let hash = block.block_hash();
        let entry = self.index.get(&hash).expect("connected blocks are indexed").clone();
        let parent_hash = block.header.prev_blockhash;
        let parent_mtp = self.index.median_time_past(&parent_hash);
        let index = &self.index;
        let mtp_at = |h: u32| {
            let ancestor = index.ancestor(&parent_hash, h).expect("heights up to the parent's are on its branch");
            index.median_time_past(&ancestor.hash)
        };

        let txn = self.store.db.begin_write().map_err(StoreError::from)?;
        let connection = {
            let utxo = txn.open_table(UTXO).map_err(StoreError::from)?;
            let view = TableView { table: &utxo, error: Default::default() };
            let result = validation::connect_block(block, entry.height, parent_mtp, &view, &mtp_at, &self.params);
            if let Some(e) = view.error.into_inner() {
                return Err(e.into());
            }
            match result {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            }
        };
        let mut entry = entry;
        entry.status |= status::VALID_SCRIPTS;
        {
            let mut utxo = txn.open_table(UTXO).map_err(StoreError::from)?;
            for spent in &connection.spent {
                utxo.remove(&outpoint_key(&spent.outpoint)).map_err(StoreError::from)?;
            }
            for (outpoint, coin) in &connection.created {
                utxo.insert(&outpoint_key(outpoint), coin.to_bytes().as_slice()).map_err(StoreError::from)?;
            }
            let mut undo_table = txn.open_table(UNDO).map_err(StoreError::from)?;
            undo_table
                .insert(hash.as_byte_array(), undo::encode(&connection.spent).as_slice())
                .map_err(StoreError::from)?;
            let mut index = txn.open_table(INDEX).map_err(StoreError::from)?;
            index.insert(hash.as_byte_array(), entry.encode().as_slice()).map_err(StoreError::from)?;
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            meta.insert(META_TIP, hash.as_byte_array().as_slice()).map_err(StoreError::from)?;
        }
        txn.commit().map_err(StoreError::from)?;

        *self.index.get_mut(&hash).expect("indexed") = entry.clone();
        self.index.push_active(hash);
        self.push_event(|| ChainEvent::Connected { block: Arc::new(block.clone()), height: entry.height });
        tracing::info!(
            height = entry.height,
            hash = %hash,
            txs = block.txdata.len(),
            fees = connection.fees.to_sat(),
            ms = started.elapsed().as_millis() as u64,
            "connected block"
        );
        Ok(Ok(()))
    }

    /// Disconnects the tip using its undo data (Core's `DisconnectTip`).
    pub(super) fn disconnect_tip(&mut self) -> Result<(), ChainError> {
        let tip = self.index.tip().clone();
        assert!(tip.height > 0, "the genesis block is never disconnected");
        let block = self
            .store
            .block(&tip.hash)?
            .ok_or_else(|| StoreError::Corrupt(format!("active block {} has no data", tip.hash)))?;
        let txn = self.store.db.begin_write().map_err(StoreError::from)?;
        {
            let mut undo_table = txn.open_table(UNDO).map_err(StoreError::from)?;
            let spent = {
                let row = undo_table.get(tip.hash.as_byte_array()).map_err(StoreError::from)?;
                let bytes = row.ok_or_else(|| StoreError::Corrupt(format!("no undo data for {}", tip.hash)))?;
                undo::decode(bytes.value()).ok_or_else(|| StoreError::Corrupt(format!("undo data of {}", tip.hash)))?
            };
            let mut utxo = txn.open_table(UTXO).map_err(StoreError::from)?;
            for tx in &block.txdata {
                let txid = tx.compute_txid();
                for vout in 0..tx.output.len() as u32 {
                    utxo.remove(&outpoint_key(&OutPoint { txid, vout })).map_err(StoreError::from)?;
                }
            }
            for s in &spent {
                utxo.insert(&outpoint_key(&s.outpoint), s.coin.to_bytes().as_slice()).map_err(StoreError::from)?;
            }
            undo_table.remove(tip.hash.as_byte_array()).map_err(StoreError::from)?;
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            meta.insert(META_TIP, tip.header.prev_blockhash.as_byte_array().as_slice()).map_err(StoreError::from)?;
        }
        txn.commit().map_err(StoreError::from)?;
        self.index.pop_active();
        let height = tip.height;
        self.push_event(move || ChainEvent::Disconnected { block: Arc::new(block), height });
        // It may become the tip again later.
        if !tip.failed() {
            self.candidates.insert((tip.chainwork, Reverse(tip.sequence), tip.hash));
        }
        tracing::info!(height = tip.height, hash = %tip.hash, "disconnected block");
        Ok(())
    }
}
