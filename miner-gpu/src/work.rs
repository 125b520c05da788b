//! From a Stratum job to the headers to search: the job's search space is
//! extranonce2 × rolled version bits (a *header index* picks one) × the
//! 2^32 nonces of each header.

use bitcoin::Target;
use satpool_stratum::{build_header, header_bytes, Extranonce1, Extranonce2, Notify, ShareDifficulty, VersionMask};

use crate::header_work::HeaderWork;

/// The most version bits rolled: 2^16 versions per extranonce2 is plenty.
pub const MAX_ROLLED_BITS: u32 = 16;

/// A job as the miner searches it: the pool's notify and everything of the
/// session it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The pool's job.
    pub notify: Notify,
    /// The session's extranonce1 when the job arrived.
    pub extranonce1: Extranonce1,
    /// The extranonce2 size when the job arrived.
    pub extranonce2_size: usize,
    /// The negotiated version-rolling mask ([`VersionMask::NONE`] when none).
    pub mask: VersionMask,
    /// The share difficulty bound to this job when it arrived.
    pub difficulty: ShareDifficulty,
}

/// One header of a job: what a submit needs besides the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderChoice {
    /// The extranonce2 in the coinbase.
    pub extranonce2: Extranonce2,
    /// The version bits (within the mask); `None` when not rolling.
    pub version_bits: Option<u32>,
}

/// Spreads the low bits of `value` over the set bits of `mask`, lowest
/// first (what x86's PDEP does).
pub fn deposit_bits(mut value: u32, mask: u32) -> u32 {
    let mut out = 0;
    let mut m = mask;
    while m != 0 && value != 0 {
        let bit = m & m.wrapping_neg();
        if value & 1 == 1 {
            out |= bit;
        }
        value >>= 1;
        m &= m - 1;
    }
    out
}

impl Job {
    /// The share target.
    pub fn target(&self) -> Target {
        self.difficulty.to_target()
    }

    fn rolled_bits(&self) -> u32 {
        self.mask.count_ones().min(MAX_ROLLED_BITS)
    }

    /// How many headers the job offers: versions × extranonce2 values,
    /// capped at 2^31 so that a position (header index × 2^32 + nonce) fits
    /// in a u64.
    pub fn header_count(&self) -> u64 {
        let version_bits = self.rolled_bits();
        let e2_bits = (self.extranonce2_size as u32 * 8).min(31 - version_bits);
        1u64 << (version_bits + e2_bits)
    }

    /// The extranonce2 and version bits of header `index` (below
    /// [`Job::header_count`]): version bits vary fastest.
    pub fn choice(&self, index: u64) -> HeaderChoice {
        let versions = 1u64 << self.rolled_bits();
        let version_index = (index % versions) as u32;
        let e2 = index / versions;
        let extranonce2 = Extranonce2::from_counter(e2, self.extranonce2_size)
            .expect("header_count keeps the counter inside the extranonce2 size");
        let version_bits = (self.mask != VersionMask::NONE).then(|| {
            // Start from the job's own bits inside the mask, so index 0 is
            // the job's version unchanged.
            let job_bits = self.notify.version.to_consensus() as u32 & self.mask.0;
            job_bits ^ deposit_bits(version_index, self.mask.0)
        });
        HeaderChoice { extranonce2, version_bits }
    }

    /// The 80-byte header (nonce 0) and its search for header `index`.
    pub fn header_work(&self, index: u64) -> (HeaderWork, HeaderChoice) {
        let choice = self.choice(index);
        let version = match choice.version_bits {
            Some(bits) => self.mask.apply(self.notify.version, bits),
            None => self.notify.version,
        };
        let (header, _coinbase) =
            build_header(&self.notify, &self.extranonce1, &choice.extranonce2, self.notify.ntime, 0, version);
        (HeaderWork::new(header_bytes(&header), self.target()), choice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposit_spreads_bits_over_the_mask() {
        assert_eq!(deposit_bits(0, 0x1fff_e000), 0);
        assert_eq!(deposit_bits(1, 0x1fff_e000), 0x2000);
        assert_eq!(deposit_bits(0xffff, 0x1fff_e000), 0x1fff_e000);
        assert_eq!(deposit_bits(0b101, 0b1011_0000), 0b1000_0000 | 0b0001_0000);
    }

    #[test]
    fn rolled_versions_and_extranonce2_stay_in_range() {
        use bitcoin::hashes::Hash;
        let job = Job {
            notify: Notify {
                job_id: "j".into(),
                prev_hash: bitcoin::BlockHash::all_zeros(),
                coinb1: vec![1, 2],
                coinb2: vec![3],
                merkle_branch: vec![],
                version: bitcoin::block::Version::from_consensus(0x2000_0000),
                nbits: bitcoin::CompactTarget::from_consensus(0x207f_ffff),
                ntime: 1,
                clean_jobs: true,
            },
            extranonce1: Extranonce1::from_u32(1),
            extranonce2_size: 4,
            mask: VersionMask::BIP320,
            difficulty: ShareDifficulty::ONE,
        };
        // 16 version bits and 15 of extranonce2: positions fit in a u64.
        assert_eq!(job.header_count(), 1 << 31);
        let first = job.choice(0);
        assert_eq!(first.version_bits, Some(0));
        assert_eq!(first.extranonce2.to_string(), "00000000");
        let last = job.choice((1 << 31) - 1);
        assert_eq!(last.version_bits, Some(0x1fff_e000));
        assert_eq!(last.extranonce2.to_string(), "00007fff");
        assert!(VersionMask::BIP320.allows(last.version_bits.unwrap_or(0)));
        let no_roll = Job { mask: VersionMask::NONE, extranonce2_size: 2, ..job };
        assert_eq!(no_roll.header_count(), 1 << 16);
        assert_eq!(no_roll.choice(5).version_bits, None);
    }
}
