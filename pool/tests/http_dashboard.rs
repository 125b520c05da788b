//! The dashboard in headless Chromium against a pool whose SQLite ledger
//! holds known shares: the charts must show data (SVG paths through every
//! bucket), the tables the workers and blocks; a screenshot of each page is
//! kept under `target/dashboard/`. Without `chromium` on the PATH the test
//! prints a notice and passes (CI installs it).

mod http_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use http_fixture::*;
use satpool::config::Database;
use satpool::ledger::{Ledger, LedgerOptions, ShareRecord, ShareStore};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let found = Command::new("which").arg(name).output().ok()?;
        found.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
    })
}

/// Where screenshots are kept: `target/dashboard/`.
fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    let dir = target.join("dashboard");
    std::fs::create_dir_all(&dir).expect("target/dashboard can be made");
    dir
}

/// Runs Chromium headless on `url`, with `mode` `--dump-dom` or
/// `--screenshot=<file>`; returns stdout.
fn run_chromium(chromium: &Path, profile: &Path, mode: &str, url: &str) -> String {
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--window-size=1400,1000",
            "--virtual-time-budget=5000",
            mode,
            url,
        ])
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// More shares for livelier charts: every 30 s over the last 7 days, three
/// workers whose difficulty follows a slow wave.
async fn fill_dense<S: ShareStore>(store: &S) {
    let mut shares = Vec::new();
    for i in 0..(7 * 86_400 / 30) {
        let seconds = 45 + i * 30;
        let phase = seconds as f64 / 20_000.0;
        for (address, worker, base) in [(ALICE, "rig1", 6.0), (ALICE, "rig2", 3.0), (BOB, "", 4.0)] {
            let wave = 1.0 + 0.35 * (phase + base).sin() + 0.15 * (phase * 7.0 + base).cos();
            shares.push(ShareRecord {
                time: ago(seconds),
                address: address.into(),
                worker: worker.into(),
                difficulty: (base * wave).max(0.5),
                height: 101,
                job_id: "1".into(),
                block_hash: None,
            });
        }
    }
    store.record_shares(&shares).await.expect("dense shares stored");
}

/// The `d` attributes of the chart lines (`class="line"`) in a dumped DOM.
fn line_paths(dom: &str) -> Vec<String> {
    dom.split("<path")
        .skip(1)
        .filter(|tag| tag.split('>').next().is_some_and(|attrs| attrs.contains("class=\"line\"")))
        .filter_map(|tag| {
            let start = tag.find(" d=\"")? + 4;
            let end = tag[start..].find('"')? + start;
            Some(tag[start..end].to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_charts_and_tables_in_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("notice: chromium is not installed (apt-get install chromium); skipping the dashboard test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&Database::Sqlite(dir.path().join("ledger.sqlite")), &LedgerOptions::default())
        .await
        .expect("open");
    let store = Arc::new(ledger);
    fill(&*store).await;
    fill_dense(&*store).await;
    let running = start(store).await;
    let profile = tempfile::tempdir().unwrap();
    let out = out_dir();

    let url = running.url("/");
    let (chromium2, profile2) = (chromium.clone(), profile.path().to_owned());
    let dom =
        tokio::task::spawn_blocking(move || run_chromium(&chromium2, &profile2, "--dump-dom", &url)).await.unwrap();
    // The pool chart: one line through all 60 one-minute buckets.
    let paths = line_paths(&dom);
    assert!(!paths.is_empty(), "no chart line in the DOM:\n{dom}");
    let points = paths[0].matches(['M', 'L']).count();
    assert_eq!(points, 60, "the 1 h chart has a point per minute: {}", paths[0]);
    assert!(paths[0].contains(','), "coordinates");
    // The workers and the blocks.
    assert!(dom.contains("rig1") && dom.contains("rig2"), "the workers table");
    assert!(dom.contains("pill pending") && dom.contains("pill orphaned") && dom.contains("pill confirmed"), "blocks");
    assert!(dom.contains("Round effort"));
    assert!(!dom.contains("Cannot reach the pool"), "the API answered:\n{dom}");

    let shot = out.join("pool.png");
    let url = running.url("/");
    let (chromium2, profile2, shot2) = (chromium.clone(), profile.path().to_owned(), shot.clone());
    tokio::task::spawn_blocking(move || {
        run_chromium(&chromium2, &profile2, &format!("--screenshot={}", shot2.display()), &url)
    })
    .await
    .unwrap();
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot at {}", shot.display());

    // A payout address: its total, a line per worker, a small chart each.
    let url = running.url(&format!("/address/{ALICE}"));
    let (chromium2, profile2) = (chromium.clone(), profile.path().to_owned());
    let dom =
        tokio::task::spawn_blocking(move || run_chromium(&chromium2, &profile2, "--dump-dom", &url)).await.unwrap();
    let paths = line_paths(&dom);
    // Total + rig1 + rig2 in the main chart, then rig1 and rig2 alone.
    assert_eq!(paths.len(), 5, "address charts:\n{dom}");
    assert!(paths.iter().all(|d| d.matches(['M', 'L']).count() == 60));
    assert!(dom.contains("data-worker-chart=\"1\""));
    assert!(dom.contains("pill orphaned"), "alice's payouts");
    let shot = out.join("address.png");
    let url = running.url(&format!("/address/{ALICE}"));
    let (chromium2, profile2, shot2) = (chromium.clone(), profile.path().to_owned(), shot.clone());
    tokio::task::spawn_blocking(move || {
        run_chromium(&chromium2, &profile2, &format!("--screenshot={}", shot2.display()), &url)
    })
    .await
    .unwrap();
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false));
    eprintln!("screenshots: {} and {}", out.join("pool.png").display(), shot.display());

    tokio::time::timeout(Duration::from_secs(20), running.stop()).await.expect("stops");
}
