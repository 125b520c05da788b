//! The connection manager, the I/O shell around the [`Processor`]: the
//! listening socket, outbound connection attempts, one tokio task per peer
//! (reading frames, writing its outbox), the clock, RPC commands, and
//! shutdown. Every task it starts is stopped and awaited on shutdown.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::p2p::{Magic, ServiceFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::addrrelay;
use super::localaddr::LocalAddress;
use super::peer::{self, ConnectionType, PeerStats};
use super::processor::{
    AddNodeOp, BannedInfo, ConnectionCounts, NetError, NodeAddressInfo, PeerInfo, Processor, ProcessorConfig,
    MAX_OUTBOUND_FULL_RELAY,
};
use super::sync::PeerId;
use super::wire::{self, WireError, HEADER_LEN};
use crate::node::SharedNode;
use crate::params::{ChainParams, Network as ChainNetwork};

/// How often the processor's clock ticks.
const TICK: Duration = Duration::from_millis(100);
/// Average time between flushes of relayed addresses on regtest and devnet.
const REGTEST_ADDRESS_BROADCAST_INTERVAL: Duration = Duration::from_secs(1);
/// Time for an outbound TCP connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time one frame may take to write before the peer is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Time the peer tasks get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The P2P flags of the daemon (Core's names).
#[derive(Debug, Clone, clap::Args)]
pub struct P2pArgs {
    /// Connect only to this peer (`host:port`; repeatable); no automatic
    /// outbound connections. `--connect=0` makes no outbound connections at all.
    #[arg(long = "connect", value_name = "ADDR")]
    pub connect: Vec<String>,
    /// Keep a connection to this peer as well (`host:port`; repeatable).
    #[arg(long = "addnode", value_name = "ADDR")]
    pub addnode: Vec<String>,
    /// Accept inbound P2P connections (`--listen=0` to refuse them).
    #[arg(long, default_value = "1", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "1")]
    pub listen: bool,
    /// P2P port to listen on; default the network's (regtest 18444, main 8333).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on for P2P connections (default all interfaces).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Most connections, inbound and outbound together.
    #[arg(long, default_value_t = 125)]
    pub maxconnections: usize,
    /// Largest P2P message payload accepted, in bytes.
    #[arg(long, default_value_t = wire::DEFAULT_MAX_MESSAGE_SIZE)]
    pub maxmessagesize: usize,
    /// Seconds a misbehaving peer stays banned.
    #[arg(long, default_value_t = super::misbehavior::DEFAULT_BAN_SECONDS)]
    pub bantime: i64,
    /// Our public address, announced to peers so that they can connect to
    /// us (`ip` or `ip:port`, `[ipv6]:port`; the port defaults to the P2P
    /// port; repeatable). Without it, the address outbound peers say they see
    /// us at is announced.
    #[arg(long = "externalip", value_name = "IP[:PORT]")]
    pub externalip: Vec<ExternalIp>,
}

/// An `--externalip`: an IP address, with or without a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalIp {
    /// The address.
    pub ip: IpAddr,
    /// The port, if given.
    pub port: Option<u16>,
}

impl ExternalIp {
    /// The address with `default_port` where none was given.
    pub fn with_default_port(self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(default_port))
    }
}

/// An `--externalip` that is not an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IP address or IP:port (for IPv6 with a port: [address]:port)")]
pub struct BadExternalIp(String);

impl std::str::FromStr for ExternalIp {
    type Err = BadExternalIp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ExternalIp { ip: addr.ip(), port: Some(addr.port()) });
        }
        let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Ok(ExternalIp { ip, port: None }),
            Err(_) => Err(BadExternalIp(s.to_owned())),
        }
    }
}

/// Starting the network failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The P2P port could not be bound.
    #[error("while binding the P2P port {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What the RPC thread asks of the network.
enum Command {
    PeerInfo(oneshot::Sender<Vec<PeerInfo>>),
    Counts(oneshot::Sender<ConnectionCounts>),
    AddNode(String, AddNodeOp, oneshot::Sender<Result<(), NetError>>),
    Disconnect(Option<String>, Option<PeerId>, oneshot::Sender<Result<(), NetError>>),
    SetBan { subnet: String, add: bool, bantime: i64, absolute: bool, reply: oneshot::Sender<Result<(), NetError>> },
    ListBanned(oneshot::Sender<Vec<BannedInfo>>),
    ClearBanned(oneshot::Sender<()>),
    Ping(oneshot::Sender<()>),
    LocalAddresses(oneshot::Sender<Vec<LocalAddress>>),
    NodeAddresses(usize, Option<String>, oneshot::Sender<Vec<NodeAddressInfo>>),
}

/// A handle on the running network for the RPC methods. Its calls block
/// until the network answers: call them from blocking threads only.
#[derive(Clone)]
pub struct NetHandle {
    commands: mpsc::UnboundedSender<Command>,
    listen_addr: Option<SocketAddr>,
    local_services: ServiceFlags,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle")
            .field("listen_addr", &self.listen_addr)
            .field("local_services", &self.local_services)
            .finish()
    }
}

impl NetHandle {
    fn ask<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> Command) -> Result<R, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| NetError::Disabled)?;
        rx.blocking_recv().map_err(|_| NetError::Disabled)
    }

    /// The address the node listens on, if it does.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// The services we offer (`getnetworkinfo`'s `localservices`).
    pub fn local_services(&self) -> ServiceFlags {
        self.local_services
    }

    /// Our own addresses (`getnetworkinfo`'s `localaddresses`).
    pub fn local_addresses(&self) -> Result<Vec<LocalAddress>, NetError> {
        self.ask(Command::LocalAddresses)
    }

    /// `getnodeaddresses`: up to `count` (0: all) of the address book's
    /// entries, of `network` (`ipv4`, `ipv6`) or any.
    pub fn node_addresses(&self, count: usize, network: Option<&str>) -> Result<Vec<NodeAddressInfo>, NetError> {
        self.ask(|r| Command::NodeAddresses(count, network.map(str::to_owned), r))
    }

    /// `getpeerinfo`.
    pub fn peer_info(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(Command::PeerInfo)
    }

    /// Inbound and outbound connection counts.
    pub fn counts(&self) -> Result<ConnectionCounts, NetError> {
        self.ask(Command::Counts)
    }

    /// `addnode`.
    pub fn add_node(&self, node: &str, op: AddNodeOp) -> Result<(), NetError> {
        self.ask(|r| Command::AddNode(node.to_owned(), op, r))?
    }

    /// `disconnectnode`.
    pub fn disconnect(&self, address: Option<&str>, id: Option<PeerId>) -> Result<(), NetError> {
        self.ask(|r| Command::Disconnect(address.map(str::to_owned), id, r))?
    }

    /// `setban`.
    pub fn set_ban(&self, subnet: &str, add: bool, bantime: i64, absolute: bool) -> Result<(), NetError> {
        self.ask(|reply| Command::SetBan { subnet: subnet.to_owned(), add, bantime, absolute, reply })?
    }

    /// `listbanned`.
    pub fn list_banned(&self) -> Result<Vec<BannedInfo>, NetError> {
        self.ask(Command::ListBanned)
    }

    /// `clearbanned`.
    pub fn clear_banned(&self) -> Result<(), NetError> {
        self.ask(Command::ClearBanned)
    }

    /// `ping`.
    pub fn ping(&self) -> Result<(), NetError> {
        self.ask(Command::Ping)
    }
}

/// The running network: its handle, and the task to await at shutdown.
pub struct Network {
    /// For the RPC methods.
    pub handle: NetHandle,
    /// Ends after the shutdown signal, once every peer task has stopped.
    pub task: tokio::task::JoinHandle<()>,
}

enum Event {
    Ready {
        id: PeerId,
        addr: SocketAddr,
        local: Option<SocketAddr>,
        conn_type: ConnectionType,
        target: Option<String>,
        outbox: mpsc::UnboundedSender<Vec<u8>>,
        stats: Arc<PeerStats>,
    },
    ConnectFailed {
        target: String,
        addr: Option<SocketAddr>,
    },
    Message(PeerId, bitcoin::p2p::message::NetworkMessage),
    BadFrame(PeerId, WireError),
    Closed(PeerId),
}

#[derive(Clone)]
struct PeerEnv {
    magic: Magic,
    max_message: usize,
    events: mpsc::Sender<Event>,
    shutdown: watch::Receiver<bool>,
}

/// Starts the network: binds the listening port (unless `--listen=0`) and
/// spawns the manager, which runs until `shutdown` turns true.
pub async fn start(
    args: &P2pArgs,
    params: &ChainParams,
    datadir: &Path,
    node: Arc<SharedNode>,
    shutdown: watch::Receiver<bool>,
) -> Result<Network, StartError> {
    let magic = Magic::from_bytes(params.message_start);
    let listener = if args.listen {
        let ip = args.bind.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let addr = SocketAddr::new(ip, args.port.unwrap_or(params.default_port));
        match TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(addr = %l.local_addr().unwrap_or(addr), "P2P listening");
                Some(l)
            }
            // The default port taken (another node on this machine): carry on
            // without inbound connections rather than refuse to start.
            Err(e) if args.port.is_none() && args.bind.is_none() => {
                tracing::warn!(%addr, "P2P port not bound, no inbound connections: {e}");
                None
            }
            Err(source) => return Err(StartError::Bind { addr, source }),
        }
    } else {
        None
    };
    let listen_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
    // Core's `GetListenPort`: the port we are reachable at, for addresses
    // given without one.
    let port = listen_addr.map_or(args.port.unwrap_or(params.default_port), |a| a.port());
    let pruned = tokio::task::block_in_place(|| node.lock().chain.prune_mode().is_on());
    let local_services = peer::local_services(pruned);
    tracing::info!(services = format!("{:016x}", local_services.to_u64()), "P2P local services");
    let connect_disabled = args.connect.iter().any(|c| c == "0");
    let connect: Vec<String> = args.connect.iter().filter(|c| *c != "0").cloned().collect();
    let max_outbound = MAX_OUTBOUND_FULL_RELAY.min(args.maxconnections);
    let config = ProcessorConfig {
        magic,
        datadir: datadir.to_owned(),
        auto_connect: args.connect.is_empty() && !connect_disabled,
        connect,
        addnode: args.addnode.clone(),
        max_inbound: args.maxconnections.saturating_sub(max_outbound),
        max_outbound,
        allow_local_addrs: matches!(params.network, ChainNetwork::Regtest | ChainNetwork::Devnet),
        ban_seconds: args.bantime,
        local_services,
        listen_port: listen_addr.map(|a| a.port()),
        external: args.externalip.iter().map(|e| e.with_default_port(port)).collect(),
        // Core keeps 30 s on regtest and mocks time in its tests; we cannot,
        // so regtest and devnet flush relayed addresses every second or so.
        addr_broadcast_interval: match params.network {
            ChainNetwork::Regtest | ChainNetwork::Devnet => REGTEST_ADDRESS_BROADCAST_INTERVAL,
            _ => addrrelay::AVG_ADDRESS_BROADCAST_INTERVAL,
        },
    };
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let processor = tokio::task::block_in_place(|| Processor::new(node, config));
    let max_message = args.maxmessagesize;
    let task = tokio::spawn(manage(processor, listener, commands_rx, shutdown, magic, max_message));
    Ok(Network { handle: NetHandle { commands: commands_tx, listen_addr, local_services }, task })
}

async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The manager's loop: everything the processor does happens here, one
/// event at a time, inside `block_in_place` (it takes the node's lock).
async fn manage(
    mut processor: Processor,
    listener: Option<TcpListener>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut shutdown: watch::Receiver<bool>,
    magic: Magic,
    max_message: usize,
) {
    let (events_tx, mut events) = mpsc::channel::<Event>(4096);
    let env = PeerEnv { magic, max_message, events: events_tx, shutdown: shutdown.clone() };
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut next_id: PeerId = 0;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            Some(event) = events.recv() => tokio::task::block_in_place(|| handle_event(&mut processor, event)),
            Some(command) = commands.recv() => tokio::task::block_in_place(|| handle_command(&mut processor, command)),
            accepted = accept(&listener) => match accepted {
                Ok((stream, addr)) => {
                    if tokio::task::block_in_place(|| processor.accept_inbound(addr)) {
                        next_id += 1;
                        tasks.spawn(run_peer(next_id, stream, ConnectionType::Inbound, None, env.clone()));
                    }
                }
                Err(e) => {
                    tracing::warn!("accepting a P2P connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = tick.tick() => tokio::task::block_in_place(|| processor.on_tick()),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
        for request in processor.take_connect_requests() {
            next_id += 1;
            tasks.spawn(connect(next_id, request.target, request.conn_type, env.clone()));
        }
    }
    tracing::info!(peers = tasks.len(), "P2P shutting down");
    tokio::task::block_in_place(|| processor.shutdown());
    drop(listener);
    drop(env);
    // Peer tasks see the shutdown signal, or their closed outboxes; events
    // they still send are drained so that none waits on a full channel.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = events.recv() => {}
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(left = tasks.len(), "P2P tasks did not stop in time; aborting them");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
    }
    tracing::info!("P2P stopped");
}

fn handle_event(processor: &mut Processor, event: Event) {
    match event {
        Event::Ready { id, addr, local, conn_type, target, outbox, stats } => {
            processor.on_connected(id, addr, local, conn_type, target, outbox, stats)
        }
        Event::ConnectFailed { target, addr } => processor.on_connect_failed(&target, addr),
        Event::Message(id, msg) => processor.on_message(id, msg),
        Event::BadFrame(id, e) => processor.on_bad_frame(id, &e),
        Event::Closed(id) => processor.on_closed(id),
    }
}

fn handle_command(processor: &mut Processor, command: Command) {
    // A caller that stopped waiting is no error.
    match command {
        Command::PeerInfo(r) => drop(r.send(processor.peer_info())),
        Command::Counts(r) => drop(r.send(processor.counts())),
        Command::AddNode(node, op, r) => drop(r.send(processor.add_node(&node, op))),
        Command::Disconnect(addr, id, r) => drop(r.send(processor.disconnect_node(addr.as_deref(), id))),
        Command::SetBan { subnet, add, bantime, absolute, reply } => {
            drop(reply.send(processor.set_ban(&subnet, add, bantime, absolute)))
        }
        Command::ListBanned(r) => drop(r.send(processor.list_banned())),
        Command::ClearBanned(r) => {
            processor.clear_banned();
            let _ = r.send(());
        }
        Command::Ping(r) => {
            processor.ping_all();
            let _ = r.send(());
        }
        Command::LocalAddresses(r) => drop(r.send(processor.local_addresses())),
        Command::NodeAddresses(count, network, r) => drop(r.send(processor.node_addresses(count, network.as_deref()))),
    }
}

/// Opens an outbound connection to `target`, then runs it.
async fn connect(id: PeerId, target: String, conn_type: ConnectionType, env: PeerEnv) {
    let mut shutdown = env.shutdown.clone();
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target.as_str()).await?.collect();
        let addr = *addrs.first().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrNotAvailable))?;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        Ok::<_, std::io::Error>(stream)
    };
    let result = tokio::select! {
        r = attempt => r,
        _ = shutdown.wait_for(|s| *s) => return,
    };
    match result {
        Ok(stream) => run_peer(id, stream, conn_type, Some(target), env).await,
        Err(e) => {
            tracing::debug!(%target, "connection attempt failed: {e}");
            let addr = target.parse().ok();
            let _ = env.events.send(Event::ConnectFailed { target, addr }).await;
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// One peer's task: announces the connection, then reads frames into
/// events and writes its outbox until either side closes, the processor
/// drops the outbox, or the node shuts down.
async fn run_peer(id: PeerId, stream: TcpStream, conn_type: ConnectionType, target: Option<String>, env: PeerEnv) {
    let Ok(addr) = stream.peer_addr() else { return };
    let local = stream.local_addr().ok();
    let _ = stream.set_nodelay(true);
    let (outbox_tx, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
    let stats = Arc::new(PeerStats::default());
    let ready = Event::Ready { id, addr, local, conn_type, target, outbox: outbox_tx, stats: stats.clone() };
    if env.events.send(ready).await.is_err() {
        return;
    }
    let (read_half, mut write_half) = stream.into_split();
    let events = env.events.clone();
    let reader_stats = stats.clone();
    let reader = async move {
        let mut reader = BufReader::with_capacity(256 * 1024, read_half);
        loop {
            let mut head = [0u8; HEADER_LEN];
            if reader.read_exact(&mut head).await.is_err() {
                return;
            }
            let header = match wire::parse_header(&head, env.magic, env.max_message) {
                Ok(h) => h,
                Err(e) => {
                    let _ = events.send(Event::BadFrame(id, e)).await;
                    return;
                }
            };
            let mut frame = vec![0u8; HEADER_LEN + header.length as usize];
            frame[..HEADER_LEN].copy_from_slice(&head);
            if reader.read_exact(&mut frame[HEADER_LEN..]).await.is_err() {
                return;
            }
            reader_stats.received(frame.len(), unix_now());
            let event = match wire::decode_frame(&frame) {
                Ok(msg) => Event::Message(id, msg),
                Err(e) => Event::BadFrame(id, e),
            };
            let fatal = matches!(event, Event::BadFrame(..));
            if events.send(event).await.is_err() || fatal {
                return;
            }
        }
    };
    let writer = async move {
        while let Some(frame) = outbox.recv().await {
            match tokio::time::timeout(WRITE_TIMEOUT, write_half.write_all(&frame)).await {
                Ok(Ok(())) => stats.sent(frame.len(), unix_now()),
                _ => return,
            }
        }
        // The processor dropped us: everything queued is written; close.
        let _ = write_half.shutdown().await;
    };
    let mut shutdown = env.shutdown.clone();
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
        _ = shutdown.wait_for(|s| *s) => return,
    }
    tokio::select! {
        _ = env.events.send(Event::Closed(id)) => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn externalip_takes_an_ip_with_or_without_a_port() {
        let cases: [(&str, Option<SocketAddr>); 7] = [
            ("1.2.3.4", Some("1.2.3.4:18444".parse().unwrap())),
            ("1.2.3.4:8333", Some("1.2.3.4:8333".parse().unwrap())),
            ("2001:db8::1", Some("[2001:db8::1]:18444".parse().unwrap())),
            ("[2001:db8::1]", Some("[2001:db8::1]:18444".parse().unwrap())),
            ("[2001:db8::1]:8333", Some("[2001:db8::1]:8333".parse().unwrap())),
            ("example.com", None),
            ("1.2.3.4:99999", None),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<ExternalIp>().ok().map(|e| e.with_default_port(18444));
            assert_eq!(parsed, expected, "{text}");
        }
        let err = "nope".parse::<ExternalIp>().unwrap_err();
        assert!(err.to_string().contains("'nope'"), "{err}");
    }
}
