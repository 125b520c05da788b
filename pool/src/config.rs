//! The pool's configuration: one typed [`Config`], built in layers — a TOML
//! file, then environment variables, then flags — and checked as a whole at
//! start, so that a bad value stops the pool with its key and the reason
//! before anything listens.
//!
//! Every flag has an environment variable named `SATPOOL_POOL_` + the flag in
//! upper case (`--pool-fee` → `SATPOOL_POOL_FEE`), except `--network`, which
//! reads `SATPOOL_NETWORK` like the node does. Clap applies the environment
//! below the flags; the file lies below both. Secrets never come from a flag:
//! the node's password is read from `SATPOOL_POOL_NODE_PASSWORD` or from a file.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Amount};
use clap::Parser;
use satpool_rpc::Auth;
use serde::Deserialize;

/// The largest extranonce2 a miner may be given: with the 4-byte extranonce1
/// and the pool tag it must fit the 100-byte scriptSig.
pub const MAX_EXTRANONCE2_SIZE: u8 = 16;

/// The networks the pool can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Bitcoin's main network.
    Mainnet,
    /// Bitcoin's third test network (Bitcoin Core only).
    Testnet,
    /// Bitcoin's fourth test network (BIP 94).
    Testnet4,
    /// The default signet (Bitcoin Core only).
    Signet,
    /// Bitcoin Core's regression-test network.
    Regtest,
    /// satpool's demo network (regtest's address formats).
    Devnet,
}

impl Network {
    /// The name used on the command line, as the node names it.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "main",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
            Network::Devnet => "devnet",
        }
    }

    /// The rust-bitcoin network whose address formats this network uses
    /// (devnet shares regtest's `bcrt`, as satpool-node does).
    pub fn address_network(self) -> bitcoin::Network {
        match self {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest | Network::Devnet => bitcoin::Network::Regtest,
        }
    }

    /// The node's default JSON-RPC port (satpool-node's and Bitcoin Core's).
    pub fn default_rpc_port(self) -> u16 {
        match self {
            Network::Mainnet => 8332,
            Network::Testnet => 18332,
            Network::Testnet4 => 48332,
            Network::Signet => 38332,
            Network::Regtest => 18443,
            Network::Devnet => 28443,
        }
    }

    /// Whether this is a network where coins have no value, on which a fixed
    /// PPLNS window makes sense.
    pub fn is_test(self) -> bool {
        !matches!(self, Network::Mainnet)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" | "mainnet" | "bitcoin" => Ok(Network::Mainnet),
            "test" | "testnet" | "testnet3" => Ok(Network::Testnet),
            "testnet4" => Ok(Network::Testnet4),
            "signet" => Ok(Network::Signet),
            "regtest" => Ok(Network::Regtest),
            "devnet" => Ok(Network::Devnet),
            other => {
                Err(format!("unknown network '{other}' (expected main, testnet, testnet4, signet, regtest or devnet)"))
            }
        }
    }
}

/// How the block reward is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutMode {
    /// Pay per last N shares, in the coinbase (whitepaper section 6).
    Pplns,
    /// The finder of a block takes its reward, less the pool fee.
    Solo,
}

impl FromStr for PayoutMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pplns" => Ok(PayoutMode::Pplns),
            "solo" => Ok(PayoutMode::Solo),
            other => Err(format!("unknown payout mode '{other}' (expected pplns or solo)")),
        }
    }
}

/// How far back PPLNS looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PplnsWindow {
    /// A multiple of the network difficulty at the time of the block (the
    /// usual N = 2: the window holds twice the work expected per block).
    NetworkMultiple(f64),
    /// A fixed sum of share difficulty, whatever the network's: for test
    /// networks, where the difficulty is tiny or swings.
    Fixed(f64),
}

impl PplnsWindow {
    /// The window as a sum of share difficulty, given the network difficulty.
    pub fn difficulty(self, network_difficulty: f64) -> f64 {
        match self {
            PplnsWindow::NetworkMultiple(k) => k * network_difficulty,
            PplnsWindow::Fixed(d) => d,
        }
    }
}

impl FromStr for PplnsWindow {
    type Err = String;
    /// `"2x"` is twice the network difficulty; a bare number (`"5000"`) is a
    /// fixed sum of share difficulty.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (number, multiple) = match s.strip_suffix(['x', 'X']) {
            Some(n) => (n.trim(), true),
            None => (s, false),
        };
        let value: f64 = number.parse().map_err(|_| {
            format!(
                "'{s}' is neither a multiple of the network difficulty ('2x') nor a sum of share difficulty ('5000')"
            )
        })?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("'{s}' must be positive"));
        }
        Ok(if multiple { PplnsWindow::NetworkMultiple(value) } else { PplnsWindow::Fixed(value) })
    }
}

/// The pool's fee, in parts per million of the coinbase value (so that the
/// payout arithmetic stays in integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PoolFee {
    ppm: u32,
}

impl PoolFee {
    /// No fee.
    pub const ZERO: PoolFee = PoolFee { ppm: 0 };
    /// One million parts: the whole reward.
    pub const WHOLE: u32 = 1_000_000;

    /// A fee of `ppm` millionths; `None` above 100 %.
    pub fn from_ppm(ppm: u32) -> Option<PoolFee> {
        (ppm <= Self::WHOLE).then_some(PoolFee { ppm })
    }

    /// The fee from a percentage with at most four decimals (`1.5` → 15 000 ppm).
    pub fn from_percent(percent: f64) -> Result<PoolFee, String> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err(format!("{percent} is not a percentage between 0 and 100"));
        }
        let ppm = (percent * 10_000.0).round();
        if (ppm - percent * 10_000.0).abs() > 1e-6 {
            return Err(format!("{percent} has more than four decimals"));
        }
        // In range: 0 ..= 1 000 000.
        Ok(PoolFee { ppm: ppm as u32 })
    }

    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.ppm
    }
}

impl fmt::Display for PoolFee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", f64::from(self.ppm) / 10_000.0)
    }
}

/// Where the ledger lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created if absent.
    Sqlite(PathBuf),
    /// A PostgreSQL server, by URL (may hold a password: `Debug` hides it).
    Postgres(String),
}

impl Database {
    /// Parses `sqlite:PATH`, `sqlite://PATH` or `postgres://…`/`postgresql://…`.
    pub fn parse(url: &str) -> Result<Database, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err("a SQLite ledger needs a file path (sqlite:/var/lib/satpool/ledger.sqlite)".into());
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        Err("expected sqlite:PATH or postgres://…".into())
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(url)).finish(),
        }
    }
}

/// `scheme://user:secret@host` → `scheme://user:<redacted>@host`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

/// The node the pool takes its templates from.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The JSON-RPC URL.
    pub url: String,
    /// The credentials (the password's `Debug` prints `<redacted>`).
    pub auth: Auth,
}

/// What the Stratum server needs.
#[derive(Debug, Clone)]
pub struct StratumConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Bytes of extranonce2 each miner rolls.
    pub extranonce2_size: u8,
    /// The difficulty a new connection starts at.
    pub start_difficulty: f64,
    /// Vardiff never goes below this.
    pub min_difficulty: f64,
    /// Vardiff never goes above this.
    pub max_difficulty: f64,
    /// The time vardiff aims to see between two shares of one connection.
    pub share_rate: Duration,
}

/// Limits that keep one miner, or a crowd, from hurting the rest, and the
/// other knobs that have a safe default: everything here comes from
/// [`Limits::default`] unless the file, the environment or a flag says
/// otherwise, so that a [`Config`] built by hand takes them all at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Connections at once, in all.
    pub max_connections: usize,
    /// Connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// The longest Stratum line, in bytes; a longer one closes the connection.
    pub max_line_length: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// A connection that has not subscribed and authorized this long after
    /// connecting is closed.
    pub handshake_timeout: Duration,
    /// Jobs kept for late shares (older ones answer "job not found").
    pub max_jobs: usize,
    /// Shares remembered per job and connection for the duplicate check;
    /// past it, shares of that job that are not blocks are refused (code 21)
    /// until the next job (see [`crate::share`]).
    pub max_shares_per_job: usize,
    /// Shares of one connection that may wait for the ledger at once; more
    /// make the connection wait before reading on.
    pub pending_shares: usize,
    /// Shares of all connections that may wait for the ledger's group
    /// commit; a full queue makes sessions wait, it never drops a share.
    pub share_queue: usize,
    /// Lines that may wait for one connection's socket; a full queue drops
    /// the connection (a miner that does not read).
    pub outbound_queue: usize,
    /// A write to a socket that takes longer drops the connection.
    pub write_timeout: Duration,
    /// Invalid shares (or unparsable lines) within `ban_window` that get an
    /// IP address banned.
    pub ban_threshold: u32,
    /// The window of `ban_threshold`.
    pub ban_window: Duration,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// Vardiff's window: how long it watches a connection's shares before
    /// it retargets (sooner when many shares arrive). `None`: six times
    /// `stratum.share_rate`.
    pub vardiff_window: Option<Duration>,
    /// Connections to the ledger's database.
    pub db_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_line_length: 8 * 1024,
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(30),
            max_jobs: 32,
            max_shares_per_job: crate::share::DEFAULT_MAX_SHARES_PER_JOB,
            pending_shares: 64,
            share_queue: 16_384,
            outbound_queue: 256,
            write_timeout: Duration::from_secs(10),
            ban_threshold: 100,
            ban_window: Duration::from_secs(60),
            ban_duration: Duration::from_secs(600),
            vardiff_window: None,
            db_connections: 8,
        }
    }
}

/// How the reward is paid.
#[derive(Debug, Clone)]
pub struct PayoutConfig {
    /// PPLNS or solo.
    pub mode: PayoutMode,
    /// The operator's address, which takes the fee and any rounding remainder.
    pub address: Address,
    /// The operator's fee.
    pub fee: PoolFee,
    /// The PPLNS window.
    pub window: PplnsWindow,
    /// Amounts below this stay owed rather than becoming coinbase outputs.
    pub min_payout: Amount,
    /// At most this many payout outputs in a coinbase (the operator's
    /// included); the smallest are kept owed.
    pub max_outputs: usize,
}

/// Everything the pool binary is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network served.
    pub network: Network,
    /// Where the pool keeps its files.
    pub data_dir: PathBuf,
    /// The ledger.
    pub database: Database,
    /// The node.
    pub node: NodeConfig,
    /// The Stratum server.
    pub stratum: StratumConfig,
    /// The dashboard, API and metrics.
    pub http_listen: SocketAddr,
    /// The reward's sharing.
    pub payout: PayoutConfig,
    /// Text put in every coinbase's scriptSig (shortened to fit 100 bytes).
    pub pool_tag: String,
    /// A fresh template at least this often, so new fees reach miners.
    pub template_refresh: Duration,
    /// Connection limits.
    pub limits: Limits,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the TOML expected.
    #[error("cannot parse the configuration file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value was refused.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The file key (with its flag when there is one).
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The operator's address is malformed or of another network.
    #[error("invalid pool.address (--pool-address) '{address}' for network {network}")]
    Address {
        /// The address given.
        address: String,
        /// The network served.
        network: Network,
        /// The cause.
        #[source]
        source: bitcoin::address::ParseError,
    },
    /// The node's password file could not be read.
    #[error("cannot read node.password_file (--node-password-file) {path}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

/// The command line (and the environment, through clap). Every value is
/// optional here: what is absent comes from the file, then from the default.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "satpool", version, about = "satpool: a Bitcoin mining pool (Stratum V1, PPLNS in the coinbase)")]
pub struct Args {
    /// A TOML configuration file (see deploy/satpool.toml).
    #[arg(long, env = "SATPOOL_POOL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Network: main, testnet, testnet4, signet, regtest or devnet [default: devnet].
    #[arg(long, env = "SATPOOL_NETWORK")]
    pub network: Option<String>,
    /// The node's JSON-RPC URL [default: http://127.0.0.1:<the network's RPC port>/].
    #[arg(long, env = "SATPOOL_POOL_NODE_URL")]
    pub node_url: Option<String>,
    /// The node's cookie file, or its data directory (holding `.cookie`).
    #[arg(long, env = "SATPOOL_POOL_NODE_COOKIE")]
    pub node_cookie: Option<PathBuf>,
    /// The node's RPC user (the password from SATPOOL_POOL_NODE_PASSWORD or --node-password-file).
    #[arg(long, env = "SATPOOL_POOL_NODE_USER")]
    pub node_user: Option<String>,
    /// A file holding the node's RPC password.
    #[arg(long, env = "SATPOOL_POOL_NODE_PASSWORD_FILE")]
    pub node_password_file: Option<PathBuf>,
    /// Stratum listen address [default: 0.0.0.0:3333].
    #[arg(long, env = "SATPOOL_POOL_STRATUM")]
    pub stratum: Option<String>,
    /// HTTP (dashboard, API, metrics) listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "SATPOOL_POOL_HTTP")]
    pub http: Option<String>,
    /// The ledger: sqlite:PATH or postgres://… [default: sqlite:<data-dir>/ledger.sqlite].
    #[arg(long, env = "SATPOOL_POOL_DB", hide_env_values = true)]
    pub db: Option<String>,
    /// Data directory [default: ~/.satpool/<network>/pool].
    #[arg(long, env = "SATPOOL_POOL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The operator's address: takes the fee and rounding remainders.
    #[arg(long, env = "SATPOOL_POOL_ADDRESS")]
    pub pool_address: Option<String>,
    /// The operator's fee in percent [default: 1].
    #[arg(long, env = "SATPOOL_POOL_FEE")]
    pub pool_fee: Option<f64>,
    /// pplns or solo [default: pplns].
    #[arg(long, env = "SATPOOL_POOL_PAYOUT")]
    pub payout: Option<String>,
    /// PPLNS window: "2x" (twice the network difficulty) or a fixed sum of share difficulty [default: 2x].
    #[arg(long, env = "SATPOOL_POOL_PPLNS_WINDOW")]
    pub pplns_window: Option<String>,
    /// Smallest payout output, in satoshis; less stays owed [default: 10000].
    #[arg(long, env = "SATPOOL_POOL_MIN_PAYOUT")]
    pub min_payout: Option<u64>,
    /// Most payout outputs in one coinbase [default: 200].
    #[arg(long, env = "SATPOOL_POOL_MAX_OUTPUTS")]
    pub max_outputs: Option<usize>,
    /// Difficulty a new connection starts at [default: 1].
    #[arg(long, env = "SATPOOL_POOL_START_DIFFICULTY")]
    pub start_difficulty: Option<f64>,
    /// Lowest vardiff difficulty [default: 0.001].
    #[arg(long, env = "SATPOOL_POOL_MIN_DIFFICULTY")]
    pub min_difficulty: Option<f64>,
    /// Highest vardiff difficulty [default: 1e15].
    #[arg(long, env = "SATPOOL_POOL_MAX_DIFFICULTY")]
    pub max_difficulty: Option<f64>,
    /// Target seconds between two shares of one connection [default: 10].
    #[arg(long, env = "SATPOOL_POOL_SHARE_RATE")]
    pub share_rate: Option<f64>,
    /// Bytes of extranonce2 [default: 8].
    #[arg(long, env = "SATPOOL_POOL_EXTRANONCE2_SIZE")]
    pub extranonce2_size: Option<u8>,
    /// Text in every coinbase [default: /satpool/].
    #[arg(long, env = "SATPOOL_POOL_TAG")]
    pub pool_tag: Option<String>,
    /// Seconds between template refreshes [default: 30].
    #[arg(long, env = "SATPOOL_POOL_TEMPLATE_REFRESH")]
    pub template_refresh: Option<u64>,
    /// Most connections at once [default: 10000].
    #[arg(long, env = "SATPOOL_POOL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most connections at once from one IP [default: 256].
    #[arg(long, env = "SATPOOL_POOL_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Longest Stratum line in bytes [default: 8192].
    #[arg(long, env = "SATPOOL_POOL_MAX_LINE_LENGTH")]
    pub max_line_length: Option<usize>,
    /// Seconds of silence before a connection is closed [default: 600].
    #[arg(long, env = "SATPOOL_POOL_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Seconds a new connection has to subscribe and authorize, 1 to 3600 [default: 30].
    #[arg(long, env = "SATPOOL_POOL_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<u64>,
    /// Jobs each connection keeps for late shares, 1 to 1024 [default: 32].
    #[arg(long, env = "SATPOOL_POOL_MAX_JOBS")]
    pub max_jobs: Option<usize>,
    /// Shares remembered per job and connection for the duplicate check; past it, shares that are not blocks
    /// are refused until the next job, 100 to 100000000 [default: 100000].
    #[arg(long, env = "SATPOOL_POOL_MAX_SHARES_PER_JOB")]
    pub max_shares_per_job: Option<usize>,
    /// Shares of one connection waiting for the ledger at once, 1 to 65536 [default: 64].
    #[arg(long, env = "SATPOOL_POOL_PENDING_SHARES")]
    pub pending_shares: Option<usize>,
    /// Shares of all connections waiting for the ledger's group commit, 1 to 1000000 [default: 16384].
    #[arg(long, env = "SATPOOL_POOL_SHARE_QUEUE")]
    pub share_queue: Option<usize>,
    /// Lines waiting for one connection's socket before it is dropped, 4 to 65536 [default: 256].
    #[arg(long, env = "SATPOOL_POOL_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// Seconds a write to a miner's socket may take before the connection is dropped, 1 to 600 [default: 10].
    #[arg(long, env = "SATPOOL_POOL_WRITE_TIMEOUT")]
    pub write_timeout: Option<u64>,
    /// Invalid shares within the ban window that get an IP banned [default: 100].
    #[arg(long, env = "SATPOOL_POOL_BAN_THRESHOLD")]
    pub ban_threshold: Option<u32>,
    /// Seconds over which invalid shares are counted toward a ban, 1 to 86400 [default: 60].
    #[arg(long, env = "SATPOOL_POOL_BAN_WINDOW")]
    pub ban_window: Option<u64>,
    /// Seconds a ban lasts, 1 to 2592000 [default: 600].
    #[arg(long, env = "SATPOOL_POOL_BAN_DURATION")]
    pub ban_duration: Option<u64>,
    /// Seconds vardiff watches a connection before it retargets, from --share-rate to 86400
    /// [default: 6 × --share-rate].
    #[arg(long, env = "SATPOOL_POOL_VARDIFF_WINDOW")]
    pub vardiff_window: Option<u64>,
    /// Connections to the ledger's database, 1 to 1000 [default: 8].
    #[arg(long, env = "SATPOOL_POOL_DB_CONNECTIONS")]
    pub db_connections: Option<u32>,
}

/// The TOML file, as written; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `network`.
    pub network: Option<String>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `db`.
    pub db: Option<String>,
    /// `[node]`.
    #[serde(default)]
    pub node: FileNode,
    /// `[stratum]`.
    #[serde(default)]
    pub stratum: FileStratum,
    /// `[http]`.
    #[serde(default)]
    pub http: FileHttp,
    /// `[pool]`.
    #[serde(default)]
    pub pool: FilePool,
    /// `[limits]`.
    #[serde(default)]
    pub limits: FileLimits,
}

/// `[node]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNode {
    /// `node.url`.
    pub url: Option<String>,
    /// `node.cookie`.
    pub cookie: Option<PathBuf>,
    /// `node.user`.
    pub user: Option<String>,
    /// `node.password_file`.
    pub password_file: Option<PathBuf>,
}

/// `[stratum]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStratum {
    /// `stratum.listen`.
    pub listen: Option<String>,
    /// `stratum.extranonce2_size`.
    pub extranonce2_size: Option<u8>,
    /// `stratum.start_difficulty`.
    pub start_difficulty: Option<f64>,
    /// `stratum.min_difficulty`.
    pub min_difficulty: Option<f64>,
    /// `stratum.max_difficulty`.
    pub max_difficulty: Option<f64>,
    /// `stratum.share_rate`.
    pub share_rate: Option<f64>,
    /// `stratum.vardiff_window`.
    pub vardiff_window: Option<u64>,
}

/// `[http]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    /// `http.listen`.
    pub listen: Option<String>,
}

/// A number or a string (`pplns_window = 5000` or `"2x"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    /// A number.
    Number(f64),
    /// A string.
    String(String),
}

/// `[pool]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePool {
    /// `pool.address`.
    pub address: Option<String>,
    /// `pool.fee`.
    pub fee: Option<f64>,
    /// `pool.payout`.
    pub payout: Option<String>,
    /// `pool.pplns_window`.
    pub pplns_window: Option<NumberOrString>,
    /// `pool.min_payout`.
    pub min_payout: Option<u64>,
    /// `pool.max_outputs`.
    pub max_outputs: Option<usize>,
    /// `pool.tag`.
    pub tag: Option<String>,
    /// `pool.template_refresh`.
    pub template_refresh: Option<u64>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// `limits.max_connections`.
    pub max_connections: Option<usize>,
    /// `limits.max_connections_per_ip`.
    pub max_connections_per_ip: Option<usize>,
    /// `limits.max_line_length`.
    pub max_line_length: Option<usize>,
    /// `limits.idle_timeout`.
    pub idle_timeout: Option<u64>,
    /// `limits.handshake_timeout`.
    pub handshake_timeout: Option<u64>,
    /// `limits.max_jobs`.
    pub max_jobs: Option<usize>,
    /// `limits.max_shares_per_job`.
    pub max_shares_per_job: Option<usize>,
    /// `limits.pending_shares`.
    pub pending_shares: Option<usize>,
    /// `limits.share_queue`.
    pub share_queue: Option<usize>,
    /// `limits.outbound_queue`.
    pub outbound_queue: Option<usize>,
    /// `limits.write_timeout`.
    pub write_timeout: Option<u64>,
    /// `limits.ban_threshold`.
    pub ban_threshold: Option<u32>,
    /// `limits.ban_window`.
    pub ban_window: Option<u64>,
    /// `limits.ban_duration`.
    pub ban_duration: Option<u64>,
    /// `limits.db_connections`.
    pub db_connections: Option<u32>,
}

impl FileConfig {
    /// Parses the file's text.
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })
    }

    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }
}

/// Where the secrets and the home directory come from, so that tests can
/// give their own.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `SATPOOL_POOL_NODE_PASSWORD`.
    pub node_password: Option<String>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
}

impl Environment {
    /// The process's environment.
    pub fn from_process() -> Environment {
        Environment {
            node_password: std::env::var("SATPOOL_POOL_NODE_PASSWORD").ok(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

impl Config {
    /// Parses the process's arguments and environment, reads the file they
    /// name, and checks the whole.
    pub fn load() -> Result<Config, ConfigError> {
        let args = Args::parse();
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Config::from_layers(file, args, &Environment::from_process())
    }

    /// The configuration from its layers: `args` (flags and environment)
    /// over `file` over the defaults.
    pub fn from_layers(file: FileConfig, args: Args, env: &Environment) -> Result<Config, ConfigError> {
        let network: Network = match args.network.or(file.network) {
            Some(name) => name.parse().map_err(|reason| invalid("network (--network)", reason))?,
            None => Network::Devnet,
        };
        let home = env.home.clone().unwrap_or_else(|| PathBuf::from("."));
        let node_data_dir = home.join(".satpool").join(network.name());
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| node_data_dir.join("pool"));

        let database = match args.db.or(file.db) {
            Some(url) => Database::parse(&url).map_err(|reason| invalid("db (--db)", reason))?,
            None => Database::Sqlite(data_dir.join("ledger.sqlite")),
        };

        let flags = FileNode {
            url: args.node_url,
            cookie: args.node_cookie,
            user: args.node_user,
            password_file: args.node_password_file,
        };
        let node = node_config(network, file.node, flags, env, &node_data_dir)?;

        let stratum_listen = socket_addr(
            args.stratum.or(file.stratum.listen).as_deref().unwrap_or("0.0.0.0:3333"),
            "stratum.listen (--stratum)",
        )?;
        let http_listen =
            socket_addr(args.http.or(file.http.listen).as_deref().unwrap_or("127.0.0.1:8080"), "http.listen (--http)")?;

        let extranonce2_size = args.extranonce2_size.or(file.stratum.extranonce2_size).unwrap_or(8);
        if !(2..=MAX_EXTRANONCE2_SIZE).contains(&extranonce2_size) {
            return Err(invalid(
                "stratum.extranonce2_size (--extranonce2-size)",
                format!("{extranonce2_size} is not between 2 and {MAX_EXTRANONCE2_SIZE} bytes"),
            ));
        }
        let start_difficulty = positive(
            args.start_difficulty.or(file.stratum.start_difficulty).unwrap_or(1.0),
            "stratum.start_difficulty (--start-difficulty)",
        )?;
        let min_difficulty = positive(
            args.min_difficulty.or(file.stratum.min_difficulty).unwrap_or(0.001),
            "stratum.min_difficulty (--min-difficulty)",
        )?;
        let max_difficulty = positive(
            args.max_difficulty.or(file.stratum.max_difficulty).unwrap_or(1e15),
            "stratum.max_difficulty (--max-difficulty)",
        )?;
        if min_difficulty > max_difficulty {
            return Err(invalid(
                "stratum.min_difficulty (--min-difficulty)",
                format!("{min_difficulty} is above max_difficulty {max_difficulty}"),
            ));
        }
        if !(min_difficulty..=max_difficulty).contains(&start_difficulty) {
            return Err(invalid(
                "stratum.start_difficulty (--start-difficulty)",
                format!("{start_difficulty} is outside min_difficulty..=max_difficulty ({min_difficulty}..={max_difficulty})"),
            ));
        }
        let share_rate =
            positive(args.share_rate.or(file.stratum.share_rate).unwrap_or(10.0), "stratum.share_rate (--share-rate)")?;
        if share_rate > 86_400.0 {
            return Err(invalid("stratum.share_rate (--share-rate)", format!("{share_rate} s is more than a day")));
        }

        let address_text = args.pool_address.or(file.pool.address).ok_or_else(|| {
            invalid("pool.address (--pool-address)", "required: the operator's address takes the fee")
        })?;
        let address = parse_address(&address_text, network)?;
        let fee = PoolFee::from_percent(args.pool_fee.or(file.pool.fee).unwrap_or(1.0))
            .map_err(|reason| invalid("pool.fee (--pool-fee)", reason))?;
        let mode = match args.payout.or(file.pool.payout) {
            Some(mode) => mode.parse().map_err(|reason| invalid("pool.payout (--payout)", reason))?,
            None => PayoutMode::Pplns,
        };
        let window_text = match args.pplns_window {
            Some(text) => Some(text),
            None => file.pool.pplns_window.map(|w| match w {
                NumberOrString::Number(n) => n.to_string(),
                NumberOrString::String(s) => s,
            }),
        };
        let window = match window_text {
            Some(text) => text.parse().map_err(|reason| invalid("pool.pplns_window (--pplns-window)", reason))?,
            None => PplnsWindow::NetworkMultiple(2.0),
        };
        let min_payout = Amount::from_sat(args.min_payout.or(file.pool.min_payout).unwrap_or(10_000));
        if min_payout > Amount::MAX_MONEY {
            return Err(invalid("pool.min_payout (--min-payout)", format!("{min_payout} is above the money supply")));
        }
        let max_outputs = args.max_outputs.or(file.pool.max_outputs).unwrap_or(200);
        if !(1..=10_000).contains(&max_outputs) {
            return Err(invalid(
                "pool.max_outputs (--max-outputs)",
                format!("{max_outputs} is not between 1 and 10000"),
            ));
        }

        let pool_tag = args.pool_tag.or(file.pool.tag).unwrap_or_else(|| "/satpool/".to_owned());
        if pool_tag.len() > crate::job::MAX_POOL_TAG_LEN {
            return Err(invalid(
                "pool.tag (--pool-tag)",
                format!("{} bytes is longer than {} bytes", pool_tag.len(), crate::job::MAX_POOL_TAG_LEN),
            ));
        }
        let template_refresh = args.template_refresh.or(file.pool.template_refresh).unwrap_or(30);
        if !(1..=3600).contains(&template_refresh) {
            return Err(invalid(
                "pool.template_refresh (--template-refresh)",
                format!("{template_refresh} s is not between 1 and 3600"),
            ));
        }

        let defaults = Limits::default();
        let file_limits = file.limits;
        let secs = |value: u64| Duration::from_secs(value);
        let vardiff_window = match args.vardiff_window.or(file.stratum.vardiff_window) {
            None => None,
            Some(window) if (window as f64) < share_rate || window > 86_400 => {
                return Err(invalid(
                    "stratum.vardiff_window (--vardiff-window)",
                    format!("{window} s is not between share_rate ({share_rate} s) and 86400 s"),
                ));
            }
            Some(window) => Some(secs(window)),
        };
        let limits = Limits {
            max_connections: at_least_one(
                args.max_connections.or(file_limits.max_connections).unwrap_or(defaults.max_connections),
                "limits.max_connections (--max-connections)",
            )?,
            max_connections_per_ip: at_least_one(
                args.max_connections_per_ip
                    .or(file_limits.max_connections_per_ip)
                    .unwrap_or(defaults.max_connections_per_ip),
                "limits.max_connections_per_ip (--max-connections-per-ip)",
            )?,
            max_line_length: within(
                args.max_line_length.or(file_limits.max_line_length).unwrap_or(defaults.max_line_length),
                256..=1024 * 1024,
                "limits.max_line_length (--max-line-length)",
                "bytes",
            )?,
            idle_timeout: secs(at_least_one(
                args.idle_timeout.or(file_limits.idle_timeout).unwrap_or(defaults.idle_timeout.as_secs()),
                "limits.idle_timeout (--idle-timeout)",
            )?),
            handshake_timeout: secs(within(
                args.handshake_timeout
                    .or(file_limits.handshake_timeout)
                    .unwrap_or(defaults.handshake_timeout.as_secs()),
                1..=3_600,
                "limits.handshake_timeout (--handshake-timeout)",
                "s",
            )?),
            max_jobs: within(
                args.max_jobs.or(file_limits.max_jobs).unwrap_or(defaults.max_jobs),
                1..=1_024,
                "limits.max_jobs (--max-jobs)",
                "jobs",
            )?,
            max_shares_per_job: within(
                args.max_shares_per_job.or(file_limits.max_shares_per_job).unwrap_or(defaults.max_shares_per_job),
                100..=100_000_000,
                "limits.max_shares_per_job (--max-shares-per-job)",
                "shares",
            )?,
            pending_shares: within(
                args.pending_shares.or(file_limits.pending_shares).unwrap_or(defaults.pending_shares),
                1..=65_536,
                "limits.pending_shares (--pending-shares)",
                "shares",
            )?,
            share_queue: within(
                args.share_queue.or(file_limits.share_queue).unwrap_or(defaults.share_queue),
                1..=1_000_000,
                "limits.share_queue (--share-queue)",
                "shares",
            )?,
            outbound_queue: within(
                args.outbound_queue.or(file_limits.outbound_queue).unwrap_or(defaults.outbound_queue),
                4..=65_536,
                "limits.outbound_queue (--outbound-queue)",
                "lines",
            )?,
            write_timeout: secs(within(
                args.write_timeout.or(file_limits.write_timeout).unwrap_or(defaults.write_timeout.as_secs()),
                1..=600,
                "limits.write_timeout (--write-timeout)",
                "s",
            )?),
            ban_threshold: at_least_one(
                args.ban_threshold.or(file_limits.ban_threshold).unwrap_or(defaults.ban_threshold),
                "limits.ban_threshold (--ban-threshold)",
            )?,
            ban_window: secs(within(
                args.ban_window.or(file_limits.ban_window).unwrap_or(defaults.ban_window.as_secs()),
                1..=86_400,
                "limits.ban_window (--ban-window)",
                "s",
            )?),
            ban_duration: secs(within(
                args.ban_duration.or(file_limits.ban_duration).unwrap_or(defaults.ban_duration.as_secs()),
                1..=30 * 86_400,
                "limits.ban_duration (--ban-duration)",
                "s",
            )?),
            vardiff_window,
            db_connections: within(
                args.db_connections.or(file_limits.db_connections).unwrap_or(defaults.db_connections),
                1..=1_000,
                "limits.db_connections (--db-connections)",
                "connections",
            )?,
        };

        Ok(Config {
            network,
            data_dir,
            database,
            node,
            stratum: StratumConfig {
                listen: stratum_listen,
                extranonce2_size,
                start_difficulty,
                min_difficulty,
                max_difficulty,
                share_rate: Duration::from_secs_f64(share_rate),
            },
            http_listen,
            payout: PayoutConfig { mode, address, fee, window, min_payout, max_outputs },
            pool_tag,
            template_refresh: Duration::from_secs(template_refresh),
            limits,
        })
    }
}

fn node_config(
    network: Network,
    file: FileNode,
    flags: FileNode,
    env: &Environment,
    node_data_dir: &Path,
) -> Result<NodeConfig, ConfigError> {
    let url = flags.url.or(file.url).unwrap_or_else(|| format!("http://127.0.0.1:{}/", network.default_rpc_port()));
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("node.url (--node-url)", format!("'{url}' is not an http:// URL")));
    }
    let user = flags.user.or(file.user);
    let cookie = flags.cookie.or(file.cookie);
    let auth = match (user, cookie) {
        (Some(_), Some(_)) => {
            return Err(invalid("node.user (--node-user)", "give either a user or a cookie file, not both"));
        }
        (Some(user), None) => {
            let password = match (&env.node_password, flags.password_file.or(file.password_file)) {
                (Some(password), _) => password.clone(),
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::PasswordFile { path: path.clone(), source })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                (None, None) => {
                    return Err(invalid(
                        "node.password_file (--node-password-file)",
                        "a node user needs a password, from SATPOOL_POOL_NODE_PASSWORD or a file",
                    ))
                }
            };
            Auth::user_password(user, password)
        }
        (None, Some(path)) if path.is_dir() => Auth::cookie_in(path),
        (None, Some(path)) => Auth::Cookie { path },
        (None, None) => Auth::cookie_in(node_data_dir),
    };
    Ok(NodeConfig { url, auth })
}

/// Parses the operator's address and checks it belongs to `network`.
pub fn parse_address(text: &str, network: Network) -> Result<Address, ConfigError> {
    let error = |source| ConfigError::Address { address: text.to_owned(), network, source };
    let unchecked: Address<NetworkUnchecked> = text.parse().map_err(error)?;
    unchecked.require_network(network.address_network()).map_err(error)
}

fn socket_addr(text: &str, key: &'static str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| invalid(key, format!("'{text}' is not an address:port such as 0.0.0.0:3333")))
}

fn positive(value: f64, key: &'static str) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(key, format!("{value} is not a positive number")))
    }
}

fn within<T: PartialOrd + fmt::Display>(
    value: T,
    range: std::ops::RangeInclusive<T>,
    key: &'static str,
    unit: &str,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(key, format!("{value} is not between {} and {} {unit}", range.start(), range.end())))
    }
}

fn at_least_one<T: PartialOrd + From<u8> + fmt::Display>(value: T, key: &'static str) -> Result<T, ConfigError> {
    if value >= T::from(1) {
        Ok(value)
    } else {
        Err(invalid(key, format!("{value} must be at least 1")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGTEST_ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    const MAINNET_ADDRESS: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["satpool"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("test arguments parse")
    }

    fn env() -> Environment {
        Environment { node_password: None, home: Some(PathBuf::from("/home/op")) }
    }

    fn load(file: &str, extra: &[&str]) -> Result<Config, ConfigError> {
        let file = FileConfig::parse(file, Path::new("test.toml"))?;
        Config::from_layers(file, args(extra), &env())
    }

    #[test]
    fn defaults_with_only_an_address() {
        let config = load("", &["--pool-address", REGTEST_ADDRESS]).expect("valid");
        assert_eq!(config.network, Network::Devnet);
        assert_eq!(config.stratum.listen, "0.0.0.0:3333".parse().unwrap());
        assert_eq!(config.http_listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.stratum.extranonce2_size, 8);
        assert_eq!(config.stratum.share_rate, Duration::from_secs(10));
        assert_eq!(config.template_refresh, Duration::from_secs(30));
        assert_eq!(config.data_dir, PathBuf::from("/home/op/.satpool/devnet/pool"));
        assert_eq!(config.database, Database::Sqlite(PathBuf::from("/home/op/.satpool/devnet/pool/ledger.sqlite")));
        assert_eq!(config.node.url, "http://127.0.0.1:28443/");
        assert_eq!(config.node.auth, Auth::cookie_in("/home/op/.satpool/devnet"));
        assert_eq!(config.payout.fee.ppm(), 10_000);
        assert_eq!(config.payout.mode, PayoutMode::Pplns);
        assert_eq!(config.payout.window, PplnsWindow::NetworkMultiple(2.0));
    }

    #[test]
    fn flags_override_the_file() {
        let file = "network = \"regtest\"\n[pool]\naddress = \"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080\"\nfee = 2.5\n[stratum]\nlisten = \"127.0.0.1:4000\"\n";
        let config = load(file, &["--pool-fee", "0.5"]).expect("valid");
        assert_eq!(config.network, Network::Regtest);
        assert_eq!(config.payout.fee.ppm(), 5_000);
        assert_eq!(config.stratum.listen, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(config.node.url, "http://127.0.0.1:18443/");
    }

    /// Each bad value is refused with its key.
    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("no address", &[], "pool.address"),
            ("wrong network address", &["--pool-address", MAINNET_ADDRESS], "pool.address"),
            ("malformed address", &["--pool-address", "bcrt1qnotanaddress"], "pool.address"),
            ("fee over 100", &["--pool-address", REGTEST_ADDRESS, "--pool-fee", "101"], "pool.fee"),
            ("negative fee", &["--pool-address", REGTEST_ADDRESS, "--pool-fee=-1"], "pool.fee"),
            ("bad payout", &["--pool-address", REGTEST_ADDRESS, "--payout", "pps"], "pool.payout"),
            ("bad window", &["--pool-address", REGTEST_ADDRESS, "--pplns-window", "two"], "pool.pplns_window"),
            ("bad stratum", &["--pool-address", REGTEST_ADDRESS, "--stratum", "3333"], "stratum.listen"),
            ("bad http", &["--pool-address", REGTEST_ADDRESS, "--http", "localhost"], "http.listen"),
            ("bad db", &["--pool-address", REGTEST_ADDRESS, "--db", "mysql://x"], "db"),
            ("en2 too big", &["--pool-address", REGTEST_ADDRESS, "--extranonce2-size", "17"], "extranonce2_size"),
            ("zero share rate", &["--pool-address", REGTEST_ADDRESS, "--share-rate", "0"], "share_rate"),
            (
                "start below min",
                &["--pool-address", REGTEST_ADDRESS, "--min-difficulty", "2", "--start-difficulty", "1"],
                "start_difficulty",
            ),
            ("bad network", &["--network", "moon"], "network"),
            ("user without password", &["--pool-address", REGTEST_ADDRESS, "--node-user", "u"], "password_file"),
            ("long tag", &["--pool-address", REGTEST_ADDRESS, "--pool-tag", &"x".repeat(80)], "pool.tag"),
            ("zero connections", &["--pool-address", REGTEST_ADDRESS, "--max-connections", "0"], "max_connections"),
            (
                "short lines",
                &["--pool-address", REGTEST_ADDRESS, "--max-line-length", "100"],
                "limits.max_line_length (--max-line-length)",
            ),
            (
                "no handshake",
                &["--pool-address", REGTEST_ADDRESS, "--handshake-timeout", "0"],
                "limits.handshake_timeout (--handshake-timeout)",
            ),
            ("no jobs", &["--pool-address", REGTEST_ADDRESS, "--max-jobs", "0"], "limits.max_jobs (--max-jobs)"),
            (
                "tiny dup cap",
                &["--pool-address", REGTEST_ADDRESS, "--max-shares-per-job", "10"],
                "limits.max_shares_per_job (--max-shares-per-job)",
            ),
            (
                "no pending",
                &["--pool-address", REGTEST_ADDRESS, "--pending-shares", "0"],
                "limits.pending_shares (--pending-shares)",
            ),
            (
                "no share queue",
                &["--pool-address", REGTEST_ADDRESS, "--share-queue", "0"],
                "limits.share_queue (--share-queue)",
            ),
            (
                "tiny outbound",
                &["--pool-address", REGTEST_ADDRESS, "--outbound-queue", "2"],
                "limits.outbound_queue (--outbound-queue)",
            ),
            (
                "no write time",
                &["--pool-address", REGTEST_ADDRESS, "--write-timeout", "0"],
                "limits.write_timeout (--write-timeout)",
            ),
            (
                "ban on nothing",
                &["--pool-address", REGTEST_ADDRESS, "--ban-threshold", "0"],
                "limits.ban_threshold (--ban-threshold)",
            ),
            (
                "no ban window",
                &["--pool-address", REGTEST_ADDRESS, "--ban-window", "0"],
                "limits.ban_window (--ban-window)",
            ),
            (
                "endless ban",
                &["--pool-address", REGTEST_ADDRESS, "--ban-duration", "99999999"],
                "limits.ban_duration (--ban-duration)",
            ),
            (
                "vardiff window below the share rate",
                &["--pool-address", REGTEST_ADDRESS, "--share-rate", "20", "--vardiff-window", "10"],
                "stratum.vardiff_window (--vardiff-window)",
            ),
            (
                "no db connection",
                &["--pool-address", REGTEST_ADDRESS, "--db-connections", "0"],
                "limits.db_connections (--db-connections)",
            ),
        ];
        for (name, extra, key) in cases {
            let error = load("", extra).expect_err(name);
            let text = error.to_string();
            assert!(text.contains(key), "{name}: '{text}' does not name {key}");
        }
    }

    #[test]
    fn limits_come_from_the_file_then_flags() {
        let defaults = load("", &["--pool-address", REGTEST_ADDRESS]).expect("valid").limits;
        assert_eq!(defaults, Limits::default());
        let file = "[limits]\nmax_jobs = 8\nmax_shares_per_job = 5000\nban_threshold = 7\nban_duration = 60\n\
                    share_queue = 100\n[stratum]\nvardiff_window = 90\n";
        let limits =
            load(file, &["--pool-address", REGTEST_ADDRESS, "--max-shares-per-job", "2000"]).expect("valid").limits;
        assert_eq!(limits.max_jobs, 8);
        assert_eq!(limits.max_shares_per_job, 2_000, "the flag over the file");
        assert_eq!(limits.ban_threshold, 7);
        assert_eq!(limits.ban_duration, Duration::from_secs(60));
        assert_eq!(limits.share_queue, 100);
        assert_eq!(limits.vardiff_window, Some(Duration::from_secs(90)));
        assert_eq!(limits.pending_shares, defaults.pending_shares, "unsaid: the default");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let error = load("[pool]\nfees = 1\n", &[]).expect_err("unknown key");
        assert!(matches!(error, ConfigError::Parse { .. }));
        let chain = format!("{:?}", error);
        assert!(chain.contains("fees"), "{chain}");
    }

    #[test]
    fn password_is_redacted() {
        let file = FileConfig::default();
        let env = Environment { node_password: Some("hunter2".into()), home: None };
        let config = Config::from_layers(
            file,
            args(&["--pool-address", REGTEST_ADDRESS, "--node-user", "pool", "--db", "postgres://u:pgsecret@h/db"]),
            &env,
        )
        .expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("pgsecret"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn windows_parse() {
        assert_eq!("2x".parse::<PplnsWindow>(), Ok(PplnsWindow::NetworkMultiple(2.0)));
        assert_eq!("5000".parse::<PplnsWindow>(), Ok(PplnsWindow::Fixed(5000.0)));
        assert!("0x".parse::<PplnsWindow>().is_err());
        assert!("-1".parse::<PplnsWindow>().is_err());
    }

    #[test]
    fn fee_percentages() {
        assert_eq!(PoolFee::from_percent(0.0).unwrap().ppm(), 0);
        assert_eq!(PoolFee::from_percent(1.5).unwrap().ppm(), 15_000);
        assert_eq!(PoolFee::from_percent(100.0).unwrap().ppm(), 1_000_000);
        assert!(PoolFee::from_percent(0.123456).is_err());
        assert!(PoolFee::from_percent(f64::NAN).is_err());
    }

    #[test]
    fn database_urls() {
        assert_eq!(Database::parse("sqlite:/x/l.db"), Ok(Database::Sqlite("/x/l.db".into())));
        assert_eq!(Database::parse("sqlite:///x/l.db?mode=rwc"), Ok(Database::Sqlite("/x/l.db".into())));
        assert!(matches!(Database::parse("postgres://p@h/db"), Ok(Database::Postgres(_))));
        assert!(Database::parse("sqlite::memory:").is_err());
    }
}
