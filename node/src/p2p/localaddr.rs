//! Our own addresses (Core's `mapLocalHost`): where peers can reach us, which
//! we announce to them after the handshake and again about once a day, and
//! which `getnetworkinfo` lists as `localaddresses`.
//!
//! Where they come from:
//!
//! - `--externalip`, with Core's score `LOCAL_MANUAL` (4). As in Core, giving
//!   one turns discovery off: the operator knows better than the peers.
//! - Otherwise, discovery from what peers say in their `version`'s
//!   `addr_recv`. Core keeps a per-peer view here (it mostly tells each peer
//!   the address that peer reported), and learns interface addresses with
//!   `getifaddrs`, which this crate cannot call without `unsafe`. We keep one
//!   table instead: the first address an *outbound* peer reports is adopted
//!   at once (score 1), and every further report of it, from any peer, adds 1
//!   (Core's `SeenLocal`); the highest score is announced. Outbound peers are
//!   the ones we chose, so one stranger connecting to us cannot plant an
//!   address; a single report is enough because a node with one outbound
//!   peer (a small network, regtest) should still be findable, and a wrong
//!   address costs the peers that try it one failed connection, while the
//!   right one overtakes it as more peers report it. Inbound peers only
//!   confirm addresses already known (Core does the same with `SeenLocal`).
//!
//! Only addresses that could be reached are kept: routable ones, or, where the
//! network allows it (regtest, devnet), loopback and private ones too.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use super::addrman::is_routable;

/// Core's `LOCAL_MANUAL`: the score of an `--externalip` address.
pub const LOCAL_MANUAL: u32 = 4;
/// Core's `AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL`: the mean time between two
/// announcements of our address to one peer.
pub const AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Discovered addresses kept at most; the lowest score goes first.
const MAX_DISCOVERED: usize = 32;

/// One of our addresses, with Core's `getnetworkinfo` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LocalAddress {
    /// The address peers can reach us at.
    pub addr: SocketAddr,
    /// How sure we are of it: 4 for `--externalip`, else the reports seen.
    pub score: u32,
    /// Given with `--externalip` (never evicted).
    #[serde(skip)]
    pub manual: bool,
}

/// Our addresses, best first by score.
#[derive(Debug, Clone, Default)]
pub struct LocalAddresses {
    /// In order of arrival: among equal scores the oldest wins.
    entries: Vec<LocalAddress>,
    /// Whether peers' reports may add addresses.
    discover: bool,
    /// Keep loopback and private addresses (regtest, devnet).
    allow_local: bool,
}

impl LocalAddresses {
    /// The table for a node that gave `manual` addresses with `--externalip`,
    /// and `discover`s addresses from peers if it may (it listens, and gave none).
    pub fn new(manual: &[SocketAddr], discover: bool, allow_local: bool) -> LocalAddresses {
        let mut table = LocalAddresses { entries: Vec::new(), discover: discover && manual.is_empty(), allow_local };
        for addr in manual {
            if !table.reachable(addr) {
                tracing::warn!(%addr, "--externalip address ignored: peers could not reach it");
                continue;
            }
            if !table.entries.iter().any(|e| e.addr.ip() == addr.ip()) {
                table.entries.push(LocalAddress { addr: *addr, score: LOCAL_MANUAL, manual: true });
            }
        }
        table
    }

    fn reachable(&self, addr: &SocketAddr) -> bool {
        let ip = addr.ip();
        addr.port() != 0
            && (is_routable(ip)
                || (self.allow_local && !ip.is_unspecified() && !ip.is_multicast() && !is_broadcast(ip)))
    }

    /// An outbound peer at `peer` says it sees us at `reported`; we listen on
    /// `port`. Adopts the address (with discovery on) or confirms it; whether
    /// the table changed.
    pub fn seen_by_outbound(&mut self, reported: IpAddr, peer: IpAddr, port: u16) -> bool {
        let addr = SocketAddr::new(reported, port);
        if !self.reachable(&addr) || !self.reachable(&SocketAddr::new(peer, 1)) {
            return false;
        }
        if self.confirm(addr.ip()) {
            return true;
        }
        if !self.discover {
            return false;
        }
        if self.entries.iter().filter(|e| !e.manual).count() >= MAX_DISCOVERED {
            let Some(weakest) = self.entries.iter().enumerate().filter(|(_, e)| !e.manual).min_by_key(|(_, e)| e.score)
            else {
                return false;
            };
            let at = weakest.0;
            self.entries.remove(at);
        }
        tracing::info!(%addr, "discovered our address from an outbound peer");
        self.entries.push(LocalAddress { addr, score: 1, manual: false });
        true
    }

    /// An inbound peer at `peer` says it reached us at `reported` (Core's
    /// `SeenLocal`): raises the score of that address if it is one of ours.
    pub fn seen_by_inbound(&mut self, reported: SocketAddr, peer: IpAddr) -> bool {
        self.reachable(&reported) && self.reachable(&SocketAddr::new(peer, 1)) && self.confirm(reported.ip())
    }

    fn confirm(&mut self, ip: IpAddr) -> bool {
        match self.entries.iter_mut().find(|e| e.addr.ip() == ip) {
            Some(e) => {
                e.score = e.score.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// The address to announce: the highest score, the oldest among equals.
    pub fn best(&self) -> Option<SocketAddr> {
        self.entries.iter().rev().max_by_key(|e| e.score).map(|e| e.addr)
    }

    /// Every address, in the order they came.
    pub fn list(&self) -> Vec<LocalAddress> {
        self.entries.clone()
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn externalip_wins_and_turns_discovery_off() {
        let mut table = LocalAddresses::new(&[a("8.8.4.4:8333"), a("8.8.4.4:9999")], true, false);
        assert_eq!(table.list().len(), 1, "one entry per IP, the first port");
        assert_eq!(table.best(), Some(a("8.8.4.4:8333")));
        assert_eq!(table.list()[0].score, LOCAL_MANUAL);
        assert!(!table.seen_by_outbound(ip("1.2.3.4"), ip("9.9.9.9"), 8333), "no discovery");
        assert!(table.seen_by_inbound(a("8.8.4.4:8333"), ip("9.9.9.9")), "confirmed");
        assert_eq!(table.list()[0].score, LOCAL_MANUAL + 1);
    }

    #[test]
    fn the_first_outbound_report_is_adopted_and_the_majority_wins() {
        let mut table = LocalAddresses::new(&[], true, false);
        assert_eq!(table.best(), None);
        assert!(!table.seen_by_inbound(a("1.1.1.1:8333"), ip("9.9.9.9")), "inbound peers cannot plant one");
        assert!(table.seen_by_outbound(ip("1.1.1.1"), ip("9.9.9.9"), 8333));
        assert_eq!(table.best(), Some(a("1.1.1.1:8333")));
        // A second address, reported by two more peers, overtakes the first.
        assert!(table.seen_by_outbound(ip("2.2.2.2"), ip("9.9.9.8"), 8333));
        assert_eq!(table.best(), Some(a("1.1.1.1:8333")), "the oldest among equals");
        assert!(table.seen_by_outbound(ip("2.2.2.2"), ip("9.9.9.7"), 8333));
        assert_eq!(table.best(), Some(a("2.2.2.2:8333")));
        assert_eq!(table.list().iter().map(|e| e.score).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn unreachable_addresses_are_refused_unless_local_is_allowed() {
        let mut public = LocalAddresses::new(&[a("127.0.0.2:18444")], true, false);
        assert!(public.list().is_empty(), "loopback --externalip on a public network");
        for (reported, peer) in [("127.0.0.1", "9.9.9.9"), ("10.0.0.1", "9.9.9.9"), ("1.1.1.1", "10.0.0.2")] {
            assert!(!public.seen_by_outbound(ip(reported), ip(peer), 8333), "{reported} from {peer}");
        }
        let mut local = LocalAddresses::new(&[], true, true);
        assert!(!local.seen_by_outbound(ip("0.0.0.0"), ip("127.0.0.1"), 18444));
        assert!(!local.seen_by_outbound(ip("127.0.0.1"), ip("127.0.0.1"), 0), "not listening");
        assert!(local.seen_by_outbound(ip("127.0.0.1"), ip("127.0.0.1"), 18444));
        assert_eq!(local.best(), Some(a("127.0.0.1:18444")));
    }

    #[test]
    fn discovered_addresses_are_bounded() {
        let mut table = LocalAddresses::new(&[], true, false);
        for i in 0..100u8 {
            table.seen_by_outbound(IpAddr::from([8, 8, 1, i]), ip("9.9.9.9"), 8333);
        }
        assert_eq!(table.list().len(), MAX_DISCOVERED);
    }
}
