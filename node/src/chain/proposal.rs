//! Checking a block without keeping it (Core's `TestBlockValidity`): for
//! `getblocktemplate` proposals and for testing a template before mining it.

use bitcoin::Block;

use redb::ReadableDatabase;

use super::store::{StoreError, UTXO};
use super::{ChainError, Chainstate, TableView};
use crate::validation::{self, BlockError};

impl Chainstate {
    /// Runs every rule on `block` as a child of the tip (header rules
    /// against the tip, the block rules, and the connection against the
    /// tip's UTXO set in a read transaction) and stores, connects or marks
    /// nothing. `check_pow` says whether the proof of work is checked too
    /// (proposals are not: Core's `fCheckPOW = false`).
    ///
    /// `Ok(Err(_))` if the block breaks a rule; `Err(PrevBlockNotFound)` if
    /// it does not build on the tip (only such blocks can be tested);
    /// `Err(Store)` if storage failed.
    pub fn test_block_validity(&self, block: &Block, check_pow: bool) -> Result<Result<(), BlockError>, ChainError> {
        let tip = self.tip().clone();
        if block.header.prev_blockhash != tip.hash {
            return Err(ChainError::PrevBlockNotFound(block.header.prev_blockhash));
        }
        let height = tip.height + 1;
        let parent_mtp = self.index.median_time_past(&tip.hash);
        let checks = || -> Result<(), BlockError> {
            if check_pow {
                validation::check_header(&block.header, &self.params)?;
            }
            self.with_header_context(&tip, |ctx| {
                validation::contextual_check_header(&block.header, ctx, &self.params)
            })?;
            validation::check_block_contents(block)?;
            validation::contextual_check_block(block, height, parent_mtp, &self.params)
        };
        if let Err(e) = checks() {
            return Ok(Err(e));
        }

        let index = &self.index;
        let tip_hash = tip.hash;
        let mtp_at = |h: u32| {
            let ancestor = index.ancestor(&tip_hash, h).expect("heights up to the tip's are on the active chain");
            index.median_time_past(&ancestor.hash)
        };
        let txn = self.store.db.begin_read().map_err(StoreError::from)?;
        let utxo = txn.open_table(UTXO).map_err(StoreError::from)?;
        let view = TableView { table: &utxo, error: Default::default() };
        let result = validation::connect_block(block, height, parent_mtp, &view, &mtp_at, &self.params);
        if let Some(e) = view.error.into_inner() {
            return Err(e.into());
        }
        Ok(result.map(|_| ()))
    }
}
