//! One header's search, precomputed: the SHA-256 constants, the midstate of
//! the header's first 64 bytes, the rounds and schedule words of the second
//! block that do not depend on the nonce, and the target in the shapes the
//! hashing loops compare against. Every backend (portable, SHA-NI, WGSL)
//! starts from a [`HeaderWork`]; [`HeaderWork::check`] is the full check
//! every candidate passes again before it is submitted, and
//! [`reference_scan`] the plain implementation the tests and the benchmark's
//! self-check hold the fast paths to.

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Target};
use sha2::{Digest, Sha256};

/// The SHA-256 round constants.
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// The SHA-256 initial state.
pub const IV: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// The last word of the second block of an 80-byte message: its length, 640 bits.
pub const HEADER_BITS: u32 = 640;
/// The last word of the block that hashes a 32-byte digest: 256 bits.
pub const DIGEST_BITS: u32 = 256;
/// The padding word that follows the message.
pub const PAD: u32 = 0x8000_0000;

#[inline(always)]
fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

#[inline(always)]
fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// One SHA-256 round on `s = [a, b, c, d, e, f, g, h]` with `wk = W[t] + K[t]`.
#[inline(always)]
pub(crate) fn round(s: &mut [u32; 8], wk: u32) {
    let [a, b, c, d, e, f, g, h] = *s;
    let t1 = h
        .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
        .wrapping_add((e & f) ^ (!e & g))
        .wrapping_add(wk);
    let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22)).wrapping_add((a & b) ^ (a & c) ^ (b & c));
    *s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
}

/// The message schedule word `t >= 16` from the 16 before it.
#[inline(always)]
pub(crate) fn schedule(w: &[u32; 64], t: usize) -> u32 {
    small_sigma1(w[t - 2]).wrapping_add(w[t - 7]).wrapping_add(small_sigma0(w[t - 15])).wrapping_add(w[t - 16])
}

/// The plain SHA-256 compression of one block of 16 big-endian words.
pub fn compress(state: &mut [u32; 8], block: &[u32; 16]) {
    let mut w = [0u32; 64];
    w[..16].copy_from_slice(block);
    for t in 16..64 {
        w[t] = schedule(&w, t);
    }
    let mut s = *state;
    for t in 0..64 {
        round(&mut s, w[t].wrapping_add(K[t]));
    }
    for (out, add) in state.iter_mut().zip(s) {
        *out = out.wrapping_add(add);
    }
}

/// One header's search, with everything that does not depend on the nonce
/// computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderWork {
    /// The 80-byte header (its nonce field is ignored).
    pub header: [u8; 80],
    /// The share target.
    pub target: Target,
    /// The state after the header's first 64 bytes.
    pub midstate: [u32; 8],
    /// Words 0-2 of the second block (header bytes 64..76, big-endian):
    /// the merkle root's last 4 bytes, the time and the bits.
    pub tail: [u32; 3],
    /// The state after rounds 0-2 of the second block, which do not depend
    /// on the nonce.
    pub state3: [u32; 8],
    /// The top 32 bits of the target: the final hash's last word,
    /// byte-swapped (the most significant word of the little-endian number),
    /// must be at most this for the hash to have a chance. For difficulty 1
    /// and above it is 0; for the fractional difficulties of test networks
    /// it is not.
    pub target_top: u32,
}

impl HeaderWork {
    /// Precomputes the search of `header` (nonce field ignored) for `target`.
    pub fn new(header: [u8; 80], target: Target) -> HeaderWork {
        let mut first = [0u32; 16];
        for (word, bytes) in first.iter_mut().zip(header[..64].chunks_exact(4)) {
            *word = u32::from_be_bytes(bytes.try_into().expect("chunks of four bytes"));
        }
        let mut midstate = IV;
        compress(&mut midstate, &first);
        let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("four bytes inside the header"));
        let tail = [word(64), word(68), word(72)];
        let mut state3 = midstate;
        for (t, w) in tail.iter().enumerate() {
            round(&mut state3, w.wrapping_add(K[t]));
        }
        let be = target.to_be_bytes();
        let target_top = u32::from_be_bytes(be[..4].try_into().expect("a target has 32 bytes"));
        HeaderWork { header, target, midstate, tail, state3, target_top }
    }

    /// The header with `nonce` in place.
    pub fn header_with(&self, nonce: u32) -> [u8; 80] {
        let mut header = self.header;
        header[76..].copy_from_slice(&nonce.to_le_bytes());
        header
    }

    /// The full check, through the `sha2` crate: the hash when the header
    /// with `nonce` meets the target, `None` otherwise. Every candidate that
    /// a fast path reports passes this before it is submitted.
    pub fn check(&self, nonce: u32) -> Option<BlockHash> {
        let hash = sha256d(&self.header_with(nonce));
        self.target.is_met_by(hash).then_some(hash)
    }

    /// Whether the final hash's last word `h7` (as SHA-256 produces it,
    /// big-endian) can belong to a hash that meets the target: its
    /// byte-swapped value, the hash's most significant 32 bits, is at most
    /// the target's.
    #[inline(always)]
    pub fn may_meet(&self, h7: u32) -> bool {
        h7.swap_bytes() <= self.target_top
    }
}

/// Double SHA-256 of `bytes` through the `sha2` crate, as a block hash.
pub fn sha256d(bytes: &[u8]) -> BlockHash {
    BlockHash::from_byte_array(Sha256::digest(Sha256::digest(bytes)).into())
}

/// The plain reference: every nonce in `start .. start + count` (wrapping
/// at 2^32 is not allowed: the range must fit) whose header's double SHA-256
/// of the full 80 bytes meets `target`, in order.
pub fn reference_scan(header: &[u8; 80], target: &Target, start: u32, count: u32) -> Vec<u32> {
    let mut header = *header;
    let end = u64::from(start) + u64::from(count);
    assert!(end <= 1 << 32, "nonce range {start} + {count} runs past 2^32");
    (u64::from(start)..end)
        .map(|n| n as u32)
        .filter(|nonce| {
            header[76..].copy_from_slice(&nonce.to_le_bytes());
            target.is_met_by(sha256d(&header))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_matches_sha2() {
        let mut state = IV;
        let mut block = [0u32; 16];
        block[0] = 0x6162_6380; // "abc" + padding
        block[15] = 24;
        compress(&mut state, &block);
        let want = Sha256::digest(b"abc");
        let got: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(got.as_slice(), want.as_slice());
    }

    #[test]
    fn target_top_word() {
        let work = HeaderWork::new([0; 80], Target::MAX);
        assert_eq!(work.target_top, 0);
        assert!(work.may_meet(0));
        assert!(!work.may_meet(0x0100_0000));
    }
}
