//! The CPU backend: the hashing paths this CPU offers, the choice among
//! them by measurement, and the worker loop that runs one of them per
//! thread.

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod portable;
#[cfg(target_arch = "x86_64")]
pub mod shani;

use std::fmt;
use std::time::{Duration, Instant};

use crate::header_work::HeaderWork;

/// One way of hashing nonces on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuPath {
    /// Plain Rust, one nonce at a time.
    Portable,
    /// SHA-NI with this many independent nonces in flight (1 to 4).
    ShaNi(usize),
    /// AVX2: eight nonces in the lanes of 256-bit registers.
    Avx2,
    /// AVX-512: sixteen nonces in the lanes of 512-bit registers.
    Avx512,
}

impl fmt::Display for CpuPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuPath::Portable => write!(f, "portable"),
            CpuPath::ShaNi(n) => write!(f, "sha-ni x{n}"),
            CpuPath::Avx2 => write!(f, "avx2 x8"),
            CpuPath::Avx512 => write!(f, "avx-512 x16"),
        }
    }
}

impl CpuPath {
    /// Every path this CPU can run, the portable one included.
    pub fn available() -> Vec<CpuPath> {
        let mut paths = vec![CpuPath::Portable];
        #[cfg(target_arch = "x86_64")]
        if shani::available() {
            paths.extend((1..=4).map(CpuPath::ShaNi));
        }
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            paths.push(CpuPath::Avx2);
        }
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            paths.push(CpuPath::Avx512);
        }
        paths
    }

    /// Pushes onto `out` the candidates in `start .. start + count`: the
    /// nonces whose hash's top 32 bits are at most the target's (exactly
    /// those; none of them checked in full yet).
    pub fn scan_candidates(self, work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
        match self {
            CpuPath::Portable => portable::scan(work, start, count, out),
            #[cfg(target_arch = "x86_64")]
            CpuPath::ShaNi(1) => shani::scan::<1>(work, start, count, out),
            #[cfg(target_arch = "x86_64")]
            CpuPath::ShaNi(2) => shani::scan::<2>(work, start, count, out),
            #[cfg(target_arch = "x86_64")]
            CpuPath::ShaNi(3) => shani::scan::<3>(work, start, count, out),
            #[cfg(target_arch = "x86_64")]
            CpuPath::ShaNi(_) => shani::scan::<4>(work, start, count, out),
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx2 => avx2::scan(work, start, count, out),
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx512 => avx512::scan(work, start, count, out),
            // Never in `available()` elsewhere; the reference stands in.
            #[cfg(not(target_arch = "x86_64"))]
            CpuPath::ShaNi(_) | CpuPath::Avx2 | CpuPath::Avx512 => portable::scan(work, start, count, out),
        }
    }

    /// The nonces in `start .. start + count` whose hash meets the target,
    /// every candidate checked again in full ([`HeaderWork::check`]).
    pub fn scan(self, work: &HeaderWork, start: u32, count: u32) -> Vec<u32> {
        let mut candidates = Vec::new();
        self.scan_candidates(work, start, count, &mut candidates);
        candidates.retain(|&nonce| work.check(nonce).is_some());
        candidates
    }

    /// Nonces per second of this path on one thread, measured for about
    /// `duration` on a header that yields no candidates.
    pub fn measure(self, duration: Duration) -> f64 {
        let work = HeaderWork::new([0x5a; 80], bitcoin::Target::ZERO);
        let mut out = Vec::new();
        let chunk = 1 << 14;
        let started = Instant::now();
        let mut done = 0u64;
        while started.elapsed() < duration {
            self.scan_candidates(&work, done as u32, chunk, &mut out);
            done += u64::from(chunk);
        }
        done as f64 / started.elapsed().as_secs_f64()
    }

    /// The fastest path on this CPU, by measuring each for `each` (a few
    /// tens of milliseconds suffice), with every rate measured.
    pub fn fastest(each: Duration) -> (CpuPath, Vec<(CpuPath, f64)>) {
        let rates: Vec<(CpuPath, f64)> = CpuPath::available().into_iter().map(|p| (p, p.measure(each))).collect();
        let best = rates.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(CpuPath::Portable, |(p, _)| p);
        (best, rates)
    }
}
