//! CPU block generation: assembling a block on the tip (BIP 34 coinbase,
//! witness commitment) and searching for a nonce. Used by `generatetoaddress`,
//! `generateblock`, the devnet's built-in miner, tests and benchmarks; the
//! pool and the GPU miner do the real mining.

use std::sync::atomic::{AtomicBool, Ordering};

use bitcoin::block::{Header, Version};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::script::Builder;
use bitcoin::{
    absolute, transaction, Amount, Block, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut,
    Witness,
};

use crate::chain::Chainstate;
use crate::validation::merkle::merkle_root;

/// The coinbase of a block at `height`: the BIP 34 height and `OP_0` as
/// Core's miner writes them, paying `value` to `script_pubkey`, with the
/// all-zero witness reserved value when `witness` is set.
pub fn coinbase_transaction(height: u32, script_pubkey: ScriptBuf, value: Amount, witness: bool) -> Transaction {
    let script_sig = Builder::new().push_int(i64::from(height)).push_opcode(bitcoin::opcodes::OP_0).into_script();
    let mut cb_witness = Witness::default();
    if witness {
        cb_witness.push([0u8; 32]);
    }
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: cb_witness,
        }],
        output: vec![TxOut { value, script_pubkey }],
    }
}

/// The BIP 141 commitment output script for `txdata` (coinbase first) with
/// the all-zero witness reserved value.
pub fn witness_commitment_script(txdata: &[Transaction]) -> ScriptBuf {
    witness_commitment_for(txdata.iter().skip(1).map(Transaction::compute_wtxid))
}

/// The BIP 141 commitment output script for a block whose transactions after
/// the coinbase have `wtxids`, with the all-zero witness reserved value
/// (`getblocktemplate`'s `default_witness_commitment`).
pub fn witness_commitment_for(wtxids: impl IntoIterator<Item = bitcoin::Wtxid>) -> ScriptBuf {
    // The coinbase's wtxid counts as all zeros.
    let wtxids =
        std::iter::once(sha256d::Hash::all_zeros()).chain(wtxids.into_iter().map(|w| w.to_raw_hash())).collect();
    let (root, _) = merkle_root(wtxids).expect("the list holds at least the coinbase");
    let mut preimage = root.to_byte_array().to_vec();
    preimage.extend_from_slice(&[0u8; 32]);
    let commitment = sha256d::Hash::hash(&preimage);
    let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    script.extend_from_slice(commitment.as_byte_array());
    ScriptBuf::from_bytes(script)
}

/// Recomputes a block's merkle root from its transactions.
pub fn set_merkle_root(block: &mut Block) {
    let txids = block.txdata.iter().map(|tx| tx.compute_txid().to_raw_hash()).collect();
    let (root, _) = merkle_root(txids).expect("a block has a coinbase");
    block.header.merkle_root = TxMerkleNode::from_raw_hash(root);
}

/// A block template on the chainstate's tip: coinbase paying subsidy plus
/// `fees` to `script_pubkey`, then `transactions`, with the witness
/// commitment when segwit is in force, the required bits and a time after
/// the median time past. Its nonce is not yet searched.
pub fn block_template(
    chain: &Chainstate,
    script_pubkey: ScriptBuf,
    transactions: Vec<Transaction>,
    fees: Amount,
) -> Block {
    let tip = chain.tip();
    let height = tip.height + 1;
    let params = chain.params();
    let segwit = height >= params.segwit_height;
    let value = params.block_subsidy(height) + fees;
    let mut txdata = vec![coinbase_transaction(height, script_pubkey, value, segwit)];
    txdata.extend(transactions);
    if segwit {
        let commitment = witness_commitment_script(&txdata);
        txdata[0].output.push(TxOut { value: Amount::ZERO, script_pubkey: commitment });
    }
    let time = (chain.tip_median_time_past() + 1).max(u32::try_from(chain.now()).unwrap_or(u32::MAX));
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: tip.hash,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: chain.next_work_required(time),
            nonce: 0,
        },
        txdata,
    };
    set_merkle_root(&mut block);
    block
}

/// Searches nonces for a header meeting its own bits, at most `max_tries`,
/// stopping early when `stop` is set. Returns whether one was found (the
/// header then holds it).
pub fn solve_header(header: &mut Header, max_tries: u64, stop: &AtomicBool) -> bool {
    let target = header.target();
    for tried in 0..max_tries {
        if target.is_met_by(header.block_hash()) {
            return true;
        }
        if tried % 65_536 == 65_535 && stop.load(Ordering::Relaxed) {
            return false;
        }
        header.nonce = header.nonce.wrapping_add(1);
        if header.nonce == 0 {
            // Nonce space exhausted: move time on, as Core's miner does.
            header.time += 1;
        }
    }
    false
}
