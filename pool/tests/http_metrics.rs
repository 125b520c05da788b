//! The pool's `/metrics` over the real HTTP server on loopback: the ledger
//! and node wrapped in `Metered`, a known sequence of shares, blocks and
//! rejects; the text checked line by line against Prometheus' text format
//! and parsed by `prometheus-parse`.

mod http_fixture;

use std::sync::Arc;

use http_fixture::*;
use satpool::ledger::MemoryStore;
use satpool::metrics::{Metered, PoolMetrics};
use satpool::template::{MemoryNode, TemplateSource};
use satpool_testkit::prometheus::check_text_format;

#[tokio::test]
async fn pool_metrics_scrape() {
    let metrics = Arc::new(PoolMetrics::new());
    let store = Arc::new(Metered::new(Arc::new(MemoryStore::new()), metrics.clone()));
    fill(&*store).await;
    // The node's getblocktemplate, timed; an unreachable node counts an error.
    let node = MemoryNode::new();
    node.set_template(template());
    let metered = Metered::new(Arc::new(node), metrics.clone());
    metered.get_template(None).await.expect("a template");
    metered.inner().set_reachable(false);
    assert!(metered.get_template(None).await.is_err());
    metrics.connection_opened();
    metrics.connection_opened();
    metrics.connection_closed();
    metrics.connection_refused();
    metrics.observe_job_broadcast(std::time::Duration::from_micros(300));
    let running = start_with_metrics(store, metrics).await;

    let response = reqwest::get(running.url("/metrics")).await.expect("GET /metrics");
    assert!(response.status().is_success());
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let body = response.text().await.unwrap();
    let samples = check_text_format(&body, "satpool_pool_");

    // Shares and blocks as the ledger committed them (through `Metered`).
    assert_eq!(samples["satpool_pool_shares_accepted_total"], SHARES.len() as f64);
    let difficulty: f64 = SHARES.iter().map(|s| s.2).sum();
    assert_eq!(samples["satpool_pool_share_difficulty_accepted_total"], difficulty);
    assert_eq!(samples["satpool_pool_blocks_found_total"], 3.0);
    assert_eq!(samples["satpool_pool_ledger_commit_seconds_count{op=\"shares\"}"], 1.0);
    assert_eq!(samples["satpool_pool_ledger_commit_seconds_count{op=\"block\"}"], 3.0);
    // Rejects by reason, from the fixture: two duplicates, one low difficulty, one stale.
    assert_eq!(samples["satpool_pool_shares_rejected_total{reason=\"duplicate\"}"], 2.0);
    assert_eq!(samples["satpool_pool_shares_rejected_total{reason=\"low_difficulty\"}"], 1.0);
    assert_eq!(samples["satpool_pool_shares_rejected_total{reason=\"stale\"}"], 1.0);
    // Hashrate over each window, by hand (see the fixture), at scrape time.
    for ((window, d), seconds) in ["1m", "1h", "24h"].iter().zip(POOL_DIFFICULTY).zip(SECONDS) {
        let got = samples[&format!("satpool_pool_hashrate_hashes_per_second{{window=\"{window}\"}}")];
        let want = d * TWO_32 / seconds;
        assert!((got - want).abs() <= 1e-6 * want, "{window}: {got} != {want}");
    }
    assert_eq!(samples["satpool_pool_workers_online"], 2.0);
    assert_eq!(samples["satpool_pool_connections"], 1.0);
    assert_eq!(samples["satpool_pool_connections_opened_total"], 2.0);
    assert_eq!(samples["satpool_pool_connections_refused_total"], 1.0);
    assert_eq!(samples["satpool_pool_job_broadcast_seconds_count"], 1.0);
    assert!(samples["satpool_pool_template_fetch_seconds_count{kind=\"direct\"}"] >= 1.0);
    assert_eq!(samples["satpool_pool_template_fetch_errors_total{kind=\"direct\"}"], 1.0);

    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let rejected: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "satpool_pool_shares_rejected_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            ref other => panic!("a counter: {other:?}"),
        })
        .sum();
    assert_eq!(rejected, 4.0);
    let commit = scrape
        .samples
        .iter()
        .find(|s| s.metric == "satpool_pool_ledger_commit_seconds" && s.labels.get("op") == Some("block"))
        .expect("the block commit histogram");
    match &commit.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().map(|b| (b.less_than, b.count)), Some((f64::INFINITY, 3.0)))
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(scrape.docs.keys().all(|name| name.starts_with("satpool_pool_")));

    running.stop().await;
}
