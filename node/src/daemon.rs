//! The `satpool-node` daemon: configuration, start-up, the JSON-RPC server,
//! devnet's built-in CPU miner, and shutdown on SIGINT, SIGTERM or `stop`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bitcoin::secp256k1::{rand, Secp256k1};
use bitcoin::{Address, CompressedPublicKey, PrivateKey, ScriptBuf};
use clap::Parser;
use satpool_rpc::{Auth, RpcServer, ServerConfig};

use crate::attack::{self, AttackerShare};
use crate::chain::{BlockOutcome, Chainstate, Clock};
use crate::mining;
use crate::node::{Node, SharedNode};
use crate::params::{ChainParams, Network};
use crate::rpc::NodeRpc;

/// satpool-node: a Bitcoin full node for mining pools.
#[derive(Debug, Clone, Parser)]
#[command(name = "satpool-node", version, about)]
pub struct Config {
    /// A TOML configuration file whose keys are these flags' names with `_`
    /// for `-`; default `<datadir>/satpool-node.toml` if it exists. The
    /// environment and the flags override it.
    #[arg(long, env = "SATPOOL_NODE_CONF")]
    pub conf: Option<PathBuf>,
    /// Network: main, testnet4, regtest or devnet.
    #[arg(long, env = "SATPOOL_NETWORK", default_value = "devnet")]
    pub network: Network,
    /// Data directory; default `~/.satpool/<network>`.
    #[arg(long, env = "SATPOOL_DATADIR")]
    pub datadir: Option<PathBuf>,
    /// JSON-RPC port; default the network's (devnet 28443, regtest 18443, main 8332).
    #[arg(long)]
    pub rpcport: Option<u16>,
    /// Address to bind the JSON-RPC server to. Loopback unless set: anything
    /// else exposes the node's control interface to the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub rpcbind: IpAddr,
    /// JSON-RPC user; without it the cookie file `<datadir>/.cookie` is used.
    #[arg(long, env = "SATPOOL_RPCUSER")]
    pub rpcuser: Option<String>,
    /// JSON-RPC password (prefer the cookie or the environment: a password
    /// on the command line is visible to every user of the machine).
    #[arg(long, env = "SATPOOL_RPCPASSWORD", hide_env_values = true)]
    pub rpcpassword: Option<satpool_rpc::Password>,
    /// Largest JSON-RPC request body in bytes.
    #[arg(long, default_value_t = satpool_rpc::DEFAULT_MAX_BODY_BYTES)]
    pub rpcmaxbody: usize,
    /// JSON-RPC calls that run at once.
    #[arg(long, default_value_t = satpool_rpc::DEFAULT_THREADS)]
    pub rpcthreads: usize,
    /// JSON-RPC calls that may wait for a thread before more are refused.
    #[arg(long, default_value_t = satpool_rpc::DEFAULT_WORK_QUEUE)]
    pub rpcworkqueue: usize,
    /// Networks allowed to call JSON-RPC besides loopback (Core's
    /// -rpcallowip), e.g. 172.16.0.0/12; repeatable or comma-separated.
    /// Only useful with --rpcbind on a non-loopback address.
    #[arg(long, value_delimiter = ',')]
    pub rpcallowip: Vec<satpool_rpc::Subnet>,
    /// Chainstate database cache in MiB (Core's -dbcache).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(4..=65_536))]
    pub dbcache: u64,
    /// Mine blocks on this machine's CPU and log each one found.
    #[arg(long)]
    pub mine: bool,
    /// Address the built-in miner pays; default a key kept in `<datadir>/miner.key`.
    #[arg(long)]
    pub mineaddress: Option<String>,
    /// Seconds between devnet blocks (a consensus rule: every devnet node must agree).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub devnet_spacing: u64,
    /// The attacker's share of the hash power that `gettransaction`'s
    /// `reversal_probability` assumes (whitepaper section 11), in (0, 1).
    #[arg(long, default_value = "0.1")]
    pub attacker_share: AttackerShare,
    /// Largest mempool, in MB of memory (`-maxmempool`).
    #[arg(long, default_value_t = crate::mempool::DEFAULT_MAX_MEMPOOL_MB)]
    pub maxmempool: usize,
    /// Hours a transaction may wait in the mempool (`-mempoolexpiry`).
    #[arg(long, default_value_t = crate::mempool::DEFAULT_MEMPOOL_EXPIRY_HOURS)]
    pub mempoolexpiry: i64,
    /// Lowest fee rate relayed and accepted into the mempool, in BTC/kvB (`-minrelaytxfee`).
    #[arg(long, default_value = "0.000001", value_parser = parse_fee_rate)]
    pub minrelaytxfee: crate::mempool::FeeRate,
    /// Prune old block data (`-prune`): 0 keeps every block, 1 prunes only
    /// through the `pruneblockchain` RPC, 550 or more keeps block and undo
    /// data under that many MiB. The last 288 blocks are always kept.
    #[arg(long, default_value_t = 0)]
    pub prune: u64,
    /// Tests only, regtest only: with `--prune` of 550 or more, the target in
    /// bytes instead, so that tests can prune a short chain. Hidden from `--help`.
    #[arg(long, hide = true)]
    pub test_prune_target_bytes: Option<u64>,
    /// Serve Prometheus metrics at `http://<this>/metrics` (for example
    /// 127.0.0.1:9332). Off unless given; the listener has no auth, so keep
    /// it on loopback or a private network.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metricsbind: Option<SocketAddr>,
    /// The P2P network's flags (`--connect`, `--addnode`, `--listen`, `--port`, ...).
    #[command(flatten)]
    pub p2p: crate::p2p::P2pArgs,
}

/// A fee rate in BTC/kvB, as Core's options take it.
fn parse_fee_rate(s: &str) -> Result<crate::mempool::FeeRate, String> {
    let amount = bitcoin::Amount::from_str_in(s, bitcoin::Denomination::Bitcoin)
        .map_err(|e| format!("'{s}' is not a fee rate in BTC/kvB: {e}"))?;
    Ok(crate::mempool::FeeRate::from_sat_per_kvb(amount.to_sat()))
}

/// The command line: the daemon's flags, and optionally a subcommand that
/// runs instead of the daemon.
#[derive(Debug, Clone, Parser)]
#[command(name = "satpool-node", version, about)]
pub struct Cli {
    /// The daemon's configuration.
    #[command(flatten)]
    pub config: Config,
    /// A one-off calculation instead of running the node.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `satpool-node`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Whitepaper section 11: the probability that an attacker with share
    /// `--q` of the hash power catches up from `--z` blocks behind, or with
    /// `--risk`, the fewest confirmations that bring it below that risk.
    AttackProbability(AttackArgs),
}

/// Arguments of `attack-probability`.
#[derive(Debug, Clone, clap::Args)]
pub struct AttackArgs {
    /// The attacker's share of the hash power, in (0, 1).
    #[arg(long, allow_negative_numbers = true)]
    pub q: AttackerShare,
    /// Blocks the honest chain is ahead (confirmations), 0 or more.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_blocks, required_unless_present = "risk", conflicts_with = "risk")]
    pub z: Option<u64>,
    /// The largest acceptable probability of a reversal, in (0, 1): prints the
    /// smallest number of confirmations that achieves it.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_risk)]
    pub risk: Option<f64>,
}

fn parse_blocks(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("'{s}' is not a whole number of blocks, 0 or more"))
}

fn parse_risk(s: &str) -> Result<f64, String> {
    let risk: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if risk > 0.0 && risk < 1.0 {
        Ok(risk)
    } else {
        Err(format!("{risk} must be strictly between 0 and 1"))
    }
}

impl AttackArgs {
    /// What the subcommand prints: the probability to 7 decimals (the
    /// whitepaper's precision), or the number of blocks.
    pub fn run(&self) -> anyhow::Result<String> {
        match (self.z, self.risk) {
            (Some(z), _) => Ok(format!("{:.7}", attack::attacker_success_probability(self.q, z))),
            (None, Some(risk)) => match attack::blocks_for_risk(self.q, risk)? {
                Some(z) => Ok(z.to_string()),
                None => bail!("--q {}: an attacker with half the hash power or more always catches up", self.q.get()),
            },
            (None, None) => bail!("give --z or --risk"),
        }
    }
}

impl Config {
    /// The mempool's settings.
    pub fn mempool_config(&self) -> crate::mempool::MempoolConfig {
        crate::mempool::MempoolConfig {
            max_size_bytes: self.maxmempool.saturating_mul(1_000_000),
            expiry_secs: self.mempoolexpiry.saturating_mul(3600),
            min_relay_fee: self.minrelaytxfee,
            ..crate::mempool::MempoolConfig::default()
        }
    }

    /// The prune mode `--prune` (and the test-only target) asks for.
    pub fn prune_mode(&self) -> anyhow::Result<crate::chain::PruneMode> {
        use crate::chain::PruneMode;
        let mode = PruneMode::from_mib(self.prune)?;
        match (self.test_prune_target_bytes, mode) {
            (None, mode) => Ok(mode),
            (Some(_), _) if self.network != Network::Regtest => {
                bail!("--test-prune-target-bytes is for tests on regtest only")
            }
            (Some(target_bytes), PruneMode::Automatic { .. }) => Ok(PruneMode::Automatic { target_bytes }),
            (Some(_), _) => bail!("--test-prune-target-bytes needs --prune=550 or more"),
        }
    }

    /// The network's parameters.
    pub fn chain_params(&self) -> ChainParams {
        match self.network {
            Network::Devnet => ChainParams::devnet(self.devnet_spacing),
            other => ChainParams::new(other),
        }
    }

    /// The data directory.
    pub fn datadir(&self) -> anyhow::Result<PathBuf> {
        match &self.datadir {
            Some(d) => Ok(d.clone()),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set; pass --datadir")?;
                Ok(PathBuf::from(home).join(".satpool").join(self.network.name()))
            }
        }
    }
}

/// The system clock in Unix seconds.
pub fn system_clock() -> Clock {
    Arc::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0))
}

/// Runs the node until SIGINT, SIGTERM or the `stop` RPC.
pub async fn run(config: Config) -> anyhow::Result<()> {
    run_until(config, wait_for_signal()).await
}

/// Runs the node until `shutdown` completes or the `stop` RPC, for a
/// process that runs the node beside other things and handles the signals
/// itself.
pub async fn run_until(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let params = config.chain_params();
    let datadir = config.datadir()?;
    std::fs::create_dir_all(&datadir).with_context(|| format!("while creating the datadir {}", datadir.display()))?;
    let auth = match (&config.rpcuser, &config.rpcpassword) {
        (Some(user), Some(password)) => Auth::user_password(user.clone(), password.expose()),
        (None, None) => Auth::cookie_in(&datadir),
        _ => bail!("--rpcuser and --rpcpassword go together"),
    };
    let mine_script = if config.mine { Some(miner_script(&config, &datadir, &params)?) } else { None };
    let prune_mode = config.prune_mode()?;

    let mut chain = tokio::task::block_in_place(|| {
        Chainstate::open_with_cache(&datadir, params.clone(), system_clock(), (config.dbcache as usize) << 20)
    })
    .with_context(|| format!("while opening the chainstate in {}", datadir.display()))?;
    if !prune_mode.is_on() && chain.prune_height().is_some() {
        // Core's refusal: the node would claim blocks it no longer has.
        bail!("You need to rebuild the database using -reindex to go back to unpruned mode.  This will redownload the entire blockchain.");
    }
    chain.set_prune_mode(prune_mode);
    let tip = chain.tip();
    tracing::info!(network = %params.network, height = tip.height, tip = %tip.hash, datadir = %datadir.display(), "chainstate loaded");
    let mut node = Node::new(chain);
    node.mempool = crate::mempool::Mempool::new(config.mempool_config());
    let mempool_path = datadir.join(crate::mempool::persist::FILE_NAME);
    match tokio::task::block_in_place(|| node.load_mempool(&mempool_path)) {
        Ok(loaded) => tracing::info!(
            accepted = loaded.accepted,
            failed = loaded.failed,
            expired = loaded.expired,
            "mempool loaded"
        ),
        Err(e) => tracing::warn!("mempool not loaded, starting empty: {e}"),
    }
    node.wallets = crate::wallet::Wallets::new(datadir.join("wallets"), params.network, config.attacker_share);
    tokio::task::block_in_place(|| {
        let Node { chain, wallets, .. } = &mut node;
        wallets.load_at_startup(chain);
    });
    let metrics = config.metricsbind.map(|_| Arc::new(crate::metrics::NodeMetrics::new()));
    node.metrics = metrics.clone();
    let node = Arc::new(SharedNode::new(node));

    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let stopping = Arc::new(AtomicBool::new(false));

    let rpc_addr = SocketAddr::new(config.rpcbind, config.rpcport.unwrap_or(params.default_rpc_port));
    if !config.rpcbind.is_loopback() {
        tracing::warn!(%rpc_addr, "JSON-RPC bound to a non-loopback address");
    }
    let listener = tokio::net::TcpListener::bind(rpc_addr)
        .await
        .with_context(|| format!("while binding the JSON-RPC port {rpc_addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "JSON-RPC listening");
    let mut server_config = ServerConfig::new(auth);
    server_config.max_body_bytes = config.rpcmaxbody;
    server_config.threads = config.rpcthreads;
    server_config.work_queue = config.rpcworkqueue;
    server_config.allow = config.rpcallowip.clone();
    let network = crate::p2p::start(&config.p2p, &params, &datadir, node.clone(), shutdown_rx.clone())
        .await
        .context("while starting the P2P network")?;
    let handler = Arc::new(
        NodeRpc::new(node.clone(), shutdown_tx.clone(), stopping.clone()).with_network(network.handle.clone()),
    );
    let mut rpc_shutdown = shutdown_rx.clone();
    // Started here so that a cookie that cannot be written stops start-up.
    let serving = RpcServer::new(server_config, handler)
        .start(listener, async move {
            let _ = rpc_shutdown.wait_for(|s| *s).await;
        })
        .context("while starting the JSON-RPC server")?;
    let server = tokio::spawn(serving);

    let metrics_server = match (config.metricsbind, metrics) {
        (Some(addr), Some(metrics)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("while binding the metrics port {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening at /metrics");
            let mut stop = shutdown_rx.clone();
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                metrics,
                node.clone(),
                Some(network.handle.clone()),
                shutdown,
            )))
        }
        _ => None,
    };

    let miner = mine_script.map(|script| {
        let node = node.clone();
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("cpu-miner".into())
            .spawn(move || cpu_miner(node, script, stopping))
            .expect("spawning a thread only fails when the process is out of resources")
    });

    let signal_tx = shutdown_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested (signal), shutting down");
        let _ = signal_tx.send(true);
    });

    let _ = shutdown_rx.wait_for(|s| *s).await;
    stopping.store(true, Ordering::SeqCst);
    if let Some(miner) = miner {
        let _ = tokio::task::spawn_blocking(move || miner.join()).await;
    }
    if let Err(e) = server.await {
        tracing::error!("JSON-RPC server task failed: {e}");
    }
    if let Some(metrics_server) = metrics_server {
        match metrics_server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("metrics server failed: {e}"),
            Err(e) => tracing::error!("metrics server task failed: {e}"),
        }
    }
    if let Err(e) = network.task.await {
        tracing::error!("P2P task failed: {e}");
    }
    match tokio::task::block_in_place(|| node.lock().save_mempool(&mempool_path)) {
        Ok(()) => tracing::info!(path = %mempool_path.display(), "mempool saved"),
        Err(e) => tracing::error!("mempool not saved: {e}"),
    }
    tracing::info!("shutdown complete");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The script the built-in miner pays: `--mineaddress`, else a P2WPKH key
/// kept in `<datadir>/miner.key` (created on first use) so the coins it mines
/// can be spent later.
fn miner_script(config: &Config, datadir: &std::path::Path, params: &ChainParams) -> anyhow::Result<ScriptBuf> {
    let network = params.network.address_network();
    if let Some(text) = &config.mineaddress {
        let address = Address::from_str(text)
            .with_context(|| format!("--mineaddress {text} is not an address"))?
            .require_network(network)
            .with_context(|| format!("--mineaddress {text} is not a {} address", params.network))?;
        return Ok(address.script_pubkey());
    }
    let path = datadir.join("miner.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(wif) => {
            PrivateKey::from_wif(wif.trim()).with_context(|| format!("while reading the key in {}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = bitcoin::secp256k1::SecretKey::new(&mut rand::thread_rng());
            let key = PrivateKey::new(secret, network);
            write_private(&path, &key.to_wif()).with_context(|| format!("while writing {}", path.display()))?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
    };
    let public =
        CompressedPublicKey::from_private_key(&Secp256k1::new(), &key).context("miner key is not compressed")?;
    let address = Address::p2wpkh(&public, network);
    tracing::info!(%address, key_file = %path.display(), "built-in miner pays this address");
    Ok(address.script_pubkey())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Mines on the tip until `stopping`: builds a template, searches nonces in
/// slices of a million so that a new tip (from RPC) or shutdown is noticed
/// quickly, and submits what it finds.
fn cpu_miner(node: Arc<SharedNode>, script: ScriptBuf, stopping: Arc<AtomicBool>) {
    const SLICE: u64 = 1_000_000;
    while !stopping.load(Ordering::Relaxed) {
        let mut block = mining::block_template(&node.lock().chain, script.clone(), Vec::new(), bitcoin::Amount::ZERO);
        let prev = block.header.prev_blockhash;
        loop {
            if mining::solve_header(&mut block.header, SLICE, &stopping) {
                match node.with(|node| node.process_block(&block)) {
                    Ok(BlockOutcome::Connected) => {
                        tracing::info!(
                            height = block.bip34_block_height().unwrap_or_default(),
                            hash = %block.block_hash(),
                            bits = format!("{:08x}", block.header.bits.to_consensus()),
                            "mined a block"
                        );
                    }
                    Ok(other) => tracing::info!(?other, "mined block not connected"),
                    Err(e) => tracing::error!("mined block refused: {e}"),
                }
                break;
            }
            if stopping.load(Ordering::Relaxed) {
                return;
            }
            let node = node.lock();
            if node.chain.tip().hash != prev || node.chain.now() > i64::from(block.header.time) + 10 {
                break; // a new tip, or stale time: build a fresh template
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
