//! Merkle proofs of inclusion for SPV clients (whitepaper section 8):
//! `gettxoutproof` and `verifytxoutproof`, as Bitcoin Core answers them
//! without a transaction index.

use std::collections::BTreeSet;

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Txid};
use satpool_rpc::{Arg, FromParam, Hash256, Request, RpcError};
use serde_json::{json, Value};

use super::encode::block_hash;
use super::{store_error, NodeRpc};
use crate::chain::status;
use crate::spv;

impl NodeRpc {
    /// `gettxoutproof ["txid",...] ( "blockhash" )`: a proof that the
    /// transactions are in a block. Without `blockhash`, the block is found
    /// through an unspent output of one of them (Core without `-txindex`).
    pub(super) fn gettxoutproof(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("txids"), Arg::Optional("blockhash")])?;
        let list: Vec<Value> = params.required(0)?;
        if list.is_empty() {
            return Err(RpcError::invalid_parameter("Parameter 'txids' cannot be empty"));
        }
        let mut txids = BTreeSet::new();
        for value in &list {
            let txid = Txid::from_byte_array(Hash256::from_param(value, "txid")?.0);
            if !txids.insert(txid) {
                let text = value.as_str().unwrap_or_default();
                return Err(RpcError::invalid_parameter(format!("Invalid parameter, duplicated txid: {text}")));
            }
        }
        let wanted_block = params.optional::<Hash256>(1)?.map(|h| block_hash(h.0));

        let node = self.node();
        let chain = &node.chain;
        let hash: BlockHash = match wanted_block {
            Some(hash) => {
                chain.index().get(&hash).ok_or_else(|| RpcError::invalid_address_or_key("Block not found"))?;
                hash
            }
            None => {
                let mut found = None;
                for txid in &txids {
                    if let Some((_, coin)) = chain.first_unspent_of(txid).map_err(store_error)? {
                        found = chain.index().active_hash(coin.height);
                        break;
                    }
                }
                found.ok_or_else(|| RpcError::invalid_address_or_key("Transaction not yet in block"))?
            }
        };
        let entry = chain.index().get(&hash).expect("found in the index above");
        if !entry.have_data() {
            return Err(RpcError::misc(if entry.status & status::PRUNED != 0 {
                "Block not available (pruned data)"
            } else {
                "Block not available (not fully downloaded)"
            }));
        }
        let block =
            chain.block(&hash).map_err(store_error)?.ok_or_else(|| RpcError::internal("Can't read block from disk"))?;
        let in_block = block.txdata.iter().filter(|tx| txids.contains(&tx.compute_txid())).count();
        if in_block != txids.len() {
            return Err(RpcError::invalid_address_or_key("Not all transactions found in specified or retrieved block"));
        }
        Ok(json!(hex::encode(spv::encode_proof(&spv::build_proof(&block, &txids)))))
    }

    /// `verifytxoutproof "proof"`: the txids a proof commits to if it is
    /// valid and its block is in the active chain with the proof's
    /// transaction count; `[]` for an invalid proof.
    pub(super) fn verifytxoutproof(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("proof")])?;
        let bytes = params.hex(0)?;
        // Core reports a stream that ends early as a plain (misc) error.
        let proof = spv::decode_proof(&bytes).map_err(|e| RpcError::misc(format!("proof does not decode: {e}")))?;
        let Ok(proven) = spv::proven_txids(&proof) else { return Ok(json!([])) };

        let node = self.node();
        let chain = &node.chain;
        let hash = proof.header.block_hash();
        let not_found = || RpcError::invalid_address_or_key("Block not found in chain");
        if !chain.index().is_active(&hash) {
            return Err(not_found());
        }
        let count = chain.tx_count(&hash).map_err(store_error)?.filter(|&n| n > 0).ok_or_else(not_found)?;
        // The count is not covered by the root in every tree shape (see
        // `spv`), so a proof must give the block's own.
        if count != proof.txn.num_transactions() {
            return Ok(json!([]));
        }
        Ok(Value::Array(proven.into_iter().map(|(txid, _)| json!(txid.to_string())).collect()))
    }
}
