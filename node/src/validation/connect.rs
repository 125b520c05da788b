//! Connecting a block to the UTXO set: every input exists, is unspent and
//! mature, amounts add up, relative lock times are met, the sigop budget
//! holds, every script passes (in parallel), and the coinbase claims no more
//! than subsidy plus fees (Core's `ConnectBlock`).

use std::collections::{HashMap, HashSet};

use bitcoin::{Amount, Block, OutPoint, Transaction, TxOut};
use rayon::prelude::*;
use satpool_consensus::{PrecomputedTx, VerifyFlags};

use super::{BlockError, MAX_BLOCK_SIGOPS_COST};
use crate::params::{ChainParams, ScriptRuleException};
use crate::utxo::{Coin, CoinView};

/// A coin a block spent, kept as undo data so the block can be disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentCoin {
    /// Where it was.
    pub outpoint: OutPoint,
    /// What it was.
    pub coin: Coin,
}

/// What connecting a block does to the UTXO set.
#[derive(Debug, Clone, Default)]
pub struct BlockConnection {
    /// Coins spent, in block order (the undo data).
    pub spent: Vec<SpentCoin>,
    /// Coins created and still unspent at the end of the block.
    pub created: Vec<(OutPoint, Coin)>,
    /// Total fees.
    pub fees: Amount,
}

/// Script verification flags for a block at `height` (Core's `GetBlockScriptFlags`).
pub fn script_flags(block: &Block, height: u32, params: &ChainParams) -> VerifyFlags {
    let hash = block.block_hash();
    let mut flags = match params.script_flag_exceptions.iter().find(|(h, _)| *h == hash) {
        Some((_, ScriptRuleException::NoP2sh)) => VerifyFlags::NONE,
        Some((_, ScriptRuleException::NoTaproot)) => VerifyFlags::P2SH | VerifyFlags::WITNESS,
        None => VerifyFlags::P2SH | VerifyFlags::WITNESS | VerifyFlags::TAPROOT,
    };
    if height >= params.bip66_height {
        flags |= VerifyFlags::DERSIG;
    }
    if height >= params.bip65_height {
        flags |= VerifyFlags::CHECKLOCKTIMEVERIFY;
    }
    if height >= params.csv_height {
        flags |= VerifyFlags::CHECKSEQUENCEVERIFY;
    }
    if height >= params.segwit_height {
        flags |= VerifyFlags::NULLDUMMY;
    }
    flags
}

/// The lowest height and time at which a transaction's BIP 68 relative lock
/// times are met, as Core's `CalculateSequenceLocks`: the transaction is final
/// in a block at height `h` whose parent's median time past is `t` when
/// `min_height < h && min_time < t`. `median_time_past_at(h)` gives the
/// median time past of the active chain's block at height `h`.
pub fn sequence_locks(
    tx: &Transaction,
    coin_heights: &[u32],
    block_height: u32,
    median_time_past_at: &dyn Fn(u32) -> u32,
) -> (i64, i64) {
    const DISABLE: u32 = 1 << 31;
    const TYPE_TIME: u32 = 1 << 22;
    const MASK: u32 = 0x0000_ffff;
    let mut min_height: i64 = -1;
    let mut min_time: i64 = -1;
    if tx.version.0 < 2 {
        return (min_height, min_time);
    }
    for (input, &coin_height) in tx.input.iter().zip(coin_heights) {
        let sequence = input.sequence.0;
        if sequence & DISABLE != 0 {
            continue;
        }
        // A coin created in this very block has the block's own height.
        let coin_height = coin_height.min(block_height);
        if sequence & TYPE_TIME != 0 {
            let base = median_time_past_at(coin_height.saturating_sub(1));
            min_time = min_time.max(i64::from(base) + (i64::from(sequence & MASK) << 9) - 1);
        } else {
            min_height = min_height.max(i64::from(coin_height) + i64::from(sequence & MASK) - 1);
        }
    }
    (min_height, min_time)
}

/// Checks a block against the UTXO view of its parent and returns what it
/// does to the UTXO set. `median_time_past_at(h)` gives the median time past
/// of the ancestor at height `h` (for BIP 68 time locks); `parent_mtp` is the
/// parent's. Nothing is written: the caller applies the result atomically.
pub fn connect_block(
    block: &Block,
    height: u32,
    parent_mtp: u32,
    view: &dyn CoinView,
    median_time_past_at: &(dyn Fn(u32) -> u32 + Sync),
    params: &ChainParams,
) -> Result<BlockConnection, BlockError> {
    let flags = script_flags(block, height, params);
    let enforce_sequence_locks = height >= params.csv_height;
    let enforce_bip30 = height < params.bip34_height;

    // Outputs created earlier in this block, spendable by later transactions.
    let mut created: HashMap<OutPoint, Coin> = HashMap::new();
    let mut spent_in_block: HashSet<OutPoint> = HashSet::new();
    let mut connection = BlockConnection::default();
    let mut fees = Amount::ZERO;
    let mut sigop_cost = 0usize;
    // Per transaction: its spent outputs, for the script checks afterwards.
    let mut spent_outputs: Vec<Vec<TxOut>> = Vec::with_capacity(block.txdata.len());

    for (tx_index, tx) in block.txdata.iter().enumerate() {
        let txid = tx.compute_txid();
        let inputs_error = |reason: &'static str| BlockError::TxInputs { txid, reason };
        if enforce_bip30 {
            for vout in 0..tx.output.len() as u32 {
                let outpoint = OutPoint { txid, vout };
                if created.contains_key(&outpoint) || view.coin(&outpoint).is_some() {
                    return Err(BlockError::Bip30);
                }
            }
        }

        let mut prevouts = Vec::with_capacity(tx.input.len());
        if tx_index > 0 {
            let mut value_in = Amount::ZERO;
            let mut coin_heights = Vec::with_capacity(tx.input.len());
            for input in &tx.input {
                let outpoint = input.previous_output;
                let coin = if let Some(coin) = created.remove(&outpoint) {
                    coin
                } else if spent_in_block.contains(&outpoint) {
                    return Err(inputs_error("bad-txns-inputs-missingorspent"));
                } else {
                    let coin = view.coin(&outpoint).ok_or_else(|| inputs_error("bad-txns-inputs-missingorspent"))?;
                    spent_in_block.insert(outpoint);
                    connection.spent.push(SpentCoin { outpoint, coin: coin.clone() });
                    coin
                };
                if coin.is_coinbase && height - coin.height < params.coinbase_maturity {
                    return Err(inputs_error("bad-txns-premature-spend-of-coinbase"));
                }
                value_in = value_in
                    .checked_add(coin.value())
                    .filter(|v| *v <= Amount::MAX_MONEY && coin.value() <= Amount::MAX_MONEY)
                    .ok_or_else(|| inputs_error("bad-txns-inputvalues-outofrange"))?;
                coin_heights.push(coin.height);
                prevouts.push(coin.output);
            }
            let value_out = tx.output.iter().map(|o| o.value).sum::<Amount>();
            if value_in < value_out {
                return Err(inputs_error("bad-txns-in-belowout"));
            }
            let fee = value_in - value_out;
            fees = fees
                .checked_add(fee)
                .filter(|f| *f <= Amount::MAX_MONEY)
                .ok_or_else(|| inputs_error("bad-txns-fee-outofrange"))?;

            if enforce_sequence_locks {
                let (min_height, min_time) = sequence_locks(tx, &coin_heights, height, median_time_past_at);
                if min_height >= i64::from(height) || min_time >= i64::from(parent_mtp) {
                    return Err(BlockError::NonBip68Final(txid));
                }
            }
        }

        sigop_cost += satpool_consensus::transaction_sigop_cost(tx, &prevouts, flags);
        if sigop_cost > MAX_BLOCK_SIGOPS_COST {
            return Err(BlockError::Sigops);
        }

        for (vout, output) in tx.output.iter().enumerate() {
            // Provably unspendable outputs never enter the UTXO set.
            if output.script_pubkey.is_op_return() || output.script_pubkey.len() > 10_000 {
                continue;
            }
            created.insert(
                OutPoint { txid, vout: vout as u32 },
                Coin { output: output.clone(), height, is_coinbase: tx_index == 0 },
            );
        }
        spent_outputs.push(prevouts);
    }

    let subsidy = params.block_subsidy(height);
    let limit = fees.checked_add(subsidy).expect("fees and subsidy are each at most MAX_MONEY");
    let coinbase_value = block.txdata[0].output.iter().map(|o| o.value).sum::<Amount>();
    if coinbase_value > limit {
        return Err(BlockError::BadCoinbaseAmount { actual: coinbase_value.to_sat(), limit: limit.to_sat() });
    }

    verify_scripts(block, &spent_outputs, flags)?;

    connection.fees = fees;
    // Coins created in this block keep their order by transaction for a
    // deterministic write order.
    let mut created: Vec<_> = created.into_iter().collect();
    created.sort_by_key(|(op, _)| (op.txid, op.vout));
    connection.created = created;
    Ok(connection)
}

/// Verifies every input script of the block's transactions in parallel on
/// all cores, reporting the first failing input in block order.
fn verify_scripts(block: &Block, spent_outputs: &[Vec<TxOut>], flags: VerifyFlags) -> Result<(), BlockError> {
    let checks: Vec<(usize, usize)> =
        block.txdata.iter().enumerate().skip(1).flat_map(|(t, tx)| (0..tx.input.len()).map(move |i| (t, i))).collect();
    if checks.is_empty() {
        return Ok(());
    }
    let precomputed: Vec<Option<PrecomputedTx<'_>>> = block
        .txdata
        .par_iter()
        .zip(spent_outputs.par_iter())
        .enumerate()
        .map(|(t, (tx, spent))| {
            (t > 0).then(|| PrecomputedTx::new(tx, spent).expect("one spent output was collected per input"))
        })
        .collect();
    let failure = checks
        .par_iter()
        .filter_map(|&(t, i)| {
            let pre = precomputed[t].as_ref().expect("non-coinbase transactions are precomputed");
            satpool_consensus::verify_input(pre, i, flags).err().map(|e| (t, i, e))
        })
        .min_by_key(|(t, i, _)| (*t, *i));
    match failure {
        None => Ok(()),
        Some((t, input, error)) => Err(BlockError::Script { txid: block.txdata[t].compute_txid(), input, error }),
    }
}
