//! The JSON API over a real HTTP server on loopback, its numbers checked
//! against a ledger (in memory, SQLite, and PostgreSQL when
//! SATPOOL_TEST_POSTGRES_URL is set) filled with a known sequence of shares.

mod http_fixture;

use std::sync::Arc;

use http_fixture::*;
use satpool::config::Database;
use satpool::http::api::{AddressInfo, BlocksInfo, HashrateInfo, PayoutsInfo, PoolInfo, WorkerView, WorkersInfo};
use satpool::ledger::{Ledger, LedgerOptions, MemoryStore, ShareStore};
use serde::de::DeserializeOwned;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

async fn get<T: DeserializeOwned>(url: String) -> T {
    let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.unwrap_or_else(|e| panic!("GET {url}: not the JSON expected: {e}"))
}

fn check_rates(rates: &[satpool::http::api::WindowRate], difficulty: [f64; 3], what: &str) {
    let names: Vec<&str> = rates.iter().map(|r| r.window.as_str()).collect();
    assert_eq!(names, ["1m", "1h", "24h"], "{what}: the windows, named");
    for ((rate, d), seconds) in rates.iter().zip(difficulty).zip(SECONDS) {
        assert_eq!(rate.window_seconds as f64, seconds);
        assert!(close(rate.difficulty, d), "{what} {}: difficulty {} != {d}", rate.window, rate.difficulty);
        let expected = d * TWO_32 / seconds;
        assert!(
            close(rate.hashes_per_second, expected),
            "{what} {}: {} != {expected}",
            rate.window,
            rate.hashes_per_second
        );
    }
}

fn worker<'a>(workers: &'a [WorkerView], address: &str, name: &str) -> &'a WorkerView {
    workers.iter().find(|w| w.address == address && w.worker == name).unwrap_or_else(|| panic!("{address}.{name}"))
}

/// Every endpoint, every number.
async fn exercise<S: ShareStore>(store: Arc<S>) {
    fill(&*store).await;
    let running = start(store).await;
    let t = |s: u64| 1_700_000_040 - s;

    // /api/pool
    let pool: PoolInfo = get(running.url("/api/pool")).await;
    check_rates(&pool.hashrate, POOL_DIFFICULTY, "pool");
    assert_eq!(pool.network, "regtest");
    assert_eq!(pool.payout_mode, "pplns");
    assert!(close(pool.fee_percent, 1.0));
    let network_difficulty = template().network_difficulty();
    assert_eq!(pool.network_difficulty, Some(network_difficulty), "the template's difficulty");
    assert_eq!(pool.network_hashrate.as_ref().map(|n| n.hashes_per_second), Some(2.5e9));
    assert_eq!(pool.height, Some(100));
    assert!(pool.node_reachable);
    assert_eq!(pool.coinbase_value_sats, Some(COINBASE));
    // Online (last 10 min): rig1 (30 s ago) and rig2 (10 s); bob's last was 20 min ago.
    assert_eq!(pool.workers_online, 2);
    // Shares in the last 10 min: rig1 at 90 s and 30 s, rig2 at 10 s.
    assert!(close(pool.shares_per_second, 3.0 / 600.0), "{}", pool.shares_per_second);
    assert_eq!(pool.round.started_at, Some(t(2_400)));
    assert!(close(pool.round.difficulty, ROUND_DIFFICULTY), "{}", pool.round.difficulty);
    assert!(close(pool.round.effort.unwrap(), ROUND_DIFFICULTY / network_difficulty));
    let last = pool.last_block.expect("a last block");
    assert_eq!((last.height, last.status.as_str(), last.effort), (100, "pending", 2.0));
    assert_eq!(pool.now, t(0));

    // /api/workers
    let workers: WorkersInfo = get(running.url("/api/workers")).await;
    let names: Vec<(String, String)> = workers.workers.iter().map(|w| (w.address.clone(), w.worker.clone())).collect();
    let mut expected = vec![
        (ALICE.to_owned(), "rig1".to_owned()),
        (ALICE.to_owned(), "rig2".to_owned()),
        (BOB.to_owned(), String::new()),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let rig1 = worker(&workers.workers, ALICE, "rig1");
    let rig2 = worker(&workers.workers, ALICE, "rig2");
    let bob = worker(&workers.workers, BOB, "");
    check_rates(&rig1.hashrate, RIG1_DIFFICULTY, "rig1");
    check_rates(&rig2.hashrate, RIG2_DIFFICULTY, "rig2");
    check_rates(&bob.hashrate, BOB_DIFFICULTY, "bob");
    // Accepted in 24 h; rejected and stale as reported (one duplicate and one
    // low-difficulty reject, one stale, for rig1; one duplicate for bob).
    assert_eq!((rig1.shares.accepted, rig1.shares.rejected, rig1.shares.stale), (4, 2, 1));
    assert_eq!((rig2.shares.accepted, rig2.shares.rejected, rig2.shares.stale), (2, 0, 0));
    assert_eq!((bob.shares.accepted, bob.shares.rejected, bob.shares.stale), (2, 1, 0));
    assert_eq!(rig1.shares.accepted_window, "24h");
    assert_eq!(rig1.last_share_at, Some(t(30)));
    assert_eq!(bob.last_share_at, Some(t(1_200)));
    assert!(rig1.online && rig2.online && !bob.online);
    // PPLNS: the window (100) holds every share: rig1 20, rig2 4, bob 16 of
    // 40. Coinbase 50 BTC less the 1 % fee = 4 950 000 000 sat, shared by weight.
    assert_eq!(rig1.estimated_earnings_sats, Some(4_950_000_000 * 20 / 40));
    assert_eq!(rig2.estimated_earnings_sats, Some(4_950_000_000 * 4 / 40));
    assert_eq!(bob.estimated_earnings_sats, Some(4_950_000_000 * 16 / 40));
    assert!(close(rig1.window_fraction, 0.5));
    // Paid: alice 1 000 confirmed + 500 pending (the orphan's 7 void); bob 2 000.
    assert_eq!((rig1.address_paid.confirmed_sats, rig1.address_paid.pending_sats), (1_000, 500));
    assert_eq!((bob.address_paid.confirmed_sats, bob.address_paid.pending_sats), (2_000, 0));

    // /api/workers/{address}
    let alice: AddressInfo = get(running.url(&format!("/api/workers/{ALICE}"))).await;
    assert_eq!(alice.workers.len(), 2);
    let sum = |a: [f64; 3], b: [f64; 3]| [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
    check_rates(&alice.hashrate, sum(RIG1_DIFFICULTY, RIG2_DIFFICULTY), "alice");
    assert_eq!(alice.estimated_earnings_sats, Some(4_950_000_000 * 24 / 40));
    assert_eq!((alice.paid.confirmed_sats, alice.paid.pending_sats), (1_000, 500));
    assert_eq!(alice.owed_sats, 0);
    let heights: Vec<(u32, u64, &str)> =
        alice.payouts.iter().map(|p| (p.height, p.amount_sats, p.status.as_str())).collect();
    assert_eq!(heights, [(100, 500, "pending"), (99, 7, "orphaned"), (98, 1_000, "confirmed")], "newest first");
    let bob_info: AddressInfo = get(running.url(&format!("/api/workers/{BOB}"))).await;
    assert_eq!(bob_info.owed_sats, 42);
    let nobody: AddressInfo = get(running.url("/api/workers/bcrt1qnobody")).await;
    assert!(nobody.workers.is_empty() && nobody.payouts.is_empty() && nobody.estimated_earnings_sats.is_none());

    // /api/hashrate: 1 h in 60 one-minute buckets ending at now (a multiple of 60).
    let chart: HashrateInfo = get(running.url("/api/hashrate?range=1h")).await;
    assert_eq!((chart.range.as_str(), chart.bucket_seconds), ("1h", 60));
    assert_eq!(chart.series.len(), 1);
    let points = &chart.series[0].points;
    assert_eq!(points.len(), 60);
    assert_eq!(points[0].0, t(3_600));
    assert_eq!(points[59].0, t(60));
    let per_minute = |d: f64| d * TWO_32 / 60.0;
    let mut expected = vec![0.0; 60];
    expected[59] = per_minute(6.0); // rig1 30 s + rig2 10 s ago
    expected[58] = per_minute(4.0); // rig1 90 s ago
    expected[40] = per_minute(8.0); // bob 20 min ago
    expected[30] = per_minute(4.0); // rig1 30 min ago
    expected[10] = per_minute(2.0); // rig2 50 min ago
    for (i, ((_, got), want)) in points.iter().zip(&expected).enumerate() {
        assert!(close(*got, *want), "bucket {i}: {got} != {want}");
    }
    let day: HashrateInfo = get(running.url("/api/hashrate?range=24h")).await;
    assert_eq!((day.bucket_seconds, day.series[0].points.len()), (900, 96));
    let total: f64 = day.series[0].points.iter().map(|p| p.1 * 900.0 / TWO_32).sum();
    // Every share of the last 24 h but those in the bucket still filling.
    let filling_since = 1_700_000_040 / 900 * 900;
    let in_filling: f64 = SHARES.iter().filter(|s| s.3 < 86_400 && t(s.3) >= filling_since).map(|s| s.2).sum();
    let in_range: f64 =
        SHARES.iter().filter(|s| t(s.3) >= filling_since - 96 * 900 && t(s.3) < filling_since).map(|s| s.2).sum();
    assert!(close(total, in_range), "{total} != {in_range} (filling: {in_filling})");
    let week: HashrateInfo = get(running.url("/api/hashrate?range=7d")).await;
    assert_eq!((week.bucket_seconds, week.series[0].points.len()), (7_200, 84));
    let alice_chart: HashrateInfo = get(running.url(&format!("/api/hashrate?range=1h&address={ALICE}"))).await;
    let names: Vec<&str> = alice_chart.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["total", "rig1", "rig2"]);
    assert!(close(alice_chart.series[1].points[59].1, per_minute(4.0)));
    assert!(close(alice_chart.series[2].points[59].1, per_minute(2.0)));
    assert!(close(alice_chart.series[0].points[59].1, per_minute(6.0)));
    let bad = reqwest::get(running.url("/api/hashrate?range=1y")).await.unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);

    // /api/blocks
    let blocks: BlocksInfo = get(running.url("/api/blocks")).await;
    let rows: Vec<(u32, &str, f64)> = blocks.blocks.iter().map(|b| (b.height, b.status.as_str(), b.effort)).collect();
    assert_eq!(rows, [(100, "pending", 2.0), (99, "orphaned", 1.25), (98, "confirmed", 0.5)]);
    assert_eq!(blocks.blocks[0].reward_sats, COINBASE);
    assert_eq!(blocks.counts.values().sum::<usize>(), 3);
    assert_eq!(blocks.counts["orphaned"], 1);
    let one: BlocksInfo = get(running.url("/api/blocks?limit=1")).await;
    assert_eq!(one.blocks.len(), 1);

    // /api/payouts
    let payouts: PayoutsInfo = get(running.url("/api/payouts")).await;
    let rows: Vec<(u32, &str, u64)> =
        payouts.payouts.iter().map(|p| (p.height, p.address.as_str(), p.amount_sats)).collect();
    assert_eq!(rows, [(100, ALICE, 500), (99, ALICE, 7), (98, BOB, 2_000), (98, ALICE, 1_000)]);
    assert_eq!(payouts.owed.len(), 1);
    assert_eq!((payouts.owed[0].address.as_str(), payouts.owed[0].amount_sats), (BOB, 42));
    let bobs: PayoutsInfo = get(running.url(&format!("/api/payouts?address={BOB}"))).await;
    assert_eq!(bobs.payouts.len(), 1);

    running.stop().await;
}

#[tokio::test]
async fn api_over_the_memory_store() {
    exercise(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn api_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&Database::Sqlite(dir.path().join("ledger.sqlite")), &LedgerOptions::default())
        .await
        .expect("open");
    exercise(Arc::new(ledger)).await;
}

#[tokio::test]
async fn api_over_postgres() {
    let Ok(url) = std::env::var("SATPOOL_TEST_POSTGRES_URL") else {
        eprintln!("notice: SATPOOL_TEST_POSTGRES_URL is unset; skipping the PostgreSQL API test");
        return;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("satpool_http_{}_{}", std::process::id(), nanos);
    let options = LedgerOptions { max_connections: 4, postgres_schema: Some(schema.clone()) };
    let ledger = Ledger::open(&Database::Postgres(url.clone()), &options).await.expect("open");
    let ledger = Arc::new(ledger);
    exercise(ledger.clone()).await;
    ledger.close().await;
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE")).execute(&mut conn).await.unwrap();
}
