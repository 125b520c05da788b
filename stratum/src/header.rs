//! From a job and a submit to the 80-byte header and its hash, and the share
//! check that the pool and the miner both run.
//!
//! Header: `version_le ‖ prevhash (internal order) ‖ merkle_root ‖ ntime_le
//! ‖ nbits_le ‖ nonce_le`, version rolled as BIP 310 says:
//! `(job_version & !mask) | (version_bits & mask)`.

use core::fmt;
use core::str::FromStr;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode;
use bitcoin::BlockHash;

use crate::coinbase::{assemble_coinbase, coinbase_txid};
use crate::extranonce::{Extranonce1, Extranonce2};
use crate::merkle::merkle_root;
use crate::message::{ErrorCode, Notify, Submit};

/// The version bits a miner may roll (BIP 310), negotiated by
/// `mining.configure`. [`VersionMask::NONE`] when nothing was negotiated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VersionMask(pub u32);

impl VersionMask {
    /// No version rolling.
    pub const NONE: VersionMask = VersionMask(0);
    /// The general-purpose bits 13-28 that BIP 320 reserves: `1fffe000`, the
    /// mask pools usually offer.
    pub const BIP320: VersionMask = VersionMask(0x1fff_e000);

    /// The bits both sides allow: what the server grants.
    pub fn intersect(self, other: VersionMask) -> VersionMask {
        VersionMask(self.0 & other.0)
    }

    /// Whether `version_bits` has no bit outside the mask.
    pub fn allows(self, version_bits: u32) -> bool {
        version_bits & !self.0 == 0
    }

    /// `(job_version & !mask) | (version_bits & mask)`.
    pub fn apply(self, job_version: Version, version_bits: u32) -> Version {
        let job = job_version.to_consensus() as u32;
        Version::from_consensus(((job & !self.0) | (version_bits & self.0)) as i32)
    }

    /// How many bits may be rolled.
    pub fn count_ones(self) -> u32 {
        self.0.count_ones()
    }
}

impl fmt::Display for VersionMask {
    /// Eight lower-case hex digits, as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for VersionMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VersionMask({:08x})", self.0)
    }
}

impl FromStr for VersionMask {
    type Err = crate::message::FieldError;

    /// Exactly eight hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::message::parse_hex_u32(s).map(VersionMask)
    }
}

/// Why a submit does not make a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// Extranonce2 is not of the session's size.
    #[error("extranonce2 is {got} bytes, the session's size is {expected}")]
    Extranonce2Size {
        /// The size announced to the session.
        expected: usize,
        /// The size submitted.
        got: usize,
    },
    /// `version_bits` has bits outside the negotiated mask.
    #[error("version bits {bits:08x} fall outside the negotiated mask {mask}")]
    VersionBitsOutsideMask {
        /// The submitted bits.
        bits: u32,
        /// The negotiated mask.
        mask: VersionMask,
    },
}

impl ShareError {
    /// The Stratum code to reject with: 20 (other) for both.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::Other
    }
}

/// A share's header and what was built on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The 80-byte header.
    pub header: Header,
    /// Its double SHA-256.
    pub hash: BlockHash,
    /// The serialised coinbase (non-witness), for assembling a block.
    pub coinbase: Vec<u8>,
}

/// The header for `job` with these extranonces, time, nonce and (already
/// rolled) version. No checks: the miner's hot path and the basis of
/// [`check_share`].
pub fn build_header(
    job: &Notify,
    extranonce1: &Extranonce1,
    extranonce2: &Extranonce2,
    ntime: u32,
    nonce: u32,
    version: Version,
) -> (Header, Vec<u8>) {
    let coinbase = assemble_coinbase(&job.coinb1, extranonce1, extranonce2, &job.coinb2);
    let header = Header {
        version,
        prev_blockhash: job.prev_hash,
        merkle_root: merkle_root(coinbase_txid(&coinbase), &job.merkle_branch),
        time: ntime,
        bits: job.nbits,
        nonce,
    };
    (header, coinbase)
}

/// The 80 bytes of a header, as hashed.
pub fn header_bytes(header: &Header) -> [u8; 80] {
    encode::serialize(header).try_into().expect("a block header serialises to exactly 80 bytes")
}

/// Rebuilds the header a submit claims and hashes it.
///
/// Checks the extranonce2 size and that `version_bits` (when sent) stays
/// within `mask`; a submit without `version_bits` uses the job's version
/// unchanged. ntime and nonce lengths were checked when the line was parsed.
/// The pool adds job lookup, the ntime window, duplicates and the
/// difficulty on top; the miner runs it to check its own results.
pub fn check_share(
    job: &Notify,
    extranonce1: &Extranonce1,
    extranonce2_size: usize,
    submit: &Submit,
    mask: VersionMask,
) -> Result<Share, ShareError> {
    if submit.extranonce2.len() != extranonce2_size {
        return Err(ShareError::Extranonce2Size { expected: extranonce2_size, got: submit.extranonce2.len() });
    }
    let version = match submit.version_bits {
        None => job.version,
        Some(bits) if mask.allows(bits) => mask.apply(job.version, bits),
        Some(bits) => return Err(ShareError::VersionBitsOutsideMask { bits, mask }),
    };
    let (header, coinbase) = build_header(job, extranonce1, &submit.extranonce2, submit.ntime, submit.nonce, version);
    Ok(Share { hash: header.block_hash(), header, coinbase })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rolling_follows_bip310() {
        let mask = VersionMask::BIP320;
        let job = Version::from_consensus(0x2000_0004);
        assert_eq!(mask.apply(job, 0x1fff_e000).to_consensus(), 0x3fff_e004);
        // Bits outside the mask are neither OR-ed nor XOR-ed in.
        assert_eq!(mask.apply(job, 0xffff_ffff).to_consensus(), 0x3fff_e004);
        // Bits inside the mask can also be cleared.
        let job = Version::from_consensus(0x2000_6000);
        assert_eq!(mask.apply(job, 0x0000_2000).to_consensus(), 0x2000_2000);
        assert!(mask.allows(0x1fff_e000));
        assert!(!mask.allows(0x2000_0000));
        assert!(VersionMask::NONE.allows(0));
        assert!(!VersionMask::NONE.allows(1));
        assert_eq!(VersionMask(0xffff_0000).intersect(VersionMask::BIP320), VersionMask(0x1fff_0000));
        assert_eq!("1FFFE000".parse::<VersionMask>(), Ok(VersionMask::BIP320));
        assert!("1fffe00".parse::<VersionMask>().is_err());
        assert_eq!(VersionMask::BIP320.to_string(), "1fffe000");
    }
}
