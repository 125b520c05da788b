//! The running pool: the tasks, wired together and stopped from one
//! [`CancellationToken`].
//!
//! ```text
//! node ──TemplatePoller──> TemplateBoard ──JobMaker (ledger: PPLNS window, balances)──> JobHub ──> Stratum sessions
//! Stratum sessions ──ShareRecorder (group commit)──> ledger
//! Stratum sessions ──Pool::block_found──> submitblock + ledger (block, payouts, balances)
//! BlockWatcher: ledger's unconfirmed blocks <── node's confirmations
//! ```
//!
//! The Stratum server plugs in as one more task: it takes a [`Pool`] (jobs,
//! recorder, block submission, configuration) and the shutdown token, and
//! [`run`] waits for it like for the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bitcoin::{Address, Amount, Block, ScriptBuf, SignedAmount};
use satpool_rpc::RpcClient;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Network, PayoutMode};
use crate::job::{CoinbaseSpec, Job, JobError, JobHub, EXTRANONCE1_SIZE};
use crate::ledger::{
    BlockRecord, BlockStatus, BlockWatcher, Ledger, LedgerError, LedgerOptions, RecorderOptions, ShareRecorder,
    ShareStore, WatcherOptions,
};
use crate::metrics::{Metered, PoolMetrics};
use crate::payout::{self, Payout, PayoutError, PayoutInput, ShareWeight, WeightedShare};
use crate::template::{
    BlockSubmitter, ChainQuery, NodeError, PollerOptions, RpcNode, SubmitOutcome, Template, TemplateBoard,
    TemplatePoller, TemplateSource,
};

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP port (dashboard, API, metrics) could not be bound.
    #[error("cannot listen for http on {addr}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The ledger could not be opened.
    #[error("cannot open the ledger")]
    Ledger(#[from] LedgerError),
    /// The node's client could not be made.
    #[error("cannot set up the node's rpc client")]
    Client(#[from] satpool_rpc::ClientError),
    /// The Stratum port could not be bound.
    #[error("cannot listen for Stratum on {address}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Stratum server's options are unusable.
    #[error("cannot configure the Stratum server")]
    Stratum(#[from] crate::stratum::StratumError),
}

/// Why a job could not be made for a template.
#[derive(Debug, thiserror::Error)]
pub enum MakeJobError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The payout could not be computed.
    #[error(transparent)]
    Payout(#[from] PayoutError),
    /// The job could not be built.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A solo payout address does not parse (sessions only hold addresses
    /// that parsed when authorized).
    #[error("the payout address {address} does not parse")]
    Address {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: Box<crate::config::ConfigError>,
    },
}

/// Why a found block was not fully handled.
#[derive(Debug, thiserror::Error)]
pub enum BlockFoundError {
    /// The node did not take the call.
    #[error("cannot submit the block")]
    Submit(#[from] NodeError),
    /// The block was submitted but could not be recorded.
    #[error("the block was submitted but cannot be recorded")]
    Ledger(#[from] LedgerError),
}

/// What the Stratum server (and the HTTP API) need from the running pool.
/// Cheap to clone.
#[derive(Debug)]
pub struct Pool<S, N> {
    /// The configuration.
    pub config: Arc<Config>,
    /// The jobs.
    pub jobs: Arc<JobHub>,
    /// The newest template.
    pub templates: Arc<TemplateBoard>,
    /// The group commit in front of the ledger.
    pub recorder: ShareRecorder,
    /// The ledger, for queries.
    pub store: Arc<S>,
    /// The node, for `submitblock`.
    pub node: Arc<N>,
    /// The metrics: the Stratum server reports rejects, connections and job
    /// broadcasts here.
    pub metrics: Arc<PoolMetrics>,
    /// Solo mode's per-address jobs (unused in PPLNS mode).
    pub solo: Arc<SoloJobs>,
}

impl<S, N> Clone for Pool<S, N> {
    fn clone(&self) -> Self {
        Pool {
            config: self.config.clone(),
            jobs: self.jobs.clone(),
            templates: self.templates.clone(),
            recorder: self.recorder.clone(),
            store: self.store.clone(),
            node: self.node.clone(),
            metrics: self.metrics.clone(),
            solo: self.solo.clone(),
        }
    }
}

/// The background tasks of a started pool.
#[derive(Debug)]
pub struct Tasks {
    tasks: JoinSet<()>,
    recorder: tokio::task::JoinHandle<()>,
}

impl Tasks {
    /// Waits for the tasks (which stop when the token is cancelled), then
    /// for the recorder, which stops once every [`Pool`] handle — the one
    /// given here, and the Stratum server's — is dropped, after committing
    /// the shares it holds.
    pub async fn join<S, N>(mut self, pool: Pool<S, N>) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(error = %error, "a pool task failed");
            }
        }
        drop(pool);
        if let Err(error) = self.recorder.await {
            tracing::error!(error = %error, "the share recorder failed");
        }
    }
}

impl<S, N> Pool<S, N>
where
    S: ShareStore,
    N: TemplateSource + BlockSubmitter + ChainQuery,
{
    /// Starts the template poller, the job maker, the share recorder and
    /// the block watcher over `store` and `node`.
    pub fn start(config: Config, store: Arc<S>, node: Arc<N>, shutdown: &CancellationToken) -> (Pool<S, N>, Tasks) {
        Self::start_with_metrics(config, store, node, Arc::new(PoolMetrics::new()), shutdown)
    }

    /// [`Pool::start`] reporting into `metrics` (the one that also measures
    /// the ledger and the node when they are wrapped in
    /// [`crate::metrics::Metered`]).
    pub fn start_with_metrics(
        config: Config,
        store: Arc<S>,
        node: Arc<N>,
        metrics: Arc<PoolMetrics>,
        shutdown: &CancellationToken,
    ) -> (Pool<S, N>, Tasks) {
        let config = Arc::new(config);
        let templates = Arc::new(TemplateBoard::new());
        let jobs = Arc::new(JobHub::new(config.limits.max_jobs));
        let (recorder, recorder_task) =
            ShareRecorder::spawn(store.clone(), RecorderOptions::from_limits(&config.limits));
        let solo = Arc::new(SoloJobs::new(config.clone(), jobs.clone()));
        let pool = Pool {
            config: config.clone(),
            jobs,
            solo,
            templates: templates.clone(),
            recorder,
            store: store.clone(),
            node: node.clone(),
            metrics,
        };

        let mut tasks = JoinSet::new();
        let poller = TemplatePoller::new(
            node.clone(),
            templates,
            PollerOptions { refresh: config.template_refresh, ..PollerOptions::default() },
        );
        tasks.spawn(poller.run(shutdown.clone()));
        let maker = pool.clone();
        let token = shutdown.clone();
        tasks.spawn(async move { maker.make_jobs(token).await });
        let watcher = BlockWatcher::new(store, node, WatcherOptions::default());
        tasks.spawn(watcher.run(shutdown.clone()));
        (pool, Tasks { tasks, recorder: recorder_task })
    }

    /// Makes a job for every new template until `shutdown`. The Stratum
    /// side keeps the last job while the node is away.
    async fn make_jobs(self, shutdown: CancellationToken) {
        let mut templates = self.templates.subscribe();
        loop {
            let template = templates.borrow_and_update().clone();
            if let Some(template) = template {
                match self.make_job(&template).await {
                    Ok(job) => tracing::info!(
                        height = job.height,
                        job = job.id(),
                        clean = job.notify.clean_jobs,
                        transactions = job.transactions.len(),
                        outputs = job.payout.outputs.len(),
                        "new job"
                    ),
                    Err(error) => tracing::error!(error = %error, height = template.height, "cannot make a job"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = templates.changed() => if changed.is_err() { break },
            }
        }
        tracing::debug!("job maker stopped");
    }

    /// The payout a block on `template` would make now: PPLNS over the
    /// ledger's window, or (solo) everything to the operator until a
    /// session asks for its own coinbase with [`Pool::solo_payout`].
    pub async fn pplns_payout(&self, template: &Template) -> Result<Payout, MakeJobError> {
        let config = &self.config.payout;
        let operator = config.address.script_pubkey();
        let network = self.config.network;
        let window = ShareWeight::from_difficulty(config.window.difficulty(template.network_difficulty()));
        let rows = self.store.window_workers(window).await?;
        let shares: Vec<WeightedShare> = rows
            .into_iter()
            .filter_map(|row| Some(WeightedShare { script: script_of(&row.address, network)?, weight: row.weight }))
            .collect();
        let owed = self.owed_scripts().await?;
        Ok(payout::pplns(&PayoutInput {
            coinbase_value: template.coinbase_value,
            fee: config.fee,
            operator: &operator,
            shares: &shares,
            owed: &owed,
            min_payout: config.min_payout,
            max_outputs: config.max_outputs,
        })?)
    }

    /// Solo: the coinbase of `finder`'s own jobs.
    pub async fn solo_payout(&self, template: &Template, finder: &ScriptBuf) -> Result<Payout, MakeJobError> {
        let owed = self.owed_scripts().await?;
        Ok(solo_payout_with(&self.config, template, finder, &owed)?)
    }

    async fn owed_scripts(&self) -> Result<Vec<(ScriptBuf, Amount)>, LedgerError> {
        let network = self.config.network;
        Ok(self
            .store
            .balances()
            .await?
            .into_iter()
            .filter_map(|(address, amount)| Some((script_of(&address, network)?, amount)))
            .collect())
    }

    /// The coinbase specification for `payout` under this configuration.
    pub fn coinbase_spec<'a>(&'a self, payout: &'a Payout) -> CoinbaseSpec<'a> {
        spec(&self.config, payout)
    }

    /// Makes and announces the shared job for `template`. In solo mode the
    /// shared job pays the operator alone; sessions mine their own (see
    /// [`Pool::solo_payout`] and [`JobHub::build_private`]).
    ///
    /// In solo mode the template (with the balances owed now) is kept in
    /// [`Pool::solo`], so that each session's own job is built from it on
    /// demand ([`SoloJobs::job_for`]).
    pub async fn make_job(&self, template: &Template) -> Result<Arc<Job>, MakeJobError> {
        match self.config.payout.mode {
            PayoutMode::Pplns => {
                let payout = self.pplns_payout(template).await?;
                Ok(self.jobs.publish(template, &self.coinbase_spec(&payout))?)
            }
            PayoutMode::Solo => {
                let owed = self.owed_scripts().await?;
                let operator = self.config.payout.address.script_pubkey();
                let payout = solo_payout_with(&self.config, template, &operator, &owed)?;
                Ok(self.solo.publish(template, &payout, owed)?)
            }
        }
    }

    /// A share met the network target: submits `block` (assembled with
    /// [`crate::job::assemble_block`]) at once, then records it, its payouts
    /// and its job's change to the balances owed (applied to the balances
    /// as they are now, see [`ShareStore::record_block`]). `finder` is the
    /// session's `address.worker`.
    pub async fn block_found(
        &self,
        job: &Job,
        block: &Block,
        finder_address: &str,
        finder_worker: &str,
    ) -> Result<SubmitOutcome, BlockFoundError> {
        let hash = block.block_hash();
        let outcome = self.node.submit_block(block).await?;
        match &outcome {
            SubmitOutcome::Accepted => tracing::info!(height = job.height, %hash, finder_address, "block found"),
            SubmitOutcome::Rejected(reason) if outcome.is_lost_race() => {
                // At a low network difficulty one batch of work often holds
                // several blocks at one height: losing to our own first one
                // is expected, losing to someone else's is worth a warning.
                let ours = self.store.recent_blocks(1).await?.first().is_some_and(|last| last.height == job.height);
                if ours {
                    tracing::debug!(height = job.height, %hash, reason, "a second block of ours at this height: the first one won");
                } else {
                    tracing::warn!(height = job.height, %hash, reason, "our block lost the race: another block at this height came first");
                }
                return Ok(outcome);
            }
            SubmitOutcome::Rejected(reason) => {
                tracing::error!(height = job.height, %hash, reason, "the node refused our block");
                return Ok(outcome);
            }
        }
        let network = self.config.network;
        let since = match self.store.recent_blocks(1).await?.first() {
            Some(last) => last.found_at,
            None => SystemTime::UNIX_EPOCH,
        };
        let network_difficulty = job.network_target.difficulty_float();
        let effort = self.store.difficulty_since(since, None).await? / network_difficulty;
        let record = BlockRecord {
            hash,
            height: job.height,
            reward: job.coinbase_value,
            fees: job.fees,
            status: BlockStatus::Pending,
            confirmations: 0,
            found_at: SystemTime::now(),
            finder_address: finder_address.to_owned(),
            finder_worker: finder_worker.to_owned(),
            network_difficulty,
            effort,
        };
        let payouts: Vec<(String, Amount)> =
            job.payout.outputs.iter().map(|o| (address_of(&o.script_pubkey, network), o.value)).collect();
        // The job's change to the balances, not the balances it computed:
        // the ledger applies it to the balances as they are now.
        let changes: Vec<(String, SignedAmount)> =
            job.payout.balance_changes.iter().map(|(script, delta)| (address_of(script, network), *delta)).collect();
        self.store.record_block(&record, &payouts, &changes).await?;
        Ok(outcome)
    }
}

/// Solo: the payout of a coinbase that pays `finder` the reward less the
/// pool fee, the fee to the operator.
fn solo_payout_with(
    config: &Config,
    template: &Template,
    finder: &ScriptBuf,
    owed: &[(ScriptBuf, Amount)],
) -> Result<Payout, PayoutError> {
    let operator = config.payout.address.script_pubkey();
    payout::solo(template.coinbase_value, config.payout.fee, &operator, finder, owed)
}

/// Solo mode's jobs: the shared job of the newest template (paying the
/// operator, never sent to a miner), and per payout address a private job
/// whose coinbase pays that address the reward less the pool fee, built
/// once per (template, address) with [`JobHub::build_private`] so that every
/// session of one address shares it.
#[derive(Debug)]
pub struct SoloJobs {
    config: Arc<Config>,
    jobs: Arc<JobHub>,
    state: Mutex<Option<SoloState>>,
}

#[derive(Debug)]
struct SoloState {
    /// The id of the shared job of `template`.
    base: String,
    template: Template,
    owed: Vec<(ScriptBuf, Amount)>,
    /// The private jobs of `template`, by payout address.
    jobs: HashMap<String, Arc<Job>>,
}

impl SoloJobs {
    /// Solo jobs built into `jobs` under `config`.
    pub fn new(config: Arc<Config>, jobs: Arc<JobHub>) -> SoloJobs {
        SoloJobs { config, jobs, state: Mutex::new(None) }
    }

    /// Publishes the shared job of `template` (paying `payout`) and makes
    /// `template` the one private jobs are built from, atomically: a session
    /// that sees the new shared job finds its template here.
    fn publish(
        &self,
        template: &Template,
        payout: &Payout,
        owed: Vec<(ScriptBuf, Amount)>,
    ) -> Result<Arc<Job>, JobError> {
        let mut state = self.state.lock().expect("no panic while holding the solo jobs");
        let job = self.jobs.publish(template, &spec(&self.config, payout))?;
        *state = Some(SoloState { base: job.id().to_owned(), template: template.clone(), owed, jobs: HashMap::new() });
        Ok(job)
    }

    /// The private job paying `address` for the template of the shared job
    /// `base`: built on first use, then shared. `Ok(None)` when `base` is no
    /// longer the newest shared job (a newer one is on its way).
    pub fn job_for(&self, base: &Job, address: &str) -> Result<Option<Arc<Job>>, MakeJobError> {
        let mut state = self.state.lock().expect("no panic while holding the solo jobs");
        let Some(state) = state.as_mut().filter(|s| s.base == base.id()) else { return Ok(None) };
        if let Some(job) = state.jobs.get(address) {
            return Ok(Some(job.clone()));
        }
        let finder = crate::config::parse_address(address, self.config.network)
            .map_err(|source| MakeJobError::Address { address: address.to_owned(), source: Box::new(source) })?
            .script_pubkey();
        let payout = solo_payout_with(&self.config, &state.template, &finder, &state.owed)?;
        let job = self.jobs.build_private(&state.template, &spec(&self.config, &payout))?;
        state.jobs.insert(address.to_owned(), job.clone());
        Ok(Some(job))
    }
}

/// The coinbase specification for `payout` under `config`.
fn spec<'a>(config: &'a Config, payout: &'a Payout) -> CoinbaseSpec<'a> {
    CoinbaseSpec {
        payout,
        pool_tag: &config.pool_tag,
        extranonce1_size: EXTRANONCE1_SIZE,
        extranonce2_size: usize::from(config.stratum.extranonce2_size),
    }
}

/// The output script of a stored payout address; `None` (with a warning) for
/// one that does not parse, which the Stratum side never lets in.
fn script_of(address: &str, network: Network) -> Option<ScriptBuf> {
    match crate::config::parse_address(address, network) {
        Ok(address) => Some(address.script_pubkey()),
        Err(error) => {
            tracing::warn!(address, error = %error, "skipping a ledger address that does not parse");
            None
        }
    }
}

/// The address of a payout script (the script's hex if it has none).
fn address_of(script: &ScriptBuf, network: Network) -> String {
    Address::from_script(script, network.address_network())
        .map(|a| a.to_string())
        .unwrap_or_else(|_| hex::encode(script.as_bytes()))
}

/// Runs the pool until `shutdown` is cancelled: opens the ledger, connects
/// to the node and starts every task, then waits for them all. The Stratum
/// server is to be spawned here as one more task over a clone of the [`Pool`].
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let ledger = Arc::new(Ledger::open(&config.database, &LedgerOptions::from_limits(&config.limits)).await?);
    tracing::info!(backend = ledger.backend_name(), "ledger open");
    let client = RpcClient::new(config.node.url.clone(), config.node.auth.clone())?;
    // The ledger and the node, measured into the pool's metrics.
    let metrics = Arc::new(PoolMetrics::new());
    let store = Arc::new(Metered::new(ledger.clone(), metrics.clone()));
    let node = Arc::new(Metered::new(Arc::new(RpcNode::new(client)), metrics.clone()));
    let http_listen = config.http_listen;
    let http = tokio::net::TcpListener::bind(http_listen)
        .await
        .map_err(|source| RunError::Http { addr: http_listen, source })?;
    tracing::info!(
        network = %config.network,
        node = config.node.url,
        stratum = %config.stratum.listen,
        "pool starting"
    );
    let stratum_options = crate::stratum::StratumOptions::from_config(&config)?;
    let address = config.stratum.listen;
    let listener =
        tokio::net::TcpListener::bind(address).await.map_err(|source| RunError::Listen { address, source })?;
    let (pool, tasks) = Pool::start_with_metrics(config, store, node, metrics, &shutdown);
    let http_state = Arc::new(crate::http::HttpState::new(pool.clone()));
    let http = tokio::spawn(crate::http::serve(http, http_state, shutdown.clone()));
    let server = crate::stratum::StratumServer::new(stratum_options, pool.clone());
    let stratum = tokio::spawn(server.run(listener, shutdown.clone()));
    if let Err(error) = stratum.await {
        tracing::error!(error = %error, "the Stratum server failed");
        shutdown.cancel();
    }
    tasks.join(pool).await;
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "the http server failed"),
        Err(error) => tracing::error!(%error, "the http server task failed"),
    }
    ledger.close().await;
    tracing::info!("pool stopped");
    Ok(())
}
