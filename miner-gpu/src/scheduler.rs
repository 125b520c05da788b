//! The scheduler: cuts a job's search space into nonce ranges and hands
//! them to the workers (GPU devices and CPU threads), each range sized to
//! take the worker about the batch target at its measured speed, so every
//! worker gets work in proportion to its speed and a new job takes over
//! within one batch. Positions are `header index × 2^32 + nonce`, handed out
//! from one cursor under a lock: no two ranges of a job ever overlap.
//! No clocks or threads here: workers report what they did and how long it
//! took.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The smallest range handed out.
pub const MIN_BATCH: u32 = 4096;
/// The largest range handed out (a GPU dispatch's limit too).
pub const MAX_BATCH: u32 = 1 << 31;

/// A worker's name in the scheduler.
pub type WorkerId = usize;

/// A range of nonces of one header of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    /// The job's generation (changes with every new job).
    pub generation: u64,
    /// Which header of the job ([`crate::work::Job::choice`]).
    pub header_index: u64,
    /// First nonce.
    pub start: u32,
    /// How many nonces (the range never crosses 2^32).
    pub count: u32,
}

#[derive(Debug)]
struct State {
    generation: u64,
    header_count: u64,
    cursor: u64,
    rates: HashMap<WorkerId, f64>,
}

/// Hands out disjoint ranges of the current job.
#[derive(Debug)]
pub struct Scheduler {
    batch_target: Duration,
    initial_rate: f64,
    state: Mutex<State>,
}

impl Scheduler {
    /// A scheduler aiming at batches of `batch_target` each, guessing
    /// `initial_rate` nonces/s for a worker it has not measured yet.
    pub fn new(batch_target: Duration, initial_rate: f64) -> Scheduler {
        Scheduler {
            batch_target,
            initial_rate,
            state: Mutex::new(State { generation: 0, header_count: 0, cursor: 0, rates: HashMap::new() }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A worker that panicked while holding the lock left the cursor
        // consistent (it is only ever moved forward in one statement).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts handing out the job of `generation` with `header_count`
    /// headers, from its beginning.
    pub fn new_job(&self, generation: u64, header_count: u64) {
        let mut s = self.lock();
        s.generation = generation;
        // Positions are header index × 2^32 + nonce in a u64: at most 2^31
        // headers keep the end of the space representable.
        s.header_count = header_count.min(1 << 31);
        s.cursor = 0;
    }

    /// Stops handing out work (no job).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.header_count = 0;
        s.cursor = 0;
    }

    /// The next range for `worker`, or `None` when there is no job or its
    /// space is used up.
    pub fn next(&self, worker: WorkerId) -> Option<Range> {
        let mut s = self.lock();
        let end = s.header_count << 32;
        if s.cursor >= end {
            return None;
        }
        let rate = s.rates.get(&worker).copied().unwrap_or(self.initial_rate);
        let want = (rate * self.batch_target.as_secs_f64()).clamp(f64::from(MIN_BATCH), f64::from(MAX_BATCH)) as u64;
        let header_index = s.cursor >> 32;
        let start = s.cursor & 0xffff_ffff;
        let count = want.min((1 << 32) - start);
        s.cursor += count;
        Some(Range { generation: s.generation, header_index, start: start as u32, count: count as u32 })
    }

    /// Records that `worker` hashed `nonces` in `elapsed`: its rate, a
    /// moving average, sizes its next ranges.
    pub fn report(&self, worker: WorkerId, nonces: u64, elapsed: Duration) {
        if elapsed.is_zero() || nonces == 0 {
            return;
        }
        let measured = nonces as f64 / elapsed.as_secs_f64();
        let mut s = self.lock();
        let rate = s.rates.entry(worker).or_insert(measured);
        *rate = 0.7 * *rate + 0.3 * measured;
    }

    /// The measured rate of `worker`, nonces/s.
    pub fn rate(&self, worker: WorkerId) -> Option<f64> {
        self.lock().rates.get(&worker).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Next(WorkerId),
        Report(WorkerId, u64, u64),
        NewJob(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0usize..4).prop_map(Op::Next),
            3 => (0usize..4, 0u64..(1 << 34), 1u64..200).prop_map(|(w, n, ms)| Op::Report(w, n, ms)),
            1 => prop_oneof![1u64..4, Just(1u64 << 40)].prop_map(Op::NewJob),
        ]
    }

    proptest! {
        #[test]
        fn ranges_never_overlap(ops in proptest::collection::vec(op(), 1..300)) {
            let scheduler = Scheduler::new(Duration::from_millis(100), 1e6);
            let mut generation = 1;
            scheduler.new_job(generation, 2);
            let mut handed: Vec<Range> = Vec::new();
            for op in ops {
                match op {
                    Op::Next(w) => {
                        if let Some(r) = scheduler.next(w) {
                            prop_assert!(r.count >= 1);
                            prop_assert!(u64::from(r.start) + u64::from(r.count) <= 1 << 32);
                            for other in handed.iter().filter(|o| o.generation == r.generation && o.header_index == r.header_index) {
                                let disjoint = u64::from(r.start) + u64::from(r.count) <= u64::from(other.start)
                                    || u64::from(other.start) + u64::from(other.count) <= u64::from(r.start);
                                prop_assert!(disjoint, "{:?} overlaps {:?}", r, other);
                            }
                            handed.push(r);
                        }
                    }
                    Op::Report(w, n, ms) => scheduler.report(w, n, Duration::from_millis(ms)),
                    Op::NewJob(headers) => {
                        generation += 1;
                        scheduler.new_job(generation, headers);
                    }
                }
            }
        }
    }

    #[test]
    fn batches_follow_measured_speed_and_run_out() {
        let scheduler = Scheduler::new(Duration::from_millis(100), 1e6);
        scheduler.new_job(1, 1);
        scheduler.report(0, 1_000_000_000, Duration::from_secs(1));
        scheduler.report(1, 10_000_000, Duration::from_secs(1));
        let fast = scheduler.next(0).expect("work");
        let slow = scheduler.next(1).expect("work");
        assert_eq!(fast.count, 100_000_000);
        assert_eq!(slow.count, 1_000_000);
        assert_eq!(slow.start, fast.count);
        let mut total = u64::from(fast.count) + u64::from(slow.count);
        while let Some(r) = scheduler.next(0) {
            total += u64::from(r.count);
        }
        assert_eq!(total, 1 << 32);
    }
}
