//! `satpool-miner`: mine on a Stratum V1 pool with the GPUs and CPU threads
//! of this machine, or `satpool-miner bench` to check and time them. The
//! mining options come in layers (a TOML file, the environment, flags) and
//! are checked by `satpool_miner::config` before anything starts.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use satpool_miner::bench::{check_cases, cpu_rate, self_check_cpu, sha2_compress_rate};
use satpool_miner::client::{self, PoolStats};
use satpool_miner::config::{self, MineArgs, MinerConfig};
use satpool_miner::cpu::CpuPath;
use satpool_miner::gpu::{self, AdapterChoice, GpuBatch, GpuContext};
use satpool_miner::miner::Miner;
use satpool_miner::status::{format_rate, Status};

#[derive(Parser, Debug)]
#[command(
    name = "satpool-miner",
    version,
    about = "Stratum V1 miner: WGSL on GPUs (wgpu) and SHA-NI on CPUs",
    after_help = "Configuration in layers: a TOML file (--config), then environment variables \
                  (SATPOOL_MINER_<KEY>), then flags. The file's keys are the flags' names with '_' for '-' \
                  (cpu_threads = 4); unknown keys and bad values are refused at start, naming the key. \
                  deploy/satpool-miner.toml shows every key."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    mine: MineArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every backend against the reference, then time it.
    Bench(BenchArgs),
    /// List the GPU adapters and their indexes.
    Adapters,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Only the GPUs.
    #[arg(long, conflicts_with = "cpu")]
    gpu: bool,
    /// Only the CPU.
    #[arg(long)]
    cpu: bool,
    /// Which adapters for the GPU part: indexes (comma-separated) or `all` hardware.
    #[arg(long, default_value = "all")]
    adapter: String,
    /// CPU threads for the multi-thread figure (default: every core).
    #[arg(long)]
    cpu_threads: Option<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

fn adapter_choice(text: &str) -> Result<Option<AdapterChoice>> {
    config::parse_gpu(text).map_err(|reason| anyhow::anyhow!("--adapter: {reason}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,wgpu=warn,naga=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Command::Bench(args)) => bench(args),
        Some(Command::Adapters) => {
            for a in gpu::list_adapters() {
                println!("{}: {}", a.index, gpu::describe(&a.info));
            }
            Ok(())
        }
        None => match config::load(&cli.mine, &matches) {
            Ok(config) => mine(config),
            Err(error) => {
                // A refused setting is the operator's to fix, not a crash:
                // the key and the reason, no backtrace, clap's usage status.
                eprintln!("satpool-miner: {error}");
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    eprintln!("  caused by: {}", cause.to_string().trim_end());
                    source = cause.source();
                }
                std::process::exit(2);
            }
        },
    }
}

fn open_gpus(choice: Option<AdapterChoice>) -> Vec<GpuContext> {
    let Some(choice) = choice else { return Vec::new() };
    match gpu::open(&choice) {
        Ok(contexts) => contexts,
        Err(e) => {
            tracing::warn!("{e}; mining on the CPU only");
            Vec::new()
        }
    }
}

fn mine(config: MinerConfig) -> Result<()> {
    let gpus = open_gpus(config.gpu.clone());
    let threads = config.cpu_threads.unwrap_or_else(|| cores().saturating_sub(gpus.len()).max(1));
    if threads == 0 && gpus.is_empty() {
        bail!("nothing to mine on: cpu_threads is 0 and no GPU could be opened");
    }
    let (path, _) = CpuPath::fastest(Duration::from_millis(30));
    let pools: Vec<String> = config.urls.iter().map(ToString::to_string).collect();
    tracing::info!(%path, threads, gpus = gpus.len(), pools = %pools.join(", "), user = %config.user, "starting");

    let runtime = tokio::runtime::Runtime::new().context("while starting the async runtime")?;
    let (share_tx, share_rx) = tokio::sync::mpsc::unbounded_channel();
    let miner = Miner::new(config.batch_target(), share_tx);
    let mut workers = Vec::new();
    for (i, ctx) in gpus.into_iter().enumerate() {
        tracing::info!(adapter = %gpu::describe(ctx.adapter_info()), "GPU {i}");
        workers.push(miner.spawn_gpu(i, ctx).context("while starting a GPU thread")?);
    }
    for i in 0..threads {
        workers.push(miner.spawn_cpu(i, path).context("while starting a CPU thread")?);
    }
    let stats = Arc::new(PoolStats::default());
    let client_config = config.client_config();
    let started = Instant::now();
    runtime.block_on(async {
        let shutdown = async {
            // If the signal cannot be installed, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let client = tokio::spawn(client::run(client_config, miner.clone(), share_rx, stats.clone(), shutdown));
        let colour = std::io::stdout().is_terminal();
        let mut last: Vec<u64> = Vec::new();
        let mut last_at = Instant::now();
        let mut ticker = tokio::time::interval(config.status_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = async { while !client.is_finished() { tokio::time::sleep(Duration::from_millis(100)).await } } => break,
            }
            let devices = miner.devices.read().unwrap_or_else(|e| e.into_inner()).clone();
            let now = Instant::now();
            let secs = now.duration_since(last_at).as_secs_f64();
            last.resize(devices.len(), 0);
            let rates = devices
                .iter()
                .zip(last.iter_mut())
                .map(|(d, prev)| {
                    let h = d.hashes.load(Ordering::Relaxed);
                    let rate = (h - *prev) as f64 / secs;
                    *prev = h;
                    (d.name.clone(), rate)
                })
                .collect();
            last_at = now;
            let status = Status {
                devices: rates,
                accepted: stats.accepted.load(Ordering::Relaxed),
                rejections: stats.rejections(),
                pool: stats.session.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                uptime: started.elapsed(),
            };
            if config.json {
                println!("{}", status.json());
            } else {
                println!("{}", status.line(colour));
            }
        }
    });
    miner.shutdown();
    for w in workers {
        // A worker that panicked has already reported it on stderr.
        let _ = w.join();
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let d = Duration::from_secs_f64(args.seconds.max(0.1));
    let cases = check_cases();
    let do_cpu = !args.gpu;
    let do_gpu = !args.cpu;
    if do_cpu {
        let paths = CpuPath::available();
        for &p in &paths {
            self_check_cpu(p).with_context(|| format!("self-check of the CPU path {p}"))?;
        }
        println!("self-check: CPU paths {paths:?} find exactly the reference's nonces on {} headers", cases.len());
        // Measured in turns, best of three each, so a busy neighbour hurts
        // every figure alike.
        let slice = d / 3;
        let mut sha2 = 0f64;
        let mut rates: Vec<(CpuPath, f64)> = paths.iter().map(|&p| (p, 0.0)).collect();
        for _ in 0..3 {
            sha2 = sha2.max(sha2_compress_rate(slice));
            for (p, r) in rates.iter_mut() {
                *r = r.max(p.measure(slice));
            }
        }
        println!("sha2 compress256, one stream:  {:>8.2} M compressions/s", sha2 / 1e6);
        println!(
            "  / 2 (a nonce = 2 compressions): {:>8.2} M nonces/s   (goal: 1.4x = {:.2} M)",
            sha2 / 2e6,
            1.4 * sha2 / 2e6
        );
        for (p, r) in &rates {
            println!(
                "cpu path {:<12} 1 thread: {:>8.2} M nonces/s = {:.2}x (sha2/2)",
                p.to_string(),
                r / 1e6,
                r / (sha2 / 2.0)
            );
        }
        let (best, rate) = rates.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).expect("portable is always there");
        let threads = args.cpu_threads.unwrap_or_else(cores);
        let total = cpu_rate(best, threads, d);
        println!("cpu best {best}: {} on 1 thread, {} on {threads} threads", format_rate(rate), format_rate(total));
    }
    if do_gpu {
        let choice = adapter_choice(&args.adapter)?.unwrap_or(AdapterChoice::AllHardware);
        let contexts = match gpu::open(&choice) {
            Ok(c) => c,
            Err(e) if args.gpu => {
                return Err(e).context("while opening the GPUs (`satpool-miner adapters` lists them)")
            }
            Err(e) => {
                println!("gpu: {e}; no GPU figures (pass --adapter N to pick a software adapter)");
                Vec::new()
            }
        };
        for (i, mut ctx) in contexts.into_iter().enumerate() {
            let name = gpu::describe(ctx.adapter_info());
            for case in &cases {
                let result = gpu::run_batch(
                    &mut ctx,
                    &GpuBatch { work: case.work.clone(), start: case.start, count: case.count },
                )?;
                let mut got: Vec<u32> =
                    result.found.iter().map(|f| f.nonce).filter(|&n| case.work.check(n).is_some()).collect();
                got.sort_unstable();
                if got != case.expected() || result.lost > 0 {
                    bail!(
                        "GPU {i} ({name}) self-check failed on {}: found {got:?}, expected {:?}",
                        case.name,
                        case.expected()
                    );
                }
            }
            println!("self-check: GPU {i} ({name}) finds exactly the reference's nonces on {} headers", cases.len());
            let rate = gpu_rate(&mut ctx, d)?;
            println!("gpu {i} {name}: {}", format_rate(rate));
        }
    }
    Ok(())
}

/// Nonces/s of one GPU, two dispatches in flight, batches grown until one
/// takes about 50 ms.
fn gpu_rate(ctx: &mut GpuContext, d: Duration) -> Result<f64> {
    let work = satpool_miner::HeaderWork::new([0x11; 80], bitcoin::Target::ZERO);
    let mut count: u32 = 1 << 16;
    loop {
        let t = Instant::now();
        gpu::run_batch(ctx, &GpuBatch { work: work.clone(), start: 0, count })?;
        if t.elapsed() >= Duration::from_millis(50) || count >= gpu::MAX_DISPATCH / 2 {
            break;
        }
        count *= 2;
    }
    let started = Instant::now();
    let mut done = 0u64;
    let mut start = 0u32;
    ctx.submit(0, &GpuBatch { work: work.clone(), start, count })?;
    let mut slot = 0;
    while started.elapsed() < d {
        start = start.wrapping_add(count) & !(gpu::MAX_DISPATCH);
        ctx.submit(1 - slot, &GpuBatch { work: work.clone(), start, count })?;
        ctx.collect(slot)?;
        done += u64::from(count);
        slot = 1 - slot;
    }
    ctx.collect(slot)?;
    done += u64::from(count);
    Ok(done as f64 / started.elapsed().as_secs_f64())
}
