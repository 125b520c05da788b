//! The portable path: plain Rust, one nonce at a time, with the midstate,
//! the nonce-independent rounds 0-2 and schedule words 16-17 precomputed,
//! and the last three rounds of the second hash skipped.

use crate::header_work::{round, schedule, HeaderWork, DIGEST_BITS, HEADER_BITS, IV, K, PAD};

/// Pushes onto `out` every nonce in `start .. start + count` whose final
/// hash passes [`HeaderWork::may_meet`] (candidates, not yet checked).
pub fn scan(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    let mut w = [0u32; 64];
    w[..3].copy_from_slice(&work.tail);
    w[4] = PAD;
    w[15] = HEADER_BITS;
    w[16] = schedule(&w, 16);
    w[17] = schedule(&w, 17);
    let mut w2 = [0u32; 64];
    w2[8] = PAD;
    w2[15] = DIGEST_BITS;
    for nonce in (0..count).map(|i| start.wrapping_add(i)) {
        w[3] = nonce.swap_bytes();
        for t in 18..64 {
            w[t] = schedule(&w, t);
        }
        let mut s = work.state3;
        for t in 3..64 {
            round(&mut s, w[t].wrapping_add(K[t]));
        }
        for (i, word) in w2[..8].iter_mut().enumerate() {
            *word = work.midstate[i].wrapping_add(s[i]);
        }
        for t in 16..61 {
            w2[t] = schedule(&w2, t);
        }
        let mut s = IV;
        for t in 0..61 {
            round(&mut s, w2[t].wrapping_add(K[t]));
        }
        // After round 60 the register e holds what rounds 61-63 only shift
        // into h: the final last word, less the initial value.
        let h7 = s[4].wrapping_add(IV[7]);
        if work.may_meet(h7) {
            out.push(nonce);
        }
    }
}
