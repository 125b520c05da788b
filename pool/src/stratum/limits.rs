//! Who may connect: a semaphore for the connections in all, a count per IP
//! address, temporary bans for floods of invalid shares, and the extranonce1
//! allocator with session resumption. Locks here are `std` mutexes held for
//! a few instructions, never across an `.await`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The server holds its maximum of connections.
    #[error("the server is full ({0} connections)")]
    Full(usize),
    /// This address holds its maximum of connections.
    #[error("{ip} already holds {limit} connections")]
    PerIp {
        /// The address.
        ip: IpAddr,
        /// The limit.
        limit: usize,
    },
    /// This address is banned for a while.
    #[error("{ip} is banned for another {remaining:?}")]
    Banned {
        /// The address.
        ip: IpAddr,
        /// Time left.
        remaining: Duration,
    },
}

#[derive(Debug, Default)]
struct IpState {
    connections: HashMap<IpAddr, usize>,
    bans: HashMap<IpAddr, Instant>,
}

/// The connection limits, shared by the accept loop and the connections.
#[derive(Debug)]
pub struct ConnectionLimits {
    total: Arc<Semaphore>,
    max_total: usize,
    max_per_ip: usize,
    ips: Mutex<IpState>,
}

/// A connection's right to exist; dropping it frees its places.
#[derive(Debug)]
pub struct ConnectionPermit {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    limits: Arc<ConnectionLimits>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut ips = self.limits.lock();
        if let Some(count) = ips.connections.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                ips.connections.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    /// Limits of `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            max_per_ip,
            ips: Mutex::new(IpState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, IpState> {
        // A panic while holding this lock leaves counts that are still
        // usable: take the data either way.
        self.ips.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `ip` at `now`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<ConnectionPermit, Refusal> {
        let mut ips = self.lock();
        if let Some(until) = ips.bans.get(&ip).copied() {
            if until > now {
                return Err(Refusal::Banned { ip, remaining: until - now });
            }
            ips.bans.remove(&ip);
        }
        let count = ips.connections.get(&ip).copied().unwrap_or(0);
        if count >= self.max_per_ip {
            return Err(Refusal::PerIp { ip, limit: self.max_per_ip });
        }
        let total = self.total.clone().try_acquire_owned().map_err(|_| Refusal::Full(self.max_total))?;
        *ips.connections.entry(ip).or_insert(0) += 1;
        Ok(ConnectionPermit { _total: total, ip, limits: self.clone() })
    }

    /// Bans `ip` until `now + duration`.
    pub fn ban(&self, ip: IpAddr, now: Instant, duration: Duration) {
        let mut ips = self.lock();
        ips.bans.retain(|_, until| *until > now);
        ips.bans.insert(ip, now + duration);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max_total - self.total.available_permits()
    }
}

/// Counts a connection's invalid shares in fixed windows; says when to ban.
#[derive(Debug, Clone)]
pub struct InvalidShares {
    window: Duration,
    threshold: u32,
    window_start: Option<Instant>,
    count: u32,
}

impl InvalidShares {
    /// A ban after `threshold` invalid shares within `window`.
    pub fn new(threshold: u32, window: Duration) -> InvalidShares {
        InvalidShares { window, threshold, window_start: None, count: 0 }
    }

    /// Counts one; true when the threshold is reached.
    pub fn record(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < self.window => self.count += 1,
            _ => {
                self.window_start = Some(now);
                self.count = 1;
            }
        }
        self.count >= self.threshold
    }
}

#[derive(Debug, Default)]
struct ExtranonceState {
    next: u32,
    in_use: HashSet<u32>,
    /// Released extranonce1s that a reconnecting miner may resume, with
    /// when they were released.
    resumable: HashMap<u32, Instant>,
}

/// Hands out 4-byte extranonce1s from a counter (never at random), unique
/// among open connections, and gives a reconnecting miner its old one back
/// when it offers it as its session id and no one holds it.
#[derive(Debug)]
pub struct Extranonces {
    state: Mutex<ExtranonceState>,
    resume_for: Duration,
    max_resumable: usize,
}

impl Extranonces {
    /// Counting from `first`; a released extranonce1 stays resumable for `resume_for`.
    pub fn new(first: u32, resume_for: Duration) -> Extranonces {
        Extranonces {
            state: Mutex::new(ExtranonceState { next: first, ..ExtranonceState::default() }),
            resume_for,
            max_resumable: 100_000,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ExtranonceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An extranonce1: the offered session's when it is known and free,
    /// else the next from the counter. Returns it and whether it resumed.
    pub fn allocate(&self, offered: Option<u32>, now: Instant) -> (u32, bool) {
        let mut state = self.lock();
        if let Some(id) = offered {
            if let Some(released) = state.resumable.get(&id).copied() {
                state.resumable.remove(&id);
                if now.saturating_duration_since(released) <= self.resume_for && !state.in_use.contains(&id) {
                    state.in_use.insert(id);
                    return (id, true);
                }
            }
        }
        loop {
            let candidate = state.next;
            state.next = state.next.wrapping_add(1);
            if !state.in_use.contains(&candidate) && !state.resumable.contains_key(&candidate) {
                state.in_use.insert(candidate);
                return (candidate, false);
            }
        }
    }

    /// A connection ended: its extranonce1 becomes resumable.
    pub fn release(&self, id: u32, now: Instant) {
        let mut state = self.lock();
        state.in_use.remove(&id);
        if state.resumable.len() >= self.max_resumable {
            let resume_for = self.resume_for;
            state.resumable.retain(|_, released| now.saturating_duration_since(*released) <= resume_for);
        }
        if state.resumable.len() < self.max_resumable {
            state.resumable.insert(id, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits() {
        let limits = ConnectionLimits::new(3, 2);
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limits.admit(a, now).expect("room");
        let _second = limits.admit(a, now).expect("room");
        assert!(matches!(limits.admit(a, now), Err(Refusal::PerIp { .. })));
        let _third = limits.admit(b, now).expect("room");
        assert!(matches!(limits.admit(b, now), Err(Refusal::Full(3))));
        drop(first);
        assert_eq!(limits.open(), 2);
        let _again = limits.admit(a, now).expect("a place was freed");
    }

    #[test]
    fn bans_expire() {
        let limits = ConnectionLimits::new(10, 10);
        let now = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        limits.ban(ip, now, Duration::from_secs(60));
        assert!(matches!(limits.admit(ip, now + Duration::from_secs(30)), Err(Refusal::Banned { .. })));
        assert!(limits.admit(ip, now + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn invalid_share_flood() {
        let mut invalid = InvalidShares::new(3, Duration::from_secs(10));
        let now = Instant::now();
        assert!(!invalid.record(now));
        assert!(!invalid.record(now));
        assert!(!invalid.record(now + Duration::from_secs(11)), "a new window");
        assert!(!invalid.record(now + Duration::from_secs(12)));
        assert!(invalid.record(now + Duration::from_secs(13)));
    }

    #[test]
    fn extranonces_are_unique_and_resumable() {
        let e = Extranonces::new(1, Duration::from_secs(600));
        let now = Instant::now();
        assert_eq!(e.allocate(None, now), (1, false));
        assert_eq!(e.allocate(None, now), (2, false));
        // Offering one in use gives a fresh one.
        assert_eq!(e.allocate(Some(1), now), (3, false));
        e.release(1, now);
        assert_eq!(e.allocate(Some(1), now), (1, true));
        // A released one is not handed to a stranger.
        e.release(2, now);
        assert_eq!(e.allocate(None, now), (4, false));
        // Unknown or expired sessions get fresh ones.
        assert_eq!(e.allocate(Some(99), now), (5, false));
        assert_eq!(e.allocate(Some(2), now + Duration::from_secs(601)), (6, false));
    }
}
