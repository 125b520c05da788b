//! The network's methods: `addnode`, `getpeerinfo`, `getconnectioncount`,
//! `getnetworkinfo`, `getnodeaddresses`, `disconnectnode`, `setban`,
//! `listbanned`, `clearbanned` and `ping`, with Bitcoin Core's results and
//! error codes.

use satpool_rpc::{Arg, ErrorCode, Request, RpcError};
use serde_json::{json, Value};

use super::encode::amount;
use super::NodeRpc;
use crate::p2p::peer::{self, PROTOCOL_VERSION, USER_AGENT};
use crate::p2p::{AddNodeOp, NetError, NetHandle};

/// The methods this file answers.
pub(super) const METHODS: &[&str] = &[
    "addnode",
    "getpeerinfo",
    "getconnectioncount",
    "getnetworkinfo",
    "getnodeaddresses",
    "disconnectnode",
    "setban",
    "listbanned",
    "clearbanned",
    "ping",
];

/// Core's error for each network failure.
fn net_error(e: NetError) -> RpcError {
    let code = match e {
        NetError::AlreadyAdded | NetError::AlreadyBanned => ErrorCode::ClientNodeAlreadyAdded,
        NetError::NotAdded => ErrorCode::ClientNodeNotAdded,
        NetError::NotConnected => ErrorCode::ClientNodeNotConnected,
        NetError::InvalidSubnet | NetError::NotBanned => ErrorCode::ClientInvalidIpOrSubnet,
        NetError::Disabled => ErrorCode::ClientP2pDisabled,
    };
    RpcError::new(code, e.to_string())
}

/// satpool's version as Core's integer (`MAJOR*10000 + MINOR*100 + PATCH`).
fn client_version() -> u64 {
    let mut parts = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major * 10_000 + minor * 100 + patch
}

impl NodeRpc {
    fn network(&self) -> Result<&NetHandle, RpcError> {
        self.network.as_ref().ok_or_else(|| net_error(NetError::Disabled))
    }

    pub(super) fn network_call(&self, request: &Request) -> Result<Value, RpcError> {
        match request.method.as_str() {
            "addnode" => {
                let params =
                    request.params(&[Arg::Required("node"), Arg::Required("command"), Arg::Optional("v2transport")])?;
                let node: String = params.required(0)?;
                let op = match params.str(1)? {
                    "add" => AddNodeOp::Add,
                    "remove" => AddNodeOp::Remove,
                    "onetry" => AddNodeOp::OneTry,
                    _ => {
                        return Err(RpcError::misc(
                            "addnode \"node\" \"command\"\n'command' must be one of 'add', 'remove' or 'onetry'",
                        ))
                    }
                };
                self.network()?.add_node(&node, op).map_err(net_error)?;
                Ok(Value::Null)
            }
            "getpeerinfo" => {
                request.params(&[])?;
                let peers = self.network()?.peer_info().map_err(net_error)?;
                Ok(serde_json::to_value(peers).expect("peer info serialises"))
            }
            "getconnectioncount" => {
                request.params(&[])?;
                let c = self.network()?.counts().map_err(net_error)?;
                Ok(json!(c.inbound + c.outbound))
            }
            "getnetworkinfo" => {
                request.params(&[])?;
                let net = self.network()?;
                let c = net.counts().map_err(net_error)?;
                let (relay, incremental) = {
                    let node = self.node();
                    let config = node.mempool.config();
                    (config.min_relay_fee.sat_per_kvb(), config.incremental_relay_fee.sat_per_kvb())
                };
                let services = net.local_services();
                let network = |name: &str, reachable: bool| json!({"name": name, "limited": !reachable, "reachable": reachable, "proxy": "", "proxy_randomize_credentials": false});
                let local_addresses: Vec<Value> = net
                    .local_addresses()
                    .map_err(net_error)?
                    .iter()
                    .map(|a| json!({"address": a.addr.ip().to_string(), "port": a.addr.port(), "score": a.score}))
                    .collect();
                Ok(json!({
                    "version": client_version(),
                    "subversion": USER_AGENT,
                    "protocolversion": PROTOCOL_VERSION,
                    "localservices": format!("{:016x}", services.to_u64()),
                    "localservicesnames": peer::service_names(services),
                    "localrelay": true,
                    "timeoffset": 0,
                    "networkactive": true,
                    "connections": c.inbound + c.outbound,
                    "connections_in": c.inbound,
                    "connections_out": c.outbound,
                    "networks": [
                        network("ipv4", true),
                        network("ipv6", true),
                        network("onion", false),
                        network("i2p", false),
                        network("cjdns", false),
                    ],
                    "relayfee": amount(bitcoin::Amount::from_sat(relay)),
                    "incrementalfee": amount(bitcoin::Amount::from_sat(incremental)),
                    "localaddresses": local_addresses,
                    "warnings": [],
                }))
            }
            "getnodeaddresses" => {
                let params = request.params(&[Arg::Optional("count"), Arg::Optional("network")])?;
                let count: i64 = params.or(0, 1)?;
                let count =
                    usize::try_from(count).map_err(|_| RpcError::invalid_parameter("Address count out of range"))?;
                let network: Option<String> = params.optional(1)?;
                match network.as_deref() {
                    None | Some("ipv4" | "ipv6") => {}
                    // Networks we never reach: Core answers with nothing.
                    Some("onion" | "i2p" | "cjdns") => return Ok(json!([])),
                    Some(other) => return Err(RpcError::invalid_parameter(format!("Network not recognized: {other}"))),
                }
                let rows = self.network()?.node_addresses(count, network.as_deref()).map_err(net_error)?;
                Ok(serde_json::to_value(rows).expect("address rows serialise"))
            }
            "disconnectnode" => {
                let params = request.params(&[Arg::Optional("address"), Arg::Optional("nodeid")])?;
                let address: Option<String> = params.optional(0)?;
                let id: Option<u64> = params.optional(1)?;
                let address = address.filter(|a| !a.is_empty());
                match (&address, id) {
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(RpcError::invalid_parameter("Only one of address and nodeid should be provided."))
                    }
                    _ => {}
                }
                self.network()?.disconnect(address.as_deref(), id).map_err(net_error)?;
                Ok(Value::Null)
            }
            "setban" => {
                let params = request.params(&[
                    Arg::Required("subnet"),
                    Arg::Required("command"),
                    Arg::Optional("bantime"),
                    Arg::Optional("absolute"),
                ])?;
                let subnet: String = params.required(0)?;
                let add = match params.str(1)? {
                    "add" => true,
                    "remove" => false,
                    _ => {
                        return Err(RpcError::misc(
                            "setban \"subnet\" \"command\"\n'command' must be 'add' or 'remove'",
                        ))
                    }
                };
                let bantime: i64 = params.or(2, 0)?;
                let absolute: bool = params.or(3, false)?;
                self.network()?.set_ban(&subnet, add, bantime, absolute).map_err(net_error)?;
                Ok(Value::Null)
            }
            "listbanned" => {
                request.params(&[])?;
                let bans = self.network()?.list_banned().map_err(net_error)?;
                Ok(serde_json::to_value(bans).expect("ban entries serialise"))
            }
            "clearbanned" => {
                request.params(&[])?;
                self.network()?.clear_banned().map_err(net_error)?;
                Ok(Value::Null)
            }
            "ping" => {
                request.params(&[])?;
                self.network()?.ping().map_err(net_error)?;
                Ok(Value::Null)
            }
            _ => Err(RpcError::method_not_found()),
        }
    }
}
