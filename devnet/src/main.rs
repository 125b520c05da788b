//! `satpool-devnet`: the newcomer's one command (`cargo run --release`).
//!
//! One process runs, from their libraries, a devnet node, the pool on
//! SQLite with its dashboard, and a local miner (the GPUs if there are any,
//! else CPU threads, leaving a core to the node and the pool), all under one
//! data directory. It prints the dashboard's address and a line per block
//! found and paid. Ctrl-C (or SIGTERM) stops the three cleanly; the next
//! start resumes the same chain and ledger.

mod keys;
mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use satpool_miner::client::{self, ClientConfig, PoolStats, PoolUrl};
use satpool_miner::cpu::CpuPath;
use satpool_miner::gpu::{self, AdapterChoice};
use satpool_miner::miner::Miner;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// satpool-devnet: a devnet node, the pool with its dashboard and a local
/// miner in one process, for a first look. Ctrl-C stops it; running it again
/// resumes the same chain and ledger.
#[derive(Debug, Parser)]
#[command(name = "satpool-devnet", version, about)]
struct Args {
    /// Where the demo keeps its chain (node/), its ledger (pool/) and its two
    /// keys (keys/) [default: ~/.satpool/devnet-demo].
    #[arg(long, env = "SATPOOL_DEVNET_DATADIR")]
    datadir: Option<PathBuf>,
    /// The node's JSON-RPC port, on loopback (not the devnet's usual 28443,
    /// so that the demo runs beside a devnet node).
    #[arg(long, env = "SATPOOL_DEVNET_RPC_PORT", default_value_t = 28453)]
    rpc_port: u16,
    /// Where the pool takes Stratum miners (bind 0.0.0.0:3333 to let other
    /// machines join).
    #[arg(long, env = "SATPOOL_DEVNET_STRATUM", default_value = "127.0.0.1:3333")]
    stratum: SocketAddr,
    /// Where the dashboard, the JSON API and /metrics listen.
    #[arg(long, env = "SATPOOL_DEVNET_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Seconds between blocks, fixed when the data directory is created (a
    /// consensus rule of the demo's chain).
    #[arg(long, env = "SATPOOL_DEVNET_SPACING", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    spacing: u64,
    /// GPUs for the local miner: `all` hardware adapters, `none`, or adapter
    /// indexes (`0,2`). Without one, the miner says so and uses the CPU.
    #[arg(long, env = "SATPOOL_DEVNET_GPU", default_value = "all")]
    gpu: String,
    /// CPU mining threads [default: every core less one for the node and the
    /// pool, less one per GPU in use; at least one].
    #[arg(long, env = "SATPOOL_DEVNET_CPU_THREADS")]
    cpu_threads: Option<usize>,
}

/// Where the three keep their files.
#[derive(Debug, Clone)]
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn node(&self) -> PathBuf {
        self.root.join("node")
    }
    fn pool(&self) -> PathBuf {
        self.root.join("pool")
    }
    fn key(&self, name: &str) -> PathBuf {
        self.root.join("keys").join(format!("{name}.key"))
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    // The demo prints its own lines; the parts log warnings and errors
    // unless RUST_LOG asks for more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,satpool_devnet=info,wgpu=error,naga=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("while starting tokio")?;
    let result = runtime.block_on(run(args));
    // Every part has stopped and closed its files; a JSON-RPC worker may
    // still sit in a getblocktemplate long poll, which nothing is waiting
    // for: leave it to the process's exit instead of waiting on it.
    runtime.shutdown_background();
    result
}

async fn run(args: Args) -> Result<()> {
    let root = match &args.datadir {
        Some(dir) => dir.clone(),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set; pass --datadir")?;
            PathBuf::from(home).join(".satpool").join("devnet-demo")
        }
    };
    let layout = Layout { root };
    std::fs::create_dir_all(layout.node()).with_context(|| format!("while creating {}", layout.root.display()))?;
    std::fs::create_dir_all(layout.pool()).with_context(|| format!("while creating {}", layout.root.display()))?;
    check_spacing(&layout.root, args.spacing)?;
    let operator = keys::address(&layout.key("operator"))?;
    let miner_address = keys::address(&layout.key("miner"))?;
    println!("satpool devnet demo in {}", layout.root.display());

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));

    // The node.
    let node_config = node_config(&layout, &args)?;
    let node_token = shutdown.clone();
    let mut node: JoinHandle<Result<()>> =
        tokio::spawn(satpool_node::daemon::run_until(node_config, node_token.cancelled_owned()));
    let rpc = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.rpc_port);
    let cookie = layout.node().join(".cookie");
    tokio::select! {
        ready = wait_until(Duration::from_secs(120), || cookie.is_file() && connects(rpc)) => {
            ready.context("the node's JSON-RPC did not come up")?;
        }
        ended = &mut node => return finish_early("node", ended),
        _ = shutdown.cancelled() => return stop_early(node, None).await,
    }

    // The pool.
    let pool_config = pool_config(&layout, &args, &operator.to_string())?;
    let mut pool = tokio::spawn(satpool::run(pool_config, shutdown.clone()));
    let http = loopback(args.http);
    tokio::select! {
        ready = wait_until(Duration::from_secs(60), || connects(http)) => {
            ready.context("the pool's HTTP server did not come up")?;
        }
        ended = &mut pool => {
            shutdown.cancel();
            let _ = node.await;
            return match ended.context("the pool task panicked")? {
                Ok(()) => Ok(()),
                Err(error) => Err(anyhow::Error::new(error).context("while starting the pool")),
            };
        }
        _ = shutdown.cancelled() => return stop_early(node, Some(pool)).await,
    }
    println!("dashboard: http://{http}/");
    println!("stratum:   stratum+tcp://{}  (other miners: satpool-miner --url stratum+tcp://<this host>:{} --user <address>.<worker>)", loopback(args.stratum), args.stratum.port());

    // The miner.
    let miner = start_miner(&args, loopback(args.stratum), &miner_address.to_string(), shutdown.clone())?;

    // The lines a newcomer watches.
    let names = watch::Names { miner: miner_address.to_string(), operator: operator.to_string() };
    let api = watch::Api::new(http);
    let watcher = tokio::spawn(watch::print_blocks(api, names, shutdown.clone()));

    // Run until a signal, or until a part stops by itself (the node's `stop`
    // RPC, a fatal error): then stop the rest.
    let mut failed = None;
    tokio::select! {
        _ = shutdown.cancelled() => {}
        ended = &mut node => {
            failed = Some(("node", ended.map_err(anyhow::Error::new).and_then(|r| r)));
            node = tokio::spawn(async { Ok(()) });
        }
        ended = &mut pool => {
            failed = Some(("pool", ended.map_err(anyhow::Error::new).and_then(|r| r.map_err(anyhow::Error::new))));
            pool = tokio::spawn(async { Ok(()) });
        }
    }
    shutdown.cancel();
    println!("stopping: the miner, the pool, then the node");
    miner.stop().await;
    let _ = watcher.await;
    let pool_result = pool.await.context("the pool task panicked")?;
    let node_result = node.await.context("the node task panicked")?;
    if let Some((part, result)) = failed {
        result.with_context(|| format!("the {part} stopped"))?;
        bail!("the {part} stopped by itself");
    }
    pool_result.context("while running the pool")?;
    node_result.context("while running the node")?;
    println!("stopped cleanly; run the same command again to resume this chain and ledger");
    Ok(())
}

/// The node: devnet, its own ports on loopback, no P2P (the demo's chain is
/// its own).
fn node_config(layout: &Layout, args: &Args) -> Result<satpool_node::daemon::Config> {
    use clap::Parser as _;
    let argv = [
        "satpool-node".to_owned(),
        "--network=devnet".to_owned(),
        format!("--datadir={}", layout.node().display()),
        format!("--rpcport={}", args.rpc_port),
        "--rpcbind=127.0.0.1".to_owned(),
        format!("--devnet-spacing={}", args.spacing),
        "--listen=0".to_owned(),
        "--connect=0".to_owned(),
    ];
    satpool_node::daemon::Config::try_parse_from(argv).context("while configuring the node")
}

/// The pool: the node's RPC with its cookie, SQLite in the data directory,
/// PPLNS over a small fixed window, a start difficulty far below one (a
/// laptop's CPU finds shares in seconds), the dashboard on `--http`.
fn pool_config(layout: &Layout, args: &Args, operator: &str) -> Result<satpool::config::Config> {
    use satpool::config::{Args as PoolArgs, Config, Environment, FileConfig};
    let pool_args = PoolArgs {
        network: Some("devnet".to_owned()),
        node_url: Some(format!("http://127.0.0.1:{}/", args.rpc_port)),
        node_cookie: Some(layout.node()),
        stratum: Some(args.stratum.to_string()),
        http: Some(args.http.to_string()),
        db: Some(format!("sqlite:{}", layout.pool().join("ledger.sqlite").display())),
        data_dir: Some(layout.pool()),
        pool_address: Some(operator.to_owned()),
        payout: Some("pplns".to_owned()),
        // A sum of share difficulty: the last few minutes of a laptop's shares.
        pplns_window: Some("1".to_owned()),
        start_difficulty: Some(0.00001),
        min_difficulty: Some(0.000001),
        share_rate: Some(2.0),
        template_refresh: Some(5),
        ..PoolArgs::default()
    };
    // Nothing from the environment: the demo's pool is wholly this one.
    let env = Environment { node_password: None, home: None };
    Config::from_layers(FileConfig::default(), pool_args, &env).context("while configuring the pool")
}

/// The local miner, running.
struct RunningMiner {
    miner: Arc<Miner>,
    client: JoinHandle<()>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl RunningMiner {
    async fn stop(self) {
        let _ = self.client.await;
        self.miner.shutdown();
        let workers = self.workers;
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                // A worker that panicked has already said so on stderr.
                let _ = worker.join();
            }
        })
        .await;
    }
}

fn start_miner(args: &Args, stratum: SocketAddr, address: &str, shutdown: CancellationToken) -> Result<RunningMiner> {
    let choice = match args.gpu.as_str() {
        "none" => None,
        "all" => Some(AdapterChoice::AllHardware),
        list => Some(AdapterChoice::Indexes(
            list.split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("--gpu {list:?}: expected all, none or adapter indexes"))?,
        )),
    };
    let gpus = match choice {
        None => Vec::new(),
        Some(choice) => gpu::open(&choice).unwrap_or_else(|error| {
            println!("miner: no GPU ({error}); mining on the CPU");
            Vec::new()
        }),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.cpu_threads.unwrap_or_else(|| cores.saturating_sub(1 + gpus.len()).max(1));
    let (path, _) = CpuPath::fastest(Duration::from_millis(30));
    let (share_tx, share_rx) = tokio::sync::mpsc::unbounded_channel();
    let miner = Miner::new(Duration::from_millis(40), share_tx);
    let mut workers = Vec::new();
    for (i, ctx) in gpus.into_iter().enumerate() {
        println!("miner: GPU {i}: {}", gpu::describe(ctx.adapter_info()));
        workers.push(miner.spawn_gpu(i, ctx).context("while starting a GPU thread")?);
    }
    if threads > 0 {
        println!("miner: {threads} CPU thread(s), {path}");
    }
    for i in 0..threads {
        workers.push(miner.spawn_cpu(i, path).context("while starting a CPU thread")?);
    }
    let url: PoolUrl = format!("stratum+tcp://{stratum}").parse().context("while making the pool's URL")?;
    let config = ClientConfig::new(vec![url], format!("{address}.local"), "x".to_owned());
    println!("miner: pays {address}");
    let stats = Arc::new(PoolStats::default());
    let client = tokio::spawn(client::run(config, miner.clone(), share_rx, stats, shutdown.cancelled_owned()));
    Ok(RunningMiner { miner, client, workers })
}

/// The devnet's spacing is a consensus rule: a chain made with one cannot be
/// resumed with another. The first start writes it down.
fn check_spacing(root: &Path, spacing: u64) -> Result<()> {
    let path = root.join("spacing");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let kept: u64 = text.trim().parse().with_context(|| format!("{} is not a number", path.display()))?;
            if kept != spacing {
                bail!(
                    "the chain in {} was made with --spacing {kept}; pass that, or another --datadir",
                    root.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("{spacing}\n")).with_context(|| format!("while writing {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("while reading {}", path.display())),
    }
}

/// `addr` with an unspecified IP (0.0.0.0) replaced by loopback, to connect to.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

fn connects(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Polls `ready` (a blocking check) until it holds or `limit` passes.
async fn wait_until(limit: Duration, ready: impl Fn() -> bool) -> Result<()> {
    let started = Instant::now();
    loop {
        if tokio::task::block_in_place(&ready) {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("not ready after {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finish_early(part: &str, ended: Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    match ended {
        Ok(Ok(())) => bail!("the {part} stopped during start-up"),
        Ok(Err(error)) => Err(error.context(format!("while starting the {part}"))),
        Err(error) => Err(anyhow::Error::new(error).context(format!("the {part} task panicked"))),
    }
}

/// A signal during start-up: waits for what was started.
async fn stop_early(
    node: JoinHandle<Result<()>>,
    pool: Option<JoinHandle<Result<(), satpool::RunError>>>,
) -> Result<()> {
    if let Some(pool) = pool {
        pool.await.context("the pool task panicked")?.context("while running the pool")?;
    }
    node.await.context("the node task panicked")?.context("while running the node")?;
    println!("stopped during start-up");
    Ok(())
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the demo");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    shutdown.cancel();
}
