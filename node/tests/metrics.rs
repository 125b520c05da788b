//! The node's `/metrics` over a real listener on loopback: a regtest chain
//! that connects a few blocks, scraped, the text checked line by line
//! against Prometheus' text format and parsed by `prometheus-parse`.

mod common;

use std::sync::Arc;

use satpool_node::metrics::{serve, NodeMetrics};
use satpool_node::node::{Node, SharedNode};
use satpool_testkit::prometheus::check_text_format;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
