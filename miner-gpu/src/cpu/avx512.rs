//! The AVX-512 path: sixteen nonces per iteration, one in each 32-bit lane
//! of a 512-bit register, through the lane kernel of [`super::avx2`]
//! ([`scan_lanes`]) with AVX-512's own operations: a rotate is one
//! `vprold` (`_mm512_ror_epi32`) instead of two shifts and an or, and each
//! three-input bit function (the XORs of Σ and σ, Ch, Maj) is one
//! `vpternlogd` (`_mm512_ternarylogic_epi32`). A round is 17 instructions on
//! sixteen lanes where AVX2 needs about 35 on eight.
//!
//! AVX-512 is reachable only through `core::arch` intrinsics, which are
//! `unsafe` to call where the compiler cannot know that the CPU has the
//! feature. This module is one of the few in the crate that allow
//! `unsafe_code` (with [`super::avx2`] and [`super::shani`]); every unsafe
//! block is entered only after [`available`] detected the features at run
//! time.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_cmple_epu32_mask, _mm512_ror_epi32, _mm512_set1_epi32, _mm512_set_epi32,
    _mm512_shuffle_epi8, _mm512_srli_epi32, _mm512_storeu_si512, _mm512_ternarylogic_epi32,
};

use super::avx2::{scan_lanes, Lanes};
use crate::header_work::HeaderWork;

/// `vpternlogd` truth tables, for inputs (a, b, c) indexing the bits of
/// the table as `a << 2 | b << 1 | c`.
const XOR3: i32 = 0x96;
/// `a ? b : c`.
const CH: i32 = 0xca;
/// The majority of a, b and c.
const MAJ: i32 = 0xe8;

/// Whether this CPU has AVX-512 F and BW (the byte shuffle that swaps the
/// nonce's bytes).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

/// Pushes onto `out` every nonce in `start .. start + count` whose final
/// hash passes [`HeaderWork::may_meet`], in order, sixteen nonces at a time
/// (the remainder through the portable path).
///
/// # Panics
/// When the CPU lacks AVX-512 F or BW ([`available`] is false).
pub fn scan(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    assert!(available(), "the AVX-512 path was chosen on a CPU without AVX-512 F and BW");
    // SAFETY: `available()` just confirmed avx512f and avx512bw at run time,
    // the only requirements of the target_feature function.
    unsafe { scan_impl(work, start, count, out) }
}

#[target_feature(enable = "avx512f,avx512bw")]
fn scan_impl(work: &HeaderWork, start: u32, count: u32, out: &mut Vec<u32>) {
    // SAFETY: the `__m512i` lane operations need AVX-512 F and BW, which
    // this function is compiled for and only entered with (see `scan`).
    unsafe { scan_lanes::<__m512i>(work, start, count, out) }
}

/// Every lane byte-swapped.
#[inline(always)]
unsafe fn swap_bytes(x: __m512i) -> __m512i {
    // The same order in each 128-bit lane, high bytes first in `set`.
    let order = _mm512_set_epi32(
        0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f,
        0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203,
    );
    _mm512_shuffle_epi8(x, order)
}

impl Lanes for __m512i {
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        _mm512_set1_epi32(x as i32)
    }

    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        _mm512_add_epi32(self, other)
    }

    #[inline(always)]
    unsafe fn big_sigma0(self) -> Self {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<2>(self),
            _mm512_ror_epi32::<13>(self),
            _mm512_ror_epi32::<22>(self),
        )
    }

    #[inline(always)]
    unsafe fn big_sigma1(self) -> Self {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<6>(self),
            _mm512_ror_epi32::<11>(self),
            _mm512_ror_epi32::<25>(self),
        )
    }

    #[inline(always)]
    unsafe fn small_sigma0(self) -> Self {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<7>(self),
            _mm512_ror_epi32::<18>(self),
            _mm512_srli_epi32::<3>(self),
        )
    }

    #[inline(always)]
    unsafe fn small_sigma1(self) -> Self {
        _mm512_ternarylogic_epi32::<XOR3>(
            _mm512_ror_epi32::<17>(self),
            _mm512_ror_epi32::<19>(self),
            _mm512_srli_epi32::<10>(self),
        )
    }

    #[inline(always)]
    unsafe fn ch(self, f: Self, g: Self) -> Self {
        _mm512_ternarylogic_epi32::<CH>(self, f, g)
    }

    #[inline(always)]
    unsafe fn maj(self, b: Self, c: Self) -> Self {
        _mm512_ternarylogic_epi32::<MAJ>(self, b, c)
    }

    #[inline(always)]
    unsafe fn nonce_words(base: u32) -> Self {
        let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        swap_bytes(_mm512_add_epi32(_mm512_set1_epi32(base as i32), lanes))
    }

    #[inline(always)]
    unsafe fn swapped_at_most(self, top: u32) -> u32 {
        u32::from(_mm512_cmple_epu32_mask(swap_bytes(self), _mm512_set1_epi32(top as i32)))
    }

    #[inline(always)]
    unsafe fn store(self, out: &mut [u32; 16]) {
        // SAFETY: `out` has room for the 16 lanes; unaligned stores are
        // allowed.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), self) }
    }
}
