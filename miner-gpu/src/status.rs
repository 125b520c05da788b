//! The status line a person sees every few seconds: hash rate per device,
//! accepted and rejected shares, the pool's difficulty and the uptime; in
//! colour on a terminal, plain when piped, or one JSON object per line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What one status line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// `(device, nonces/s)` over the last interval.
    pub devices: Vec<(String, f64)>,
    /// Shares accepted.
    pub accepted: u64,
    /// Shares rejected.
    pub rejected: u64,
    /// Rejections by reason.
    pub reasons: BTreeMap<String, u64>,
    /// The pool and its current difficulty, when connected.
    pub pool: Option<(String, f64)>,
    /// Time since start.
    pub uptime: Duration,
}

/// `12.34 MH/s` and the like.
pub fn format_rate(rate: f64) -> String {
    let units = [("H/s", 1.0), ("kH/s", 1e3), ("MH/s", 1e6), ("GH/s", 1e9), ("TH/s", 1e12)];
    let (unit, scale) = units.iter().rev().find(|(_, s)| rate >= *s).copied().unwrap_or(units[0]);
    format!("{:.2} {unit}", rate / scale)
}

fn format_uptime(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl Status {
    /// The total rate.
    pub fn total(&self) -> f64 {
        self.devices.iter().map(|(_, r)| r).sum()
    }

    /// One human line; ANSI colours when `colour`.
    pub fn line(&self, colour: bool) -> String {
        let paint = |code: &str, text: String| if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text };
        let mut out = String::new();
        let _ = write!(out, "{} ", paint("1", format_uptime(self.uptime)));
        let _ = write!(out, "total {}", paint("1;36", format_rate(self.total())));
        for (name, rate) in &self.devices {
            let _ = write!(out, " | {name} {}", format_rate(*rate));
        }
        let _ = write!(out, " | A:{}", paint("32", self.accepted.to_string()));
        let rejected = if self.rejected > 0 { paint("31", self.rejected.to_string()) } else { "0".to_owned() };
        let _ = write!(out, " R:{rejected}");
        match &self.pool {
            Some((pool, d)) => {
                let _ = write!(out, " | diff {d} @ {pool}");
            }
            None => {
                let _ = write!(out, " | {}", paint("33", "not connected".to_owned()));
            }
        }
        if !self.reasons.is_empty() {
            let reasons: Vec<String> = self.reasons.iter().map(|(r, n)| format!("{r} x{n}")).collect();
            let _ = write!(out, " ({})", reasons.join(", "));
        }
        out
    }

    /// One JSON object, for `--json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "uptime_s": self.uptime.as_secs(),
            "hashrate": self.total(),
            "devices": self.devices.iter().map(|(n, r)| serde_json::json!({"name": n, "hashrate": r})).collect::<Vec<_>>(),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "reject_reasons": self.reasons,
            "pool": self.pool.as_ref().map(|(p, _)| p),
            "difficulty": self.pool.as_ref().map(|(_, d)| d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_json() {
        let status = Status {
            devices: vec![("cpu0 (sha-ni x4)".into(), 21.3e6), ("gpu0 (llvmpipe)".into(), 2.5e6)],
            accepted: 3,
            rejected: 1,
            reasons: [("23 Low difficulty share".to_owned(), 1)].into(),
            pool: Some(("127.0.0.1:3333".into(), 0.5)),
            uptime: Duration::from_secs(3725),
        };
        let line = status.line(false);
        assert_eq!(
            line,
            "1:02:05 total 23.80 MH/s | cpu0 (sha-ni x4) 21.30 MH/s | gpu0 (llvmpipe) 2.50 MH/s | A:3 R:1 | diff 0.5 @ \
             127.0.0.1:3333 (23 Low difficulty share x1)"
        );
        assert!(!line.contains('\x1b'));
        assert!(status.line(true).contains("\x1b[32m3\x1b[0m"));
        let json = status.json();
        assert_eq!(json["accepted"], 3);
        assert_eq!(json["difficulty"], 0.5);
        assert_eq!(format_rate(999.0), "999.00 H/s");
    }
}
