//! satpool-node: a Bitcoin full node shaped for mining pools.
//!
//! What it is: network parameters, the consensus rules of headers and blocks
//! (scripts and context-free transaction rules come from `satpool-consensus`),
//! the chainstate (block index, UTXO set, undo data, reorganisations) in an
//! embedded transactional store, CPU block generation for tests and demos,
//! and a daemon speaking Bitcoin Core's JSON-RPC.
//!
//! What it is not (yet): a mempool, block templates, P2P networking or a
//! wallet; those are separate capabilities built on this one.

pub mod attack;
pub mod chain;
pub mod daemon;
pub mod mempool;
pub mod mining;
pub mod node;
pub mod params;
pub mod pow;
pub mod rpc;
pub mod template;
pub mod utxo;
pub mod validation;
pub mod wallet;
