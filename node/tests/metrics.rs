//! The node's `/metrics` over a real listener on loopback: a regtest chain
//! that connects a few blocks, scraped, the text checked line by line
//! against Prometheus' text format and parsed by `prometheus-parse`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use satpool_node::metrics::{serve, NodeMetrics};
use satpool_node::node::{Node, SharedNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_metrics_scrape() {
    let test = common::TestChain::regtest();
    let common::TestChain { chain, dir: _dir, mut next_time } = test;
    let metrics = Arc::new(NodeMetrics::new());
    let mut node = Node::new(chain);
    node.metrics = Some(metrics.clone());
    let node = Arc::new(SharedNode::new(node));
    for _ in 0..3 {
        let mut block = {
            let node = node.lock();
            let chain = &node.chain;
            let mut block =
                satpool_node::mining::block_template(chain, common::op_true(), Vec::new(), bitcoin::Amount::ZERO);
            block.header.time = next_time.max(chain.tip_median_time_past() + 1);
            block.header.bits = chain.next_work_required(block.header.time);
            block
        };
        next_time = block.header.time + 1;
        common::solve(&mut block);
        let outcome = node.with(|n| n.process_block(&block)).expect("valid");
        assert_eq!(outcome, satpool_node::chain::BlockOutcome::Connected);
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, metrics, node.clone(), None, async move {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    // Chunked or not: take the body as sent when not chunked.
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "a plain body: {head}");

    let samples = check_text_format(body, "satpool_node_");
    assert_eq!(samples["satpool_node_height"], 3.0);
    assert_eq!(samples["satpool_node_headers"], 3.0);
    assert_eq!(samples["satpool_node_peers{direction=\"inbound\"}"], 0.0);
    assert_eq!(samples["satpool_node_mempool_transactions"], 0.0);
    assert_eq!(samples["satpool_node_blocks_connected_total"], 3.0);
    assert_eq!(samples["satpool_node_block_connect_seconds_count"], 3.0);
    assert!(samples["satpool_node_block_connect_seconds_sum"] > 0.0);

    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let height = scrape.samples.iter().find(|s| s.metric == "satpool_node_height").expect("height");
    assert!(matches!(height.value, prometheus_parse::Value::Gauge(v) if v == 3.0));
    let connect = scrape.samples.iter().find(|s| s.metric == "satpool_node_block_connect_seconds").expect("histogram");
    match &connect.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().map(|b| (b.less_than, b.count)), Some((f64::INFINITY, 3.0)))
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(scrape.docs.contains_key("satpool_node_mempool_vbytes"));

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
