//! JSON-RPC 1.0 and 2.0 over one HTTP body, as Bitcoin Core's `httprpc.cpp`
//! and `rpc/request.cpp` answer it. No I/O: bytes in, status and bytes out.

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;
use serde_json::Value;

use crate::error::{ErrorCode, RpcError};
use crate::params::{Arg, Params};

/// What a method is called with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// The method name, e.g. `getblocktemplate`.
    pub method: String,
    /// The raw `params`: an array (positional) or an object (named); a
    /// request without `params` gets an empty array, as in Core.
    pub params: Value,
    /// The wallet named by a `/wallet/<name>` URI, percent-decoded.
    pub wallet: Option<String>,
    /// The peer's address, for logs.
    pub peer: SocketAddr,
}

impl Request {
    /// A request with no wallet, from an unspecified peer; for handler tests.
    pub fn new(method: impl Into<String>, params: Value) -> Self {
        Self { method: method.into(), params, wallet: None, peer: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)) }
    }

    /// The same request, addressed to `wallet`.
    pub fn with_wallet(mut self, wallet: impl Into<String>) -> Self {
        self.wallet = Some(wallet.into());
        self
    }

    /// The params mapped onto the method's declared arguments; see
    /// [`Params::new`].
    pub fn params(&self, args: &[Arg]) -> Result<Params, RpcError> {
        Params::new(&self.method, &self.params, args)
    }
}

/// The node's side of the server: answers one call.
///
/// It runs on a blocking thread (Core's RPC worker threads), so it may wait
/// on locks, disk, or a long poll. A panic is answered as `RPC_MISC_ERROR`.
pub trait RpcHandler: Send + Sync + 'static {
    /// Answers `request`; unknown methods return [`RpcError::method_not_found`].
    fn call(&self, request: &Request) -> Result<Value, RpcError>;
}

/// The JSON-RPC dialect of one request object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// 1.0/1.1: both `result` and `error` in replies, errors as HTTP errors.
    Legacy,
    /// 2.0: only the present key, errors in HTTP 200, notifications.
    V2,
}

/// The reply fields Core fills in as it parses (`JSONRPCRequest`).
#[derive(Debug, Clone)]
struct Envelope {
    id: Option<Value>,
    version: Version,
}

impl Default for Envelope {
    /// Core's `JSONRPCRequest` starts with a null id and the legacy version.
    fn default() -> Self {
        Self { id: Some(Value::Null), version: Version::Legacy }
    }
}

impl Envelope {
    fn is_notification(&self) -> bool {
        self.id.is_none() && self.version == Version::V2
    }
}

/// Core's `JSONRPCReplyObj`, fields in Core's order.
#[derive(Debug, Serialize)]
struct ReplyObject {
    #[serde(skip_serializing_if = "Option::is_none")]
    jsonrpc: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
}

impl ReplyObject {
    fn new(outcome: Result<Value, RpcError>, envelope: Envelope) -> Self {
        let legacy = envelope.version == Version::Legacy;
        let null_if_legacy = || legacy.then_some(Value::Null);
        let (result, error) = match outcome {
            Ok(result) => (Some(result), null_if_legacy()),
            Err(error) => {
                (null_if_legacy(), Some(serde_json::to_value(error).expect("an error object always serializes")))
            }
        };
        Self { jsonrpc: (!legacy).then_some("2.0"), result, error, id: envelope.id }
    }
}

/// The HTTP answer to one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON text ending in a newline; `None` for 204.
    pub body: Option<String>,
}

impl Reply {
    fn json<T: Serialize>(status: u16, value: &T) -> Self {
        let mut body = serde_json::to_string(value).expect("reply values always serialize");
        body.push('\n');
        Self { status, body: Some(body) }
    }

    fn no_content() -> Self {
        Self { status: 204, body: None }
    }
}

/// Answers one HTTP body: Core's `HTTPReq_JSONRPC` after authentication.
pub(crate) fn handle_body(body: &[u8], wallet: Option<&str>, peer: SocketAddr, handler: &dyn RpcHandler) -> Reply {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            tracing::info!(%peer, error = %e, "rpc request rejected: body is not JSON");
            return error_reply(RpcError::parse_error(), Envelope::default());
        }
    };
    match value {
        Value::Object(_) => {
            let (request, envelope) = match parse_request(&value, wallet, peer) {
                Ok(parsed) => parsed,
                Err((error, envelope)) => {
                    tracing::info!(%peer, error = %error.message, "rpc request rejected: invalid request object");
                    return error_reply(error, envelope);
                }
            };
            let outcome = execute(handler, &request);
            match (envelope.version, outcome) {
                // 1.0: a failed call is an HTTP error.
                (Version::Legacy, Err(error)) => error_reply(error, envelope),
                (Version::Legacy, Ok(result)) => Reply::json(200, &ReplyObject::new(Ok(result), envelope)),
                (Version::V2, _) if envelope.is_notification() => Reply::no_content(),
                (Version::V2, outcome) => Reply::json(200, &ReplyObject::new(outcome, envelope)),
            }
        }
        Value::Array(items) => {
            // Batches are always HTTP 200; each element is answered in its own
            // dialect, notifications not at all. Core reuses one
            // `JSONRPCRequest` across elements, so an element that fails to
            // parse may inherit the previous element's id; here each starts
            // fresh.
            let mut replies = Vec::with_capacity(items.len());
            for item in &items {
                let (outcome, envelope) = match parse_request(item, wallet, peer) {
                    Ok((request, envelope)) => (execute(handler, &request), envelope),
                    Err((error, envelope)) => (Err(error), envelope),
                };
                if !envelope.is_notification() {
                    replies.push(ReplyObject::new(outcome, envelope));
                }
            }
            // An all-notification batch gets no body; an empty batch gets `[]`
            // (Core keeps that for old clients).
            if replies.is_empty() && !items.is_empty() {
                Reply::no_content()
            } else {
                Reply::json(200, &replies)
            }
        }
        _ => {
            tracing::info!(%peer, "rpc request rejected: top level is neither object nor array");
            error_reply(RpcError::new(ErrorCode::ParseError, "Top-level object parse error"), Envelope::default())
        }
    }
}

fn execute(handler: &dyn RpcHandler, request: &Request) -> Result<Value, RpcError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| handler.call(request))).unwrap_or_else(|_| {
        tracing::error!(method = %request.method, "rpc method panicked");
        Err(RpcError::misc(format!("internal error in {}", request.method)))
    });
    if let Err(error) = &outcome {
        tracing::debug!(method = %request.method, peer = %request.peer, code = error.code.code(), error = %error.message, "rpc call failed");
    }
    outcome
}

/// Core's `JSONErrorReply`: the HTTP status follows the error code.
fn error_reply(error: RpcError, envelope: Envelope) -> Reply {
    let status = match error.code {
        ErrorCode::InvalidRequest => 400,
        ErrorCode::MethodNotFound => 404,
        _ => 500,
    };
    Reply::json(status, &ReplyObject::new(Err(error), envelope))
}

/// Core's `JSONRPCRequest::parse`; on failure, the envelope as far as it got.
fn parse_request(
    value: &Value,
    wallet: Option<&str>,
    peer: SocketAddr,
) -> Result<(Request, Envelope), (RpcError, Envelope)> {
    let mut envelope = Envelope::default();
    let Some(object) = value.as_object() else {
        return Err((RpcError::invalid_request("Invalid Request object"), envelope));
    };
    envelope.id = object.get("id").cloned();
    let fail = |message: &str, envelope: &Envelope| Err((RpcError::invalid_request(message), envelope.clone()));
    match object.get("jsonrpc") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v == "1.0" => {}
        Some(Value::String(v)) if v == "2.0" => envelope.version = Version::V2,
        Some(Value::String(_)) => return fail("JSON-RPC version not supported", &envelope),
        Some(_) => return fail("jsonrpc field must be a string", &envelope),
    }
    let method = match object.get("method") {
        None | Some(Value::Null) => return fail("Missing method", &envelope),
        Some(Value::String(method)) => method.clone(),
        Some(_) => return fail("Method must be a string", &envelope),
    };
    let params = match object.get("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(params @ (Value::Array(_) | Value::Object(_))) => params.clone(),
        Some(_) => return fail("Params must be an array or object", &envelope),
    };
    let request = Request { method, params, wallet: wallet.map(str::to_owned), peer };
    Ok((request, envelope))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Echo;

    impl RpcHandler for Echo {
        fn call(&self, request: &Request) -> Result<Value, RpcError> {
            match request.method.as_str() {
                "echo" => Ok(request.params.clone()),
                "fail" => Err(RpcError::invalid_parameter("nope")),
                "boom" => panic!("handler bug"),
                _ => Err(RpcError::method_not_found()),
            }
        }
    }

    fn answer(body: &str) -> (u16, Option<Value>) {
        let reply = handle_body(body.as_bytes(), None, SocketAddr::from(([127, 0, 0, 1], 1)), &Echo);
        if let Some(text) = &reply.body {
            assert!(text.ends_with('\n'), "Core ends replies with a newline");
        }
        (reply.status, reply.body.map(|b| serde_json::from_str(&b).unwrap()))
    }

    #[test]
    fn replies_as_core_does() {
        let cases: &[(&str, &str, u16, Option<Value>)] = &[
            (
                "1.0 ok",
                r#"{"method":"echo","params":[1],"id":7}"#,
                200,
                Some(json!({"result":[1],"error":null,"id":7})),
            ),
            ("1.0 without id keeps no id", r#"{"method":"echo"}"#, 200, Some(json!({"result":[],"error":null}))),
            (
                "1.0 explicit version",
                r#"{"jsonrpc":"1.0","method":"echo","id":"a"}"#,
                200,
                Some(json!({"result":[],"error":null,"id":"a"})),
            ),
            (
                "1.0 error is 500",
                r#"{"method":"fail","id":1}"#,
                500,
                Some(json!({"result":null,"error":{"code":-8,"message":"nope"},"id":1})),
            ),
            (
                "1.0 unknown method is 404",
                r#"{"method":"nope","id":1}"#,
                404,
                Some(json!({"result":null,"error":{"code":-32601,"message":"Method not found"},"id":1})),
            ),
            (
                "2.0 ok",
                r#"{"jsonrpc":"2.0","method":"echo","params":{"a":1},"id":1}"#,
                200,
                Some(json!({"jsonrpc":"2.0","result":{"a":1},"id":1})),
            ),
            (
                "2.0 error is 200",
                r#"{"jsonrpc":"2.0","method":"fail","id":1}"#,
                200,
                Some(json!({"jsonrpc":"2.0","error":{"code":-8,"message":"nope"},"id":1})),
            ),
            (
                "2.0 unknown method is 200",
                r#"{"jsonrpc":"2.0","method":"x","id":null}"#,
                200,
                Some(json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":null})),
            ),
            ("2.0 notification", r#"{"jsonrpc":"2.0","method":"echo"}"#, 204, None),
            ("2.0 failing notification", r#"{"jsonrpc":"2.0","method":"fail"}"#, 204, None),
            (
                "parse error",
                r#"{"method":"#,
                500,
                Some(json!({"result":null,"error":{"code":-32700,"message":"Parse error"},"id":null})),
            ),
            (
                "top level scalar",
                "3",
                500,
                Some(json!({"result":null,"error":{"code":-32700,"message":"Top-level object parse error"},"id":null})),
            ),
            (
                "missing method",
                r#"{"id":3}"#,
                400,
                Some(json!({"result":null,"error":{"code":-32600,"message":"Missing method"},"id":3})),
            ),
            (
                "2.0 missing method is still 400",
                r#"{"jsonrpc":"2.0","id":3}"#,
                400,
                Some(json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Missing method"},"id":3})),
            ),
            (
                "bad version",
                r#"{"jsonrpc":"3.0","method":"echo","id":3}"#,
                400,
                Some(json!({"result":null,"error":{"code":-32600,"message":"JSON-RPC version not supported"},"id":3})),
            ),
            (
                "method not string",
                r#"{"method":5,"id":3}"#,
                400,
                Some(json!({"result":null,"error":{"code":-32600,"message":"Method must be a string"},"id":3})),
            ),
            (
                "params scalar",
                r#"{"method":"echo","params":5,"id":3}"#,
                400,
                Some(
                    json!({"result":null,"error":{"code":-32600,"message":"Params must be an array or object"},"id":3}),
                ),
            ),
            (
                "panic is misc error",
                r#"{"method":"boom","id":3}"#,
                500,
                Some(json!({"result":null,"error":{"code":-1,"message":"internal error in boom"},"id":3})),
            ),
            ("empty batch", "[]", 200, Some(json!([]))),
            ("all-notification batch", r#"[{"jsonrpc":"2.0","method":"echo"}]"#, 204, None),
            (
                "batch",
                r#"[{"method":"echo","id":1},{"jsonrpc":"2.0","method":"echo"},{"method":"fail","id":2},{"jsonrpc":"2.0","method":"nope","id":3},5]"#,
                200,
                Some(json!([
                    {"result":[],"error":null,"id":1},
                    {"result":null,"error":{"code":-8,"message":"nope"},"id":2},
                    {"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":3},
                    {"result":null,"error":{"code":-32600,"message":"Invalid Request object"},"id":null},
                ])),
            ),
        ];
        for (name, body, status, want) in cases {
            let (got_status, got) = answer(body);
            assert_eq!((got_status, &got), (*status, want), "{name}");
        }
    }

    #[test]
    fn legacy_reply_keeps_core_field_order() {
        let reply = handle_body(br#"{"method":"echo","id":1}"#, None, SocketAddr::from(([127, 0, 0, 1], 1)), &Echo);
        assert_eq!(reply.body.as_deref(), Some("{\"result\":[],\"error\":null,\"id\":1}\n"));
    }

    proptest::proptest! {
        /// The request decoder: any bytes get a well-formed answer, no panic.
        #[test]
        fn any_body_gets_an_answer(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let reply = handle_body(&body, None, SocketAddr::from(([127, 0, 0, 1], 1)), &Echo);
            match reply.body {
                None => proptest::prop_assert_eq!(reply.status, 204),
                Some(text) => {
                    proptest::prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
                }
            }
        }

        /// Requests built from JSON fragments: the id comes back unchanged.
        #[test]
        fn id_is_echoed(id in proptest::prelude::any::<i64>(), method in "[a-z]{0,6}", v2 in proptest::prelude::any::<bool>()) {
            let mut request = json!({"method": method, "params": [], "id": id});
            if v2 {
                request["jsonrpc"] = json!("2.0");
            }
            let reply = handle_body(request.to_string().as_bytes(), None, SocketAddr::from(([127, 0, 0, 1], 1)), &Echo);
            let body: Value = serde_json::from_str(&reply.body.unwrap()).unwrap();
            proptest::prop_assert_eq!(&body["id"], &json!(id));
        }
    }
}
