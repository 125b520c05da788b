//! The mining loop: the current job, the scheduler, and the worker threads
//! (one per CPU thread, one per GPU) that take ranges, hash them, check
//! every candidate in full and hand shares to the client. A new job takes
//! over at once: CPU workers look at the job generation every
//! [`CPU_CHUNK`] nonces, GPU batches are sized to a fraction of the batch
//! target, and results of a replaced clean job are dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bitcoin::BlockHash;
use satpool_stratum::Extranonce2;
use tokio::sync::mpsc::UnboundedSender;

use crate::cpu::CpuPath;
use crate::gpu::{GpuBatch, GpuContext};
use crate::header_work::HeaderWork;
use crate::scheduler::{Range, Scheduler, WorkerId};
use crate::work::{HeaderChoice, Job};

/// Nonces a CPU worker hashes between looks at the job generation: about a
/// millisecond on one SHA-NI thread.
pub const CPU_CHUNK: u32 = 1 << 14;

/// A share found, checked, ready for `mining.submit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundShare {
    /// The job.
    pub job_id: String,
    /// The job generation it was found in.
    pub generation: u64,
    /// The extranonce2.
    pub extranonce2: Extranonce2,
    /// The header time.
    pub ntime: u32,
    /// The nonce.
    pub nonce: u32,
    /// The version bits, when rolling.
    pub version_bits: Option<u32>,
    /// The header's hash.
    pub hash: BlockHash,
}

/// A dispatch in flight: its range, job, header and when it was queued.
type InFlight = (Range, Arc<Job>, HeaderWork, HeaderChoice, Instant);

/// A device's hash counter, for the status line.
#[derive(Debug)]
pub struct DeviceCounter {
    /// What it is (`cpu 0 (sha-ni x4)`, `gpu 0 (NVIDIA …)`).
    pub name: String,
    /// Nonces hashed since start.
    pub hashes: AtomicU64,
}

#[derive(Debug, Default)]
struct Current {
    job: Option<Arc<Job>>,
    generation: u64,
    /// Shares of generations below this are stale (a clean job came).
    valid_from: u64,
}

/// The shared state of the mining loop.
#[derive(Debug)]
pub struct Miner {
    scheduler: Scheduler,
    current: RwLock<Current>,
    generation: AtomicU64,
    stop: AtomicBool,
    shares: UnboundedSender<FoundShare>,
    /// One counter per worker, in worker order.
    pub devices: RwLock<Vec<Arc<DeviceCounter>>>,
}

impl Miner {
    /// A miner whose workers aim at `batch_target` per range and send
    /// shares to `shares`.
    pub fn new(batch_target: Duration, shares: UnboundedSender<FoundShare>) -> Arc<Miner> {
        Arc::new(Miner {
            scheduler: Scheduler::new(batch_target, 1e6),
            current: RwLock::new(Current::default()),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            shares,
            devices: RwLock::new(Vec::new()),
        })
    }

    /// Makes `job` the work from now on. With `clean`, shares of earlier
    /// jobs are dropped rather than submitted.
    pub fn set_job(&self, job: Job, clean: bool) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let generation = current.generation + 1;
        current.generation = generation;
        if clean {
            current.valid_from = generation;
        }
        let headers = job.header_count();
        current.job = Some(Arc::new(job));
        self.scheduler.new_job(generation, headers);
        self.generation.store(generation, Ordering::Release);
    }

    /// Stops handing out work (disconnected): workers idle.
    pub fn pause(&self) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current.generation += 1;
        current.valid_from = current.generation;
        current.job = None;
        self.scheduler.clear();
        self.generation.store(current.generation, Ordering::Release);
    }

    /// Asks every worker to stop.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }

    fn job_of(&self, generation: u64) -> Option<Arc<Job>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.job.clone().filter(|_| current.generation == generation)
    }

    fn submit(&self, job: &Job, generation: u64, choice: &HeaderChoice, work: &HeaderWork, nonce: u32) {
        let Some(hash) = work.check(nonce) else {
            tracing::warn!(nonce, "a candidate failed the full check; dropped");
            return;
        };
        let valid_from = self.current.read().unwrap_or_else(|e| e.into_inner()).valid_from;
        if generation < valid_from {
            tracing::debug!(job = %job.notify.job_id, nonce, "share of a replaced clean job dropped");
            return;
        }
        let share = FoundShare {
            job_id: job.notify.job_id.clone(),
            generation,
            extranonce2: choice.extranonce2.clone(),
            ntime: job.notify.ntime,
            nonce,
            version_bits: choice.version_bits,
            hash,
        };
        // The client may be gone while shutting down; nothing to do then.
        let _ = self.shares.send(share);
    }

    fn add_device(&self, name: String) -> (WorkerId, Arc<DeviceCounter>) {
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        let counter = Arc::new(DeviceCounter { name, hashes: AtomicU64::new(0) });
        devices.push(counter.clone());
        (devices.len() - 1, counter)
    }

    /// Starts a CPU worker thread on `path`.
    pub fn spawn_cpu(self: &Arc<Self>, index: usize, path: CpuPath) -> std::io::Result<JoinHandle<()>> {
        let (id, counter) = self.add_device(format!("cpu{index} ({path})"));
        let miner = self.clone();
        thread::Builder::new().name(format!("cpu-{index}")).spawn(move || miner.cpu_loop(id, path, &counter))
    }

    /// Starts a GPU worker thread on `ctx`.
    pub fn spawn_gpu(self: &Arc<Self>, index: usize, ctx: GpuContext) -> std::io::Result<JoinHandle<()>> {
        let (id, counter) = self.add_device(format!("gpu{index} ({})", ctx.adapter_info().name));
        let miner = self.clone();
        thread::Builder::new().name(format!("gpu-{index}")).spawn(move || miner.gpu_loop(id, ctx, &counter))
    }

    fn next_range(&self, id: WorkerId) -> Option<(Range, Arc<Job>)> {
        let range = self.scheduler.next(id)?;
        let job = self.job_of(range.generation)?;
        Some((range, job))
    }

    fn cpu_loop(&self, id: WorkerId, path: CpuPath, counter: &DeviceCounter) {
        let mut cached: Option<(u64, u64, HeaderWork, HeaderChoice)> = None;
        let mut candidates = Vec::new();
        while !self.stopping() {
            let Some((range, job)) = self.next_range(id) else {
                thread::sleep(Duration::from_millis(2));
                continue;
            };
            let key = (range.generation, range.header_index);
            if cached.as_ref().map(|c| (c.0, c.1)) != Some(key) {
                let (work, choice) = job.header_work(range.header_index);
                cached = Some((key.0, key.1, work, choice));
            }
            let (_, _, work, choice) = cached.as_ref().expect("filled just above");
            let started = Instant::now();
            let mut done = 0u32;
            while done < range.count && self.is_current(range.generation) && !self.stopping() {
                let n = CPU_CHUNK.min(range.count - done);
                candidates.clear();
                path.scan_candidates(work, range.start + done, n, &mut candidates);
                for &nonce in &candidates {
                    self.submit(&job, range.generation, choice, work, nonce);
                }
                done += n;
                counter.hashes.fetch_add(u64::from(n), Ordering::Relaxed);
            }
            self.scheduler.report(id, u64::from(done), started.elapsed());
        }
    }

    fn gpu_loop(&self, id: WorkerId, mut ctx: GpuContext, counter: &DeviceCounter) {
        // Two dispatches in flight: queue the next before reading the last.
        let mut in_flight: [Option<InFlight>; 2] = [None, None];
        let mut slot = 0;
        while !self.stopping() {
            if let Some((range, job)) = self.next_range(id) {
                let (work, choice) = job.header_work(range.header_index);
                let batch = GpuBatch { work: work.clone(), start: range.start, count: range.count };
                if let Err(e) = ctx.submit(slot, &batch) {
                    tracing::error!(error = %e, "GPU dispatch failed; this GPU stops");
                    return;
                }
                in_flight[slot] = Some((range, job, work, choice, Instant::now()));
            } else if in_flight.iter().all(Option::is_none) {
                thread::sleep(Duration::from_millis(2));
            }
            let other = 1 - slot;
            if let Some((range, job, work, choice, started)) = in_flight[other].take() {
                match ctx.collect(other) {
                    Ok(result) => {
                        if result.lost > 0 {
                            tracing::warn!(lost = result.lost, "GPU result buffer overflowed: target too easy");
                        }
                        for found in result.found {
                            self.submit(&job, range.generation, &choice, &work, found.nonce);
                        }
                        counter.hashes.fetch_add(u64::from(range.count), Ordering::Relaxed);
                        self.scheduler.report(id, u64::from(range.count), started.elapsed() / 2);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "GPU read-back failed; this GPU stops");
                        return;
                    }
                }
            }
            slot = other;
        }
    }
}
