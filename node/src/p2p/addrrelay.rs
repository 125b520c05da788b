//! Relay of other nodes' addresses, as Bitcoin Core does it
//! (`net_processing.cpp`: `ProcessMessage` for `addr`/`addrv2`,
//! `RelayAddress`, `PushAddress`, `MaybeSendAddr`): which received addresses
//! are passed on, to which peers, and how fast a peer may feed us addresses.
//!
//! Pure rules, no I/O and no clock: the processor passes the time in.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::sync::PeerId;

/// Core's limit on the size of a message whose addresses are relayed: a
/// bigger one is an answer to someone's `getaddr`, not news.
pub const MAX_RELAYED_ADDR_MESSAGE: usize = 10;
/// Core: an address is relayed only if its timestamp is at most this old.
pub const MAX_RELAYED_ADDR_AGE: i64 = 10 * 60;
/// Core's `ROTATE_ADDR_RELAY_DEST_INTERVAL`: the peers an address is relayed
/// to stay the same for this long.
pub const ROTATE_ADDR_RELAY_DEST_INTERVAL: i64 = 24 * 60 * 60;
/// Core's `AVG_ADDRESS_BROADCAST_INTERVAL`: the average time between
/// flushes of a peer's queue of addresses to send.
pub const AVG_ADDRESS_BROADCAST_INTERVAL: Duration = Duration::from_secs(30);
/// Core's `MAX_ADDR_RATE_PER_SECOND`: addresses a peer may give us per second.
pub const MAX_ADDR_RATE_PER_SECOND: f64 = 0.1;
/// Core's `MAX_ADDR_PROCESSING_TOKEN_BUCKET` (= `MAX_ADDR_TO_SEND`).
pub const MAX_ADDR_PROCESSING_TOKEN_BUCKET: f64 = 1000.0;
/// Core's `ADDRESS_KNOWN_FILTER_SIZE`-like bound on the addresses we
/// remember a peer knows.
pub const ADDR_KNOWN_LIMIT: usize = 5000;

/// Core's per-peer token bucket on received addresses: one token per
/// address, refilled at [`MAX_ADDR_RATE_PER_SECOND`] up to
/// [`MAX_ADDR_PROCESSING_TOKEN_BUCKET`]. It starts with one token, and each
/// `getaddr` we send adds a full answer's worth.
#[derive(Debug, Clone, Copy)]
pub struct AddrTokenBucket {
    tokens: f64,
    updated: Instant,
}

impl AddrTokenBucket {
    /// A bucket holding one token at `now`.
    pub fn new(now: Instant) -> AddrTokenBucket {
        AddrTokenBucket { tokens: 1.0, updated: now }
    }

    /// We asked the peer for addresses: its answer may fill a whole message.
    pub fn expect_getaddr_answer(&mut self) {
        self.tokens += MAX_ADDR_PROCESSING_TOKEN_BUCKET;
    }

    /// Refills the bucket for the time passed since the last refill (Core
    /// refills only below the cap, so a `getaddr` bonus is never cut).
    pub fn refill(&mut self, now: Instant) {
        if self.tokens < MAX_ADDR_PROCESSING_TOKEN_BUCKET {
            let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * MAX_ADDR_RATE_PER_SECOND).min(MAX_ADDR_PROCESSING_TOKEN_BUCKET);
        }
        self.updated = now;
    }

    /// Takes a token for one address; false when none is left (the address
    /// is then dropped and counted as rate-limited).
    pub fn take(&mut self) -> bool {
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Tokens left.
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// Core's clamp of a received timestamp: one that is implausibly early or
/// more than ten minutes in the future is taken as five days ago.
pub fn clamp_time(time: i64, now: i64) -> i64 {
    if time <= 100_000_000 || time > now + 600 {
        now - 5 * 24 * 60 * 60
    } else {
        time
    }
}

/// Whether a received address is news worth relaying (Core's condition in
/// `ProcessMessage`): fresh, from a small unsolicited message, and of a kind
/// our address book accepts (`acceptable`: routable, or local on regtest).
pub fn should_relay(time: i64, now: i64, message_len: usize, answers_our_getaddr: bool, acceptable: bool) -> bool {
    clamp_time(time, now) > now - MAX_RELAYED_ADDR_AGE
        && !answers_our_getaddr
        && message_len <= MAX_RELAYED_ADDR_MESSAGE
        && acceptable
}

/// Core's `RelayAddress`: the peers (at most two) that `addr` goes to. The
/// choice is a keyed hash of the address, the peer and the current
/// 24-hour period, so that repeats of an address reach the same peers and do
/// not spread it further. `candidates` are the peers that take addresses,
/// less the one it came from; `reachable` addresses go to two peers, the
/// others to one or two as the hash says.
pub fn relay_targets(
    addr: &SocketAddr,
    reachable: bool,
    now: i64,
    salt: u64,
    candidates: impl IntoIterator<Item = PeerId>,
) -> Vec<PeerId> {
    let hash_addr = keyed_hash(0, addr);
    let period = (now as u64).wrapping_add(hash_addr) / ROTATE_ADDR_RELAY_DEST_INTERVAL as u64;
    let base = keyed_hash(salt, &(hash_addr, period));
    let fanout = if reachable || base & 1 == 1 { 2 } else { 1 };
    let mut ranked: Vec<(u64, PeerId)> = candidates.into_iter().map(|id| (keyed_hash(base, &id), id)).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().take(fanout).map(|(_, id)| id).collect()
}

fn keyed_hash(key: u64, item: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    item.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn only_fresh_addresses_from_small_unsolicited_messages_are_relayed() {
        let cases = [
            ("fresh, one address", NOW - 60, 1, false, true, true),
            ("ten addresses", NOW, 10, false, true, true),
            ("eleven addresses", NOW, 11, false, true, false),
            ("eleven minutes old", NOW - 11 * 60, 1, false, true, false),
            ("far in the future", NOW + 3600, 1, false, true, false),
            ("answer to our getaddr", NOW, 1, true, true, false),
            ("not routable", NOW, 1, false, false, false),
        ];
        for (name, time, len, solicited, acceptable, expected) in cases {
            assert_eq!(should_relay(time, NOW, len, solicited, acceptable), expected, "{name}");
        }
    }

    #[test]
    fn targets_are_stable_within_a_day_and_at_most_two() {
        let addr: SocketAddr = "123.45.67.89:8333".parse().unwrap();
        let peers = [1, 2, 3, 4, 5];
        let first = relay_targets(&addr, true, NOW, 7, peers);
        assert_eq!(first.len(), 2);
        assert_eq!(relay_targets(&addr, true, NOW + 1, 7, peers), first, "same peers a second later");
        assert!(relay_targets(&addr, false, NOW, 7, peers).len() <= 2);
        assert_eq!(relay_targets(&addr, true, NOW, 7, [9]), vec![9], "fewer candidates than the fanout");
        assert!(relay_targets(&addr, true, NOW, 7, []).is_empty());
    }

    #[test]
    fn the_token_bucket_refills_at_a_tenth_per_second_up_to_1000() {
        let t0 = Instant::now();
        let mut bucket = AddrTokenBucket::new(t0);
        assert!(bucket.take(), "one address at once");
        assert!(!bucket.take(), "then none");
        bucket.refill(t0 + Duration::from_secs(10));
        assert!(bucket.take(), "one more after ten seconds");
        assert!(!bucket.take());
        bucket.refill(t0 + Duration::from_secs(1_000_000));
        assert_eq!(bucket.tokens(), MAX_ADDR_PROCESSING_TOKEN_BUCKET);
        bucket.expect_getaddr_answer();
        bucket.refill(t0 + Duration::from_secs(2_000_000));
        assert_eq!(bucket.tokens(), 2.0 * MAX_ADDR_PROCESSING_TOKEN_BUCKET, "a getaddr bonus is not cut");
    }
}
