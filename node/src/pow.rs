//! Proof of work: decoding `bits`, checking a hash against it, and the
//! difficulty rule that says which `bits` the next block must carry.
//!
//! Pure functions: the caller supplies the ancestors it needs through a
//! closure, so nothing here touches storage.

use bitcoin::block::Header;
use bitcoin::{BlockHash, CompactTarget, Target};
use num_bigint::BigUint;

use crate::params::{ChainParams, DifficultyRule};

/// Why a header's proof of work is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    /// `bits` decodes to a negative, zero or overflowing target, or one above
    /// the network's limit.
    #[error("bits {0:#010x} is not a valid target for this network")]
    BadBits(u32),
    /// The hash is above the target.
    #[error("block hash {0} does not meet its target")]
    HighHash(BlockHash),
}

/// Decodes `bits` the way Core's `arith_uint256::SetCompact` does, refusing
/// the encodings Core's `DeriveTarget` refuses: negative, zero, overflowing,
/// or easier than `pow_limit`.
pub fn derive_target(bits: CompactTarget, pow_limit: Target) -> Option<Target> {
    let compact = bits.to_consensus();
    let size = compact >> 24;
    let mantissa = compact & 0x007f_ffff;
    let negative = mantissa != 0 && compact & 0x0080_0000 != 0;
    let overflow = mantissa != 0 && (size > 34 || (mantissa > 0xff && size > 33) || (mantissa > 0xffff && size > 32));
    if negative || overflow {
        return None;
    }
    let target = Target::from_compact(bits);
    if target == Target::ZERO || target > pow_limit {
        return None;
    }
    Some(target)
}

/// Core's `CheckProofOfWork`: the header's hash is at or below its own `bits`.
pub fn check_proof_of_work(header: &Header, pow_limit: Target) -> Result<BlockHash, PowError> {
    let target = derive_target(header.bits, pow_limit).ok_or(PowError::BadBits(header.bits.to_consensus()))?;
    let hash = header.block_hash();
    if target.is_met_by(hash) {
        Ok(hash)
    } else {
        Err(PowError::HighHash(hash))
    }
}

/// The block a new block builds on, with access to its ancestors.
pub struct Parent<'a> {
    /// The parent's height.
    pub height: u32,
    /// The parent's header.
    pub header: Header,
    /// The header of the parent's ancestor at a height at or below the
    /// parent's own (the parent itself included).
    pub ancestor: &'a dyn Fn(u32) -> Header,
}

/// The `bits` a block at `parent.height + 1` with timestamp `time` must carry
/// (Core's `GetNextWorkRequired`, plus devnet's ASERT).
pub fn next_work_required(params: &ChainParams, parent: &Parent<'_>, time: u32) -> CompactTarget {
    let limit_bits = params.pow_limit.to_compact_lossy();
    match params.difficulty {
        DifficultyRule::Fixed => parent.header.bits,
        DifficultyRule::Retarget { interval, allow_min_difficulty, bip94 } => {
            let height = parent.height + 1;
            if !height.is_multiple_of(interval) {
                if allow_min_difficulty {
                    // Testnet: a block twenty minutes late may be mined at the limit.
                    if u64::from(time) > u64::from(parent.header.time) + params.pow_target_spacing * 2 {
                        return limit_bits;
                    }
                    // Otherwise the last target that was not such an exception.
                    let mut h = parent.height;
                    let mut header = parent.header;
                    while h > 0 && !h.is_multiple_of(interval) && header.bits == limit_bits {
                        h -= 1;
                        header = (parent.ancestor)(h);
                    }
                    return header.bits;
                }
                return parent.header.bits;
            }
            let first = (parent.ancestor)(parent.height + 1 - interval);
            let timespan = params.pow_target_spacing * u64::from(interval);
            let actual = (i64::from(parent.header.time) - i64::from(first.time))
                .clamp(timespan as i64 / 4, timespan as i64 * 4) as u64;
            let base = if bip94 { first.bits } else { parent.header.bits };
            let new = to_big(Target::from_compact(base)) * BigUint::from(actual) / BigUint::from(timespan);
            let limit = to_big(params.pow_limit);
            from_big(new.min(limit)).to_compact_lossy()
        }
        DifficultyRule::Asert { half_life } => {
            // Block 1 is the anchor: mined at the limit, and its own timestamp
            // is the start of the schedule. (Anchoring at genesis would put the
            // schedule as far behind as the genesis is old.)
            if parent.height == 0 {
                return limit_bits;
            }
            let anchor = (parent.ancestor)(1);
            let time_delta = i64::from(parent.header.time) - i64::from(anchor.time);
            let height_delta = i64::from(parent.height - 1);
            let target = asert_target(
                Target::from_compact(anchor.bits),
                params.pow_limit,
                time_delta,
                height_delta,
                params.pow_target_spacing as i64,
                half_life as i64,
            );
            target.to_compact_lossy()
        }
    }
}

/// aserti3-2d: `anchor_target · 2^((time_delta − spacing · height_delta) / half_life)`,
/// with 2^x for the fractional part approximated by the cubic Bitcoin Cash
/// specifies (error below 0.013 %), clamped to `[1, pow_limit]`. Arbitrary
/// precision integers mean no overflow case to special-case.
pub fn asert_target(
    anchor_target: Target,
    pow_limit: Target,
    time_delta: i64,
    height_delta: i64,
    spacing: i64,
    half_life: i64,
) -> Target {
    let exponent = (time_delta - spacing * height_delta).saturating_mul(65536) / half_life.max(1);
    // Floor division by 65536: an arithmetic shift, not truncation.
    let shifts = exponent >> 16;
    let frac = u128::from(exponent as u16);
    let factor = 65536
        + ((195_766_423_245_049u128 * frac
            + 971_821_376u128 * frac * frac
            + 5127u128 * frac * frac * frac
            + (1u128 << 47))
            >> 48);
    let mut next = to_big(anchor_target) * BigUint::from(factor);
    let shifts = shifts - 16;
    let limit = to_big(pow_limit);
    if shifts <= 0 {
        next >>= shifts.unsigned_abs().min(512) as usize;
    } else if shifts > 256 {
        next = limit.clone();
    } else {
        next <<= shifts as usize;
    }
    if next == BigUint::ZERO {
        next = BigUint::from(1u8);
    }
    from_big(next.min(limit))
}

fn to_big(target: Target) -> BigUint {
    BigUint::from_bytes_be(&target.to_be_bytes())
}

fn from_big(value: BigUint) -> Target {
    let bytes = value.to_bytes_be();
    let mut out = [0u8; 32];
    let n = bytes.len().min(32);
    out[32 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    Target::from_be_bytes(out)
}

/// Core's `GetDifficulty`: how many times harder than difficulty 1
/// (`0x1d00ffff`) a target is, as a float for display.
pub fn difficulty(bits: CompactTarget) -> f64 {
    let compact = bits.to_consensus();
    let mut shift = (compact >> 24) & 0xff;
    let mut diff = f64::from(0x0000_ffff) / f64::from(compact & 0x00ff_ffff);
    while shift < 29 {
        diff *= 256.0;
        shift += 1;
    }
    while shift > 29 {
        diff /= 256.0;
        shift -= 1;
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Network;

    fn header(time: u32, bits: u32) -> Header {
        let mut h = ChainParams::new(Network::Mainnet).genesis.header;
        h.time = time;
        h.bits = CompactTarget::from_consensus(bits);
        h
    }

    #[test]
    fn derive_target_refuses_what_core_refuses() {
        let limit = Target::MAX_ATTAINABLE_MAINNET;
        let cases = [
            ("difficulty 1", 0x1d00ffff, true),
            ("negative", 0x1d80ffff, false),
            ("zero", 0x1d000000, false),
            ("overflow", 0xff123456, false),
            ("above limit", 0x1e00ffff, false),
        ];
        for (name, bits, ok) in cases {
            assert_eq!(derive_target(CompactTarget::from_consensus(bits), limit).is_some(), ok, "{name}");
        }
    }

    #[test]
    fn mainnet_genesis_has_valid_pow() {
        let params = ChainParams::new(Network::Mainnet);
        assert!(check_proof_of_work(&params.genesis.header, params.pow_limit).is_ok());
        let mut bad = params.genesis.header;
        bad.nonce += 1;
        assert!(matches!(check_proof_of_work(&bad, params.pow_limit), Err(PowError::HighHash(_))));
    }

    // Core's pow_tests: get_next_work, get_next_work_pow_limit,
    // get_next_work_lower_limit_actual, get_next_work_upper_limit_actual.
    #[test]
    fn mainnet_retarget_matches_core_pow_tests() {
        let params = ChainParams::new(Network::Mainnet);
        let cases = [
            ("get_next_work", 1261130161u32, 1262152739u32, 0x1d00ffffu32, 0x1d00d86au32),
            ("pow_limit", 1231006505, 1233061996, 0x1d00ffff, 0x1d00ffff),
            ("lower_limit_actual", 1279008237, 1279297671, 0x1c05a3f4, 0x1c0168fd),
            ("upper_limit_actual", 1263163443, 1269211443, 0x1c387f6f, 0x1d00e1fd),
        ];
        for (name, first_time, last_time, last_bits, expected) in cases {
            let first = header(first_time, last_bits);
            let last = header(last_time, last_bits);
            let ancestor = move |_h: u32| first;
            let parent = Parent { height: 2015 + 2016 * 10, header: last, ancestor: &ancestor };
            let got = next_work_required(&params, &parent, last_time + 600);
            // Core's tests compare CalculateNextWorkRequired's compact result.
            assert_eq!(got.to_consensus(), expected, "{name}");
        }
    }

    #[test]
    fn regtest_never_retargets() {
        let params = ChainParams::new(Network::Regtest);
        let last = header(1_000_000, 0x207fffff);
        let ancestor = move |_h: u32| last;
        let parent = Parent { height: 2015, header: last, ancestor: &ancestor };
        assert_eq!(next_work_required(&params, &parent, 2_000_000).to_consensus(), 0x207fffff);
    }

    #[test]
    fn asert_follows_the_schedule() {
        let limit = Target::from_compact(CompactTarget::from_consensus(0x1f00ffff));
        let anchor = Target::from_compact(CompactTarget::from_consensus(0x1e00ffff));
        // On schedule: unchanged (up to the compact encoding).
        let on = asert_target(anchor, limit, 300, 10, 30, 600);
        assert_eq!(on.to_compact_lossy(), anchor.to_compact_lossy());
        // One half-life behind schedule: target doubles (easier).
        let behind = asert_target(anchor, limit, 300 + 600, 10, 30, 600);
        assert_eq!(behind.to_compact_lossy().to_consensus(), 0x1e01fffe);
        // One half-life ahead: target halves (harder).
        let ahead = asert_target(anchor, limit, 300 - 600, 10, 30, 600);
        assert_eq!(ahead.to_compact_lossy().to_consensus(), 0x1d7fff80);
        // Far behind: clamped at the limit; far ahead: never zero.
        assert_eq!(asert_target(anchor, limit, 1 << 40, 0, 30, 600), limit);
        assert!(asert_target(anchor, limit, -(1 << 40), 0, 30, 600) > Target::ZERO);
    }

    #[test]
    fn difficulty_of_known_bits() {
        assert_eq!(difficulty(CompactTarget::from_consensus(0x1d00ffff)), 1.0);
        assert_eq!(difficulty(CompactTarget::from_consensus(0x1c3fffc0)), 4.0);
    }
}
