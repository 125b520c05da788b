//! Script verification flags: Bitcoin Core's `SCRIPT_VERIFY_*` bits.
//!
//! The bit positions match Core's `script/interpreter.h`, so a set of flags
//! can be compared with Core's numeric values. Flags parse from and print as
//! Core's comma-separated names, the form used by its test vectors.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};
use std::str::FromStr;

/// A set of script verification flags (Core's `script_verify_flags`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VerifyFlags(u32);

impl VerifyFlags {
    /// No flags: only the rules that have always held.
    pub const NONE: Self = Self(0);
    /// Evaluate P2SH subscripts (BIP16).
    pub const P2SH: Self = Self(1 << 0);
    /// Strict signature and public key encodings (policy).
    pub const STRICTENC: Self = Self(1 << 1);
    /// Strict DER signatures (BIP66).
    pub const DERSIG: Self = Self(1 << 2);
    /// Require low S values in signatures (policy, BIP62 rule 5).
    pub const LOW_S: Self = Self(1 << 3);
    /// The CHECKMULTISIG dummy element must be empty (BIP147).
    pub const NULLDUMMY: Self = Self(1 << 4);
    /// The scriptSig may only push data (BIP62 rule 2).
    pub const SIGPUSHONLY: Self = Self(1 << 5);
    /// Pushes and script numbers must be minimally encoded (BIP62 rules 3, 4).
    pub const MINIMALDATA: Self = Self(1 << 6);
    /// Reject the upgradable NOPs (NOP1, NOP4..NOP10) (policy).
    pub const DISCOURAGE_UPGRADABLE_NOPS: Self = Self(1 << 7);
    /// Exactly one element must remain on the stack (BIP62 rule 6).
    pub const CLEANSTACK: Self = Self(1 << 8);
    /// OP_CHECKLOCKTIMEVERIFY (BIP65).
    pub const CHECKLOCKTIMEVERIFY: Self = Self(1 << 9);
    /// OP_CHECKSEQUENCEVERIFY (BIP112).
    pub const CHECKSEQUENCEVERIFY: Self = Self(1 << 10);
    /// Segregated witness (BIP141, BIP143).
    pub const WITNESS: Self = Self(1 << 11);
    /// Reject unknown witness versions (policy).
    pub const DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM: Self = Self(1 << 12);
    /// The argument of OP_IF/OP_NOTIF in segwit v0 must be minimal (policy).
    pub const MINIMALIF: Self = Self(1 << 13);
    /// Failed signature checks require empty signatures (BIP146).
    pub const NULLFAIL: Self = Self(1 << 14);
    /// Only compressed public keys in segwit v0 (policy).
    pub const WITNESS_PUBKEYTYPE: Self = Self(1 << 15);
    /// Reject OP_CODESEPARATOR and FindAndDelete hits in legacy scripts (policy).
    pub const CONST_SCRIPTCODE: Self = Self(1 << 16);
    /// Taproot and tapscript (BIP341, BIP342).
    pub const TAPROOT: Self = Self(1 << 17);
    /// Reject unknown taproot leaf versions (policy).
    pub const DISCOURAGE_UPGRADABLE_TAPROOT_VERSION: Self = Self(1 << 18);
    /// Reject OP_SUCCESSx in tapscript (policy).
    pub const DISCOURAGE_OP_SUCCESS: Self = Self(1 << 19);
    /// Reject unknown public key types in tapscript (policy).
    pub const DISCOURAGE_UPGRADABLE_PUBKEYTYPE: Self = Self(1 << 20);

    /// Every flag defined here.
    pub const ALL: Self = Self((1 << 21) - 1);

    /// Core's `MANDATORY_SCRIPT_VERIFY_FLAGS`: the consensus rules in force.
    pub const MANDATORY: Self = Self(
        Self::P2SH.0
            | Self::DERSIG.0
            | Self::NULLDUMMY.0
            | Self::CHECKLOCKTIMEVERIFY.0
            | Self::CHECKSEQUENCEVERIFY.0
            | Self::WITNESS.0
            | Self::TAPROOT.0,
    );

    /// Core's `STANDARD_SCRIPT_VERIFY_FLAGS` (policy.h): mempool policy.
    pub const STANDARD: Self = Self(
        Self::MANDATORY.0
            | Self::STRICTENC.0
            | Self::MINIMALDATA.0
            | Self::DISCOURAGE_UPGRADABLE_NOPS.0
            | Self::CLEANSTACK.0
            | Self::MINIMALIF.0
            | Self::NULLFAIL.0
            | Self::LOW_S.0
            | Self::DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM.0
            | Self::WITNESS_PUBKEYTYPE.0
            | Self::CONST_SCRIPTCODE.0
            | Self::DISCOURAGE_UPGRADABLE_TAPROOT_VERSION.0
            | Self::DISCOURAGE_OP_SUCCESS.0
            | Self::DISCOURAGE_UPGRADABLE_PUBKEYTYPE.0,
    );

    /// Each flag with Core's name for it, in bit order.
    pub const NAMED: [(&'static str, Self); 21] = [
        ("P2SH", Self::P2SH),
        ("STRICTENC", Self::STRICTENC),
        ("DERSIG", Self::DERSIG),
        ("LOW_S", Self::LOW_S),
        ("NULLDUMMY", Self::NULLDUMMY),
        ("SIGPUSHONLY", Self::SIGPUSHONLY),
        ("MINIMALDATA", Self::MINIMALDATA),
        ("DISCOURAGE_UPGRADABLE_NOPS", Self::DISCOURAGE_UPGRADABLE_NOPS),
        ("CLEANSTACK", Self::CLEANSTACK),
        ("CHECKLOCKTIMEVERIFY", Self::CHECKLOCKTIMEVERIFY),
        ("CHECKSEQUENCEVERIFY", Self::CHECKSEQUENCEVERIFY),
        ("WITNESS", Self::WITNESS),
        ("DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM", Self::DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM),
        ("MINIMALIF", Self::MINIMALIF),
        ("NULLFAIL", Self::NULLFAIL),
        ("WITNESS_PUBKEYTYPE", Self::WITNESS_PUBKEYTYPE),
        ("CONST_SCRIPTCODE", Self::CONST_SCRIPTCODE),
        ("TAPROOT", Self::TAPROOT),
        ("DISCOURAGE_UPGRADABLE_TAPROOT_VERSION", Self::DISCOURAGE_UPGRADABLE_TAPROOT_VERSION),
        ("DISCOURAGE_OP_SUCCESS", Self::DISCOURAGE_OP_SUCCESS),
        ("DISCOURAGE_UPGRADABLE_PUBKEYTYPE", Self::DISCOURAGE_UPGRADABLE_PUBKEYTYPE),
    ];

    /// The raw bits, as Core numbers them.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Flags from raw bits; bits that name no flag are dropped.
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` with the flags of `other` removed.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The name of a single flag, if `self` is exactly one known flag.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(_, flag)| *flag == self).map(|(name, _)| *name)
    }

    /// The single flag called `name` (Core's spelling, without `SCRIPT_VERIFY_`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED.iter().find(|(n, _)| *n == name).map(|(_, flag)| *flag)
    }
}

/// A flag name that Core does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown script verification flag {name:?}")]
pub struct UnknownFlagError {
    /// The name as given.
    pub name: String,
}

impl FromStr for VerifyFlags {
    type Err = UnknownFlagError;

    /// Parses Core's comma-separated names: `"P2SH,STRICTENC"`; `""` and
    /// `"NONE"` are the empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut flags = Self::NONE;
        for name in s.split(',').map(str::trim) {
            if name.is_empty() || name == "NONE" {
                continue;
            }
            flags |= Self::from_name(name).ok_or_else(|| UnknownFlagError { name: name.to_owned() })?;
        }
        Ok(flags)
    }
}

impl fmt::Display for VerifyFlags {
    /// Core's comma-separated names; `NONE` for the empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (name, flag) in Self::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for VerifyFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyFlags({self})")
    }
}

impl BitOr for VerifyFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for VerifyFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for VerifyFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl BitAndAssign for VerifyFlags {
    fn bitand_assign(&mut self, rhs: Self) {
        self.0 &= rhs.0;
    }
}

impl Not for VerifyFlags {
    type Output = Self;
    /// The complement within the defined flags.
    fn not(self) -> Self {
        Self(!self.0 & Self::ALL.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let f: VerifyFlags = "P2SH,STRICTENC".parse().expect("known names");
        assert_eq!(f, VerifyFlags::P2SH | VerifyFlags::STRICTENC);
        assert_eq!(f.to_string(), "P2SH,STRICTENC");
        assert_eq!("".parse::<VerifyFlags>(), Ok(VerifyFlags::NONE));
        assert_eq!("NONE".parse::<VerifyFlags>(), Ok(VerifyFlags::NONE));
        assert!("P2SH,BOGUS".parse::<VerifyFlags>().is_err());
        assert_eq!(VerifyFlags::MANDATORY.bits(), 0x20e15);
    }
}
