//! Stratum V1 messages: one JSON object per line, parsed into typed values
//! and written back as one `\n`-terminated line.
//!
//! A line is either a [`Request`] (it has a `method`; server-to-client
//! notifications are requests with a null id) or a [`Response`] (it has a
//! `result` or an `error`). Ids are kept exactly as received. A response's
//! `result` stays JSON, because only the sender of the request knows what it
//! asked: [`SubscribeResult`] and [`ConfigureResult`] read and write the two
//! structured ones.
//!
//! Hex fields are decoded on parse (either case accepted, lower case
//! written), and the previous hash of `mining.notify` is converted from
//! Stratum's word order to a [`BlockHash`] in internal order, so nothing
//! downstream handles the swapped form.

use core::fmt;

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use serde_json::{Map, Number, Value};

use crate::difficulty::{DifficultyError, ShareDifficulty};
use crate::extranonce::{Extranonce1, Extranonce2, ExtranonceError, MAX_EXTRANONCE_LEN};
use crate::header::VersionMask;
use crate::prevhash::{prev_hash_from_stratum, prev_hash_to_stratum};

/// A sensible default for the longest line a reader accepts (enforcing it
/// is the reader's job). Client lines are a few hundred bytes, but a
/// `mining.notify` whose coinbase pays many PPLNS outputs can run to tens of
/// kilobytes.
pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;

const SUBSCRIBE: &str = "mining.subscribe";
const AUTHORIZE: &str = "mining.authorize";
const CONFIGURE: &str = "mining.configure";
const SUGGEST_DIFFICULTY: &str = "mining.suggest_difficulty";
const EXTRANONCE_SUBSCRIBE: &str = "mining.extranonce.subscribe";
const SUBMIT: &str = "mining.submit";
const SET_DIFFICULTY: &str = "mining.set_difficulty";
const NOTIFY: &str = "mining.notify";
const SET_EXTRANONCE: &str = "mining.set_extranonce";
const RECONNECT: &str = "client.reconnect";
const SHOW_MESSAGE: &str = "client.show_message";

/// The BIP 310 extension name for version rolling.
pub const VERSION_ROLLING: &str = "version-rolling";
const VERSION_ROLLING_MASK: &str = "version-rolling.mask";
const VERSION_ROLLING_MIN_BIT_COUNT: &str = "version-rolling.min-bit-count";
const MINIMUM_DIFFICULTY_VALUE: &str = "minimum-difficulty.value";

// ---------------------------------------------------------------- errors

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    /// Missing.
    #[error("is missing")]
    Missing,
    /// Not a JSON string.
    #[error("is not a string")]
    NotString,
    /// Not a JSON number.
    #[error("is not a number")]
    NotNumber,
    /// Not a non-negative integer in range.
    #[error("is not an integer from 0 to {max}")]
    NotInteger {
        /// The largest value allowed.
        max: u64,
    },
    /// Not `true` or `false`.
    #[error("is not a boolean")]
    NotBool,
    /// Not a JSON array.
    #[error("is not an array")]
    NotArray,
    /// Not a JSON object.
    #[error("is not an object")]
    NotObject,
    /// Not an even number of hex digits.
    #[error("is not hex")]
    NotHex,
    /// Hex of the wrong length.
    #[error("has {got} hex digits, expected {expected}")]
    HexLength {
        /// Hex digits expected.
        expected: usize,
        /// Hex digits found.
        got: usize,
    },
    /// Not a valid difficulty.
    #[error("{0}")]
    Difficulty(DifficultyError),
    /// Not a valid extranonce.
    #[error("{0}")]
    Extranonce(ExtranonceError),
}

/// Why a line is not a Stratum message.
///
/// Each variant's message names the method, the parameter and what is wrong
/// with it; the field's own error is part of that message (and kept as a
/// field to match on) rather than a separate cause.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("line is empty")]
    Empty,
    /// Not JSON.
    #[error("line is not JSON: {0}")]
    Json(serde_json::Error),
    /// JSON, but not an object.
    #[error("line is not a JSON object")]
    NotAnObject,
    /// An id that is an array, an object or a boolean.
    #[error("id is {0}, not a number, a string or null")]
    BadId(&'static str),
    /// A method that is not a string.
    #[error("method is not a string")]
    MethodNotString,
    /// Neither method nor result nor error.
    #[error("object has no method, result or error")]
    NotAMessage,
    /// A known method whose params are not an array.
    #[error("{method}: params are not an array")]
    ParamsNotArray {
        /// The method.
        method: &'static str,
    },
    /// A known method with the wrong number of params.
    #[error("{method}: {got} params, expected {expected}")]
    ParamCount {
        /// The method.
        method: &'static str,
        /// The counts allowed, in words.
        expected: &'static str,
        /// The count received.
        got: usize,
    },
    /// One param of a known method is wrong.
    #[error("{method}: param {index} ({name}) {error}")]
    Param {
        /// The method.
        method: &'static str,
        /// Its position, from 0.
        index: usize,
        /// Its name.
        name: &'static str,
        /// What is wrong.
        error: FieldError,
    },
    /// A field of a structured param or result is wrong.
    #[error("{context}: {name} {error}")]
    Field {
        /// The method or result it belongs to.
        context: &'static str,
        /// The field.
        name: &'static str,
        /// What is wrong.
        error: FieldError,
    },
    /// An error member that is neither `[code, message, data]` nor
    /// `{"code", "message"}`.
    #[error("error is neither [code, message, data] nor {{\"code\", \"message\"}}")]
    BadErrorField,
}

// ---------------------------------------------------------------- ids and codes

/// A JSON-RPC id, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Id {
    /// `null`: notifications.
    #[default]
    Null,
    /// A number, in its JSON form.
    Number(Number),
    /// A string.
    String(String),
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        Id::Number(n.into())
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Id {
        Id::String(s.to_owned())
    }
}

impl Id {
    fn from_json(value: Option<Value>) -> Result<Id, ParseError> {
        match value {
            None | Some(Value::Null) => Ok(Id::Null),
            Some(Value::Number(n)) => Ok(Id::Number(n)),
            Some(Value::String(s)) => Ok(Id::String(s)),
            Some(Value::Bool(_)) => Err(ParseError::BadId("a boolean")),
            Some(Value::Array(_)) => Err(ParseError::BadId("an array")),
            Some(Value::Object(_)) => Err(ParseError::BadId("an object")),
        }
    }

    fn to_json(&self) -> String {
        match self {
            Id::Null => "null".to_owned(),
            Id::Number(n) => n.to_string(),
            Id::String(s) => json_string(s),
        }
    }
}

/// The rejection codes every Stratum V1 client knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 20: other or unknown (also the answer to an unknown method).
    Other,
    /// 21: job not found (stale).
    JobNotFound,
    /// 22: duplicate share.
    Duplicate,
    /// 23: low difficulty share.
    LowDifficulty,
    /// 24: unauthorized worker.
    UnauthorizedWorker,
    /// 25: not subscribed.
    NotSubscribed,
    /// Any other code a server sent.
    Unrecognised(i64),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::Other => 20,
            ErrorCode::JobNotFound => 21,
            ErrorCode::Duplicate => 22,
            ErrorCode::LowDifficulty => 23,
            ErrorCode::UnauthorizedWorker => 24,
            ErrorCode::NotSubscribed => 25,
            ErrorCode::Unrecognised(code) => code,
        }
    }

    /// The code for a number: 20 to 25 map to their names.
    pub fn from_code(code: i64) -> ErrorCode {
        match code {
            20 => ErrorCode::Other,
            21 => ErrorCode::JobNotFound,
            22 => ErrorCode::Duplicate,
            23 => ErrorCode::LowDifficulty,
            24 => ErrorCode::UnauthorizedWorker,
            25 => ErrorCode::NotSubscribed,
            other => ErrorCode::Unrecognised(other),
        }
    }

    /// The conventional message for the code.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::Other | ErrorCode::Unrecognised(_) => "Other/Unknown",
            ErrorCode::JobNotFound => "Job not found",
            ErrorCode::Duplicate => "Duplicate share",
            ErrorCode::LowDifficulty => "Low difficulty share",
            ErrorCode::UnauthorizedWorker => "Unauthorized worker",
            ErrorCode::NotSubscribed => "Not subscribed",
        }
    }
}

/// An error reply: `[code, "message", null]` on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The code.
    pub code: ErrorCode,
    /// The text shown to the miner's operator.
    pub message: String,
}

impl ErrorReply {
    /// A reply with the code's conventional message.
    pub fn new(code: ErrorCode) -> ErrorReply {
        ErrorReply { code, message: code.default_message().to_owned() }
    }
}

// ---------------------------------------------------------------- messages

/// One line: a call or notification, or a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// It has a method.
    Request(Request),
    /// It has a result or an error.
    Response(Response),
}

impl Message {
    /// Parses one line (the trailing `\n` or `\r\n` may be present or not).
    pub fn parse(line: &str) -> Result<Message, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let value: Value = serde_json::from_str(line).map_err(ParseError::Json)?;
        let Value::Object(mut object) = value else {
            return Err(ParseError::NotAnObject);
        };
        let id = Id::from_json(object.remove("id"))?;
        match object.remove("method") {
            Some(Value::String(method)) => {
                let method = Method::from_json(method, object.remove("params"))?;
                Ok(Message::Request(Request { id, method }))
            }
            Some(Value::Null) | None => {
                let result = object.remove("result");
                let error = object.remove("error");
                if result.is_none() && error.is_none() {
                    return Err(ParseError::NotAMessage);
                }
                let outcome = match error {
                    None | Some(Value::Null) => Ok(result.unwrap_or(Value::Null)),
                    Some(error) => Err(parse_error_reply(error)?),
                };
                Ok(Message::Response(Response { id, outcome }))
            }
            Some(_) => Err(ParseError::MethodNotString),
        }
    }

    /// The line, `\n`-terminated.
    pub fn to_line(&self) -> String {
        match self {
            Message::Request(request) => request.to_line(),
            Message::Response(response) => response.to_line(),
        }
    }
}

/// A method call (with an id) or a notification (id null), either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id, kept as received; [`Id::Null`] for notifications.
    pub id: Id,
    /// The method and its params.
    pub method: Method,
}

impl Request {
    /// A notification: a request with a null id.
    pub fn notification(method: Method) -> Request {
        Request { id: Id::Null, method }
    }

    /// The line, `\n`-terminated.
    pub fn to_line(&self) -> String {
        let method = json_string(self.method.name());
        let params = self.method.params_json();
        format!("{{\"id\":{},\"method\":{method},\"params\":{params}}}\n", self.id.to_json())
    }
}

/// The methods of Stratum V1 with their params, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// `mining.subscribe [user_agent?, session_id?]`.
    Subscribe(Subscribe),
    /// `mining.authorize [user, password?]`.
    Authorize(Authorize),
    /// `mining.configure [extensions, params]` (BIP 310).
    Configure(Configure),
    /// `mining.suggest_difficulty [difficulty]`.
    SuggestDifficulty(ShareDifficulty),
    /// `mining.extranonce.subscribe []`.
    ExtranonceSubscribe,
    /// `mining.submit [worker, job_id, extranonce2, ntime, nonce, version_bits?]`.
    Submit(Submit),
    /// `mining.set_difficulty [difficulty]`.
    SetDifficulty(ShareDifficulty),
    /// `mining.notify` with its nine params.
    Notify(Notify),
    /// `mining.set_extranonce [extranonce1, extranonce2_size]`.
    SetExtranonce(SetExtranonce),
    /// `client.reconnect [host?, port?, wait?]`.
    Reconnect(Reconnect),
    /// `client.show_message [text]`.
    ShowMessage(String),
    /// Any other method, with its params as sent (`null` when absent), so a
    /// server can answer it with code 20.
    Unknown {
        /// The method name.
        method: String,
        /// The params.
        params: Value,
    },
}

/// `mining.subscribe` params.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe {
    /// The miner's name and version, e.g. `cgminer/4.12.0`.
    pub user_agent: Option<String>,
    /// A session to resume (the extranonce1 the miner had).
    pub session_id: Option<String>,
}

/// `mining.authorize` params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorize {
    /// The worker name, usually `account.worker`.
    pub user: String,
    /// The password; many clients send `x`, some none.
    pub password: Option<String>,
}

/// `mining.configure` params (BIP 310), the known extension params typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Configure {
    /// The extensions asked for, in order (`version-rolling`,
    /// `minimum-difficulty`, `subscribe-extranonce`, …).
    pub extensions: Vec<String>,
    /// `version-rolling.mask`: the bits the miner wants to roll.
    pub version_rolling_mask: Option<VersionMask>,
    /// `version-rolling.min-bit-count`.
    pub version_rolling_min_bit_count: Option<u32>,
    /// `minimum-difficulty.value`.
    pub minimum_difficulty: Option<ShareDifficulty>,
    /// The other params, as sent (never one of the keys above).
    pub other_params: Map<String, Value>,
}

impl Configure {
    /// Whether the miner asked for `extension`.
    pub fn wants(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }
}

/// `mining.submit` params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// The worker name, as authorized.
    pub worker: String,
    /// The job.
    pub job_id: String,
    /// The miner's extranonce2.
    pub extranonce2: Extranonce2,
    /// The header time (8 hex digits, big-endian, on the wire).
    pub ntime: u32,
    /// The nonce (8 hex digits, big-endian, on the wire).
    pub nonce: u32,
    /// The rolled version bits, when version rolling was negotiated.
    pub version_bits: Option<u32>,
}

/// `mining.notify` params: a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The job id.
    pub job_id: String,
    /// The previous block hash, in internal order (converted to and from
    /// Stratum's word-swapped order at the wire).
    pub prev_hash: BlockHash,
    /// The coinbase before the extranonces.
    pub coinb1: Vec<u8>,
    /// The coinbase after the extranonces.
    pub coinb2: Vec<u8>,
    /// The coinbase's merkle branch, internal byte order (never reversed).
    pub merkle_branch: Vec<TxMerkleNode>,
    /// The block version before rolling.
    pub version: Version,
    /// The network target, compact.
    pub nbits: CompactTarget,
    /// The header time to start from.
    pub ntime: u32,
    /// Whether earlier jobs are void (a new block).
    pub clean_jobs: bool,
}

/// `mining.set_extranonce` params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetExtranonce {
    /// The new extranonce1.
    pub extranonce1: Extranonce1,
    /// The new extranonce2 size in bytes.
    pub extranonce2_size: usize,
}

/// `client.reconnect` params; all optional (none: reconnect to the same place).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconnect {
    /// Host to connect to.
    pub host: Option<String>,
    /// Port to connect to.
    pub port: Option<u16>,
    /// Seconds to wait before reconnecting.
    pub wait_secs: Option<u64>,
}

/// A reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request answered, as it came.
    pub id: Id,
    /// The result, or the error.
    pub outcome: Result<Value, ErrorReply>,
}

impl Response {
    /// A successful reply.
    pub fn ok(id: Id, result: Value) -> Response {
        Response { id, outcome: Ok(result) }
    }

    /// A rejection with the code's conventional message.
    pub fn reject(id: Id, code: ErrorCode) -> Response {
        Response { id, outcome: Err(ErrorReply::new(code)) }
    }

    /// A rejection with a message of one's own.
    pub fn error(id: Id, code: ErrorCode, message: impl Into<String>) -> Response {
        Response { id, outcome: Err(ErrorReply { code, message: message.into() }) }
    }

    /// The answer to a method the server does not know: code 20.
    pub fn unknown_method(id: Id, method: &str) -> Response {
        Response::error(id, ErrorCode::Other, format!("Unknown method {method}"))
    }

    /// The line, `\n`-terminated: `{"id":…,"result":…,"error":null}` or
    /// `{"id":…,"result":null,"error":[code,"message",null]}`.
    pub fn to_line(&self) -> String {
        let id = self.id.to_json();
        match &self.outcome {
            Ok(result) => format!("{{\"id\":{id},\"result\":{result},\"error\":null}}\n"),
            Err(error) => format!(
                "{{\"id\":{id},\"result\":null,\"error\":[{},{},null]}}\n",
                error.code.code(),
                json_string(&error.message)
            ),
        }
    }
}

// ---------------------------------------------------------------- structured results

/// The result of `mining.subscribe`:
/// `[[["mining.set_difficulty", id], ["mining.notify", id]], extranonce1, extranonce2_size]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeResult {
    /// `(method, subscription id)` pairs.
    pub subscriptions: Vec<(String, String)>,
    /// The session's extranonce1.
    pub extranonce1: Extranonce1,
    /// The extranonce2 size in bytes.
    pub extranonce2_size: usize,
}

impl SubscribeResult {
    /// The usual shape: both subscriptions under one id.
    pub fn new(subscription_id: &str, extranonce1: Extranonce1, extranonce2_size: usize) -> SubscribeResult {
        SubscribeResult {
            subscriptions: vec![
                (SET_DIFFICULTY.to_owned(), subscription_id.to_owned()),
                (NOTIFY.to_owned(), subscription_id.to_owned()),
            ],
            extranonce1,
            extranonce2_size,
        }
    }

    /// As JSON, for [`Response::ok`].
    pub fn to_value(&self) -> Value {
        let subscriptions =
            self.subscriptions.iter().map(|(m, id)| Value::from(vec![m.clone(), id.clone()])).collect::<Vec<_>>();
        Value::Array(vec![
            Value::Array(subscriptions),
            Value::String(self.extranonce1.to_string()),
            Value::from(self.extranonce2_size as u64),
        ])
    }

    /// Reads a subscribe result. Also accepts a single
    /// `["mining.notify", id]` pair in place of the list, as some pools send.
    pub fn from_value(value: &Value) -> Result<SubscribeResult, ParseError> {
        const CONTEXT: &str = "mining.subscribe result";
        let field = |name, error| ParseError::Field { context: CONTEXT, name, error };
        let items = value.as_array().ok_or(field("result", FieldError::NotArray))?;
        if items.len() < 3 {
            return Err(field("result", FieldError::Missing));
        }
        let pair = |v: &Value| -> Option<(String, String)> {
            match v.as_array()?.as_slice() {
                [Value::String(m), id] => Some((m.clone(), id.as_str().map_or_else(|| id.to_string(), str::to_owned))),
                _ => None,
            }
        };
        let subs = items[0].as_array().ok_or(field("subscriptions", FieldError::NotArray))?;
        let subscriptions = if let Some(single) = pair(&items[0]) {
            vec![single]
        } else {
            subs.iter()
                .map(|s| pair(s).ok_or(field("subscriptions", FieldError::NotArray)))
                .collect::<Result<_, _>>()?
        };
        let extranonce1 = items[1]
            .as_str()
            .ok_or(field("extranonce1", FieldError::NotString))?
            .parse::<Extranonce1>()
            .map_err(|e| field("extranonce1", FieldError::Extranonce(e)))?;
        let extranonce2_size = extranonce_size(&items[2]).map_err(|e| field("extranonce2_size", e))?;
        Ok(SubscribeResult { subscriptions, extranonce1, extranonce2_size })
    }
}

/// The result of `mining.configure` (BIP 310).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigureResult {
    /// `Some(mask)`: `"version-rolling": true` with this mask. `None`: not
    /// granted (put `("version-rolling", false)` in `answers` to say so).
    pub version_rolling: Option<VersionMask>,
    /// The answers for the other extensions, in order.
    pub answers: Vec<(String, bool)>,
}

impl ConfigureResult {
    /// The server's answer: version rolling granted with `server_mask &
    /// miner_mask` (a miner that sends no mask takes the server's) unless
    /// that is empty; every other extension answered `false`, as BIP 310
    /// has a server do for extensions it does not support. The miner's
    /// `min-bit-count` is advisory (BIP 310), so a smaller mask is still
    /// granted. A pool that supports more overwrites the answers it wants.
    pub fn answer(request: &Configure, server_mask: VersionMask) -> ConfigureResult {
        let mut result = ConfigureResult::default();
        for extension in &request.extensions {
            if result.answers.iter().any(|(e, _)| e == extension) {
                continue;
            }
            if extension == VERSION_ROLLING {
                if result.version_rolling.is_some() {
                    continue;
                }
                let granted = server_mask.intersect(request.version_rolling_mask.unwrap_or(VersionMask(u32::MAX)));
                if granted == VersionMask::NONE {
                    result.answers.push((extension.clone(), false));
                } else {
                    result.version_rolling = Some(granted);
                }
            } else {
                result.answers.push((extension.clone(), false));
            }
        }
        result
    }

    /// As JSON, for [`Response::ok`].
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(mask) = self.version_rolling {
            map.insert(VERSION_ROLLING.to_owned(), Value::Bool(true));
            map.insert(VERSION_ROLLING_MASK.to_owned(), Value::String(mask.to_string()));
        }
        for (extension, answer) in &self.answers {
            map.insert(extension.clone(), Value::Bool(*answer));
        }
        Value::Object(map)
    }

    /// Reads a configure result. Answers come back in key order; params of
    /// extensions other than version rolling are not kept.
    pub fn from_value(value: &Value) -> Result<ConfigureResult, ParseError> {
        const CONTEXT: &str = "mining.configure result";
        let field = |name, error| ParseError::Field { context: CONTEXT, name, error };
        let map = value.as_object().ok_or(field("result", FieldError::NotObject))?;
        let mut result = ConfigureResult::default();
        for (key, value) in map {
            if key.contains('.') {
                continue;
            }
            if key == VERSION_ROLLING && value == &Value::Bool(true) {
                let mask = map.get(VERSION_ROLLING_MASK).ok_or(field(VERSION_ROLLING_MASK, FieldError::Missing))?;
                let mask = mask.as_str().ok_or(field(VERSION_ROLLING_MASK, FieldError::NotString))?;
                result.version_rolling =
                    Some(VersionMask(parse_hex_u32(mask).map_err(|e| field(VERSION_ROLLING_MASK, e))?));
            } else if let Some(answer) = value.as_bool() {
                result.answers.push((key.clone(), answer));
            }
        }
        Ok(result)
    }
}

// ---------------------------------------------------------------- parsing

impl Method {
    /// The method name on the wire.
    pub fn name(&self) -> &str {
        match self {
            Method::Subscribe(_) => SUBSCRIBE,
            Method::Authorize(_) => AUTHORIZE,
            Method::Configure(_) => CONFIGURE,
            Method::SuggestDifficulty(_) => SUGGEST_DIFFICULTY,
            Method::ExtranonceSubscribe => EXTRANONCE_SUBSCRIBE,
            Method::Submit(_) => SUBMIT,
            Method::SetDifficulty(_) => SET_DIFFICULTY,
            Method::Notify(_) => NOTIFY,
            Method::SetExtranonce(_) => SET_EXTRANONCE,
            Method::Reconnect(_) => RECONNECT,
            Method::ShowMessage(_) => SHOW_MESSAGE,
            Method::Unknown { method, .. } => method,
        }
    }

    fn from_json(method: String, params: Option<Value>) -> Result<Method, ParseError> {
        let name: &'static str = match method.as_str() {
            SUBSCRIBE => SUBSCRIBE,
            AUTHORIZE => AUTHORIZE,
            CONFIGURE => CONFIGURE,
            SUGGEST_DIFFICULTY => SUGGEST_DIFFICULTY,
            EXTRANONCE_SUBSCRIBE => EXTRANONCE_SUBSCRIBE,
            SUBMIT => SUBMIT,
            SET_DIFFICULTY => SET_DIFFICULTY,
            NOTIFY => NOTIFY,
            SET_EXTRANONCE => SET_EXTRANONCE,
            RECONNECT => RECONNECT,
            SHOW_MESSAGE => SHOW_MESSAGE,
            _ => return Ok(Method::Unknown { method, params: params.unwrap_or(Value::Null) }),
        };
        let p = Params::new(name, params)?;
        Ok(match name {
            SUBSCRIBE => {
                // Some proxies append host and port; they are not ours to use.
                p.count(0, usize::MAX, "0 or more")?;
                Method::Subscribe(Subscribe {
                    user_agent: p.opt_string(0, "user_agent")?,
                    session_id: p.opt_string(1, "session_id")?,
                })
            }
            AUTHORIZE => {
                p.count(1, 2, "1 or 2")?;
                Method::Authorize(Authorize { user: p.string(0, "user")?, password: p.opt_string(1, "password")? })
            }
            CONFIGURE => {
                p.count(1, 2, "1 or 2")?;
                Method::Configure(p.configure()?)
            }
            SUGGEST_DIFFICULTY => {
                p.count(1, 1, "1")?;
                Method::SuggestDifficulty(p.difficulty(0, "difficulty")?)
            }
            EXTRANONCE_SUBSCRIBE => {
                p.count(0, 0, "0")?;
                Method::ExtranonceSubscribe
            }
            SUBMIT => {
                p.count(5, 6, "5 or 6")?;
                Method::Submit(Submit {
                    worker: p.string(0, "worker")?,
                    job_id: p.string(1, "job_id")?,
                    extranonce2: p.extranonce2(2)?,
                    ntime: p.hex_u32(3, "ntime")?,
                    nonce: p.hex_u32(4, "nonce")?,
                    version_bits: match p.get(5) {
                        None | Some(Value::Null) => None,
                        Some(_) => Some(p.hex_u32(5, "version_bits")?),
                    },
                })
            }
            SET_DIFFICULTY => {
                p.count(1, 1, "1")?;
                Method::SetDifficulty(p.difficulty(0, "difficulty")?)
            }
            NOTIFY => {
                p.count(9, 9, "9")?;
                let prev: [u8; 32] = p.hex_array(1, "prevhash")?;
                Method::Notify(Notify {
                    job_id: p.string(0, "job_id")?,
                    prev_hash: prev_hash_from_stratum(&prev),
                    coinb1: p.hex(2, "coinb1")?,
                    coinb2: p.hex(3, "coinb2")?,
                    merkle_branch: p.branch(4)?,
                    version: Version::from_consensus(p.hex_u32(5, "version")? as i32),
                    nbits: CompactTarget::from_consensus(p.hex_u32(6, "nbits")?),
                    ntime: p.hex_u32(7, "ntime")?,
                    clean_jobs: p.bool(8, "clean_jobs")?,
                })
            }
            SET_EXTRANONCE => {
                p.count(2, 2, "2")?;
                Method::SetExtranonce(SetExtranonce {
                    extranonce1: p
                        .string(0, "extranonce1")?
                        .parse()
                        .map_err(|e| p.err(0, "extranonce1", FieldError::Extranonce(e)))?,
                    extranonce2_size: extranonce_size(p.get(1).unwrap_or(&Value::Null))
                        .map_err(|e| p.err(1, "extranonce2_size", e))?,
                })
            }
            RECONNECT => {
                p.count(0, 3, "0 to 3")?;
                Method::Reconnect(Reconnect {
                    host: p.opt_string(0, "host")?,
                    port: p.port(1)?,
                    wait_secs: match p.get(2) {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(integer(v, u64::MAX).map_err(|e| p.err(2, "wait", e))?),
                    },
                })
            }
            SHOW_MESSAGE => {
                p.count(1, 1, "1")?;
                Method::ShowMessage(p.string(0, "text")?)
            }
            _ => unreachable!("every known method name is matched above"),
        })
    }

    /// The params array as JSON text.
    fn params_json(&self) -> String {
        let items: Vec<String> = match self {
            Method::Subscribe(s) => match (&s.user_agent, &s.session_id) {
                (ua, Some(session)) => vec![opt_json_string(ua), json_string(session)],
                (Some(ua), None) => vec![json_string(ua)],
                (None, None) => vec![],
            },
            Method::Authorize(a) => {
                let mut items = vec![json_string(&a.user)];
                if let Some(password) = &a.password {
                    items.push(json_string(password));
                }
                items
            }
            Method::Configure(c) => {
                let extensions = c.extensions.iter().map(|e| json_string(e)).collect::<Vec<_>>().join(",");
                let mut entries = Vec::new();
                if let Some(mask) = c.version_rolling_mask {
                    entries.push((json_string(VERSION_ROLLING_MASK), json_string(&mask.to_string())));
                }
                if let Some(count) = c.version_rolling_min_bit_count {
                    entries.push((json_string(VERSION_ROLLING_MIN_BIT_COUNT), count.to_string()));
                }
                if let Some(d) = c.minimum_difficulty {
                    entries.push((json_string(MINIMUM_DIFFICULTY_VALUE), d.to_string()));
                }
                for (key, value) in &c.other_params {
                    entries.push((json_string(key), value.to_string()));
                }
                let object = entries.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",");
                vec![format!("[{extensions}]"), format!("{{{object}}}")]
            }
            Method::SuggestDifficulty(d) | Method::SetDifficulty(d) => vec![d.to_string()],
            Method::ExtranonceSubscribe => vec![],
            Method::Submit(s) => {
                let mut items = vec![
                    json_string(&s.worker),
                    json_string(&s.job_id),
                    json_string(&s.extranonce2.to_string()),
                    hex_u32_json(s.ntime),
                    hex_u32_json(s.nonce),
                ];
                if let Some(bits) = s.version_bits {
                    items.push(hex_u32_json(bits));
                }
                items
            }
            Method::Notify(n) => {
                let branch = n
                    .merkle_branch
                    .iter()
                    .map(|node| json_string(&hex::encode(node.to_byte_array())))
                    .collect::<Vec<_>>()
                    .join(",");
                vec![
                    json_string(&n.job_id),
                    json_string(&hex::encode(prev_hash_to_stratum(&n.prev_hash))),
                    json_string(&hex::encode(&n.coinb1)),
                    json_string(&hex::encode(&n.coinb2)),
                    format!("[{branch}]"),
                    hex_u32_json(n.version.to_consensus() as u32),
                    hex_u32_json(n.nbits.to_consensus()),
                    hex_u32_json(n.ntime),
                    n.clean_jobs.to_string(),
                ]
            }
            Method::SetExtranonce(s) => {
                vec![json_string(&s.extranonce1.to_string()), s.extranonce2_size.to_string()]
            }
            Method::Reconnect(r) => {
                let mut items = vec![
                    opt_json_string(&r.host),
                    r.port.map_or_else(|| "null".to_owned(), |p| p.to_string()),
                    r.wait_secs.map_or_else(|| "null".to_owned(), |w| w.to_string()),
                ];
                while items.last().is_some_and(|i| i == "null") {
                    items.pop();
                }
                items
            }
            Method::ShowMessage(text) => vec![json_string(text)],
            Method::Unknown { params, .. } => return params.to_string(),
        };
        format!("[{}]", items.join(","))
    }
}

/// The params of a known method, with accessors that name what is wrong.
struct Params {
    method: &'static str,
    items: Vec<Value>,
}

impl Params {
    fn new(method: &'static str, params: Option<Value>) -> Result<Params, ParseError> {
        match params {
            None | Some(Value::Null) => Ok(Params { method, items: Vec::new() }),
            Some(Value::Array(items)) => Ok(Params { method, items }),
            Some(_) => Err(ParseError::ParamsNotArray { method }),
        }
    }

    fn count(&self, min: usize, max: usize, expected: &'static str) -> Result<(), ParseError> {
        if (min..=max).contains(&self.items.len()) {
            Ok(())
        } else {
            Err(ParseError::ParamCount { method: self.method, expected, got: self.items.len() })
        }
    }

    fn err(&self, index: usize, name: &'static str, error: FieldError) -> ParseError {
        ParseError::Param { method: self.method, index, name, error }
    }

    fn get(&self, index: usize) -> Option<&Value> {
        self.items.get(index)
    }

    fn str(&self, index: usize, name: &'static str) -> Result<&str, ParseError> {
        match self.get(index) {
            Some(Value::String(s)) => Ok(s),
            None => Err(self.err(index, name, FieldError::Missing)),
            Some(_) => Err(self.err(index, name, FieldError::NotString)),
        }
    }

    fn string(&self, index: usize, name: &'static str) -> Result<String, ParseError> {
        self.str(index, name).map(str::to_owned)
    }

    fn opt_string(&self, index: usize, name: &'static str) -> Result<Option<String>, ParseError> {
        match self.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.string(index, name).map(Some),
        }
    }

    fn bool(&self, index: usize, name: &'static str) -> Result<bool, ParseError> {
        match self.get(index) {
            Some(Value::Bool(b)) => Ok(*b),
            None => Err(self.err(index, name, FieldError::Missing)),
            Some(_) => Err(self.err(index, name, FieldError::NotBool)),
        }
    }

    fn hex(&self, index: usize, name: &'static str) -> Result<Vec<u8>, ParseError> {
        hex::decode(self.str(index, name)?).map_err(|_| self.err(index, name, FieldError::NotHex))
    }

    fn hex_array<const N: usize>(&self, index: usize, name: &'static str) -> Result<[u8; N], ParseError> {
        parse_hex_array(self.str(index, name)?).map_err(|e| self.err(index, name, e))
    }

    fn hex_u32(&self, index: usize, name: &'static str) -> Result<u32, ParseError> {
        parse_hex_u32(self.str(index, name)?).map_err(|e| self.err(index, name, e))
    }

    fn difficulty(&self, index: usize, name: &'static str) -> Result<ShareDifficulty, ParseError> {
        match self.get(index) {
            Some(Value::Number(n)) => {
                let value = n.as_f64().ok_or_else(|| self.err(index, name, FieldError::NotNumber))?;
                ShareDifficulty::new(value).map_err(|e| self.err(index, name, FieldError::Difficulty(e)))
            }
            None => Err(self.err(index, name, FieldError::Missing)),
            Some(_) => Err(self.err(index, name, FieldError::NotNumber)),
        }
    }

    fn extranonce2(&self, index: usize) -> Result<Extranonce2, ParseError> {
        const NAME: &str = "extranonce2";
        let text = self.str(index, NAME)?;
        match text.parse::<Extranonce2>() {
            Ok(e) => Ok(e),
            Err(ExtranonceError::Hex(_)) => Err(self.err(index, NAME, FieldError::NotHex)),
            Err(e) => Err(self.err(index, NAME, FieldError::Extranonce(e))),
        }
    }

    fn branch(&self, index: usize) -> Result<Vec<TxMerkleNode>, ParseError> {
        const NAME: &str = "merkle_branch";
        let items = match self.get(index) {
            Some(Value::Array(items)) => items,
            None => return Err(self.err(index, NAME, FieldError::Missing)),
            Some(_) => return Err(self.err(index, NAME, FieldError::NotArray)),
        };
        items
            .iter()
            .map(|item| {
                let text = item.as_str().ok_or_else(|| self.err(index, NAME, FieldError::NotString))?;
                let bytes = parse_hex_array::<32>(text).map_err(|e| self.err(index, NAME, e))?;
                Ok(TxMerkleNode::from_byte_array(bytes))
            })
            .collect()
    }

    fn port(&self, index: usize) -> Result<Option<u16>, ParseError> {
        const NAME: &str = "port";
        let max = u64::from(u16::MAX);
        match self.get(index) {
            None | Some(Value::Null) => Ok(None),
            // Some pools send the port as a string.
            Some(Value::String(s)) => {
                s.parse::<u16>().map(Some).map_err(|_| self.err(index, NAME, FieldError::NotInteger { max }))
            }
            Some(v) => integer(v, max).map(|p| Some(p as u16)).map_err(|e| self.err(index, NAME, e)),
        }
    }

    fn configure(&self) -> Result<Configure, ParseError> {
        let extensions = match self.get(0) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|e| e.as_str().map(str::to_owned).ok_or_else(|| self.err(0, "extensions", FieldError::NotString)))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(self.err(0, "extensions", FieldError::NotArray)),
        };
        let mut params = match self.get(1) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(self.err(1, "params", FieldError::NotObject)),
        };
        let field = |name, error| ParseError::Field { context: CONFIGURE, name, error };
        let version_rolling_mask = match params.remove(VERSION_ROLLING_MASK) {
            None => None,
            Some(Value::String(s)) => Some(VersionMask(parse_hex_u32(&s).map_err(|e| field(VERSION_ROLLING_MASK, e))?)),
            Some(_) => return Err(field(VERSION_ROLLING_MASK, FieldError::NotString)),
        };
        let version_rolling_min_bit_count = match params.remove(VERSION_ROLLING_MIN_BIT_COUNT) {
            None => None,
            Some(v) => Some(integer(&v, 32).map_err(|e| field(VERSION_ROLLING_MIN_BIT_COUNT, e))? as u32),
        };
        let minimum_difficulty = match params.remove(MINIMUM_DIFFICULTY_VALUE) {
            None => None,
            Some(Value::Number(n)) => {
                let value = n.as_f64().ok_or(field(MINIMUM_DIFFICULTY_VALUE, FieldError::NotNumber))?;
                Some(
                    ShareDifficulty::new(value)
                        .map_err(|e| field(MINIMUM_DIFFICULTY_VALUE, FieldError::Difficulty(e)))?,
                )
            }
            Some(_) => return Err(field(MINIMUM_DIFFICULTY_VALUE, FieldError::NotNumber)),
        };
        Ok(Configure {
            extensions,
            version_rolling_mask,
            version_rolling_min_bit_count,
            minimum_difficulty,
            other_params: params,
        })
    }
}

fn parse_error_reply(error: Value) -> Result<ErrorReply, ParseError> {
    let (code, message) = match &error {
        Value::Array(items) => (items.first(), items.get(1)),
        Value::Object(map) => (map.get("code"), map.get("message")),
        _ => return Err(ParseError::BadErrorField),
    };
    let code = code.and_then(Value::as_i64).ok_or(ParseError::BadErrorField)?;
    let message = match message {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err(ParseError::BadErrorField),
    };
    Ok(ErrorReply { code: ErrorCode::from_code(code), message })
}

/// A non-negative integer no larger than `max` (a float with no fraction is
/// accepted: some JSON writers emit `8.0`).
fn integer(value: &Value, max: u64) -> Result<u64, FieldError> {
    let n = match value {
        Value::Number(n) => n,
        _ => return Err(FieldError::NotInteger { max }),
    };
    let v = match (n.as_u64(), n.as_f64()) {
        (Some(v), _) => v,
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= max as f64 => f as u64,
        _ => return Err(FieldError::NotInteger { max }),
    };
    if v > max {
        return Err(FieldError::NotInteger { max });
    }
    Ok(v)
}

fn extranonce_size(value: &Value) -> Result<usize, FieldError> {
    integer(value, MAX_EXTRANONCE_LEN as u64).map(|n| n as usize)
}

fn parse_hex_array<const N: usize>(text: &str) -> Result<[u8; N], FieldError> {
    if text.len() != N * 2 {
        return Err(FieldError::HexLength { expected: N * 2, got: text.len() });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| FieldError::NotHex)?;
    Ok(out)
}

/// Exactly eight hex digits, big-endian, either case.
pub(crate) fn parse_hex_u32(text: &str) -> Result<u32, FieldError> {
    parse_hex_array::<4>(text).map(u32::from_be_bytes)
}

fn hex_u32_json(value: u32) -> String {
    format!("\"{value:08x}\"")
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn opt_json_string(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "null".to_owned(), json_string)
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}
