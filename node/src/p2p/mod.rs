//! The Bitcoin P2P network (whitepaper section 5): nodes broadcast new
//! transactions and blocks to each other, follow the chain with the most
//! work, and fetch what they missed. Wire-compatible with Bitcoin Core on
//! regtest: its handshake, service bits, witness serialisation and compact
//! block version 2.
//!
//! Cut by concept, pure logic apart from I/O:
//!
//! - [`wire`]: framing (message start, command, length, checksum, size limit);
//!   the messages themselves are `bitcoin::p2p`'s;
//! - [`peer`]: one connection's negotiated state and the handshake rules;
//! - [`sync`]: headers-first sync scheduling — locators, the download window,
//!   per-peer in-flight limits, stalling;
//! - [`compact`]: BIP 152 compact blocks;
//! - [`orphans`]: transactions waiting for a parent;
//! - [`addrman`], [`banlist`], [`misbehavior`]: addresses, bans and scores;
//! - [`localaddr`]: our own addresses, announced to peers;
//! - [`addrrelay`]: which received addresses are passed on, to whom, and
//!   the per-peer rate limit on them;
//! - [`processor`]: what each message and each tick does (synchronous, no I/O);
//! - [`connman`]: the sockets, one tokio task per peer, and shutdown.

pub mod addrman;
pub mod addrrelay;
pub mod banlist;
pub mod compact;
pub mod connman;
pub mod localaddr;
pub mod misbehavior;
pub mod orphans;
pub mod peer;
pub mod processor;
pub mod sync;
pub mod wire;

pub use connman::{start, ExternalIp, NetHandle, Network, P2pArgs, StartError};
pub use processor::{AddNodeOp, NetError};
