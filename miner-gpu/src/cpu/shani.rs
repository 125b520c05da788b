//! The SHA-NI path: several independent nonces' compressions in flight in
//! one function, so the SHA unit's throughput rather than one chain's
//! latency sets the pace.
//!
//! The SHA extensions are reachable only through `core::arch` intrinsics,
//! which are `unsafe` to call: the compiler cannot know that the CPU has the
//! feature. This module, like the AVX2 and AVX-512 ones, allows
//! `unsafe_code` for that alone; every unsafe block is entered only after
//! [`available`] detected the features at run time.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_set_epi32,
    _mm_setzero_si128, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
};

use crate::header_work::{HeaderWork, DIGEST_BITS, HEADER_BITS, IV, K, PAD};

/// Whether this CPU has SHA-NI and the SSE levels the path uses.
pub fn available() -> bool {
    is_x86_feature_detected!("sha") && is_x86_feature_detected!("sse4.1") && is_x86_feature_detected!("ssse3")
}

/// Pushes onto `out` every nonce in `start .. start + count` whose final
/// hash passes [`HeaderWork::may_meet`], `N` nonces in flight at a time.
///
/// # Panics
/// When the CPU lacks SHA-NI ([`available`] is false).
pub fn scan<const N: usize>(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    assert!(available(), "the SHA-NI path was chosen on a CPU without SHA-NI");
    // SAFETY: `available()` just confirmed sha, sse4.1 and ssse3 at run
    // time, the only requirement of the target_feature function.
    unsafe { scan_impl::<N>(work, start, count, out) }
}

/// `[a..h]` as the SHA-NI register pair (ABEF, CDGH).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn to_abef_cdgh(s: &[u32; 8]) -> (__m128i, __m128i) {
    let abcd = _mm_set_epi32(s[3] as i32, s[2] as i32, s[1] as i32, s[0] as i32);
    let efgh = _mm_set_epi32(s[7] as i32, s[6] as i32, s[5] as i32, s[4] as i32);
    let cdab = _mm_shuffle_epi32(abcd, 0xB1);
    let efgh = _mm_shuffle_epi32(efgh, 0x1B);
    (_mm_alignr_epi8(cdab, efgh, 8), _mm_blend_epi16(efgh, cdab, 0xF0))
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn k4(group: usize) -> __m128i {
    // SAFETY: reads 16 bytes inside K (group < 16), unaligned load allowed.
    unsafe { _mm_loadu_si128(K.as_ptr().add(group * 4).cast()) }
}

// The streams are indexed by lane in lock-step across several arrays (state,
// schedule, nonce): an index loop says that more plainly than zipped iterators.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn scan_impl<const N: usize>(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    // Four rounds on every stream: the two SHA256RNDS2 of the group.
    macro_rules! rounds4 {
        ($abef:ident, $cdgh:ident, $wk:expr) => {
            for l in 0..N {
                let wk = $wk(l);
                $cdgh[l] = _mm_sha256rnds2_epu32($cdgh[l], $abef[l], wk);
                $abef[l] = _mm_sha256rnds2_epu32($abef[l], $cdgh[l], _mm_shuffle_epi32(wk, 0x0E));
            }
        };
    }
    // The next four schedule words on every stream, in place of the oldest.
    macro_rules! schedule4 {
        ($m:ident, $a:literal, $b:literal, $c:literal, $d:literal) => {
            for l in 0..N {
                let x =
                    _mm_add_epi32(_mm_sha256msg1_epu32($m[$a][l], $m[$b][l]), _mm_alignr_epi8($m[$d][l], $m[$c][l], 4));
                $m[$a][l] = _mm_sha256msg2_epu32(x, $m[$d][l]);
            }
        };
    }
    // Groups 4..15 (rounds 16..63 or 16..59 in `$last` groups).
    macro_rules! scheduled_groups {
        ($m:ident, $abef:ident, $cdgh:ident, [$(($g:literal, $a:literal, $b:literal, $c:literal, $d:literal)),*]) => {
            $(
                schedule4!($m, $a, $b, $c, $d);
                let k = k4($g);
                rounds4!($abef, $cdgh, |l: usize| _mm_add_epi32($m[$a][l], k));
            )*
        };
    }

    let (mid_abef, mid_cdgh) = to_abef_cdgh(&work.midstate);
    let (iv_abef, iv_cdgh) = to_abef_cdgh(&IV);
    let tail = work.tail.map(|w| w as i32);
    // Rounds 0-1 of the second block use only header words: once per header.
    let wk01 = _mm_add_epi32(_mm_set_epi32(0, 0, tail[1], tail[0]), k4(0));
    let cdgh01 = _mm_sha256rnds2_epu32(mid_cdgh, mid_abef, wk01);
    // Words 4-15 of the second block are constant, and so are W + K for them.
    let block_w1 = _mm_set_epi32(0, 0, 0, PAD as i32);
    let block_w3 = _mm_set_epi32(HEADER_BITS as i32, 0, 0, 0);
    let wk1 = _mm_add_epi32(block_w1, k4(1));
    let wk2 = k4(2);
    let wk3 = _mm_add_epi32(block_w3, k4(3));
    let digest_w2 = _mm_set_epi32(0, 0, 0, PAD as i32);
    let digest_w3 = _mm_set_epi32(DIGEST_BITS as i32, 0, 0, 0);
    let dk2 = _mm_add_epi32(digest_w2, k4(2));
    let dk3 = _mm_add_epi32(digest_w3, k4(3));

    let whole = count - count % N as u32;
    let mut i = 0u32;
    while i < whole {
        let base = start.wrapping_add(i);
        let nonce = |l: usize| base.wrapping_add(l as u32);

        // First hash: the second block of the header, from the midstate.
        let mut m = [[_mm_setzero_si128(); N]; 4];
        for l in 0..N {
            m[0][l] = _mm_set_epi32(nonce(l).swap_bytes() as i32, tail[2], tail[1], tail[0]);
            m[1][l] = block_w1;
            m[3][l] = block_w3;
        }
        let mut abef = [mid_abef; N];
        let mut cdgh = [cdgh01; N];
        let k0 = k4(0);
        for l in 0..N {
            let wk = _mm_add_epi32(m[0][l], k0);
            abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32(wk, 0x0E));
        }
        rounds4!(abef, cdgh, |_| wk1);
        rounds4!(abef, cdgh, |_| wk2);
        rounds4!(abef, cdgh, |_| wk3);
        scheduled_groups!(
            m,
            abef,
            cdgh,
            [
                (4, 0, 1, 2, 3),
                (5, 1, 2, 3, 0),
                (6, 2, 3, 0, 1),
                (7, 3, 0, 1, 2),
                (8, 0, 1, 2, 3),
                (9, 1, 2, 3, 0),
                (10, 2, 3, 0, 1),
                (11, 3, 0, 1, 2),
                (12, 0, 1, 2, 3),
                (13, 1, 2, 3, 0),
                (14, 2, 3, 0, 1),
                (15, 3, 0, 1, 2)
            ]
        );

        // The digest, as the first eight words of the second hash's block.
        let mut d = [[_mm_setzero_si128(); N]; 4];
        for l in 0..N {
            let abef_sum = _mm_add_epi32(abef[l], mid_abef);
            let cdgh_sum = _mm_add_epi32(cdgh[l], mid_cdgh);
            let feba = _mm_shuffle_epi32(abef_sum, 0x1B);
            let dchg = _mm_shuffle_epi32(cdgh_sum, 0xB1);
            d[0][l] = _mm_blend_epi16(feba, dchg, 0xF0);
            d[1][l] = _mm_alignr_epi8(dchg, feba, 8);
            d[2][l] = digest_w2;
            d[3][l] = digest_w3;
        }

        // Second hash, from the initial state.
        let mut abef = [iv_abef; N];
        let mut cdgh = [iv_cdgh; N];
        let k0 = k4(0);
        let k1 = k4(1);
        rounds4!(abef, cdgh, |l: usize| _mm_add_epi32(d[0][l], k0));
        rounds4!(abef, cdgh, |l: usize| _mm_add_epi32(d[1][l], k1));
        rounds4!(abef, cdgh, |_| dk2);
        rounds4!(abef, cdgh, |_| dk3);
        scheduled_groups!(
            d,
            abef,
            cdgh,
            [
                (4, 0, 1, 2, 3),
                (5, 1, 2, 3, 0),
                (6, 2, 3, 0, 1),
                (7, 3, 0, 1, 2),
                (8, 0, 1, 2, 3),
                (9, 1, 2, 3, 0),
                (10, 2, 3, 0, 1),
                (11, 3, 0, 1, 2),
                (12, 0, 1, 2, 3),
                (13, 1, 2, 3, 0),
                (14, 2, 3, 0, 1)
            ]
        );
        // Rounds 60-61 only: after them the F lane holds e from round 60,
        // which rounds 61-63 would merely shift into h.
        schedule4!(d, 3, 0, 1, 2);
        let k15 = k4(15);
        for l in 0..N {
            let abef_next = _mm_sha256rnds2_epu32(cdgh[l], abef[l], _mm_add_epi32(d[3][l], k15));
            let h7 = (_mm_cvtsi128_si32(abef_next) as u32).wrapping_add(IV[7]);
            if work.may_meet(h7) {
                out.push(nonce(l));
            }
        }
        i += N as u32;
    }
    if whole < count {
        super::portable::scan(work, start.wrapping_add(whole), count - whole, out);
    }
}
