//! The status line a person sees every few seconds: hash rate per device,
//! accepted and rejected shares (the rejected ones by the pool's Stratum
//! error code), the pool's difficulty and the uptime; in colour on a
//! terminal, plain when piped, or one JSON object per line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use satpool_stratum::ErrorCode;

/// The name miners know a rejection code by, as the status line and the
/// JSON show it beside the number (`21 stale`).
pub fn reject_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Other => "other",
        ErrorCode::JobNotFound => "stale",
        ErrorCode::Duplicate => "duplicate",
        ErrorCode::LowDifficulty => "low difficulty",
        ErrorCode::UnauthorizedWorker => "unauthorized",
        ErrorCode::NotSubscribed => "not subscribed",
        ErrorCode::Unrecognised(_) => "unrecognised",
    }
}

/// The rejections of one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectTally {
    /// How many.
    pub count: u64,
    /// The message the pool sent with the latest of them.
    pub last_message: String,
}

/// Shares the pool rejected, counted by Stratum error code (20 other,
/// 21 stale, 22 duplicate, 23 low difficulty, 24 unauthorized, 25 not
/// subscribed, or whatever number a pool sends), with the pool's latest
/// message for each code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejections {
    by_code: BTreeMap<i64, RejectTally>,
}

impl Rejections {
    /// Counts one rejection; returns the count of its code, this one included.
    pub fn record(&mut self, code: ErrorCode, message: &str) -> u64 {
        let tally =
            self.by_code.entry(code.code()).or_insert_with(|| RejectTally { count: 0, last_message: String::new() });
        tally.count += 1;
        message.clone_into(&mut tally.last_message);
        tally.count
    }

    /// All rejections.
    pub fn total(&self) -> u64 {
        self.by_code.values().map(|t| t.count).sum()
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The rejections of `code`.
    pub fn count(&self, code: ErrorCode) -> u64 {
        self.by_code.get(&code.code()).map_or(0, |t| t.count)
    }

    /// The pool's latest message with `code`.
    pub fn last_message(&self, code: ErrorCode) -> Option<&str> {
        self.by_code.get(&code.code()).map(|t| t.last_message.as_str())
    }

    /// Each code rejected, in numeric order, with its tally.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorCode, &RejectTally)> {
        self.by_code.iter().map(|(&code, tally)| (ErrorCode::from_code(code), tally))
    }

    /// `21 stale x3, 20 other x1 "Invalid nonce"`: each code with its name
    /// and count, and the pool's latest message where it says more than
    /// the code's conventional one.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .map(|(code, tally)| {
                let mut part = format!("{} {} x{}", code.code(), reject_name(code), tally.count);
                if !tally.last_message.eq_ignore_ascii_case(code.default_message()) && !tally.last_message.is_empty() {
                    let _ = write!(part, " {:?}", tally.last_message);
                }
                part
            })
            .collect();
        parts.join(", ")
    }

    /// `{"21": {"name": "stale", "count": 3, "last_message": "Job not found"}, …}`:
    /// keyed by the code as a string (JSON keys are strings), numeric order.
    pub fn json(&self) -> serde_json::Value {
        self.iter()
            .map(|(code, tally)| {
                let value = serde_json::json!({
                    "name": reject_name(code),
                    "count": tally.count,
                    "last_message": tally.last_message,
                });
                (code.code().to_string(), value)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// What one status line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// `(device, nonces/s)` over the last interval.
    pub devices: Vec<(String, f64)>,
    /// Shares accepted.
    pub accepted: u64,
    /// Shares rejected, by the pool's error code.
    pub rejections: Rejections,
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
        // A fold from +0.0: `sum` of no rates is -0.0, shown as "-0.00".
        self.devices.iter().fold(0.0, |total, (_, r)| total + r)
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
        let rejected = self.rejections.total();
        if rejected > 0 {
            let _ = write!(out, " R:{} ({})", paint("31", rejected.to_string()), self.rejections.summary());
        } else {
            let _ = write!(out, " R:0");
        }
        match &self.pool {
            Some((pool, d)) => {
                let _ = write!(out, " | diff {d} @ {pool}");
            }
            None => {
                let _ = write!(out, " | {}", paint("33", "not connected".to_owned()));
            }
        }
        out
    }

    /// One JSON object, for `--json`: `rejected` is the total, beside
    /// `accepted`; `rejected_by_code` holds [`Rejections::json`].
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "uptime_s": self.uptime.as_secs(),
            "hashrate": self.total(),
            "devices": self.devices.iter().map(|(n, r)| serde_json::json!({"name": n, "hashrate": r})).collect::<Vec<_>>(),
            "accepted": self.accepted,
            "rejected": self.rejections.total(),
            "rejected_by_code": self.rejections.json(),
            "pool": self.pool.as_ref().map(|(p, _)| p),
            "difficulty": self.pool.as_ref().map(|(_, d)| d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejections(verdicts: &[(ErrorCode, &str)]) -> Rejections {
        let mut r = Rejections::default();
        for (code, message) in verdicts {
            r.record(*code, message);
        }
        r
    }

    #[test]
    fn rejections_are_counted_by_code_with_the_last_message() {
        let r = rejections(&[
            (ErrorCode::JobNotFound, "Job not found"),
            (ErrorCode::LowDifficulty, "Low difficulty share"),
            (ErrorCode::JobNotFound, "Stale share"),
            (ErrorCode::from_code(21), "Job not found"),
            (ErrorCode::Unrecognised(-1), "Invalid nonce"),
        ]);
        assert_eq!(r.total(), 5);
        assert_eq!(r.count(ErrorCode::JobNotFound), 3);
        assert_eq!(r.count(ErrorCode::LowDifficulty), 1);
        assert_eq!(r.count(ErrorCode::Duplicate), 0);
        assert_eq!(r.count(ErrorCode::Unrecognised(-1)), 1);
        assert_eq!(r.last_message(ErrorCode::JobNotFound), Some("Job not found"));
        assert_eq!(r.last_message(ErrorCode::Duplicate), None);
        let codes: Vec<i64> = r.iter().map(|(c, _)| c.code()).collect();
        assert_eq!(codes, [-1, 21, 23], "numeric order");
        let mut more = r.clone();
        assert_eq!(more.record(ErrorCode::LowDifficulty, "Low difficulty share"), 2, "count of the code returned");
    }

    /// Each code's conventional name, in the summary and the JSON.
    #[test]
    fn names_of_the_codes() {
        let cases = [
            (20, "20 other x1"),
            (21, "21 stale x1"),
            (22, "22 duplicate x1"),
            (23, "23 low difficulty x1"),
            (24, "24 unauthorized x1"),
            (25, "25 not subscribed x1"),
            (26, "26 unrecognised x1 \"Other/Unknown-ish\""),
        ];
        for (code, want) in cases {
            let code = ErrorCode::from_code(code);
            let message = if code.code() == 26 { "Other/Unknown-ish" } else { code.default_message() };
            let r = rejections(&[(code, message)]);
            assert_eq!(r.summary(), want);
            assert_eq!(r.json()[code.code().to_string()]["name"], reject_name(code));
        }
    }

    #[test]
    fn summary_shows_a_message_only_where_it_says_more() {
        let r = rejections(&[
            (ErrorCode::JobNotFound, "job not found"),
            (ErrorCode::Other, "Invalid nonce size"),
            (ErrorCode::LowDifficulty, ""),
        ]);
        assert_eq!(r.summary(), "20 other x1 \"Invalid nonce size\", 21 stale x1, 23 low difficulty x1");
    }

    #[test]
    fn plain_and_json() {
        let status = Status {
            devices: vec![("cpu0 (sha-ni x4)".into(), 21.3e6), ("gpu0 (llvmpipe)".into(), 2.5e6)],
            accepted: 3,
            rejections: rejections(&[
                (ErrorCode::LowDifficulty, "Low difficulty share"),
                (ErrorCode::JobNotFound, "Job not found"),
                (ErrorCode::JobNotFound, "Stale share"),
            ]),
            pool: Some(("127.0.0.1:3333".into(), 0.5)),
            uptime: Duration::from_secs(3725),
        };
        let line = status.line(false);
        assert_eq!(
            line,
            "1:02:05 total 23.80 MH/s | cpu0 (sha-ni x4) 21.30 MH/s | gpu0 (llvmpipe) 2.50 MH/s | A:3 R:3 (21 stale x2 \
             \"Stale share\", 23 low difficulty x1) | diff 0.5 @ 127.0.0.1:3333"
        );
        assert!(!line.contains('\x1b'));
        assert!(status.line(true).contains("\x1b[32m3\x1b[0m"));
        let json = status.json();
        assert_eq!(json["accepted"], 3);
        assert_eq!(json["rejected"], 3);
        assert_eq!(
            json["rejected_by_code"],
            serde_json::json!({
                "21": {"name": "stale", "count": 2, "last_message": "Stale share"},
                "23": {"name": "low difficulty", "count": 1, "last_message": "Low difficulty share"},
            })
        );
        assert_eq!(json["difficulty"], 0.5);
        assert_eq!(format_rate(999.0), "999.00 H/s");
    }

    #[test]
    fn nothing_rejected() {
        let status = Status {
            devices: Vec::new(),
            accepted: 0,
            rejections: Rejections::default(),
            pool: None,
            uptime: Duration::ZERO,
        };
        assert_eq!(status.line(false), "0:00:00 total 0.00 H/s | A:0 R:0 | not connected");
        assert_eq!(status.json()["rejected"], 0);
        assert_eq!(status.json()["rejected_by_code"], serde_json::json!({}));
    }
}
