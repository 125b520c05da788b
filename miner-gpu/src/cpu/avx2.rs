//! The AVX2 path: eight nonces per iteration, one in each 32-bit lane of a
//! 256-bit register, every SHA-256 operation done on all eight at once.
//!
//! The lane kernel ([`scan_lanes`]) is written once, generic over the
//! vector ([`Lanes`]); this module implements [`Lanes`] for `__m256i` and
//! [`super::avx512`] for `__m512i`. It does the precomputation of
//! [`super::portable`] on whole vectors: the midstate, the state after
//! rounds 0-2 (and the part of round 3 the nonce does not touch), schedule
//! words 16-17 and the constant parts of words 18-32 of the first hash, the
//! constant words 8-15 of the second, and the second hash stops after round
//! 60 with only the e chain of rounds 57-60 computed (the rest is dead code
//! the compiler drops): the final last word is `e + IV[7]` there.
//!
//! AVX2 is reachable only through `core::arch` intrinsics, which are
//! `unsafe` to call where the compiler cannot know that the CPU has the
//! feature. This module and [`super::avx512`] (with [`super::shani`]) are the
//! places in the crate that allow `unsafe_code`; every unsafe block is
//! entered only after [`available`] detected the features at run time.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_castsi256_ps, _mm256_cmpeq_epi32, _mm256_min_epu32,
    _mm256_movemask_ps, _mm256_or_si256, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_setr_epi8, _mm256_shuffle_epi8,
    _mm256_slli_epi32, _mm256_srli_epi32, _mm256_storeu_si256, _mm256_xor_si256,
};

use crate::header_work::{round, schedule, HeaderWork, DIGEST_BITS, HEADER_BITS, IV, K, PAD};

/// Whether this CPU has AVX2.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// Pushes onto `out` every nonce in `start .. start + count` whose final
/// hash passes [`HeaderWork::may_meet`], in order, eight nonces at a time
/// (the remainder through the portable path).
///
/// # Panics
/// When the CPU lacks AVX2 ([`available`] is false).
pub fn scan(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    assert!(available(), "the AVX2 path was chosen on a CPU without AVX2");
    // SAFETY: `available()` just confirmed avx2 at run time, the only
    // requirement of the target_feature function.
    unsafe { scan_impl(work, start, count, out) }
}

#[target_feature(enable = "avx2")]
fn scan_impl(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    // SAFETY: the `__m256i` lane operations need AVX2, which this function
    // is compiled for and only entered with (see `scan`).
    unsafe { scan_lanes::<__m256i>(work, start, count, out) }
}

/// A vector of 32-bit lanes, one nonce's word in each, with the operations
/// SHA-256 is made of.
///
/// # Safety
/// Every method needs the CPU features of its implementation: call them
/// only from code entered after those were detected (the implementations
/// are `#[inline(always)]` so that they end up inside the caller's
/// `#[target_feature]` function).
pub(super) trait Lanes: Copy {
    /// How many lanes (nonces) a vector holds: 8 or 16.
    const LANES: usize;
    /// `x` in every lane.
    unsafe fn splat(x: u32) -> Self;
    /// Lane-wise wrapping addition.
    unsafe fn add(self, other: Self) -> Self;
    /// Σ0: `rotr 2 ^ rotr 13 ^ rotr 22`.
    unsafe fn big_sigma0(self) -> Self;
    /// Σ1: `rotr 6 ^ rotr 11 ^ rotr 25`.
    unsafe fn big_sigma1(self) -> Self;
    /// σ0: `rotr 7 ^ rotr 18 ^ shr 3`.
    unsafe fn small_sigma0(self) -> Self;
    /// σ1: `rotr 17 ^ rotr 19 ^ shr 10`.
    unsafe fn small_sigma1(self) -> Self;
    /// `Ch(self, f, g)`: `f` where `self` has a one bit, `g` elsewhere.
    unsafe fn ch(self, f: Self, g: Self) -> Self;
    /// `Maj(self, b, c)`: the majority of the three bits.
    unsafe fn maj(self, b: Self, c: Self) -> Self;
    /// Word 3 of the header's second block for nonces `base + lane`
    /// (wrapping): the nonce, byte-swapped.
    unsafe fn nonce_words(base: u32) -> Self;
    /// Bit `l` set when lane `l`, byte-swapped, is at most `top`.
    unsafe fn swapped_at_most(self, top: u32) -> u32;
    /// The lanes into `out[..LANES]`.
    unsafe fn store(self, out: &mut [u32; 16]);
}

/// Unrolls `$body` once for every listed `$t`, bound to a `usize` literal,
/// so that every schedule index is a constant and the state and schedule
/// arrays stay in registers.
macro_rules! unroll {
    ([$($t:literal),* $(,)?], |$i:ident| $body:block) => {
        $( { let $i: usize = $t; $body } )*
    };
}

/// σ0 on a scalar, for the constant parts of the schedule.
const fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

/// σ1 on a scalar, for the constant parts of the schedule.
const fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// Everything about one header's search that is the same for every nonce,
/// as scalars to broadcast.
struct Precomputed {
    /// The state after round 3 of the header's second block with word 3
    /// (the nonce) taken as zero: the nonce word adds to `a` and `e` only.
    state4: [u32; 8],
    /// `W[t] + K[t]` of that block for `t` in 4..18, where `W[t]` does not
    /// depend on the nonce (index `t`; 0-3 unused).
    wk: [u32; 18],
    /// Schedule words 16 and 17 of that block.
    w16: u32,
    w17: u32,
    /// Word 18 less σ0 of the nonce word.
    w18_rest: u32,
    /// Word 19 less the nonce word.
    w19_rest: u32,
    /// The state after round 0 of the second hash with its word 0 taken as
    /// zero: word 0 (the first digest word) adds to `a` and `e` only.
    iv1: [u32; 8],
}

impl Precomputed {
    fn new(work: &HeaderWork) -> Precomputed {
        let mut w = [0u32; 64];
        w[..3].copy_from_slice(&work.tail);
        w[4] = PAD;
        w[15] = HEADER_BITS;
        w[16] = schedule(&w, 16);
        w[17] = schedule(&w, 17);
        // With the nonce word zero, words 18 and 19 are what they get
        // besides σ0(nonce) and nonce.
        let w18_rest = schedule(&w, 18);
        let w19_rest = schedule(&w, 19);
        let mut wk = [0u32; 18];
        for t in 4..18 {
            wk[t] = w[t].wrapping_add(K[t]);
        }
        let mut state4 = work.state3;
        round(&mut state4, K[3]);
        let mut iv1 = IV;
        round(&mut iv1, K[0]);
        Precomputed { state4, wk, w16: w[16], w17: w[17], w18_rest, w19_rest, iv1 }
    }
}

/// `[x[0], .., x[7]]` broadcast.
#[inline(always)]
unsafe fn splat8<V: Lanes>(x: &[u32; 8]) -> [V; 8] {
    [
        V::splat(x[0]),
        V::splat(x[1]),
        V::splat(x[2]),
        V::splat(x[3]),
        V::splat(x[4]),
        V::splat(x[5]),
        V::splat(x[6]),
        V::splat(x[7]),
    ]
}

/// One round on `s = [a, b, c, d, e, f, g, h]` with `wk = W[t] + K[t]`.
#[inline(always)]
unsafe fn lanes_round<V: Lanes>(s: &mut [V; 8], wk: V) {
    let [a, b, c, d, e, f, g, h] = *s;
    // The terms that do not wait for e first, so that its chain is short.
    let t1 = h.add(wk).add(e.ch(f, g)).add(e.big_sigma1());
    let t2 = a.big_sigma0().add(a.maj(b, c));
    *s = [t1.add(t2), a, b, c, d.add(t1), e, f, g];
}

/// Schedule word `t` from the 16 before it.
#[inline(always)]
unsafe fn lanes_schedule<V: Lanes>(w: &[V; 64], t: usize) -> V {
    w[t - 2].small_sigma1().add(w[t - 7]).add(w[t - 15].small_sigma0()).add(w[t - 16])
}

/// The final hash's last word for the nonces whose word 3 is `w3` (lane
/// by lane), from `pre`'s header; rounds 61-63 of the second hash are
/// skipped, as they only shift `e` into `h`.
#[inline(always)]
unsafe fn sha256d_h7<V: Lanes>(pre: &Precomputed, midstate: &[u32; 8], w3: V) -> V {
    let c = |x: u32| V::splat(x);
    // First hash: the header's second block from the state after round 3.
    let mut w = [c(0); 64];
    w[3] = w3;
    let mut s = splat8::<V>(&pre.state4);
    s[0] = s[0].add(w3);
    s[4] = s[4].add(w3);
    unroll!([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], |t| {
        lanes_round(&mut s, c(pre.wk[t]));
    });
    // Words 18-33: the terms that are zero or constant, folded (words
    // 5-14 are zero, 4 and 15 the padding and the length).
    w[16] = c(pre.w16);
    w[17] = c(pre.w17);
    w[18] = c(pre.w18_rest).add(w3.small_sigma0());
    w[19] = c(pre.w19_rest).add(w3);
    w[20] = w[18].small_sigma1().add(c(PAD));
    w[21] = w[19].small_sigma1();
    w[22] = w[20].small_sigma1().add(c(HEADER_BITS));
    unroll!([23, 24, 25, 26, 27, 28, 29], |t| {
        w[t] = w[t - 2].small_sigma1().add(w[t - 7]);
    });
    w[30] = w[28].small_sigma1().add(w[23]).add(c(small_sigma0(HEADER_BITS)));
    w[31] = w[29].small_sigma1().add(w[24]).add(c(small_sigma0(pre.w16).wrapping_add(HEADER_BITS)));
    w[32] = w[30].small_sigma1().add(w[25]).add(c(small_sigma0(pre.w17).wrapping_add(pre.w16)));
    w[33] = w[31].small_sigma1().add(w[26]).add(w[18].small_sigma0()).add(c(pre.w17));
    unroll!([18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33], |t| {
        lanes_round(&mut s, w[t].add(c(K[t])));
    });
    unroll!(
        [
            34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
            61, 62, 63
        ],
        |t| {
            w[t] = lanes_schedule(&w, t);
            lanes_round(&mut s, w[t].add(c(K[t])));
        }
    );

    // Second hash: the digest, then the padding and the length.
    let mut w = [c(0); 64];
    unroll!([0, 1, 2, 3, 4, 5, 6, 7], |i| {
        w[i] = s[i].add(c(midstate[i]));
    });
    let mut s = splat8::<V>(&pre.iv1);
    s[0] = s[0].add(w[0]);
    s[4] = s[4].add(w[0]);
    unroll!([1, 2, 3, 4, 5, 6, 7], |t| {
        lanes_round(&mut s, w[t].add(c(K[t])));
    });
    lanes_round(&mut s, c(K[8].wrapping_add(PAD)));
    unroll!([9, 10, 11, 12, 13, 14], |t| {
        lanes_round(&mut s, c(K[t]));
    });
    lanes_round(&mut s, c(K[15].wrapping_add(DIGEST_BITS)));
    // Words 16-31: words 9-14 are zero, 8 the padding, 15 the length.
    w[16] = w[1].small_sigma0().add(w[0]);
    w[17] = w[2].small_sigma0().add(w[1]).add(c(small_sigma1(DIGEST_BITS)));
    unroll!([18, 19, 20, 21], |t| {
        w[t] = w[t - 2].small_sigma1().add(w[t - 15].small_sigma0()).add(w[t - 16]);
    });
    w[22] = w[20].small_sigma1().add(c(DIGEST_BITS)).add(w[7].small_sigma0()).add(w[6]);
    w[23] = w[21].small_sigma1().add(w[16]).add(c(small_sigma0(PAD))).add(w[7]);
    w[24] = w[22].small_sigma1().add(w[17]).add(c(PAD));
    unroll!([25, 26, 27, 28, 29], |t| {
        w[t] = w[t - 2].small_sigma1().add(w[t - 7]);
    });
    w[30] = w[28].small_sigma1().add(w[23]).add(c(small_sigma0(DIGEST_BITS)));
    w[31] = w[29].small_sigma1().add(w[24]).add(w[16].small_sigma0()).add(c(DIGEST_BITS));
    unroll!([16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31], |t| {
        lanes_round(&mut s, w[t].add(c(K[t])));
    });
    unroll!(
        [
            32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
            59, 60
        ],
        |t| {
            w[t] = lanes_schedule(&w, t);
            lanes_round(&mut s, w[t].add(c(K[t])));
        }
    );
    // After round 60, e holds what rounds 61-63 only shift into h.
    s[4].add(c(IV[7]))
}

/// Pushes onto `out` every nonce in `start .. start + count` whose final
/// hash passes [`HeaderWork::may_meet`], in order, `V::LANES` at a time
/// and the remainder through the portable path.
///
/// # Safety
/// The CPU has the features of `V`'s [`Lanes`] implementation.
#[inline(always)]
pub(super) unsafe fn scan_lanes<V: Lanes>(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    let pre = Precomputed::new(work);
    let lanes = V::LANES as u32;
    let whole = count - count % lanes;
    let mut h7s = [0u32; 16];
    let mut i = 0u32;
    while i < whole {
        let base = start.wrapping_add(i);
        let h7 = sha256d_h7::<V>(&pre, &work.midstate, V::nonce_words(base));
        let mask = h7.swapped_at_most(work.target_top);
        if mask != 0 {
            h7.store(&mut h7s);
            for (l, &h7) in h7s[..V::LANES].iter().enumerate() {
                if mask >> l & 1 == 1 && work.may_meet(h7) {
                    out.push(base.wrapping_add(l as u32));
                }
            }
        }
        i += lanes;
    }
    if whole < count {
        super::portable::scan(work, start.wrapping_add(whole), count - whole, out);
    }
}

/// `x` rotated right by `R` bits (`L = 32 - R`).
#[inline(always)]
unsafe fn rotr<const R: i32, const L: i32>(x: __m256i) -> __m256i {
    _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
}

/// Every lane byte-swapped.
#[inline(always)]
unsafe fn swap_bytes(x: __m256i) -> __m256i {
    let order = _mm256_setr_epi8(
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
    );
    _mm256_shuffle_epi8(x, order)
}

impl Lanes for __m256i {
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        _mm256_set1_epi32(x as i32)
    }

    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        _mm256_add_epi32(self, other)
    }

    #[inline(always)]
    unsafe fn big_sigma0(self) -> Self {
        _mm256_xor_si256(_mm256_xor_si256(rotr::<2, 30>(self), rotr::<13, 19>(self)), rotr::<22, 10>(self))
    }

    #[inline(always)]
    unsafe fn big_sigma1(self) -> Self {
        _mm256_xor_si256(_mm256_xor_si256(rotr::<6, 26>(self), rotr::<11, 21>(self)), rotr::<25, 7>(self))
    }

    #[inline(always)]
    unsafe fn small_sigma0(self) -> Self {
        _mm256_xor_si256(_mm256_xor_si256(rotr::<7, 25>(self), rotr::<18, 14>(self)), _mm256_srli_epi32::<3>(self))
    }

    #[inline(always)]
    unsafe fn small_sigma1(self) -> Self {
        _mm256_xor_si256(_mm256_xor_si256(rotr::<17, 15>(self), rotr::<19, 13>(self)), _mm256_srli_epi32::<10>(self))
    }

    #[inline(always)]
    unsafe fn ch(self, f: Self, g: Self) -> Self {
        _mm256_xor_si256(g, _mm256_and_si256(self, _mm256_xor_si256(f, g)))
    }

    #[inline(always)]
    unsafe fn maj(self, b: Self, c: Self) -> Self {
        // b ^ ((a ^ b) & (b ^ c)): this round's b ^ c is the previous
        // round's a ^ b, which the compiler keeps.
        _mm256_xor_si256(b, _mm256_and_si256(_mm256_xor_si256(self, b), _mm256_xor_si256(b, c)))
    }

    #[inline(always)]
    unsafe fn nonce_words(base: u32) -> Self {
        swap_bytes(_mm256_add_epi32(_mm256_set1_epi32(base as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)))
    }

    #[inline(always)]
    unsafe fn swapped_at_most(self, top: u32) -> u32 {
        let swapped = swap_bytes(self);
        // AVX2 has no unsigned compare: x <= top exactly when min(x, top) == x.
        let le = _mm256_cmpeq_epi32(_mm256_min_epu32(swapped, _mm256_set1_epi32(top as i32)), swapped);
        _mm256_movemask_ps(_mm256_castsi256_ps(le)) as u32
    }

    #[inline(always)]
    unsafe fn store(self, out: &mut [u32; 16]) {
        // SAFETY: `out` has room for 16 lanes, this writes 8; unaligned
        // stores are allowed.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), self) }
    }
}
