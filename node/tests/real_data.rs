//! A real mainnet block from Bitcoin Core's benchmark data: it parses, its
//! hash, merkle root and proof of work are right, and it passes every
//! context-free block rule on mainnet parameters.

use bitcoin::consensus::deserialize;
use bitcoin::Block;
use satpool_node::params::{ChainParams, Network};
use satpool_node::validation;

fn vectors() -> std::path::PathBuf {
    std::env::var_os("SATPOOL_VECTORS")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors").into())
}

#[test]
fn block_413567() {
    let bytes = std::fs::read(vectors().join("block413567.raw")).expect("block413567.raw in ../shared/vectors");
    assert_eq!(bytes.len(), 999_887);
    let block: Block = deserialize(&bytes).expect("parses");
    assert_eq!(block.txdata.len(), 1557);
    assert_eq!(block.block_hash().to_string(), "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069");
    let params = ChainParams::new(Network::Mainnet);
    validation::check_header(&block.header, &params).expect("proof of work");
    validation::check_block(&block, &params).expect("context-free rules");

    // One flipped bit anywhere in a transaction breaks the merkle root.
    let mut mutated = block.clone();
    mutated.txdata[700].lock_time = bitcoin::absolute::LockTime::from_consensus(1);
    assert_eq!(validation::check_block(&mutated, &params).unwrap_err().reject_reason(), "bad-txnmrklroot");
    // And a nonce off by one breaks the proof of work.
    let mut header = block.header;
    header.nonce ^= 1;
    assert_eq!(validation::check_header(&header, &params).unwrap_err().reject_reason(), "high-hash");
}
