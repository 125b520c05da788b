//! Opcodes: their byte values and the names Core's script assembly uses.
//!
//! Scripts are handled as raw bytes throughout this crate, as Core does, so
//! opcodes are plain `u8` constants rather than an enum: every byte value is
//! an opcode, most of them unknown.

/// the push of the number 0 (0x00).
pub const OP_0: u8 = 0x00;
/// `OP_PUSHDATA1` (0x4c).
pub const OP_PUSHDATA1: u8 = 0x4c;
/// `OP_PUSHDATA2` (0x4d).
pub const OP_PUSHDATA2: u8 = 0x4d;
/// `OP_PUSHDATA4` (0x4e).
pub const OP_PUSHDATA4: u8 = 0x4e;
/// `OP_1NEGATE` (0x4f).
pub const OP_1NEGATE: u8 = 0x4f;
/// `OP_RESERVED` (0x50).
pub const OP_RESERVED: u8 = 0x50;
/// the push of the number 1 (0x51).
pub const OP_1: u8 = 0x51;
/// the push of the number 2 (0x52).
pub const OP_2: u8 = 0x52;
/// the push of the number 3 (0x53).
pub const OP_3: u8 = 0x53;
/// the push of the number 4 (0x54).
pub const OP_4: u8 = 0x54;
/// the push of the number 5 (0x55).
pub const OP_5: u8 = 0x55;
/// the push of the number 6 (0x56).
pub const OP_6: u8 = 0x56;
/// the push of the number 7 (0x57).
pub const OP_7: u8 = 0x57;
/// the push of the number 8 (0x58).
pub const OP_8: u8 = 0x58;
/// the push of the number 9 (0x59).
pub const OP_9: u8 = 0x59;
/// the push of the number 10 (0x5a).
pub const OP_10: u8 = 0x5a;
/// the push of the number 11 (0x5b).
pub const OP_11: u8 = 0x5b;
/// the push of the number 12 (0x5c).
pub const OP_12: u8 = 0x5c;
/// the push of the number 13 (0x5d).
pub const OP_13: u8 = 0x5d;
/// the push of the number 14 (0x5e).
pub const OP_14: u8 = 0x5e;
/// the push of the number 15 (0x5f).
pub const OP_15: u8 = 0x5f;
/// the push of the number 16 (0x60).
pub const OP_16: u8 = 0x60;
/// `OP_NOP` (0x61).
pub const OP_NOP: u8 = 0x61;
/// `OP_VER` (0x62).
pub const OP_VER: u8 = 0x62;
/// `OP_IF` (0x63).
pub const OP_IF: u8 = 0x63;
/// `OP_NOTIF` (0x64).
pub const OP_NOTIF: u8 = 0x64;
/// `OP_VERIF` (0x65).
pub const OP_VERIF: u8 = 0x65;
/// `OP_VERNOTIF` (0x66).
pub const OP_VERNOTIF: u8 = 0x66;
/// `OP_ELSE` (0x67).
pub const OP_ELSE: u8 = 0x67;
/// `OP_ENDIF` (0x68).
pub const OP_ENDIF: u8 = 0x68;
/// `OP_VERIFY` (0x69).
pub const OP_VERIFY: u8 = 0x69;
/// `OP_RETURN` (0x6a).
pub const OP_RETURN: u8 = 0x6a;
/// `OP_TOALTSTACK` (0x6b).
pub const OP_TOALTSTACK: u8 = 0x6b;
/// `OP_FROMALTSTACK` (0x6c).
pub const OP_FROMALTSTACK: u8 = 0x6c;
/// `OP_2DROP` (0x6d).
pub const OP_2DROP: u8 = 0x6d;
/// `OP_2DUP` (0x6e).
pub const OP_2DUP: u8 = 0x6e;
/// `OP_3DUP` (0x6f).
pub const OP_3DUP: u8 = 0x6f;
/// `OP_2OVER` (0x70).
pub const OP_2OVER: u8 = 0x70;
/// `OP_2ROT` (0x71).
pub const OP_2ROT: u8 = 0x71;
/// `OP_2SWAP` (0x72).
pub const OP_2SWAP: u8 = 0x72;
/// `OP_IFDUP` (0x73).
pub const OP_IFDUP: u8 = 0x73;
/// `OP_DEPTH` (0x74).
pub const OP_DEPTH: u8 = 0x74;
/// `OP_DROP` (0x75).
pub const OP_DROP: u8 = 0x75;
/// `OP_DUP` (0x76).
pub const OP_DUP: u8 = 0x76;
/// `OP_NIP` (0x77).
pub const OP_NIP: u8 = 0x77;
/// `OP_OVER` (0x78).
pub const OP_OVER: u8 = 0x78;
/// `OP_PICK` (0x79).
pub const OP_PICK: u8 = 0x79;
/// `OP_ROLL` (0x7a).
pub const OP_ROLL: u8 = 0x7a;
/// `OP_ROT` (0x7b).
pub const OP_ROT: u8 = 0x7b;
/// `OP_SWAP` (0x7c).
pub const OP_SWAP: u8 = 0x7c;
/// `OP_TUCK` (0x7d).
pub const OP_TUCK: u8 = 0x7d;
/// `OP_CAT` (0x7e).
pub const OP_CAT: u8 = 0x7e;
/// `OP_SUBSTR` (0x7f).
pub const OP_SUBSTR: u8 = 0x7f;
/// `OP_LEFT` (0x80).
pub const OP_LEFT: u8 = 0x80;
/// `OP_RIGHT` (0x81).
pub const OP_RIGHT: u8 = 0x81;
/// `OP_SIZE` (0x82).
pub const OP_SIZE: u8 = 0x82;
/// `OP_INVERT` (0x83).
pub const OP_INVERT: u8 = 0x83;
/// `OP_AND` (0x84).
pub const OP_AND: u8 = 0x84;
/// `OP_OR` (0x85).
pub const OP_OR: u8 = 0x85;
/// `OP_XOR` (0x86).
pub const OP_XOR: u8 = 0x86;
/// `OP_EQUAL` (0x87).
pub const OP_EQUAL: u8 = 0x87;
/// `OP_EQUALVERIFY` (0x88).
pub const OP_EQUALVERIFY: u8 = 0x88;
/// `OP_RESERVED1` (0x89).
pub const OP_RESERVED1: u8 = 0x89;
/// `OP_RESERVED2` (0x8a).
pub const OP_RESERVED2: u8 = 0x8a;
/// `OP_1ADD` (0x8b).
pub const OP_1ADD: u8 = 0x8b;
/// `OP_1SUB` (0x8c).
pub const OP_1SUB: u8 = 0x8c;
/// `OP_2MUL` (0x8d).
pub const OP_2MUL: u8 = 0x8d;
/// `OP_2DIV` (0x8e).
pub const OP_2DIV: u8 = 0x8e;
/// `OP_NEGATE` (0x8f).
pub const OP_NEGATE: u8 = 0x8f;
/// `OP_ABS` (0x90).
pub const OP_ABS: u8 = 0x90;
/// `OP_NOT` (0x91).
pub const OP_NOT: u8 = 0x91;
/// `OP_0NOTEQUAL` (0x92).
pub const OP_0NOTEQUAL: u8 = 0x92;
/// `OP_ADD` (0x93).
pub const OP_ADD: u8 = 0x93;
/// `OP_SUB` (0x94).
pub const OP_SUB: u8 = 0x94;
/// `OP_MUL` (0x95).
pub const OP_MUL: u8 = 0x95;
/// `OP_DIV` (0x96).
pub const OP_DIV: u8 = 0x96;
/// `OP_MOD` (0x97).
pub const OP_MOD: u8 = 0x97;
/// `OP_LSHIFT` (0x98).
pub const OP_LSHIFT: u8 = 0x98;
/// `OP_RSHIFT` (0x99).
pub const OP_RSHIFT: u8 = 0x99;
/// `OP_BOOLAND` (0x9a).
pub const OP_BOOLAND: u8 = 0x9a;
/// `OP_BOOLOR` (0x9b).
pub const OP_BOOLOR: u8 = 0x9b;
/// `OP_NUMEQUAL` (0x9c).
pub const OP_NUMEQUAL: u8 = 0x9c;
/// `OP_NUMEQUALVERIFY` (0x9d).
pub const OP_NUMEQUALVERIFY: u8 = 0x9d;
/// `OP_NUMNOTEQUAL` (0x9e).
pub const OP_NUMNOTEQUAL: u8 = 0x9e;
/// `OP_LESSTHAN` (0x9f).
pub const OP_LESSTHAN: u8 = 0x9f;
/// `OP_GREATERTHAN` (0xa0).
pub const OP_GREATERTHAN: u8 = 0xa0;
/// `OP_LESSTHANOREQUAL` (0xa1).
pub const OP_LESSTHANOREQUAL: u8 = 0xa1;
/// `OP_GREATERTHANOREQUAL` (0xa2).
pub const OP_GREATERTHANOREQUAL: u8 = 0xa2;
/// `OP_MIN` (0xa3).
pub const OP_MIN: u8 = 0xa3;
/// `OP_MAX` (0xa4).
pub const OP_MAX: u8 = 0xa4;
/// `OP_WITHIN` (0xa5).
pub const OP_WITHIN: u8 = 0xa5;
/// `OP_RIPEMD160` (0xa6).
pub const OP_RIPEMD160: u8 = 0xa6;
/// `OP_SHA1` (0xa7).
pub const OP_SHA1: u8 = 0xa7;
/// `OP_SHA256` (0xa8).
pub const OP_SHA256: u8 = 0xa8;
/// `OP_HASH160` (0xa9).
pub const OP_HASH160: u8 = 0xa9;
/// `OP_HASH256` (0xaa).
pub const OP_HASH256: u8 = 0xaa;
/// `OP_CODESEPARATOR` (0xab).
pub const OP_CODESEPARATOR: u8 = 0xab;
/// `OP_CHECKSIG` (0xac).
pub const OP_CHECKSIG: u8 = 0xac;
/// `OP_CHECKSIGVERIFY` (0xad).
pub const OP_CHECKSIGVERIFY: u8 = 0xad;
/// `OP_CHECKMULTISIG` (0xae).
pub const OP_CHECKMULTISIG: u8 = 0xae;
/// `OP_CHECKMULTISIGVERIFY` (0xaf).
pub const OP_CHECKMULTISIGVERIFY: u8 = 0xaf;
/// `OP_NOP1` (0xb0).
pub const OP_NOP1: u8 = 0xb0;
/// `OP_CHECKLOCKTIMEVERIFY` (0xb1).
pub const OP_CHECKLOCKTIMEVERIFY: u8 = 0xb1;
/// `OP_CHECKSEQUENCEVERIFY` (0xb2).
pub const OP_CHECKSEQUENCEVERIFY: u8 = 0xb2;
/// `OP_NOP4` (0xb3).
pub const OP_NOP4: u8 = 0xb3;
/// `OP_NOP5` (0xb4).
pub const OP_NOP5: u8 = 0xb4;
/// `OP_NOP6` (0xb5).
pub const OP_NOP6: u8 = 0xb5;
/// `OP_NOP7` (0xb6).
pub const OP_NOP7: u8 = 0xb6;
/// `OP_NOP8` (0xb7).
pub const OP_NOP8: u8 = 0xb7;
/// `OP_NOP9` (0xb8).
pub const OP_NOP9: u8 = 0xb8;
/// `OP_NOP10` (0xb9).
pub const OP_NOP10: u8 = 0xb9;
/// `OP_CHECKSIGADD` (0xba).
pub const OP_CHECKSIGADD: u8 = 0xba;
/// `OP_INVALIDOPCODE` (0xff).
pub const OP_INVALIDOPCODE: u8 = 0xff;
/// `OP_FALSE`, an alias of `OP_0`.
pub const OP_FALSE: u8 = OP_0;
/// `OP_TRUE`, an alias of `OP_1`.
pub const OP_TRUE: u8 = OP_1;
/// `OP_NOP2`, the old name of `OP_CHECKLOCKTIMEVERIFY`.
pub const OP_NOP2: u8 = OP_CHECKLOCKTIMEVERIFY;
/// `OP_NOP3`, the old name of `OP_CHECKSEQUENCEVERIFY`.
pub const OP_NOP3: u8 = OP_CHECKSEQUENCEVERIFY;

/// Every opcode name with its byte, `OP_` prefix included.
const NAMES: [(&str, u8); 117] = [
    ("OP_0", 0x00),
    ("OP_PUSHDATA1", 0x4c),
    ("OP_PUSHDATA2", 0x4d),
    ("OP_PUSHDATA4", 0x4e),
    ("OP_1NEGATE", 0x4f),
    ("OP_RESERVED", 0x50),
    ("OP_1", 0x51),
    ("OP_2", 0x52),
    ("OP_3", 0x53),
    ("OP_4", 0x54),
    ("OP_5", 0x55),
    ("OP_6", 0x56),
    ("OP_7", 0x57),
    ("OP_8", 0x58),
    ("OP_9", 0x59),
    ("OP_10", 0x5a),
    ("OP_11", 0x5b),
    ("OP_12", 0x5c),
    ("OP_13", 0x5d),
    ("OP_14", 0x5e),
    ("OP_15", 0x5f),
    ("OP_16", 0x60),
    ("OP_NOP", 0x61),
    ("OP_VER", 0x62),
    ("OP_IF", 0x63),
    ("OP_NOTIF", 0x64),
    ("OP_VERIF", 0x65),
    ("OP_VERNOTIF", 0x66),
    ("OP_ELSE", 0x67),
    ("OP_ENDIF", 0x68),
    ("OP_VERIFY", 0x69),
    ("OP_RETURN", 0x6a),
    ("OP_TOALTSTACK", 0x6b),
    ("OP_FROMALTSTACK", 0x6c),
    ("OP_2DROP", 0x6d),
    ("OP_2DUP", 0x6e),
    ("OP_3DUP", 0x6f),
    ("OP_2OVER", 0x70),
    ("OP_2ROT", 0x71),
    ("OP_2SWAP", 0x72),
    ("OP_IFDUP", 0x73),
    ("OP_DEPTH", 0x74),
    ("OP_DROP", 0x75),
    ("OP_DUP", 0x76),
    ("OP_NIP", 0x77),
    ("OP_OVER", 0x78),
    ("OP_PICK", 0x79),
    ("OP_ROLL", 0x7a),
    ("OP_ROT", 0x7b),
    ("OP_SWAP", 0x7c),
    ("OP_TUCK", 0x7d),
    ("OP_CAT", 0x7e),
    ("OP_SUBSTR", 0x7f),
    ("OP_LEFT", 0x80),
    ("OP_RIGHT", 0x81),
    ("OP_SIZE", 0x82),
    ("OP_INVERT", 0x83),
    ("OP_AND", 0x84),
    ("OP_OR", 0x85),
    ("OP_XOR", 0x86),
    ("OP_EQUAL", 0x87),
    ("OP_EQUALVERIFY", 0x88),
    ("OP_RESERVED1", 0x89),
    ("OP_RESERVED2", 0x8a),
    ("OP_1ADD", 0x8b),
    ("OP_1SUB", 0x8c),
    ("OP_2MUL", 0x8d),
    ("OP_2DIV", 0x8e),
    ("OP_NEGATE", 0x8f),
    ("OP_ABS", 0x90),
    ("OP_NOT", 0x91),
    ("OP_0NOTEQUAL", 0x92),
    ("OP_ADD", 0x93),
    ("OP_SUB", 0x94),
    ("OP_MUL", 0x95),
    ("OP_DIV", 0x96),
    ("OP_MOD", 0x97),
    ("OP_LSHIFT", 0x98),
    ("OP_RSHIFT", 0x99),
    ("OP_BOOLAND", 0x9a),
    ("OP_BOOLOR", 0x9b),
    ("OP_NUMEQUAL", 0x9c),
    ("OP_NUMEQUALVERIFY", 0x9d),
    ("OP_NUMNOTEQUAL", 0x9e),
    ("OP_LESSTHAN", 0x9f),
    ("OP_GREATERTHAN", 0xa0),
    ("OP_LESSTHANOREQUAL", 0xa1),
    ("OP_GREATERTHANOREQUAL", 0xa2),
    ("OP_MIN", 0xa3),
    ("OP_MAX", 0xa4),
    ("OP_WITHIN", 0xa5),
    ("OP_RIPEMD160", 0xa6),
    ("OP_SHA1", 0xa7),
    ("OP_SHA256", 0xa8),
    ("OP_HASH160", 0xa9),
    ("OP_HASH256", 0xaa),
    ("OP_CODESEPARATOR", 0xab),
    ("OP_CHECKSIG", 0xac),
    ("OP_CHECKSIGVERIFY", 0xad),
    ("OP_CHECKMULTISIG", 0xae),
    ("OP_CHECKMULTISIGVERIFY", 0xaf),
    ("OP_NOP1", 0xb0),
    ("OP_CHECKLOCKTIMEVERIFY", 0xb1),
    ("OP_CHECKSEQUENCEVERIFY", 0xb2),
    ("OP_NOP4", 0xb3),
    ("OP_NOP5", 0xb4),
    ("OP_NOP6", 0xb5),
    ("OP_NOP7", 0xb6),
    ("OP_NOP8", 0xb7),
    ("OP_NOP9", 0xb8),
    ("OP_NOP10", 0xb9),
    ("OP_CHECKSIGADD", 0xba),
    ("OP_INVALIDOPCODE", 0xff),
    ("OP_FALSE", 0x00),
    ("OP_TRUE", 0x51),
    ("OP_NOP2", 0xb1),
    ("OP_NOP3", 0xb2),
];

/// The opcode named `name`, with or without its `OP_` prefix
/// (`"OP_CHECKSIG"`, `"CHECKSIG"`, `"OP_1"`).
pub fn from_name(name: &str) -> Option<u8> {
    let bare = name.strip_prefix("OP_").unwrap_or(name);
    NAMES.iter().find(|(n, _)| &n[3..] == bare).map(|(_, code)| *code)
}

/// Whether `opcode` is one of tapscript's OP_SUCCESSx (BIP342), which make a
/// tapscript succeed unconditionally.
pub fn is_op_success(opcode: u8) -> bool {
    matches!(
        opcode,
        80 | 98 | 126..=129 | 131..=134 | 137..=138 | 141..=142 | 149..=153 | 187..=254
    )
}

/// The number pushed by `OP_0`, `OP_1` .. `OP_16` (Core's `DecodeOP_N`).
/// Other opcodes give `None`.
pub fn decode_op_n(opcode: u8) -> Option<u8> {
    match opcode {
        OP_0 => Some(0),
        OP_1..=OP_16 => Some(opcode - (OP_1 - 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(from_name("CHECKSIG"), Some(OP_CHECKSIG));
        assert_eq!(from_name("OP_CHECKSIGADD"), Some(0xba));
        assert_eq!(from_name("NOP2"), Some(OP_CHECKLOCKTIMEVERIFY));
        assert_eq!(from_name("OP_16"), Some(0x60));
        assert_eq!(from_name("BOGUS"), None);
        assert_eq!(decode_op_n(OP_16), Some(16));
    }
}
