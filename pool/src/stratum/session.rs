//! One connection's Stratum state, pure: what it subscribed, authorized and
//! negotiated, its vardiff, and the jobs it was sent with the difficulties
//! in force while each was its job. The connection task drives it; tests
//! drive it directly.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bitcoin::BlockHash;
use satpool_stratum::{Extranonce1, ShareDifficulty, VersionMask};

use crate::config::{parse_address, ConfigError, Network};
use crate::job::Job;
use crate::share::{SeenShares, ShareJob, ShareSession};
use crate::vardiff::Vardiff;

/// The longest worker name accepted after `address.`.
pub const MAX_WORKER_NAME_LEN: usize = 64;

/// A worker authorized on a connection: `address` or `address.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// The payout address, as the miner wrote it.
    pub address: String,
    /// The worker name after the first `.`, or empty.
    pub name: String,
}

/// Why `mining.authorize` was refused; the message is sent to the miner.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The part before the first `.` is not an address of the pool's network.
    #[error("username '{user}' must be a {network} payout address, optionally followed by .workername: {source}")]
    Address {
        /// The username sent.
        user: String,
        /// The pool's network.
        network: Network,
        /// Why the address was refused.
        #[source]
        source: Box<ConfigError>,
    },
    /// The worker name is too long or holds characters outside `[A-Za-z0-9._-]`.
    #[error("worker name '{name}' must be at most {MAX_WORKER_NAME_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    WorkerName {
        /// The worker name sent.
        name: String,
    },
}

/// Splits and checks a username: `address` or `address.worker`.
pub fn parse_username(user: &str, network: Network) -> Result<Worker, AuthorizeError> {
    let (address, name) = user.split_once('.').unwrap_or((user, ""));
    parse_address(address, network).map_err(|source| AuthorizeError::Address {
        user: user.to_owned(),
        network,
        source: Box::new(source),
    })?;
    let name_ok = name.len() <= MAX_WORKER_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !name_ok {
        return Err(AuthorizeError::WorkerName { name: name.to_owned() });
    }
    Ok(Worker { address: address.to_owned(), name: name.to_owned() })
}

/// A job as this session was sent it.
#[derive(Debug)]
pub struct SentJob {
    /// The job.
    pub job: Arc<Job>,
    /// The difficulties in force while it was this session's job, oldest first.
    pub difficulties: Vec<ShareDifficulty>,
    /// The header hashes accepted on it, up to the cap (see
    /// [`crate::share`]'s "The duplicate set is bounded").
    pub seen: SeenShares,
}

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    extranonce1: Option<Extranonce1>,
    extranonce2_size: usize,
    user_agent: Option<String>,
    workers: HashMap<String, Worker>,
    payout_address: Option<String>,
    version_mask: Option<VersionMask>,
    extranonce_subscribed: bool,
    vardiff: Vardiff,
    sent_difficulty: Option<ShareDifficulty>,
    jobs: VecDeque<SentJob>,
    max_jobs: usize,
    max_shares_per_job: usize,
}

impl Session {
    /// A fresh connection with this vardiff, extranonce2 size, and room for
    /// `max_jobs` jobs of `max_shares_per_job` shares each.
    pub fn new(vardiff: Vardiff, extranonce2_size: usize, max_jobs: usize, max_shares_per_job: usize) -> Session {
        Session {
            extranonce1: None,
            extranonce2_size,
            user_agent: None,
            workers: HashMap::new(),
            payout_address: None,
            version_mask: None,
            extranonce_subscribed: false,
            vardiff,
            sent_difficulty: None,
            jobs: VecDeque::new(),
            max_jobs: max_jobs.max(1),
            max_shares_per_job,
        }
    }

    /// `mining.subscribe` answered with `extranonce1`.
    pub fn subscribe(&mut self, extranonce1: Extranonce1, user_agent: Option<String>) {
        self.extranonce1 = Some(extranonce1);
        self.user_agent = user_agent;
    }

    /// The extranonce1, once subscribed.
    pub fn extranonce1(&self) -> Option<&Extranonce1> {
        self.extranonce1.as_ref()
    }

    /// The extranonce2 size announced.
    pub fn extranonce2_size(&self) -> usize {
        self.extranonce2_size
    }

    /// The miner's user agent, from `mining.subscribe`.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// Whether `mining.subscribe` was answered.
    pub fn is_subscribed(&self) -> bool {
        self.extranonce1.is_some()
    }

    /// Whether some worker is authorized.
    pub fn is_authorized(&self) -> bool {
        !self.workers.is_empty()
    }

    /// Whether jobs may be sent: subscribed and authorized, in either order.
    pub fn is_ready(&self) -> bool {
        self.is_subscribed() && self.is_authorized()
    }

    /// `mining.authorize`: checks the username and remembers the worker.
    pub fn authorize(&mut self, user: &str, network: Network) -> Result<&Worker, AuthorizeError> {
        let worker = parse_username(user, network)?;
        if self.payout_address.is_none() {
            self.payout_address = Some(worker.address.clone());
        }
        Ok(self.workers.entry(user.to_owned()).or_insert(worker))
    }

    /// The address of the first worker authorized: the one solo mode's
    /// jobs of this session pay.
    pub fn payout_address(&self) -> Option<&str> {
        self.payout_address.as_deref()
    }

    /// The worker authorized under this exact username.
    pub fn worker(&self, user: &str) -> Option<&Worker> {
        self.workers.get(user)
    }

    /// The first worker authorized (for logs).
    pub fn any_worker(&self) -> Option<&Worker> {
        self.workers.values().next()
    }

    /// `mining.configure` granted version rolling with `mask`.
    pub fn set_version_mask(&mut self, mask: Option<VersionMask>) {
        self.version_mask = mask;
    }

    /// The mask granted, if any.
    pub fn version_mask(&self) -> Option<VersionMask> {
        self.version_mask
    }

    /// `mining.extranonce.subscribe` was received.
    pub fn subscribe_extranonce(&mut self) {
        self.extranonce_subscribed = true;
    }

    /// Whether the miner takes `mining.set_extranonce`.
    pub fn extranonce_subscribed(&self) -> bool {
        self.extranonce_subscribed
    }

    /// The difficulty vardiff holds now (it reaches the miner with the next job).
    pub fn difficulty(&self) -> ShareDifficulty {
        self.vardiff.current()
    }

    /// The difficulty last sent in `mining.set_difficulty`.
    pub fn sent_difficulty(&self) -> Option<ShareDifficulty> {
        self.sent_difficulty
    }

    /// `mining.suggest_difficulty`, within bounds: the new difficulty when it changed.
    pub fn suggest(&mut self, difficulty: ShareDifficulty, now: Instant) -> Option<ShareDifficulty> {
        self.vardiff.suggest(difficulty, now)
    }

    /// Vardiff's look at a quiet connection.
    pub fn tick(&mut self, now: Instant) -> Option<ShareDifficulty> {
        self.vardiff.on_tick(now)
    }

    /// Records that `job` is being sent now. Returns the difficulty to send
    /// in `mining.set_difficulty` first, when it differs from the last one
    /// sent (set_difficulty always goes before the notify it applies to).
    pub fn job_sent(&mut self, job: Arc<Job>) -> Option<ShareDifficulty> {
        let difficulty = self.vardiff.current();
        let change = (self.sent_difficulty != Some(difficulty)).then_some(difficulty);
        self.sent_difficulty = Some(difficulty);
        if let Some(sent) = self.jobs.iter_mut().find(|s| s.job.id() == job.id()) {
            if !sent.difficulties.contains(&difficulty) {
                sent.difficulties.push(difficulty);
            }
            return change;
        }
        if self.jobs.len() == self.max_jobs {
            self.jobs.pop_front();
        }
        let seen = SeenShares::new(self.max_shares_per_job);
        self.jobs.push_back(SentJob { job, difficulties: vec![difficulty], seen });
        change
    }

    /// The newest job sent.
    pub fn current_job(&self) -> Option<&Arc<Job>> {
        self.jobs.back().map(|s| &s.job)
    }

    /// The id of the newest job sent.
    pub fn current_job_id(&self) -> Option<&str> {
        self.jobs.back().map(|s| s.job.id())
    }

    /// The job named `job_id` as this session saw it; stale unless it builds on `tip`.
    pub fn share_job(&self, job_id: &str, tip: BlockHash) -> Option<(ShareJob<'_>, &Arc<Job>)> {
        let sent = self.jobs.iter().rev().find(|s| s.job.id() == job_id)?;
        let job = &sent.job;
        Some((
            ShareJob {
                notify: &job.notify,
                min_time: job.min_time,
                cur_time: job.notify.ntime,
                network_target: job.network_target,
                stale: job.prev_hash() != tip,
                difficulties: &sent.difficulties,
                seen: &sent.seen,
            },
            job,
        ))
    }

    /// What validation needs of the session for a submit by `worker`.
    pub fn share_session(&self, worker: &str) -> ShareSession<'_> {
        ShareSession {
            extranonce1: self.extranonce1.as_ref(),
            extranonce2_size: self.extranonce2_size,
            worker_authorized: self.workers.contains_key(worker),
            version_mask: self.version_mask,
        }
    }

    /// Records an accepted share (for duplicates and vardiff); returns a new
    /// difficulty when vardiff retargets.
    pub fn accepted(&mut self, job_id: &str, hash: BlockHash, now: Instant) -> Option<ShareDifficulty> {
        if let Some(sent) = self.jobs.iter_mut().rev().find(|s| s.job.id() == job_id) {
            sent.seen.insert(hash);
        }
        self.vardiff.on_share(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vardiff::VardiffConfig;
    use std::time::Duration;

    const REGTEST: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    const MAINNET: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

    fn session() -> Session {
        let d = |v| ShareDifficulty::new(v).expect("positive");
        let config = VardiffConfig::new(Duration::from_secs(10), d(0.001), d(1000.0));
        Session::new(Vardiff::new(config, d(1.0), Instant::now()), 4, 3, 1_000)
    }

    #[test]
    fn usernames() {
        type Case = (&'static str, &'static str, Option<(&'static str, &'static str)>);
        let cases: &[Case] = &[
            ("bare address", REGTEST, Some((REGTEST, ""))),
            ("with worker", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080.rig1", Some((REGTEST, "rig1"))),
            ("dotted worker", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080.a.b", Some((REGTEST, "a.b"))),
            ("other network", MAINNET, None),
            ("not an address", "alice.rig1", None),
            ("bad worker", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080.r ig", None),
            ("empty", "", None),
        ];
        for (name, user, want) in cases {
            let got = parse_username(user, Network::Regtest).ok();
            let got = got.as_ref().map(|w| (w.address.as_str(), w.name.as_str()));
            assert_eq!(got, *want, "{name}");
        }
        let error = parse_username(MAINNET, Network::Regtest).unwrap_err().to_string();
        assert!(error.contains("regtest payout address"), "{error}");
    }

    #[test]
    fn readiness_in_either_order() {
        let mut s = session();
        assert!(!s.is_ready());
        s.authorize(REGTEST, Network::Regtest).expect("valid");
        assert!(!s.is_ready());
        s.subscribe(Extranonce1::from_u32(9), Some("cpuminer/2.5.1".into()));
        assert!(s.is_ready());
        assert!(s.share_session(REGTEST).worker_authorized);
        assert!(!s.share_session("someone.else").worker_authorized);
        assert_eq!(s.payout_address(), Some(REGTEST));
        s.authorize("bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry.b", Network::Regtest)
            .expect("valid");
        assert_eq!(s.payout_address(), Some(REGTEST), "the first worker's address");
        s.set_version_mask(Some(VersionMask::BIP320));
        assert_eq!(s.share_session(REGTEST).version_mask, Some(VersionMask::BIP320));
    }
}
