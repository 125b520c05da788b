//! Making blocks: `submitblock`, `generatetoaddress`, `generateblock`.

use bitcoin::consensus::deserialize;
use bitcoin::{Block, ScriptBuf, Transaction};
use satpool_rpc::{Arg, Request, RpcError};
use serde_json::{json, Value};

use super::{store_error, NodeRpc};
use crate::chain::{BlockOutcome, ChainError, Chainstate};
use crate::mining;

/// Core's default `maxtries` for the generate methods.
const DEFAULT_MAX_TRIES: u64 = 1_000_000;

impl NodeRpc {
    pub(super) fn submitblock(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("hexdata"), Arg::Optional("dummy")])?;
        // Core's `DecodeHexBlk`: text that is not hex fails like bytes that
        // are not a block, with -22 "Block decode failed" (not -8).
        let text: String = params.required(0)?;
        let block: Block = hex::decode(&text)
            .ok()
            .and_then(|bytes| deserialize(&bytes).ok())
            .ok_or_else(|| RpcError::deserialization("Block decode failed"))?;
        if block.txdata.first().is_none_or(|tx| !tx.is_coinbase()) {
            return Err(RpcError::deserialization("Block does not start with a coinbase"));
        }
        let hash = block.block_hash();
        let outcome = self.node.with(|node| node.process_block(&block));
        Ok(match outcome {
            Ok(BlockOutcome::Connected) => Value::Null,
            Ok(BlockOutcome::Duplicate) => json!("duplicate"),
            Ok(BlockOutcome::SideBranch) => json!("inconclusive"),
            Err(ChainError::PrevBlockNotFound(_)) => json!("inconclusive"),
            Err(e) => match e.reject_reason() {
                Some(reason) => {
                    tracing::info!(block = %hash, %reason, "submitblock rejected: {e}");
                    json!(reason)
                }
                None => return Err(store_error(e)),
            },
        })
    }

    pub(super) fn generatetoaddress(&self, request: &Request) -> Result<Value, RpcError> {
        let params =
            request.params(&[Arg::Required("nblocks"), Arg::Required("address"), Arg::Optional("maxtries")])?;
        let nblocks: i64 = params.required(0)?;
        let address: String = params.required(1)?;
        let max_tries: u64 = params.or(2, DEFAULT_MAX_TRIES)?;
        let script =
            self.parse_address(&address).ok_or_else(|| RpcError::invalid_address_or_key("Error: Invalid address"))?;
        let mut hashes = Vec::new();
        let mut tries_left = max_tries;
        for _ in 0..nblocks.max(0) {
            // As Core's generate: the mempool's best transactions, chosen as for a template.
            let block = self.block_from_mempool(script.clone());
            match self.solve_and_submit(block, &mut tries_left, true)? {
                Some(block) => hashes.push(json!(block.block_hash().to_string())),
                None => break,
            }
        }
        Ok(Value::Array(hashes))
    }

    pub(super) fn generateblock(&self, request: &Request) -> Result<Value, RpcError> {
        let params =
            request.params(&[Arg::Required("output"), Arg::Required("transactions"), Arg::Optional("submit")])?;
        let output: String = params.required(0)?;
        let raw_txs: Vec<Value> = params.required(1)?;
        let submit: bool = params.or(2, true)?;
        let script = self
            .parse_address(&output)
            .ok_or_else(|| RpcError::invalid_address_or_key("Error: Invalid address or descriptor"))?;
        let mut txs = Vec::with_capacity(raw_txs.len());
        for raw in raw_txs {
            let text = raw.as_str().ok_or_else(|| RpcError::type_error("JSON value is not a string as expected"))?;
            // As Core: 64 hex digits name a mempool transaction.
            if let (64, Ok(txid)) = (text.len(), text.parse::<bitcoin::Txid>()) {
                let tx = self.node().mempool.get(&txid).map(|e| (**e.tx()).clone());
                let tx =
                    tx.ok_or_else(|| RpcError::invalid_address_or_key(format!("Transaction {text} not in mempool.")))?;
                txs.push(tx);
                continue;
            }
            let bytes = hex::decode(text)
                .map_err(|_| RpcError::deserialization(format!("Transaction decode failed for {text}")))?;
            let tx: Transaction = deserialize(&bytes).map_err(|_| {
                RpcError::deserialization(format!(
                    "Transaction decode failed for {text}. Make sure the tx has at least one input."
                ))
            })?;
            txs.push(tx);
        }
        let mut tries = u64::MAX;
        let block =
            self.mine_one(script, txs, &mut tries, submit)?.ok_or_else(|| RpcError::misc("Failed to make block."))?;
        let mut out = json!({"hash": block.block_hash().to_string()});
        if !submit {
            out["hex"] = json!(bitcoin::consensus::encode::serialize_hex(&block));
        }
        Ok(out)
    }

    /// Builds a block on the tip, searches for its nonce without holding the
    /// chainstate lock, and submits it. `None` when the tries ran out.
    fn mine_one(
        &self,
        script: ScriptBuf,
        txs: Vec<Transaction>,
        tries_left: &mut u64,
        submit: bool,
    ) -> Result<Option<Block>, RpcError> {
        let fees = {
            let node = self.node();
            let chain = &node.chain;
            block_fees(chain, &txs)?
        };
        let block = {
            let node = self.node();
            let chain = &node.chain;
            mining::block_template(chain, script, txs, fees)
        };
        self.solve_and_submit(block, tries_left, submit)
    }

    /// Searches `block`'s nonce without holding the chainstate lock, and
    /// submits it. `None` when the tries ran out.
    pub(super) fn solve_and_submit(
        &self,
        mut block: Block,
        tries_left: &mut u64,
        submit: bool,
    ) -> Result<Option<Block>, RpcError> {
        let start_nonce = block.header.nonce;
        let found = mining::solve_header(&mut block.header, *tries_left, &self.stopping);
        *tries_left = tries_left.saturating_sub(u64::from(block.header.nonce.wrapping_sub(start_nonce)) + 1);
        if !found {
            return Ok(None);
        }
        if !submit {
            return Ok(Some(block));
        }
        match self.node.with(|node| node.process_block(&block)) {
            Ok(_) => Ok(Some(block)),
            Err(e) => match e.reject_reason() {
                Some(reason) => Err(RpcError::verify(format!("TestBlockValidity failed: {reason}"))),
                None => Err(store_error(e)),
            },
        }
    }
}

/// Fees of transactions that spend the UTXO set or each other, for the
/// coinbase of a generated block. Invalid transactions are refused later by
/// the block's own validation; here only the sum is needed.
fn block_fees(chain: &Chainstate, txs: &[Transaction]) -> Result<bitcoin::Amount, RpcError> {
    let mut created = std::collections::HashMap::new();
    let mut fees = bitcoin::Amount::ZERO;
    for tx in txs {
        let mut value_in = bitcoin::Amount::ZERO;
        for input in &tx.input {
            let value = match created.get(&input.previous_output) {
                Some(v) => *v,
                None => {
                    chain.coin(&input.previous_output).map_err(store_error)?.map(|c| c.value()).ok_or_else(|| {
                        RpcError::verify(format!(
                            "TestBlockValidity failed: bad-txns-inputs-missingorspent, {}",
                            tx.compute_txid()
                        ))
                    })?
                }
            };
            value_in += value;
        }
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            created.insert(bitcoin::OutPoint { txid, vout: vout as u32 }, out.value);
        }
        let value_out: bitcoin::Amount = tx.output.iter().map(|o| o.value).sum();
        fees += value_in.checked_sub(value_out).unwrap_or(bitcoin::Amount::ZERO);
    }
    Ok(fees)
}
