//! One connection's protocol state (Core's `CNode` and `Peer` fields that
//! the handshake and relay negotiate), and the handshake rules: our
//! `version` as Core sends it, and what we accept of theirs.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bitcoin::p2p::address::Address;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::ServiceFlags;
use bitcoin::{BlockHash, Wtxid};

use super::addrman::MAX_ADDR_TO_SEND;
use super::addrrelay::{AddrTokenBucket, ADDR_KNOWN_LIMIT};
use super::misbehavior::Score;
use super::sync::PeerId;

/// The protocol version we speak (Core 0.21+: `wtxidrelay`).
pub const PROTOCOL_VERSION: u32 = 70016;
/// Core's `MIN_PEER_PROTO_VERSION`.
pub const MIN_PEER_PROTO_VERSION: u32 = 31800;
/// Core's `SENDHEADERS_VERSION`.
pub const SENDHEADERS_VERSION: u32 = 70012;
/// Core's `WTXID_RELAY_VERSION`.
pub const WTXID_RELAY_VERSION: u32 = 70016;
/// Our user agent (BIP 14).
pub const USER_AGENT: &str = concat!("/satpool:", env!("CARGO_PKG_VERSION"), "/");

/// Core's `NODE_NETWORK_LIMITED_ALLOW_CONN_BLOCKS`: while our tip is at
/// most this many block intervals old, an automatic outbound peer that keeps
/// only recent blocks (NETWORK_LIMITED without NETWORK) is good enough.
pub const NODE_NETWORK_LIMITED_ALLOW_CONN_BLOCKS: i64 = 144;

/// The services we offer, as Core sets them (`g_local_services`): WITNESS and
/// NETWORK_LIMITED always (Core signals LIMITED on full nodes too, so that
/// peers that need only recent blocks find them among the limited ones), and
/// NETWORK only when every block is kept: a pruned node cannot serve the
/// whole chain, so it must not claim to.
pub fn local_services(pruned: bool) -> ServiceFlags {
    let services = ServiceFlags::WITNESS | ServiceFlags::NETWORK_LIMITED;
    if pruned {
        services
    } else {
        services | ServiceFlags::NETWORK
    }
}

/// Core's `IsLimitedPeer`: it serves only the last
/// [`super::sync::NODE_NETWORK_LIMITED_MIN_BLOCKS`] blocks.
pub fn is_limited(services: ServiceFlags) -> bool {
    !services.has(ServiceFlags::NETWORK) && services.has(ServiceFlags::NETWORK_LIMITED)
}

/// Core's `GetDesirableServiceFlags`: what an automatic outbound peer must
/// offer, given its services and how many block intervals old our tip is. A
/// limited peer will do near the tip; further behind, only a full one.
pub fn desirable_services(theirs: ServiceFlags, tip_age_blocks: i64) -> ServiceFlags {
    if theirs.has(ServiceFlags::NETWORK_LIMITED) && tip_age_blocks < NODE_NETWORK_LIMITED_ALLOW_CONN_BLOCKS {
        ServiceFlags::NETWORK_LIMITED | ServiceFlags::WITNESS
    } else {
        ServiceFlags::NETWORK | ServiceFlags::WITNESS
    }
}

/// Core's names of service bits (`getpeerinfo`'s `servicesnames`), lowest bit
/// first; bits Core has no name for print as `UNKNOWN[2^n]`, as Core prints
/// them (GETUTXO, bit 1, is one of those since Core dropped it).
pub fn service_names(services: ServiceFlags) -> Vec<String> {
    let bits = services.to_u64();
    (0..64)
        .filter(|bit| bits & (1u64 << bit) != 0)
        .map(|bit| match bit {
            0 => "NETWORK".to_owned(),
            2 => "BLOOM".to_owned(),
            3 => "WITNESS".to_owned(),
            6 => "COMPACT_FILTERS".to_owned(),
            10 => "NETWORK_LIMITED".to_owned(),
            11 => "P2P_V2".to_owned(),
            other => format!("UNKNOWN[2^{other}]"),
        })
        .collect()
}

/// How a connection came about (`getpeerinfo`'s `connection_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionType {
    /// They connected to us.
    Inbound,
    /// We chose them from the address book.
    OutboundFullRelay,
    /// `--connect`, `--addnode` or the `addnode` RPC.
    Manual,
}

impl ConnectionType {
    /// Core's name.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionType::Inbound => "inbound",
            ConnectionType::OutboundFullRelay => "outbound-full-relay",
            ConnectionType::Manual => "manual",
        }
    }
}

/// Our `version`, as Core builds it (`PushNodeVersion`): their address with
/// no services, ours empty, our services, height and relay wish.
///
/// Unlike Core, which leaves `addr_recv` empty when the peer's address is not
/// routable, we always fill it in: on loopback and private networks (regtest,
/// devnet, a LAN) it is what lets the peer learn where it can be reached.
pub fn version_message(
    their_addr: SocketAddr,
    nonce: u64,
    start_height: i32,
    now: i64,
    services: ServiceFlags,
) -> VersionMessage {
    let empty = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut msg = VersionMessage::new(
        services,
        now,
        Address::new(&their_addr, ServiceFlags::NONE),
        Address::new(&empty, services),
        nonce,
        USER_AGENT.to_owned(),
        start_height,
    );
    msg.version = PROTOCOL_VERSION;
    msg.relay = true;
    msg
}

/// Why a peer's `version` ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer is us (its nonce is one of ours).
    #[error("connected to self")]
    SelfConnection,
    /// Too old a protocol.
    #[error("peer uses protocol version {0}, below the minimum {MIN_PEER_PROTO_VERSION}")]
    TooOld(u32),
    /// An automatic outbound peer without the services we need from it.
    #[error("peer does not offer the expected services ({offered:08x} offered, {expected:08x} expected)")]
    MissingServices {
        /// What it offers.
        offered: u64,
        /// What we need.
        expected: u64,
    },
}

/// Core's checks of a received `version`. Only automatic outbound peers must
/// offer `desirable` services (Core's `ExpectServicesFromConn`): the operator
/// chose manual peers, and inbound ones chose us.
pub fn check_version(
    msg: &VersionMessage,
    conn_type: ConnectionType,
    our_nonces: &HashSet<u64>,
    desirable: ServiceFlags,
) -> Result<(), HandshakeError> {
    if conn_type == ConnectionType::Inbound && our_nonces.contains(&msg.nonce) {
        return Err(HandshakeError::SelfConnection);
    }
    if msg.version < MIN_PEER_PROTO_VERSION {
        return Err(HandshakeError::TooOld(msg.version));
    }
    if conn_type == ConnectionType::OutboundFullRelay && !msg.services.has(desirable) {
        return Err(HandshakeError::MissingServices { offered: msg.services.to_u64(), expected: desirable.to_u64() });
    }
    Ok(())
}

/// Counters the connection's task updates and the RPCs read.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Bytes sent.
    pub bytes_sent: AtomicU64,
    /// Bytes received.
    pub bytes_recv: AtomicU64,
    /// Unix time of the last send.
    pub last_send: AtomicI64,
    /// Unix time of the last receive.
    pub last_recv: AtomicI64,
}

impl PeerStats {
    /// Counts `n` bytes sent at `now`.
    pub fn sent(&self, n: usize, now: i64) {
        self.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
        self.last_send.store(now, Ordering::Relaxed);
    }

    /// Counts `n` bytes received at `now`.
    pub fn received(&self, n: usize, now: i64) {
        self.bytes_recv.fetch_add(n as u64, Ordering::Relaxed);
        self.last_recv.store(now, Ordering::Relaxed);
    }
}

/// Core's `MAX_PEER_TX_ANNOUNCEMENTS`-like bound on what we remember a peer knows.
pub const KNOWN_INVENTORY_LIMIT: usize = 50_000;

/// A set that forgets its oldest entries past a limit (Core's rolling bloom filter).
#[derive(Debug, Clone)]
pub struct RollingSet<T: std::hash::Hash + Eq + Copy> {
    set: HashSet<T>,
    order: VecDeque<T>,
    limit: usize,
}

impl<T: std::hash::Hash + Eq + Copy> Default for RollingSet<T> {
    fn default() -> Self {
        RollingSet::with_limit(KNOWN_INVENTORY_LIMIT)
    }
}

impl<T: std::hash::Hash + Eq + Copy> RollingSet<T> {
    /// An empty set that remembers at most `limit` items.
    pub fn with_limit(limit: usize) -> Self {
        RollingSet { set: HashSet::new(), order: VecDeque::new(), limit }
    }

    /// Adds `item`; whether it was new.
    pub fn insert(&mut self, item: T) -> bool {
        if !self.set.insert(item) {
            return false;
        }
        self.order.push_back(item);
        if self.order.len() > self.limit {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Whether `item` is remembered.
    pub fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }
}

/// One connected peer, as the message processor sees it.
#[derive(Debug)]
pub struct Peer {
    /// Its number.
    pub id: PeerId,
    /// Its address.
    pub addr: SocketAddr,
    /// Our end of the connection.
    pub local_addr: Option<SocketAddr>,
    /// How it came about.
    pub conn_type: ConnectionType,
    /// Frames to write.
    pub outbox: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    /// Byte counters.
    pub stats: Arc<PeerStats>,
    /// When it connected, Unix seconds.
    pub conn_time: i64,
    /// When it connected.
    pub connected_at: Instant,
    /// Our `version` nonce for it.
    pub our_nonce: u64,
    /// Its `version`.
    pub version: Option<VersionMessage>,
    /// Whether it sent `verack`.
    pub verack: bool,
    /// It asked for transaction announcements by wtxid.
    pub wtxid_relay: bool,
    /// It asked for `addrv2`.
    pub addrv2: bool,
    /// It asked for block announcements by `headers`.
    pub send_headers: bool,
    /// It speaks compact blocks version 2.
    pub compact_v2: bool,
    /// It asked us to push compact blocks unasked (we are its high-bandwidth peer).
    pub hb_to: bool,
    /// We asked it to push compact blocks unasked.
    pub hb_from: bool,
    /// Its minimum fee rate for transaction announcements, sat/kvB.
    pub fee_filter: i64,
    /// Our outstanding ping: nonce and when.
    pub ping: Option<(u64, Instant)>,
    /// When we last sent a ping.
    pub last_ping: Instant,
    /// Last round trip, seconds.
    pub ping_time: Option<f64>,
    /// Best round trip, seconds.
    pub min_ping: Option<f64>,
    /// The best block we know it has.
    pub best_known: Option<BlockHash>,
    /// The last block we announced to it or it to us.
    pub last_announced: Option<BlockHash>,
    /// We sent it a `getheaders` and await the answer.
    pub headers_pending: Option<Instant>,
    /// It got its first `getheaders` from us.
    pub sent_getheaders: bool,
    /// `headers` in a row that did not connect.
    pub unconnecting_headers: u32,
    /// Its misbehaviour.
    pub score: Score,
    /// Transactions it knows of (it told us, or we told it).
    pub known_txs: RollingSet<Wtxid>,
    /// Transactions to announce at its next trickle.
    pub tx_queue: Vec<Wtxid>,
    /// When its next trickle is due.
    pub next_inv: Instant,
    /// It answered our `getaddr`, or asked us: each once per connection.
    pub getaddr_answered: bool,
    /// Unix time of the last new block and transaction it gave us.
    pub last_block: i64,
    /// See `last_block`.
    pub last_tx: i64,
    /// Addresses it told us of that we processed (Core's `m_addr_processed`).
    pub addr_processed: u64,
    /// Addresses it told us of that the rate limit dropped (Core's `m_addr_rate_limited`).
    pub addr_rate_limited: u64,
    /// Its allowance of addresses (Core's `m_addr_token_bucket`).
    pub addr_tokens: AddrTokenBucket,
    /// We sent it `getaddr` and its answer has not come yet (Core's
    /// `m_getaddr_sent`): the addresses of that answer are not relayed.
    pub getaddr_sent: bool,
    /// Addresses it knows: it told us, or we told it (Core's `m_addr_known`).
    pub known_addrs: RollingSet<SocketAddr>,
    /// Other nodes' addresses to send it at its next flush (Core's `m_addrs_to_send`).
    pub addr_queue: Vec<(SocketAddr, u64, u32)>,
    /// When its address queue is next flushed (Core's `m_next_addr_send`).
    pub next_addr_send: Instant,
    /// We send it addresses (Core's `m_addr_relay_enabled`): outbound peers
    /// from the handshake, inbound ones once they send `addr`, `addrv2` or
    /// `getaddr` (light clients and block-only peers never do).
    pub addr_relay: bool,
    /// When our own address is next announced to it; `None` until the first
    /// announcement, which is due at once.
    pub next_local_addr_send: Option<Instant>,
}

impl Peer {
    /// A peer that just connected.
    pub fn new(
        id: PeerId,
        addr: SocketAddr,
        conn_type: ConnectionType,
        outbox: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
        stats: Arc<PeerStats>,
        our_nonce: u64,
        now: i64,
    ) -> Peer {
        let instant = Instant::now();
        Peer {
            id,
            addr,
            local_addr: None,
            conn_type,
            outbox,
            stats,
            conn_time: now,
            connected_at: instant,
            our_nonce,
            version: None,
            verack: false,
            wtxid_relay: false,
            addrv2: false,
            send_headers: false,
            compact_v2: false,
            hb_to: false,
            hb_from: false,
            fee_filter: 0,
            ping: None,
            last_ping: instant,
            ping_time: None,
            min_ping: None,
            best_known: None,
            last_announced: None,
            headers_pending: None,
            sent_getheaders: false,
            unconnecting_headers: 0,
            score: Score::default(),
            known_txs: RollingSet::default(),
            tx_queue: Vec::new(),
            next_inv: instant,
            getaddr_answered: false,
            last_block: 0,
            last_tx: 0,
            addr_processed: 0,
            addr_rate_limited: 0,
            addr_tokens: AddrTokenBucket::new(instant),
            getaddr_sent: false,
            known_addrs: RollingSet::with_limit(ADDR_KNOWN_LIMIT),
            addr_queue: Vec::new(),
            next_addr_send: instant,
            addr_relay: false,
            next_local_addr_send: None,
        }
    }

    /// Core's `PushAddress`: queues another node's address for the next
    /// flush, unless it already knows it; a full queue has a random entry
    /// (`random` picks it) replaced.
    pub fn push_address(&mut self, entry: (SocketAddr, u64, u32), random: usize) {
        if self.known_addrs.contains(&entry.0) {
            return;
        }
        if self.addr_queue.len() >= MAX_ADDR_TO_SEND {
            let i = random % self.addr_queue.len();
            self.addr_queue[i] = entry;
        } else {
            self.addr_queue.push(entry);
        }
    }

    /// Whether the handshake is complete.
    pub fn ready(&self) -> bool {
        self.version.is_some() && self.verack
    }

    /// Whether it was our choice to connect.
    pub fn inbound(&self) -> bool {
        self.conn_type == ConnectionType::Inbound
    }

    /// Its services.
    pub fn services(&self) -> ServiceFlags {
        self.version.as_ref().map_or(ServiceFlags::NONE, |v| v.services)
    }

    /// Whether it wants transactions (its `version`'s relay flag).
    pub fn relays_txs(&self) -> bool {
        self.version.as_ref().is_some_and(|v| v.relay)
    }

    /// Whether to send it witness data.
    pub fn wants_witness(&self) -> bool {
        self.services().has(ServiceFlags::WITNESS)
    }

    /// Queues a frame; false when the connection is gone.
    pub fn send(&self, frame: Vec<u8>) -> bool {
        self.outbox.send(frame).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: ServiceFlags = ServiceFlags::NETWORK;

    #[test]
    fn our_version_is_cores_shape() {
        let v = version_message("127.0.0.1:18444".parse().unwrap(), 5, 120, 1_700_000_000, local_services(false));
        assert_eq!(v.version, 70016);
        assert_eq!(v.services.to_u64(), 0x409);
        assert_eq!(v.receiver.services, ServiceFlags::NONE);
        assert_eq!(v.receiver.port, 18444);
        assert_eq!(v.user_agent, "/satpool:0.1.0/");
        assert_eq!(v.start_height, 120);
        assert!(v.relay);
        assert_eq!(service_names(v.services), vec!["NETWORK", "WITNESS", "NETWORK_LIMITED"]);
    }

    #[test]
    fn services_and_their_names_are_cores() {
        let cases: [(&str, ServiceFlags, u64, &[&str]); 4] = [
            ("full node", local_services(false), 0x409, &["NETWORK", "WITNESS", "NETWORK_LIMITED"]),
            ("pruned node", local_services(true), 0x408, &["WITNESS", "NETWORK_LIMITED"]),
            ("unknown bits", ServiceFlags::from(0b10 | 1 << 24), 0x0100_0002, &["UNKNOWN[2^1]", "UNKNOWN[2^24]"]),
            (
                "every named bit",
                ServiceFlags::from(1 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 10 | 1 << 11),
                0xc4d,
                &["NETWORK", "BLOOM", "WITNESS", "COMPACT_FILTERS", "NETWORK_LIMITED", "P2P_V2"],
            ),
        ];
        for (name, services, bits, names) in cases {
            assert_eq!(services.to_u64(), bits, "{name}");
            assert_eq!(service_names(services), names, "{name}");
        }
        assert!(is_limited(local_services(true)));
        assert!(!is_limited(local_services(false)));
        assert!(!is_limited(ServiceFlags::WITNESS), "serves nothing, but is not limited either");
    }

    #[test]
    fn limited_peers_are_desirable_only_near_the_tip() {
        let limited = local_services(true);
        assert_eq!(desirable_services(limited, 0), ServiceFlags::NETWORK_LIMITED | ServiceFlags::WITNESS);
        assert_eq!(desirable_services(limited, 143), ServiceFlags::NETWORK_LIMITED | ServiceFlags::WITNESS);
        assert_eq!(desirable_services(limited, 144), FULL | ServiceFlags::WITNESS);
        assert_eq!(desirable_services(local_services(false), 0), ServiceFlags::NETWORK_LIMITED | ServiceFlags::WITNESS);
        assert_eq!(desirable_services(FULL | ServiceFlags::WITNESS, 0), FULL | ServiceFlags::WITNESS);
    }

    #[test]
    fn versions_are_checked_like_core() {
        use ConnectionType::{Inbound, Manual, OutboundFullRelay};
        let desirable = desirable_services(FULL, 0);
        let good = version_message("127.0.0.1:1".parse().unwrap(), 9, 0, 0, local_services(false));
        let nonces: HashSet<u64> = [9].into();
        assert_eq!(check_version(&good, Inbound, &nonces, desirable), Err(HandshakeError::SelfConnection));
        assert_eq!(check_version(&good, OutboundFullRelay, &nonces, desirable), Ok(()));
        let mut old = good.clone();
        old.version = 200;
        assert_eq!(check_version(&old, Manual, &HashSet::new(), desirable), Err(HandshakeError::TooOld(200)));
        let mut spv = good.clone();
        spv.services = ServiceFlags::NONE;
        assert!(check_version(&spv, Inbound, &HashSet::new(), desirable).is_ok(), "inbound light clients are fine");
        assert!(check_version(&spv, Manual, &HashSet::new(), desirable).is_ok(), "the operator chose it");
        assert_eq!(
            check_version(&spv, OutboundFullRelay, &HashSet::new(), desirable),
            Err(HandshakeError::MissingServices { offered: 0, expected: 0x9 })
        );
        let mut pruned = good.clone();
        pruned.services = local_services(true);
        let far_behind = desirable_services(pruned.services, 1000);
        assert!(check_version(&pruned, OutboundFullRelay, &HashSet::new(), far_behind).is_err());
        let near_tip = desirable_services(pruned.services, 1);
        assert!(check_version(&pruned, OutboundFullRelay, &HashSet::new(), near_tip).is_ok());
    }

    #[test]
    fn rolling_sets_forget_the_oldest() {
        let mut set = RollingSet::default();
        for i in 0..(KNOWN_INVENTORY_LIMIT as u64 + 1) {
            assert!(set.insert(i));
        }
        assert!(!set.contains(&0));
        assert!(set.contains(&1));
        assert!(!set.insert(1));
    }
}
