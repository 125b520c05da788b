//! Pruning old block data (whitepaper section 7): `pruneblockchain`, as
//! Bitcoin Core answers it.

use satpool_rpc::{Arg, Request, RpcError};
use serde_json::{json, Value};

use super::{store_error, NodeRpc};
use crate::chain::{prune_after_height, MIN_BLOCKS_TO_KEEP};

/// Heights above this are taken for timestamps (Core: too high to be a
/// height, too low to be a time after September 2001).
const TIMESTAMP_THRESHOLD: i64 = 1_000_000_000;
/// Slack before a timestamp, for blocks with old times (Core's `TIMESTAMP_WINDOW`).
const TIMESTAMP_WINDOW: i64 = 2 * 60 * 60;

impl NodeRpc {
    /// `pruneblockchain height`: deletes block data up to `height` (or the
    /// last block before a Unix time), keeping the last 288 blocks; returns
    /// the height of the last block pruned, or -1.
    pub(super) fn pruneblockchain(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("height")])?;
        let requested: i64 = params.required(0)?;
        self.node.with(|node| {
            let chain = &mut node.chain;
            if !chain.prune_mode().is_on() {
                return Err(RpcError::misc("Cannot prune blocks because node is not in prune mode."));
            }
            if requested < 0 {
                return Err(RpcError::invalid_parameter("Negative block height."));
            }
            let tip = chain.tip().height;
            let mut height = if requested > TIMESTAMP_THRESHOLD {
                earliest_at_least(chain, requested - TIMESTAMP_WINDOW).ok_or_else(|| {
                    RpcError::invalid_parameter("Could not find block with at least the specified timestamp.")
                })?
            } else {
                u32::try_from(requested).expect("between 0 and a billion")
            };
            if tip < prune_after_height(chain.params().network) {
                return Err(RpcError::misc("Blockchain is too short for pruning."));
            }
            if height > tip {
                return Err(RpcError::invalid_parameter("Blockchain is shorter than the attempted prune height."));
            }
            if height > tip - MIN_BLOCKS_TO_KEEP {
                tracing::debug!("attempt to prune blocks close to the tip; retaining the minimum number of blocks");
                height = tip - MIN_BLOCKS_TO_KEEP;
            }
            chain.prune_to_height(height).map_err(store_error)?;
            Ok(json!(chain.prune_height().map_or(-1, |first| i64::from(first) - 1)))
        })
    }
}

/// The height of the first active block whose time, or an ancestor's, is at
/// least `time` (Core's `FindEarliestAtLeast` on `GetBlockTimeMax`).
fn earliest_at_least(chain: &crate::chain::Chainstate, time: i64) -> Option<u32> {
    let index = chain.index();
    let mut max_time = 0i64;
    for height in 0..=chain.tip().height {
        let entry = index.get(&index.active_hash(height)?)?;
        max_time = max_time.max(i64::from(entry.header.time));
        if max_time >= time {
            return Some(height);
        }
    }
    None
}
