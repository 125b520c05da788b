//! BIP 152 compact blocks, version 2 (wtxid short ids): building a
//! `cmpctblock` from a block, and rebuilding a block from one with the
//! transactions of our mempool (Core's `PartiallyDownloadedBlock`), asking
//! the peer (`getblocktxn`) only for those we lack.

use std::collections::HashMap;
use std::sync::Arc;

use bitcoin::bip152::{HeaderAndShortIds, ShortId};
use bitcoin::{Block, Transaction, Wtxid};

/// The compact block version we speak (segwit: short ids from wtxids).
pub const COMPACT_VERSION: u64 = 2;
/// Core's limit on the transactions a compact block may claim
/// (`MAX_BLOCK_WEIGHT / MIN_SERIALIZABLE_TRANSACTION_WEIGHT`).
const MAX_TRANSACTIONS: usize = 4_000_000 / 40;
/// Core's `MAX_CMPCTBLOCK_DEPTH`: older blocks are sent whole.
pub const MAX_CMPCTBLOCK_DEPTH: u32 = 5;
/// Core's `MAX_BLOCKTXN_DEPTH`.
pub const MAX_BLOCKTXN_DEPTH: u32 = 10;
/// Core's limit on high-bandwidth peers.
pub const MAX_HIGH_BANDWIDTH_PEERS: usize = 3;

/// A compact block that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// No transactions, or more than a block can hold.
    #[error("compact block claims {0} transactions")]
    BadTransactionCount(usize),
    /// A prefilled index lies beyond the block.
    #[error("prefilled transaction index out of range")]
    PrefilledOutOfRange,
    /// `blocktxn` brought a different number of transactions than asked for.
    #[error("blocktxn brought {got} transactions, {expected} were missing")]
    WrongTransactionCount {
        /// Asked for.
        expected: usize,
        /// Received.
        got: usize,
    },
}

/// The `cmpctblock` for `block`, with only the coinbase prefilled.
pub fn compact_block(block: &Block, nonce: u64) -> HeaderAndShortIds {
    HeaderAndShortIds::from_block(block, nonce, COMPACT_VERSION as u32, &[])
        .expect("version 2 is a known version and an empty prefill list is ordered")
}

/// A block being rebuilt from a compact block.
#[derive(Debug, Clone)]
pub struct PartialBlock {
    header: bitcoin::block::Header,
    txs: Vec<Option<Transaction>>,
    /// Whether the short ids themselves collide (then only the full block will do).
    pub short_id_collision: bool,
}

impl PartialBlock {
    /// Fills what it can of `compact` from `pool` (wtxid, transaction).
    pub fn new<'a>(
        compact: &HeaderAndShortIds,
        pool: impl IntoIterator<Item = (Wtxid, &'a Arc<Transaction>)>,
    ) -> Result<PartialBlock, CompactError> {
        let total = compact.short_ids.len() + compact.prefilled_txs.len();
        if total == 0 || total > MAX_TRANSACTIONS {
            return Err(CompactError::BadTransactionCount(total));
        }
        let mut txs: Vec<Option<Transaction>> = vec![None; total];
        let mut filled = vec![false; total];
        // Prefilled indexes are differentially encoded.
        let mut last: i64 = -1;
        for prefilled in &compact.prefilled_txs {
            let index = last + i64::from(prefilled.idx) + 1;
            if index >= total as i64 {
                return Err(CompactError::PrefilledOutOfRange);
            }
            last = index;
            txs[index as usize] = Some(prefilled.tx.clone());
            filled[index as usize] = true;
        }
        let mut slots: HashMap<ShortId, usize> = HashMap::with_capacity(compact.short_ids.len());
        let mut short_id_collision = false;
        let mut ids = compact.short_ids.iter();
        for (i, slot) in filled.iter().enumerate() {
            if *slot {
                continue;
            }
            let id = ids.next().expect("short ids fill the slots the prefilled leave");
            if slots.insert(*id, i).is_some() {
                short_id_collision = true;
            }
        }
        let keys = ShortId::calculate_siphash_keys(&compact.header, compact.nonce);
        let mut taken = vec![false; total];
        for (wtxid, tx) in pool {
            let id = ShortId::with_siphash_keys(&wtxid, keys);
            if let Some(&i) = slots.get(&id) {
                if taken[i] {
                    // Two of our transactions share the id: ask for it.
                    txs[i] = None;
                } else {
                    taken[i] = true;
                    txs[i] = Some((**tx).clone());
                }
            }
        }
        Ok(PartialBlock { header: compact.header, txs, short_id_collision })
    }

    /// Positions still missing, for `getblocktxn`.
    pub fn missing(&self) -> Vec<u64> {
        self.txs.iter().enumerate().filter(|(_, t)| t.is_none()).map(|(i, _)| i as u64).collect()
    }

    /// The block, when nothing is missing.
    pub fn complete(&self) -> Option<Block> {
        let txdata = self.txs.iter().cloned().collect::<Option<Vec<_>>>()?;
        Some(Block { header: self.header, txdata })
    }

    /// Fills the missing positions, in order, from a `blocktxn`.
    pub fn fill(mut self, found: Vec<Transaction>) -> Result<Block, CompactError> {
        let missing = self.missing();
        if missing.len() != found.len() {
            return Err(CompactError::WrongTransactionCount { expected: missing.len(), got: found.len() });
        }
        for (i, tx) in missing.into_iter().zip(found) {
            self.txs[i as usize] = Some(tx);
        }
        Ok(self.complete().expect("every position is filled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::{siphash24, Hash};
    use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};

    #[test]
    fn siphash_matches_core_vectors() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/siphash.json"))
            .expect("the shared siphash vectors");
        let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let mut checked = 0;
        for case in cases {
            let key = |i: usize| u64::from_str_radix(case["key"][i].as_str().unwrap(), 16).unwrap();
            // Inputs are hex bytes; Core's `Write(uint64)` cases are also
            // tried as little-endian words.
            let words: Vec<Vec<u8>> =
                case["input"].as_array().unwrap().iter().map(|w| hex::decode(w.as_str().unwrap()).unwrap()).collect();
            let raw: Vec<u8> = words.concat();
            let words_le: Vec<u8> = words
                .iter()
                .flat_map(|w| if w.len() == 8 { w.iter().rev().copied().collect::<Vec<u8>>() } else { w.clone() })
                .collect();
            let Some(expected) = case["expected"]["siphash24"].as_str() else { continue };
            let got =
                |input: &[u8]| format!("{:016x}", siphash24::Hash::hash_with_keys(key(0), key(1), input).as_u64());
            assert!(got(&raw) == expected || got(&words_le) == expected, "{case}: {} / {}", got(&raw), got(&words_le));
            checked += 1;
        }
        assert!(checked >= 5);
    }

    fn tx(n: u32) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint { txid: bitcoin::Txid::from_byte_array([n as u8; 32]), vout: n },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::from_slice(&[vec![n as u8; 3]]),
            }],
            output: vec![TxOut { value: Amount::from_sat(u64::from(n)), script_pubkey: ScriptBuf::new() }],
        }
    }

    fn block() -> Block {
        let mut coinbase = tx(0);
        coinbase.input[0].previous_output = OutPoint::null();
        let mut block = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        block.txdata = vec![coinbase, tx(1), tx(2), tx(3)];
        block.header.merkle_root = block.compute_merkle_root().unwrap();
        block
    }

    #[test]
    fn a_block_is_rebuilt_from_the_mempool_and_blocktxn() {
        let block = block();
        let compact = compact_block(&block, 42);
        assert_eq!(compact.prefilled_txs.len(), 1);
        // Our pool has transactions 1 and 3 and an unrelated one.
        let pool: Vec<Arc<Transaction>> = [1, 3, 9].into_iter().map(|n| Arc::new(tx(n))).collect();
        let partial = PartialBlock::new(&compact, pool.iter().map(|t| (t.compute_wtxid(), t))).unwrap();
        assert_eq!(partial.missing(), vec![2]);
        assert!(partial.complete().is_none());
        let rebuilt = partial.clone().fill(vec![tx(2)]).unwrap();
        assert_eq!(rebuilt, block);
        assert!(rebuilt.check_merkle_root());
        assert_eq!(partial.fill(vec![]).unwrap_err(), CompactError::WrongTransactionCount { expected: 1, got: 0 });
    }

    #[test]
    fn a_full_mempool_needs_no_round_trip() {
        let block = block();
        let compact = compact_block(&block, 7);
        let pool: Vec<Arc<Transaction>> = block.txdata[1..].iter().cloned().map(Arc::new).collect();
        let partial = PartialBlock::new(&compact, pool.iter().map(|t| (t.compute_wtxid(), t))).unwrap();
        assert_eq!(partial.complete(), Some(block));
    }

    #[test]
    fn impossible_compact_blocks_are_refused() {
        let mut compact = compact_block(&block(), 1);
        compact.prefilled_txs[0].idx = 10;
        assert_eq!(PartialBlock::new(&compact, []).unwrap_err(), CompactError::PrefilledOutOfRange);
        compact.prefilled_txs.clear();
        compact.short_ids.clear();
        assert_eq!(PartialBlock::new(&compact, []).unwrap_err(), CompactError::BadTransactionCount(0));
    }
}
