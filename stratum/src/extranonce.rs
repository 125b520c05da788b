//! The two extranonces: extranonce1 (the pool's, one per session) and
//! extranonce2 (the miner's, of the size the pool announced). Both are raw
//! bytes placed in the coinbase scriptSig exactly as their hex reads: never
//! byte-swapped.

use core::fmt;
use core::str::FromStr;

/// The largest extranonce (either part) accepted: a coinbase scriptSig is at
/// most 100 bytes, so nothing larger can fit.
pub const MAX_EXTRANONCE_LEN: usize = 100;

/// Why hex is not an extranonce.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtranonceError {
    /// Not an even number of hex digits.
    #[error("extranonce is not hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// Longer than [`MAX_EXTRANONCE_LEN`].
    #[error("extranonce is {0} bytes, over the limit of {MAX_EXTRANONCE_LEN}")]
    TooLong(usize),
    /// A counter value that does not fit in the requested size.
    #[error("value {value} does not fit in an extranonce2 of {size} bytes")]
    CounterOverflow {
        /// The counter.
        value: u64,
        /// The size asked for.
        size: usize,
    },
}

macro_rules! extranonce_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Wraps raw bytes; at most [`MAX_EXTRANONCE_LEN`].
            pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ExtranonceError> {
                if bytes.len() > MAX_EXTRANONCE_LEN {
                    return Err(ExtranonceError::TooLong(bytes.len()));
                }
                Ok(Self(bytes))
            }

            /// The bytes, in coinbase order.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// The length in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether it is zero bytes long.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Display for $name {
            /// Lower-case hex, as on the wire.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in &self.0 {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = ExtranonceError;

            /// Hex in either case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_bytes(hex::decode(s)?)
            }
        }
    };
}

extranonce_type!(
    /// The pool's part of the extranonce, unique per session. Draw it from a
    /// counter (with an instance prefix when several servers run), never at
    /// random: random ones collide, and two sessions with the same
    /// extranonce1 search the same space.
    Extranonce1
);

extranonce_type!(
    /// The miner's part of the extranonce: exactly `extranonce2_size` bytes
    /// in a valid share (checked by [`check_share`](crate::check_share)).
    Extranonce2
);

impl Extranonce1 {
    /// Four bytes, big-endian: the usual shape of a counter-drawn
    /// extranonce1 (`00000001`, `00000002`, …).
    pub fn from_u32(value: u32) -> Extranonce1 {
        Extranonce1(value.to_be_bytes().to_vec())
    }
}

impl Extranonce2 {
    /// `value` big-endian in exactly `size` bytes, for a miner that counts
    /// through its extranonce2 space.
    pub fn from_counter(value: u64, size: usize) -> Result<Extranonce2, ExtranonceError> {
        if size > MAX_EXTRANONCE_LEN {
            return Err(ExtranonceError::TooLong(size));
        }
        if size < 8 && value >> (size * 8) != 0 {
            return Err(ExtranonceError::CounterOverflow { value, size });
        }
        let mut bytes = vec![0u8; size];
        let be = value.to_be_bytes();
        let n = size.min(8);
        bytes[size - n..].copy_from_slice(&be[8 - n..]);
        Ok(Extranonce2(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let e: Extranonce1 = "DEADbeef".parse().expect("hex");
        assert_eq!(e.as_bytes(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(e.to_string(), "deadbeef");
        assert_eq!(Extranonce1::from_u32(1).to_string(), "00000001");
        assert!("abc".parse::<Extranonce2>().is_err());
        assert!("zz".parse::<Extranonce2>().is_err());
        assert!(Extranonce2::from_bytes(vec![0; 101]).is_err());
        assert!(Extranonce2::from_bytes(Vec::new()).expect("empty is fine").is_empty());
    }

    #[test]
    fn counter() {
        assert_eq!(Extranonce2::from_counter(1, 4).expect("fits").to_string(), "00000001");
        assert_eq!(Extranonce2::from_counter(0x0102, 10).expect("fits").to_string(), "00000000000000000102");
        assert_eq!(Extranonce2::from_counter(0, 0).expect("fits").len(), 0);
        assert!(Extranonce2::from_counter(256, 1).is_err());
        assert!(Extranonce2::from_counter(u64::MAX, 8).is_ok());
    }
}
