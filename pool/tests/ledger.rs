//! The ledger through its public API: SQLite in a temporary folder always,
//! PostgreSQL when SATPOOL_TEST_POSTGRES_URL is set (each run in a schema of
//! its own, dropped at the end).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, SignedAmount};
use satpool::config::Database;
use satpool::ledger::{
    BalanceChange, BlockRecord, BlockStatus, BlockWatcher, Ledger, LedgerOptions, MemoryStore, RecorderOptions,
    ShareRecord, ShareRecorder, ShareStore, WatcherOptions, WindowWorker,
};
use satpool::payout::ShareWeight;
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

fn weight(difficulty: f64) -> ShareWeight {
    ShareWeight::from_difficulty(difficulty)
}

/// The window's parts by address (every test share is worker "rig1").
fn parts(window: &[WindowWorker]) -> Vec<(&str, ShareWeight)> {
    window.iter().map(|w| (w.address.as_str(), w.weight)).collect()
}

/// The weight of every share stored: the whole-history window.
async fn shares_stored<S: ShareStore>(store: &S) -> u128 {
    store.window_workers(ShareWeight(u128::MAX)).await.unwrap().iter().map(|w| w.weight.0).sum()
}

/// A deterministic mix of batches: five addresses with two workers each,
/// difficulties from CPU-sized fractions to a mainnet ASIC's, and shares as
/// hard as a mainnet block (whose weights, 2^79, need both total columns).
fn mixed_batches() -> Vec<Vec<ShareRecord>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    (0..40)
        .map(|b| {
            (0..1 + next() % 20)
                .map(|i| {
                    let difficulty = [0.00001, 0.5, 1.0, 3.75, 65_536.0, 1e6, 2e14][(next() % 7) as usize];
                    let mut s = share(&format!("m{}", next() % 5), difficulty, t0 + Duration::from_secs(b * 60 + i));
                    s.worker = format!("rig{}", next() % 2);
                    s
                })
                .collect()
        })
        .collect()
}

/// The store's window (from running totals, for the SQL ledger) is the
/// in-memory walk share by share, at windows that end inside the shares
/// recorded here. Returns the weight it added.
async fn windows_match_the_walk<S: ShareStore>(store: &S) -> u128 {
    let walk = MemoryStore::new();
    let batches = mixed_batches();
    for batch in &batches {
        store.record_shares(batch).await.unwrap();
        walk.record_shares(batch).await.unwrap();
    }
    let added: u128 = batches.iter().flatten().map(|s| weight(s.difficulty).0).sum();
    for window in [1, 4_294_967_296, added / 1_000, added / 7, added / 2 + 12_345, added - 1, added] {
        let window = ShareWeight(window);
        assert_eq!(
            store.window_workers(window).await.unwrap(),
            walk.window_workers(window).await.unwrap(),
            "{window:?}"
        );
    }
    // The pool's difficulty since a time (the SQL ledger's from the totals).
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for minutes in [0, 1, 17, 39, 40] {
        let since = t0 + Duration::from_secs(minutes * 60 + 5);
        let (got, want) =
            (store.difficulty_since(since, None).await.unwrap(), walk.difficulty_since(since, None).await.unwrap());
        assert!((got - want).abs() <= want * 1e-12, "since minute {minutes}: {got} against {want}");
    }
    added
}

/// The same checks on any store.
async fn exercise<S: ShareStore>(store: &S) {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let shares: Vec<ShareRecord> = (0..1_200u64)
        .map(|i| share(if i % 3 == 0 { "alice" } else { "bob" }, 1.5, t0 + Duration::from_millis(i)))
        .collect();
    store.record_shares(&shares).await.expect("a batch over several INSERTs");
    store.record_shares(&[share("carol", 4.0, t0 + Duration::from_secs(10))]).await.expect("a second batch");

    // Window: carol's 4, then 1 of the newest share's 1.5 (bob's), cut.
    let window = store.window_workers(weight(5.0)).await.expect("window");
    assert_eq!(parts(&window), [("bob", weight(1.0)), ("carol", weight(4.0))]);
    // A window wider than every share counts them all.
    let all = store.window_workers(weight(1e9)).await.expect("window");
    assert_eq!(parts(&all), [("alice", weight(600.0)), ("bob", weight(1_200.0)), ("carol", weight(4.0))]);

    let alice = store.difficulty_since(t0, Some("alice")).await.expect("sum");
    assert!((alice - 400.0 * 1.5).abs() < 1e-9, "{alice}");
    let recent = store.difficulty_since(t0 + Duration::from_secs(5), None).await.expect("sum");
    assert!((recent - 4.0).abs() < 1e-9);

    // A block, its payouts and the balances after it.
    let found = block(1, 100);
    let payouts =
        vec![("alice".to_owned(), Amount::from_sat(4_000_000_000)), ("op".to_owned(), Amount::from_sat(1_000_012_345))];
    store.record_block(&found, &payouts, &delta(&[("dust", 500)])).await.expect("block");
    assert_eq!(store.balances().await.unwrap(), owed(&[("dust", 500)]));
    assert_eq!(store.payouts(&found.hash).await.unwrap(), payouts);
    let bob = [("bob".to_owned(), Amount::from_sat(5_000_012_345))];
    store.record_block(&block(2, 101), &bob, &delta(&[("dust", -500)])).await.unwrap();
    assert!(store.balances().await.unwrap().is_empty(), "the second block paid the dust off");

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
    let before = shares_stored(&*store).await;
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
    assert_eq!(shares_stored(&*store).await, before + 500 * weight(1.0).0);
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

/// A store whose recorded balance changes the tests can read.
trait Changes: ShareStore {
    async fn changes(&self, block: &BlockHash) -> Vec<BalanceChange>;
}

impl Changes for Ledger {
    async fn changes(&self, block: &BlockHash) -> Vec<BalanceChange> {
        self.balance_changes(block).await.expect("balance changes")
    }
}

impl Changes for MemoryStore {
    async fn changes(&self, block: &BlockHash) -> Vec<BalanceChange> {
        self.balance_changes(block)
    }
}

fn owed(pairs: &[(&str, u64)]) -> Vec<(String, Amount)> {
    pairs.iter().map(|(a, v)| ((*a).to_owned(), Amount::from_sat(*v))).collect()
}

/// A block's changes to the balances, as its payout gives them.
fn delta(pairs: &[(&str, i64)]) -> Vec<(String, SignedAmount)> {
    pairs.iter().map(|(a, v)| ((*a).to_owned(), SignedAmount::from_sat(*v))).collect()
}

fn change(address: &str, delta: i64, applied: i64) -> BalanceChange {
    BalanceChange {
        address: address.to_owned(),
        delta: SignedAmount::from_sat(delta),
        applied: SignedAmount::from_sat(applied),
    }
}

/// An orphaned block gives back the balances it changed; a block back in
/// the active chain takes them again; neither happens twice; no balance
/// goes below zero. Runs after `watcher`: its blocks are below the
/// heights used here.
async fn orphans<S: Changes>(store: Arc<S>) {
    let balances = || {
        let store = store.clone();
        async move { store.balances().await.expect("balances read back: none negative") }
    };
    // A known start: carol is owed 300, dave 700.
    store.record_block(&block(30, 700), &[], &delta(&[("carol", 300), ("dave", 700)])).await.unwrap();
    let start = owed(&[("carol", 300), ("dave", 700)]);
    assert_eq!(balances().await, start);

    // D1 pays carol's 300, credits dave 200 more and erin 50.
    let d1 = block(31, 701);
    let after_d1 = owed(&[("dave", 900), ("erin", 50)]);
    let d1_delta = delta(&[("carol", -300), ("dave", 200), ("erin", 50)]);
    store.record_block(&d1, &owed(&[("carol", 300), ("op", 4_999_999_700)]), &d1_delta).await.unwrap();
    assert_eq!(balances().await, after_d1);
    let d1_changes = vec![change("carol", -300, -300), change("dave", 200, 200), change("erin", 50, 50)];
    assert_eq!(store.changes(&d1.hash).await, d1_changes, "delta = after - before, per address");

    // Orphaned: the balances are exactly those before it.
    store.set_block_status(&d1.hash, BlockStatus::Orphaned, -1).await.unwrap();
    assert_eq!(balances().await, start, "orphaning restores the balances before the block");
    // Again, and with other confirmations: nothing moves twice.
    store.set_block_status(&d1.hash, BlockStatus::Orphaned, -1).await.unwrap();
    store.set_block_status(&d1.hash, BlockStatus::Orphaned, 0).await.unwrap();
    assert_eq!(balances().await, start, "a repeated orphan call is a no-op");
    assert_eq!(store.changes(&d1.hash).await, d1_changes);

    // Back in the active chain: the balances after it, once.
    store.set_block_status(&d1.hash, BlockStatus::Pending, 2).await.unwrap();
    assert_eq!(balances().await, after_d1, "un-orphaning gives back the balances after the block");
    store.set_block_status(&d1.hash, BlockStatus::Pending, 3).await.unwrap();
    assert_eq!(balances().await, after_d1, "a repeated call is a no-op");

    // D2, on top of D1, pays dave's 900 and erin's 50 (D1's credits among them).
    let d2 = block(32, 702);
    store
        .record_block(&d2, &owed(&[("dave", 900), ("erin", 50)]), &delta(&[("dave", -900), ("erin", -50)]))
        .await
        .unwrap();
    assert!(balances().await.is_empty());
    // D1 alone is orphaned (D2 stays): carol's 300 is owed again; dave's
    // and erin's credits from D1 were already paid by D2: clamped at zero,
    // no negative balance, no zero row.
    store.set_block_status(&d1.hash, BlockStatus::Orphaned, -1).await.unwrap();
    assert_eq!(balances().await, owed(&[("carol", 300)]), "clamped at zero");
    assert_eq!(
        store.changes(&d1.hash).await,
        vec![change("carol", -300, -300), change("dave", 200, 0), change("erin", 50, 0)],
        "the block remembers what it actually took back"
    );
    store.set_block_status(&d1.hash, BlockStatus::Orphaned, -1).await.unwrap();
    assert_eq!(balances().await, owed(&[("carol", 300)]), "a repeated orphan call is a no-op");
    // D1 back: it paid carol, and its credits were paid by D2: nothing is
    // owed (not dave 200 and erin 50 a second time).
    store.set_block_status(&d1.hash, BlockStatus::Pending, 1).await.unwrap();
    assert!(balances().await.is_empty(), "{:?}", balances().await);
    // Confirmed straight from orphaned also applies the changes; confirmed again moves nothing.
    store.set_block_status(&d1.hash, BlockStatus::Orphaned, -1).await.unwrap();
    store.set_block_status(&d1.hash, BlockStatus::Confirmed, 100).await.unwrap();
    store.set_block_status(&d1.hash, BlockStatus::Confirmed, 101).await.unwrap();
    assert!(balances().await.is_empty());

    // A reorganisation that takes E1 (credits frank 100) and E2 on top of it
    // (pays frank's 100) away in one look: E2 gives its payment back first,
    // then E1's credit goes: nothing owed, nothing clamped. Bringing both
    // back: E1 first, then E2.
    let e1 = block(40, 900);
    let e2 = block(41, 901);
    store.record_block(&e1, &[], &delta(&[("frank", 100)])).await.unwrap();
    store.record_block(&e2, &owed(&[("frank", 100)]), &delta(&[("frank", -100)])).await.unwrap();
    let node = Arc::new(MemoryNode::new());
    node.set_tip(BlockHash::from_byte_array([98; 32]), 950);
    node.set_confirmations(e1.hash, 51);
    node.set_confirmations(e2.hash, 50);
    let options = WatcherOptions { horizon: 60, ..WatcherOptions::default() };
    let watcher = BlockWatcher::new(store.clone(), node.clone(), options);
    assert_eq!(watcher.check().await.unwrap(), 2);
    node.set_confirmations(e1.hash, -1);
    node.set_confirmations(e2.hash, -1);
    assert_eq!(watcher.check().await.unwrap(), 2);
    assert!(balances().await.is_empty(), "{:?}", balances().await);
    assert_eq!(store.changes(&e1.hash).await, vec![change("frank", 100, 100)], "nothing clamped");
    assert_eq!(watcher.check().await.unwrap(), 0);
    node.set_confirmations(e1.hash, 52);
    node.set_confirmations(e2.hash, 51);
    assert_eq!(watcher.check().await.unwrap(), 2);
    assert!(balances().await.is_empty(), "{:?}", balances().await);
    assert_eq!(store.changes(&e2.hash).await, vec![change("frank", -100, -100)], "nothing clamped");

    // A block recorded as already orphaned leaves the balances alone.
    store.record_block(&block(42, 902), &[], &delta(&[("gina", 5)])).await.unwrap();
    let mut orphan = block(43, 903);
    orphan.status = BlockStatus::Orphaned;
    store.record_block(&orphan, &[], &delta(&[("gina", -5)])).await.unwrap();
    assert_eq!(store.changes(&orphan.hash).await, vec![change("gina", -5, -5)], "kept, not in effect");
    assert_eq!(balances().await, owed(&[("gina", 5)]));
    store.set_block_status(&orphan.hash, BlockStatus::Pending, 1).await.unwrap();
    assert!(balances().await.is_empty(), "its changes apply when it joins the chain");
}

/// A block applies its job's change to the balances as they are when it is
/// recorded, not as they were when its job was built: moves in between (an
/// orphan giving its changes back, another block) are kept, and nothing is
/// paid or credited twice. Runs after `orphans`, with nothing owed.
async fn races<S: Changes>(store: Arc<S>) {
    let balances = || {
        let store = store.clone();
        async move { store.balances().await.expect("balances read back: none negative") }
    };
    assert!(balances().await.is_empty(), "a known start");
    store.record_block(&block(50, 1_000), &[], &delta(&[("hana", 400)])).await.unwrap();
    let r1 = block(51, 1_001);
    store.record_block(&r1, &owed(&[("hana", 400)]), &delta(&[("hana", -400)])).await.unwrap();
    assert!(balances().await.is_empty());

    // A job built now (nothing owed) credits ivan 60. Before its block is
    // found, R1 is orphaned and gives hana's 400 back.
    let job_changes = delta(&[("ivan", 60)]);
    store.set_block_status(&r1.hash, BlockStatus::Orphaned, -1).await.unwrap();
    assert_eq!(balances().await, owed(&[("hana", 400)]));
    let j = block(52, 1_001);
    store.record_block(&j, &[], &job_changes).await.unwrap();
    assert_eq!(balances().await, owed(&[("hana", 400), ("ivan", 60)]), "the given-back balance stays owed");
    assert_eq!(store.changes(&j.hash).await, vec![change("ivan", 60, 60)]);

    // Two jobs built on the same balances (hana 400, ivan 60): K1 pays
    // hana and credits jack 30; K2 credits ivan 40 and jack 20. Both
    // blocks are found: K2 applies its own change on top of K1's, so hana
    // is not owed again and jack keeps both credits.
    let k1 = block(53, 1_002);
    let k2 = block(54, 1_003);
    store.record_block(&k1, &owed(&[("hana", 400)]), &delta(&[("hana", -400), ("jack", 30)])).await.unwrap();
    assert_eq!(balances().await, owed(&[("ivan", 60), ("jack", 30)]));
    store.record_block(&k2, &[], &delta(&[("ivan", 40), ("jack", 20)])).await.unwrap();
    assert_eq!(balances().await, owed(&[("ivan", 100), ("jack", 50)]), "no credit lost, none paid twice");
    assert_eq!(store.changes(&k2.hash).await, vec![change("ivan", 40, 40), change("jack", 20, 20)]);

    // Two jobs on (ivan 100, jack 50) whose coinbases both pay ivan: the
    // second finds nothing owed to ivan; his balance stops at zero, and the
    // block remembers that it moved nothing there.
    let k3 = block(55, 1_004);
    let k4 = block(56, 1_005);
    store.record_block(&k3, &owed(&[("ivan", 100)]), &delta(&[("ivan", -100)])).await.unwrap();
    store
        .record_block(&k4, &owed(&[("ivan", 100), ("jack", 50)]), &delta(&[("ivan", -100), ("jack", -50)]))
        .await
        .unwrap();
    assert!(balances().await.is_empty(), "clamped at zero: {:?}", balances().await);
    assert_eq!(
        store.changes(&k4.hash).await,
        vec![change("ivan", -100, 0), change("jack", -50, -50)],
        "applied is what really moved"
    );
    // Orphaning K4 gives back only what it moved: jack's 50, not ivan's
    // 100 (K3 paid him); bringing it back takes exactly that again.
    store.set_block_status(&k4.hash, BlockStatus::Orphaned, -1).await.unwrap();
    assert_eq!(balances().await, owed(&[("jack", 50)]));
    store.set_block_status(&k4.hash, BlockStatus::Pending, 1).await.unwrap();
    assert!(balances().await.is_empty(), "{:?}", balances().await);
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
    orphans(ledger.clone()).await;
    races(ledger.clone()).await;
    let added = windows_match_the_walk(&*ledger).await;
    ledger.close().await;

    // Reopening applies no migration twice and finds the data.
    let again = Ledger::open(&database, &LedgerOptions::default()).await.expect("reopen");
    assert_eq!(shares_stored(&again).await, weight(2_304.0).0 + added, "every share's weight is still there");
    again.close().await;
}

#[tokio::test]
async fn memory_store() {
    let store = MemoryStore::new();
    exercise(&store).await;
    let store = Arc::new(store);
    group_commit(store.clone()).await;
    watcher(store.clone()).await;
    orphans(store.clone()).await;
    races(store.clone()).await;
    windows_match_the_walk(&*store).await;
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
    orphans(ledger.clone()).await;
    races(ledger.clone()).await;
    let added = windows_match_the_walk(&*ledger).await;
    ledger.close().await;
    let again = Ledger::open(&database, &options).await.expect("reopen applies nothing twice");
    assert_eq!(shares_stored(&again).await, weight(2_304.0).0 + added, "every share's weight is still there");
    again.close().await;

    // Leave nothing behind.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE")).execute(&mut conn).await.unwrap();
}

/// Two pool servers on one PostgreSQL database record batches at the same
/// time: the pool total's row lock orders them, so the window from the
/// running totals is the walk over every share in the order stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_servers_share_one_ledger() {
    let Ok(url) = std::env::var("SATPOOL_TEST_POSTGRES_URL") else {
        eprintln!("notice: SATPOOL_TEST_POSTGRES_URL is unset; skipping the two-server PostgreSQL ledger test");
        return;
    };
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("satpool_test_two_{}_{}", std::process::id(), nanos);
    let options = LedgerOptions { max_connections: 4, postgres_schema: Some(schema.clone()) };
    let database = Database::Postgres(url.clone());
    let one = Arc::new(Ledger::open(&database, &options).await.expect("open"));
    let two = Arc::new(Ledger::open(&database, &options).await.expect("a second server opens the same ledger"));
    let batches = mixed_batches();
    let mut tasks = Vec::new();
    for (n, batch) in batches.iter().cloned().enumerate() {
        let ledger = if n % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { ledger.record_shares(&batch).await }));
    }
    for task in tasks {
        task.await.unwrap().expect("both servers record");
    }
    // The walk over the shares in the order the database stored them.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let stored: Vec<(String, String, f64)> =
        sqlx::query_as(&format!("SELECT address, worker, difficulty FROM \"{schema}\".shares ORDER BY id"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored.len(), batches.iter().map(Vec::len).sum::<usize>());
    let walk = MemoryStore::new();
    let t0 = SystemTime::UNIX_EPOCH;
    let in_order: Vec<ShareRecord> = stored
        .into_iter()
        .map(|(address, worker, difficulty)| ShareRecord { worker, ..share(&address, difficulty, t0) })
        .collect();
    walk.record_shares(&in_order).await.unwrap();
    let added: u128 = in_order.iter().map(|s| weight(s.difficulty).0).sum();
    for window in [1, added / 1_000, added / 7, added / 2 + 12_345, added - 1, added] {
        let window = ShareWeight(window);
        assert_eq!(one.window_workers(window).await.unwrap(), walk.window_workers(window).await.unwrap());
        assert_eq!(two.window_workers(window).await.unwrap(), walk.window_workers(window).await.unwrap());
    }
    one.close().await;
    two.close().await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE")).execute(&mut conn).await.unwrap();
}

/// A ledger made with the first schema only takes the second at open: its
/// orphaned blocks start with their (absent) balance changes out of effect,
/// the others in effect.
#[tokio::test]
async fn sqlite_upgrade_from_the_first_schema() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    std::fs::create_dir(&first).unwrap();
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite/0001_ledger.sql");
    std::fs::copy(sql, first.join("0001_ledger.sql")).unwrap();
    let path = dir.path().join("ledger.sqlite");
    let connect = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = SqlitePool::connect_with(connect.clone()).await.unwrap();
    sqlx::migrate::Migrator::new(first.as_path()).await.unwrap().run(&pool).await.unwrap();
    for (n, status) in [(1u8, "orphaned"), (2, "pending")] {
        sqlx::query(
            "INSERT INTO blocks (hash, height, reward, fees, status, confirmations, found_at, finder_address, \
             finder_worker, network_difficulty, effort) VALUES ($1, $2, 1, 0, $3, 0, 0, 'a', 'w', 1.0, 1.0)",
        )
        .bind(BlockHash::from_byte_array([n; 32]).to_string())
        .bind(i64::from(n))
        .bind(status)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Shares and workers as the first version recorded them: no totals.
    let batches = mixed_batches();
    let (old, new) = batches.split_at(25);
    let walk = MemoryStore::new();
    for share in old.iter().flatten() {
        sqlx::query(
            "INSERT INTO shares (time, address, worker, difficulty, height, job_id) VALUES (0, $1, $2, $3, 1, 'j')",
        )
        .bind(&share.address)
        .bind(&share.worker)
        .bind(share.difficulty)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO workers (address, name, first_seen, last_seen) VALUES ($1, $2, 0, 0) \
             ON CONFLICT (address, name) DO NOTHING",
        )
        .bind(&share.address)
        .bind(&share.worker)
        .execute(&pool)
        .await
        .unwrap();
    }
    for batch in old {
        walk.record_shares(batch).await.unwrap();
    }
    pool.close().await;

    let ledger = Ledger::open(&Database::Sqlite(path), &LedgerOptions::default()).await.expect("0002 and 0003 apply");
    // The old shares count in the window, and new ones add to their totals.
    let old_weight: u128 = old.iter().flatten().map(|s| weight(s.difficulty).0).sum();
    for window in [old_weight / 3, old_weight, u128::MAX] {
        let window = ShareWeight(window);
        assert_eq!(ledger.window_workers(window).await.unwrap(), walk.window_workers(window).await.unwrap());
    }
    for batch in new {
        ledger.record_shares(batch).await.unwrap();
        walk.record_shares(batch).await.unwrap();
    }
    for window in [old_weight / 3, old_weight, old_weight * 2, u128::MAX] {
        let window = ShareWeight(window);
        assert_eq!(ledger.window_workers(window).await.unwrap(), walk.window_workers(window).await.unwrap());
    }
    ledger.close().await;
    let pool = SqlitePool::connect_with(connect).await.unwrap();
    let flags: Vec<(String, bool)> =
        sqlx::query_as("SELECT status, balances_in_effect FROM blocks ORDER BY height").fetch_all(&pool).await.unwrap();
    assert_eq!(flags, [("orphaned".to_owned(), false), ("pending".to_owned(), true)]);
    pool.close().await;
}
