//! The pool's HTTP port (`Config.http_listen`, 127.0.0.1:8080 by default):
//! the dashboard ([`dashboard`]), the JSON API ([`api`]) and `/metrics` in
//! Prometheus' text format ([`crate::metrics::PoolMetrics`]).
//!
//! Everything is read from the running [`Pool`]: its ledger, its newest
//! template, its node (for the network's hashrate) and its metrics. The
//! server stops with the pool's [`CancellationToken`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ledger::{hashrate, ShareStore};
use crate::metrics::CONTENT_TYPE;
use crate::service::Pool;
use crate::template::{BlockSubmitter, ChainQuery, NetworkInfo, TemplateSource};

pub mod api;
pub mod dashboard;

/// How long the node's network numbers are reused before it is asked again
/// (dashboards poll every few seconds; the node need not answer each).
const NETWORK_INFO_TTL: Duration = Duration::from_secs(10);

/// The clock the API measures its windows against.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What the handlers share.
pub struct HttpState<S, N> {
    /// The running pool.
    pub pool: Pool<S, N>,
    clock: Clock,
    network: Mutex<Option<(Instant, Option<NetworkInfo>)>>,
}

impl<S, N> std::fmt::Debug for HttpState<S, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").finish_non_exhaustive()
    }
}

impl<S, N> HttpState<S, N>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    /// The state over `pool`, on the system clock.
    pub fn new(pool: Pool<S, N>) -> HttpState<S, N> {
        HttpState::with_clock(pool, Arc::new(SystemTime::now))
    }

    /// The state over `pool` with another clock (tests fix it).
    pub fn with_clock(pool: Pool<S, N>, clock: Clock) -> HttpState<S, N> {
        HttpState { pool, clock, network: Mutex::new(None) }
    }

    /// Now, by the state's clock.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// The node's network numbers, at most [`NETWORK_INFO_TTL`] old; `None`
    /// when the node does not answer.
    pub async fn network_info(&self) -> Option<NetworkInfo> {
        {
            let cached = self.network.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, info)) = *cached {
                if at.elapsed() < NETWORK_INFO_TTL {
                    return info;
                }
            }
        }
        let info = match self.pool.node.network_info().await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "the node's network info is unavailable");
                None
            }
        };
        *self.network.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), info));
        info
    }
}

/// The routes over `state`.
pub fn router<S, N>(state: Arc<HttpState<S, N>>) -> Router
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    Router::new()
        .route("/", get(dashboard::index))
        .route("/address/{address}", get(dashboard::index))
        .route("/assets/app.css", get(dashboard::app_css))
        .route("/assets/app.js", get(dashboard::app_js))
        .route("/assets/chart.js", get(dashboard::chart_js))
        .route("/api/pool", get(api::get_pool::<S, N>))
        .route("/api/workers", get(api::get_workers::<S, N>))
        .route("/api/workers/{address}", get(api::get_address::<S, N>))
        .route("/api/hashrate", get(api::get_hashrate::<S, N>))
        .route("/api/blocks", get(api::get_blocks::<S, N>))
        .route("/api/payouts", get(api::get_payouts::<S, N>))
        .route("/metrics", get(metrics::<S, N>))
        .with_state(state)
}

/// `GET /metrics`: reads the hashrate and the workers online from the
/// ledger, then renders every metric.
async fn metrics<S, N>(State(state): State<Arc<HttpState<S, N>>>) -> Response
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    let now = state.now();
    let metrics = &state.pool.metrics;
    for (window, seconds) in api::WINDOWS {
        let span = Duration::from_secs(seconds);
        match state.pool.store.difficulty_since(now - span, None).await {
            Ok(difficulty) => metrics.set_hashrate(window, hashrate(difficulty, span)),
            Err(error) => tracing::warn!(%error, "cannot read the hashrate for /metrics"),
        }
    }
    match state.pool.store.worker_activity(now - api::ONLINE_WINDOW, None).await {
        Ok(workers) => metrics.set_workers_online(workers.len()),
        Err(error) => tracing::warn!(%error, "cannot read the workers online for /metrics"),
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// Serves the dashboard, the API and `/metrics` on `listener` until
/// `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve<S, N>(
    listener: TcpListener,
    state: Arc<HttpState<S, N>>,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "http: dashboard, api and /metrics");
    }
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
