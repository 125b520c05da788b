//! The HTTP side of the server, shaped like Core's `httpserver.cpp`: allow
//! list, routing, Basic auth, body limit, a bounded work queue feeding a
//! fixed number of worker threads, and a graceful stop.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::allow::{allowed, Subnet};
use crate::auth::{Auth, CookieFile, Credentials, Refusal};
use crate::protocol::{handle_body, RpcHandler};

/// Core's `MAX_SIZE`, the body limit it gives libevent.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Core's `MAX_HEADERS_SIZE`; also the smallest read buffer hyper accepts.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8192;
/// Core's `DEFAULT_HTTP_THREADS` (since v29).
pub const DEFAULT_THREADS: usize = 16;
/// Core's `DEFAULT_HTTP_WORKQUEUE` (since v29; 16 before).
pub const DEFAULT_WORK_QUEUE: usize = 64;
/// Core's `DEFAULT_HTTP_SERVER_TIMEOUT`, 30 seconds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Core sleeps before answering a wrong password.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(250);

/// Core's `WWW_AUTH_HEADER_DATA`.
const WWW_AUTH: &str = "Basic realm=\"jsonrpc\"";

/// Everything the server needs besides the listener and the handler.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How callers authenticate.
    pub auth: Auth,
    /// Peers allowed besides loopback (Core's `-rpcallowip`); others get 403.
    pub allow: Vec<Subnet>,
    /// Largest request body; larger ones get 413 without being read.
    pub max_body_bytes: usize,
    /// Largest request head (line and headers); at least 8192, hyper's
    /// minimum. Larger heads are refused by hyper with 431.
    pub max_header_bytes: usize,
    /// Calls run at once (Core's `-rpcthreads`).
    pub threads: usize,
    /// Calls waiting for a thread before new ones get 503 "Work queue depth
    /// exceeded" (Core's `-rpcworkqueue`, at least 1).
    pub work_queue: usize,
    /// Open connections at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long a connection may take to send a request head or body (Core's
    /// `-rpcservertimeout`). There is no limit on a call's own run time, so
    /// long polls are not cut short.
    pub idle_timeout: Duration,
    /// Wait before answering a wrong password (Core: 250 ms).
    pub auth_failure_delay: Duration,
    /// How long shutdown waits for calls in progress before closing their
    /// connections. A call already running on a thread finishes regardless.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// Core's defaults, with `auth`.
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            allow: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            threads: DEFAULT_THREADS,
            work_queue: DEFAULT_WORK_QUEUE,
            max_connections: 256,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            auth_failure_delay: AUTH_FAILURE_DELAY,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The cookie file could not be written.
    #[error("cannot write the rpc cookie file {path}")]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The JSON-RPC server: a handler, its configuration and its work queue.
///
/// Cheap to clone; clones share the queue, so [`RpcServer::queued`] and
/// [`RpcServer::running`] can be read while [`RpcServer::serve`] runs.
#[derive(Clone)]
pub struct RpcServer {
    shared: Arc<Shared>,
}

struct Shared {
    config: ServerConfig,
    handler: Arc<dyn RpcHandler>,
    queue: WorkQueue,
}

/// Core's `WorkQueue`: at most `depth` calls wait, at most `threads` run.
struct WorkQueue {
    depth: usize,
    waiting: AtomicUsize,
    running: AtomicUsize,
    threads: Arc<Semaphore>,
}

/// One place in the queue; leaving it (run or dropped) frees the place.
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkQueue {
    fn enqueue(&self) -> Option<QueueSlot<'_>> {
        self.waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.depth).then_some(n + 1))
            .ok()
            .map(|_| QueueSlot(&self.waiting))
    }
}

impl std::fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer")
            .field("config", &self.shared.config)
            .field("queued", &self.queued())
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl RpcServer {
    /// A server for `handler`; nothing runs until [`RpcServer::serve`].
    pub fn new(config: ServerConfig, handler: Arc<dyn RpcHandler>) -> Self {
        let queue = WorkQueue {
            depth: config.work_queue.max(1),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            threads: Arc::new(Semaphore::new(config.threads.max(1))),
        };
        Self { shared: Arc::new(Shared { config, handler, queue }) }
    }

    /// Calls waiting for a worker thread.
    pub fn queued(&self) -> usize {
        self.shared.queue.waiting.load(Ordering::SeqCst)
    }

    /// Calls running on a worker thread.
    pub fn running(&self) -> usize {
        self.shared.queue.running.load(Ordering::SeqCst)
    }

    /// Prepares to serve `listener`: with [`Auth::Cookie`] the cookie file is
    /// written before this returns (so a failure surfaces at start, as in
    /// Core). The returned future serves until `shutdown` completes, then
    /// stops accepting, lets calls in progress finish (up to
    /// `shutdown_grace`), closes every connection and removes the cookie
    /// file. Dropping the future also removes the cookie.
    pub fn start(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<impl Future<Output = ()>, ServeError> {
        let (cookie, credentials) = match &self.shared.config.auth {
            Auth::Cookie { path } => {
                let (file, creds) =
                    CookieFile::create(path).map_err(|source| ServeError::Cookie { path: path.clone(), source })?;
                (Some(file), creds)
            }
            Auth::UserPassword { user, password } => (None, Credentials::new(user, password.expose())),
        };
        Ok(self.run(listener, shutdown, cookie, Arc::new(credentials)))
    }

    /// [`RpcServer::start`], then serving until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        self.start(listener, shutdown)?.await;
        Ok(())
    }

    async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        cookie: Option<CookieFile>,
        credentials: Arc<Credentials>,
    ) {
        let config = &self.shared.config;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "rpc server listening");
        }
        let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            };
            let (stream, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: back off rather than spin.
                        tracing::warn!(error = %e, "rpc accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            while tasks.try_join_next().is_some() {}
            let connection = Connection { server: self.clone(), credentials: credentials.clone(), peer };
            let stop = stop_rx.clone();
            tasks.spawn(async move {
                connection.run(stream, stop).await;
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!(connections = tasks.len(), "rpc server stopping");
        // Send fails only once every receiver is gone: nothing left to tell.
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(config.shutdown_grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(connections = tasks.len(), "rpc calls still running at shutdown; closing their connections");
            tasks.shutdown().await;
        }
        drop(cookie);
        tracing::info!("rpc server stopped");
    }
}

/// [`RpcServer::new`] then [`RpcServer::serve`].
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    handler: Arc<dyn RpcHandler>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    RpcServer::new(config, handler).serve(listener, shutdown).await
}

type Response = hyper::Response<Full<Bytes>>;

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

struct Connection {
    server: RpcServer,
    credentials: Arc<Credentials>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, mut stop: watch::Receiver<bool>) {
        let config = &self.server.shared.config;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(config.idle_timeout)
            .max_buf_size(config.max_header_bytes.max(DEFAULT_MAX_HEADER_BYTES))
            .keep_alive(true);
        let peer = self.peer;
        let this = Arc::new(self);
        let service = service_fn(move |request| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.respond(request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let outcome = tokio::select! {
            outcome = connection.as_mut() => outcome,
            () = async {
                // An error means the server is gone: stop all the same.
                let _ = stop.wait_for(|stop| *stop).await;
            } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = outcome {
            tracing::info!(%peer, error = %e, "rpc connection closed with an error");
        }
    }

    async fn respond(&self, request: hyper::Request<Incoming>) -> Response {
        let shared = &self.server.shared;
        let config = &shared.config;
        let peer = self.peer;

        // libevent refuses an announced oversized body before anything else.
        let announced =
            request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|len| len > config.max_body_bytes as u64) {
            tracing::warn!(%peer, length = announced, limit = config.max_body_bytes, "rpc request rejected: body too large");
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "");
        }
        if !allowed(&config.allow, peer.ip()) {
            tracing::warn!(%peer, "rpc request rejected: client network is not allowed rpc access");
            return plain(StatusCode::FORBIDDEN, "");
        }
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let wallet = if target == "/" {
            None
        } else if let Some(name) = target.strip_prefix("/wallet/") {
            Some(url_decode(name))
        } else {
            tracing::info!(%peer, uri = %truncate(target, 100), "rpc request rejected: no handler for this uri");
            return plain(StatusCode::NOT_FOUND, "");
        };
        if request.method() != Method::POST {
            tracing::info!(%peer, method = %request.method(), "rpc request rejected: not a POST");
            return plain(StatusCode::METHOD_NOT_ALLOWED, "JSONRPC server handles only POST requests");
        }
        // Auth before the queue (Core checks it on the worker thread), so an
        // unauthenticated peer cannot take queue places or threads.
        let header = request.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Err(refusal) = self.credentials.check(header) {
            match refusal {
                Refusal::Missing => tracing::info!(%peer, "rpc request rejected: no authorization header"),
                Refusal::Wrong => {
                    tracing::warn!(%peer, "rpc request rejected: incorrect password attempt");
                    tokio::time::sleep(config.auth_failure_delay).await;
                }
            }
            let mut response = plain(StatusCode::UNAUTHORIZED, "");
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTH));
            return response;
        }
        let limited = Limited::new(request.into_body(), config.max_body_bytes);
        let body = match tokio::time::timeout(config.idle_timeout, limited.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                tracing::warn!(%peer, limit = config.max_body_bytes, "rpc request rejected: body too large");
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "");
            }
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "rpc request rejected: cannot read body");
                return plain(StatusCode::BAD_REQUEST, "");
            }
            Err(_) => {
                tracing::info!(%peer, "rpc request rejected: body not received in time");
                return plain(StatusCode::REQUEST_TIMEOUT, "");
            }
        };
        let Some(slot) = shared.queue.enqueue() else {
            tracing::warn!(%peer, depth = shared.queue.depth, "rpc request rejected: work queue depth exceeded");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Work queue depth exceeded");
        };
        let thread = shared.queue.threads.clone().acquire_owned().await.expect("the thread semaphore is never closed");
        drop(slot);
        shared.queue.running.fetch_add(1, Ordering::SeqCst);
        let server = self.server.clone();
        let job = tokio::task::spawn_blocking(move || {
            let shared = &server.shared;
            let reply = handle_body(&body, wallet.as_deref(), peer, shared.handler.as_ref());
            shared.queue.running.fetch_sub(1, Ordering::SeqCst);
            drop(thread);
            reply
        });
        let reply = match job.await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(%peer, error = %e, "rpc worker failed");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "");
            }
        };
        let status = StatusCode::from_u16(reply.status).expect("replies use standard status codes");
        match reply.body {
            None => plain(status, ""),
            Some(body) => {
                let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Core's `UrlDecode`: `%XX` becomes the byte, anything else stays.
fn url_decode(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let digit = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (digit(bytes[i + 1]), digit(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decoding() {
        let cases = [
            ("w1", "w1"),
            ("my%20wallet", "my wallet"),
            ("a%2Fb", "a/b"),
            ("bad%zz", "bad%zz"),
            ("end%4", "end%4"),
            ("%41", "A"),
            ("", ""),
        ];
        for (encoded, want) in cases {
            assert_eq!(url_decode(encoded), want, "{encoded}");
        }
    }
}
