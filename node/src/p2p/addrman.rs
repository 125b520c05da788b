//! The address book (a simplified `AddrMan`): addresses learnt from `addr`
//! and `addrv2`, which ones worked, which to try next, and which to give a
//! peer that sends `getaddr`. Saved to `<datadir>/peers.json`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::banlist::write_atomically;

/// The file the book lives in.
pub const FILE_NAME: &str = "peers.json";
/// Addresses kept at most.
pub const MAX_ADDRESSES: usize = 16_384;
/// Core's `MAX_ADDR_TO_SEND`.
pub const MAX_ADDR_TO_SEND: usize = 1000;
/// Core's `MAX_PCT_ADDR_TO_SEND`.
pub const MAX_PCT_ADDR_TO_SEND: usize = 23;
/// Addresses not seen for this long are forgotten (Core's `ADDRMAN_HORIZON`, 30 days).
const HORIZON: i64 = 30 * 24 * 60 * 60;

/// What the book knows of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrInfo {
    /// Service bits it advertised.
    pub services: u64,
    /// When it was last said to be online, Unix seconds.
    pub last_seen: i64,
    /// When we last tried it.
    pub last_try: i64,
    /// When a handshake with it last succeeded.
    pub last_success: i64,
    /// Failed attempts since the last success.
    pub attempts: u32,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    addr: SocketAddr,
    #[serde(flatten)]
    info: AddrInfo,
}

/// Reading or writing the book failed.
#[derive(Debug, thiserror::Error)]
pub enum AddrManError {
    /// The file could not be read or written.
    #[error("while accessing {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an address book.
    #[error("{path} is not an address book")]
    Format {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The address book.
#[derive(Debug, Default, Clone)]
pub struct AddrMan {
    addrs: HashMap<SocketAddr, AddrInfo>,
    /// Accept loopback and private addresses too (tests, regtest).
    allow_local: bool,
}

/// Core's `IsRoutable`, roughly: public unicast addresses only.
pub fn is_routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_routable(IpAddr::V4(v4)),
            None => {
                !(v6.is_unspecified()
                    || v6.is_loopback()
                    || v6.is_multicast()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80)
            }
        },
    }
}

impl AddrMan {
    /// An empty book; `allow_local` also keeps non-routable addresses.
    pub fn new(allow_local: bool) -> AddrMan {
        AddrMan { addrs: HashMap::new(), allow_local }
    }

    /// Addresses known.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// What the book knows of `addr`.
    pub fn get(&self, addr: &SocketAddr) -> Option<&AddrInfo> {
        self.addrs.get(addr)
    }

    /// Learns an address a peer told us of; whether it was new. Addresses
    /// that cannot be reached, or that claim a time more than ten minutes in
    /// the future, are taken as seen five days ago (Core does the same).
    pub fn add(&mut self, addr: SocketAddr, services: u64, time: i64, now: i64) -> bool {
        if addr.port() == 0 || (!self.allow_local && !is_routable(addr.ip())) {
            return false;
        }
        let time = if time <= 100_000_000 || time > now + 600 { now - 5 * 24 * 60 * 60 } else { time };
        if let Some(info) = self.addrs.get_mut(&addr) {
            info.last_seen = info.last_seen.max(time);
            info.services |= services;
            return false;
        }
        if self.addrs.len() >= MAX_ADDRESSES {
            // Evict the stalest address.
            if let Some(oldest) = self.addrs.iter().min_by_key(|(_, i)| i.last_seen).map(|(a, _)| *a) {
                self.addrs.remove(&oldest);
            }
        }
        self.addrs.insert(addr, AddrInfo { services, last_seen: time, last_try: 0, last_success: 0, attempts: 0 });
        true
    }

    /// A connection attempt to `addr` is being made.
    pub fn attempt(&mut self, addr: &SocketAddr, now: i64) {
        if let Some(info) = self.addrs.get_mut(addr) {
            info.last_try = now;
            info.attempts += 1;
        }
    }

    /// A handshake with `addr` succeeded (outbound); adds it if unknown.
    pub fn good(&mut self, addr: SocketAddr, services: u64, now: i64) {
        let info = self.addrs.entry(addr).or_insert(AddrInfo {
            services,
            last_seen: now,
            last_try: now,
            last_success: now,
            attempts: 0,
        });
        info.services = services;
        info.last_seen = now;
        info.last_success = now;
        info.attempts = 0;
    }

    /// Forgets addresses that failed too often or were not seen for long.
    pub fn sweep(&mut self, now: i64) {
        self.addrs
            .retain(|_, i| i.last_seen > now - HORIZON && !(i.last_success == 0 && i.attempts >= 3) && i.attempts < 10);
    }

    /// An address to try: not excluded, not tried in the last minute; the
    /// least tried first, those that worked before preferred; `salt` picks
    /// among equals so that different calls spread.
    pub fn select(&self, now: i64, salt: u64, exclude: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .filter(|(a, i)| !exclude(a) && now - i.last_try >= 60)
            .min_by_key(|(a, i)| (i.attempts, i.last_success == 0, mix(a, salt)))
            .map(|(a, _)| *a)
    }

    /// Every address with what the book knows of it, in no order.
    pub fn entries(&self) -> impl Iterator<Item = (&SocketAddr, &AddrInfo)> {
        self.addrs.iter()
    }

    /// Addresses to answer `getaddr` with: at most 23 % of the book and at
    /// most 1,000, excluding the stale; `salt` varies the choice.
    pub fn get_addr(&self, now: i64, salt: u64) -> Vec<(SocketAddr, AddrInfo)> {
        let limit = (self.addrs.len() * MAX_PCT_ADDR_TO_SEND).div_ceil(100).min(MAX_ADDR_TO_SEND);
        let mut all: Vec<_> =
            self.addrs.iter().filter(|(_, i)| i.last_seen > now - HORIZON).map(|(a, i)| (*a, *i)).collect();
        all.sort_by_key(|(a, _)| mix(a, salt));
        all.truncate(limit);
        all
    }

    /// Writes the book to `path`.
    pub fn save(&self, path: &Path) -> Result<(), AddrManError> {
        let stored: Vec<Stored> = self.addrs.iter().map(|(a, i)| Stored { addr: *a, info: *i }).collect();
        let text = serde_json::to_vec_pretty(&stored).expect("an address book always serialises");
        write_atomically(path, &text).map_err(|source| AddrManError::Io { path: path.display().to_string(), source })
    }

    /// Reads the book from `path`; a missing file is an empty book.
    pub fn load(path: &Path, allow_local: bool) -> Result<AddrMan, AddrManError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AddrMan::new(allow_local)),
            Err(source) => return Err(AddrManError::Io { path: path.display().to_string(), source }),
        };
        let stored: Vec<Stored> = serde_json::from_slice(&text)
            .map_err(|source| AddrManError::Format { path: path.display().to_string(), source })?;
        Ok(AddrMan { addrs: stored.into_iter().map(|s| (s.addr, s.info)).collect(), allow_local })
    }
}

/// A cheap keyed mix of an address, to order addresses pseudo-randomly.
fn mix(addr: &SocketAddr, salt: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    salt.hash(&mut h);
    addr.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_routable_addresses_are_learnt_unless_local_is_allowed() {
        let mut book = AddrMan::new(false);
        assert!(book.add(a("8.8.8.8:8333"), 9, NOW, NOW));
        assert!(!book.add(a("8.8.8.8:8333"), 9, NOW, NOW), "known already");
        for local in ["127.0.0.1:18444", "10.0.0.1:8333", "192.168.1.1:8333", "0.0.0.0:8333", "1.2.3.4:0"] {
            assert!(!book.add(a(local), 9, NOW, NOW), "{local}");
        }
        let mut local = AddrMan::new(true);
        assert!(local.add(a("127.0.0.1:18444"), 9, NOW, NOW));
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn selection_prefers_untried_and_skips_excluded() {
        let mut book = AddrMan::new(false);
        book.add(a("8.8.8.8:8333"), 9, NOW, NOW);
        book.add(a("9.9.9.9:8333"), 9, NOW, NOW);
        book.attempt(&a("8.8.8.8:8333"), NOW - 120);
        assert_eq!(book.select(NOW, 1, |_| false), Some(a("9.9.9.9:8333")));
        assert_eq!(book.select(NOW, 1, |x| *x == a("9.9.9.9:8333")), Some(a("8.8.8.8:8333")));
        book.attempt(&a("9.9.9.9:8333"), NOW);
        assert_eq!(book.select(NOW, 1, |x| *x == a("8.8.8.8:8333")), None, "tried within the minute");
    }

    #[test]
    fn getaddr_answers_at_most_23_percent() {
        let mut book = AddrMan::new(false);
        for i in 0..100u8 {
            book.add(SocketAddr::from(([8, 8, 8, i], 8333)), 9, NOW, NOW);
        }
        assert_eq!(book.get_addr(NOW, 7).len(), 23);
    }

    #[test]
    fn the_book_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut book = AddrMan::new(false);
        book.add(a("8.8.8.8:8333"), 1033, NOW, NOW);
        book.good(a("1.1.1.1:8333"), 9, NOW);
        book.save(&path).unwrap();
        let loaded = AddrMan::load(&path, false).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded.get(&a("8.8.8.8:8333")).unwrap().services, 1033);
        assert_eq!(loaded.get(&a("1.1.1.1:8333")).unwrap().last_success, NOW);
    }
}
