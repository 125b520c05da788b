//! The node's metrics in Prometheus' text format, behind one type that owns
//! the registry: [`NodeMetrics`]. Names are `satpool_node_…`; durations are
//! histograms in seconds.
//!
//! `satpool-node --metricsbind 127.0.0.1:9332` serves them at `/metrics` on
//! a listener of their own (off unless given: the JSON-RPC port needs auth,
//! a scrape should not). The gauges — height, headers, peers, mempool — are
//! read from the node at each scrape; block connect times are observed as
//! [`crate::node::Node::process_block`] connects blocks.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::node::{Node, SharedNode};
use crate::p2p::connman::NetHandle;

/// The content type of [`NodeMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The port `--metricsbind` documents as the usual one (Core's RPC port + 1).
pub const DEFAULT_METRICS_PORT: u16 = 9332;

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("satpool").subsystem("node")
}

/// The node's metrics and their registry.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    height: IntGauge,
    headers: IntGauge,
    peers: IntGaugeVec,
    mempool_transactions: IntGauge,
    mempool_vbytes: IntGauge,
    mempool_usage_bytes: IntGauge,
    blocks_connected: IntCounter,
    block_connect: Histogram,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics::new()
    }
}

impl NodeMetrics {
    /// Every metric, registered, at zero.
    pub fn new() -> NodeMetrics {
        let registry = Registry::new();
        // The definitions are fixed and their names distinct: nothing here fails.
        macro_rules! register {
            ($metric:expr) => {{
                let metric = $metric.expect("a valid metric definition");
                registry.register(Box::new(metric.clone())).expect("metric names are distinct");
                metric
            }};
        }
        let height = register!(IntGauge::with_opts(opts("height", "Height of the active chain's tip.")));
        let headers = register!(IntGauge::with_opts(opts(
            "headers",
            "Height of the best valid header known (getblockchaininfo's headers)."
        )));
        let peers = register!(IntGaugeVec::new(opts("peers", "Connected P2P peers, by direction."), &["direction"]));
        let mempool_transactions =
            register!(IntGauge::with_opts(opts("mempool_transactions", "Transactions in the mempool.")));
        let mempool_vbytes = register!(IntGauge::with_opts(opts(
            "mempool_vbytes",
            "Virtual size of the mempool's transactions (getmempoolinfo's bytes)."
        )));
        let mempool_usage_bytes =
            register!(IntGauge::with_opts(opts("mempool_usage_bytes", "Memory the mempool uses, estimated.")));
        let blocks_connected = register!(IntCounter::with_opts(opts(
            "blocks_connected_total",
            "Blocks processed that extended the active chain."
        )));
        let block_connect = register!(Histogram::with_opts(
            HistogramOpts::new(
                "block_connect_seconds",
                "Time to process a block that extends the active chain (validation, UTXO update, commit)."
            )
            .namespace("satpool")
            .subsystem("node")
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")),
        ));
        for direction in ["inbound", "outbound"] {
            peers.with_label_values(&[direction]).set(0);
        }
        NodeMetrics {
            registry,
            height,
            headers,
            peers,
            mempool_transactions,
            mempool_vbytes,
            mempool_usage_bytes,
            blocks_connected,
            block_connect,
        }
    }

    /// A block was processed and connected in `elapsed`.
    pub fn observe_block_connect(&self, elapsed: Duration) {
        self.blocks_connected.inc();
        self.block_connect.observe(elapsed.as_secs_f64());
    }

    /// Reads the height, the headers and the mempool from `node`.
    pub fn update_from(&self, node: &Node) {
        let chain = &node.chain;
        let tip = i64::from(chain.tip().height);
        self.height.set(tip);
        let headers = chain.index().entries().filter(|e| !e.failed()).map(|e| i64::from(e.height)).max().unwrap_or(tip);
        self.headers.set(headers.max(tip));
        let info = node.mempool.info();
        self.mempool_transactions.set(i64::try_from(info.size).unwrap_or(i64::MAX));
        self.mempool_vbytes.set(i64::try_from(info.bytes).unwrap_or(i64::MAX));
        self.mempool_usage_bytes.set(i64::try_from(info.usage).unwrap_or(i64::MAX));
    }

    /// Sets the peers connected.
    pub fn set_peers(&self, inbound: usize, outbound: usize) {
        self.peers.with_label_values(&["inbound"]).set(i64::try_from(inbound).unwrap_or(i64::MAX));
        self.peers.with_label_values(&["outbound"]).set(i64::try_from(outbound).unwrap_or(i64::MAX));
    }

    /// Every metric in Prometheus' text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        String::from_utf8(buf).expect("the text encoder writes UTF-8")
    }
}

/// What the `/metrics` handler reads.
#[derive(Clone)]
struct Scrape {
    metrics: Arc<NodeMetrics>,
    node: Arc<SharedNode>,
    network: Option<NetHandle>,
}

async fn scrape(State(scrape): State<Scrape>) -> impl IntoResponse {
    let Scrape { metrics, node, network } = scrape;
    // The node's lock and the P2P handle's answer both block: off the runtime.
    let text = tokio::task::spawn_blocking(move || {
        metrics.update_from(&node.lock());
        if let Some(network) = network {
            match network.counts() {
                Ok(counts) => metrics.set_peers(counts.inbound, counts.outbound),
                Err(error) => tracing::debug!(%error, "no peer counts for /metrics"),
            }
        }
        metrics.render()
    })
    .await
    .unwrap_or_else(|error| {
        tracing::error!(%error, "the metrics scrape failed");
        String::new()
    });
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

/// Serves `/metrics` on `listener` until `shutdown` completes. `network` is
/// the P2P handle whose peers are counted (none: 0 peers).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<NodeMetrics>,
    node: Arc<SharedNode>,
    network: Option<NetHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route("/metrics", get(scrape)).with_state(Scrape { metrics, node, network });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
