//! The ledger through its public API: SQLite in a temporary folder always,
//! PostgreSQL when SATPOOL_TEST_POSTGRES_URL is set (each run in a schema of
//! its own, dropped at the end).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash};
use satpool::config::Database;
use satpool::ledger::{
    BlockRecord, BlockStatus, BlockWatcher, Ledger, LedgerOptions, RecorderOptions, ShareRecord, ShareRecorder,
    ShareStore, WatcherOptions,
};
use satpool::template::MemoryNode;

fn share(address: &str, difficulty: f64, at: SystemTime) -> ShareRecord {
    ShareRecord {
        time: at,
        address: address.to_owned(),
        worker: "rig1".to_owned(),
        difficulty,
        height: 100,
        job_id: "a1".to_owned(),
        block_hash: None,
    }
}

fn block(n: u8, height: u32) -> BlockRecord {
    BlockRecord {
        hash: BlockHash::from_byte_array([n; 32]),
        height,
        reward: Amount::from_sat(5_000_000_000),
        fees: Amount::from_sat(12_345),
        status: BlockStatus::Pending,
        confirmations: 0,
        found_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + u64::from(n)),
        finder_address: "alice".to_owned(),
        finder_worker: "rig1".to_owned(),
        network_difficulty: 2.5,
        effort: 0.8,
    }
}

/// The same checks on any store.
async fn exercise<S: ShareStore>(store: &S) {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let shares: Vec<ShareRecord> = (0..1_200u64)
        .map(|i| share(if i % 3 == 0 { "alice" } else { "bob" }, 1.5, t0 + Duration::from_millis(i)))
        .collect();
    store.record_shares(&shares).await.expect("a batch over several INSERTs");
    store.record_shares(&[share("carol", 4.0, t0 + Duration::from_secs(10))]).await.expect("a second batch");

    // Window: newest first, the boundary share cut.
    let window = store.window_shares(5.0).await.expect("window");
    assert_eq!(window[0].address, "carol");
    assert_eq!(window.len(), 2);
    assert!((window.iter().map(|s| s.difficulty).sum::<f64>() - 5.0).abs() < 1e-9);
    // A window wider than every share returns them all, across pages.
    let all = store.window_shares(1e9).await.expect("window");
    assert_eq!(all.len(), 1_201);

    let alice = store.difficulty_since(t0, Some("alice")).await.expect("sum");
    assert!((alice - 400.0 * 1.5).abs() < 1e-9, "{alice}");
    let recent = store.difficulty_since(t0 + Duration::from_secs(5), None).await.expect("sum");
    assert!((recent - 4.0).abs() < 1e-9);

    // A block, its payouts and the balances after it.
    let found = block(1, 100);
    let payouts =
        vec![("alice".to_owned(), Amount::from_sat(4_000_000_000)), ("op".to_owned(), Amount::from_sat(1_000_012_345))];
    let owed = vec![("dust".to_owned(), Amount::from_sat(500))];
    store.record_block(&found, &payouts, &owed).await.expect("block");
    assert_eq!(store.balances().await.unwrap(), owed);
    assert_eq!(store.payouts(&found.hash).await.unwrap(), payouts);
    store.record_block(&block(2, 101), &[("bob".to_owned(), Amount::from_sat(5_000_012_345))], &[]).await.unwrap();
    assert!(store.balances().await.unwrap().is_empty(), "balances are replaced");

    let unconfirmed = store.unconfirmed_blocks(0).await.unwrap();
    assert_eq!(unconfirmed.iter().map(|b| b.height).collect::<Vec<_>>(), [100, 101]);
    assert_eq!(unconfirmed[0], found, "a block reads back as written");
    store.set_block_status(&found.hash, BlockStatus::Confirmed, 100).await.unwrap();
    assert_eq!(store.unconfirmed_blocks(0).await.unwrap().len(), 1);
    assert_eq!(store.unconfirmed_blocks(102).await.unwrap().len(), 0);
    let recent = store.recent_blocks(10).await.unwrap();
    assert_eq!(recent[0].height, 101);
    assert_eq!(recent[1].status, BlockStatus::Confirmed);
}

async fn group_commit<S: ShareStore>(store: Arc<S>) {
    let before = store.window_shares(1e12).await.unwrap().len();
    let (recorder, task) = ShareRecorder::spawn(store.clone(), RecorderOptions::default());
    let waits: Vec<_> = (0..500)
        .map(|i| {
            let recorder = recorder.clone();
            tokio::spawn(async move { recorder.record(share(&format!("m{}", i % 7), 1.0, SystemTime::now())).await })
        })
        .collect();
    for wait in waits {
        wait.await.unwrap().expect("every share is stored before its answer");
    }
    drop(recorder);
    task.await.unwrap();
    assert_eq!(store.window_shares(1e12).await.unwrap().len(), before + 500);
}

async fn watcher<S: ShareStore>(store: Arc<S>) {
    let node = Arc::new(MemoryNode::new());
    let a = block(10, 500);
    let b = block(11, 501);
    let c = block(12, 502);
    for block in [&a, &b, &c] {
        store.record_block(block, &[], &[]).await.unwrap();
    }
    node.set_tip(BlockHash::from_byte_array([99; 32]), 600);
    node.set_confirmations(a.hash, 101);
    node.set_confirmations(b.hash, -1);
    node.set_confirmations(c.hash, 5);
    // A horizon that leaves out the blocks of `exercise` (heights 100 and 101).
    let options = WatcherOptions { horizon: 150, ..WatcherOptions::default() };
    let watcher = BlockWatcher::new(store.clone(), node.clone(), options);
    assert_eq!(watcher.check().await.unwrap(), 3);
    let status = |hash| {
        let store = store.clone();
        async move { store.recent_blocks(50).await.unwrap().into_iter().find(|x| x.hash == hash).unwrap() }
    };
    assert_eq!(status(a.hash).await.status, BlockStatus::Confirmed);
    assert_eq!(status(b.hash).await.status, BlockStatus::Orphaned);
    assert_eq!(status(c.hash).await.confirmations, 5);
    // A reorganisation brings the orphan back.
    node.set_confirmations(b.hash, 3);
    watcher.check().await.unwrap();
    assert_eq!(status(b.hash).await.status, BlockStatus::Pending);
    assert_eq!(watcher.check().await.unwrap(), 0, "nothing changed");
}

#[tokio::test]
async fn sqlite_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("ledger.sqlite");
    let database = Database::Sqlite(path.clone());
    let ledger = Ledger::open(&database, &LedgerOptions::default()).await.expect("open creates the file");
    assert_eq!(
        ledger.sqlite_durability().await.unwrap(),
        Some(("wal".to_owned(), 2)),
        "WAL with synchronous = FULL (2)"
    );
    exercise(&ledger).await;
    let ledger = Arc::new(ledger);
    group_commit(ledger.clone()).await;
    watcher(ledger.clone()).await;
    ledger.close().await;

    // Reopening applies no migration twice and finds the data.
    let again = Ledger::open(&database, &LedgerOptions::default()).await.expect("reopen");
    assert_eq!(again.window_shares(1e12).await.unwrap().len(), 1_701);
    again.close().await;
}

#[tokio::test]
async fn memory_store() {
    let store = satpool::ledger::MemoryStore::new();
    exercise(&store).await;
    let store = Arc::new(store);
    group_commit(store.clone()).await;
    watcher(store).await;
}

#[tokio::test]
async fn postgres_ledger() {
    let Ok(url) = std::env::var("SATPOOL_TEST_POSTGRES_URL") else {
        eprintln!("notice: SATPOOL_TEST_POSTGRES_URL is unset; skipping the PostgreSQL ledger test");
        return;
    };
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("satpool_test_{}_{}", std::process::id(), nanos);
    let options = LedgerOptions { max_connections: 4, postgres_schema: Some(schema.clone()) };
    let database = Database::Postgres(url.clone());
    let ledger = Ledger::open(&database, &options).await.expect("open");
    assert_eq!(ledger.backend_name(), "postgres");
    exercise(&ledger).await;
    let ledger = Arc::new(ledger);
    group_commit(ledger.clone()).await;
    watcher(ledger.clone()).await;
    ledger.close().await;
    let again = Ledger::open(&database, &options).await.expect("reopen applies nothing twice");
    assert_eq!(again.window_shares(1e12).await.unwrap().len(), 1_701);
    again.close().await;

    // Leave nothing behind.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE")).execute(&mut conn).await.unwrap();
}
