//! satpool-node: a Bitcoin full node shaped for mining pools.
//!
//! What it is: network parameters, the consensus rules of headers and blocks
//! (scripts and context-free transaction rules come from `satpool-consensus`),
//! the chainstate (block index, UTXO set, undo data, reorganisations) in an
//! embedded transactional store, the mempool with Core's relay policy, block
//! templates for pools, an HD wallet, the whitepaper's attacker calculation,
//! CPU block generation for tests and demos, and a daemon speaking Bitcoin
//! Core's JSON-RPC.
//!
//! What it is not: a GPU miner or a pool (the `satpool-miner` and `satpool`
//! crates), nor an indexer (no txindex).

pub mod attack;
pub mod chain;
pub mod config_file;
pub mod daemon;
pub mod mempool;
pub mod metrics;
pub mod mining;
pub mod node;
pub mod p2p;
pub mod params;
pub mod pow;
pub mod rpc;
pub mod spv;
pub mod template;
pub mod utxo;
pub mod validation;
pub mod wallet;
