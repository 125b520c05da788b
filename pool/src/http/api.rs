//! The JSON API: `/api/pool`, `/api/workers`, `/api/workers/{address}`,
//! `/api/hashrate`, `/api/blocks`, `/api/payouts`.
//!
//! Conventions: times are Unix seconds (`…_at`), amounts satoshis
//! (`…_sats`), hashrates hashes per second; every hashrate names its window
//! (`"1m"`, `"1h"`, `"24h"`, with `window_seconds`). A hashrate is the
//! difficulty of the shares accepted in the window × 2^32 / the window's
//! seconds ([`crate::ledger::hashrate`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitcoin::Amount;
use serde::{Deserialize, Serialize};

use super::HttpState;
use crate::config::PayoutMode;
use crate::ledger::{hashrate, BlockRecord, LedgerError, PaidTotal, PayoutRecord, ShareStore, WorkerActivity};
use crate::payout::ShareWeight;
use crate::template::{BlockSubmitter, ChainQuery, TemplateSource};

/// The trailing windows every hashrate is given over.
pub const WINDOWS: [(&str, u64); 3] = [("1m", 60), ("1h", 3_600), ("24h", 86_400)];

/// A worker is online when its last accepted share is at most this old;
/// shares per second are counted over the same window.
pub const ONLINE_WINDOW: Duration = Duration::from_secs(600);

/// The most rows a list returns.
const MAX_LIMIT: u32 = 1_000;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The ledger failed (500).
    #[error("the ledger failed")]
    Ledger(#[from] LedgerError),
    /// `range` is not one of `1h`, `24h`, `7d` (400).
    #[error("unknown range '{0}': use 1h, 24h or 7d")]
    Range(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Ledger(ref error) => {
                tracing::warn!(error = %error, source = ?std::error::Error::source(error), "api call failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Range(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// A hashrate over a named trailing window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowRate {
    /// `"1m"`, `"1h"` or `"24h"`.
    pub window: String,
    /// The window's length.
    pub window_seconds: u64,
    /// The sum of accepted share difficulty in it.
    pub difficulty: f64,
    /// `difficulty × 2^32 / window_seconds`.
    pub hashes_per_second: f64,
}

fn rate(window: &str, seconds: u64, difficulty: f64) -> WindowRate {
    WindowRate {
        window: window.to_owned(),
        window_seconds: seconds,
        difficulty,
        hashes_per_second: hashrate(difficulty, Duration::from_secs(seconds)),
    }
}

/// Unix seconds.
pub fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The network's hashrate as the node estimates it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkRate {
    /// Hashes per second (`getmininginfo`'s `networkhashps`).
    pub hashes_per_second: f64,
    /// Where it comes from.
    pub source: String,
}

/// The current round: the shares since the last block found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Round {
    /// When it started (the last block found), or `null` if none ever was.
    pub started_at: Option<u64>,
    /// The share difficulty accepted since.
    pub difficulty: f64,
    /// `difficulty / network_difficulty` (1.0 = a block is due on average).
    pub effort: Option<f64>,
}

/// `/api/pool`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolInfo {
    /// The network's name.
    pub network: String,
    /// `pplns` or `solo`.
    pub payout_mode: String,
    /// The operator's fee, percent.
    pub fee_percent: f64,
    /// The pool's hashrate over each window.
    pub hashrate: Vec<WindowRate>,
    /// The network's hashrate, when the node says.
    pub network_hashrate: Option<NetworkRate>,
    /// The difficulty of the block being mined (the template's target), or
    /// the tip's as the node says.
    pub network_difficulty: Option<f64>,
    /// The active chain's height.
    pub height: Option<u32>,
    /// Whether the node answered.
    pub node_reachable: bool,
    /// Subsidy plus fees of the current template.
    pub coinbase_value_sats: Option<u64>,
    /// Workers with a share in the last `activity_window_seconds`.
    pub workers_online: usize,
    /// Accepted shares per second over `activity_window_seconds`.
    pub shares_per_second: f64,
    /// The window of `workers_online` and `shares_per_second`.
    pub activity_window_seconds: u64,
    /// The current round.
    pub round: Round,
    /// The last block found.
    pub last_block: Option<BlockView>,
    /// When these numbers were computed.
    pub now: u64,
}

/// Accepted, rejected and stale shares of a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ShareCounts {
    /// Accepted over the last 24 h (from the ledger).
    pub accepted: u64,
    /// The window of `accepted`.
    pub accepted_window: String,
    /// Rejected (for a reason other than staleness) since `counted_since`.
    pub rejected: u64,
    /// Stale since `counted_since`.
    pub stale: u64,
    /// When the pool started counting rejects (they live in memory).
    pub counted_since: u64,
}

/// Paid in coinbases, by the status of the blocks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Paid {
    /// In confirmed blocks.
    pub confirmed_sats: u64,
    /// In blocks not yet confirmed (immature).
    pub pending_sats: u64,
}

impl From<&PaidTotal> for Paid {
    fn from(total: &PaidTotal) -> Paid {
        Paid { confirmed_sats: total.confirmed.to_sat(), pending_sats: total.pending.to_sat() }
    }
}

/// One worker, in `/api/workers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerView {
    /// The payout address.
    pub address: String,
    /// The worker name (empty when the miner gave none).
    pub worker: String,
    /// Its hashrate over each window.
    pub hashrate: Vec<WindowRate>,
    /// Its shares.
    pub shares: ShareCounts,
    /// Its last accepted share in the last 24 h.
    pub last_share_at: Option<u64>,
    /// Whether that share is recent (see `activity_window_seconds`).
    pub online: bool,
    /// Its part of the current PPLNS window × (coinbase value − fee): what
    /// a block found now would pay it (`null` in solo mode or without a
    /// template).
    pub estimated_earnings_sats: Option<u64>,
    /// Its part of the PPLNS window's difficulty, 0 to 1.
    pub window_fraction: f64,
    /// What its payout address was paid (coinbases pay addresses, not
    /// workers).
    pub address_paid: Paid,
}

/// `/api/workers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkersInfo {
    /// The workers seen in the last 24 h, by address then name.
    pub workers: Vec<WorkerView>,
    /// When these numbers were computed.
    pub now: u64,
}

/// `/api/workers/{address}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AddressInfo {
    /// The payout address.
    pub address: String,
    /// Its workers' hashrates, summed.
    pub hashrate: Vec<WindowRate>,
    /// Its workers.
    pub workers: Vec<WorkerView>,
    /// Its estimated earnings (the sum of its workers').
    pub estimated_earnings_sats: Option<u64>,
    /// What it was paid.
    pub paid: Paid,
    /// What the pool owes it (too small for an output so far).
    pub owed_sats: u64,
    /// Its newest payouts.
    pub payouts: Vec<PayoutView>,
    /// When these numbers were computed.
    pub now: u64,
}

/// A found block, in `/api/blocks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockView {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u32,
    /// `pending`, `confirmed` or `orphaned`.
    pub status: String,
    /// Its confirmations when last looked at.
    pub confirmations: i64,
    /// The coinbase value.
    pub reward_sats: u64,
    /// The fees within it.
    pub fees_sats: u64,
    /// Share difficulty of its round over the network difficulty.
    pub effort: f64,
    /// The network difficulty it met.
    pub network_difficulty: f64,
    /// When it was found.
    pub found_at: u64,
    /// The finder's payout address.
    pub finder_address: String,
    /// The finder's worker.
    pub finder_worker: String,
}

impl From<&BlockRecord> for BlockView {
    fn from(block: &BlockRecord) -> BlockView {
        BlockView {
            hash: block.hash.to_string(),
            height: block.height,
            status: block.status.as_str().to_owned(),
            confirmations: block.confirmations,
            reward_sats: block.reward.to_sat(),
            fees_sats: block.fees.to_sat(),
            effort: block.effort,
            network_difficulty: block.network_difficulty,
            found_at: unix(block.found_at),
            finder_address: block.finder_address.clone(),
            finder_worker: block.finder_worker.clone(),
        }
    }
}

/// `/api/blocks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlocksInfo {
    /// Newest first.
    pub blocks: Vec<BlockView>,
    /// How many of them are in each status.
    pub counts: BTreeMap<String, usize>,
}

/// A coinbase output paid to a miner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PayoutView {
    /// The block.
    pub block_hash: String,
    /// Its height.
    pub height: u32,
    /// Its status: the payout is spendable once `confirmed`, void if `orphaned`.
    pub status: String,
    /// When it was found.
    pub found_at: u64,
    /// The payout address.
    pub address: String,
    /// The amount.
    pub amount_sats: u64,
}

impl From<&PayoutRecord> for PayoutView {
    fn from(p: &PayoutRecord) -> PayoutView {
        PayoutView {
            block_hash: p.block_hash.to_string(),
            height: p.height,
            status: p.status.as_str().to_owned(),
            found_at: unix(p.found_at),
            address: p.address.clone(),
            amount_sats: p.amount.to_sat(),
        }
    }
}

/// A balance the pool owes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OwedView {
    /// The payout address.
    pub address: String,
    /// The amount.
    pub amount_sats: u64,
}

/// `/api/payouts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PayoutsInfo {
    /// Newest block first.
    pub payouts: Vec<PayoutView>,
    /// The balances owed (carried to a later coinbase).
    pub owed: Vec<OwedView>,
}

/// A chart's time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last hour in 1-minute buckets.
    Hour,
    /// The last day in 15-minute buckets.
    Day,
    /// The last week in 2-hour buckets.
    Week,
}

impl Range {
    /// Parses `1h`, `24h` or `7d`.
    pub fn parse(text: &str) -> Option<Range> {
        match text {
            "1h" => Some(Range::Hour),
            "24h" | "1d" => Some(Range::Day),
            "7d" => Some(Range::Week),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    /// Its bucket's length and the number of buckets.
    pub fn buckets(self) -> (Duration, u64) {
        match self {
            Range::Hour => (Duration::from_secs(60), 60),
            Range::Day => (Duration::from_secs(900), 96),
            Range::Week => (Duration::from_secs(7_200), 84),
        }
    }
}

/// One line of a chart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Series {
    /// `"pool"`, `"total"` or the worker's name.
    pub name: String,
    /// `[bucket start (Unix seconds), hashes per second over the bucket]`,
    /// oldest first, one per bucket (0 where no share was accepted).
    pub points: Vec<(u64, f64)>,
}

/// `/api/hashrate`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HashrateInfo {
    /// `1h`, `24h` or `7d`.
    pub range: String,
    /// Each point's bucket.
    pub bucket_seconds: u64,
    /// The address the series are of, if one was asked for.
    pub address: Option<String>,
    /// The pool's (or the address's total) first, then each worker's when an
    /// address was asked for. The bucket still filling is left out.
    pub series: Vec<Series>,
}

/// `?limit=` and `?address=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// Most rows (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Only this payout address.
    pub address: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, MAX_LIMIT)
    }
}

/// `?range=` `&address=` `&worker=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HashrateQuery {
    /// `1h` (default), `24h` or `7d`.
    pub range: Option<String>,
    /// One payout address: its total and each of its workers.
    pub address: Option<String>,
    /// With `address`, one of its workers only.
    pub worker: Option<String>,
}

/// What the PPLNS window says of each worker: `(fraction, earnings)`.
type Estimates = BTreeMap<(String, String), (f64, Option<u64>)>;

impl<S, N> HttpState<S, N>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    async fn window_rates(&self, now: SystemTime, address: Option<&str>) -> Result<Vec<WindowRate>, LedgerError> {
        let mut rates = Vec::with_capacity(WINDOWS.len());
        for (name, seconds) in WINDOWS {
            let difficulty = self.pool.store.difficulty_since(now - Duration::from_secs(seconds), address).await?;
            rates.push(rate(name, seconds, difficulty));
        }
        Ok(rates)
    }

    /// `/api/pool`'s numbers.
    pub async fn pool_info(&self) -> Result<PoolInfo, LedgerError> {
        let now = self.now();
        let store = &self.pool.store;
        let config = &self.pool.config;
        let hashrate = self.window_rates(now, None).await?;
        let active = store.worker_activity(now - ONLINE_WINDOW, None).await?;
        let shares: u64 = active.iter().map(|w| w.shares).sum();
        let network = self.network_info().await;
        let template = self.pool.templates.current();
        let network_difficulty = template.as_ref().map(|t| t.network_difficulty()).or(network.map(|n| n.difficulty));
        let last = store.recent_blocks(1).await?.into_iter().next();
        let since = last.as_ref().map(|b| b.found_at).unwrap_or(UNIX_EPOCH);
        let round_difficulty = store.difficulty_since(since, None).await?;
        Ok(PoolInfo {
            network: config.network.name().to_owned(),
            payout_mode: payout_mode(config.payout.mode).to_owned(),
            fee_percent: f64::from(config.payout.fee.ppm()) / 10_000.0,
            hashrate,
            network_hashrate: network
                .map(|n| NetworkRate { hashes_per_second: n.hashes_per_second, source: "getmininginfo".into() }),
            network_difficulty,
            height: network.map(|n| n.height).or(template.as_ref().map(|t| t.height.saturating_sub(1))),
            node_reachable: network.is_some(),
            coinbase_value_sats: template.as_ref().map(|t| t.coinbase_value.to_sat()),
            workers_online: active.len(),
            shares_per_second: shares as f64 / ONLINE_WINDOW.as_secs_f64(),
            activity_window_seconds: ONLINE_WINDOW.as_secs(),
            round: Round {
                started_at: last.as_ref().map(|b| unix(b.found_at)),
                difficulty: round_difficulty,
                effort: network_difficulty.filter(|d| *d > 0.0).map(|d| round_difficulty / d),
            },
            last_block: last.as_ref().map(BlockView::from),
            now: unix(now),
        })
    }

    /// Each worker's part of the PPLNS window and what a block found now
    /// would pay it.
    async fn estimates(&self) -> Result<Estimates, LedgerError> {
        let config = &self.pool.config.payout;
        let Some(template) = self.pool.templates.current() else { return Ok(Estimates::new()) };
        let window = ShareWeight::from_difficulty(config.window.difficulty(template.network_difficulty()));
        let rows = self.pool.store.window_workers(window).await?;
        let weights: Vec<u128> = rows.iter().map(|r| r.weight.0).collect();
        let total: u128 = weights.iter().sum();
        let value = template.coinbase_value.to_sat();
        let fee = u128::from(value) * u128::from(config.fee.ppm()) / u128::from(crate::config::PoolFee::WHOLE);
        let pool_value = u128::from(value) - fee;

        Ok(rows
            .into_iter()
            .zip(weights)
            .map(|(row, weight)| {
                let earnings = match config.mode {
                    PayoutMode::Pplns if total > 0 => {
                        // pool_value < 2^51 and weight ≤ total: the product
                        // fits unless weights exceed 2^77; saturate then.
                        Some(u64::try_from(pool_value.saturating_mul(weight) / total).unwrap_or(u64::MAX))
                    }
                    PayoutMode::Pplns => Some(0),
                    PayoutMode::Solo => None,
                };
                let fraction = if total > 0 { weight as f64 / total as f64 } else { 0.0 };
                ((row.address, row.worker), (fraction, earnings))
            })
            .collect())
    }

    /// Every worker seen in the last 24 h (or with rejects counted), of one
    /// address or of all.
    pub async fn workers(&self, address: Option<&str>) -> Result<Vec<WorkerView>, LedgerError> {
        let now = self.now();
        let store = &self.pool.store;
        let mut by_window: Vec<BTreeMap<(String, String), WorkerActivity>> = Vec::new();
        for (_, seconds) in WINDOWS {
            let rows = store.worker_activity(now - Duration::from_secs(seconds), address).await?;
            by_window.push(rows.into_iter().map(|w| ((w.address.clone(), w.worker.clone()), w)).collect());
        }
        let mut keys: Vec<(String, String)> = by_window.last().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let tally = self.pool.metrics.tally();
        for (key, _) in tally.all() {
            if address.is_none_or(|a| a == key.0) && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.sort();
        let estimates = self.estimates().await?;
        let solo = self.pool.config.payout.mode == PayoutMode::Solo || self.pool.templates.current().is_none();
        let paid: BTreeMap<String, Paid> =
            store.paid_totals(address).await?.iter().map(|t| (t.address.clone(), Paid::from(t))).collect();
        Ok(keys
            .into_iter()
            .map(|key| {
                let hashrate = WINDOWS
                    .iter()
                    .zip(&by_window)
                    .map(|((name, seconds), rows)| rate(name, *seconds, rows.get(&key).map_or(0.0, |w| w.difficulty)))
                    .collect();
                let day = by_window.last().and_then(|m| m.get(&key));
                let last_share = day.map(|w| w.last_share);
                let rejects = tally.get(&key.0, &key.1);
                let (fraction, earnings) = estimates.get(&key).copied().unwrap_or((0.0, (!solo).then_some(0)));
                WorkerView {
                    hashrate,
                    shares: ShareCounts {
                        accepted: day.map_or(0, |w| w.shares),
                        accepted_window: "24h".into(),
                        rejected: rejects.rejected,
                        stale: rejects.stale,
                        counted_since: unix(tally.since()),
                    },
                    last_share_at: last_share.map(unix),
                    online: last_share.is_some_and(|t| t + ONLINE_WINDOW >= now),
                    estimated_earnings_sats: earnings,
                    window_fraction: fraction,
                    address_paid: paid.get(&key.0).cloned().unwrap_or_default(),
                    address: key.0,
                    worker: key.1,
                }
            })
            .collect())
    }

    /// `/api/workers/{address}`'s numbers.
    pub async fn address_info(&self, address: &str) -> Result<AddressInfo, LedgerError> {
        let now = self.now();
        let store = &self.pool.store;
        let workers = self.workers(Some(address)).await?;
        let hashrate = self.window_rates(now, Some(address)).await?;
        let estimated = workers.iter().map(|w| w.estimated_earnings_sats).try_fold(0u64, |sum, e| Some(sum + e?));
        let paid = store.paid_totals(Some(address)).await?.first().map(Paid::from).unwrap_or_default();
        let owed = store.balances().await?.into_iter().find(|(a, _)| a == address).map_or(Amount::ZERO, |(_, v)| v);
        let payouts = store.recent_payouts(Some(address), 50).await?.iter().map(PayoutView::from).collect();
        Ok(AddressInfo {
            address: address.to_owned(),
            hashrate,
            estimated_earnings_sats: if workers.is_empty() { None } else { estimated },
            workers,
            paid,
            owed_sats: owed.to_sat(),
            payouts,
            now: unix(now),
        })
    }

    /// `/api/hashrate`'s series.
    pub async fn hashrate_series(
        &self,
        range: Range,
        address: Option<&str>,
        worker: Option<&str>,
    ) -> Result<HashrateInfo, LedgerError> {
        let (bucket, count) = range.buckets();
        let bucket_s = bucket.as_secs();
        let end = unix(self.now()) / bucket_s * bucket_s;
        let start = end.saturating_sub(bucket_s * count);
        let since = UNIX_EPOCH + Duration::from_secs(start);
        let mut names: Vec<(String, Option<String>)> =
            vec![(if address.is_some() { "total" } else { "pool" }.to_owned(), worker.map(str::to_owned))];
        if let (Some(address), None) = (address, worker) {
            let workers = self.pool.store.worker_activity(since, Some(address)).await?;
            names.extend(workers.into_iter().map(|w| (w.worker.clone(), Some(w.worker))));
        }
        if let (Some(_), Some(worker)) = (address, worker) {
            names[0].0 = worker.to_owned();
        }
        let mut series = Vec::with_capacity(names.len());
        for (name, worker) in names {
            let points = self.pool.store.difficulty_series(since, bucket, address, worker.as_deref()).await?;
            let mut filled: Vec<(u64, f64)> = (0..count).map(|i| (start + i * bucket_s, 0.0)).collect();
            for point in points {
                let at = unix(point.start);
                if at >= start && at < end {
                    let index = ((at - start) / bucket_s) as usize;
                    filled[index].1 = hashrate(point.difficulty, bucket);
                }
            }
            series.push(Series { name: if name.is_empty() { "(default)".into() } else { name }, points: filled });
        }
        Ok(HashrateInfo {
            range: range.name().to_owned(),
            bucket_seconds: bucket_s,
            address: address.map(str::to_owned),
            series,
        })
    }
}

fn payout_mode(mode: PayoutMode) -> &'static str {
    match mode {
        PayoutMode::Pplns => "pplns",
        PayoutMode::Solo => "solo",
    }
}

type Shared<S, N> = State<Arc<HttpState<S, N>>>;

/// `GET /api/pool`.
pub async fn get_pool<S, N>(State(state): Shared<S, N>) -> Result<Json<PoolInfo>, ApiError>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    Ok(Json(state.pool_info().await?))
}

/// `GET /api/workers`.
pub async fn get_workers<S, N>(State(state): Shared<S, N>) -> Result<Json<WorkersInfo>, ApiError>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    let workers = state.workers(None).await?;
    Ok(Json(WorkersInfo { workers, now: unix(state.now()) }))
}

/// `GET /api/workers/{address}`.
pub async fn get_address<S, N>(
    State(state): Shared<S, N>,
    Path(address): Path<String>,
) -> Result<Json<AddressInfo>, ApiError>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    Ok(Json(state.address_info(&address).await?))
}

/// `GET /api/hashrate?range=1h|24h|7d&address=…&worker=…`.
pub async fn get_hashrate<S, N>(
    State(state): Shared<S, N>,
    Query(query): Query<HashrateQuery>,
) -> Result<Json<HashrateInfo>, ApiError>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    let text = query.range.as_deref().unwrap_or("1h");
    let range = Range::parse(text).ok_or_else(|| ApiError::Range(text.to_owned()))?;
    let worker = query.address.as_ref().and(query.worker.as_deref());
    Ok(Json(state.hashrate_series(range, query.address.as_deref(), worker).await?))
}

/// `GET /api/blocks?limit=…`.
pub async fn get_blocks<S, N>(
    State(state): Shared<S, N>,
    Query(query): Query<ListQuery>,
) -> Result<Json<BlocksInfo>, ApiError>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    let blocks: Vec<BlockView> =
        state.pool.store.recent_blocks(query.limit()).await?.iter().map(BlockView::from).collect();
    let mut counts: BTreeMap<String, usize> =
        ["pending", "confirmed", "orphaned"].into_iter().map(|s| (s.to_owned(), 0)).collect();
    for block in &blocks {
        *counts.entry(block.status.clone()).or_default() += 1;
    }
    Ok(Json(BlocksInfo { blocks, counts }))
}

/// `GET /api/payouts?address=…&limit=…`.
pub async fn get_payouts<S, N>(
    State(state): Shared<S, N>,
    Query(query): Query<ListQuery>,
) -> Result<Json<PayoutsInfo>, ApiError>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    let address = query.address.as_deref();
    let store = &state.pool.store;
    let payouts = store.recent_payouts(address, query.limit()).await?.iter().map(PayoutView::from).collect();
    let owed = store
        .balances()
        .await?
        .into_iter()
        .filter(|(a, _)| address.is_none_or(|x| x == a))
        .map(|(address, amount)| OwedView { address, amount_sats: amount.to_sat() })
        .collect();
    Ok(Json(PayoutsInfo { payouts, owed }))
}
