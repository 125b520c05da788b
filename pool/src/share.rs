//! Share validation: one pure function, [`validate`], from a job as one
//! session saw it, the session's state and a `mining.submit` to a
//! [`ShareOutcome`] (a share, or a share that is also a block) or a
//! [`Reject`] that carries the Stratum error code.
//!
//! No sockets, no clocks, no locks: the caller looks the job up, says what
//! the session negotiated, and records the outcome. The order of the checks
//! follows STRATUM.md: subscription (25), authorization (24), the job (21),
//! field sizes, version bits and ntime (20), the header rebuilt by
//! [`satpool_stratum::check_share`], duplicates on the header hash (22), and
//! the share target of the difficulty the job was sent with (23). A hash at
//! or below the network target is a block whatever the share target says.
//!
//! # The duplicate set is bounded
//!
//! The hashes accepted on a job are remembered per connection and per job
//! ([`SeenShares`]) for the duplicate check, up to a cap
//! (`limits.max_shares_per_job`). Once a job's set is full, a further share
//! of that job that would be accepted is refused with code 21, "too many
//! shares for this job, wait for the next one" ([`MissingJob::Full`]): the
//! answer miners already take for a stale job, after which they go on with
//! the next job (the next template, with new transactions or on a new
//! block, brings one). Forgetting old hashes instead would let the same
//! share be credited twice, and so would handing the miner a copy of the job
//! under a new id (its headers would be the same, its set empty). The
//! refusal cannot be used to make anyone lose valid work:
//!
//! - the set is one connection's: a flood fills only the flooder's own;
//! - a share that is also a block is never refused for it (it is checked for
//!   duplicates, submitted and remembered beyond the cap), so the pool loses
//!   no block;
//! - duplicates (22) and low-difficulty shares (23) are judged first, so the
//!   refusal only ever meets a share that is otherwise valid, and it does not
//!   count toward a ban;
//! - vardiff keeps an honest miner near one share per `stratum.share_rate`
//!   seconds, and miners move to each new job: the default cap of 100,000 is
//!   more than a day of shares on one job at one share a second.
//!
//! The memory it bounds: about 50 bytes a hash, so at most `max_jobs` ×
//! `max_shares_per_job` × 50 bytes a connection (160 MB with the defaults,
//! and only for a miner who really found that many shares).

use std::collections::HashSet;
use std::fmt;

use bitcoin::block::Header;
use bitcoin::{BlockHash, Target};
use satpool_stratum::{
    check_share, hash_difficulty, meets, ErrorCode, ErrorReply, Extranonce1, Notify, ShareDifficulty, ShareError,
    Submit, VersionMask,
};

/// How far past the template's `curtime` a share's ntime may go: Bitcoin's
/// two hours in the future.
pub const MAX_NTIME_AHEAD: u32 = 7_200;

/// The default cap of [`SeenShares`] (`limits.max_shares_per_job`).
pub const DEFAULT_MAX_SHARES_PER_JOB: usize = 100_000;

/// What validation asks of the header hashes already accepted on a job.
pub trait SeenHashes: fmt::Debug {
    /// Whether `hash` was accepted on the job: a duplicate (22).
    fn contains(&self, hash: &BlockHash) -> bool;
    /// Whether no more shares may be remembered: a further share that is
    /// not a block is refused ([`MissingJob::Full`]).
    fn is_full(&self) -> bool;
}

/// A plain set never fills up: unbounded. [`SeenShares`] is the bounded set
/// a session should hold; this stays so that code holding a plain set still
/// builds.
impl SeenHashes for HashSet<BlockHash> {
    fn contains(&self, hash: &BlockHash) -> bool {
        HashSet::contains(self, hash)
    }

    fn is_full(&self) -> bool {
        false
    }
}

/// The header hashes accepted on one job of one connection, for the
/// duplicate check, with a cap (see the module's "The duplicate set is
/// bounded").
#[derive(Debug, Clone)]
pub struct SeenShares {
    hashes: HashSet<BlockHash>,
    cap: usize,
}

impl SeenShares {
    /// An empty set that is full at `cap` hashes (at least 1).
    pub fn new(cap: usize) -> SeenShares {
        SeenShares { hashes: HashSet::new(), cap: cap.max(1) }
    }

    /// Remembers an accepted share's hash; `false` if it was already there.
    /// It always remembers: [`validate`] refuses every share but a block
    /// once the set is full, so the set passes its cap only by the blocks
    /// found on the job.
    pub fn insert(&mut self, hash: BlockHash) -> bool {
        self.hashes.insert(hash)
    }

    /// How many hashes it holds.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl Default for SeenShares {
    fn default() -> Self {
        SeenShares::new(DEFAULT_MAX_SHARES_PER_JOB)
    }
}

impl SeenHashes for SeenShares {
    fn contains(&self, hash: &BlockHash) -> bool {
        self.hashes.contains(hash)
    }

    fn is_full(&self) -> bool {
        self.hashes.len() >= self.cap
    }
}

/// A job as one session saw it.
#[derive(Debug, Clone, Copy)]
pub struct ShareJob<'a> {
    /// The notify sent: coinb1, coinb2, branch, previous hash, version,
    /// nbits, ntime.
    pub notify: &'a Notify,
    /// The template's `mintime`: the earliest ntime allowed.
    pub min_time: u32,
    /// The template's `curtime`; ntime may run [`MAX_NTIME_AHEAD`] past it.
    pub cur_time: u32,
    /// The network target of the block it builds.
    pub network_target: Target,
    /// Whether the chain's tip moved past it: its shares are stale.
    pub stale: bool,
    /// The share difficulties in force while it was this session's job (the
    /// one it was sent with, and any set while it was current): a share
    /// meeting the lowest of them counts, credited at the highest it meets.
    pub difficulties: &'a [ShareDifficulty],
    /// Header hashes of the shares already accepted on it, by this
    /// connection: a [`SeenShares`] (bounded) or a plain set (unbounded).
    pub seen: &'a dyn SeenHashes,
}

/// What validation needs of the session.
#[derive(Debug, Clone, Copy)]
pub struct ShareSession<'a> {
    /// The extranonce1 given at `mining.subscribe`; `None` before it.
    pub extranonce1: Option<&'a Extranonce1>,
    /// The extranonce2 size announced.
    pub extranonce2_size: usize,
    /// Whether the worker named in the submit was authorized on this
    /// connection.
    pub worker_authorized: bool,
    /// The version-rolling mask granted by `mining.configure`; `None` when
    /// rolling was not negotiated.
    pub version_mask: Option<VersionMask>,
}

/// A share that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidShare {
    /// The header.
    pub header: Header,
    /// Its hash.
    pub hash: BlockHash,
    /// The coinbase, without witness, for assembling a block.
    pub coinbase: Vec<u8>,
    /// The difficulty it is credited at: the highest of the job's
    /// difficulties it meets (for a block that met none, the difficulty
    /// its hash achieved).
    pub difficulty: ShareDifficulty,
    /// The difficulty its hash achieved, for "best share" statistics.
    pub achieved: f64,
}

/// What an accepted submit is.
#[derive(Debug, Clone, PartialEq)]
pub enum ShareOutcome {
    /// A share: record it and answer `true`.
    Share(ValidShare),
    /// A share whose hash also meets the network target: submit the block
    /// at once, then record it and answer `true`.
    Block(ValidShare),
}

impl ShareOutcome {
    /// The share, block or not.
    pub fn share(&self) -> &ValidShare {
        match self {
            ShareOutcome::Share(share) | ShareOutcome::Block(share) => share,
        }
    }

    /// Whether it is a block.
    pub fn is_block(&self) -> bool {
        matches!(self, ShareOutcome::Block(_))
    }
}

/// Why a job takes no share ([`Reject::JobNotFound`], code 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingJob {
    /// Never sent on this connection, or forgotten since.
    Unknown,
    /// Its duplicate set is full: the share is valid, but not a block.
    Full,
}

impl fmt::Display for MissingJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissingJob::Unknown => "Job not found",
            MissingJob::Full => "Too many shares for this job, wait for the next one",
        })
    }
}

/// Why a submit is refused; [`Reject::code`] is the Stratum code sent back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Reject {
    /// 25: submit before `mining.subscribe`.
    #[error("Not subscribed")]
    NotSubscribed,
    /// 24: the worker was not authorized on this connection.
    #[error("Unauthorized worker '{worker}'")]
    Unauthorized {
        /// The worker named in the submit.
        worker: String,
    },
    /// 21: no job by this id takes the share: never sent or forgotten, or
    /// its duplicate set is full and the share is not a block (see the
    /// module's "The duplicate set is bounded").
    #[error("{cause}: '{job_id}'")]
    JobNotFound {
        /// The job id submitted.
        job_id: String,
        /// Which of the two.
        cause: MissingJob,
    },
    /// 21: the job builds on a block that is no longer the tip.
    #[error("Stale share: job '{job_id}' is from before the current tip")]
    Stale {
        /// The job id submitted.
        job_id: String,
    },
    /// 20: extranonce2 of the wrong size.
    #[error("Extranonce2 is {got} bytes, expected {expected}")]
    Extranonce2Size {
        /// The size announced.
        expected: usize,
        /// The size submitted.
        got: usize,
    },
    /// 20: version rolling was negotiated but the sixth param is missing.
    #[error("Version bits missing: version rolling was negotiated")]
    VersionBitsMissing,
    /// 20: version bits sent but rolling not negotiated, or bits outside the mask.
    #[error("Version bits {bits:08x} outside the negotiated mask {mask}")]
    VersionBitsOutsideMask {
        /// The bits submitted.
        bits: u32,
        /// The mask granted.
        mask: VersionMask,
    },
    /// 20: ntime outside the job's window.
    #[error("Ntime {ntime:08x} out of range {min:08x}..={max:08x}")]
    NtimeOutOfRange {
        /// The ntime submitted.
        ntime: u32,
        /// The earliest allowed.
        min: u32,
        /// The latest allowed.
        max: u32,
    },
    /// 22: the same header was already accepted.
    #[error("Duplicate share")]
    Duplicate,
    /// 23: the hash does not meet the share target.
    #[error("Low difficulty share ({achieved:.6} < {required})")]
    LowDifficulty {
        /// The difficulty the hash achieved.
        achieved: f64,
        /// The lowest difficulty accepted.
        required: ShareDifficulty,
    },
}

impl Reject {
    /// The Stratum error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Reject::NotSubscribed => ErrorCode::NotSubscribed,
            Reject::Unauthorized { .. } => ErrorCode::UnauthorizedWorker,
            Reject::JobNotFound { .. } | Reject::Stale { .. } => ErrorCode::JobNotFound,
            Reject::Extranonce2Size { .. }
            | Reject::VersionBitsMissing
            | Reject::VersionBitsOutsideMask { .. }
            | Reject::NtimeOutOfRange { .. } => ErrorCode::Other,
            Reject::Duplicate => ErrorCode::Duplicate,
            Reject::LowDifficulty { .. } => ErrorCode::LowDifficulty,
        }
    }

    /// The error reply: the code and a message that says why.
    pub fn reply(&self) -> ErrorReply {
        ErrorReply { code: self.code(), message: self.to_string() }
    }

    /// Whether this reject counts toward a ban for a flood of invalid
    /// shares (stale and duplicate shares happen to honest miners, and a
    /// share refused for a full job is valid work).
    pub fn is_invalid(&self) -> bool {
        !matches!(self, Reject::Stale { .. } | Reject::JobNotFound { .. } | Reject::Duplicate)
    }
}

/// Validates one submit. `job` is the session's record of the job the
/// submit names, `None` when the session has none by that id.
pub fn validate(
    job: Option<&ShareJob<'_>>,
    session: &ShareSession<'_>,
    submit: &Submit,
) -> Result<ShareOutcome, Reject> {
    let extranonce1 = session.extranonce1.ok_or(Reject::NotSubscribed)?;
    if !session.worker_authorized {
        return Err(Reject::Unauthorized { worker: submit.worker.clone() });
    }
    let job = job.ok_or_else(|| Reject::JobNotFound { job_id: submit.job_id.clone(), cause: MissingJob::Unknown })?;
    if job.stale {
        return Err(Reject::Stale { job_id: submit.job_id.clone() });
    }
    if submit.extranonce2.len() != session.extranonce2_size {
        return Err(Reject::Extranonce2Size { expected: session.extranonce2_size, got: submit.extranonce2.len() });
    }
    let mask = match (session.version_mask, submit.version_bits) {
        (Some(_), None) => return Err(Reject::VersionBitsMissing),
        (Some(mask), Some(bits)) if !mask.allows(bits) => return Err(Reject::VersionBitsOutsideMask { bits, mask }),
        (Some(mask), Some(_)) => mask,
        // Bits that equal the job's version's own (some firmware always
        // sends the sixth param) change nothing and are accepted.
        (None, Some(bits)) if bits != job.notify.version.to_consensus() as u32 && bits != 0 => {
            return Err(Reject::VersionBitsOutsideMask { bits, mask: VersionMask::NONE });
        }
        (None, _) => VersionMask::NONE,
    };
    let submit_owned;
    let submit = if session.version_mask.is_none() && submit.version_bits.is_some() {
        submit_owned = Submit { version_bits: None, ..submit.clone() };
        &submit_owned
    } else {
        submit
    };
    let max_time = job.cur_time.saturating_add(MAX_NTIME_AHEAD);
    if submit.ntime < job.min_time || submit.ntime > max_time {
        return Err(Reject::NtimeOutOfRange { ntime: submit.ntime, min: job.min_time, max: max_time });
    }
    let share = check_share(job.notify, extranonce1, session.extranonce2_size, submit, mask).map_err(|e| match e {
        ShareError::Extranonce2Size { expected, got } => Reject::Extranonce2Size { expected, got },
        ShareError::VersionBitsOutsideMask { bits, mask } => Reject::VersionBitsOutsideMask { bits, mask },
    })?;
    if job.seen.contains(&share.hash) {
        return Err(Reject::Duplicate);
    }
    let achieved = hash_difficulty(&share.hash);
    let met = job.difficulties.iter().copied().filter(|d| meets(&share.hash, &d.to_target())).reduce(max_difficulty);
    let lowest = job.difficulties.iter().copied().reduce(min_difficulty).unwrap_or(ShareDifficulty::ONE);
    let is_block = meets(&share.hash, &job.network_target);
    let difficulty = match (met, is_block) {
        (Some(d), _) => d,
        // A block that met no share target: credited at the work it shows.
        (None, true) => ShareDifficulty::new(achieved.min(lowest.as_f64())).unwrap_or(lowest),
        (None, false) => return Err(Reject::LowDifficulty { achieved, required: lowest }),
    };
    // Last: only an otherwise valid share meets this, and never a block.
    if job.seen.is_full() && !is_block {
        return Err(Reject::JobNotFound { job_id: submit.job_id.clone(), cause: MissingJob::Full });
    }
    let valid = ValidShare { header: share.header, hash: share.hash, coinbase: share.coinbase, difficulty, achieved };
    Ok(if is_block { ShareOutcome::Block(valid) } else { ShareOutcome::Share(valid) })
}

fn max_difficulty(a: ShareDifficulty, b: ShareDifficulty) -> ShareDifficulty {
    if b > a {
        b
    } else {
        a
    }
}

fn min_difficulty(a: ShareDifficulty, b: ShareDifficulty) -> ShareDifficulty {
    if b < a {
        b
    } else {
        a
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bitcoin::block::Version;
    use bitcoin::hashes::Hash;
    use bitcoin::{CompactTarget, TxMerkleNode};
    use satpool_stratum::Extranonce2;

    /// A job with a fixed coinbase, on the regtest target (every hash of
    /// difficulty above 2^-31 or so is below it) unless `hard`.
    pub(crate) fn notify(hard: bool) -> Notify {
        Notify {
            job_id: "1".into(),
            prev_hash: BlockHash::from_byte_array([7; 32]),
            coinb1: hex::decode("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20")
                .unwrap(),
            coinb2: hex::decode("ffffffff0100f2052a01000000015100000000").unwrap(),
            merkle_branch: vec![TxMerkleNode::from_byte_array([3; 32])],
            version: Version::from_consensus(0x2000_0000),
            nbits: CompactTarget::from_consensus(if hard { 0x1d00ffff } else { 0x207fffff }),
            ntime: 1_700_000_000,
            clean_jobs: true,
        }
    }

    fn submit(nonce: u32) -> Submit {
        Submit {
            worker: "w".into(),
            job_id: "1".into(),
            extranonce2: Extranonce2::from_counter(5, 4).unwrap(),
            ntime: 1_700_000_000,
            nonce,
            version_bits: None,
        }
    }

    struct Case {
        notify: Notify,
        network_target: Target,
        stale: bool,
        difficulties: Vec<ShareDifficulty>,
        seen: SeenShares,
        e1: Extranonce1,
        subscribed: bool,
        authorized: bool,
        mask: Option<VersionMask>,
    }

    impl Case {
        fn new(difficulty: f64) -> Case {
            Case {
                notify: notify(true),
                network_target: Target::from_compact(CompactTarget::from_consensus(0x1d00ffff)),
                stale: false,
                difficulties: vec![ShareDifficulty::new(difficulty).unwrap()],
                seen: SeenShares::default(),
                e1: Extranonce1::from_u32(1),
                subscribed: true,
                authorized: true,
                mask: None,
            }
        }

        fn run(&self, submit: &Submit, known: bool) -> Result<ShareOutcome, Reject> {
            let job = ShareJob {
                notify: &self.notify,
                min_time: 1_699_999_000,
                cur_time: 1_700_000_000,
                network_target: self.network_target,
                stale: self.stale,
                difficulties: &self.difficulties,
                seen: &self.seen,
            };
            let session = ShareSession {
                extranonce1: self.subscribed.then_some(&self.e1),
                extranonce2_size: 4,
                worker_authorized: self.authorized,
                version_mask: self.mask,
            };
            validate(known.then_some(&job), &session, submit)
        }
    }

    /// The first nonce whose share meets `difficulty` for `case` (a tiny
    /// difficulty finds one in a few tries).
    fn nonce_meeting(case: &Case, difficulty: f64, submit_template: &Submit) -> u32 {
        let target = ShareDifficulty::new(difficulty).unwrap().to_target();
        (0..u32::MAX)
            .find(|n| {
                let s = Submit { nonce: *n, ..submit_template.clone() };
                let mask = case.mask.unwrap_or(VersionMask::NONE);
                let share = check_share(&case.notify, &case.e1, 4, &s, mask).unwrap();
                meets(&share.hash, &target)
            })
            .unwrap()
    }

    fn code(result: Result<ShareOutcome, Reject>) -> i64 {
        result.expect_err("rejected").code().code()
    }

    #[test]
    fn accepts_a_valid_share() {
        let case = Case::new(1e-7);
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        let outcome = case.run(&submit(nonce), true).expect("valid");
        assert!(!outcome.is_block());
        assert_eq!(outcome.share().difficulty.as_f64(), 1e-7);
        assert!(outcome.share().achieved >= 1e-7);
    }

    #[test]
    fn reject_25_not_subscribed() {
        let mut case = Case::new(1e-7);
        case.subscribed = false;
        assert_eq!(code(case.run(&submit(0), true)), 25);
    }

    #[test]
    fn reject_24_unauthorized() {
        let mut case = Case::new(1e-7);
        case.authorized = false;
        let error = case.run(&submit(0), true).unwrap_err();
        assert_eq!(error.code().code(), 24);
        assert!(error.to_string().contains("'w'"));
    }

    #[test]
    fn reject_21_unknown_and_stale() {
        let case = Case::new(1e-7);
        assert_eq!(code(case.run(&submit(0), false)), 21);
        assert_eq!(case.run(&submit(0), false).unwrap_err().to_string(), "Job not found: '1'");
        let mut case = Case::new(1e-7);
        case.stale = true;
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        assert_eq!(code(case.run(&submit(nonce), true)), 21);
    }

    #[test]
    fn reject_20_field_sizes_ntime_and_version() {
        let case = Case::new(1e-7);
        let short = Submit { extranonce2: Extranonce2::from_counter(1, 3).unwrap(), ..submit(0) };
        assert!(matches!(case.run(&short, true), Err(Reject::Extranonce2Size { expected: 4, got: 3 })));
        let early = Submit { ntime: 1_699_998_999, ..submit(0) };
        assert!(matches!(case.run(&early, true), Err(Reject::NtimeOutOfRange { .. })));
        let late = Submit { ntime: 1_700_000_000 + MAX_NTIME_AHEAD + 1, ..submit(0) };
        assert_eq!(code(case.run(&late, true)), 20);
        // Rolling negotiated: the sixth param is mandatory and within the mask.
        let mut case = Case::new(1e-7);
        case.mask = Some(VersionMask::BIP320);
        assert_eq!(case.run(&submit(0), true), Err(Reject::VersionBitsMissing));
        let outside = Submit { version_bits: Some(0x4000_0000), ..submit(0) };
        assert_eq!(code(case.run(&outside, true)), 20);
        let inside = Submit { version_bits: Some(0x0000_6000), ..submit(0) };
        let nonce = nonce_meeting(&case, 1e-7, &inside);
        let outcome = case.run(&Submit { nonce, ..inside }, true).expect("rolled share");
        assert_eq!(outcome.share().header.version.to_consensus(), 0x2000_6000);
        // Not negotiated: bits are refused unless they say nothing.
        let case = Case::new(1e-7);
        assert_eq!(code(case.run(&Submit { version_bits: Some(0x0000_2000), ..submit(0) }, true)), 20);
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        assert!(case.run(&Submit { version_bits: Some(0x2000_0000), ..submit(nonce) }, true).is_ok());
    }

    #[test]
    fn reject_22_duplicate() {
        let mut case = Case::new(1e-7);
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        let first = case.run(&submit(nonce), true).expect("valid");
        case.seen.insert(first.share().hash);
        assert_eq!(code(case.run(&submit(nonce), true)), 22);
        // Letter case in the hex changes nothing: the key is the header hash.
    }

    #[test]
    fn seen_shares_fill_up_at_their_cap() {
        let mut seen = SeenShares::new(2);
        assert_eq!((seen.cap(), seen.len(), seen.is_full()), (2, 0, false));
        assert!(seen.insert(BlockHash::from_byte_array([1; 32])));
        assert!(!seen.insert(BlockHash::from_byte_array([1; 32])), "already there");
        assert!(!seen.is_full());
        assert!(seen.insert(BlockHash::from_byte_array([2; 32])));
        assert!(seen.is_full());
        assert!(SeenHashes::contains(&seen, &BlockHash::from_byte_array([2; 32])));
        assert_eq!(SeenShares::new(0).cap(), 1, "a cap of at least one");
        assert_eq!(SeenShares::default().cap(), DEFAULT_MAX_SHARES_PER_JOB);
        assert!(!HashSet::<BlockHash>::new().is_full(), "a plain set is unbounded");
    }

    /// Table: what a full job does to each kind of submit.
    #[test]
    fn a_full_job_refuses_valid_shares_only() {
        // Full with one other share's hash.
        let full = |mut case: Case| {
            case.seen = SeenShares::new(1);
            case.seen.insert(BlockHash::from_byte_array([9; 32]));
            case
        };
        // A valid share: 21, not counted toward a ban, and the message says why.
        let case = full(Case::new(1e-7));
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        let error = case.run(&submit(nonce), true).unwrap_err();
        assert_eq!(error, Reject::JobNotFound { job_id: "1".into(), cause: MissingJob::Full });
        assert_eq!(error.code().code(), 21);
        assert!(!error.is_invalid(), "valid work: never toward a ban");
        assert_eq!(error.to_string(), "Too many shares for this job, wait for the next one: '1'");
        // A duplicate is still a duplicate.
        let mut case = Case::new(1e-7);
        let accepted = case.run(&submit(nonce), true).expect("valid");
        case.seen = SeenShares::new(1);
        case.seen.insert(accepted.share().hash);
        assert_eq!(code(case.run(&submit(nonce), true)), 22);
        // A low-difficulty share is still low.
        let case = full(Case::new(1_000.0));
        assert_eq!(code(case.run(&submit(1), true)), 23);
        // A block is never lost to the cap.
        let mut case = full(Case::new(1_000.0));
        case.notify = notify(false);
        case.network_target = Target::from_compact(CompactTarget::from_consensus(0x207fffff));
        let nonce = nonce_meeting(&case, 0.000_000_01, &submit(0));
        assert!(case.run(&submit(nonce), true).expect("a block").is_block());
        // Below the cap, the same share passes.
        let mut case = Case::new(1e-7);
        case.seen = SeenShares::new(2);
        case.seen.insert(BlockHash::from_byte_array([9; 32]));
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        assert!(case.run(&submit(nonce), true).is_ok());
    }

    #[test]
    fn reject_23_low_difficulty() {
        let case = Case::new(1_000.0);
        let error = case.run(&submit(1), true).unwrap_err();
        assert_eq!(error.code().code(), 23);
        assert!(matches!(error, Reject::LowDifficulty { .. }));
    }

    #[test]
    fn previous_difficulty_still_counts_for_its_job() {
        let mut case = Case::new(1_000.0);
        case.difficulties.push(ShareDifficulty::new(1e-7).unwrap());
        let nonce = nonce_meeting(&case, 1e-7, &submit(0));
        let outcome = case.run(&submit(nonce), true).expect("meets the lower of the job's difficulties");
        assert_eq!(outcome.share().difficulty.as_f64(), 1e-7);
    }

    #[test]
    fn a_block_is_a_block_even_below_the_share_target() {
        let mut case = Case::new(1_000.0);
        case.notify = notify(false);
        case.network_target = Target::from_compact(CompactTarget::from_consensus(0x207fffff));
        let nonce = nonce_meeting(&case, 0.000_000_01, &submit(0));
        let outcome = case.run(&submit(nonce), true).expect("a block");
        assert!(outcome.is_block());
        assert!(outcome.share().difficulty.as_f64() < 1_000.0);
    }
}
