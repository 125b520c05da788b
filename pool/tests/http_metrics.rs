//! The pool's `/metrics` over the real HTTP server on loopback: the ledger
//! and node wrapped in `Metered`, a known sequence of shares, blocks and
//! rejects; the text checked line by line against Prometheus' text format
//! and parsed by `prometheus-parse`.

mod http_fixture;

use std::collections::HashMap;
use std::sync::Arc;

use http_fixture::*;
use satpool::ledger::MemoryStore;
use satpool::metrics::{Metered, PoolMetrics};
use satpool::template::{MemoryNode, TemplateSource};

/// Checks Prometheus' text format (0.0.4) strictly: every line a HELP, a
/// TYPE before its samples, or a sample with a valid name, labels and
/// value; histogram buckets cumulative up to `+Inf` = `_count`. Returns the
/// samples as `name{labels}` → value.
fn check_text_format(text: &str, prefix: &str) -> HashMap<String, f64> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let mut buckets: HashMap<String, Vec<f64>> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_name(name, true) && name.starts_with(prefix), "HELP name: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "one TYPE per family: {line}");
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line: {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels close")),
                None => (series, ""),
            };
            assert!(is_name(name, true) && name.starts_with(prefix), "sample name: {line}");
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (label, quoted) = pair.split_once('=').expect("label=value");
                assert!(is_name(label, false), "label name: {line}");
                assert!(quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'), "quoted: {line}");
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
                .unwrap_or(name);
            assert!(types.contains_key(family), "TYPE before samples: {line}");
            if name.ends_with("_bucket") {
                let others: String = labels.split(',').filter(|p| !p.starts_with("le=")).collect::<Vec<_>>().join(",");
                let key = format!("{family}{{{others}}}");
                let list = buckets.entry(key).or_default();
                assert!(list.last().is_none_or(|last| *last <= value), "cumulative buckets: {line}");
                list.push(value);
                if labels.contains("le=\"+Inf\"") {
                    samples.insert(format!("{family}_inf{{{others}}}"), value);
                }
            }
            samples.insert(series.to_owned(), value);
        }
    }
    for (key, value) in &samples {
        if let Some(rest) = key.split_once("_inf{") {
            let count =
                format!("{}_count{}", rest.0, if rest.1 == "}" { String::new() } else { format!("{{{}", rest.1) });
            assert_eq!(samples.get(&count), Some(value), "+Inf bucket = {count}");
        }
    }
    samples
}

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
