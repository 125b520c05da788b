//! The message processor (Core's `PeerManager`): what the node does with
//! each message from each peer, and on each tick of the clock — the
//! handshake, headers-first sync, block download, relay of blocks and
//! transactions, compact blocks, orphans, addresses, misbehaviour and bans.
//!
//! It is synchronous and does no I/O: it reads and changes the node through
//! [`SharedNode::with`] (so no lock is ever held across an `.await`) and
//! queues frames on each peer's outbox; the connection manager around it
//! owns the sockets and calls in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::bip152::BlockTransactions;
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::p2p::address::{AddrV2, AddrV2Message, Address};
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::{GetHeadersMessage, Inventory};
use bitcoin::p2p::message_compact_blocks::{BlockTxn, CmpctBlock, GetBlockTxn, SendCmpct};
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic, ServiceFlags};
use bitcoin::secp256k1::rand::{self, Rng};
use bitcoin::{Block, BlockHash, Transaction, Txid, Wtxid};
use serde::Serialize;

use super::addrman::{self, AddrMan};
use super::addrrelay;
use super::banlist::{self, BanEntry, BanList, Subnet};
use super::compact::{self, PartialBlock};
use super::localaddr::{self, LocalAddress, LocalAddresses};
use super::misbehavior::{Misbehavior, Verdict, DEFAULT_BAN_SECONDS};
use super::orphans::Orphanage;
use super::peer::{self, ConnectionType, Peer, PeerStats};
use super::sync::{self, BlockDownload, HeaderChain, PeerId};
use super::wire::{self, WireError};
use crate::chain::{BlockOutcome, ChainError, IndexEntry};
use crate::mempool::{MempoolReject, RejectClass};
use crate::node::SharedNode;

/// Core's `PING_INTERVAL`.
const PING_INTERVAL: Duration = Duration::from_secs(2 * 60);
/// Core's `TIMEOUT_INTERVAL`: a ping unanswered, or silence, for this long ends the connection.
const TIMEOUT_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// Time to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for a peer to answer `getheaders` before another is asked.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(120);
/// Core's `INBOUND_INVENTORY_BROADCAST_INTERVAL`.
const INBOUND_TRICKLE: Duration = Duration::from_secs(5);
/// Core's `OUTBOUND_INVENTORY_BROADCAST_INTERVAL`.
const OUTBOUND_TRICKLE: Duration = Duration::from_secs(2);
/// Core's `INVENTORY_BROADCAST_MAX`-like cap per trickle.
const MAX_INV_PER_TRICKLE: usize = 1000;
/// Core's `MAX_INV_SZ`.
const MAX_INV_SIZE: usize = 50_000;
/// Core's `MAX_ADDR_TO_SEND` bound on a received `addr`.
const MAX_ADDR_RECEIVED: usize = 1000;
/// Core's `MAX_BLOCKS_TO_ANNOUNCE`: more new blocks are announced by `inv`.
const MAX_BLOCKS_TO_ANNOUNCE: usize = 8;
/// Time a requested transaction may take before another peer may be asked.
const TX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Core's `MAX_OUTBOUND_FULL_RELAY_CONNECTIONS`.
pub const MAX_OUTBOUND_FULL_RELAY: usize = 8;
/// Time between connection attempts to one persistent target.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Time between saves of the address book and the ban list.
const SAVE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Time between progress lines while blocks are being downloaded.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// `getblocks` answers at most this many blocks.
const MAX_GETBLOCKS_RESULTS: usize = 500;

/// The processor's settings.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// The network's message start.
    pub magic: Magic,
    /// Data directory (for `peers.json` and `banlist.json`).
    pub datadir: PathBuf,
    /// `--connect`: only these peers (and no automatic connections).
    pub connect: Vec<String>,
    /// Whether automatic outbound connections are made (no `--connect`).
    pub auto_connect: bool,
    /// `--addnode`.
    pub addnode: Vec<String>,
    /// Inbound connections allowed.
    pub max_inbound: usize,
    /// Outbound full-relay connections made automatically.
    pub max_outbound: usize,
    /// Keep loopback and private addresses in the address book.
    pub allow_local_addrs: bool,
    /// Seconds a misbehaving peer stays banned.
    pub ban_seconds: i64,
    /// The services we offer (NETWORK only when not pruned).
    pub local_services: ServiceFlags,
    /// The port we accept connections on; `None` when not listening, and
    /// then our address is never announced.
    pub listen_port: Option<u16>,
    /// `--externalip`: our addresses as the operator gives them.
    pub external: Vec<SocketAddr>,
    /// Average time between flushes of each peer's queue of relayed
    /// addresses (Core's `AVG_ADDRESS_BROADCAST_INTERVAL`, 30 s; shorter
    /// on regtest so that tests need not wait).
    pub addr_broadcast_interval: Duration,
}

/// `addnode`'s command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddNodeOp {
    /// Keep connected to it.
    Add,
    /// Stop keeping connected to it.
    Remove,
    /// Connect once.
    OneTry,
}

/// Why a network RPC failed, with Core's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// `RPC_CLIENT_NODE_ALREADY_ADDED` (-23).
    #[error("Error: Node already added")]
    AlreadyAdded,
    /// `RPC_CLIENT_NODE_NOT_ADDED` (-24).
    #[error("Error: Node could not be removed. It has not been added previously.")]
    NotAdded,
    /// `RPC_CLIENT_NODE_NOT_CONNECTED` (-29).
    #[error("Node not found in connected nodes")]
    NotConnected,
    /// `RPC_CLIENT_INVALID_IP_OR_SUBNET` (-30).
    #[error("Error: Invalid IP/Subnet")]
    InvalidSubnet,
    /// `RPC_CLIENT_NODE_ALREADY_ADDED` (-23) for `setban add`.
    #[error("Error: IP/Subnet already banned")]
    AlreadyBanned,
    /// `RPC_CLIENT_INVALID_IP_OR_SUBNET` (-30) for `setban remove`.
    #[error("Error: Unban failed. Requested address/subnet was not previously manually banned.")]
    NotBanned,
    /// The network thread is gone (shutdown).
    #[error("Error: Peer-to-peer functionality missing or disabled")]
    Disabled,
}

/// One row of `getpeerinfo`, with Core's field names.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Peer id.
    pub id: PeerId,
    /// Its address.
    pub addr: String,
    /// Our end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addrbind: Option<String>,
    /// `ipv4` or `ipv6`.
    pub network: &'static str,
    /// Service bits, 16 hex digits.
    pub services: String,
    /// Their names.
    pub servicesnames: Vec<String>,
    /// Whether it relays transactions to us.
    pub relaytxes: bool,
    /// Unix time of the last send.
    pub lastsend: i64,
    /// Unix time of the last receive.
    pub lastrecv: i64,
    /// Unix time of the last new transaction it gave us.
    pub last_transaction: i64,
    /// Unix time of the last new block it gave us.
    pub last_block: i64,
    /// Bytes sent.
    pub bytessent: u64,
    /// Bytes received.
    pub bytesrecv: u64,
    /// Unix time of connection.
    pub conntime: i64,
    /// Their clock minus ours, seconds.
    pub timeoffset: i64,
    /// Last ping round trip, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pingtime: Option<f64>,
    /// Best ping round trip, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minping: Option<f64>,
    /// Seconds our outstanding ping has waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pingwait: Option<f64>,
    /// Their protocol version.
    pub version: u32,
    /// Their user agent.
    pub subver: String,
    /// Whether they connected to us.
    pub inbound: bool,
    /// We push compact blocks to it.
    pub bip152_hb_to: bool,
    /// It pushes compact blocks to us.
    pub bip152_hb_from: bool,
    /// Their height at connection.
    pub startingheight: i32,
    /// Core's headers presync height (not used: -1).
    pub presynced_headers: i64,
    /// Height of the best header we know it has, or -1.
    pub synced_headers: i64,
    /// Height of the best block we know it has, or -1.
    pub synced_blocks: i64,
    /// Heights we asked it for.
    pub inflight: Vec<u32>,
    /// Whether we relay addresses to it.
    pub addr_relay_enabled: bool,
    /// Addresses it told us of.
    pub addr_processed: u64,
    /// Addresses dropped for rate limits.
    pub addr_rate_limited: u64,
    /// Permissions (none).
    pub permissions: Vec<String>,
    /// Its fee filter, BTC/kvB.
    pub minfeefilter: f64,
    /// Misbehaviour points so far.
    pub misbehavior_score: u32,
    /// How the connection came about.
    pub connection_type: &'static str,
    /// Always `v1`.
    pub transport_protocol_type: &'static str,
    /// Empty for v1.
    pub session_id: String,
}

/// One row of `listbanned`.
#[derive(Debug, Clone, Serialize)]
pub struct BannedInfo {
    /// The subnet.
    pub address: String,
    /// Unix time the ban was made.
    pub ban_created: i64,
    /// Unix time it ends.
    pub banned_until: i64,
    /// Its length, seconds.
    pub ban_duration: i64,
    /// Seconds left.
    pub time_remaining: i64,
    /// Why.
    pub ban_reason: String,
}

/// One row of `getnodeaddresses`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeAddressInfo {
    /// Unix time it was last said to be online.
    pub time: i64,
    /// Its service bits.
    pub services: u64,
    /// The IP address.
    pub address: String,
    /// The port.
    pub port: u16,
    /// `ipv4` or `ipv6`.
    pub network: &'static str,
}

/// Connection counts for `getnetworkinfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Inbound.
    pub inbound: usize,
    /// Outbound (any kind).
    pub outbound: usize,
}

/// A connection the processor wants made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// `host:port` or `ip:port`.
    pub target: String,
    /// What kind.
    pub conn_type: ConnectionType,
}

#[derive(Debug)]
struct Target {
    next_try: Instant,
}

/// The processor.
pub struct Processor {
    node: Arc<SharedNode>,
    config: ProcessorConfig,
    peers: HashMap<PeerId, Peer>,
    /// Target strings of live outbound peers, by peer.
    peer_targets: HashMap<PeerId, String>,
    addrman: AddrMan,
    /// Key of the choice of peers an address is relayed to (Core's
    /// `RANDOMIZER_ID_ADDRESS_RELAY`).
    addr_relay_salt: u64,
    local_addrs: LocalAddresses,
    banlist: BanList,
    download: BlockDownload,
    header_chain: HeaderChain,
    best_header: BlockHash,
    sync_peer: Option<PeerId>,
    orphans: Orphanage,
    recent_rejects: HashSet<Wtxid>,
    tx_requests: HashMap<[u8; 32], (PeerId, Instant)>,
    /// What the mempool held at the last look: wtxid -> (txid, fee rate sat/kvB).
    mempool_known: HashMap<Wtxid, (Txid, u64)>,
    mempool_seq: Option<u64>,
    last_tip: BlockHash,
    partials: HashMap<BlockHash, (PeerId, PartialBlock)>,
    hb_peers: VecDeque<PeerId>,
    our_nonces: HashSet<u64>,
    targets: HashMap<String, Target>,
    added: Vec<String>,
    pending: HashSet<String>,
    connect_requests: Vec<ConnectRequest>,
    last_save: Instant,
    progress: Progress,
}

struct Progress {
    last_log: Instant,
    last_height: u32,
    syncing: bool,
}

/// What a batch of headers did.
enum HeadersOutcome {
    Unconnecting,
    Accepted(Option<BlockHash>),
    Invalid(ChainError),
}

impl Processor {
    /// A processor over `node`, loading the address book and ban list from the datadir.
    pub fn new(node: Arc<SharedNode>, config: ProcessorConfig) -> Processor {
        let addrman =
            AddrMan::load(&config.datadir.join(addrman::FILE_NAME), config.allow_local_addrs).unwrap_or_else(|e| {
                tracing::warn!("address book not loaded, starting empty: {e}");
                AddrMan::new(config.allow_local_addrs)
            });
        let banlist = BanList::load(&config.datadir.join(banlist::FILE_NAME)).unwrap_or_else(|e| {
            tracing::warn!("ban list not loaded, starting empty: {e}");
            BanList::default()
        });
        tracing::info!(addresses = addrman.len(), bans = banlist.entries().count(), "p2p state loaded");
        let (best_header, header_chain, last_tip) = node.with(|n| {
            let index = n.chain.index();
            let best = index
                .entries()
                .filter(|e| !e.failed())
                .max_by(|a, b| a.chainwork.cmp(&b.chainwork).then(b.sequence.cmp(&a.sequence)))
                .unwrap_or_else(|| n.chain.tip())
                .clone();
            let mut chain = HeaderChain::default();
            chain.set_tip(index, &best);
            (best.hash, chain, n.chain.tip().hash)
        });
        let local_addrs = LocalAddresses::new(&config.external, config.listen_port.is_some(), config.allow_local_addrs);
        let now = Instant::now();
        let mut targets = HashMap::new();
        for t in config.connect.iter().chain(&config.addnode) {
            targets.insert(t.clone(), Target { next_try: now });
        }
        Processor {
            node,
            config,
            peers: HashMap::new(),
            peer_targets: HashMap::new(),
            addrman,
            addr_relay_salt: rand::thread_rng().gen(),
            local_addrs,
            banlist,
            download: BlockDownload::default(),
            header_chain,
            best_header,
            sync_peer: None,
            orphans: Orphanage::default(),
            recent_rejects: HashSet::new(),
            tx_requests: HashMap::new(),
            mempool_known: HashMap::new(),
            mempool_seq: None,
            last_tip,
            partials: HashMap::new(),
            hb_peers: VecDeque::new(),
            our_nonces: HashSet::new(),
            targets,
            added: Vec::new(),
            pending: HashSet::new(),
            connect_requests: Vec::new(),
            last_save: now,
            progress: Progress { last_log: now, last_height: 0, syncing: false },
        }
    }

    fn unix_now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }

    fn frame(&self, msg: NetworkMessage) -> Vec<u8> {
        wire::encode_message(self.config.magic, msg)
    }

    fn send(&self, id: PeerId, msg: NetworkMessage) {
        if let Some(peer) = self.peers.get(&id) {
            tracing::trace!(peer = id, cmd = msg.cmd(), "send");
            peer.send(self.frame(msg));
        }
    }

    // ----- connections -----------------------------------------------------

    /// Whether an inbound connection from `addr` may be accepted.
    pub fn accept_inbound(&self, addr: SocketAddr) -> bool {
        if self.banlist.is_banned(addr.ip(), Self::unix_now()) {
            tracing::info!(%addr, "refusing inbound connection from banned address");
            return false;
        }
        let inbound = self.peers.values().filter(|p| p.inbound()).count();
        if inbound >= self.config.max_inbound {
            tracing::info!(%addr, inbound, "refusing inbound connection: no slot");
            return false;
        }
        true
    }

    /// A connection is up: registers the peer and, if outbound, sends our `version`.
    pub fn on_connected(
        &mut self,
        id: PeerId,
        addr: SocketAddr,
        local_addr: Option<SocketAddr>,
        conn_type: ConnectionType,
        target: Option<String>,
        outbox: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
        stats: Arc<PeerStats>,
    ) {
        let nonce: u64 = rand::thread_rng().gen();
        self.our_nonces.insert(nonce);
        let mut peer = Peer::new(id, addr, conn_type, outbox, stats, nonce, Self::unix_now());
        peer.local_addr = local_addr;
        if let Some(t) = target {
            self.pending.remove(&t);
            self.peer_targets.insert(id, t);
        }
        tracing::debug!(peer = id, %addr, kind = conn_type.name(), "connection open");
        self.peers.insert(id, peer);
        if conn_type != ConnectionType::Inbound {
            self.send_version(id);
        }
    }

    /// An outbound attempt to `target` failed.
    pub fn on_connect_failed(&mut self, target: &str, addr: Option<SocketAddr>) {
        self.pending.remove(target);
        if let Some(addr) = addr {
            self.addrman.attempt(&addr, Self::unix_now());
        }
        if let Some(t) = self.targets.get_mut(target) {
            t.next_try = Instant::now() + RETRY_INTERVAL;
        }
    }

    fn send_version(&mut self, id: PeerId) {
        let height = self.node.lock().chain.tip().height as i32;
        let Some(peer) = self.peers.get(&id) else { return };
        let msg =
            peer::version_message(peer.addr, peer.our_nonce, height, Self::unix_now(), self.config.local_services);
        self.send(id, NetworkMessage::Version(msg));
    }

    /// The connection closed (either side).
    pub fn on_closed(&mut self, id: PeerId) {
        if self.peers.contains_key(&id) {
            self.remove_peer(id, "connection closed");
        }
    }

    /// Drops a peer: its outbox closes, which ends its connection task.
    fn disconnect(&mut self, id: PeerId, why: &str) {
        if self.peers.contains_key(&id) {
            tracing::info!(peer = id, "disconnecting peer: {why}");
            self.remove_peer(id, why);
        }
    }

    fn remove_peer(&mut self, id: PeerId, why: &str) {
        let Some(peer) = self.peers.remove(&id) else { return };
        tracing::debug!(peer = id, addr = %peer.addr, "peer gone: {why}");
        self.our_nonces.remove(&peer.our_nonce);
        let freed = self.download.peer_gone(id);
        self.partials.retain(|_, (p, _)| *p != id);
        self.orphans.erase_for_peer(id);
        self.tx_requests.retain(|_, (p, _)| *p != id);
        self.hb_peers.retain(|p| *p != id);
        if self.sync_peer == Some(id) {
            self.sync_peer = None;
        }
        if let Some(target) = self.peer_targets.remove(&id) {
            if let Some(t) = self.targets.get_mut(&target) {
                t.next_try = Instant::now() + RETRY_INTERVAL;
            }
        }
        if !freed.is_empty() {
            let ids: Vec<PeerId> = self.peers.keys().copied().collect();
            for other in ids {
                self.fetch_blocks(other);
            }
        }
    }

    /// Punishes a peer; at the threshold it is banned and disconnected.
    fn misbehaving(&mut self, id: PeerId, offence: Misbehavior, detail: &str) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let verdict = peer.score.add(offence);
        tracing::warn!(peer = id, addr = %peer.addr, score = peer.score.points(), "misbehaving: {}: {detail}", offence.reason());
        if verdict == Verdict::Ban {
            let ip = peer.addr.ip();
            let now = Self::unix_now();
            self.banlist.ban(Subnet::host(ip), now, now + self.config.ban_seconds, offence.reason());
            self.save_banlist();
            tracing::warn!(peer = id, %ip, "peer banned: {}", offence.reason());
            self.disconnect_matching(&Subnet::host(ip), offence.reason());
        }
    }

    fn disconnect_matching(&mut self, subnet: &Subnet, why: &str) {
        let ids: Vec<PeerId> = self.peers.values().filter(|p| subnet.contains(p.addr.ip())).map(|p| p.id).collect();
        for id in ids {
            self.disconnect(id, why);
        }
    }

    /// Bytes from a peer were not a message: garbage, oversized, corrupt.
    pub fn on_bad_frame(&mut self, id: PeerId, error: &WireError) {
        let offence = match error {
            WireError::WrongMagic { .. } | WireError::BadCommand(_) => Misbehavior::Garbage,
            WireError::Oversized { .. } => Misbehavior::Oversized,
            WireError::BadChecksum { .. } => Misbehavior::BadChecksum,
            WireError::Malformed { .. } => Misbehavior::Malformed,
        };
        self.misbehaving(id, offence, &error.to_string());
        // The stream cannot be trusted after a framing error.
        self.disconnect(id, "unreadable stream");
    }

    /// Connections to make now (drained by the connection manager).
    pub fn take_connect_requests(&mut self) -> Vec<ConnectRequest> {
        std::mem::take(&mut self.connect_requests)
    }

    fn is_connected_to(&self, target: &str) -> bool {
        self.peer_targets.values().any(|t| t == target) || self.peers.values().any(|p| p.addr.to_string() == target)
    }

    fn plan_connections(&mut self, now: Instant) {
        let wanted: Vec<String> = self
            .targets
            .iter()
            .filter(|(t, target)| target.next_try <= now && !self.pending.contains(*t) && !self.is_connected_to(t))
            .map(|(t, _)| t.clone())
            .collect();
        for target in wanted {
            if let Some(t) = self.targets.get_mut(&target) {
                t.next_try = now + RETRY_INTERVAL;
            }
            self.pending.insert(target.clone());
            self.connect_requests.push(ConnectRequest { target, conn_type: ConnectionType::Manual });
        }
        if !self.config.auto_connect {
            return;
        }
        let outbound = self.peers.values().filter(|p| p.conn_type == ConnectionType::OutboundFullRelay).count()
            + self.pending.iter().filter(|t| !self.targets.contains_key(*t)).count();
        if outbound >= self.config.max_outbound {
            return;
        }
        let unix = Self::unix_now();
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let salt: u64 = rand::thread_rng().gen();
        let choice = self.addrman.select(unix, salt, |a| {
            connected.contains(a) || self.pending.contains(&a.to_string()) || self.banlist.is_banned(a.ip(), unix)
        });
        if let Some(addr) = choice {
            self.addrman.attempt(&addr, unix);
            self.pending.insert(addr.to_string());
            self.connect_requests
                .push(ConnectRequest { target: addr.to_string(), conn_type: ConnectionType::OutboundFullRelay });
        }
    }

    // ----- messages ----------------------------------------------------------

    /// Handles one message from a peer.
    pub fn on_message(&mut self, id: PeerId, msg: NetworkMessage) {
        let Some(peer) = self.peers.get(&id) else { return };
        tracing::trace!(peer = id, cmd = msg.cmd(), "recv");
        if peer.version.is_none() {
            match msg {
                NetworkMessage::Version(v) => self.on_version(id, v),
                other => self.misbehaving(id, Misbehavior::OutOfOrder, &format!("{} before version", other.cmd())),
            }
            return;
        }
        if !peer.verack {
            match msg {
                NetworkMessage::Verack => self.on_verack(id),
                NetworkMessage::WtxidRelay => self.with_peer(id, |p| p.wtxid_relay = true),
                NetworkMessage::SendAddrV2 => self.with_peer(id, |p| p.addrv2 = true),
                NetworkMessage::Version(_) => self.misbehaving(id, Misbehavior::OutOfOrder, "second version"),
                _ => {} // Core ignores the rest before verack.
            }
            return;
        }
        match msg {
            NetworkMessage::Version(_) => self.misbehaving(id, Misbehavior::OutOfOrder, "second version"),
            NetworkMessage::Verack | NetworkMessage::WtxidRelay | NetworkMessage::SendAddrV2 => {}
            NetworkMessage::Ping(nonce) => self.send(id, NetworkMessage::Pong(nonce)),
            NetworkMessage::Pong(nonce) => self.on_pong(id, nonce),
            NetworkMessage::SendHeaders => self.with_peer(id, |p| p.send_headers = true),
            NetworkMessage::SendCmpct(SendCmpct { send_compact, version }) => {
                if version == compact::COMPACT_VERSION {
                    self.with_peer(id, |p| {
                        p.compact_v2 = true;
                        p.hb_to = send_compact;
                    });
                }
            }
            NetworkMessage::FeeFilter(rate) => self.with_peer(id, |p| p.fee_filter = rate),
            NetworkMessage::GetAddr => self.on_getaddr(id),
            NetworkMessage::Addr(list) => {
                let addrs: Vec<(SocketAddr, u64, i64)> = list
                    .iter()
                    .filter_map(|(t, a)| Some((a.socket_addr().ok()?, a.services.to_u64(), i64::from(*t))))
                    .collect();
                self.on_addr(id, list.len(), addrs);
            }
            NetworkMessage::AddrV2(list) => {
                let addrs: Vec<(SocketAddr, u64, i64)> = list
                    .iter()
                    .filter_map(|a| Some((a.socket_addr().ok()?, a.services.to_u64(), i64::from(a.time))))
                    .collect();
                self.on_addr(id, list.len(), addrs);
            }
            NetworkMessage::Inv(items) => self.on_inv(id, items),
            NetworkMessage::GetData(items) => self.on_getdata(id, items),
            NetworkMessage::NotFound(items) => self.on_notfound(id, items),
            NetworkMessage::GetHeaders(m) => self.on_getheaders(id, m),
            NetworkMessage::GetBlocks(m) => self.on_getblocks(id, m.locator_hashes, m.stop_hash),
            NetworkMessage::Headers(headers) => self.on_headers(id, headers),
            NetworkMessage::Block(block) => self.on_block(id, block, false),
            NetworkMessage::Tx(tx) => self.on_tx(id, tx),
            NetworkMessage::CmpctBlock(CmpctBlock { compact_block }) => self.on_cmpctblock(id, compact_block),
            NetworkMessage::GetBlockTxn(GetBlockTxn { txs_request }) => self.on_getblocktxn(id, txs_request),
            NetworkMessage::BlockTxn(BlockTxn { transactions }) => self.on_blocktxn(id, transactions),
            other => tracing::debug!(peer = id, cmd = other.cmd(), "ignored message"),
        }
    }

    fn with_peer(&mut self, id: PeerId, f: impl FnOnce(&mut Peer)) {
        if let Some(p) = self.peers.get_mut(&id) {
            f(p)
        }
    }

    fn on_version(&mut self, id: PeerId, version: VersionMessage) {
        let desirable = peer::desirable_services(version.services, self.tip_age_in_blocks());
        let Some(peer) = self.peers.get(&id) else { return };
        if let Err(e) = peer::check_version(&version, peer.conn_type, &self.our_nonces, desirable) {
            self.disconnect(id, &e.to_string());
            return;
        }
        let inbound = peer.inbound();
        self.learn_local_address(peer.addr, inbound, &version.receiver);
        let their_version = version.version;
        tracing::debug!(peer = id, version = their_version, agent = %version.user_agent, height = version.start_height, "version received");
        self.with_peer(id, |p| p.version = Some(version));
        if inbound {
            self.send_version(id);
        }
        if their_version >= peer::WTXID_RELAY_VERSION {
            self.send(id, NetworkMessage::WtxidRelay);
        }
        self.send(id, NetworkMessage::SendAddrV2);
        self.send(id, NetworkMessage::Verack);
    }

    fn on_verack(&mut self, id: PeerId) {
        let min_fee = self.node.lock().mempool.config().min_relay_fee.sat_per_kvb();
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.verack = true;
        let version = peer.version.as_ref().map_or(0, |v| v.version);
        let (addr, inbound, services, agent, height) = (
            peer.addr,
            peer.inbound(),
            peer.services(),
            peer.version.as_ref().map(|v| v.user_agent.clone()).unwrap_or_default(),
            peer.version.as_ref().map_or(0, |v| v.start_height),
        );
        tracing::info!(peer = id, %addr, inbound, %agent, height, "peer connected");
        if !inbound {
            // We ask it for addresses below, and so also send it ours; its
            // answer may fill a whole message and is not news to relay.
            peer.addr_relay = true;
            peer.getaddr_sent = true;
            peer.addr_tokens.expect_getaddr_answer();
            self.addrman.good(addr, services.to_u64(), Self::unix_now());
        }
        if version >= peer::SENDHEADERS_VERSION {
            self.send(id, NetworkMessage::SendHeaders);
        }
        self.send(id, NetworkMessage::SendCmpct(SendCmpct { send_compact: false, version: compact::COMPACT_VERSION }));
        self.send_ping(id);
        self.send(id, NetworkMessage::FeeFilter(min_fee as i64));
        if !inbound {
            self.send(id, NetworkMessage::GetAddr);
        }
        self.maybe_sync_headers(id);
    }

    fn send_ping(&mut self, id: PeerId) {
        let nonce: u64 = rand::thread_rng().gen();
        let now = Instant::now();
        self.with_peer(id, |p| {
            p.ping = Some((nonce, now));
            p.last_ping = now;
        });
        self.send(id, NetworkMessage::Ping(nonce));
    }

    fn on_pong(&mut self, id: PeerId, nonce: u64) {
        self.with_peer(id, |p| {
            if let Some((expected, sent)) = p.ping {
                if expected == nonce {
                    let rtt = sent.elapsed().as_secs_f64();
                    p.ping_time = Some(rtt);
                    p.min_ping = Some(p.min_ping.map_or(rtt, |m| m.min(rtt)));
                    p.ping = None;
                }
            }
        });
    }

    fn on_getaddr(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.addr_relay = true;
        // Core answers inbound peers only, once per connection.
        if !peer.inbound() || peer.getaddr_answered {
            return;
        }
        peer.getaddr_answered = true;
        let now = Self::unix_now();
        let entries: Vec<(SocketAddr, u64, u32)> = self
            .addrman
            .get_addr(now, rand::thread_rng().gen())
            .iter()
            .map(|(a, i)| (*a, i.services, i.last_seen as u32))
            .collect();
        for (a, _, _) in &entries {
            peer.known_addrs.insert(*a);
        }
        let msg = addr_message(peer.addrv2, &entries);
        self.send(id, msg);
    }

    fn on_addr(&mut self, id: PeerId, count: usize, addrs: Vec<(SocketAddr, u64, i64)>) {
        if count > MAX_ADDR_RECEIVED {
            self.misbehaving(id, Misbehavior::OversizedList, &format!("addr message of {count} entries"));
            return;
        }
        let now = Self::unix_now();
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.addr_relay = true;
        // Core's token bucket: addresses beyond the peer's allowance are
        // dropped and counted; banned ones are skipped uncounted.
        peer.addr_tokens.refill(Instant::now());
        let answers_our_getaddr = peer.getaddr_sent;
        let mut kept = Vec::with_capacity(addrs.len());
        let mut limited = 0u64;
        for (addr, services, time) in addrs {
            if !peer.addr_tokens.take() {
                limited += 1;
                continue;
            }
            if self.banlist.is_banned(addr.ip(), now) {
                continue;
            }
            peer.known_addrs.insert(addr);
            kept.push((addr, services, addrrelay::clamp_time(time, now)));
        }
        peer.addr_processed += kept.len() as u64;
        peer.addr_rate_limited += limited;
        if count < MAX_ADDR_RECEIVED {
            // Core: a message shorter than a full answer ends the answer.
            peer.getaddr_sent = false;
        }
        let (mut new, mut relayed) = (0, 0);
        for (addr, services, time) in kept {
            if self.addrman.add(addr, services, time, now) {
                new += 1;
            }
            let acceptable = addr.port() != 0 && (self.config.allow_local_addrs || addrman::is_routable(addr.ip()));
            if addrrelay::should_relay(time, now, count, answers_our_getaddr, acceptable) {
                self.relay_address(id, (addr, services, time as u32), now);
                relayed += 1;
            }
        }
        tracing::debug!(peer = id, count, new, relayed, rate_limited = limited, "addresses received");
    }

    /// Core's `RelayAddress`: queues `entry` for the one or two peers the
    /// keyed hash picks among those that take addresses, less `from`.
    /// IPv4 and IPv6, the only networks we speak, are always reachable.
    fn relay_address(&mut self, from: PeerId, entry: (SocketAddr, u64, u32), now: i64) {
        let candidates: Vec<PeerId> =
            self.peers.values().filter(|p| p.id != from && p.ready() && p.addr_relay).map(|p| p.id).collect();
        for target in addrrelay::relay_targets(&entry.0, true, now, self.addr_relay_salt, candidates) {
            let random: usize = rand::thread_rng().gen();
            self.with_peer(target, |p| p.push_address(entry, random));
        }
    }

    /// Core's `MaybeSendAddr` for relayed addresses: each peer's queue goes
    /// out after a random delay (Poisson, [`ProcessorConfig::addr_broadcast_interval`]
    /// on average), less what the peer knows already.
    fn flush_addresses(&mut self, now: Instant) {
        let magic = self.config.magic;
        let average = self.config.addr_broadcast_interval;
        for peer in self.peers.values_mut().filter(|p| p.ready() && p.addr_relay) {
            if now < peer.next_addr_send {
                continue;
            }
            peer.next_addr_send = now + poisson_delay(average, rand::thread_rng().gen());
            let queue = std::mem::take(&mut peer.addr_queue);
            let fresh: Vec<(SocketAddr, u64, u32)> =
                queue.into_iter().filter(|(a, _, _)| peer.known_addrs.insert(*a)).collect();
            if fresh.is_empty() {
                continue;
            }
            tracing::debug!(peer = peer.id, count = fresh.len(), "relaying addresses");
            peer.send(wire::encode_message(magic, addr_message(peer.addrv2, &fresh)));
        }
    }

    // ----- headers and blocks --------------------------------------------------

    fn locator(&self) -> Vec<BlockHash> {
        let node = self.node.lock();
        sync::locator(node.chain.index(), &self.best_header)
    }

    fn send_getheaders(&mut self, id: PeerId, locator: Vec<BlockHash>) {
        self.with_peer(id, |p| {
            p.headers_pending = Some(Instant::now());
            p.sent_getheaders = true;
        });
        self.send(id, NetworkMessage::GetHeaders(GetHeadersMessage::new(locator, BlockHash::all_zeros())));
    }

    /// Starts headers sync with `id` unless another peer is busy syncing.
    fn maybe_sync_headers(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(&id) else { return };
        if !peer.ready() || peer.sent_getheaders {
            return;
        }
        let their_height = peer.version.as_ref().map_or(0, |v| v.start_height.max(0) as u32);
        let busy = self.sync_peer.is_some_and(|s| s != id);
        if busy && their_height > self.header_chain.height() {
            return; // wait until the sync peer is done
        }
        if their_height > self.header_chain.height() {
            self.sync_peer = Some(id);
            tracing::info!(peer = id, from = self.header_chain.height(), to = their_height, "headers sync started");
        }
        // Core starts the first request one block back, so that a peer as
        // far along as we are still answers with a header: that is how we
        // learn its best block, and so that we may download from it.
        let locator = {
            let node = self.node.lock();
            let index = node.chain.index();
            let start = index
                .get(&self.best_header)
                .filter(|e| e.height > 0)
                .map_or(self.best_header, |e| e.header.prev_blockhash);
            sync::locator(index, &start)
        };
        self.send_getheaders(id, locator);
    }

    fn set_best_header_if_better(&mut self, entry: &IndexEntry, index: &crate::chain::BlockIndex) {
        let current = index.get(&self.best_header);
        if current.is_none_or(|c| entry.chainwork > c.chainwork || c.failed()) && !entry.failed() {
            self.best_header = entry.hash;
            self.header_chain.set_tip(index, entry);
        }
    }

    fn recompute_best_header(&mut self) {
        let node = self.node.clone();
        node.with(|n| {
            let index = n.chain.index();
            if index.get(&self.best_header).is_some_and(|e| !e.failed()) {
                return;
            }
            let best = index
                .entries()
                .filter(|e| !e.failed())
                .max_by(|a, b| a.chainwork.cmp(&b.chainwork).then(b.sequence.cmp(&a.sequence)))
                .unwrap_or_else(|| n.chain.tip())
                .clone();
            self.best_header = best.hash;
            self.header_chain.set_tip(index, &best);
        });
    }

    /// Records that `id` has `hash` (if it is better than what we knew).
    fn peer_has(&mut self, id: PeerId, hash: BlockHash) {
        let node = self.node.clone();
        let better = node.with(|n| {
            let index = n.chain.index();
            let Some(new) = index.get(&hash) else { return false };
            let Some(peer) = self.peers.get(&id) else { return false };
            match peer.best_known.and_then(|b| index.get(&b)) {
                Some(old) => new.chainwork > old.chainwork,
                None => true,
            }
        });
        if better {
            self.with_peer(id, |p| p.best_known = Some(hash));
        }
    }

    fn on_headers(&mut self, id: PeerId, headers: Vec<bitcoin::block::Header>) {
        if headers.len() > sync::MAX_HEADERS_RESULTS {
            self.misbehaving(id, Misbehavior::TooManyHeaders, &format!("{} headers", headers.len()));
            return;
        }
        self.with_peer(id, |p| p.headers_pending = None);
        if headers.is_empty() {
            if self.sync_peer == Some(id) {
                self.sync_peer = None;
            }
            return;
        }
        if headers.windows(2).any(|w| w[1].prev_blockhash != w[0].block_hash()) {
            self.misbehaving(id, Misbehavior::NonContinuousHeaders, "headers do not chain");
            return;
        }
        let node = self.node.clone();
        let outcome = node.with(|n| {
            if n.chain.index().get(&headers[0].prev_blockhash).is_none() {
                return HeadersOutcome::Unconnecting;
            }
            let mut last = None;
            for header in &headers {
                match n.chain.accept_header(header) {
                    Ok(hash) => last = Some(hash),
                    Err(e) => return HeadersOutcome::Invalid(e),
                }
            }
            if let Some(entry) = last.and_then(|h| n.chain.index().get(&h)).cloned() {
                self.set_best_header_if_better(&entry, n.chain.index());
            }
            HeadersOutcome::Accepted(last)
        });
        match outcome {
            HeadersOutcome::Unconnecting => {
                let count = {
                    let Some(p) = self.peers.get_mut(&id) else { return };
                    p.unconnecting_headers += 1;
                    p.unconnecting_headers
                };
                if count % 10 == 0 {
                    self.misbehaving(id, Misbehavior::UnconnectingHeaders, &format!("{count} unconnecting headers"));
                }
                let locator = self.locator();
                self.send_getheaders(id, locator);
            }
            HeadersOutcome::Invalid(e) => self.on_chain_error(id, &e, Misbehavior::InvalidHeader),
            HeadersOutcome::Accepted(last) => {
                self.with_peer(id, |p| p.unconnecting_headers = 0);
                if let Some(last) = last {
                    self.peer_has(id, last);
                    if headers.len() == sync::MAX_HEADERS_RESULTS {
                        let locator = {
                            let node = self.node.lock();
                            sync::locator(node.chain.index(), &last)
                        };
                        tracing::info!(peer = id, height = self.header_chain.height(), "headers sync progress");
                        self.send_getheaders(id, locator);
                    } else if self.sync_peer == Some(id) {
                        tracing::info!(peer = id, height = self.header_chain.height(), "headers sync done");
                        self.sync_peer = None;
                    }
                }
                self.fetch_blocks(id);
            }
        }
    }

    /// Punishes a peer for a chain error that is its fault.
    fn on_chain_error(&mut self, id: PeerId, e: &ChainError, offence: Misbehavior) {
        match e {
            ChainError::Invalid(_) | ChainError::BadPrevBlock(_) | ChainError::DuplicateInvalid(_) => {
                self.misbehaving(id, offence, &e.to_string());
                self.recompute_best_header();
            }
            ChainError::PrevBlockNotFound(_) => {
                let locator = self.locator();
                self.send_getheaders(id, locator);
            }
            other => tracing::error!(peer = id, "chainstate failure while handling a peer's data: {other}"),
        }
    }

    /// Asks `id` for the blocks it can give us, and deals with a staller.
    fn fetch_blocks(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(&id) else { return };
        let serves = peer.services();
        if !peer.ready()
            || !serves.has(ServiceFlags::WITNESS)
            || !(serves.has(ServiceFlags::NETWORK) || serves.has(ServiceFlags::NETWORK_LIMITED))
        {
            return;
        }
        let Some(best_known) = peer.best_known else { return };
        let limited = peer::is_limited(serves);
        let node = self.node.clone();
        let plan = node.with(|n| {
            let index = n.chain.index();
            let peer_best = index.get(&best_known)?;
            Some(sync::plan(index, &self.header_chain, n.chain.tip(), peer_best, &self.download, id, limited))
        });
        let Some(plan) = plan else { return };
        let now = Instant::now();
        if !plan.fetch.is_empty() {
            let items = plan
                .fetch
                .iter()
                .map(|(hash, height)| {
                    self.download.request(id, *hash, *height, now);
                    Inventory::WitnessBlock(*hash)
                })
                .collect();
            self.send(id, NetworkMessage::GetData(items));
        }
        if let Some(blocked) = plan.blocked_by {
            if let Some(holder) = self.download.get(&blocked).copied() {
                if holder.peer != id && now.duration_since(holder.since) > sync::BLOCK_STALLING_TIMEOUT {
                    tracing::warn!(staller = holder.peer, height = holder.height, "peer is stalling block download");
                    self.disconnect(holder.peer, "stalling block download");
                }
            }
        }
    }

    fn on_block(&mut self, id: PeerId, block: Block, via_compact: bool) {
        let hash = block.block_hash();
        self.download.received(&hash);
        self.partials.remove(&hash);
        let node = self.node.clone();
        let result = node.with(|n| {
            let result = n.process_block(&block);
            if result.is_ok() {
                if let Some(entry) = n.chain.index().get(&hash).cloned() {
                    self.set_best_header_if_better(&entry, n.chain.index());
                }
            }
            (result, n.chain.tip().hash)
        });
        match result {
            (Ok(BlockOutcome::Duplicate), _) => {}
            (Ok(outcome), tip) => {
                self.with_peer(id, |p| p.last_block = Self::unix_now());
                self.peer_has(id, hash);
                if outcome == BlockOutcome::Connected && tip == hash {
                    self.maybe_high_bandwidth(id);
                }
            }
            (Err(ChainError::Invalid(e)), _) if via_compact && e.may_be_mutation() => {
                tracing::info!(peer = id, %hash, "reconstructed block does not match, fetching it whole: {e}");
                self.request_full_block(id, hash);
            }
            (Err(e), _) => self.on_chain_error(id, &e, Misbehavior::InvalidBlock),
        }
        self.fetch_blocks(id);
        self.after_chain_change();
    }

    fn request_full_block(&mut self, id: PeerId, hash: BlockHash) {
        let height = self.node.lock().chain.index().get(&hash).map_or(0, |e| e.height);
        self.download.request(id, hash, height, Instant::now());
        self.send(id, NetworkMessage::GetData(vec![Inventory::WitnessBlock(hash)]));
    }

    /// Makes `id` one of our (at most three) high-bandwidth compact block peers.
    fn maybe_high_bandwidth(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(&id) else { return };
        if !peer.compact_v2 || peer.hb_from {
            return;
        }
        self.hb_peers.push_back(id);
        self.with_peer(id, |p| p.hb_from = true);
        self.send(id, NetworkMessage::SendCmpct(SendCmpct { send_compact: true, version: compact::COMPACT_VERSION }));
        while self.hb_peers.len() > compact::MAX_HIGH_BANDWIDTH_PEERS {
            let Some(old) = self.hb_peers.pop_front() else { break };
            self.with_peer(old, |p| p.hb_from = false);
            self.send(
                old,
                NetworkMessage::SendCmpct(SendCmpct { send_compact: false, version: compact::COMPACT_VERSION }),
            );
        }
    }

    /// After blocks arrived: announce a new tip, forget stale rejects.
    fn after_chain_change(&mut self) {
        let (tip, height) = {
            let node = self.node.lock();
            (node.chain.tip().hash, node.chain.tip().height)
        };
        if tip != self.last_tip {
            // Blocks connected without us (mined or submitted through RPC)
            // move the best header too, or our locators would lag behind.
            let node = self.node.clone();
            node.with(|n| {
                if let Some(entry) = n.chain.index().get(&tip).cloned() {
                    self.set_best_header_if_better(&entry, n.chain.index());
                }
            });
            self.recent_rejects.clear();
            // While far behind the best header (initial download) nobody
            // needs each intermediate block announced (Core does the same).
            if self.header_chain.height() > height + MAX_BLOCKS_TO_ANNOUNCE as u32 {
                self.last_tip = tip;
            } else {
                self.announce_tip();
            }
            // A line when a download starts and ends, and every ten seconds between.
            let syncing = self.header_chain.height() > height;
            let changed = syncing != self.progress.syncing;
            self.progress.syncing = syncing;
            self.log_progress(changed);
        }
    }

    fn log_progress(&mut self, force: bool) {
        let now = Instant::now();
        if !force && now.duration_since(self.progress.last_log) < PROGRESS_INTERVAL {
            return;
        }
        let (height, time) = {
            let node = self.node.lock();
            (node.chain.tip().height, node.chain.tip().header.time)
        };
        let headers = self.header_chain.height().max(height);
        let elapsed = now.duration_since(self.progress.last_log).as_secs_f64().max(0.001);
        let rate = f64::from(height.saturating_sub(self.progress.last_height)) / elapsed;
        if height != self.progress.last_height || headers > height {
            tracing::info!(
                height,
                headers,
                progress = format!("{:.2}%", 100.0 * f64::from(height) / f64::from(headers.max(1))),
                blocks_per_s = format!("{rate:.1}"),
                tip_time = time,
                in_flight = self.download.len(),
                "block sync progress"
            );
        }
        self.progress.last_log = now;
        self.progress.last_height = height;
    }

    /// Announces the new tip to every peer that does not have it: a compact
    /// block to high-bandwidth peers, headers to those that asked for them,
    /// else an `inv`.
    fn announce_tip(&mut self) {
        let node = self.node.clone();
        let prepared = node.with(|n| {
            let index = n.chain.index();
            let tip = n.chain.tip().clone();
            let mut plans = Vec::new();
            for peer in self.peers.values().filter(|p| p.ready()) {
                let known: Vec<BlockHash> = [peer.best_known, peer.last_announced].into_iter().flatten().collect();
                let knows = |e: &IndexEntry| {
                    known.iter().any(|k| index.ancestor(k, e.height).is_some_and(|a| a.hash == e.hash))
                };
                if knows(&tip) {
                    continue;
                }
                let mut list = Vec::new();
                let mut cursor = Some(&tip);
                let mut connected = false;
                while let Some(e) = cursor {
                    if knows(e) {
                        connected = true;
                        break;
                    }
                    if list.len() >= MAX_BLOCKS_TO_ANNOUNCE {
                        break;
                    }
                    list.push(e.header);
                    cursor = index.get(&e.header.prev_blockhash);
                }
                list.reverse();
                plans.push((peer.id, connected, list));
            }
            let block = if plans.iter().any(|(_, c, l)| *c && l.len() == 1) {
                n.chain.block(&tip.hash).ok().flatten()
            } else {
                None
            };
            (tip.hash, plans, block)
        });
        let (tip, plans, block) = prepared;
        self.last_tip = tip;
        let compact = block.map(|b| compact::compact_block(&b, rand::thread_rng().gen()));
        for (id, connected, list) in plans {
            let Some(peer) = self.peers.get(&id) else { continue };
            let msg = match (&compact, connected, list.len()) {
                (Some(c), true, 1) if peer.hb_to && peer.compact_v2 => {
                    NetworkMessage::CmpctBlock(CmpctBlock { compact_block: c.clone() })
                }
                (_, true, _) if peer.send_headers => NetworkMessage::Headers(list),
                _ => NetworkMessage::Inv(vec![Inventory::Block(tip)]),
            };
            self.with_peer(id, |p| p.last_announced = Some(tip));
            self.send(id, msg);
        }
    }

    fn on_getheaders(&mut self, id: PeerId, msg: GetHeadersMessage) {
        // The locator starts at the peer's best header: it has at least that.
        if let Some(first) = msg.locator_hashes.first() {
            self.peer_has(id, *first);
        }
        let node = self.node.clone();
        let headers = node.with(|n| {
            let index = n.chain.index();
            if msg.locator_hashes.is_empty() {
                return index.get(&msg.stop_hash).map(|e| vec![e.header]).unwrap_or_default();
            }
            let start = msg
                .locator_hashes
                .iter()
                .find_map(|h| index.get(h).filter(|e| index.is_active(&e.hash)).map(|e| e.height + 1))
                .unwrap_or(1);
            let mut out = Vec::new();
            let mut height = start;
            while out.len() < sync::MAX_HEADERS_RESULTS {
                let Some(hash) = index.active_hash(height) else { break };
                let Some(entry) = index.get(&hash) else { break };
                out.push(entry.header);
                if hash == msg.stop_hash {
                    break;
                }
                height += 1;
            }
            out
        });
        if let Some(last) = headers.last() {
            let hash = last.block_hash();
            self.with_peer(id, |p| p.last_announced = Some(hash));
        }
        self.send(id, NetworkMessage::Headers(headers));
    }

    fn on_getblocks(&mut self, id: PeerId, locator: Vec<BlockHash>, stop: BlockHash) {
        let node = self.node.clone();
        let items = node.with(|n| {
            let index = n.chain.index();
            let start = locator
                .iter()
                .find_map(|h| index.get(h).filter(|e| index.is_active(&e.hash)).map(|e| e.height + 1))
                .unwrap_or(1);
            let mut out = Vec::new();
            let mut height = start;
            while out.len() < MAX_GETBLOCKS_RESULTS {
                let Some(hash) = index.active_hash(height) else { break };
                if hash == stop {
                    break;
                }
                out.push(Inventory::Block(hash));
                height += 1;
            }
            out
        });
        if !items.is_empty() {
            self.send(id, NetworkMessage::Inv(items));
        }
    }

    fn on_inv(&mut self, id: PeerId, items: Vec<Inventory>) {
        if items.len() > MAX_INV_SIZE {
            self.misbehaving(id, Misbehavior::OversizedList, &format!("inv of {} items", items.len()));
            return;
        }
        let now = Instant::now();
        let node = self.node.clone();
        let (unknown_block, wanted) = node.with(|n| {
            let mut unknown_block = None;
            let mut known_blocks = Vec::new();
            let mut wanted = Vec::new();
            for item in &items {
                match item {
                    Inventory::Block(h) | Inventory::WitnessBlock(h) | Inventory::CompactBlock(h) => {
                        if n.chain.index().get(h).is_some() {
                            known_blocks.push(*h);
                        } else {
                            unknown_block = Some(*h);
                        }
                    }
                    Inventory::WTx(w) => {
                        if let Some(p) = self.peers.get_mut(&id) {
                            p.known_txs.insert(*w);
                        }
                        let key = w.to_byte_array();
                        let have = n.mempool.get_by_wtxid(w).is_some()
                            || self.recent_rejects.contains(w)
                            || self.orphans.contains(w);
                        if !have && self.request_allowed(&key, now) {
                            self.tx_requests.insert(key, (id, now));
                            wanted.push(Inventory::WTx(*w));
                        }
                    }
                    Inventory::Transaction(t) | Inventory::WitnessTransaction(t) => {
                        let key = t.to_byte_array();
                        if n.mempool.get(t).is_none()
                            && !self.orphans.contains_txid(t)
                            && self.request_allowed(&key, now)
                        {
                            self.tx_requests.insert(key, (id, now));
                            wanted.push(Inventory::WitnessTransaction(*t));
                        }
                    }
                    _ => {}
                }
            }
            for h in known_blocks {
                if let Some(p) = self.peers.get(&id) {
                    let better = match p.best_known.and_then(|b| n.chain.index().get(&b)) {
                        Some(old) => n.chain.index().get(&h).is_some_and(|e| e.chainwork > old.chainwork),
                        None => true,
                    };
                    if better {
                        if let Some(p) = self.peers.get_mut(&id) {
                            p.best_known = Some(h);
                        }
                    }
                }
            }
            (unknown_block, wanted)
        });
        if unknown_block.is_some() {
            let locator = self.locator();
            self.send_getheaders(id, locator);
        }
        if !wanted.is_empty() {
            self.send(id, NetworkMessage::GetData(wanted));
        }
        self.fetch_blocks(id);
    }

    fn request_allowed(&self, key: &[u8; 32], now: Instant) -> bool {
        self.tx_requests.get(key).is_none_or(|(_, t)| now.duration_since(*t) > TX_REQUEST_TIMEOUT)
    }

    fn on_getdata(&mut self, id: PeerId, items: Vec<Inventory>) {
        if items.len() > MAX_INV_SIZE {
            self.misbehaving(id, Misbehavior::OversizedList, &format!("getdata of {} items", items.len()));
            return;
        }
        let Some(peer) = self.peers.get(&id) else { return };
        let witness = peer.wants_witness();
        let magic = self.config.magic;
        let pruned = peer::is_limited(self.config.local_services);
        let node = self.node.clone();
        let (frames, not_found, too_deep) = node.with(|n| {
            let mut frames = Vec::new();
            let mut not_found = Vec::new();
            let tip_height = n.chain.tip().height;
            for item in items {
                match item {
                    Inventory::WitnessBlock(h) | Inventory::Block(h) | Inventory::CompactBlock(h) => {
                        let Some(height) = n.chain.index().get(&h).map(|e| e.height) else {
                            not_found.push(item);
                            continue;
                        };
                        // Core: a pruned node never serves blocks below the
                        // NETWORK_LIMITED threshold, whether it still has
                        // them or not (which would tell its prune height),
                        // and drops the peer so that it does not wait.
                        if pruned
                            && tip_height.saturating_sub(height)
                                > sync::NODE_NETWORK_LIMITED_MIN_BLOCKS + sync::LIMITED_RACE_BUFFER
                        {
                            return (frames, not_found, Some(height));
                        }
                        let Ok(Some(raw)) = n.chain.raw_block(&h) else {
                            not_found.push(item);
                            continue;
                        };
                        let frame = match item {
                            Inventory::CompactBlock(_)
                                if tip_height.saturating_sub(height) < compact::MAX_CMPCTBLOCK_DEPTH =>
                            {
                                match encode::deserialize::<Block>(&raw) {
                                    Ok(block) => wire::encode_message(
                                        magic,
                                        NetworkMessage::CmpctBlock(CmpctBlock {
                                            compact_block: compact::compact_block(&block, rand::thread_rng().gen()),
                                        }),
                                    ),
                                    Err(_) => continue,
                                }
                            }
                            Inventory::Block(_) if !witness || matches!(item, Inventory::Block(_)) => {
                                match encode::deserialize::<Block>(&raw) {
                                    Ok(mut block) => {
                                        for tx in &mut block.txdata {
                                            strip_witness(tx);
                                        }
                                        wire::encode_message(magic, NetworkMessage::Block(block))
                                    }
                                    Err(_) => continue,
                                }
                            }
                            _ => wire::encode_raw(magic, "block", &raw),
                        };
                        frames.push(frame);
                    }
                    Inventory::WTx(w) => match n.mempool.get_by_wtxid(&w) {
                        Some(e) => frames.push(wire::encode_message(magic, NetworkMessage::Tx((**e.tx()).clone()))),
                        None => not_found.push(item),
                    },
                    Inventory::WitnessTransaction(t) | Inventory::Transaction(t) => match n.mempool.get(&t) {
                        Some(e) => {
                            let mut tx = (**e.tx()).clone();
                            if matches!(item, Inventory::Transaction(_)) {
                                strip_witness(&mut tx);
                            }
                            frames.push(wire::encode_message(magic, NetworkMessage::Tx(tx)));
                        }
                        None => not_found.push(item),
                    },
                    _ => {}
                }
            }
            (frames, not_found, None)
        });
        if let Some(height) = too_deep {
            tracing::info!(peer = id, height, "ignoring block request below the NODE_NETWORK_LIMITED threshold");
            self.disconnect(id, "asked a pruned node for a block below the NODE_NETWORK_LIMITED threshold");
            return;
        }
        if let Some(peer) = self.peers.get(&id) {
            for frame in frames {
                peer.send(frame);
            }
        }
        if !not_found.is_empty() {
            self.send(id, NetworkMessage::NotFound(not_found));
        }
    }

    fn on_notfound(&mut self, id: PeerId, items: Vec<Inventory>) {
        let mut freed = false;
        for item in items {
            match item {
                Inventory::WTx(w) => {
                    self.tx_requests.remove(&w.to_byte_array());
                }
                Inventory::Transaction(t) | Inventory::WitnessTransaction(t) => {
                    self.tx_requests.remove(&t.to_byte_array());
                }
                Inventory::Block(h) | Inventory::WitnessBlock(h) | Inventory::CompactBlock(h) => {
                    freed |= self.download.cancel(id, &h);
                }
                _ => {}
            }
        }
        if freed {
            let ids: Vec<PeerId> = self.peers.keys().copied().filter(|p| *p != id).collect();
            for other in ids {
                self.fetch_blocks(other);
            }
        }
    }

    // ----- transactions --------------------------------------------------------

    fn on_tx(&mut self, id: PeerId, tx: Transaction) {
        let wtxid = tx.compute_wtxid();
        let txid = tx.compute_txid();
        self.tx_requests.remove(&wtxid.to_byte_array());
        self.tx_requests.remove(&txid.to_byte_array());
        self.with_peer(id, |p| {
            p.known_txs.insert(wtxid);
        });
        if self.recent_rejects.contains(&wtxid) || self.orphans.contains(&wtxid) {
            return;
        }
        let node = self.node.clone();
        let result = node.with(|n| {
            if n.mempool.get_by_wtxid(&wtxid).is_some() {
                return None;
            }
            Some(n.submit_transaction(tx.clone()))
        });
        match result {
            None => {}
            Some(Ok(_)) => {
                tracing::debug!(peer = id, %txid, "transaction accepted from peer");
                self.with_peer(id, |p| p.last_tx = Self::unix_now());
                self.resolve_orphans(txid);
            }
            Some(Err(MempoolReject::Invalid(r))) if r.class == RejectClass::MissingInputs => {
                let parents: Vec<Txid> = tx.input.iter().map(|i| i.previous_output.txid).collect();
                let tx = Arc::new(tx);
                if self.orphans.add(tx, id, Self::unix_now()) {
                    tracing::debug!(peer = id, %txid, orphans = self.orphans.len(), "orphan transaction kept");
                    let now = Instant::now();
                    let wanted: Vec<Inventory> = {
                        let node = self.node.lock();
                        let mut wanted = Vec::new();
                        for parent in parents {
                            let key = parent.to_byte_array();
                            if node.mempool.get(&parent).is_none()
                                && !self.orphans.contains_txid(&parent)
                                && self
                                    .tx_requests
                                    .get(&key)
                                    .is_none_or(|(_, t)| now.duration_since(*t) > TX_REQUEST_TIMEOUT)
                                && !wanted.contains(&Inventory::WitnessTransaction(parent))
                            {
                                wanted.push(Inventory::WitnessTransaction(parent));
                            }
                        }
                        wanted
                    };
                    for item in &wanted {
                        if let Some(h) = item.network_hash() {
                            self.tx_requests.insert(h, (id, now));
                        }
                    }
                    if !wanted.is_empty() {
                        self.send(id, NetworkMessage::GetData(wanted));
                    }
                }
            }
            Some(Err(e)) => {
                tracing::debug!(peer = id, %txid, "transaction from peer rejected: {e}");
                if matches!(e, MempoolReject::Invalid(_)) {
                    self.recent_rejects.insert(wtxid);
                }
            }
        }
    }

    /// A transaction entered the mempool: tries the orphans that spend it.
    fn resolve_orphans(&mut self, parent: Txid) {
        let mut queue = vec![parent];
        while let Some(txid) = queue.pop() {
            for (child, from) in self.orphans.take_children(&txid) {
                let child_txid = child.compute_txid();
                let result = self.node.with(|n| n.submit_transaction((*child).clone()));
                match result {
                    Ok(_) => {
                        tracing::debug!(peer = from, txid = %child_txid, "orphan transaction resolved");
                        queue.push(child_txid);
                    }
                    Err(MempoolReject::Invalid(r)) if r.class == RejectClass::MissingInputs => {
                        self.orphans.add(child, from, Self::unix_now());
                    }
                    Err(_) => {
                        self.recent_rejects.insert(child.compute_wtxid());
                    }
                }
            }
        }
    }

    /// Queues newly arrived mempool transactions for every peer's next trickle.
    fn queue_mempool_announcements(&mut self) {
        let seq = self.mempool_seq;
        let current = self.node.with(|n| {
            if Some(n.mempool.sequence()) == seq {
                return None;
            }
            let map: HashMap<Wtxid, (Txid, u64)> = n
                .mempool
                .entries()
                .map(|e| {
                    let rate = (e.modified_fee().max(0) as u64).saturating_mul(1000) / e.vsize().max(1);
                    (e.wtxid(), (e.txid(), rate))
                })
                .collect();
            Some((n.mempool.sequence(), map))
        });
        let Some((seq, map)) = current else { return };
        let new: Vec<Wtxid> = map.keys().filter(|w| !self.mempool_known.contains_key(*w)).copied().collect();
        self.mempool_seq = Some(seq);
        self.mempool_known = map;
        if new.is_empty() {
            return;
        }
        for peer in self.peers.values_mut().filter(|p| p.ready() && p.relays_txs()) {
            for w in &new {
                if !peer.known_txs.contains(w) {
                    peer.tx_queue.push(*w);
                }
            }
        }
    }

    /// Sends each peer whose trickle timer expired the transactions queued for it.
    fn trickle(&mut self, now: Instant) {
        let magic = self.config.magic;
        for peer in self.peers.values_mut().filter(|p| p.ready()) {
            if now < peer.next_inv {
                continue;
            }
            let average = if peer.inbound() { INBOUND_TRICKLE } else { OUTBOUND_TRICKLE };
            peer.next_inv = now + poisson_delay(average, rand::thread_rng().gen());
            if peer.tx_queue.is_empty() {
                continue;
            }
            let take = peer.tx_queue.len().min(MAX_INV_PER_TRICKLE);
            let batch: Vec<Wtxid> = peer.tx_queue.drain(..take).collect();
            let mut items = Vec::new();
            for w in batch {
                let Some((txid, rate)) = self.mempool_known.get(&w) else { continue };
                if (*rate as i64) < peer.fee_filter || !peer.known_txs.insert(w) {
                    continue;
                }
                items.push(if peer.wtxid_relay { Inventory::WTx(w) } else { Inventory::Transaction(*txid) });
            }
            if !items.is_empty() {
                peer.send(wire::encode_message(magic, NetworkMessage::Inv(items)));
            }
        }
    }

    // ----- compact blocks --------------------------------------------------------

    fn on_cmpctblock(&mut self, id: PeerId, compact: bitcoin::bip152::HeaderAndShortIds) {
        let header = compact.header;
        let hash = header.block_hash();
        let node = self.node.clone();
        let accepted = node.with(|n| {
            let result = n.chain.accept_header(&header);
            if let Ok(h) = &result {
                if let Some(entry) = n.chain.index().get(h).cloned() {
                    self.set_best_header_if_better(&entry, n.chain.index());
                }
            }
            result
        });
        if let Err(e) = accepted {
            self.on_chain_error(id, &e, Misbehavior::InvalidHeader);
            return;
        }
        self.peer_has(id, hash);
        let partial = node.with(|n| {
            let index = n.chain.index();
            let entry = index.get(&hash)?;
            if entry.have_data() || index.get(&header.prev_blockhash).is_none_or(|p| !p.have_data()) {
                return None;
            }
            Some((entry.height, PartialBlock::new(&compact, n.mempool.entries().map(|e| (e.wtxid(), e.tx())))))
        });
        let Some((height, partial)) = partial else {
            // Not the next block, or known: the ordinary download handles it.
            self.fetch_blocks(id);
            return;
        };
        match partial {
            Err(e) => self.misbehaving(id, Misbehavior::InvalidCompactBlock, &e.to_string()),
            Ok(p) if p.short_id_collision => self.request_full_block(id, hash),
            Ok(p) => match p.complete() {
                Some(block) => self.on_reconstructed(id, block),
                None => {
                    let missing = p.missing();
                    tracing::debug!(peer = id, %hash, missing = missing.len(), "compact block needs transactions");
                    self.download.request(id, hash, height, Instant::now());
                    self.partials.insert(hash, (id, p));
                    self.send(
                        id,
                        NetworkMessage::GetBlockTxn(GetBlockTxn {
                            txs_request: bitcoin::bip152::BlockTransactionsRequest {
                                block_hash: hash,
                                indexes: missing,
                            },
                        }),
                    );
                }
            },
        }
    }

    fn on_reconstructed(&mut self, id: PeerId, block: Block) {
        if !block.check_merkle_root() {
            let hash = block.block_hash();
            tracing::debug!(peer = id, %hash, "short id collision in compact block, fetching it whole");
            self.request_full_block(id, hash);
            return;
        }
        tracing::info!(peer = id, hash = %block.block_hash(), txs = block.txdata.len(), "block reconstructed from compact block");
        self.on_block(id, block, true);
    }

    fn on_blocktxn(&mut self, id: PeerId, txs: BlockTransactions) {
        let Some((from, partial)) = self.partials.remove(&txs.block_hash) else { return };
        if from != id {
            self.partials.insert(txs.block_hash, (from, partial));
            return;
        }
        match partial.fill(txs.transactions) {
            Ok(block) => self.on_reconstructed(id, block),
            Err(e) => {
                self.download.cancel(id, &txs.block_hash);
                self.misbehaving(id, Misbehavior::InvalidCompactBlock, &e.to_string());
            }
        }
    }

    fn on_getblocktxn(&mut self, id: PeerId, request: bitcoin::bip152::BlockTransactionsRequest) {
        let node = self.node.clone();
        let found = node.with(|n| {
            let height = n.chain.index().get(&request.block_hash)?.height;
            let block = n.chain.block(&request.block_hash).ok().flatten()?;
            Some((n.chain.tip().height.saturating_sub(height), block))
        });
        let Some((depth, block)) = found else { return };
        if depth > compact::MAX_BLOCKTXN_DEPTH {
            self.send(id, NetworkMessage::Block(block));
            return;
        }
        match BlockTransactions::from_request(&request, &block) {
            Ok(transactions) => self.send(id, NetworkMessage::BlockTxn(BlockTxn { transactions })),
            Err(e) => self.misbehaving(id, Misbehavior::OutOfBoundsBlockTxn, &e.to_string()),
        }
    }

    // ----- our own address --------------------------------------------------------

    /// Seconds since our tip's timestamp.
    fn tip_age(&self) -> i64 {
        Self::unix_now() - i64::from(self.node.lock().chain.tip().header.time)
    }

    /// Block intervals since our tip (Core's `ApproximateBestBlockDepth`).
    fn tip_age_in_blocks(&self) -> i64 {
        let spacing = self.node.lock().chain.params().pow_target_spacing.max(1);
        self.tip_age() / spacing as i64
    }

    /// Core's test for initial block download, as `getblockchaininfo` has
    /// it: the tip is more than a day old.
    fn in_initial_download(&self) -> bool {
        self.tip_age() > 24 * 60 * 60
    }

    /// What a peer's `version` says our address is (`addr_recv`): an
    /// outbound peer's report may teach us an address, an inbound peer's
    /// only confirms one (see [`localaddr`]).
    fn learn_local_address(&mut self, peer: SocketAddr, inbound: bool, reported: &Address) {
        let (Some(port), Ok(reported)) = (self.config.listen_port, reported.socket_addr()) else { return };
        if inbound {
            self.local_addrs.seen_by_inbound(reported, peer.ip());
        } else {
            self.local_addrs.seen_by_outbound(reported.ip(), peer.ip(), port);
        }
    }

    /// Core's self-announcement (`MaybeSendAddr`): while listening and not in
    /// initial download, each peer we relay addresses to gets our best
    /// address right after the handshake, then again after a random delay of
    /// a day on average.
    fn announce_local_address(&mut self, now: Instant) {
        let due = |p: &Peer| p.ready() && p.addr_relay && p.next_local_addr_send.is_none_or(|t| now >= t);
        if self.config.listen_port.is_none() || !self.peers.values().any(due) {
            return;
        }
        let Some(local) = self.local_addrs.best() else { return };
        if self.in_initial_download() {
            return;
        }
        let time = Self::unix_now() as u32;
        let services = self.config.local_services;
        let magic = self.config.magic;
        for peer in self.peers.values_mut().filter(|p| due(p)) {
            let msg = addr_message(peer.addrv2, &[(local, services.to_u64(), time)]);
            peer.known_addrs.insert(local);
            tracing::debug!(peer = peer.id, %local, "advertising our address");
            peer.send(wire::encode_message(magic, msg));
            let delay = poisson_delay(localaddr::AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL, rand::thread_rng().gen());
            peer.next_local_addr_send = Some(now + delay);
        }
    }

    // ----- the clock -------------------------------------------------------------

    /// Periodic work: timeouts, pings, relay, downloads, connections, saves.
    pub fn on_tick(&mut self) {
        let now = Instant::now();
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in &ids {
            let Some(peer) = self.peers.get(id) else { continue };
            let last_recv = peer.stats.last_recv.load(Ordering::Relaxed);
            let idle = Self::unix_now() - if last_recv == 0 { peer.conn_time } else { last_recv };
            let reason = if !peer.ready() && now.duration_since(peer.connected_at) > HANDSHAKE_TIMEOUT {
                Some("handshake timeout")
            } else if peer.ping.is_some_and(|(_, t)| now.duration_since(t) > TIMEOUT_INTERVAL) {
                Some("ping timeout")
            } else if idle > TIMEOUT_INTERVAL.as_secs() as i64 {
                Some("inactivity timeout")
            } else {
                None
            };
            if let Some(reason) = reason {
                self.disconnect(*id, reason);
                continue;
            }
            let ping_due = peer.ready() && peer.ping.is_none() && now.duration_since(peer.last_ping) > PING_INTERVAL;
            let headers_late = peer.headers_pending.is_some_and(|t| now.duration_since(t) > HEADERS_TIMEOUT);
            if ping_due {
                self.send_ping(*id);
            }
            if headers_late {
                tracing::info!(peer = id, "headers request timed out");
                self.with_peer(*id, |p| p.headers_pending = None);
                if self.sync_peer == Some(*id) {
                    self.sync_peer = None;
                }
            }
        }
        for staller in self.download.timed_out(now, sync::BLOCK_DOWNLOAD_TIMEOUT) {
            self.disconnect(staller, "block download timeout");
        }
        self.after_chain_change();
        self.queue_mempool_announcements();
        self.trickle(now);
        self.announce_local_address(now);
        self.flush_addresses(now);
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.maybe_sync_headers(id);
            self.fetch_blocks(id);
        }
        self.tx_requests.retain(|_, (_, t)| now.duration_since(*t) <= TX_REQUEST_TIMEOUT);
        self.orphans.expire(Self::unix_now());
        self.plan_connections(now);
        let behind = self.header_chain.height() > self.node.lock().chain.tip().height;
        if behind {
            self.log_progress(false);
        }
        if now.duration_since(self.last_save) > SAVE_INTERVAL {
            self.last_save = now;
            self.banlist.sweep(Self::unix_now());
            self.save();
        }
    }

    fn save_banlist(&mut self) {
        let path = self.config.datadir.join(banlist::FILE_NAME);
        if let Err(e) = self.banlist.save(&path) {
            tracing::error!("ban list not saved: {e}");
        }
    }

    /// Saves the address book and the ban list.
    pub fn save(&mut self) {
        self.save_banlist();
        let path = self.config.datadir.join(addrman::FILE_NAME);
        match self.addrman.save(&path) {
            Ok(()) => tracing::debug!(addresses = self.addrman.len(), "address book saved"),
            Err(e) => tracing::error!("address book not saved: {e}"),
        }
    }

    /// Disconnects everyone and saves (at shutdown).
    pub fn shutdown(&mut self) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.remove_peer(id, "shutdown");
        }
        self.save();
    }

    // ----- RPC ---------------------------------------------------------------------

    /// `getpeerinfo`.
    pub fn peer_info(&self) -> Vec<PeerInfo> {
        let node = self.node.lock();
        let index = node.chain.index();
        let tip = node.chain.tip();
        let mut out: Vec<PeerInfo> = self
            .peers
            .values()
            .filter(|p| p.ready())
            .map(|p| {
                let best = p.best_known.and_then(|b| index.get(&b));
                let synced_blocks =
                    best.and_then(|b| index.fork_point(&b.hash, &tip.hash)).map_or(-1, |f| i64::from(f.height));
                let version = p.version.as_ref();
                PeerInfo {
                    id: p.id,
                    addr: p.addr.to_string(),
                    addrbind: p.local_addr.map(|a| a.to_string()),
                    network: if p.addr.is_ipv4() { "ipv4" } else { "ipv6" },
                    services: format!("{:016x}", p.services().to_u64()),
                    servicesnames: peer::service_names(p.services()),
                    relaytxes: p.relays_txs(),
                    lastsend: p.stats.last_send.load(Ordering::Relaxed),
                    lastrecv: p.stats.last_recv.load(Ordering::Relaxed),
                    last_transaction: p.last_tx,
                    last_block: p.last_block,
                    bytessent: p.stats.bytes_sent.load(Ordering::Relaxed),
                    bytesrecv: p.stats.bytes_recv.load(Ordering::Relaxed),
                    conntime: p.conn_time,
                    timeoffset: version.map_or(0, |v| v.timestamp - p.conn_time),
                    pingtime: p.ping_time,
                    minping: p.min_ping,
                    pingwait: p.ping.map(|(_, t)| t.elapsed().as_secs_f64()),
                    version: version.map_or(0, |v| v.version),
                    subver: version.map(|v| v.user_agent.clone()).unwrap_or_default(),
                    inbound: p.inbound(),
                    bip152_hb_to: p.hb_to,
                    bip152_hb_from: p.hb_from,
                    startingheight: version.map_or(0, |v| v.start_height),
                    presynced_headers: -1,
                    synced_headers: best.map_or(-1, |b| i64::from(b.height)),
                    synced_blocks,
                    inflight: self.download.heights(p.id),
                    addr_relay_enabled: p.addr_relay,
                    addr_processed: p.addr_processed,
                    addr_rate_limited: p.addr_rate_limited,
                    permissions: Vec::new(),
                    minfeefilter: p.fee_filter as f64 / 1e8,
                    misbehavior_score: p.score.points(),
                    connection_type: p.conn_type.name(),
                    transport_protocol_type: "v1",
                    session_id: String::new(),
                }
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// Connection counts (handshaken peers).
    pub fn counts(&self) -> ConnectionCounts {
        let mut c = ConnectionCounts::default();
        for p in self.peers.values().filter(|p| p.ready()) {
            if p.inbound() {
                c.inbound += 1;
            } else {
                c.outbound += 1;
            }
        }
        c
    }

    /// `addnode`.
    pub fn add_node(&mut self, node: &str, op: AddNodeOp) -> Result<(), NetError> {
        match op {
            AddNodeOp::Add => {
                if self.added.iter().any(|n| n == node) {
                    return Err(NetError::AlreadyAdded);
                }
                self.added.push(node.to_owned());
                self.targets.insert(node.to_owned(), Target { next_try: Instant::now() });
                self.plan_connections(Instant::now());
            }
            AddNodeOp::Remove => {
                let before = self.added.len();
                self.added.retain(|n| n != node);
                if self.added.len() == before {
                    return Err(NetError::NotAdded);
                }
                self.targets.remove(node);
            }
            AddNodeOp::OneTry => {
                if !self.is_connected_to(node) && !self.pending.contains(node) {
                    self.pending.insert(node.to_owned());
                    self.connect_requests
                        .push(ConnectRequest { target: node.to_owned(), conn_type: ConnectionType::Manual });
                }
            }
        }
        Ok(())
    }

    /// `disconnectnode` by address or id.
    pub fn disconnect_node(&mut self, address: Option<&str>, id: Option<PeerId>) -> Result<(), NetError> {
        let found = match (address, id) {
            (Some(a), _) => self
                .peers
                .values()
                .find(|p| p.addr.to_string() == a || self.peer_targets.get(&p.id).is_some_and(|t| t == a))
                .map(|p| p.id),
            (None, Some(id)) => self.peers.contains_key(&id).then_some(id),
            (None, None) => None,
        };
        let id = found.ok_or(NetError::NotConnected)?;
        self.disconnect(id, "disconnectnode");
        Ok(())
    }

    /// `setban add|remove`.
    pub fn set_ban(&mut self, subnet: &str, add: bool, bantime: i64, absolute: bool) -> Result<(), NetError> {
        let subnet: Subnet = subnet.parse().map_err(|_| NetError::InvalidSubnet)?;
        let now = Self::unix_now();
        if add {
            if self.banlist.contains(&subnet) {
                return Err(NetError::AlreadyBanned);
            }
            let until = if absolute {
                bantime
            } else if bantime > 0 {
                now + bantime
            } else {
                now + DEFAULT_BAN_SECONDS
            };
            self.banlist.ban(subnet, now, until, "manually added");
            self.disconnect_matching(&subnet, "banned");
        } else if !self.banlist.unban(&subnet) {
            return Err(NetError::NotBanned);
        }
        self.save_banlist();
        Ok(())
    }

    /// `listbanned`.
    pub fn list_banned(&self) -> Vec<BannedInfo> {
        let now = Self::unix_now();
        self.banlist
            .entries()
            .filter(|(_, e)| e.until > now)
            .map(|(s, e): (&Subnet, &BanEntry)| BannedInfo {
                address: s.to_string(),
                ban_created: e.created,
                banned_until: e.until,
                ban_duration: e.until - e.created,
                time_remaining: e.until - now,
                ban_reason: e.reason.clone(),
            })
            .collect()
    }

    /// `clearbanned`.
    pub fn clear_banned(&mut self) {
        self.banlist.clear();
        self.save_banlist();
    }

    /// `ping`: a ping to every peer at the next chance.
    pub fn ping_all(&mut self) {
        let ids: Vec<PeerId> = self.peers.values().filter(|p| p.ready()).map(|p| p.id).collect();
        for id in ids {
            self.send_ping(id);
        }
    }

    /// `getnetworkinfo`'s `localaddresses`.
    pub fn local_addresses(&self) -> Vec<LocalAddress> {
        self.local_addrs.list()
    }

    /// `getnodeaddresses`: up to `count` addresses from the book (all for
    /// 0), in random order, of one network (`ipv4`, `ipv6`) or any.
    pub fn node_addresses(&self, count: usize, network: Option<&str>) -> Vec<NodeAddressInfo> {
        let salt: u64 = rand::thread_rng().gen();
        let mut rows: Vec<(u64, NodeAddressInfo)> = self
            .addrman
            .entries()
            .map(|(a, i)| {
                let (ip, network) = match a.ip() {
                    std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                        Some(v4) => (std::net::IpAddr::V4(v4), "ipv4"),
                        None => (a.ip(), "ipv6"),
                    },
                    v4 => (v4, "ipv4"),
                };
                let key = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (salt, a).hash(&mut h);
                    h.finish()
                };
                let row = NodeAddressInfo {
                    time: i.last_seen,
                    services: i.services,
                    address: ip.to_string(),
                    port: a.port(),
                    network,
                };
                (key, row)
            })
            .filter(|(_, r)| network.is_none_or(|n| n == r.network))
            .collect();
        rows.sort_unstable_by_key(|(k, _)| *k);
        if count > 0 {
            rows.truncate(count);
        }
        rows.into_iter().map(|(_, r)| r).collect()
    }
}

/// Removes a transaction's witness (for peers that did not ask for it).
fn strip_witness(tx: &mut Transaction) {
    for input in &mut tx.input {
        input.witness.clear();
    }
}

/// An `addr` or, to a peer that asked for it, an `addrv2` message of
/// `(address, services, time)` entries.
fn addr_message(addrv2: bool, entries: &[(SocketAddr, u64, u32)]) -> NetworkMessage {
    if addrv2 {
        NetworkMessage::AddrV2(
            entries
                .iter()
                .map(|(a, services, time)| AddrV2Message {
                    time: *time,
                    services: ServiceFlags::from(*services),
                    addr: match a.ip() {
                        std::net::IpAddr::V4(v4) => AddrV2::Ipv4(v4),
                        std::net::IpAddr::V6(v6) => AddrV2::Ipv6(v6),
                    },
                    port: a.port(),
                })
                .collect(),
        )
    } else {
        NetworkMessage::Addr(
            entries.iter().map(|(a, services, time)| (*time, Address::new(a, ServiceFlags::from(*services)))).collect(),
        )
    }
}

/// Core's `rand_exp_duration`: an exponentially distributed delay with mean
/// `average`, from a uniform `u` (the trickle's Poisson process).
pub fn poisson_delay(average: Duration, u: u64) -> Duration {
    let unit = (u >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    let factor = -(1.0 - unit).ln();
    average.mul_f64(factor.min(20.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chainstate;
    use crate::node::Node;
    use crate::params::{ChainParams, Network};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn clock() -> crate::chain::Clock {
        Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64)
    }

    fn processor(blocks: usize) -> (Processor, Arc<SharedNode>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = Chainstate::open(dir.path(), ChainParams::new(Network::Regtest), clock()).unwrap();
        for _ in 0..blocks {
            let script = bitcoin::ScriptBuf::from_bytes(vec![0x51]);
            let mut block = crate::mining::block_template(&chain, script, Vec::new(), bitcoin::Amount::ZERO);
            let stop = std::sync::atomic::AtomicBool::new(false);
            assert!(crate::mining::solve_header(&mut block.header, u64::MAX, &stop));
            assert_eq!(chain.process_block(&block).unwrap(), BlockOutcome::Connected);
        }
        let node = Arc::new(SharedNode::new(Node::new(chain)));
        let config = ProcessorConfig {
            magic: Magic::REGTEST,
            datadir: dir.path().to_owned(),
            connect: Vec::new(),
            auto_connect: false,
            addnode: Vec::new(),
            max_inbound: 10,
            max_outbound: 8,
            allow_local_addrs: true,
            ban_seconds: 60,
            local_services: peer::local_services(false),
            listen_port: Some(18444),
            external: Vec::new(),
            addr_broadcast_interval: addrrelay::AVG_ADDRESS_BROADCAST_INTERVAL,
        };
        (Processor::new(node.clone(), config), node, dir)
    }

    /// Delivers every queued frame, both ways, until both sides are quiet.
    fn pump(
        a: &mut Processor,
        from_a: &mut UnboundedReceiver<Vec<u8>>,
        b: &mut Processor,
        from_b: &mut UnboundedReceiver<Vec<u8>>,
    ) -> Vec<&'static str> {
        let mut seen = Vec::new();
        for round in 0..10_000 {
            let mut moved = false;
            while let Ok(frame) = from_a.try_recv() {
                let msg = wire::decode_frame(&frame).unwrap();
                seen.push(msg.cmd());
                b.on_message(1, msg);
                moved = true;
            }
            while let Ok(frame) = from_b.try_recv() {
                let msg = wire::decode_frame(&frame).unwrap();
                seen.push(msg.cmd());
                a.on_message(1, msg);
                moved = true;
            }
            if !moved {
                if round % 2 == 0 {
                    a.on_tick();
                    b.on_tick();
                    continue;
                }
                break;
            }
        }
        seen
    }

    #[test]
    fn two_processors_handshake_and_sync_headers_first_without_sockets() {
        let (mut a, node_a, _da) = processor(40);
        let (mut b, node_b, _db) = processor(0);
        let (to_b, mut from_a) = unbounded_channel();
        let (to_a, mut from_b) = unbounded_channel();
        let addr_a: SocketAddr = "127.0.0.1:18444".parse().unwrap();
        let addr_b: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        a.on_connected(1, addr_b, None, ConnectionType::Inbound, None, to_b, Arc::default());
        b.on_connected(1, addr_a, None, ConnectionType::Manual, Some(addr_a.to_string()), to_a, Arc::default());
        let seen = pump(&mut a, &mut from_a, &mut b, &mut from_b);
        for cmd in [
            "version",
            "verack",
            "wtxidrelay",
            "sendaddrv2",
            "sendheaders",
            "sendcmpct",
            "getheaders",
            "headers",
            "getdata",
            "block",
        ] {
            assert!(seen.contains(&cmd), "{cmd} in {seen:?}");
        }
        assert_eq!(node_b.lock().chain.tip().hash, node_a.lock().chain.tip().hash);
        assert_eq!(node_b.lock().chain.tip().height, 40);
        assert_eq!(a.counts(), ConnectionCounts { inbound: 1, outbound: 0 });
        assert_eq!(b.counts(), ConnectionCounts { inbound: 0, outbound: 1 });
        let info = b.peer_info();
        assert_eq!(info[0].synced_headers, 40);
        assert_eq!(info[0].subver, peer::USER_AGENT);
    }

    /// Connects `b` (outbound) to `a` (inbound) and completes the handshake.
    fn connect_pair(
        a: &mut Processor,
        b: &mut Processor,
    ) -> (UnboundedReceiver<Vec<u8>>, UnboundedReceiver<Vec<u8>>, Vec<&'static str>) {
        let (to_b, mut from_a) = unbounded_channel();
        let (to_a, mut from_b) = unbounded_channel();
        let addr_a: SocketAddr = "127.0.0.1:18444".parse().unwrap();
        let addr_b: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        a.on_connected(1, addr_b, None, ConnectionType::Inbound, None, to_b, Arc::default());
        b.on_connected(1, addr_a, None, ConnectionType::Manual, Some(addr_a.to_string()), to_a, Arc::default());
        let seen = pump(a, &mut from_a, b, &mut from_b);
        (from_a, from_b, seen)
    }

    #[test]
    fn our_address_is_announced_after_the_handshake_and_again_later() {
        let (mut a, _node_a, _da) = processor(1);
        a.config.external = vec!["127.0.0.2:18444".parse().unwrap()];
        a.local_addrs = LocalAddresses::new(&a.config.external, true, true);
        let (mut b, _node_b, _db) = processor(1);
        let (mut from_a, mut from_b, mut seen) = connect_pair(&mut a, &mut b);
        // The announcement goes out at the next tick after the handshake.
        a.on_tick();
        b.on_tick();
        seen.extend(pump(&mut a, &mut from_a, &mut b, &mut from_b));
        assert!(seen.contains(&"addrv2"), "{seen:?}");
        let learnt: SocketAddr = "127.0.0.2:18444".parse().unwrap();
        assert!(b.addrman.get(&learnt).is_some(), "b learnt a's address from its announcement");
        assert_eq!(b.addrman.get(&learnt).unwrap().services, 0x409);
        // B learnt its own address from A's version (B connected out to A).
        assert_eq!(b.local_addresses()[0].addr, "127.0.0.1:18444".parse::<SocketAddr>().unwrap());
        assert_eq!(a.local_addresses()[0].score, localaddr::LOCAL_MANUAL);
        // Nothing more until the next announcement is due; then once more.
        a.on_tick();
        assert!(from_a.try_recv().is_err(), "no second announcement yet");
        a.peers.get_mut(&1).unwrap().next_local_addr_send = Some(Instant::now());
        a.on_tick();
        let again: Vec<NetworkMessage> =
            std::iter::from_fn(|| from_a.try_recv().ok()).map(|f| wire::decode_frame(&f).unwrap()).collect();
        assert!(
            again.iter().any(|m| matches!(m, NetworkMessage::AddrV2(l) if l.len() == 1 && l[0].port == 18444)),
            "{again:?}"
        );
        let next = a.peers[&1].next_local_addr_send.unwrap();
        assert!(next > Instant::now(), "rescheduled");
    }

    #[test]
    fn a_pruned_node_refuses_blocks_below_the_limited_threshold() {
        let (mut a, node_a, _da) = processor(300);
        a.config.local_services = peer::local_services(true);
        let (mut b, _node_b, _db) = processor(0);
        let (mut from_a, _from_b, _) = connect_pair(&mut a, &mut b);
        let hash_at = |h: u32| node_a.lock().chain.index().active_hash(h).unwrap();
        // Within the last 290 blocks: served.
        a.on_message(1, NetworkMessage::GetData(vec![Inventory::WitnessBlock(hash_at(10))]));
        let served: Vec<NetworkMessage> =
            std::iter::from_fn(|| from_a.try_recv().ok()).map(|f| wire::decode_frame(&f).unwrap()).collect();
        assert!(served.iter().any(|m| matches!(m, NetworkMessage::Block(_))), "{served:?}");
        assert_eq!(a.counts().inbound, 1);
        // A block it does not know: notfound, as before.
        a.on_message(1, NetworkMessage::GetData(vec![Inventory::WitnessBlock(BlockHash::from_byte_array([7; 32]))]));
        let unknown = wire::decode_frame(&from_a.try_recv().unwrap()).unwrap();
        assert!(matches!(unknown, NetworkMessage::NotFound(_)), "{unknown:?}");
        assert_eq!(a.counts().inbound, 1);
        // Deeper: not served, and the peer is let go.
        a.on_message(1, NetworkMessage::GetData(vec![Inventory::WitnessBlock(hash_at(9))]));
        let after: Vec<NetworkMessage> =
            std::iter::from_fn(|| from_a.try_recv().ok()).map(|f| wire::decode_frame(&f).unwrap()).collect();
        assert!(!after.iter().any(|m| matches!(m, NetworkMessage::Block(_))), "{after:?}");
        assert_eq!(a.counts().inbound, 0);
    }

    #[test]
    fn garbage_bans_the_peer_and_bans_persist() {
        let (mut a, _node, dir) = processor(0);
        let (tx, _rx) = unbounded_channel();
        let addr: SocketAddr = "127.0.0.9:1234".parse().unwrap();
        a.on_connected(7, addr, None, ConnectionType::Inbound, None, tx, Arc::default());
        a.on_bad_frame(7, &WireError::BadCommand([1; 12]));
        assert_eq!(a.counts(), ConnectionCounts::default());
        assert!(!a.accept_inbound(addr), "a banned address is refused");
        assert!(a.accept_inbound("127.0.0.1:1".parse().unwrap()));
        assert_eq!(a.list_banned()[0].address, "127.0.0.9/32");
        let reloaded = BanList::load(&dir.path().join(banlist::FILE_NAME)).unwrap();
        assert!(reloaded.is_banned(addr.ip(), Processor::unix_now()));
        assert_eq!(a.set_ban("127.0.0.9", true, 0, false), Err(NetError::AlreadyBanned));
        assert_eq!(a.set_ban("nonsense", true, 0, false), Err(NetError::InvalidSubnet));
        assert_eq!(a.set_ban("127.0.0.9/32", false, 0, false), Ok(()));
        assert!(a.accept_inbound(addr));
    }

    #[test]
    fn messages_before_version_are_misbehaviour() {
        let (mut a, _node, _dir) = processor(0);
        let (tx, _rx) = unbounded_channel();
        a.on_connected(3, "127.0.0.7:1".parse().unwrap(), None, ConnectionType::Inbound, None, tx, Arc::default());
        for _ in 0..4 {
            a.on_message(3, NetworkMessage::Ping(1));
        }
        assert_eq!(a.peers[&3].score.points(), 80);
        a.on_message(3, NetworkMessage::Ping(1));
        assert!(a.peers.is_empty(), "banned at 100 points");
    }

    #[test]
    fn poisson_delays_average_out() {
        let mut total = Duration::ZERO;
        let n = 10_000u64;
        for i in 0..n {
            total += poisson_delay(Duration::from_secs(5), i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let mean = total.as_secs_f64() / n as f64;
        assert!((4.5..5.5).contains(&mean), "mean {mean}");
        assert_eq!(poisson_delay(Duration::from_secs(5), 0), Duration::ZERO);
    }
}
