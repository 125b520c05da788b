//! The satpool miner: a Stratum V1 client, the work a job gives
//! (coinbase, merkle root, header), a scheduler that cuts the search space
//! (nonce × extranonce2 × rolled version bits) into ranges for the GPU
//! devices and CPU threads, a wgpu/WGSL GPU backend and CPU paths (AVX-512
//! and AVX2 lanes, SHA-NI, portable; the fastest chosen by measurement),
//! and the benchmark that holds them to a plain reference.
//!
//! The hashing, the work arithmetic and the scheduler are synchronous and
//! free of I/O; the client and the mining loop are the shell around them.

pub mod bench;
pub mod client;
pub mod config;
pub mod cpu;
pub mod gpu;
pub mod header_work;
pub mod miner;
pub mod scheduler;
pub mod status;
pub mod work;

pub use cpu::CpuPath;
pub use header_work::{reference_scan, sha256d, HeaderWork};
