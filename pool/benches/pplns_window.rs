//! How long the pool takes to read the PPLNS window as the ledger grows: the
//! read every new job makes (each tip, and each template refresh).
//!
//! ```text
//! cargo bench -p satpool --bench pplns_window
//! SATPOOL_TEST_POSTGRES_URL=postgres://… PPLNS_WINDOW_SHARES=1000000 cargo bench -p satpool --bench pplns_window
//! ```
//!
//! It records `PPLNS_WINDOW_SHARES` shares (default 1,000,000) from 1,000
//! workers at ASIC-like difficulty 65,536 through the ledger's own batched
//! `record_shares`, then times `window_workers` at windows that hold 1 %,
//! 10 %, 50 % and 100 % of them, and prints the median of 9 reads each,
//! beside the share-by-share walk over the same shares in memory (what a
//! ledger without running totals must at least do).

use std::time::{Duration, Instant, SystemTime};

use satpool::config::Database;
use satpool::ledger::{Ledger, LedgerOptions, MemoryStore, ShareRecord, ShareStore};
use satpool::payout::ShareWeight;

const DIFFICULTY: f64 = 65_536.0;
const WORKERS: u64 = 1_000;
const BATCH: usize = 2_000;

fn shares(count: u64) -> impl Iterator<Item = Vec<ShareRecord>> {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut next = 0u64;
    std::iter::from_fn(move || {
        if next >= count {
            return None;
        }
        let end = (next + BATCH as u64).min(count);
        let batch = (next..end)
            .map(|i| {
                // Workers in a scrambled order, as shares arrive.
                let w = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % WORKERS;
                ShareRecord {
                    time: t0 + Duration::from_millis(i),
                    address: format!("miner{}", w % 250),
                    worker: format!("rig{}", w / 250),
                    difficulty: DIFFICULTY,
                    height: 900_000,
                    job_id: "1f".to_owned(),
                    block_hash: None,
                }
            })
            .collect();
        next = end;
        Some(batch)
    })
}

async fn median_read<S: ShareStore>(store: &S, window: ShareWeight) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut workers = 0;
    for _ in 0..9 {
        let started = Instant::now();
        workers = store.window_workers(window).await.expect("the window reads").len();
        times.push(started.elapsed());
    }
    times.sort();
    (times[4], workers)
}

async fn measure(name: &str, ledger: &Ledger, memory: &MemoryStore, count: u64) {
    let started = Instant::now();
    for batch in shares(count) {
        ledger.record_shares(&batch).await.expect("recorded");
        memory.record_shares(&batch).await.expect("recorded");
    }
    println!("{name}: {count} shares recorded in {:.1} s", started.elapsed().as_secs_f64());
    for percent in [1u128, 10, 50, 100] {
        let shares_in = u128::from(count) * percent / 100;
        let window = ShareWeight(ShareWeight::from_difficulty(DIFFICULTY).0 * shares_in);
        let (totals, workers) = median_read(ledger, window).await;
        let (walk, _) = median_read(memory, window).await;
        println!(
            "  window of {shares_in} shares ({workers} workers): {:.2} ms from running totals; \
             the walk share by share in memory {:.2} ms",
            totals.as_secs_f64() * 1e3,
            walk.as_secs_f64() * 1e3
        );
    }
}

fn main() {
    let count: u64 = std::env::var("PPLNS_WINDOW_SHARES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Ledger::open(&Database::Sqlite(dir.path().join("ledger.sqlite")), &LedgerOptions::default())
            .await
            .expect("SQLite opens");
        measure("sqlite", &sqlite, &MemoryStore::new(), count).await;
        sqlite.close().await;
        match std::env::var("SATPOOL_TEST_POSTGRES_URL") {
            Ok(url) => {
                let schema = format!("satpool_window_{}", std::process::id());
                let options = LedgerOptions { postgres_schema: Some(schema.clone()), ..LedgerOptions::default() };
                let postgres =
                    Ledger::open(&Database::Postgres(url.clone()), &options).await.expect("PostgreSQL opens");
                measure("postgres", &postgres, &MemoryStore::new(), count).await;
                postgres.close().await;
                let admin = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
                admin.close().await;
            }
            Err(_) => println!("notice: SATPOOL_TEST_POSTGRES_URL not set; PostgreSQL not measured"),
        }
    });
}
