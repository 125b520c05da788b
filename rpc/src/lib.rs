//! Bitcoin Core's JSON-RPC over HTTP.
//!
//! What it is: the transport both ends need, shaped like Bitcoin Core's.
//! The server ([`serve`], [`RpcServer`]) follows `httpserver.cpp`,
//! `httprpc.cpp` and `rpc/request.cpp`: POST on `/` and `/wallet/<name>`,
//! HTTP Basic auth with Core's cookie file, JSON-RPC 1.0 and 2.0 with
//! batches and notifications, Core's error codes and HTTP statuses, a body
//! limit and a bounded work queue. [`Params`] reads a method's arguments,
//! positional or named, with Core's checks and messages. [`RpcClient`]
//! calls satpool-node or Bitcoin Core.
//!
//! What it is not: the methods themselves; the node registers those by
//! implementing [`RpcHandler`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use satpool_rpc::{Arg, Auth, Request, RpcError, RpcHandler, ServerConfig};
//! use serde_json::{json, Value};
//!
//! struct Node;
//!
//! impl RpcHandler for Node {
//!     fn call(&self, request: &Request) -> Result<Value, RpcError> {
//!         match request.method.as_str() {
//!             "getblockhash" => {
//!                 let params = request.params(&[Arg::Required("height")])?;
//!                 let height: u32 = params.required(0)?;
//!                 Ok(json!(height))
//!             }
//!             _ => Err(RpcError::method_not_found()),
//!         }
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:18443").await?;
//! let config = ServerConfig::new(Auth::cookie_in("/tmp/regtest"));
//! satpool_rpc::serve(listener, config, Arc::new(Node), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod allow;
mod auth;
mod client;
mod error;
mod params;
mod protocol;
mod server;

pub use allow::{Subnet, SubnetError};
pub use auth::{Auth, Password, COOKIE_FILE, COOKIE_USER};
pub use client::{ClientError, RpcClient, DEFAULT_TIMEOUT};
pub use error::{ErrorCode, RpcError};
pub use params::{Arg, FromParam, Hash256, Hex, JsonType, Params, Satoshis};
pub use protocol::{Request, RpcHandler};
pub use server::{
    serve, RpcServer, ServeError, ServerConfig, AUTH_FAILURE_DELAY, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_THREADS, DEFAULT_WORK_QUEUE,
};
