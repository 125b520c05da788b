//! Script numbers (Core's `CScriptNum`).
//!
//! Numbers on the stack are little-endian with a sign bit in the most
//! significant bit of the last byte; zero is the empty vector. Arithmetic
//! operands are limited to 4 bytes (5 for the lock time opcodes), but
//! results may overflow into 5 bytes, so the value is kept as an `i64`.

use crate::error::ScriptError;

/// The default limit on the size of a numeric operand, in bytes.
pub const DEFAULT_MAX_NUM_SIZE: usize = 4;

/// A script number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScriptNum(pub i64);

impl ScriptNum {
    /// Decodes a stack element as a number of at most `max_size` bytes,
    /// minimally encoded if `require_minimal`.
    pub fn decode(bytes: &[u8], require_minimal: bool, max_size: usize) -> Result<Self, ScriptNumError> {
        if bytes.len() > max_size {
            return Err(ScriptNumError::Overflow);
        }
        if require_minimal && !is_minimally_encoded(bytes) {
            return Err(ScriptNumError::NonMinimal);
        }
        Ok(Self(decode_unchecked(bytes)))
    }

    /// The value clamped to the `i32` range (Core's `getint`).
    pub fn to_i32_saturating(self) -> i32 {
        self.0.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    /// The minimal encoding of the number.
    pub fn encode(self) -> Vec<u8> {
        encode(self.0)
    }
}

/// Why a stack element is not an acceptable number. Core throws a
/// `scriptnum_error` for both, which `EvalScript` reports as
/// `SCRIPT_ERR_SCRIPTNUM` ([`ScriptError::ScriptNum`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScriptNumError {
    /// Longer than the operand limit.
    #[error("script number overflow")]
    Overflow,
    /// Has a superfluous most significant byte.
    #[error("non-minimally encoded script number")]
    NonMinimal,
}

impl From<ScriptNumError> for ScriptError {
    fn from(_: ScriptNumError) -> Self {
        ScriptError::ScriptNum
    }
}

/// Whether `bytes` has no superfluous most significant byte.
pub fn is_minimally_encoded(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [.., last] if last & 0x7f != 0 => true,
        // The last byte holds only the sign bit (or nothing): that is only
        // needed when the byte before it has its top bit set.
        [.., before, _] => before & 0x80 != 0,
        [_] => false,
    }
}

/// Decodes without size or minimality checks. Callers bound the length to
/// at most 8 bytes; longer input wraps.
fn decode_unchecked(bytes: &[u8]) -> i64 {
    let Some((&last, _)) = bytes.split_last() else {
        return 0;
    };
    let mut value: i64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        value |= i64::from(b) << (8 * i);
    }
    if last & 0x80 != 0 {
        let sign_bit = 0x80i64 << (8 * (bytes.len() - 1));
        -(value & !sign_bit)
    } else {
        value
    }
}

/// The minimal encoding of `value`.
pub fn encode(value: i64) -> Vec<u8> {
    if value == 0 {
        return Vec::new();
    }
    let negative = value < 0;
    let mut abs = value.unsigned_abs();
    let mut out = Vec::with_capacity(9);
    while abs > 0 {
        out.push((abs & 0xff) as u8);
        abs >>= 8;
    }
    // `out` is non-empty because `value != 0`.
    let last = out.len() - 1;
    if out[last] & 0x80 != 0 {
        out.push(if negative { 0x80 } else { 0 });
    } else if negative {
        out[last] |= 0x80;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        assert_eq!(encode(0), Vec::<u8>::new());
        assert_eq!(encode(1), vec![1]);
        assert_eq!(encode(-1), vec![0x81]);
        assert_eq!(encode(127), vec![0x7f]);
        assert_eq!(encode(128), vec![0x80, 0]);
        assert_eq!(encode(-128), vec![0x80, 0x80]);
        assert_eq!(encode(255), vec![0xff, 0]);
        assert_eq!(decode_unchecked(&[0x80, 0x80]), -128);
        assert_eq!(decode_unchecked(&[0x00, 0x80]), 0);
        assert!(!is_minimally_encoded(&[0x00]));
        assert!(!is_minimally_encoded(&[0x80]));
        assert!(!is_minimally_encoded(&[0x01, 0x00]));
        assert!(is_minimally_encoded(&[0x80, 0x00]));
        assert_eq!(ScriptNum::decode(&[1, 2, 3, 4, 5], false, 4), Err(ScriptNumError::Overflow));
    }
}
