//! Share difficulty and its one conversion to a 256-bit target.
//!
//! Difficulty 1 is the target `0x00000000FFFF0000…0000` (16 bits of ones after
//! 32 zero bits, then 208 zero bits): the target that Bitcoin's compact
//! `nBits = 0x1d00ffff` decodes to, the genesis block's, and
//! [`bitcoin::Target::MAX`]. Every Stratum pool and miner the field uses
//! (ckpool's and cgminer's `truediffone`, public-pool, Miningcore) divides this
//! number by the share difficulty, so a share of difficulty `d` is worth `d`
//! times the work of a difficulty-1 block, and the difficulty a pool
//! announces means the same thing to cgminer, to an ASIC and to us.
//!
//! Naming, since the field is not consistent: the Bitcoin wiki calls the
//! all-ones variant `0x00000000FFFFFFFF…FFFF` "pdiff 1" and the truncated
//! `0x1d00ffff` one "bdiff 1"; pool software often says "pdiff" for what it
//! uses, which is the truncated value above. The two differ by a factor of
//! about 1.0000153. We use the truncated value, because that is what every
//! client we talk to uses for its share target; the all-ones variant would
//! make our targets 0.0015% easier than the miner's and bias the
//! statistics.
//!
//! Targets are compared as 256-bit integers, never as floats.

use core::fmt;
use core::str::FromStr;

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Target};

/// The target of difficulty 1: `0x00000000FFFF0000…0000`, equal to
/// [`Target::MAX`] (the target of compact bits `0x1d00ffff`).
pub const DIFF1_TARGET: Target = Target::MAX;

/// Why a number is not a share difficulty.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum DifficultyError {
    /// NaN or an infinity.
    #[error("difficulty {0} is not a finite number")]
    NotFinite(f64),
    /// Zero or negative.
    #[error("difficulty {0} is not greater than zero")]
    NotPositive(f64),
    /// A string that is not a number.
    #[error("difficulty is not a number")]
    NotANumber,
}

/// A Stratum share difficulty: a finite `f64` greater than zero.
///
/// Fractional difficulties (down to 0.00001 and below, for CPUs on test
/// networks) are allowed. Its [`Display`](fmt::Display) writes the shortest
/// decimal that reads back to the same number, without exponent and without
/// a trailing `.0` for integers (`0.001`, `1`, `1024`): that is also how it
/// goes on the wire.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub struct ShareDifficulty(f64);

impl ShareDifficulty {
    /// Difficulty 1: the target [`DIFF1_TARGET`].
    pub const ONE: ShareDifficulty = ShareDifficulty(1.0);

    /// Checks that `value` is finite and greater than zero.
    pub fn new(value: f64) -> Result<ShareDifficulty, DifficultyError> {
        if !value.is_finite() {
            Err(DifficultyError::NotFinite(value))
        } else if value <= 0.0 {
            Err(DifficultyError::NotPositive(value))
        } else {
            Ok(ShareDifficulty(value))
        }
    }

    /// The difficulty as a number.
    pub fn as_f64(self) -> f64 {
        self.0
    }

    /// The share target: `floor(DIFF1_TARGET / difficulty)`.
    ///
    /// Computed exactly in integer arithmetic from the `f64`'s own value
    /// (mantissa and exponent), so the only imprecision is the difficulty's
    /// own. Saturates at the largest 256-bit number for difficulties so small
    /// (below about 2^-32) that every hash meets them, and reaches zero for
    /// difficulties above about 2^224.
    pub fn to_target(self) -> Target {
        Target::from_le_bytes(diff1_div_f64(self.0))
    }

    /// The difficulty whose target is `target`: `DIFF1_TARGET / target`, as
    /// an `f64` (for statistics and vardiff, never for accepting a share).
    /// `None` for the zero target.
    pub fn from_target(target: Target) -> Option<ShareDifficulty> {
        let t = le_bytes_to_f64(&target.to_le_bytes());
        ShareDifficulty::new(diff1_f64() / t).ok()
    }
}

impl fmt::Debug for ShareDifficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareDifficulty({})", self.0)
    }
}

impl fmt::Display for ShareDifficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rust's float Display is the shortest round-trip decimal, never in
        // exponent form, and prints integral values without a fraction.
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for ShareDifficulty {
    type Err = DifficultyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: f64 = s.trim().parse().map_err(|_| DifficultyError::NotANumber)?;
        ShareDifficulty::new(value)
    }
}

impl TryFrom<f64> for ShareDifficulty {
    type Error = DifficultyError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        ShareDifficulty::new(value)
    }
}

impl serde::Serialize for ShareDifficulty {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ShareDifficulty {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        ShareDifficulty::new(value).map_err(serde::de::Error::custom)
    }
}

/// Whether `hash` (read as a little-endian 256-bit number, as Bitcoin does)
/// is at or below `target`.
pub fn meets(hash: &BlockHash, target: &Target) -> bool {
    target.is_met_by(*hash)
}

/// The difficulty a hash achieved: `DIFF1_TARGET / hash`, for "best share"
/// statistics. `f64::INFINITY` for the all-zero hash.
pub fn hash_difficulty(hash: &BlockHash) -> f64 {
    let h = le_bytes_to_f64(&hash.to_byte_array());
    if h == 0.0 {
        f64::INFINITY
    } else {
        diff1_f64() / h
    }
}

/// `DIFF1_TARGET` as an `f64` (exact: 0xFFFF × 2^208).
fn diff1_f64() -> f64 {
    65535.0 * 2f64.powi(208)
}

/// A little-endian 256-bit number as the nearest-below `f64` (truncated to
/// the top 64 significant bits first; plenty for statistics).
fn le_bytes_to_f64(bytes: &[u8; 32]) -> f64 {
    let mut value = 0.0;
    for byte in bytes.iter().rev() {
        value = value * 256.0 + f64::from(*byte);
    }
    value
}

/// Limbs of a 320-bit number, least significant first: room for
/// 0xFFFF × 2^s with s up to 304, enough to know whether the quotient fits
/// in 256 bits.
type Wide = [u64; 5];

/// `floor(0xFFFF × 2^208 / d)` for a finite `d > 0`, as 32 little-endian
/// bytes, saturating at 2^256 − 1.
fn diff1_div_f64(d: f64) -> [u8; 32] {
    debug_assert!(d.is_finite() && d > 0.0, "ShareDifficulty invariant: finite and positive");
    // d = mantissa × 2^exponent exactly.
    let bits = d.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, exponent) = if biased == 0 { (fraction, -1074) } else { (fraction | (1u64 << 52), biased - 1075) };
    debug_assert!(mantissa != 0, "a positive f64 has a non-zero mantissa");

    // target = 0xFFFF × 2^(208 − exponent) / mantissa
    let shift = 208 - exponent;
    if shift < 0 {
        // Huge difficulty: 0xFFFF / (mantissa × 2^-shift), a small number.
        let down = (-shift) as u32;
        if down >= 64 {
            return [0; 32];
        }
        let denominator = u128::from(mantissa) << down;
        let quotient = 0xFFFFu128 / denominator;
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&quotient.to_le_bytes());
        return out;
    }
    let shift = shift as u32;
    // numerator >= 2^(15 + shift) and mantissa < 2^mantissa_bits, so the
    // quotient exceeds 2^(15 + shift − mantissa_bits): past 2^256 it cannot fit.
    let mantissa_bits = 64 - mantissa.leading_zeros();
    if 15 + shift >= 256 + mantissa_bits {
        return [0xff; 32];
    }
    // Numerator 0xFFFF << shift with shift <= 256 + 53 − 15 = 294: below 2^310.
    let mut numerator: Wide = [0; 5];
    let limb = (shift / 64) as usize;
    let offset = shift % 64;
    let wide = (0xFFFFu128) << offset;
    numerator[limb] = wide as u64;
    if limb + 1 < numerator.len() {
        numerator[limb + 1] = (wide >> 64) as u64;
    }
    // Long division by a u64, most significant limb first.
    let mut quotient: Wide = [0; 5];
    let mut remainder: u128 = 0;
    for i in (0..numerator.len()).rev() {
        let current = (remainder << 64) | u128::from(numerator[i]);
        quotient[i] = (current / u128::from(mantissa)) as u64;
        remainder = current % u128::from(mantissa);
    }
    if quotient[4] != 0 {
        return [0xff; 32];
    }
    let mut out = [0u8; 32];
    for (i, limb) in quotient[..4].iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_hex(d: f64) -> String {
        let t = ShareDifficulty::new(d).expect("valid difficulty").to_target();
        hex::encode(t.to_be_bytes())
    }

    #[test]
    fn difficulty_one_is_the_0x1d00ffff_target() {
        assert_eq!(ShareDifficulty::ONE.to_target(), Target::MAX);
        let bits = bitcoin::CompactTarget::from_consensus(0x1d00ffff);
        assert_eq!(ShareDifficulty::ONE.to_target(), Target::from_compact(bits));
    }

    // Expected values: floor(0xFFFF·2^208 / Fraction(d)) computed with
    // Python's exact rationals from the same f64.
    #[test]
    fn targets_of_known_difficulties() {
        let cases = [
            ("one", 1.0, "00000000ffff0000000000000000000000000000000000000000000000000000"),
            ("two", 2.0, "000000007fff8000000000000000000000000000000000000000000000000000"),
            ("half", 0.5, "00000001fffe0000000000000000000000000000000000000000000000000000"),
            ("cpu testnet", 0.00001, "0001869e795ffffff7017bde8d2000350440d92a225ec77dedbfeaa3675216b5"),
            ("asic", 1e9, "00000000000000044b7eae86bb9b77145e86c9077061bcde6d333434e5e5cd79"),
            ("milli", 0.001, "000003e7fc17fffffffa2405dc00000008c9f735fffffff2d10d2f00000013c6"),
        ];
        for (name, d, want) in cases {
            assert_eq!(target_hex(d), want, "{name}");
        }
    }

    #[test]
    fn extremes_saturate() {
        assert_eq!(target_hex(1e-30), "f".repeat(64));
        assert_eq!(target_hex(f64::MIN_POSITIVE / 4.0), "f".repeat(64));
        assert_eq!(target_hex(1e300), "0".repeat(64));
        assert_eq!(target_hex(f64::MAX), "0".repeat(64));
        // 2^-32: 0xFFFF·2^240 just fits; 0xFFFF·2^-48 gives exactly 2^256, which does not.
        let t = ShareDifficulty::new(2f64.powi(-32)).expect("valid").to_target();
        assert_eq!(hex::encode(t.to_be_bytes()), "ffff".to_string() + &"0".repeat(60));
        let t = ShareDifficulty::new(65535.0 * 2f64.powi(-48)).expect("valid").to_target();
        assert_eq!(hex::encode(t.to_be_bytes()), "f".repeat(64));
        let t = ShareDifficulty::new(65535.0 * 2f64.powi(-48) * (1.0 + f64::EPSILON)).expect("valid").to_target();
        // Python: int(Fraction(0xFFFF << 208) / Fraction(d)) for the same f64.
        assert_eq!(hex::encode(t.to_be_bytes()), "ffffffffffffefffefffeffff0fff1fff2fff3eff4cff59ff660f713f7b9f853");
        // 0xFFFF·2^208 / 2^208 = 0xFFFF
        let t = ShareDifficulty::new(2f64.powi(208)).expect("valid").to_target();
        assert_eq!(hex::encode(t.to_be_bytes()), format!("{:064x}", 0xFFFF));
        let t = ShareDifficulty::new(2f64.powi(224)).expect("valid").to_target();
        assert_eq!(hex::encode(t.to_be_bytes()), "0".repeat(64));
    }

    #[test]
    fn rejects_non_finite_and_non_positive() {
        assert_eq!(ShareDifficulty::new(0.0), Err(DifficultyError::NotPositive(0.0)));
        assert_eq!(ShareDifficulty::new(-1.0), Err(DifficultyError::NotPositive(-1.0)));
        assert!(matches!(ShareDifficulty::new(f64::NAN), Err(DifficultyError::NotFinite(_))));
        assert!(matches!(ShareDifficulty::new(f64::INFINITY), Err(DifficultyError::NotFinite(_))));
        assert!("abc".parse::<ShareDifficulty>().is_err());
        assert_eq!("0.5".parse::<ShareDifficulty>().map(ShareDifficulty::as_f64), Ok(0.5));
    }

    #[test]
    fn display_has_no_float_noise() {
        let cases = [(0.001, "0.001"), (1.0, "1"), (1024.0, "1024"), (0.00001, "0.00001"), (1e9, "1000000000")];
        for (d, want) in cases {
            assert_eq!(ShareDifficulty::new(d).expect("valid").to_string(), want);
        }
    }

    #[test]
    fn difficulty_of_real_hashes() {
        // Mainnet genesis and block 100000; expected values are exact
        // rationals rounded to f64 (Python's Fraction).
        let cases = [
            ("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", 2536.4262984453103),
            ("000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506", 17583.056276040857),
        ];
        for (hash, want) in cases {
            let hash: BlockHash = hash.parse().expect("hash hex");
            let got = hash_difficulty(&hash);
            assert!((got - want).abs() / want < 1e-12, "{got} vs {want}");
            // The hash meets its own difficulty's target, and not a slightly higher one.
            let d = ShareDifficulty::new(got * (1.0 - 1e-9)).expect("valid");
            assert!(meets(&hash, &d.to_target()));
            let d = ShareDifficulty::new(got * (1.0 + 1e-9)).expect("valid");
            assert!(!meets(&hash, &d.to_target()));
        }
        assert_eq!(hash_difficulty(&BlockHash::all_zeros()), f64::INFINITY);
    }

    #[test]
    fn from_target_inverts_to_target() {
        for d in [0.00001, 0.5, 1.0, 3.0, 1e9] {
            let back = ShareDifficulty::from_target(ShareDifficulty::new(d).expect("valid").to_target())
                .expect("non-zero target");
            assert!((back.as_f64() - d).abs() / d < 1e-12);
        }
        assert_eq!(ShareDifficulty::from_target(Target::ZERO), None);
    }
}
