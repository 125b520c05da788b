//! Bitcoin Core's RPC error codes (`src/rpc/protocol.h`) and the error object
//! a method returns.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, )*) => {
        /// A JSON-RPC error code, named as in Bitcoin Core's `RPCErrorCode`.
        ///
        /// Codes this crate does not name (a newer Core, another server) keep
        /// their number in [`ErrorCode::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
            /// A code with no name here.
            Other(i32),
        }

        impl ErrorCode {
            /// The number on the wire.
            pub const fn code(self) -> i32 {
                match self {
                    $( ErrorCode::$variant => $code, )*
                    ErrorCode::Other(code) => code,
                }
            }

            /// The named code for `code`, or [`ErrorCode::Other`].
            pub const fn from_code(code: i32) -> Self {
                match code {
                    $( $code => ErrorCode::$variant, )*
                    other => ErrorCode::Other(other),
                }
            }
        }
    };
}

error_codes! {
    /// `RPC_INVALID_REQUEST`: the request object is malformed (HTTP 400 in 1.0).
    InvalidRequest = -32600,
    /// `RPC_METHOD_NOT_FOUND` (HTTP 404 in 1.0).
    MethodNotFound = -32601,
    /// `RPC_INVALID_PARAMS`.
    InvalidParams = -32602,
    /// `RPC_INTERNAL_ERROR`.
    InternalError = -32603,
    /// `RPC_PARSE_ERROR`: the body is not JSON.
    ParseError = -32700,
    /// `RPC_MISC_ERROR`: `std::exception` thrown in command handling.
    MiscError = -1,
    /// `RPC_TYPE_ERROR`: unexpected type was passed as parameter.
    TypeError = -3,
    /// `RPC_INVALID_ADDRESS_OR_KEY`: invalid address or key.
    InvalidAddressOrKey = -5,
    /// `RPC_OUT_OF_MEMORY`: ran out of memory during operation.
    OutOfMemory = -7,
    /// `RPC_INVALID_PARAMETER`: invalid, missing or duplicate parameter.
    InvalidParameter = -8,
    /// `RPC_DATABASE_ERROR`: database error.
    DatabaseError = -20,
    /// `RPC_DESERIALIZATION_ERROR`: error parsing or validating structure in raw format.
    DeserializationError = -22,
    /// `RPC_VERIFY_ERROR`: general error during transaction or block submission.
    VerifyError = -25,
    /// `RPC_VERIFY_REJECTED`: transaction or block was rejected by network rules.
    VerifyRejected = -26,
    /// `RPC_VERIFY_ALREADY_IN_CHAIN`: transaction already in chain.
    VerifyAlreadyInChain = -27,
    /// `RPC_IN_WARMUP`: client still warming up.
    InWarmup = -28,
    /// `RPC_METHOD_DEPRECATED`: RPC method is deprecated.
    MethodDeprecated = -32,
    /// `RPC_CLIENT_NOT_CONNECTED`: the node is not connected.
    ClientNotConnected = -9,
    /// `RPC_CLIENT_IN_INITIAL_DOWNLOAD`: still downloading initial blocks.
    ClientInInitialDownload = -10,
    /// `RPC_CLIENT_NODE_ALREADY_ADDED`: node is already added.
    ClientNodeAlreadyAdded = -23,
    /// `RPC_CLIENT_NODE_NOT_ADDED`: node has not been added before.
    ClientNodeNotAdded = -24,
    /// `RPC_CLIENT_NODE_NOT_CONNECTED`: node to disconnect not found in connected nodes.
    ClientNodeNotConnected = -29,
    /// `RPC_CLIENT_INVALID_IP_OR_SUBNET`: invalid IP/Subnet.
    ClientInvalidIpOrSubnet = -30,
    /// `RPC_CLIENT_P2P_DISABLED`: no valid connection manager instance found.
    ClientP2pDisabled = -31,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i32::deserialize(deserializer).map(ErrorCode::from_code)
    }
}

/// A JSON-RPC error object: `{"code": -8, "message": "..."}`.
///
/// Methods return it; the server writes it into the reply, and the client
/// hands it back from a failed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("rpc error {code}: {message}")]
pub struct RpcError {
    /// Core's error code.
    pub code: ErrorCode,
    /// Human-readable text; Core's tests match on substrings of it.
    pub message: String,
}

impl RpcError {
    /// An error with any code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `RPC_MISC_ERROR` (-1): what Core answers for a `std::runtime_error`.
    pub fn misc(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MiscError, message)
    }

    /// `RPC_TYPE_ERROR` (-3).
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TypeError, message)
    }

    /// `RPC_INVALID_ADDRESS_OR_KEY` (-5), e.g. "Block not found".
    pub fn invalid_address_or_key(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidAddressOrKey, message)
    }

    /// `RPC_INVALID_PARAMETER` (-8).
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }

    /// `RPC_DATABASE_ERROR` (-20).
    pub fn database(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DatabaseError, message)
    }

    /// `RPC_DESERIALIZATION_ERROR` (-22), e.g. "Block decode failed".
    pub fn deserialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DeserializationError, message)
    }

    /// `RPC_VERIFY_ERROR` (-25).
    pub fn verify(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::VerifyError, message)
    }

    /// `RPC_VERIFY_REJECTED` (-26).
    pub fn verify_rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::VerifyRejected, message)
    }

    /// `RPC_VERIFY_ALREADY_IN_CHAIN` (-27).
    pub fn verify_already_in_chain(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::VerifyAlreadyInChain, message)
    }

    /// `RPC_IN_WARMUP` (-28); Core's message is the init step, e.g. "Loading block index…".
    pub fn in_warmup(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InWarmup, message)
    }

    /// `RPC_CLIENT_IN_INITIAL_DOWNLOAD` (-10), as `getblocktemplate` answers during IBD.
    pub fn in_initial_download(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientInInitialDownload, message)
    }

    /// `RPC_CLIENT_NOT_CONNECTED` (-9).
    pub fn not_connected(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientNotConnected, message)
    }

    /// `RPC_METHOD_NOT_FOUND` (-32601) with Core's text, "Method not found".
    pub fn method_not_found() -> Self {
        Self::new(ErrorCode::MethodNotFound, "Method not found")
    }

    /// `RPC_INVALID_REQUEST` (-32600).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `RPC_PARSE_ERROR` (-32700) with Core's text, "Parse error".
    pub fn parse_error() -> Self {
        Self::new(ErrorCode::ParseError, "Parse error")
    }

    /// `RPC_INTERNAL_ERROR` (-32603).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [-1, -3, -5, -7, -8, -9, -10, -20, -22, -23, -24, -25, -26, -27]
            .into_iter()
            .chain([-28, -29, -30, -31, -32, -32600, -32601, -32602, -32603, -32700])
        {
            let named = ErrorCode::from_code(code);
            assert!(!matches!(named, ErrorCode::Other(_)), "{code} has a name");
            assert_eq!(named.code(), code);
        }
        assert_eq!(ErrorCode::from_code(-4), ErrorCode::Other(-4));
        assert_eq!(ErrorCode::Other(-4).code(), -4);
    }

    #[test]
    fn serializes_as_core_does() {
        let e = RpcError::invalid_parameter("x");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"code":-8,"message":"x"}"#);
        let back: RpcError = serde_json::from_str(r#"{"code":-32601,"message":"Method not found"}"#).unwrap();
        assert_eq!(back, RpcError::method_not_found());
    }
}
