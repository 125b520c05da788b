//! A JSON-RPC client for satpool-node or Bitcoin Core.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{read_cookie, Auth};
use crate::error::RpcError;

/// Default time a call may take, head to tail. Long polls need more; use
/// [`RpcClient::call_with_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the reply did not arrive in time
    /// (see [`ClientError::is_timeout`]).
    #[error("cannot reach the rpc server at {url}")]
    Transport {
        /// The server's URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server refused the credentials (HTTP 401), after the cookie file
    /// was read again.
    #[error("the rpc server at {url} refused the credentials")]
    Unauthorized {
        /// The server's URL.
        url: String,
    },
    /// The cookie file could not be read.
    #[error("cannot read the rpc cookie file {path}")]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The cookie file holds no `user:password`.
    #[error("the rpc cookie file {path} holds no user:password")]
    CookieFormat {
        /// The cookie file.
        path: PathBuf,
    },
    /// An HTTP error without a JSON-RPC error body, such as 403, 413 or 503
    /// "Work queue depth exceeded".
    #[error("http {status} from the rpc server: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The method failed; Core's code and message.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The reply was not the JSON expected.
    #[error("cannot decode the reply to {method}")]
    Decode {
        /// The method called.
        method: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A batch reply left out a call.
    #[error("the batch reply has no answer for call {index}")]
    MissingReply {
        /// The call's position in the batch.
        index: usize,
    },
}

impl ClientError {
    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Transport { source, .. } if source.is_timeout())
    }
}

/// A reply object in either dialect.
#[derive(Debug, Deserialize)]
struct ReplyObject {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(default)]
    id: Value,
}

impl ReplyObject {
    fn into_result(self) -> Result<Value, RpcError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.result),
        }
    }
}

/// A JSON-RPC client speaking the legacy (1.0) dialect, which every Core
/// version answers.
#[derive(Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
    auth: Auth,
    timeout: Duration,
    /// The `Authorization` header last used; for a cookie, re-read on 401.
    header: Mutex<Option<HeaderValue>>,
    next_id: AtomicU64,
}

impl RpcClient {
    /// A client for `url` (e.g. `http://127.0.0.1:8332/` or
    /// `.../wallet/<name>`). Nothing is sent, and no cookie read, until the
    /// first call.
    pub fn new(url: impl Into<String>, auth: Auth) -> Result<Self, ClientError> {
        let url = url.into();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        Ok(Self { http, url, auth, timeout: DEFAULT_TIMEOUT, header: Mutex::new(None), next_id: AtomicU64::new(1) })
    }

    /// The same client with another default timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls `method` with `params` (an array, an object, or `null` for none)
    /// and decodes the result as `T`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        self.call_with_timeout(method, params, self.timeout).await
    }

    /// [`RpcClient::call`] with its own timeout, e.g. for a long poll.
    pub async fn call_with_timeout<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"method": method, "params": params_or_empty(params), "id": id});
        let (status, bytes) = self.post(&body, timeout).await?;
        let decode = |source| ClientError::Decode { method: method.to_owned(), source };
        let reply: ReplyObject = match serde_json::from_slice(&bytes) {
            Ok(reply) => reply,
            Err(_) if !status.is_success() => return Err(http_error(status, &bytes)),
            Err(source) => return Err(decode(source)),
        };
        let result = reply.into_result()?;
        serde_json::from_value(result).map_err(decode)
    }

    /// Sends several calls in one request (a JSON array) and returns each
    /// call's outcome in the order given.
    pub async fn batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, RpcError>>, ClientError> {
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(index, (method, params))| json!({"method": method, "params": params_or_empty(params.clone()), "id": index}))
            .collect();
        let (status, bytes) = self.post(&Value::Array(body), self.timeout).await?;
        let decode = |source| ClientError::Decode { method: "batch".to_owned(), source };
        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(_) if !status.is_success() => return Err(http_error(status, &bytes)),
            Err(source) => return Err(decode(source)),
        };
        // A server that fails the whole batch answers with one error object.
        if value.is_object() {
            let reply: ReplyObject = serde_json::from_value(value).map_err(decode)?;
            reply.into_result()?;
            return Err(ClientError::MissingReply { index: 0 });
        }
        let replies: Vec<ReplyObject> = serde_json::from_value(value).map_err(decode)?;
        let mut outcomes: Vec<Option<Result<Value, RpcError>>> = vec![None; calls.len()];
        for reply in replies {
            let index = reply.id.as_u64().and_then(|i| usize::try_from(i).ok());
            if let Some(slot) = index.and_then(|i| outcomes.get_mut(i)) {
                *slot = Some(reply.into_result());
            }
        }
        outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| outcome.ok_or(ClientError::MissingReply { index }))
            .collect()
    }

    /// Posts `body`; on 401 with a cookie, reads the cookie again and retries once.
    async fn post(&self, body: &Value, timeout: Duration) -> Result<(StatusCode, bytes::Bytes), ClientError> {
        let body = serde_json::to_vec(body).expect("a JSON value always serializes");
        let mut reread = false;
        loop {
            let header = self.authorization(reread)?;
            let response = self
                .http
                .post(&self.url)
                .header(AUTHORIZATION, header)
                .header(CONTENT_TYPE, "application/json")
                .timeout(timeout)
                .body(body.clone())
                .send()
                .await
                .map_err(|source| self.transport(source))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                if !reread && matches!(self.auth, Auth::Cookie { .. }) {
                    reread = true;
                    continue;
                }
                return Err(ClientError::Unauthorized { url: self.url.clone() });
            }
            let bytes = response.bytes().await.map_err(|source| self.transport(source))?;
            return Ok((status, bytes));
        }
    }

    fn transport(&self, source: reqwest::Error) -> ClientError {
        ClientError::Transport { url: self.url.clone(), source }
    }

    /// The `Authorization` header; `fresh` reads the cookie file again.
    fn authorization(&self, fresh: bool) -> Result<HeaderValue, ClientError> {
        let mut cached = self.header.lock().expect("the header lock is never poisoned");
        if let (Some(header), false) = (cached.as_ref(), fresh) {
            return Ok(header.clone());
        }
        let (user, password) = match &self.auth {
            Auth::UserPassword { user, password } => (user.clone(), password.clone()),
            Auth::Cookie { path } => read_cookie(path)
                .map_err(|source| ClientError::Cookie { path: path.clone(), source })?
                .ok_or_else(|| ClientError::CookieFormat { path: path.clone() })?,
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
        let mut header =
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 text is a valid header value");
        header.set_sensitive(true);
        *cached = Some(header.clone());
        Ok(header)
    }
}

fn params_or_empty(params: Value) -> Value {
    if params.is_null() {
        Value::Array(Vec::new())
    } else {
        params
    }
}

fn http_error(status: StatusCode, body: &[u8]) -> ClientError {
    let text = String::from_utf8_lossy(body);
    ClientError::Http {
        status: status.as_u16(),
        body: text.chars().take(200).collect::<String>().trim_end().to_owned(),
    }
}
