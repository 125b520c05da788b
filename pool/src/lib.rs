//! satpool, the mining pool: it takes block templates from a node over
//! Bitcoin Core's JSON-RPC, turns them into Stratum jobs whose coinbase pays
//! the miners (PPLNS, whitepaper section 6), records their shares durably,
//! and submits the blocks they find.
//!
//! The crate is cut by domain, bottom up (see `shared/STYLE.md`):
//!
//! - pure cores, no I/O: [`payout`] (the reward's sharing, to the satoshi),
//!   [`job`] (coinbase, merkle branch, Stratum job, block assembly), [`config`];
//! - shells around them, behind small traits with in-memory twins:
//!   [`template`] (the node: templates and `submitblock`), [`ledger`] (shares,
//!   blocks, payouts, balances, in SQLite or PostgreSQL);
//! - [`run`], which starts the tasks and stops them from one token.

pub mod config;
pub mod http;
pub mod job;
pub mod ledger;
pub mod metrics;
pub mod payout;
pub mod service;
pub mod share;
pub mod stratum;
pub mod template;
pub mod vardiff;

pub use service::{run, RunError};
