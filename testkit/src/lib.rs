//! Test support shared by the workspace's integration tests and
//! benchmarks: starting the real binaries (`satpool-node` on regtest, the
//! pool, the miner) as child processes on loopback, and a strict check of
//! Prometheus' text format.
//!
//! It is not part of any shipped binary, and holds no test logic of its
//! own: what a test asserts stays in the test.

pub mod process;
pub mod prometheus;
pub mod regtest;

pub use process::{free_port, profile_dir, Process};
pub use regtest::{regtest_address, RegtestNode};
