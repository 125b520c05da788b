//! The benchmark's parts: the self-check against the plain reference on a
//! fixed set of headers, the hash rate of a CPU path on several threads,
//! and the single-stream `sha2` compression rate that the goal is stated
//! against (a miner that calls a one-block API twice per nonce gets about
//! half of it).

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use bitcoin::{CompactTarget, Target};

use crate::cpu::CpuPath;
use crate::header_work::{reference_scan, HeaderWork};

/// The mainnet genesis header.
pub const GENESIS_HEADER: [u8; 80] = {
    let hex = *b"0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";
    let mut out = [0u8; 80];
    let mut i = 0;
    while i < 80 {
        out[i] = (nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
};

/// The genesis header's nonce.
pub const GENESIS_NONCE: u32 = 2_083_236_893;

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

/// One case of the self-check: a header, a target and a nonce range.
#[derive(Debug, Clone)]
pub struct CheckCase {
    /// What the case is.
    pub name: String,
    /// The search.
    pub work: HeaderWork,
    /// The first nonce.
    pub start: u32,
    /// How many nonces.
    pub count: u32,
}

impl CheckCase {
    /// What the plain reference finds.
    pub fn expected(&self) -> Vec<u32> {
        reference_scan(&self.work.header, &self.work.target, self.start, self.count)
    }
}

/// The fixed cases: the genesis header at its real target around its
/// nonce, and headers from a fixed generator at an easy target (about one
/// nonce in 256 meets it) and at a fractional-difficulty target whose top
/// word is not all ones below.
pub fn check_cases() -> Vec<CheckCase> {
    let genesis_target = Target::from_compact(CompactTarget::from_consensus(0x1d00ffff));
    let mut cases = vec![CheckCase {
        name: "mainnet genesis".into(),
        work: HeaderWork::new(GENESIS_HEADER, genesis_target),
        start: GENESIS_NONCE - 20_000,
        count: 40_000,
    }];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // splitmix64: fixed, so every run checks the same headers.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in 0..6 {
        let mut header = [0u8; 80];
        for chunk in header.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_le_bytes()[..chunk.len()]);
        }
        let mut be = [0xffu8; 32];
        if i % 2 == 0 {
            be[..4].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
        } else {
            be[..4].copy_from_slice(&0x0080_0000u32.to_be_bytes());
            be[4..12].copy_from_slice(&next().to_be_bytes());
        }
        cases.push(CheckCase {
            name: format!("random header {i}"),
            work: HeaderWork::new(header, Target::from_be_bytes(be)),
            start: (next() as u32) & 0x7fff_ffff,
            count: 8192,
        });
    }
    cases
}

/// A self-check that found something the reference did not, or missed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend} on {case}: found {got:?}, the reference finds {expected:?}")]
pub struct SelfCheckError {
    /// The path or device.
    pub backend: String,
    /// The case.
    pub case: String,
    /// What it found.
    pub got: Vec<u32>,
    /// What the reference finds.
    pub expected: Vec<u32>,
}

/// Checks `path` against the reference on every case of [`check_cases`].
pub fn self_check_cpu(path: CpuPath) -> Result<usize, SelfCheckError> {
    let cases = check_cases();
    for case in &cases {
        let expected = case.expected();
        let got = path.scan(&case.work, case.start, case.count);
        if got != expected {
            return Err(SelfCheckError { backend: path.to_string(), case: case.name.clone(), got, expected });
        }
    }
    Ok(cases.len())
}

/// Nonces per second of `path` on `threads` threads for about `duration`,
/// each thread on its own header.
pub fn cpu_rate(path: CpuPath, threads: usize, duration: Duration) -> f64 {
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| scope.spawn(move || path.measure(duration))).collect();
        handles.into_iter().map(|h| h.join().expect("a benchmark thread does not panic")).sum()
    })
}

/// Compressions per second of `sha2`'s `compress256` on one dependent chain
/// (each block's input is the previous state), for about `duration`.
pub fn sha2_compress_rate(duration: Duration) -> f64 {
    let mut state = crate::header_work::IV;
    let block = [[0x5au8; 64]];
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < duration {
        for _ in 0..4096 {
            sha2::block_api::compress256(&mut state, black_box(&block));
        }
        done += 4096;
    }
    black_box(state);
    done as f64 / started.elapsed().as_secs_f64()
}
