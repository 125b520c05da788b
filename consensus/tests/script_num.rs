//! Property tests of script number encoding.

use proptest::prelude::*;
use satpool_consensus::num::{encode, is_minimally_encoded, ScriptNum};

proptest! {
    /// Encoding then decoding gives the number back, and the encoding is
    /// minimal.
    #[test]
    fn round_trip(n in -i64::MAX..=i64::MAX) {
        let bytes = encode(n);
        prop_assert!(bytes.len() <= 8);
        prop_assert!(is_minimally_encoded(&bytes));
        prop_assert_eq!(ScriptNum::decode(&bytes, true, 8), Ok(ScriptNum(n)));
    }

    /// Any minimally encoded operand of up to 4 bytes re-encodes to itself;
    /// any other one is refused under MINIMALDATA.
    #[test]
    fn minimal_bytes_reencode(bytes in proptest::collection::vec(any::<u8>(), 0..=4)) {
        match ScriptNum::decode(&bytes, true, 4) {
            Ok(n) => prop_assert_eq!(n.encode(), bytes),
            Err(_) => prop_assert!(!is_minimally_encoded(&bytes)),
        }
    }
}
