//! Variable difficulty, one per connection: pure arithmetic with the clock
//! passed in, so tests drive it with a fake one.
//!
//! It aims at one share every [`VardiffConfig::share_interval`] (10 s by
//! default, as public-pool and btcpool do). Shares are counted over a
//! window; once the window is [`VardiffConfig::retarget_after`] long (or
//! [`VardiffConfig::fast_shares`] shares came in sooner, which lets a GPU
//! started at a CPU's difficulty climb in a few steps), the hashrate the
//! shares show gives the difficulty that would have produced the aimed
//! rate. A change smaller than [`VardiffConfig::tolerance`] is not made (at
//! 6 shares a minute the estimate wobbles by about 18%, STRATUM.md), and one
//! step never moves by more than [`VardiffConfig::max_step`]. A connection
//! that sends nothing for a whole window is lowered as if one share had
//! just been found (an upper bound on its hashrate). The result always lies
//! within `min..=max`, and fractional difficulties (down to 0.00001 and
//! below, for CPUs on test networks) are kept.

use std::time::{Duration, Instant};

use satpool_stratum::ShareDifficulty;

/// The policy of [`Vardiff`].
#[derive(Debug, Clone, PartialEq)]
pub struct VardiffConfig {
    /// The time aimed at between two shares of one connection.
    pub share_interval: Duration,
    /// The window after which the difficulty is reconsidered.
    pub retarget_after: Duration,
    /// Shares that trigger an early retarget, before the window is full.
    pub fast_shares: u32,
    /// Relative change below which the difficulty stays (0.3 = 30%).
    pub tolerance: f64,
    /// The largest factor of one step, up or down.
    pub max_step: f64,
    /// The lowest difficulty given.
    pub min: ShareDifficulty,
    /// The highest difficulty given.
    pub max: ShareDifficulty,
}

impl VardiffConfig {
    /// The defaults around `share_interval` and the bounds: a window of six
    /// intended shares, an early retarget after 24 shares, 30% tolerance,
    /// steps of at most 16×.
    pub fn new(share_interval: Duration, min: ShareDifficulty, max: ShareDifficulty) -> VardiffConfig {
        VardiffConfig {
            share_interval,
            retarget_after: share_interval * 6,
            fast_shares: 24,
            tolerance: 0.3,
            max_step: 16.0,
            min,
            max,
        }
    }

    /// `difficulty` moved into `min..=max`.
    pub fn clamp(&self, difficulty: ShareDifficulty) -> ShareDifficulty {
        if difficulty < self.min {
            self.min
        } else if difficulty > self.max {
            self.max
        } else {
            difficulty
        }
    }
}

/// One connection's difficulty and the shares counted toward its next
/// retarget.
#[derive(Debug, Clone)]
pub struct Vardiff {
    config: VardiffConfig,
    current: ShareDifficulty,
    window_start: Instant,
    shares: u32,
}

impl Vardiff {
    /// Starts at `start` (clamped into the bounds) at `now`.
    pub fn new(config: VardiffConfig, start: ShareDifficulty, now: Instant) -> Vardiff {
        let current = config.clamp(start);
        Vardiff { config, current, window_start: now, shares: 0 }
    }

    /// The difficulty in force.
    pub fn current(&self) -> ShareDifficulty {
        self.current
    }

    /// The policy.
    pub fn config(&self) -> &VardiffConfig {
        &self.config
    }

    /// The miner's `mining.suggest_difficulty`: taken within the bounds and
    /// the window restarted. Returns the new difficulty when it changed.
    pub fn suggest(&mut self, suggested: ShareDifficulty, now: Instant) -> Option<ShareDifficulty> {
        self.set(self.config.clamp(suggested), now)
    }

    /// Counts an accepted share; returns the new difficulty when this share
    /// completes a window that calls for a change.
    pub fn on_share(&mut self, now: Instant) -> Option<ShareDifficulty> {
        self.shares = self.shares.saturating_add(1);
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < self.config.retarget_after && self.shares < self.config.fast_shares {
            return None;
        }
        self.retarget(now, elapsed, f64::from(self.shares))
    }

    /// Looks at a connection that may have gone quiet (call it now and
    /// then, e.g. on each new job); returns a lower difficulty when a whole
    /// window passed without a share.
    pub fn on_tick(&mut self, now: Instant) -> Option<ShareDifficulty> {
        let elapsed = now.saturating_duration_since(self.window_start);
        if self.shares > 0 || elapsed < self.config.retarget_after {
            return None;
        }
        // No share in `elapsed`: the hashrate is at most one share's worth.
        self.retarget(now, elapsed, 1.0)
    }

    fn retarget(&mut self, now: Instant, elapsed: Duration, shares: f64) -> Option<ShareDifficulty> {
        // Shares of difficulty d every t seconds mean d/t of difficulty-1
        // work per second; the aim is one share per interval.
        let elapsed = elapsed.as_secs_f64().max(0.001);
        let ratio = (shares * self.config.share_interval.as_secs_f64() / elapsed)
            .clamp(1.0 / self.config.max_step, self.config.max_step);
        if (ratio - 1.0).abs() < self.config.tolerance {
            self.window_start = now;
            self.shares = 0;
            return None;
        }
        let wanted = ShareDifficulty::new(round_significant(self.current.as_f64() * ratio)).unwrap_or(self.current);
        self.set(self.config.clamp(wanted), now)
    }

    fn set(&mut self, difficulty: ShareDifficulty, now: Instant) -> Option<ShareDifficulty> {
        self.window_start = now;
        self.shares = 0;
        if difficulty == self.current {
            return None;
        }
        self.current = difficulty;
        Some(difficulty)
    }
}

/// Three significant digits: `0.0000123`, `1.23`, `4560`, so that the
/// difficulties sent are readable and stable (the tolerance does the rest).
fn round_significant(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return value;
    }
    let scale = 10f64.powi(2 - value.log10().floor() as i32);
    let rounded = (value * scale).round() / scale;
    if rounded > 0.0 {
        rounded
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(d: f64) -> ShareDifficulty {
        ShareDifficulty::new(d).expect("positive")
    }

    fn config(min: f64, max: f64) -> VardiffConfig {
        VardiffConfig::new(Duration::from_secs(10), diff(min), diff(max))
    }

    /// A miner of fixed hashrate (difficulty-1 shares per second), simulated
    /// with a fake clock: each share of difficulty d takes d / rate seconds.
    fn simulate(vardiff: &mut Vardiff, rate: f64, start: Instant, shares: usize) -> Instant {
        let mut now = start;
        for _ in 0..shares {
            now += Duration::from_secs_f64(vardiff.current().as_f64() / rate);
            vardiff.on_share(now);
        }
        now
    }

    #[test]
    fn converges_to_the_share_rate() {
        // (name, hashrate in difficulty-1 shares per second, start difficulty)
        let cases = [
            ("asic from 1", 2_000.0, 1.0),
            ("gpu from 1", 30.0, 1.0),
            ("cpu on devnet from 1", 0.0005, 1.0),
            ("asic from too high", 2_000.0, 1e6),
        ];
        for (name, rate, start_diff) in cases {
            let start = Instant::now();
            let mut v = Vardiff::new(config(0.00001, 1e9), diff(start_diff), start);
            // Quiet miners are lowered by ticks; drive both.
            let mut now = start;
            for _ in 0..200 {
                now += Duration::from_secs(5);
                v.on_tick(now);
                now = simulate(&mut v, rate, now, 4);
            }
            let expected = rate * 10.0;
            let got = v.current().as_f64();
            assert!((got / expected - 1.0).abs() < 0.35, "{name}: difficulty {got}, expected about {expected}");
        }
    }

    #[test]
    fn respects_bounds() {
        let start = Instant::now();
        let mut v = Vardiff::new(config(1.0, 64.0), diff(8.0), start);
        simulate(&mut v, 1_000_000.0, start, 500);
        assert_eq!(v.current(), diff(64.0));
        let mut v = Vardiff::new(config(1.0, 64.0), diff(8.0), start);
        let mut now = start;
        for _ in 0..50 {
            now += Duration::from_secs(600);
            v.on_tick(now);
        }
        assert_eq!(v.current(), diff(1.0));
        // The start is clamped too.
        assert_eq!(Vardiff::new(config(1.0, 64.0), diff(0.5), start).current(), diff(1.0));
    }

    #[test]
    fn fractional_difficulties_for_cpus() {
        let start = Instant::now();
        let mut v = Vardiff::new(config(0.00001, 1e6), diff(0.01), start);
        let mut now = start;
        for _ in 0..100 {
            now += Duration::from_secs(60);
            v.on_tick(now);
        }
        assert_eq!(v.current(), diff(0.00001));
        // A slow CPU: 0.0001 difficulty-1 shares per second wants 0.001.
        let end = simulate(&mut v, 0.0001, now, 300);
        let got = v.current().as_f64();
        assert!((got / 0.001 - 1.0).abs() < 0.35, "{got}");
        assert!(end > now);
    }

    #[test]
    fn suggestion_is_honoured_within_bounds() {
        let now = Instant::now();
        let mut v = Vardiff::new(config(0.001, 1000.0), diff(1.0), now);
        assert_eq!(v.suggest(diff(16.0), now), Some(diff(16.0)));
        assert_eq!(v.suggest(diff(16.0), now), None);
        assert_eq!(v.suggest(diff(1e9), now), Some(diff(1000.0)));
        assert_eq!(v.suggest(diff(1e-9), now), Some(diff(0.001)));
    }

    #[test]
    fn small_wobbles_do_not_retarget() {
        let start = Instant::now();
        let mut v = Vardiff::new(config(0.001, 1000.0), diff(10.0), start);
        // One share every 9 s at the aim of 10 s: within 30%.
        let mut now = start;
        for _ in 0..60 {
            now += Duration::from_secs(9);
            assert_eq!(v.on_share(now), None);
        }
        assert_eq!(v.current(), diff(10.0));
    }

    #[test]
    fn rounding_keeps_three_digits() {
        assert_eq!(round_significant(0.000012345), 0.0000123);
        assert_eq!(round_significant(1234.5), 1230.0);
        assert_eq!(round_significant(1.0), 1.0);
    }
}
