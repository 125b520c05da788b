//! Block rules that need no UTXO set: structure, merkle root, coinbase,
//! context-free transaction checks, legacy sigops (`CheckBlock`), then
//! finality, BIP 34, witness commitment and weight (`ContextualCheckBlock`).

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::script::Builder;
use bitcoin::{Block, Transaction};

use super::merkle::merkle_root;
use super::{BlockError, MAX_BLOCK_SIGOPS_COST, MAX_BLOCK_WEIGHT, WITNESS_SCALE_FACTOR};
use crate::params::ChainParams;

/// Core's `CheckBlock`, proof of work included.
pub fn check_block(block: &Block, params: &ChainParams) -> Result<(), BlockError> {
    super::check_header(&block.header, params)?;
    check_block_contents(block)
}

/// Core's `CheckBlock` without the proof of work (its `fCheckPOW = false`,
/// as `getblocktemplate` proposals are checked): structure, merkle root,
/// coinbase, context-free transaction checks and legacy sigops.
pub fn check_block_contents(block: &Block) -> Result<(), BlockError> {
    let txids = block.txdata.iter().map(|tx| tx.compute_txid().to_raw_hash()).collect();
    let (root, mutated) = merkle_root(txids).ok_or(BlockError::BadLength)?;
    if root != block.header.merkle_root.to_raw_hash() {
        return Err(BlockError::BadMerkleRoot);
    }
    if mutated {
        return Err(BlockError::DuplicateTx);
    }

    // Size limits, on the serialisation without witness.
    let stripped_size = block.txdata.iter().map(Transaction::base_size).sum::<usize>() + 80 + 9;
    if block.txdata.len() * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT as usize
        || stripped_size * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT as usize
    {
        return Err(BlockError::BadLength);
    }

    if !block.txdata[0].is_coinbase() {
        return Err(BlockError::CoinbaseMissing);
    }
    if block.txdata[1..].iter().any(Transaction::is_coinbase) {
        return Err(BlockError::CoinbaseMultiple);
    }

    let mut sigops = 0usize;
    for tx in &block.txdata {
        satpool_consensus::check_transaction(tx)
            .map_err(|e| BlockError::TxCheck { txid: tx.compute_txid(), reason: e.reject_reason() })?;
        sigops += satpool_consensus::legacy_sigop_count(tx);
    }
    if sigops * WITNESS_SCALE_FACTOR > MAX_BLOCK_SIGOPS_COST {
        return Err(BlockError::Sigops);
    }
    Ok(())
}

/// Core's `ContextualCheckBlock`: the rules that depend on the block's height
/// and its parent's median time past.
pub fn contextual_check_block(
    block: &Block,
    height: u32,
    parent_median_time_past: u32,
    params: &ChainParams,
) -> Result<(), BlockError> {
    // BIP 113: with CSV in force, lock times are compared with the median
    // time past, not the block's own (miner-chosen) time.
    let lock_time_cutoff = if height >= params.csv_height { parent_median_time_past } else { block.header.time };
    for tx in &block.txdata {
        if !is_final(tx, height, lock_time_cutoff) {
            return Err(BlockError::NonFinal(tx.compute_txid()));
        }
    }

    if height >= params.bip34_height {
        let expected = Builder::new().push_int(i64::from(height)).into_script();
        if !block.txdata[0].input[0].script_sig.as_bytes().starts_with(expected.as_bytes()) {
            return Err(BlockError::BadCoinbaseHeight);
        }
    }

    // BIP 141: the witness commitment, else no witness data at all.
    let mut have_witness_commitment = false;
    if height >= params.segwit_height {
        if let Some(index) = witness_commitment_index(&block.txdata[0]) {
            have_witness_commitment = true;
            let witness = &block.txdata[0].input[0].witness;
            if witness.len() != 1 || witness.nth(0).map(<[u8]>::len) != Some(32) {
                return Err(BlockError::BadWitnessNonceSize);
            }
            let reserved = witness.nth(0).expect("length checked above");
            let wtxids = block
                .txdata
                .iter()
                .enumerate()
                .map(|(i, tx)| if i == 0 { sha256d::Hash::all_zeros() } else { tx.compute_wtxid().to_raw_hash() })
                .collect();
            let (root, _) = merkle_root(wtxids).expect("a checked block has transactions");
            let mut preimage = root.to_byte_array().to_vec();
            preimage.extend_from_slice(reserved);
            let commitment = sha256d::Hash::hash(&preimage);
            let script = block.txdata[0].output[index].script_pubkey.as_bytes();
            if script[6..38] != commitment.to_byte_array() {
                return Err(BlockError::BadWitnessMerkleMatch);
            }
        }
    }
    if !have_witness_commitment && block.txdata.iter().any(|tx| tx.input.iter().any(|i| !i.witness.is_empty())) {
        return Err(BlockError::UnexpectedWitness);
    }

    if block.weight().to_wu() > MAX_BLOCK_WEIGHT {
        return Err(BlockError::BadWeight);
    }
    Ok(())
}

/// The index of the coinbase output that carries the witness commitment: the
/// last one whose script starts `OP_RETURN 0x24 aa21a9ed` (BIP 141).
pub fn witness_commitment_index(coinbase: &Transaction) -> Option<usize> {
    const PREFIX: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    coinbase.output.iter().rposition(|out| {
        let s = out.script_pubkey.as_bytes();
        s.len() >= 38 && s[..6] == PREFIX
    })
}

/// Core's `IsFinalTx`: whether `tx` may be in a block at `height` whose
/// lock-time cutoff (its parent's median time past once BIP 113 is in force)
/// is `cutoff_time`.
pub fn is_final(tx: &Transaction, height: u32, cutoff_time: u32) -> bool {
    let lock_time = tx.lock_time.to_consensus_u32();
    if lock_time == 0 {
        return true;
    }
    // Below 500,000,000 a lock time is a height, above it a time.
    let limit = if lock_time < 500_000_000 { height } else { cutoff_time };
    if lock_time < limit {
        return true;
    }
    tx.input.iter().all(|i| i.sequence.0 == u32::MAX)
}
