//! The job builder, pure: a [`Template`] and the payout's outputs become a
//! coinbase, split around the extranonce space into the Stratum job's
//! coinb1/coinb2 with the coinbase's merkle branch; a solved job becomes the
//! full block for `submitblock` ([`assemble_block`]). [`JobBook`] keeps the
//! recent jobs by id and tells current ones from those of an older tip.
//!
//! The wire halves (coinb1/coinb2 split, merkle branch, header) are
//! satpool-stratum's, shared with the miner, so that both sides compute the
//! same bytes.
//!
//! # The coinbase
//!
//! - Version 2, as Bitcoin Core's own `CreateNewBlock` writes it (so our
//!   blocks and Core's differ only where they must). The version of a
//!   coinbase has no consensus meaning: BIP 68's relative lock-times, which
//!   version 2 turns on, never apply to the null outpoint. Lock time 0.
//! - One input: the null outpoint, sequence `0xffffffff`, and a scriptSig of
//!   BIP 34's height push, then a push of the pool tag, then a push of
//!   `extranonce1 ‖ extranonce2` (zeros here, the miner's bytes in a share).
//!   The tag is shortened (at a character boundary) so the scriptSig never
//!   passes the 100 bytes consensus allows.
//! - Outputs: the payouts, then — when the template has
//!   `default_witness_commitment` — the witness commitment, recomputed from
//!   the template's wtxids and checked against the node's.
//! - In the block, a segwit coinbase carries the 32-byte zero witness
//!   reserved value; the stratum halves and the txid never include it.

use std::collections::VecDeque;
use std::sync::Arc;

use bitcoin::blockdata::script::{Builder, PushBytesBuf};
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, block, merkle_tree, transaction, Amount, Block, BlockHash, OutPoint, ScriptBuf, Sequence, Target,
    Transaction, TxIn, TxOut, Txid, Witness, WitnessMerkleNode, Wtxid,
};
use satpool_stratum::{CoinbaseError, CoinbaseParts, Extranonce1, Extranonce2, Notify, MAX_COINBASE_SCRIPT_SIG_LEN};

use crate::payout::Payout;
use crate::template::Template;

/// The longest pool tag accepted in the configuration. With the largest
/// extranonce space (4 + 16 bytes) and a 5-byte height push it still fits the
/// 100-byte scriptSig.
pub const MAX_POOL_TAG_LEN: usize = 64;

/// Bytes of extranonce1: one per connection, from a counter.
pub const EXTRANONCE1_SIZE: usize = 4;

/// The witness reserved value of every block we build (BIP 141).
pub const WITNESS_RESERVED_VALUE: [u8; 32] = [0; 32];

/// What goes into a coinbase besides the template.
#[derive(Debug, Clone)]
pub struct CoinbaseSpec<'a> {
    /// The payout (its outputs, and what stays owed after the block).
    pub payout: &'a Payout,
    /// Text for the scriptSig; shortened to fit.
    pub pool_tag: &'a str,
    /// Bytes of extranonce1.
    pub extranonce1_size: usize,
    /// Bytes of extranonce2.
    pub extranonce2_size: usize,
}

/// A Stratum job: what `mining.notify` sends, and what it takes to judge its
/// shares and turn one into a block.
#[derive(Debug, Clone)]
pub struct Job {
    /// The `mining.notify` params (job id, prevhash, coinb1, coinb2, merkle
    /// branch, version, nbits, ntime, clean_jobs).
    pub notify: Notify,
    /// The height of the block it builds.
    pub height: u32,
    /// The network target: a share at or under it is a block.
    pub network_target: Target,
    /// The earliest header time allowed.
    pub min_time: u32,
    /// Bytes of extranonce1 the coinbase leaves room for.
    pub extranonce1_size: usize,
    /// Bytes of extranonce2 the coinbase leaves room for.
    pub extranonce2_size: usize,
    /// The coinbase value: subsidy plus fees.
    pub coinbase_value: Amount,
    /// The fees within it.
    pub fees: Amount,
    /// The payout its coinbase makes.
    pub payout: Payout,
    /// Whether the coinbase carries a witness commitment.
    pub segwit: bool,
    /// The template's transactions, after the coinbase.
    pub transactions: Arc<[Transaction]>,
}

impl Job {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.notify.job_id
    }

    /// The tip it builds on.
    pub fn prev_hash(&self) -> BlockHash {
        self.notify.prev_hash
    }

    /// Builds the job `id` for `template`.
    pub fn build(id: String, clean_jobs: bool, template: &Template, spec: &CoinbaseSpec<'_>) -> Result<Job, JobError> {
        let (coinbase, extranonce_offset) = coinbase_transaction(template, spec)?;
        let extranonce_len = spec.extranonce1_size + spec.extranonce2_size;
        let parts = CoinbaseParts::split(&coinbase, extranonce_offset, extranonce_len)?;
        let txids: Vec<Txid> = template.transactions.iter().map(|t| t.txid).collect();
        let notify = Notify {
            job_id: id,
            prev_hash: template.previous_block_hash,
            coinb1: parts.coinb1,
            coinb2: parts.coinb2,
            merkle_branch: satpool_stratum::merkle_branch(&txids),
            version: template.version,
            nbits: template.bits,
            ntime: template.cur_time,
            clean_jobs,
        };
        Ok(Job {
            notify,
            height: template.height,
            network_target: template.target,
            min_time: template.min_time,
            extranonce1_size: spec.extranonce1_size,
            extranonce2_size: spec.extranonce2_size,
            coinbase_value: template.coinbase_value,
            fees: template.fees(),
            payout: spec.payout.clone(),
            segwit: template.default_witness_commitment.is_some(),
            transactions: template.transactions.iter().map(|t| t.transaction.clone()).collect(),
        })
    }
}

/// Why a job could not be built or a block assembled.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The payout's outputs do not add up to the template's coinbase value.
    #[error("the payout pays {paid}, not the coinbase value {value}")]
    PayoutMismatch {
        /// What the outputs sum to.
        paid: Amount,
        /// The template's coinbase value.
        value: Amount,
    },
    /// The node's witness commitment is not the one its transactions make.
    #[error("the template's default_witness_commitment {given} is not {computed}, the one its transactions make")]
    WitnessCommitment {
        /// The node's, hex.
        given: String,
        /// Ours, hex.
        computed: String,
    },
    /// The extranonce space does not fit the scriptSig.
    #[error("{extranonce_len} bytes of extranonce do not fit the coinbase scriptSig")]
    ExtranonceTooLong {
        /// extranonce1 + extranonce2 bytes.
        extranonce_len: usize,
    },
    /// The coinbase could not be split.
    #[error("cannot split the coinbase")]
    Split(#[from] CoinbaseError),
    /// An extranonce has the wrong size for the job.
    #[error("extranonce{which} is {given} bytes; the job has room for {expected}")]
    ExtranonceSize {
        /// 1 or 2.
        which: u8,
        /// Its size.
        given: usize,
        /// The job's.
        expected: usize,
    },
    /// The assembled coinbase does not decode (a corrupt job).
    #[error("the assembled coinbase does not decode")]
    Coinbase(#[source] encode::Error),
}

/// The witness commitment output for `template`'s transactions.
fn witness_commitment_script(template: &Template) -> ScriptBuf {
    let hashes = std::iter::once(Wtxid::all_zeros())
        .chain(template.transactions.iter().map(|t| t.wtxid))
        .map(|w| w.to_raw_hash());
    let root = WitnessMerkleNode::from_raw_hash(
        merkle_tree::calculate_root(hashes).expect("the list holds at least the coinbase"),
    );
    let commitment = Block::compute_witness_commitment(&root, &WITNESS_RESERVED_VALUE);
    let mut data = vec![0xaa, 0x21, 0xa9, 0xed];
    data.extend_from_slice(commitment.as_byte_array());
    let push = PushBytesBuf::try_from(data).expect("36 bytes is a valid push");
    Builder::new().push_opcode(bitcoin::opcodes::all::OP_RETURN).push_slice(push).into_script()
}

/// The coinbase with zeroed extranonces, and the extranonce's offset in its
/// scriptSig.
fn coinbase_transaction(template: &Template, spec: &CoinbaseSpec<'_>) -> Result<(Transaction, usize), JobError> {
    let paid: Amount = spec.payout.outputs.iter().map(|o| o.value).sum();
    if paid != template.coinbase_value {
        return Err(JobError::PayoutMismatch { paid, value: template.coinbase_value });
    }
    let extranonce_len = spec.extranonce1_size + spec.extranonce2_size;
    let height = Builder::new().push_int(i64::from(template.height)).into_script();
    // Room left for the tag: the limit less the height, the extranonce and its push opcode, and the tag's.
    let room = MAX_COINBASE_SCRIPT_SIG_LEN
        .checked_sub(height.len() + 1 + extranonce_len + 1)
        .filter(|_| extranonce_len <= 75)
        .ok_or(JobError::ExtranonceTooLong { extranonce_len })?;
    let tag = shorten(spec.pool_tag, room.min(75));
    let mut script = Builder::from(height.into_bytes());
    if !tag.is_empty() {
        script = script.push_slice(PushBytesBuf::try_from(tag.as_bytes().to_vec()).expect("at most 75 bytes"));
    }
    let placeholder = PushBytesBuf::try_from(vec![0u8; extranonce_len]).expect("at most 75 bytes");
    let script_sig = script.push_slice(placeholder).into_script();
    let offset = script_sig.len() - extranonce_len;

    let mut output: Vec<TxOut> = spec.payout.outputs.clone();
    if let Some(given) = &template.default_witness_commitment {
        let computed = witness_commitment_script(template);
        if &computed != given {
            return Err(JobError::WitnessCommitment {
                given: hex::encode(given.as_bytes()),
                computed: hex::encode(computed.as_bytes()),
            });
        }
        output.push(TxOut { value: Amount::ZERO, script_pubkey: computed });
    }
    let coinbase = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output,
    };
    Ok((coinbase, offset))
}

/// The longest prefix of `text` within `max` bytes, cut at a character boundary.
fn shorten(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The full block for a solved job: the coinbase rebuilt with the miner's
/// extranonces (and, under segwit, the witness reserved value), the
/// template's transactions, and the header with the miner's time, nonce and
/// (already rolled) version.
pub fn assemble_block(
    job: &Job,
    extranonce1: &Extranonce1,
    extranonce2: &Extranonce2,
    ntime: u32,
    nonce: u32,
    version: block::Version,
) -> Result<Block, JobError> {
    if extranonce1.len() != job.extranonce1_size {
        return Err(JobError::ExtranonceSize { which: 1, given: extranonce1.len(), expected: job.extranonce1_size });
    }
    if extranonce2.len() != job.extranonce2_size {
        return Err(JobError::ExtranonceSize { which: 2, given: extranonce2.len(), expected: job.extranonce2_size });
    }
    let (header, coinbase) =
        satpool_stratum::build_header(&job.notify, extranonce1, extranonce2, ntime, nonce, version);
    let mut coinbase: Transaction = encode::deserialize(&coinbase).map_err(JobError::Coinbase)?;
    if job.segwit {
        coinbase.input[0].witness = Witness::from_slice(&[WITNESS_RESERVED_VALUE]);
    }
    let mut txdata = Vec::with_capacity(job.transactions.len() + 1);
    txdata.push(coinbase);
    txdata.extend(job.transactions.iter().cloned());
    Ok(Block { header, txdata })
}

/// What a job id names.
#[derive(Debug, Clone)]
pub enum JobLookup {
    /// A job on the current tip.
    Current(Arc<Job>),
    /// A job on an older tip: its shares are stale (Stratum error 21), and
    /// never submitted as blocks.
    Stale(Arc<Job>),
    /// No such job (too old, or never issued): also error 21.
    Unknown,
}

/// The recent jobs, newest last, with their ids.
#[derive(Debug)]
pub struct JobBook {
    jobs: VecDeque<Arc<Job>>,
    capacity: usize,
    next_id: u64,
}

impl JobBook {
    /// A book keeping the last `capacity` jobs (at least 1).
    pub fn new(capacity: usize) -> JobBook {
        JobBook { jobs: VecDeque::new(), capacity: capacity.max(1), next_id: 1 }
    }

    /// Builds the next job for `template` and keeps it; `clean_jobs` is set
    /// when the template builds on another tip than the job before.
    pub fn build(&mut self, template: &Template, spec: &CoinbaseSpec<'_>) -> Result<Arc<Job>, JobError> {
        let clean_jobs = self.latest().is_none_or(|job| job.prev_hash() != template.previous_block_hash);
        let id = format!("{:x}", self.next_id);
        let job = Arc::new(Job::build(id, clean_jobs, template, spec)?);
        self.next_id += 1;
        if self.jobs.len() == self.capacity {
            self.jobs.pop_front();
        }
        self.jobs.push_back(job.clone());
        Ok(job)
    }

    /// The newest job.
    pub fn latest(&self) -> Option<&Arc<Job>> {
        self.jobs.back()
    }

    /// The job with this id, and whether it is on the current tip.
    pub fn lookup(&self, id: &str) -> JobLookup {
        let Some(job) = self.jobs.iter().rev().find(|j| j.id() == id) else { return JobLookup::Unknown };
        let tip = self.latest().map(|j| j.prev_hash());
        if Some(job.prev_hash()) == tip {
            JobLookup::Current(job.clone())
        } else {
            JobLookup::Stale(job.clone())
        }
    }
}

/// The jobs shared by every session: the [`JobBook`] behind a lock (never
/// held across an `.await`) and a watch channel that announces each new job.
#[derive(Debug)]
pub struct JobHub {
    book: std::sync::RwLock<JobBook>,
    tx: tokio::sync::watch::Sender<Option<Arc<Job>>>,
}

impl JobHub {
    /// A hub keeping the last `capacity` jobs.
    pub fn new(capacity: usize) -> JobHub {
        JobHub { book: std::sync::RwLock::new(JobBook::new(capacity)), tx: tokio::sync::watch::Sender::new(None) }
    }

    /// Builds the next job for `template`, keeps it and announces it.
    pub fn publish(&self, template: &Template, spec: &CoinbaseSpec<'_>) -> Result<Arc<Job>, JobError> {
        let job = self.book.write().expect("no panic while holding the job book").build(template, spec)?;
        self.tx.send_replace(Some(job.clone()));
        Ok(job)
    }

    /// Builds a job for `template` and keeps it without announcing it: for
    /// jobs of one session, such as solo mining's coinbase that pays its finder.
    pub fn build_private(&self, template: &Template, spec: &CoinbaseSpec<'_>) -> Result<Arc<Job>, JobError> {
        self.book.write().expect("no panic while holding the job book").build(template, spec)
    }

    /// The job with this id, and whether it is on the current tip.
    pub fn lookup(&self, id: &str) -> JobLookup {
        self.book.read().expect("no panic while holding the job book").lookup(id)
    }

    /// The newest job announced.
    pub fn latest(&self) -> Option<Arc<Job>> {
        self.tx.borrow().clone()
    }

    /// A receiver that wakes on every new job.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Arc<Job>>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolFee;
    use crate::payout::{pplns, PayoutInput, ShareWeight, WeightedShare};
    use crate::template::TemplateTransaction;
    use bitcoin::hashes::sha256d;

    fn spending_tx(n: u8, segwit: bool) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint { txid: Txid::from_byte_array([n; 32]), vout: 0 },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: if segwit { Witness::from_slice(&[vec![n; 72], vec![2; 33]]) } else { Witness::new() },
            }],
            output: vec![TxOut { value: Amount::from_sat(1_000), script_pubkey: ScriptBuf::from_bytes(vec![0x51]) }],
        }
    }

    fn template(height: u32, prev: u8, transactions: usize, segwit: bool) -> Template {
        let transactions: Vec<TemplateTransaction> = (0..transactions)
            .map(|i| {
                let tx = spending_tx(i as u8, segwit && i % 2 == 0);
                TemplateTransaction {
                    txid: tx.compute_txid(),
                    wtxid: tx.compute_wtxid(),
                    fee: Some(Amount::from_sat(500)),
                    weight: Some(tx.weight().to_wu()),
                    sigops: Some(0),
                    transaction: tx,
                }
            })
            .collect();
        let mut t = Template {
            height,
            previous_block_hash: BlockHash::from_byte_array([prev; 32]),
            bits: bitcoin::CompactTarget::from_consensus(0x207fffff),
            target: Target::from_compact(bitcoin::CompactTarget::from_consensus(0x207fffff)),
            cur_time: 1_700_000_000,
            min_time: 1_699_999_000,
            version: block::Version::from_consensus(0x2000_0000),
            coinbase_value: Amount::from_sat(5_000_000_000 + 500 * transactions.len() as u64),
            transactions,
            default_witness_commitment: None,
            longpollid: None,
        };
        if segwit {
            t.default_witness_commitment = Some(witness_commitment_script(&t));
        }
        t
    }

    fn payout_for(template: &Template) -> Payout {
        let operator = ScriptBuf::from_bytes(vec![0x00, 0x14].into_iter().chain([7u8; 20]).collect());
        let shares = [
            WeightedShare { script: ScriptBuf::from_bytes(vec![0x51]), weight: ShareWeight::from_difficulty(3.0) },
            WeightedShare { script: ScriptBuf::from_bytes(vec![0x52]), weight: ShareWeight::from_difficulty(1.0) },
        ];
        pplns(&PayoutInput {
            coinbase_value: template.coinbase_value,
            fee: PoolFee::from_ppm(10_000).unwrap(),
            operator: &operator,
            shares: &shares,
            owed: &[],
            min_payout: Amount::ZERO,
            max_outputs: 10,
        })
        .unwrap()
    }

    fn spec<'a>(payout: &'a Payout, tag: &'a str, en2: usize) -> CoinbaseSpec<'a> {
        CoinbaseSpec { payout, pool_tag: tag, extranonce1_size: EXTRANONCE1_SIZE, extranonce2_size: en2 }
    }

    /// Table: name, transactions, segwit, tag, extranonce2 size.
    #[test]
    fn assembled_blocks_are_consistent() {
        let cases: &[(&str, usize, bool, &str, usize)] = &[
            ("empty legacy", 0, false, "/satpool/", 8),
            ("empty segwit", 0, true, "/satpool/", 8),
            ("odd count segwit", 5, true, "/satpool/", 8),
            ("even count legacy", 4, false, "", 4),
            ("long tag", 3, true, &"é".repeat(60), 16),
        ];
        for &(name, count, segwit, tag, en2) in cases {
            for height in [1u32, 16, 17, 500_000] {
                let template = template(height, 9, count, segwit);
                let payout = payout_for(&template);
                let job = Job::build("1".into(), true, &template, &spec(&payout, tag, en2)).expect(name);
                let e1 = Extranonce1::from_u32(0xdead_beef);
                let e2 = Extranonce2::from_counter(42, en2).unwrap();
                let block = assemble_block(&job, &e1, &e2, template.cur_time + 1, 7, template.version).expect(name);
                assert!(block.check_merkle_root(), "{name}: merkle root");
                if segwit {
                    assert!(block.check_witness_commitment(), "{name}: witness commitment");
                }
                let coinbase = &block.txdata[0];
                assert!(coinbase.is_coinbase());
                let script_sig = coinbase.input[0].script_sig.as_bytes();
                assert!((2..=100).contains(&script_sig.len()), "{name}: scriptSig {} bytes", script_sig.len());
                // BIP 34 as Core checks it: the scriptSig starts with `CScript() << height`
                // (OP_1..OP_16 for the smallest heights, which rust-bitcoin's reader skips).
                let expected = Builder::new().push_int(i64::from(height)).into_script();
                assert!(script_sig.starts_with(expected.as_bytes()), "{name}: BIP 34 at {height}");
                if height > 16 {
                    assert_eq!(block.bip34_block_height().ok(), Some(u64::from(height)), "{name}: BIP 34");
                }
                assert!(
                    script_sig.windows(4).any(|w| w == [0xde, 0xad, 0xbe, 0xef]),
                    "{name}: the extranonce sits in the scriptSig"
                );
                let paid: Amount = coinbase.output.iter().map(|o| o.value).sum();
                assert_eq!(paid, template.coinbase_value, "{name}: outputs sum to the coinbase value");
                // The stratum-side root equals the full tree's.
                let coinbase_bytes = satpool_stratum::serialize_without_witness(coinbase);
                assert_eq!(Txid::from_raw_hash(sha256d::Hash::hash(&coinbase_bytes)), coinbase.compute_txid());
                assert_eq!(block.header.prev_blockhash, template.previous_block_hash);
                assert_eq!(block.txdata.len(), count + 1);
            }
        }
    }

    #[test]
    fn a_wrong_witness_commitment_is_refused() {
        let mut template = template(10, 1, 3, true);
        template.default_witness_commitment = Some(ScriptBuf::from_bytes(vec![0x6a; 38]));
        let payout = payout_for(&template);
        assert!(matches!(
            Job::build("1".into(), true, &template, &spec(&payout, "t", 8)),
            Err(JobError::WitnessCommitment { .. })
        ));
    }

    #[test]
    fn a_payout_that_does_not_add_up_is_refused() {
        let template = template(10, 1, 0, false);
        let mut payout = payout_for(&template);
        payout.outputs[0].value += Amount::from_sat(1);
        assert!(matches!(
            Job::build("1".into(), true, &template, &spec(&payout, "t", 8)),
            Err(JobError::PayoutMismatch { .. })
        ));
    }

    #[test]
    fn wrong_extranonce_sizes_are_refused() {
        let template = template(10, 1, 0, false);
        let payout = payout_for(&template);
        let job = Job::build("1".into(), true, &template, &spec(&payout, "t", 8)).unwrap();
        let e1 = Extranonce1::from_u32(1);
        let e2 = Extranonce2::from_counter(1, 4).unwrap();
        assert!(matches!(
            assemble_block(&job, &e1, &e2, 0, 0, template.version),
            Err(JobError::ExtranonceSize { which: 2, .. })
        ));
    }

    #[test]
    fn the_book_marks_older_tips_stale() {
        let mut book = JobBook::new(3);
        let first = template(10, 1, 0, false);
        let payout = payout_for(&first);
        let a = book.build(&first, &spec(&payout, "t", 8)).unwrap();
        assert!(a.notify.clean_jobs);
        let b = book.build(&first, &spec(&payout, "t", 8)).unwrap();
        assert!(!b.notify.clean_jobs, "a refresh on the same tip keeps earlier jobs");
        assert!(matches!(book.lookup(a.id()), JobLookup::Current(_)));
        let next = template(11, 2, 0, false);
        let payout = payout_for(&next);
        let c = book.build(&next, &spec(&payout, "t", 8)).unwrap();
        assert!(c.notify.clean_jobs);
        assert!(matches!(book.lookup(a.id()), JobLookup::Stale(_)));
        assert!(matches!(book.lookup(c.id()), JobLookup::Current(_)));
        book.build(&next, &spec(&payout, "t", 8)).unwrap();
        assert!(matches!(book.lookup(a.id()), JobLookup::Unknown), "pushed out by capacity");
        assert!(matches!(book.lookup("zz"), JobLookup::Unknown));
    }
}
