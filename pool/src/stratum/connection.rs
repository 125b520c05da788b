//! One connection: a task that reads lines and keeps the [`Session`], and a
//! writer task that drains a bounded queue to the socket. Answers to shares
//! wait in that queue for the ledger's commit, so `true` is written only
//! for a share on disk, in the order the shares came.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use satpool_stratum::{
    ConfigureResult, ErrorCode, Extranonce1, Id, Message, Method, Reconnect, Request, Response, Submit, SubscribeResult,
};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::limits::{ConnectionPermit, InvalidShares};
use super::session::Session;
use super::{FoundBlock, Published, Shared, StratumStats};
use crate::ledger::{RecordError, ShareRecord};
use crate::metrics::PoolMetrics;
use crate::service::SoloJobs;
use crate::share::{validate, Reject};
use crate::vardiff::Vardiff;

/// What the writer sends.
enum Outbound {
    /// A job's notify, shared by many connections, with when the job was
    /// published if this is its broadcast to a connection that was mining
    /// then: the time to the socket is the job broadcast latency.
    Job { line: Arc<str>, published: Option<Instant> },
    /// What the socket did not take at once of a job's notify.
    JobRest { rest: String, published: Option<Instant> },
    /// A line of this connection's own.
    Line(String),
    /// The answer to a share, once its record is committed.
    Ack { id: Id, record: JoinHandle<Result<(), RecordError>> },
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Closed,
    Shutdown,
    LineTooLong(usize),
    HandshakeTimeout,
    Idle,
    SlowClient,
    Banned,
    WriterGone,
    Io(io::Error),
}

/// Reads `\n`-terminated lines of at most `max` bytes. Cancel-safe: the
/// only await is a read, and what was read stays in `buf`.
struct LineReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    scanned: usize,
    max: usize,
}

enum LineError {
    TooLong(usize),
    Io(io::Error),
}

impl LineReader {
    fn new(read: OwnedReadHalf, max: usize) -> LineReader {
        LineReader { read, buf: Vec::new(), scanned: 0, max }
    }

    async fn next_line(&mut self) -> Result<Option<String>, LineError> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
                let end = self.scanned + pos;
                self.scanned = 0;
                if end > self.max {
                    return Err(LineError::TooLong(end));
                }
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if self.buf.is_empty() && self.buf.capacity() > 4096 {
                    self.buf = Vec::new();
                }
                let text = String::from_utf8_lossy(&line[..end]);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                return Ok(Some(text.to_owned()));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Err(LineError::TooLong(self.buf.len()));
            }
            self.buf.reserve(1024);
            match self.read.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(error) => return Err(LineError::Io(error)),
            }
        }
    }
}

/// The way out to the socket: written at once from the connection's own
/// task while nothing waits in the queue (most lines: no second task is
/// woken), else queued behind what waits, in order. `pending` counts what
/// the writer task holds and has not yet written.
struct Out {
    queue: mpsc::Sender<Outbound>,
    write: Arc<OwnedWriteHalf>,
    pending: Arc<AtomicUsize>,
    metrics: Arc<PoolMetrics>,
}

impl Out {
    fn send(&self, outbound: Outbound) -> Result<(), End> {
        let outbound = match outbound {
            Outbound::Job { line, published } if self.idle() => match self.write_now(line.as_bytes())? {
                None => {
                    if let Some(published) = published {
                        self.metrics.observe_job_broadcast(published.elapsed());
                    }
                    None
                }
                Some(rest) => Some(Outbound::JobRest { rest, published }),
            },
            Outbound::Line(line) if self.idle() => self.write_now(line.as_bytes())?.map(Outbound::Line),
            other => Some(other),
        };
        let Some(outbound) = outbound else { return Ok(()) };
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.queue.try_send(outbound).map_err(|error| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            match error {
                mpsc::error::TrySendError::Full(_) => End::SlowClient,
                mpsc::error::TrySendError::Closed(_) => End::WriterGone,
            }
        })
    }

    fn idle(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Writes what the socket takes now; returns the rest to queue.
    fn write_now(&self, bytes: &[u8]) -> Result<Option<String>, End> {
        match self.write.try_write(bytes) {
            Ok(n) if n == bytes.len() => Ok(None),
            Ok(n) => Ok(Some(String::from_utf8_lossy(&bytes[n..]).into_owned())),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
            }
            Err(error) => Err(End::Io(error)),
        }
    }
}

/// Aborts a task when dropped (the writer, should the connection task itself be aborted).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, permit: ConnectionPermit) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (queue, out_rx) = mpsc::channel(shared.options.outbound_queue.max(4));
    let write = Arc::new(write);
    let pending = Arc::new(AtomicUsize::new(0));
    let out = Out { queue, write: write.clone(), pending: pending.clone(), metrics: shared.metrics.clone() };
    let mut writer = AbortOnDrop(tokio::spawn(write_loop(
        write,
        out_rx,
        pending,
        shared.options.write_timeout,
        shared.metrics.clone(),
    )));
    let options = &shared.options;
    let now = Instant::now();
    let vardiff = Vardiff::new(options.vardiff.clone(), options.start_difficulty, now);
    let mut connection = Connection {
        session: Session::new(vardiff, options.extranonce2_size, options.max_jobs, options.max_shares_per_job),
        published: shared.published.clone(),
        own: None,
        pending: Arc::new(Semaphore::new(options.pending_shares.max(1))),
        invalid: InvalidShares::new(options.ban_threshold.max(1), options.ban_window),
        out,
        peer,
        extranonce1: None,
        connected_at: now,
        last_line: now,
        next_tick: now + options.vardiff.retarget_after,
        shared: shared.clone(),
    };
    tracing::debug!(%peer, "connection opened");
    let end = connection.run(LineReader::new(read, options.max_line_length)).await;
    match &end {
        End::Closed | End::Shutdown => tracing::debug!(%peer, reason = ?end, "connection closed"),
        End::Io(error) => tracing::debug!(%peer, %error, "connection failed"),
        End::LineTooLong(len) => tracing::warn!(
            %peer, len, limit = options.max_line_length, "line too long: answered with an error and disconnected"
        ),
        _ => tracing::info!(%peer, reason = ?end, "connection closed"),
    }
    shared.metrics.connection_closed();
    if let Some(e1) = connection.extranonce1 {
        shared.extranonces.release(e1, Instant::now());
    }
    drop(connection);
    if matches!(end, End::SlowClient) {
        writer.0.abort();
    }
    let _ = (&mut writer.0).await;
    drop(permit);
}

struct Connection {
    shared: Arc<Shared>,
    session: Session,
    published: tokio::sync::watch::Receiver<Option<Arc<Published>>>,
    /// Solo mode: this session's own job (paying its payout address), rendered.
    own: Option<Arc<Published>>,
    pending: Arc<Semaphore>,
    invalid: InvalidShares,
    out: Out,
    peer: SocketAddr,
    extranonce1: Option<u32>,
    connected_at: Instant,
    last_line: Instant,
    next_tick: Instant,
}

impl Connection {
    async fn run(&mut self, mut reader: LineReader) -> End {
        // Registered once, not on every turn of the loop: with thousands of
        // connections woken by one job, re-registering on the token's shared
        // lock and the timer wheel each time is measurable.
        let shutdown = self.shared.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let mut armed = self.deadline();
        let timer = tokio::time::sleep_until(armed.into());
        tokio::pin!(timer);
        loop {
            let deadline = self.deadline();
            if deadline != armed {
                armed = deadline;
                timer.as_mut().reset(deadline.into());
            }
            let step = tokio::select! {
                biased;
                _ = &mut cancelled => {
                    let reconnect = Reconnect { host: None, port: None, wait_secs: Some(self.shared.options.reconnect_wait) };
                    let _ = self.send(Outbound::Line(Request::notification(Method::Reconnect(reconnect)).to_line()));
                    return End::Shutdown;
                }
                changed = self.published.changed() => match changed {
                    Ok(()) => self.on_job(),
                    Err(_) => Err(End::Shutdown),
                },
                line = reader.next_line() => match line {
                    Ok(Some(line)) => {
                        self.last_line = Instant::now();
                        self.on_line(&line).await
                    }
                    Ok(None) => Err(End::Closed),
                    Err(LineError::TooLong(len)) => {
                        let message = format!(
                            "line too long: more than {} bytes (read {len}); disconnecting",
                            self.shared.options.max_line_length
                        );
                        let _ = self.send(Outbound::Line(Response::error(Id::Null, ErrorCode::Other, message).to_line()));
                        Err(End::LineTooLong(len))
                    }
                    Err(LineError::Io(error)) => Err(End::Io(error)),
                },
                _ = &mut timer => {
                    // Re-armed on the next turn, whatever the deadline then.
                    armed = Instant::now() - std::time::Duration::from_secs(1);
                    self.on_timer()
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    fn deadline(&self) -> Instant {
        let options = &self.shared.options;
        let limit = if self.session.is_ready() {
            self.last_line + options.idle_timeout
        } else {
            (self.connected_at + options.handshake_timeout).min(self.last_line + options.idle_timeout)
        };
        limit.min(self.next_tick)
    }

    fn on_timer(&mut self) -> Result<(), End> {
        let now = Instant::now();
        let options = &self.shared.options;
        if !self.session.is_ready() && now >= self.connected_at + options.handshake_timeout {
            return Err(End::HandshakeTimeout);
        }
        if now >= self.last_line + options.idle_timeout {
            return Err(End::Idle);
        }
        if now >= self.next_tick {
            self.next_tick = now + options.vardiff.retarget_after;
            if self.session.tick(now).is_some() {
                self.resend_job()?;
            }
        }
        Ok(())
    }

    fn send(&self, outbound: Outbound) -> Result<(), End> {
        self.out.send(outbound).map_err(|end| {
            if matches!(end, End::SlowClient) {
                StratumStats::bump(&self.shared.stats.slow_clients_dropped);
            }
            end
        })
    }

    fn reply(&self, id: &Id, response: Response) -> Result<(), End> {
        if *id == Id::Null && response.outcome.is_ok() {
            return Ok(()); // a notification: nothing to answer
        }
        self.send(Outbound::Line(response.to_line()))
    }

    /// The newest job, sent when it is new to this session: the shared one,
    /// or in solo mode the session's own job for its template.
    fn on_job(&mut self) -> Result<(), End> {
        if !self.session.is_ready() {
            return Ok(());
        }
        let Some(published) = self.published.borrow_and_update().clone() else { return Ok(()) };
        let job = match self.shared.solo.clone() {
            None => published.clone(),
            Some(solo) => match self.own_job(&solo, &published) {
                Some(own) => own,
                None => return Ok(()),
            },
        };
        if self.session.current_job_id() == Some(job.job.id()) {
            return Ok(());
        }
        let first = self.session.current_job().is_none();
        self.session.tick(Instant::now());
        // A connection's first job is no broadcast: it waited for the
        // connection, not the other way round.
        let broadcast = (!first).then_some(published.at);
        self.send_job(&job, first || published.job.notify.clean_jobs, broadcast)
    }

    /// Solo mode: the session's own job for the template of the shared job
    /// `published`, paying its payout address; `None` when there is none
    /// (yet): a newer shared job is coming, or it could not be built.
    fn own_job(&mut self, solo: &SoloJobs, published: &Published) -> Option<Arc<Published>> {
        let address = self.session.payout_address()?;
        match solo.job_for(&published.job, address) {
            Ok(Some(job)) => {
                if let Some(own) = self.own.as_ref().filter(|own| Arc::ptr_eq(&own.job, &job)) {
                    return Some(own.clone());
                }
                let own = Arc::new(Published::new(job));
                self.own = Some(own.clone());
                Some(own)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::error!(peer = %self.peer, address, %error, "cannot make a solo job");
                None
            }
        }
    }

    /// set_difficulty when it changed, then the notify it applies to.
    fn send_job(&mut self, published: &Published, clean: bool, broadcast: Option<Instant>) -> Result<(), End> {
        if let Some(difficulty) = self.session.job_sent(published.job.clone()) {
            self.send(Outbound::Line(Request::notification(Method::SetDifficulty(difficulty)).to_line()))?;
        }
        let line = if clean { &published.clean_line } else { &published.line };
        self.send(Outbound::Job { line: line.clone(), published: broadcast })
    }

    /// After a difficulty change: set_difficulty, and the current job again
    /// (not clean) so the miner has work at the new difficulty now.
    fn resend_job(&mut self) -> Result<(), End> {
        if !self.session.is_ready() {
            return Ok(());
        }
        let published = match self.shared.solo {
            Some(_) => self.own.clone(),
            None => self.published.borrow().clone(),
        };
        let Some(published) = published else { return Ok(()) };
        let first = self.session.current_job().is_none();
        self.send_job(&published, first, None)
    }

    fn became_ready(&mut self, was_ready: bool) -> Result<(), End> {
        if was_ready || !self.session.is_ready() {
            return Ok(());
        }
        self.published.mark_changed();
        self.on_job()
    }

    fn count_invalid(&mut self) -> Result<(), End> {
        if self.invalid.record(Instant::now()) {
            let options = &self.shared.options;
            tracing::warn!(peer = %self.peer, threshold = options.ban_threshold, ban = ?options.ban_duration, "flood of invalid shares: banning");
            self.shared.limits.ban(self.peer.ip(), Instant::now(), options.ban_duration);
            return Err(End::Banned);
        }
        Ok(())
    }

    async fn on_line(&mut self, line: &str) -> Result<(), End> {
        let request = match Message::parse(line) {
            Ok(Message::Request(request)) => request,
            Ok(Message::Response(_)) => return Ok(()), // a reply to something we sent
            Err(error) => {
                let id = line_id(line);
                tracing::debug!(peer = %self.peer, %error, "unparsable line");
                self.send(Outbound::Line(Response::error(id, ErrorCode::Other, error.to_string()).to_line()))?;
                return self.count_invalid();
            }
        };
        let Request { id, method } = request;
        let was_ready = self.session.is_ready();
        match method {
            Method::Subscribe(subscribe) => {
                let e1 = match self.extranonce1 {
                    Some(e1) => e1,
                    None => {
                        let offered = subscribe
                            .session_id
                            .as_deref()
                            .filter(|s| s.len() == 8)
                            .and_then(|s| u32::from_str_radix(s, 16).ok());
                        let (e1, resumed) = self.shared.extranonces.allocate(offered, Instant::now());
                        tracing::debug!(peer = %self.peer, extranonce1 = format_args!("{e1:08x}"), resumed, agent = ?subscribe.user_agent, "subscribed");
                        self.extranonce1 = Some(e1);
                        e1
                    }
                };
                let extranonce1 = Extranonce1::from_u32(e1);
                let result = SubscribeResult::new(
                    &extranonce1.to_string(),
                    extranonce1.clone(),
                    self.session.extranonce2_size(),
                );
                self.session.subscribe(extranonce1, subscribe.user_agent);
                self.reply(&id, Response::ok(id.clone(), result.to_value()))?;
                self.became_ready(was_ready)
            }
            Method::Authorize(authorize) => {
                match self.session.authorize(&authorize.user, self.shared.options.network) {
                    Ok(worker) => {
                        tracing::debug!(peer = %self.peer, address = %worker.address, worker = %worker.name, "authorized");
                        self.reply(&id, Response::ok(id.clone(), Value::Bool(true)))?;
                        self.became_ready(was_ready)
                    }
                    Err(error) => {
                        tracing::info!(peer = %self.peer, %error, "authorization refused");
                        self.reply(&id, Response::error(id.clone(), ErrorCode::UnauthorizedWorker, error.to_string()))
                    }
                }
            }
            Method::Configure(configure) => {
                let mut result = ConfigureResult::answer(&configure, self.shared.options.version_mask);
                if configure.wants(satpool_stratum::VERSION_ROLLING) {
                    self.session.set_version_mask(result.version_rolling);
                }
                if let Some(minimum) = configure.minimum_difficulty {
                    if let Some(answer) = result.answers.iter_mut().find(|(e, _)| e == "minimum-difficulty") {
                        answer.1 = true;
                    }
                    self.session.suggest(minimum, Instant::now());
                }
                self.reply(&id, Response::ok(id.clone(), result.to_value()))?;
                if self.session.is_ready() && self.session.sent_difficulty() != Some(self.session.difficulty()) {
                    self.resend_job()?;
                }
                Ok(())
            }
            Method::SuggestDifficulty(difficulty) => {
                let changed = self.session.suggest(difficulty, Instant::now());
                self.reply(&id, Response::ok(id.clone(), Value::Bool(true)))?;
                if changed.is_some() && self.session.current_job().is_some() {
                    self.resend_job()?;
                }
                Ok(())
            }
            Method::ExtranonceSubscribe => {
                self.session.subscribe_extranonce();
                self.reply(&id, Response::ok(id.clone(), Value::Bool(true)))
            }
            Method::Submit(submit) => self.on_submit(id, submit).await,
            Method::Unknown { method, .. } => {
                tracing::debug!(peer = %self.peer, %method, "unknown method");
                self.reply(&id, Response::unknown_method(id.clone(), &method))
            }
            other => {
                let name = other.name().to_owned();
                self.reply(
                    &id,
                    Response::error(id.clone(), ErrorCode::Other, format!("{name} is not a method a client sends")),
                )
            }
        }
    }

    async fn on_submit(&mut self, id: Id, submit: Submit) -> Result<(), End> {
        let now = Instant::now();
        let tip = self.published.borrow().as_ref().map(|p| p.job.prev_hash());
        let result = {
            let view = tip.and_then(|tip| self.session.share_job(&submit.job_id, tip));
            let session = self.session.share_session(&submit.worker);
            validate(view.as_ref().map(|(job, _)| job), &session, &submit).map(|outcome| {
                let job = view.as_ref().map(|(_, job)| Arc::clone(job)).expect("a valid share has a job");
                (outcome, job)
            })
        };
        let (outcome, job) = match result {
            Ok(accepted) => accepted,
            Err(reject) => return self.reject(id, &submit, reject),
        };
        let share = outcome.share();
        let worker = self.session.worker(&submit.worker).cloned().expect("a valid share's worker is authorized");
        if outcome.is_block() {
            StratumStats::bump(&self.shared.stats.blocks_found);
            tracing::info!(peer = %self.peer, hash = %share.hash, height = job.height, address = %worker.address, "share meets the network target: submitting the block");
            let found = FoundBlock {
                job: job.clone(),
                extranonce1: self.session.extranonce1().cloned().expect("a valid share's session is subscribed"),
                extranonce2: submit.extranonce2.clone(),
                ntime: submit.ntime,
                nonce: submit.nonce,
                version: share.header.version,
                hash: share.hash,
                worker: worker.clone(),
                peer: self.peer,
            };
            if self.shared.blocks.send(found).is_err() {
                tracing::error!(hash = %share.hash, "the block task has stopped; block not submitted");
            }
        }
        let record = ShareRecord {
            time: SystemTime::now(),
            address: worker.address,
            worker: worker.name,
            difficulty: share.difficulty.as_f64(),
            height: job.height,
            job_id: submit.job_id.clone(),
            block_hash: outcome.is_block().then_some(share.hash),
        };
        let retarget = self.session.accepted(&submit.job_id, share.hash, now);
        let permit = self.pending.clone().acquire_owned().await.expect("the pending-share semaphore is never closed");
        let recorder = self.shared.recorder.clone();
        let stats = self.shared.stats.clone();
        let record = tokio::spawn(async move {
            let outcome = recorder.record(record).await;
            if outcome.is_ok() {
                StratumStats::bump(&stats.shares_accepted);
            }
            drop(permit);
            outcome
        });
        self.send(Outbound::Ack { id, record })?;
        if retarget.is_some() {
            self.resend_job()?;
        }
        Ok(())
    }

    fn reject(&mut self, id: Id, submit: &Submit, reject: Reject) -> Result<(), End> {
        StratumStats::bump(&self.shared.stats.shares_rejected);
        self.shared.metrics.share_rejected(&submit.worker, &reject);
        tracing::debug!(peer = %self.peer, job = %submit.job_id, worker = %submit.worker, code = reject.code().code(), %reject, "share rejected");
        self.send(Outbound::Line(Response { id, outcome: Err(reject.reply()) }.to_line()))?;
        if reject.is_invalid() {
            self.count_invalid()?;
        }
        Ok(())
    }
}

/// The id of a line that did not parse, when it has a readable one.
fn line_id(line: &str) -> Id {
    match serde_json::from_str::<Value>(line).ok().and_then(|v| v.get("id").cloned()) {
        Some(Value::Number(n)) => Id::Number(n),
        Some(Value::String(s)) => Id::String(s),
        _ => Id::Null,
    }
}

async fn write_loop(
    write: Arc<OwnedWriteHalf>,
    mut queue: mpsc::Receiver<Outbound>,
    pending: Arc<AtomicUsize>,
    timeout: std::time::Duration,
    metrics: Arc<PoolMetrics>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut jobs: Vec<Instant> = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        let mut items = 0;
        while let Some(outbound) = next {
            items += 1;
            match outbound {
                Outbound::Job { line, published } => {
                    buf.extend_from_slice(line.as_bytes());
                    jobs.extend(published);
                }
                Outbound::JobRest { rest, published } => {
                    buf.extend_from_slice(rest.as_bytes());
                    jobs.extend(published);
                }
                Outbound::Line(line) => buf.extend_from_slice(line.as_bytes()),
                Outbound::Ack { id, record } => {
                    let response = match record.await {
                        Ok(Ok(())) => Response::ok(id, Value::Bool(true)),
                        Ok(Err(error)) => Response::error(id, ErrorCode::Other, format!("share not stored: {error}")),
                        Err(_) => Response::error(id, ErrorCode::Other, "share not stored: the pool is stopping"),
                    };
                    buf.extend_from_slice(response.to_line().as_bytes());
                }
            }
            if buf.len() >= 64 * 1024 {
                break;
            }
            next = queue.try_recv().ok();
        }
        if tokio::time::timeout(timeout, write_all(&write, &buf)).await.map_or(true, |r| r.is_err()) {
            return;
        }
        buf.clear();
        for published in jobs.drain(..) {
            metrics.observe_job_broadcast(published.elapsed());
        }
        // Only now may the connection write past the queue again.
        pending.fetch_sub(items, Ordering::AcqRel);
    }
    // Dropping the last handle on the write half shuts it down.
}

async fn write_all(write: &OwnedWriteHalf, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        write.writable().await?;
        match write.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
