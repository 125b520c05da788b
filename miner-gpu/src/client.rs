//! The Stratum V1 client: configure (version rolling when the pool offers
//! it), subscribe, authorize, then jobs and difficulty to the miner and
//! shares to the pool, with the pool's verdicts counted. `client.reconnect`
//! is followed; a dropped or refused connection is retried with backoff,
//! failing over along the list of pool URLs. Rejected shares are counted
//! by the pool's Stratum error code ([`Rejections`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use satpool_stratum::{
    Authorize, Configure, ConfigureResult, ErrorCode, ErrorReply, Extranonce1, Id, Message, Method, Request,
    ShareDifficulty, Submit, Subscribe, SubscribeResult, VersionMask, DEFAULT_MAX_LINE_LEN, VERSION_ROLLING,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::miner::{FoundShare, Miner};
use crate::status::{reject_name, Rejections};
use crate::work::Job;

/// Why a session ended or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A URL that is not `[stratum+tcp://]host:port`.
    #[error("pool url {url:?} is not [stratum+tcp://]host:port")]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong with it.
        #[source]
        source: UrlError,
    },
    /// Connecting or talking failed.
    #[error("connection to {addr} failed")]
    Io {
        /// Where.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pool closed the connection.
    #[error("{0} closed the connection")]
    Closed(String),
    /// A line that is not Stratum.
    #[error("{addr} sent a line that is not Stratum")]
    Parse {
        /// Where.
        addr: String,
        /// Why.
        #[source]
        source: satpool_stratum::ParseError,
    },
    /// A line longer than the limit.
    #[error("{0} sent a line over {DEFAULT_MAX_LINE_LEN} bytes")]
    LineTooLong(String),
    /// Subscribe or authorize was refused.
    #[error("{addr} refused {what}: {message}")]
    Refused {
        /// Where.
        addr: String,
        /// Which request.
        what: &'static str,
        /// The pool's reason.
        message: String,
    },
}

/// A pool address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// What is wrong with a pool URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A scheme other than `stratum+tcp` (TLS and Stratum V2 are not spoken).
    #[error("scheme {0:?} is not supported: only stratum+tcp://")]
    Scheme(String),
    /// No `:port`.
    #[error("no port: expected host:port")]
    NoPort,
    /// A port that is not 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// An empty host, or one with characters no host name has.
    #[error("host {0:?} is not a host name or an address")]
    Host(String),
    /// An IPv6 address without its brackets.
    #[error("an IPv6 address goes in brackets: [{0}]:port")]
    Ipv6Brackets(String),
}

impl PoolUrl {
    /// Parses `[stratum+tcp://]host:port` (`[::1]:3333` for IPv6; a trailing
    /// `/` is allowed).
    pub fn parse(text: &str) -> Result<PoolUrl, UrlError> {
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("stratum+tcp") => rest,
            Some((scheme, _)) => return Err(UrlError::Scheme(scheme.to_owned())),
            None => text,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.strip_prefix('[') {
            Some(bracketed) => {
                let (host, port) = bracketed.split_once("]:").ok_or(UrlError::NoPort)?;
                if host.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(UrlError::Host(host.to_owned()));
                }
                (host, port)
            }
            None => {
                let (host, port) = rest.rsplit_once(':').ok_or(UrlError::NoPort)?;
                if host.contains(':') {
                    return Err(UrlError::Ipv6Brackets(host.to_owned()));
                }
                let odd = |c: char| c.is_whitespace() || c.is_control() || "/?#@[]\\".contains(c);
                if host.is_empty() || host.contains(odd) {
                    return Err(UrlError::Host(host.to_owned()));
                }
                (host, port)
            }
        };
        let port = match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(UrlError::Port(port.to_owned())),
        };
        Ok(PoolUrl { host: host.to_owned(), port })
    }
}

impl std::str::FromStr for PoolUrl {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PoolUrl::parse(s).map_err(|source| ClientError::BadUrl { url: s.to_owned(), source })
    }
}

impl std::fmt::Display for PoolUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The client's settings.
#[derive(Clone)]
pub struct ClientConfig {
    /// Pools in order of preference; failover walks this list.
    pub urls: Vec<PoolUrl>,
    /// The worker name.
    pub user: String,
    /// The password (often `x`).
    pub password: String,
    /// The user agent sent with subscribe.
    pub user_agent: String,
    /// The first retry delay after every pool failed.
    pub backoff_min: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// Version bits to ask for (BIP 320's by default).
    pub version_mask: VersionMask,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("urls", &self.urls)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Settings with the usual defaults: backoff 1 s to 30 s, BIP 320 mask.
    pub fn new(urls: Vec<PoolUrl>, user: String, password: String) -> ClientConfig {
        ClientConfig {
            urls,
            user,
            password,
            user_agent: concat!("satpool-miner/", env!("CARGO_PKG_VERSION")).to_owned(),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            version_mask: VersionMask::BIP320,
        }
    }
}

/// The pool's answer to a `mining.submit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `result: true`.
    Accepted,
    /// An error reply, or any result but `true` (counted as 20, other).
    Rejected {
        /// The Stratum error code.
        code: ErrorCode,
        /// The pool's message (`result false` and the like without one).
        message: String,
    },
}

impl Verdict {
    /// The verdict of a submit's response.
    pub fn of(outcome: Result<serde_json::Value, ErrorReply>) -> Verdict {
        match outcome {
            Ok(serde_json::Value::Bool(true)) => Verdict::Accepted,
            Ok(other) => Verdict::Rejected { code: ErrorCode::Other, message: format!("result {other}") },
            Err(e) => Verdict::Rejected { code: e.code, message: e.message },
        }
    }
}

/// What the client has seen, for the status line.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Shares the pool accepted.
    pub accepted: AtomicU64,
    /// Shares the pool rejected (the total of [`PoolStats::rejections`]).
    pub rejected: AtomicU64,
    /// Rejections by the pool's error code.
    pub rejections: Mutex<Rejections>,
    /// The current difficulty and pool, when connected.
    pub session: Mutex<Option<(String, f64)>>,
    /// Connections made (1 after the first).
    pub connections: AtomicU64,
}

impl PoolStats {
    /// Counts a rejection under its code. The total is bumped after the
    /// tally, so whoever sees the total sees the tally too.
    pub fn record_rejection(&self, code: ErrorCode, message: &str) {
        self.rejections.lock().unwrap_or_else(|e| e.into_inner()).record(code, message);
        self.rejected.fetch_add(1, Ordering::Release);
    }

    /// A copy of the rejections by code.
    pub fn rejections(&self) -> Rejections {
        self.rejections.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The rejections as `code message` → count (`23 Low difficulty share`
    /// → 1), the message being the pool's latest for that code.
    pub fn reasons(&self) -> BTreeMap<String, u64> {
        self.rejections()
            .iter()
            .map(|(code, tally)| (format!("{} {}", code.code(), tally.last_message), tally.count))
            .collect()
    }
}

enum SessionEnd {
    Reconnect { target: Option<PoolUrl>, wait: Duration },
    Shutdown,
}

/// Runs the client until `shutdown` completes: connects, feeds `miner`,
/// submits what `shares` brings, and reconnects or fails over as needed.
pub async fn run(
    config: ClientConfig,
    miner: Arc<Miner>,
    mut shares: UnboundedReceiver<FoundShare>,
    stats: Arc<PoolStats>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut index = 0;
    let mut backoff = config.backoff_min;
    let mut redirect: Option<PoolUrl> = None;
    loop {
        let url = redirect.take().unwrap_or_else(|| config.urls[index].clone());
        let outcome = tokio::select! {
            _ = &mut shutdown => return,
            outcome = session(&config, &url, &miner, &mut shares, &stats) => outcome,
        };
        miner.pause();
        *stats.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match outcome {
            Ok(SessionEnd::Shutdown) => return,
            Ok(SessionEnd::Reconnect { target, wait }) => {
                tracing::info!(from = %url, to = ?target, ?wait, "pool asked to reconnect");
                redirect = Some(target.unwrap_or(url));
                backoff = config.backoff_min;
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err((error, established)) => {
                tracing::warn!(pool = %url, error = %error_chain(&error), "pool connection lost");
                // A refusal (bad worker name, say) will not go away by
                // retrying at once: it backs off like a failed connect.
                let refused = matches!(error, ClientError::Refused { .. });
                if established && !refused {
                    // Retry the pool that worked, after the shortest wait,
                    // never in a tight loop.
                    backoff = config.backoff_min;
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(config.backoff_min) => {}
                    }
                    continue;
                }
                index = (index + 1) % config.urls.len();
                if index == 0 {
                    tracing::info!(?backoff, "every pool failed; waiting before the next round");
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(config.backoff_max);
                }
            }
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

const ID_CONFIGURE: u64 = 1;
const ID_SUBSCRIBE: u64 = 2;
const ID_AUTHORIZE: u64 = 3;
const ID_EXTRANONCE: u64 = 4;
const FIRST_SUBMIT_ID: u64 = 100;

/// One connection. `Err((e, established))`: `established` once the pool
/// answered subscribe, so a later drop retries the same pool first.
async fn session(
    config: &ClientConfig,
    url: &PoolUrl,
    miner: &Arc<Miner>,
    shares: &mut UnboundedReceiver<FoundShare>,
    stats: &PoolStats,
) -> Result<SessionEnd, (ClientError, bool)> {
    let addr = url.to_string();
    let io = |source| (ClientError::Io { addr: addr.clone(), source }, false);
    let stream = TcpStream::connect((url.host.as_str(), url.port)).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let (read, mut write) = stream.into_split();
    // Lines are read by their own task: `read_line` is not cancel-safe
    // inside `select!`, a channel receive is. The task ends with the
    // connection, or is aborted when the session ends.
    let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(64);
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(read);
        loop {
            let mut line = String::new();
            let read = (&mut lines).take(DEFAULT_MAX_LINE_LEN as u64 + 1).read_line(&mut line).await;
            let done = !matches!(read, Ok(n) if n > 0);
            if line_tx.send(read.map(|_| line)).await.is_err() || done {
                return;
            }
        }
    });
    let _abort_reader = AbortOnDrop(reader);
    let configure = Configure {
        extensions: vec![VERSION_ROLLING.to_owned()],
        version_rolling_mask: Some(config.version_mask),
        version_rolling_min_bit_count: Some(2),
        ..Configure::default()
    };
    let hello = [
        Request { id: ID_CONFIGURE.into(), method: Method::Configure(configure) },
        Request {
            id: ID_SUBSCRIBE.into(),
            method: Method::Subscribe(Subscribe { user_agent: Some(config.user_agent.clone()), session_id: None }),
        },
        Request {
            id: ID_AUTHORIZE.into(),
            method: Method::Authorize(Authorize { user: config.user.clone(), password: Some(config.password.clone()) }),
        },
        Request { id: ID_EXTRANONCE.into(), method: Method::ExtranonceSubscribe },
    ];
    let text: String = hello.iter().map(Request::to_line).collect();
    write.write_all(text.as_bytes()).await.map_err(io)?;
    stats.connections.fetch_add(1, Ordering::Relaxed);
    tracing::info!(pool = %addr, "connected");

    let mut mask = VersionMask::NONE;
    let mut subscribed: Option<(Extranonce1, usize)> = None;
    let mut pending_extranonce: Option<(Extranonce1, usize)> = None;
    let mut difficulty = ShareDifficulty::ONE;
    let mut pending_submits: HashMap<u64, FoundShare> = HashMap::new();
    let mut next_id = FIRST_SUBMIT_ID;
    loop {
        let established = subscribed.is_some();
        let fail = |e: ClientError| (e, established);
        tokio::select! {
            read = line_rx.recv() => {
                let line = read.unwrap_or_else(|| Ok(String::new()))
                    .map_err(|source| fail(ClientError::Io { addr: addr.clone(), source }))?;
                let n = line.len();
                if n == 0 {
                    return Err(fail(ClientError::Closed(addr.clone())));
                }
                if n > DEFAULT_MAX_LINE_LEN {
                    return Err(fail(ClientError::LineTooLong(addr.clone())));
                }
                if line.trim().is_empty() {
                    continue;
                }
                let message = Message::parse(&line)
                    .map_err(|source| fail(ClientError::Parse { addr: addr.clone(), source }))?;
                match message {
                    Message::Response(response) => {
                        let id = match &response.id { Id::Number(n) => n.as_u64(), _ => None };
                        match (id, response.outcome) {
                            (Some(ID_CONFIGURE), Ok(value)) => {
                                match ConfigureResult::from_value(&value) {
                                    Ok(result) => {
                                        mask = result.version_rolling.unwrap_or(VersionMask::NONE);
                                        tracing::info!(%mask, "version rolling negotiated");
                                    }
                                    Err(e) => tracing::warn!(error = %e, "unreadable configure result; no version rolling"),
                                }
                            }
                            (Some(ID_CONFIGURE), Err(e)) => {
                                tracing::info!(reason = %e.message, "pool does not support mining.configure; no version rolling");
                            }
                            (Some(ID_SUBSCRIBE), Ok(value)) => {
                                let result = SubscribeResult::from_value(&value)
                                    .map_err(|source| fail(ClientError::Parse { addr: addr.clone(), source }))?;
                                subscribed = Some((result.extranonce1, result.extranonce2_size));
                            }
                            (Some(ID_SUBSCRIBE), Err(e)) => {
                                return Err(fail(ClientError::Refused { addr: addr.clone(), what: "subscribe", message: e.message }));
                            }
                            (Some(ID_AUTHORIZE), Ok(value)) if value != serde_json::Value::Bool(false) => {
                                tracing::info!(user = %config.user, "authorized");
                            }
                            (Some(ID_AUTHORIZE), outcome) => {
                                let message = outcome.err().map_or_else(|| "false".to_owned(), |e| e.message);
                                return Err(fail(ClientError::Refused { addr: addr.clone(), what: "authorize", message }));
                            }
                            (Some(ID_EXTRANONCE), _) => {}
                            (Some(id), outcome) => {
                                let Some(share) = pending_submits.remove(&id) else { continue };
                                let nonce = format!("{:08x}", share.nonce);
                                match Verdict::of(outcome) {
                                    Verdict::Accepted => {
                                        stats.accepted.fetch_add(1, Ordering::Relaxed);
                                        tracing::info!(job = %share.job_id, %nonce, "share accepted");
                                    }
                                    Verdict::Rejected { code, message } => {
                                        stats.record_rejection(code, &message);
                                        tracing::warn!(
                                            job = %share.job_id, %nonce, code = code.code(), reason = reject_name(code), %message,
                                            "share rejected"
                                        );
                                    }
                                }
                            }
                            (None, _) => {}
                        }
                    }
                    Message::Request(request) => match request.method {
                        Method::SetDifficulty(d) => {
                            difficulty = d;
                            *stats.session.lock().unwrap_or_else(|e| e.into_inner()) = Some((addr.clone(), d.as_f64()));
                        }
                        Method::Notify(notify) => {
                            if let Some((e1, e2)) = pending_extranonce.take() {
                                subscribed = Some((e1, e2));
                            }
                            let Some((extranonce1, extranonce2_size)) = subscribed.clone() else {
                                tracing::warn!("job before the subscribe result; ignored");
                                continue;
                            };
                            *stats.session.lock().unwrap_or_else(|e| e.into_inner()) = Some((addr.clone(), difficulty.as_f64()));
                            let clean = notify.clean_jobs;
                            tracing::debug!(job = %notify.job_id, clean, "new job");
                            miner.set_job(Job { notify, extranonce1, extranonce2_size, mask, difficulty }, clean);
                        }
                        Method::SetExtranonce(set) => {
                            pending_extranonce = Some((set.extranonce1, set.extranonce2_size));
                        }
                        Method::Reconnect(r) => {
                            let target = match (r.host, r.port) {
                                (None, None) => None,
                                (host, port) => Some(PoolUrl { host: host.unwrap_or_else(|| url.host.clone()), port: port.unwrap_or(url.port) }),
                            };
                            return Ok(SessionEnd::Reconnect { target, wait: Duration::from_secs(r.wait_secs.unwrap_or(0)) });
                        }
                        Method::ShowMessage(text) => tracing::info!(pool = %addr, message = %text, "message from the pool"),
                        other => {
                            if request.id != Id::Null {
                                let reply = satpool_stratum::Response::unknown_method(request.id, other.name());
                                write.write_all(reply.to_line().as_bytes()).await
                                    .map_err(|source| fail(ClientError::Io { addr: addr.clone(), source }))?;
                            }
                        }
                    },
                }
            }
            share = shares.recv() => {
                let Some(share) = share else { return Ok(SessionEnd::Shutdown) };
                let id = next_id;
                next_id += 1;
                let submit = Submit {
                    worker: config.user.clone(),
                    job_id: share.job_id.clone(),
                    extranonce2: share.extranonce2.clone(),
                    ntime: share.ntime,
                    nonce: share.nonce,
                    version_bits: share.version_bits,
                };
                let request = Request { id: id.into(), method: Method::Submit(submit) };
                write.write_all(request.to_line().as_bytes()).await
                    .map_err(|source| fail(ClientError::Io { addr: addr.clone(), source }))?;
                pending_submits.insert(id, share);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_urls() {
        let ok = [
            ("stratum+tcp://pool.example:3333", "pool.example", 3333),
            ("STRATUM+TCP://pool.example:3333/", "pool.example", 3333),
            ("127.0.0.1:3333", "127.0.0.1", 3333),
            ("stratum+tcp://[::1]:3334", "::1", 3334),
        ];
        for (text, host, port) in ok {
            assert_eq!(PoolUrl::parse(text), Ok(PoolUrl { host: host.into(), port }), "{text}");
        }
        assert_eq!(PoolUrl::parse("[::1]:3334").map(|u| u.to_string()), Ok("[::1]:3334".to_owned()));
        let bad = [
            ("stratum+ssl://pool:3333", UrlError::Scheme("stratum+ssl".into())),
            ("http://pool:3333", UrlError::Scheme("http".into())),
            ("pool", UrlError::NoPort),
            ("stratum+tcp://pool:0", UrlError::Port("0".into())),
            ("pool:65536", UrlError::Port("65536".into())),
            ("pool:x", UrlError::Port("x".into())),
            (":3333", UrlError::Host(String::new())),
            ("pool/x:3333", UrlError::Host("pool/x".into())),
            ("user@pool:3333", UrlError::Host("user@pool".into())),
            ("::1:3333", UrlError::Ipv6Brackets("::1".into())),
            ("[nothost]:3333", UrlError::Host("nothost".into())),
        ];
        for (text, error) in bad {
            assert_eq!(PoolUrl::parse(text), Err(error), "{text}");
        }
        let e = "x".parse::<PoolUrl>().expect_err("no port");
        assert!(matches!(e, ClientError::BadUrl { ref url, .. } if url == "x"));
    }

    #[test]
    fn verdicts() {
        use serde_json::Value;
        assert_eq!(Verdict::of(Ok(Value::Bool(true))), Verdict::Accepted);
        assert_eq!(
            Verdict::of(Err(ErrorReply::new(ErrorCode::JobNotFound))),
            Verdict::Rejected { code: ErrorCode::JobNotFound, message: "Job not found".into() }
        );
        assert_eq!(
            Verdict::of(Err(ErrorReply { code: ErrorCode::from_code(-3), message: "Bad nonce".into() })),
            Verdict::Rejected { code: ErrorCode::Unrecognised(-3), message: "Bad nonce".into() }
        );
        assert_eq!(
            Verdict::of(Ok(Value::Bool(false))),
            Verdict::Rejected { code: ErrorCode::Other, message: "result false".into() }
        );
        assert_eq!(
            Verdict::of(Ok(Value::Null)),
            Verdict::Rejected { code: ErrorCode::Other, message: "result null".into() }
        );
    }

    #[test]
    fn stats_count_rejections_by_code() {
        let stats = PoolStats::default();
        stats.record_rejection(ErrorCode::JobNotFound, "Job not found");
        stats.record_rejection(ErrorCode::JobNotFound, "Stale share");
        stats.record_rejection(ErrorCode::LowDifficulty, "Low difficulty share");
        assert_eq!(stats.rejected.load(Ordering::Relaxed), 3);
        let r = stats.rejections();
        assert_eq!(r.count(ErrorCode::JobNotFound), 2);
        assert_eq!(r.last_message(ErrorCode::JobNotFound), Some("Stale share"));
        assert_eq!(
            stats.reasons(),
            BTreeMap::from([("21 Stale share".to_owned(), 2), ("23 Low difficulty share".to_owned(), 1)])
        );
    }
}
