//! The server and the client over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use satpool_rpc::{
    Arg, Auth, ClientError, ErrorCode, Request, RpcClient, RpcError, RpcHandler, RpcServer, ServerConfig,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// `echo`, `add`, `fail`, `wallet`, and `block`, which waits for the test to
/// release it.
struct TestNode {
    started: mpsc::UnboundedSender<()>,
    release: Mutex<std_mpsc::Receiver<()>>,
}

impl RpcHandler for TestNode {
    fn call(&self, request: &Request) -> Result<Value, RpcError> {
        match request.method.as_str() {
            "echo" => Ok(request.params.clone()),
            "add" => {
                let params = request.params(&[Arg::Required("a"), Arg::Required("b")])?;
                Ok(json!(params.required::<u64>(0)? + params.required::<u64>(1)?))
            }
            "fail" => Err(RpcError::invalid_parameter("failure requested")),
            "wallet" => Ok(json!(request.wallet)),
            "block" => {
                // The test may have gone; either way, carry on.
                let _ = self.started.send(());
                let _ = self.release.lock().unwrap().recv();
                Ok(json!("released"))
            }
            _ => Err(RpcError::method_not_found()),
        }
    }
}

struct Harness {
    addr: SocketAddr,
    server: RpcServer,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    started: mpsc::UnboundedReceiver<()>,
    release: std_mpsc::Sender<()>,
}

impl Harness {
    async fn start(config: ServerConfig) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).await
    }

    async fn start_on(listener: TcpListener, config: ServerConfig) -> Self {
        let addr = listener.local_addr().unwrap();
        let (started_tx, started) = mpsc::unbounded_channel();
        let (release, release_rx) = std_mpsc::channel();
        let handler = Arc::new(TestNode { started: started_tx, release: Mutex::new(release_rx) });
        let server = RpcServer::new(config, handler);
        let (stop, stopped) = oneshot::channel::<()>();
        // The cookie exists once `start` returns.
        let serving = server
            .clone()
            .start(listener, async {
                let _ = stopped.await;
            })
            .unwrap();
        let task = tokio::spawn(serving);
        Self { addr, server, stop: Some(stop), task, started, release }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn client(&self) -> RpcClient {
        RpcClient::new(self.url(), user_pass()).unwrap()
    }

    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap();
    }
}

fn user_pass() -> Auth {
    Auth::user_password("user", "pass")
}

fn config() -> ServerConfig {
    ServerConfig::new(user_pass())
}

/// Polls until `cond` holds; the test's own timeout bounds it.
async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends raw bytes, reads until the server closes; returns (status, head, body).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

async fn post(url: &str, auth: Option<&str>, body: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().post(url).body(body.to_owned());
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn cookie_is_written_private_and_removed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    let harness = Harness::start(ServerConfig::new(Auth::cookie_in(dir.path()))).await;
    // The cookie is written before the first accept; a call proves it is there.
    let client = RpcClient::new(harness.url(), Auth::cookie_in(dir.path())).unwrap();
    let sum: u64 = client.call("add", json!([2, 3])).await.unwrap();
    assert_eq!(sum, 5);

    let text = std::fs::read_to_string(&cookie).unwrap();
    let secret = text.strip_prefix("__cookie__:").expect("Core's cookie user");
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    assert_eq!(mode(&cookie), 0o600);

    let (status, _, _) = post(&harness.url(), Some(&basic("__cookie__", "wrong")), "{}").await;
    assert_eq!(status, 401);

    harness.shutdown().await;
    assert!(!cookie.exists(), "cookie removed at shutdown");
    assert!(!dir.path().join(".cookie.tmp").exists());
}

#[tokio::test]
async fn client_rereads_the_cookie_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Harness::start(ServerConfig::new(Auth::cookie_in(dir.path()))).await;
    let addr = first.addr;
    let client = RpcClient::new(first.url(), Auth::cookie_in(dir.path())).unwrap();
    let _: Value = client.call("echo", json!([])).await.unwrap();
    first.shutdown().await;

    // Same port, new cookie: the client's cached header is refused once.
    let second =
        Harness::start_on(TcpListener::bind(addr).await.unwrap(), ServerConfig::new(Auth::cookie_in(dir.path()))).await;
    let echoed: Value = client.call("echo", json!([1])).await.unwrap();
    assert_eq!(echoed, json!([1]));
    second.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401() {
    let harness = Harness::start(config()).await;
    let body = r#"{"method":"echo","id":1}"#;
    for (name, auth) in [
        ("missing", None),
        ("wrong password", Some(basic("user", "nope"))),
        ("wrong user", Some(basic("nobody", "pass"))),
        ("not basic", Some("Bearer x".to_owned())),
    ] {
        let (status, headers, _) = post(&harness.url(), auth.as_deref(), body).await;
        assert_eq!(status, 401, "{name}");
        assert_eq!(headers["www-authenticate"], "Basic realm=\"jsonrpc\"", "{name}");
    }
    let (status, _, _) = post(&harness.url(), Some(&basic("user", "pass")), body).await;
    assert_eq!(status, 200);

    let client = RpcClient::new(harness.url(), Auth::user_password("user", "bad")).unwrap();
    let err = client.call::<Value>("echo", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    harness.shutdown().await;
}

#[tokio::test]
async fn replies_have_core_shapes_and_statuses() {
    let harness = Harness::start(config()).await;
    let auth = basic("user", "pass");
    let wrong_type = "Wrong type passed:\n{\n    \"Position 1 (a)\": \"JSON value of type string is not of expected type number\"\n}";
    let cases: Vec<(&str, &str, &str, u16, Option<Value>)> = vec![
        (
            "1.0 result",
            "/",
            r#"{"method":"add","params":[1,2],"id":1}"#,
            200,
            Some(json!({"result":3,"error":null,"id":1})),
        ),
        (
            "1.0 named params",
            "/",
            r#"{"method":"add","params":{"b":2,"a":5},"id":1}"#,
            200,
            Some(json!({"result":7,"error":null,"id":1})),
        ),
        (
            "2.0 result",
            "/",
            r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":"x"}"#,
            200,
            Some(json!({"jsonrpc":"2.0","result":3,"id":"x"})),
        ),
        (
            "1.0 error is 500",
            "/",
            r#"{"method":"fail","id":1}"#,
            500,
            Some(json!({"result":null,"error":{"code":-8,"message":"failure requested"},"id":1})),
        ),
        (
            "2.0 error is 200",
            "/",
            r#"{"jsonrpc":"2.0","method":"fail","id":1}"#,
            200,
            Some(json!({"jsonrpc":"2.0","error":{"code":-8,"message":"failure requested"},"id":1})),
        ),
        (
            "method not found is 404",
            "/",
            r#"{"method":"nope","id":1}"#,
            404,
            Some(json!({"result":null,"error":{"code":-32601,"message":"Method not found"},"id":1})),
        ),
        (
            "parse error is 500",
            "/",
            r#"{"method":"#,
            500,
            Some(json!({"result":null,"error":{"code":-32700,"message":"Parse error"},"id":null})),
        ),
        (
            "invalid request is 400",
            "/",
            r#"{"params":[],"id":1}"#,
            400,
            Some(json!({"result":null,"error":{"code":-32600,"message":"Missing method"},"id":1})),
        ),
        (
            "wrong param type",
            "/",
            r#"{"method":"add","params":["1",2],"id":1}"#,
            500,
            Some(json!({"result":null,"error":{"code":-3,"message":wrong_type},"id":1})),
        ),
        (
            "unknown named param",
            "/",
            r#"{"method":"add","params":{"a":1,"b":2,"c":3},"id":1}"#,
            500,
            Some(json!({"result":null,"error":{"code":-8,"message":"Unknown named parameter c"},"id":1})),
        ),
        (
            "too few params",
            "/",
            r#"{"method":"add","params":[1],"id":1}"#,
            500,
            Some(json!({"result":null,"error":{"code":-1,"message":"add a b"},"id":1})),
        ),
        ("2.0 notification", "/", r#"{"jsonrpc":"2.0","method":"echo"}"#, 204, None),
        (
            "batch",
            "/",
            r#"[{"method":"add","params":[1,1],"id":1},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"fail","id":2}]"#,
            200,
            Some(json!([
                {"result":2,"error":null,"id":1},
                {"jsonrpc":"2.0","error":{"code":-8,"message":"failure requested"},"id":2},
            ])),
        ),
        ("all-notification batch", "/", r#"[{"jsonrpc":"2.0","method":"echo"}]"#, 204, None),
        ("empty batch", "/", "[]", 200, Some(json!([]))),
        (
            "wallet path",
            "/wallet/my%20w",
            r#"{"method":"wallet","id":1}"#,
            200,
            Some(json!({"result":"my w","error":null,"id":1})),
        ),
        ("no wallet", "/", r#"{"method":"wallet","id":1}"#, 200, Some(json!({"result":null,"error":null,"id":1}))),
    ];
    for (name, path, body, status, want) in cases {
        let url = format!("http://{}{path}", harness.addr);
        let (got_status, headers, text) = post(&url, Some(&auth), body).await;
        assert_eq!(got_status, status, "{name}: {text}");
        match want {
            None => assert!(text.is_empty(), "{name}: no body, got {text:?}"),
            Some(want) => {
                assert_eq!(headers["content-type"], "application/json", "{name}");
                let got: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(got, want, "{name}");
            }
        }
    }
    harness.shutdown().await;
}

#[tokio::test]
async fn http_level_rejections() {
    let harness = Harness::start(config()).await;
    let auth = basic("user", "pass");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET is 405", format!("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"),
            405, "JSONRPC server handles only POST requests"),
        ("PUT is 405", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
            405, "JSONRPC server handles only POST requests"),
        ("unknown path is 404", format!("POST /rest HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
            404, ""),
        ("100 MB announced is 413", format!("POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 100000000\r\n\r\n"),
            413, ""),
        ("huge head is 431", format!("POST / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(20_000)),
            431, ""),
        ("odd content type is accepted", format!("POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: text/plain\r\nContent-Length: 24\r\nConnection: close\r\n\r\n{{\"method\":\"echo\",\"id\":1}}"),
            200, "{\"result\":[],\"error\":null,\"id\":1}\n"),
    ];
    for (name, request, status, body) in cases {
        let (got_status, head, got_body) = raw(harness.addr, request.as_bytes()).await;
        assert_eq!(got_status, status, "{name}: {head}");
        assert_eq!(got_body, body, "{name}");
    }
    harness.shutdown().await;
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_413() {
    let mut config = config();
    config.max_body_bytes = 1024;
    let harness = Harness::start(config).await;
    let auth = basic("user", "pass");
    // Chunked, so the size is unknown until the server has read past the limit.
    let chunk = "x".repeat(4096);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
        chunk.len()
    );
    let (status, _, _) = raw(harness.addr, request.as_bytes()).await;
    assert_eq!(status, 413);
    // A body within the limit still works.
    let (status, _, _) = post(&harness.url(), Some(&auth), r#"{"method":"echo","id":1}"#).await;
    assert_eq!(status, 200);
    harness.shutdown().await;
}

#[tokio::test]
async fn full_work_queue_is_503() {
    let mut config = config();
    config.threads = 1;
    config.work_queue = 1;
    let mut harness = Harness::start(config).await;
    let client = Arc::new(harness.client());

    // One call runs (and blocks), one waits in the queue ...
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.call::<String>("block", json!([])).await }
    });
    harness.started.recv().await.unwrap();
    let queued = tokio::spawn({
        let client = client.clone();
        async move { client.call::<String>("block", json!([])).await }
    });
    let server = harness.server.clone();
    until(|| server.queued() == 1).await;
    assert_eq!(harness.server.running(), 1);

    // ... so the next is refused as Core refuses it.
    let err = client.call::<Value>("echo", json!([])).await.unwrap_err();
    match err {
        ClientError::Http { status, body } => {
            assert_eq!(status, 503);
            assert_eq!(body, "Work queue depth exceeded");
        }
        other => panic!("expected 503, got {other:?}"),
    }

    harness.release.send(()).unwrap();
    harness.release.send(()).unwrap();
    assert_eq!(running.await.unwrap().unwrap(), "released");
    assert_eq!(queued.await.unwrap().unwrap(), "released");
    let echoed: Value = client.call("echo", json!([1])).await.unwrap();
    assert_eq!(echoed, json!([1]));
    harness.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_calls_in_progress_finish() {
    let mut harness = Harness::start(config()).await;
    let client = Arc::new(harness.client());
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.call::<String>("block", json!([])).await }
    });
    harness.started.recv().await.unwrap();

    harness.stop.take().unwrap().send(()).unwrap();
    harness.release.send(()).unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), "released");
    harness.task.await.unwrap();

    let err = client.call::<Value>("echo", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn client_calls_batches_and_errors() {
    let harness = Harness::start(config()).await;
    let client = harness.client();

    let sum: u64 = client.call("add", json!({"a": 40, "b": 2})).await.unwrap();
    assert_eq!(sum, 42);
    let echoed: Vec<u8> = client.call("echo", Value::Null).await.unwrap();
    assert!(echoed.is_empty());

    let err = client.call::<Value>("fail", json!([])).await.unwrap_err();
    match err {
        ClientError::Rpc(e) => {
            assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidParameter, "failure requested"))
        }
        other => panic!("expected an rpc error, got {other:?}"),
    }
    let err = client.call::<Value>("nope", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Rpc(RpcError { code: ErrorCode::MethodNotFound, .. })), "{err:?}");
    let err = client.call::<u64>("echo", json!(["not a number"])).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");

    let outcomes = client
        .batch(&[("add", json!([1, 2])), ("fail", json!([])), ("nope", json!([])), ("echo", json!({"k": 1}))])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes[0], Ok(json!(3)));
    assert_eq!(outcomes[1].as_ref().unwrap_err().code, ErrorCode::InvalidParameter);
    assert_eq!(outcomes[2].as_ref().unwrap_err().code, ErrorCode::MethodNotFound);
    assert_eq!(outcomes[3], Ok(json!({"k": 1})));

    let wallet = RpcClient::new(format!("{}wallet/w1", harness.url()), user_pass()).unwrap();
    let name: Option<String> = wallet.call("wallet", json!([])).await.unwrap();
    assert_eq!(name.as_deref(), Some("w1"));
    harness.shutdown().await;
}

#[tokio::test]
async fn unwritable_cookie_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler =
        Arc::new(TestNode { started: mpsc::unbounded_channel().0, release: Mutex::new(std_mpsc::channel().1) });
    let config = ServerConfig::new(Auth::cookie_in(dir.path().join("missing")));
    let err = satpool_rpc::serve(listener, config, handler, std::future::pending()).await.unwrap_err();
    assert!(matches!(err, satpool_rpc::ServeError::Cookie { .. }), "{err:?}");
}

#[tokio::test]
async fn client_reports_transport_and_cookie_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = RpcClient::new(format!("http://{addr}/"), user_pass()).unwrap();
    let err = client.call::<Value>("echo", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let client = RpcClient::new(format!("http://{addr}/"), Auth::cookie_in(dir.path())).unwrap();
    let err = client.call::<Value>("echo", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Cookie { .. }), "{err:?}");
}
