//! Wallet methods with Bitcoin Core's names, parameters, result shapes and
//! error codes: wallet management, addresses, balances, history, payments
//! and signing, encryption. Requests go to the wallet named by the
//! `/wallet/<name>` URI path, or to the only wallet loaded.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::consensus::{deserialize, encode::serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::{Address, Amount, FeeRate, OutPoint, ScriptBuf, SignedAmount, Transaction, TxOut, Txid};
use satpool_rpc::{Arg, ErrorCode, Request, RpcError};
use satpool_rpc::{FromParam, Params, Satoshis};
use serde_json::{json, Map, Value};

use super::encode;
use super::NodeRpc;
use crate::attack::attacker_success_probability;
use crate::chain::Chainstate;
use crate::node::Node;
use crate::wallet::crypto::Passphrase;
use crate::wallet::keys::AddressType;
use crate::wallet::ledger::WalletTx;
use crate::wallet::spend::{estimate_fee_rate, Recipient, SpendError};
use crate::wallet::{Wallet, WalletError};

/// The methods this file answers.
pub(super) const METHODS: &[&str] = &[
    "createwallet",
    "loadwallet",
    "unloadwallet",
    "listwallets",
    "getwalletinfo",
    "getnewaddress",
    "getrawchangeaddress",
    "getbalance",
    "getbalances",
    "listunspent",
    "listtransactions",
    "gettransaction",
    "sendtoaddress",
    "sendmany",
    "signrawtransactionwithwallet",
    "encryptwallet",
    "walletpassphrase",
    "walletlock",
];

/// Blocks the fee estimate reads.
const FEE_ESTIMATE_BLOCKS: u32 = 6;

/// Core's wallet error codes (`RPCErrorCode`).
mod code {
    pub const WALLET_ERROR: i32 = -4;
    pub const INSUFFICIENT_FUNDS: i32 = -6;
    pub const UNLOCK_NEEDED: i32 = -13;
    pub const PASSPHRASE_INCORRECT: i32 = -14;
    pub const WRONG_ENC_STATE: i32 = -15;
    pub const NOT_FOUND: i32 = -18;
    pub const NOT_SPECIFIED: i32 = -19;
    pub const ALREADY_LOADED: i32 = -35;
    pub const ALREADY_EXISTS: i32 = -36;
}

fn wallet_error(e: WalletError) -> RpcError {
    let code = match &e {
        WalletError::Locked => code::UNLOCK_NEEDED,
        WalletError::WrongPassphrase => code::PASSPHRASE_INCORRECT,
        WalletError::AlreadyEncrypted | WalletError::NotEncrypted(_) => code::WRONG_ENC_STATE,
        WalletError::NoneLoaded | WalletError::NotLoaded(_) | WalletError::NotFound(_) => code::NOT_FOUND,
        WalletError::NotSpecified => code::NOT_SPECIFIED,
        WalletError::AlreadyLoaded(_) => code::ALREADY_LOADED,
        WalletError::AlreadyExists(_) => code::ALREADY_EXISTS,
        WalletError::UnknownAddressType(_) => return RpcError::invalid_address_or_key(e.to_string()),
        WalletError::InvalidName(_) => return RpcError::invalid_parameter(e.to_string()),
        WalletError::Spend(SpendError::InsufficientFunds { .. }) => {
            return RpcError::new(ErrorCode::Other(code::INSUFFICIENT_FUNDS), "Insufficient funds")
        }
        WalletError::Spend(SpendError::Dust { .. }) => {
            return RpcError::new(ErrorCode::Other(code::WALLET_ERROR), "Transaction amount too small")
        }
        WalletError::Spend(SpendError::TooSmallForFee) => {
            return RpcError::new(
                ErrorCode::Other(code::WALLET_ERROR),
                "The transaction amount is too small to pay the fee",
            )
        }
        WalletError::Database(_) | WalletError::Io(..) | WalletError::Corrupt(_) => {
            tracing::error!("wallet failure: {e}");
            code::WALLET_ERROR
        }
        _ => code::WALLET_ERROR,
    };
    RpcError::new(ErrorCode::Other(code), e.to_string())
}

fn signed(value: SignedAmount) -> Value {
    json!(value.to_btc())
}

fn address_type(text: Option<String>) -> Result<AddressType, RpcError> {
    match text {
        None => Ok(AddressType::Bech32),
        Some(t) => AddressType::from_str(&t).map_err(wallet_error),
    }
}

fn passphrase(text: String) -> Result<Passphrase, RpcError> {
    if text.is_empty() {
        return Err(RpcError::invalid_parameter("passphrase cannot be empty"));
    }
    Ok(Passphrase::new(text))
}

/// A fee rate given in sat/vB (Core's `fee_rate`).
fn fee_rate_arg(value: f64) -> Result<FeeRate, RpcError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(RpcError::invalid_parameter("Invalid fee_rate"));
    }
    let rate = FeeRate::from_sat_per_kwu((value * 250.0).round() as u64);
    if rate < crate::wallet::spend::MIN_RELAY_FEE {
        return Err(RpcError::new(
            ErrorCode::Other(code::WALLET_ERROR),
            format!("Fee rate ({value:.3} sat/vB) is lower than the minimum fee rate setting (1.000 sat/vB)"),
        ));
    }
    Ok(rate)
}

/// The estimate of [`estimate_fee_rate`] over the last blocks of the chain.
fn estimated_fee_rate(chain: &Chainstate) -> FeeRate {
    let tip = chain.tip().height;
    let mut samples = Vec::new();
    for height in tip.saturating_sub(FEE_ESTIMATE_BLOCKS - 1)..=tip {
        let Some(hash) = chain.index().active_hash(height) else { continue };
        let Ok(Some(block)) = chain.block(&hash) else { continue };
        let Some(coinbase) = block.txdata.first() else { continue };
        let paid: Amount = coinbase.output.iter().map(|o| o.value).sum();
        let fees = paid.checked_sub(chain.params().block_subsidy(height)).unwrap_or(Amount::ZERO);
        let vsize: u64 = block.txdata.iter().skip(1).map(|t| t.vsize() as u64).sum();
        samples.push((fees, vsize));
    }
    estimate_fee_rate(&samples)
}

/// Core's `category` of one of a transaction's outputs paying the wallet.
fn receive_category(wtx: &WalletTx, tip: u32) -> &'static str {
    if !wtx.tx.is_coinbase() {
        "receive"
    } else if wtx.abandoned || wtx.block.is_none() {
        "orphan"
    } else if wtx.is_immature(tip) {
        "immature"
    } else {
        "generate"
    }
}

/// The entries `listtransactions` and `gettransaction`'s `details` show
/// for one transaction (Core's `ListTransactions`).
fn entries(wallet: &Wallet, wtx: &WalletTx, tip: u32) -> Vec<Map<String, Value>> {
    let ledger = wallet.ledger();
    let network = ledger.network();
    let from_me = ledger.debit(&wtx.tx) > Amount::ZERO;
    let fee = ledger.fee(&wtx.tx);
    let mut out = Vec::new();
    let address_of = |o: &TxOut| Address::from_script(&o.script_pubkey, network).ok().map(|a| a.to_string());
    if from_me {
        for (vout, o) in wtx.tx.output.iter().enumerate() {
            if ledger.is_change(o) {
                continue;
            }
            let mut e = Map::new();
            if let Some(a) = address_of(o) {
                e.insert("address".into(), json!(a));
            }
            e.insert("category".into(), json!("send"));
            e.insert("amount".into(), signed(-o.value.to_signed().unwrap_or(SignedAmount::MAX)));
            e.insert("vout".into(), json!(vout));
            if let Some(fee) = fee {
                e.insert("fee".into(), signed(-fee.to_signed().unwrap_or(SignedAmount::MAX)));
            }
            e.insert("abandoned".into(), json!(wtx.abandoned));
            out.push(e);
        }
    }
    for (vout, o) in wtx.tx.output.iter().enumerate() {
        if ledger.is_mine(&o.script_pubkey).is_none() || (from_me && ledger.is_change(o)) {
            continue;
        }
        let mut e = Map::new();
        if let Some(a) = address_of(o) {
            if let Some(label) = wallet.label(&a) {
                e.insert("label".into(), json!(label));
            }
            e.insert("address".into(), json!(a));
        }
        e.insert("category".into(), json!(receive_category(wtx, tip)));
        e.insert("amount".into(), encode::amount(o.value));
        e.insert("vout".into(), json!(vout));
        out.push(e);
    }
    out
}

/// Core's `WalletTxToJSON`: confirmations, block, times, replaceability.
fn tx_fields(wallet: &Wallet, wtx: &WalletTx, tip: u32) -> Map<String, Value> {
    let mut m = Map::new();
    let confirmations = wtx.confirmations(tip);
    m.insert("confirmations".into(), json!(if wtx.abandoned { -1 } else { i64::from(confirmations) }));
    if wtx.tx.is_coinbase() {
        m.insert("generated".into(), json!(true));
    }
    if let Some(b) = wtx.block {
        m.insert("blockhash".into(), json!(b.hash.to_string()));
        m.insert("blockheight".into(), json!(b.height));
        m.insert("blocktime".into(), json!(b.time));
    }
    m.insert("txid".into(), json!(wtx.tx.compute_txid().to_string()));
    m.insert("wtxid".into(), json!(wtx.tx.compute_wtxid().to_string()));
    m.insert("time".into(), json!(wtx.block.map_or(wtx.received, |b| u64::from(b.time).min(wtx.received))));
    m.insert("timereceived".into(), json!(wtx.received));
    let replaceable = confirmations == 0 && wtx.tx.is_explicitly_rbf();
    m.insert(
        "bip125-replaceable".into(),
        json!(if confirmations > 0 {
            "no"
        } else if replaceable {
            "yes"
        } else {
            "unknown"
        }),
    );
    if let Some(c) = &wtx.comment {
        m.insert("comment".into(), json!(c));
    }
    if let Some(c) = &wtx.comment_to {
        m.insert("to".into(), json!(c));
    }
    let _ = wallet;
    m
}

impl NodeRpc {
    /// Answers a wallet method.
    pub(super) fn wallet_call(&self, request: &Request) -> Result<Value, RpcError> {
        match request.method.as_str() {
            "createwallet" => self.createwallet(request),
            "loadwallet" => self.loadwallet(request),
            "unloadwallet" => self.unloadwallet(request),
            "listwallets" => {
                request.params(&[])?;
                Ok(json!(self.node().wallets.names()))
            }
            "sendtoaddress" => self.sendtoaddress(request),
            "sendmany" => self.sendmany(request),
            _ => self.node.with(|node| {
                let Node { chain, wallets, .. } = node;
                let share = wallets.attacker_share;
                let wallet = wallets.resolve(request.wallet.as_deref()).map_err(wallet_error)?;
                wallet_method(request, wallet, chain, share)
            }),
        }
    }

    fn createwallet(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[
            Arg::Required("wallet_name"),
            Arg::Optional("disable_private_keys"),
            Arg::Optional("blank"),
            Arg::Optional("passphrase"),
            Arg::Optional("avoid_reuse"),
            Arg::Optional("descriptors"),
            Arg::Optional("load_on_startup"),
            Arg::Optional("external_signer"),
        ])?;
        let name: String = params.required(0)?;
        if params.or(1, false)? || params.or(7, false)? {
            return Err(RpcError::new(
                ErrorCode::Other(code::WALLET_ERROR),
                "satpool's wallet always holds its own private keys",
            ));
        }
        let pass: Option<String> = params.optional(3)?;
        let mut warnings = Vec::new();
        let pass = match pass {
            Some(p) if p.is_empty() => {
                warnings.push("Empty string given as passphrase, wallet will not be encrypted.");
                None
            }
            Some(p) => Some(Passphrase::new(p)),
            None => None,
        };
        self.node.with(|node| {
            let Node { chain, wallets, .. } = node;
            wallets.create(&name, pass.as_ref(), chain).map_err(wallet_error)?;
            Ok(json!({"name": name, "warnings": warnings}))
        })
    }

    fn loadwallet(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Required("filename"), Arg::Optional("load_on_startup")])?;
        let name: String = params.required(0)?;
        self.node.with(|node| {
            let Node { chain, wallets, .. } = node;
            wallets.load(&name, chain).map_err(wallet_error)?;
            Ok(json!({"name": name, "warnings": []}))
        })
    }

    fn unloadwallet(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[Arg::Optional("wallet_name"), Arg::Optional("load_on_startup")])?;
        let named: Option<String> = params.optional(0)?;
        let name = match (named, &request.wallet) {
            (Some(n), Some(w)) if &n != w => {
                return Err(RpcError::invalid_parameter(
                    "RPC endpoint wallet and wallet_name parameter specify different wallets",
                ))
            }
            (Some(n), _) => n,
            (None, Some(w)) => w.clone(),
            (None, None) => {
                return Err(RpcError::invalid_parameter(
                    "Either the RPC endpoint wallet or the wallet name parameter must be provided",
                ))
            }
        };
        self.node.with(|node| node.wallets.unload(&name)).map_err(wallet_error)?;
        Ok(json!({"warnings": []}))
    }

    fn sendtoaddress(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[
            Arg::Required("address"),
            Arg::Required("amount"),
            Arg::Optional("comment"),
            Arg::Optional("comment_to"),
            Arg::Optional("subtractfeefromamount"),
            Arg::Optional("replaceable"),
            Arg::Optional("conf_target"),
            Arg::Optional("estimate_mode"),
            Arg::Optional("avoid_reuse"),
            Arg::Optional("fee_rate"),
            Arg::Optional("verbose"),
        ])?;
        let address: String = params.required(0)?;
        let Satoshis(sats) = params.required(1)?;
        let comment: Option<String> = params.optional(2)?.filter(|s: &String| !s.is_empty());
        let comment_to: Option<String> = params.optional(3)?.filter(|s: &String| !s.is_empty());
        let subtract: bool = params.or(4, false)?;
        let replaceable: bool = params.or(5, true)?;
        let fee_rate = self.fee_rate_params(&params, 6, 9)?;
        let verbose: bool = params.or(10, false)?;
        let script = self.wallet_address(&address)?;
        if sats <= 0 {
            return Err(RpcError::type_error("Invalid amount for send"));
        }
        let recipients = vec![Recipient { script, amount: Amount::from_sat(sats as u64), subtract_fee: subtract }];
        self.send(request, &recipients, fee_rate, replaceable, (comment, comment_to), verbose)
    }

    fn sendmany(&self, request: &Request) -> Result<Value, RpcError> {
        let params = request.params(&[
            Arg::Required("dummy"),
            Arg::Required("amounts"),
            Arg::Optional("minconf"),
            Arg::Optional("comment"),
            Arg::Optional("subtractfeefrom"),
            Arg::Optional("replaceable"),
            Arg::Optional("conf_target"),
            Arg::Optional("estimate_mode"),
            Arg::Optional("fee_rate"),
            Arg::Optional("verbose"),
        ])?;
        if params.raw(0).is_some_and(|d| d.as_str() != Some("")) {
            return Err(RpcError::invalid_parameter("Dummy value must be set to \"\""));
        }
        let amounts: Map<String, Value> = params.required(1)?;
        let comment: Option<String> = params.optional(3)?.filter(|s: &String| !s.is_empty());
        let subtract_from: Vec<Value> = params.or(4, Vec::new())?;
        let replaceable: bool = params.or(5, true)?;
        let fee_rate = self.fee_rate_params(&params, 6, 8)?;
        let verbose: bool = params.or(9, false)?;
        if amounts.is_empty() {
            return Err(RpcError::invalid_parameter("Transaction must have at least one recipient"));
        }
        let mut recipients = Vec::new();
        for (address, value) in &amounts {
            let script = self.wallet_address(address)?;
            let Satoshis(sats) = FromParam::from_param(value, "amount")?;
            if sats <= 0 {
                return Err(RpcError::type_error("Invalid amount for send"));
            }
            let subtract_fee = subtract_from.iter().any(|v| v.as_str() == Some(address.as_str()));
            recipients.push(Recipient { script, amount: Amount::from_sat(sats as u64), subtract_fee });
        }
        self.send(request, &recipients, fee_rate, replaceable, (comment, None), verbose)
    }

    fn wallet_address(&self, text: &str) -> Result<ScriptBuf, RpcError> {
        self.parse_address(text)
            .ok_or_else(|| RpcError::invalid_address_or_key(format!("Invalid Bitcoin address: {text}")))
    }

    /// `conf_target` (accepted, the estimate has no horizon) and `fee_rate` (sat/vB).
    fn fee_rate_params(
        &self,
        params: &Params,
        conf_target: usize,
        fee_rate: usize,
    ) -> Result<Option<FeeRate>, RpcError> {
        let rate: Option<f64> = params.optional(fee_rate)?;
        if rate.is_some() && params.raw(conf_target).is_some() {
            return Err(RpcError::invalid_parameter(
                "Cannot specify both conf_target and fee_rate. Please provide either a confirmation target in blocks for automatic fee estimation, or an explicit fee rate.",
            ));
        }
        rate.map(fee_rate_arg).transpose()
    }

    fn send(
        &self,
        request: &Request,
        recipients: &[Recipient],
        fee_rate: Option<FeeRate>,
        replaceable: bool,
        comments: (Option<String>, Option<String>),
        verbose: bool,
    ) -> Result<Value, RpcError> {
        self.node.with(|node| {
            let (rate, reason) = match fee_rate {
                Some(r) => (r, "Fee rate set by the fee_rate argument"),
                None => {
                    (estimated_fee_rate(&node.chain), "Estimate from the fees of recent blocks (floor: min relay fee)")
                }
            };
            let tip = node.chain.tip().height;
            let Node { chain, wallets, .. } = &mut *node;
            let wallet = wallets.resolve(request.wallet.as_deref()).map_err(wallet_error)?;
            let name = wallet.name().to_owned();
            let sent = wallet.create_transaction(recipients, rate, replaceable, tip, chain).map_err(wallet_error)?;
            // The mempool hands it to every wallet (this one included) once accepted.
            let txid = node.submit_transaction(sent.tx.clone()).map_err(|e| {
                let reason = e.reason().unwrap_or("rejected").to_owned();
                tracing::info!(wallet = %name, "mempool refused the wallet's transaction: {e}");
                RpcError::verify_rejected(reason)
            })?;
            if let Some(wallet) = node.wallets.get_mut(&name) {
                wallet.set_comments(&txid, comments.0, comments.1).map_err(wallet_error)?;
            }
            tracing::info!(wallet = %name, %txid, fee = %sent.fee, "wallet sent a transaction");
            Ok(if verbose { json!({"txid": txid.to_string(), "fee_reason": reason}) } else { json!(txid.to_string()) })
        })
    }
}

fn wallet_method(
    request: &Request,
    wallet: &mut Wallet,
    chain: &Chainstate,
    share: crate::attack::AttackerShare,
) -> Result<Value, RpcError> {
    let tip = chain.tip().height;
    match request.method.as_str() {
        "getwalletinfo" => {
            request.params(&[])?;
            let b = wallet.ledger().balances(tip, 0);
            let mut info = json!({
                "walletname": wallet.name(),
                "walletversion": 169900,
                "format": "redb",
                "balance": encode::amount(b.trusted),
                "unconfirmed_balance": encode::amount(b.untrusted_pending),
                "immature_balance": encode::amount(b.immature),
                "txcount": wallet.ledger().txs().count(),
                "private_keys_enabled": true,
                "avoid_reuse": false,
                "scanning": false,
                "descriptors": true,
                "lastprocessedblock": {"hash": wallet.best_block().0.to_string(), "height": wallet.best_block().1},
            });
            if wallet.is_encrypted() {
                info["unlocked_until"] = json!(wallet.unlocked_until());
            }
            Ok(info)
        }
        "getnewaddress" => {
            let params = request.params(&[Arg::Optional("label"), Arg::Optional("address_type")])?;
            let label: String = params.or(0, String::new())?;
            if label == "*" {
                return Err(RpcError::new(ErrorCode::Other(-11), "Invalid label name"));
            }
            let kind = address_type(params.optional(1)?)?;
            let address = wallet.new_address(kind, false, &label).map_err(wallet_error)?;
            Ok(json!(address.to_string()))
        }
        "getrawchangeaddress" => {
            let params = request.params(&[Arg::Optional("address_type")])?;
            let kind = address_type(params.optional(0)?)?;
            let address = wallet.new_address(kind, true, "").map_err(wallet_error)?;
            Ok(json!(address.to_string()))
        }
        "getbalance" => {
            let params = request.params(&[
                Arg::Optional("dummy"),
                Arg::Optional("minconf"),
                Arg::Optional("include_watchonly"),
                Arg::Optional("avoid_reuse"),
            ])?;
            if params.raw(0).is_some_and(|d| d.as_str() != Some("*")) {
                return Err(RpcError::new(
                    ErrorCode::MethodDeprecated,
                    "dummy first argument must be excluded or set to \"*\".",
                ));
            }
            let min_conf: u32 = params.or(1, 0)?;
            Ok(encode::amount(wallet.ledger().balances(tip, min_conf).trusted))
        }
        "getbalances" => {
            request.params(&[])?;
            let b = wallet.ledger().balances(tip, 0);
            Ok(json!({
                "mine": {
                    "trusted": encode::amount(b.trusted),
                    "untrusted_pending": encode::amount(b.untrusted_pending),
                    "immature": encode::amount(b.immature),
                },
                "lastprocessedblock": {"hash": wallet.best_block().0.to_string(), "height": wallet.best_block().1},
            }))
        }
        "listunspent" => listunspent(request, wallet, tip),
        "listtransactions" => listtransactions(request, wallet, tip),
        "gettransaction" => {
            let params = request.params(&[
                Arg::Required("txid"),
                Arg::Optional("include_watchonly"),
                Arg::Optional("verbose"),
            ])?;
            let txid = Txid::from_byte_array(params.hash(0)?);
            let wtx = wallet
                .ledger()
                .tx(&txid)
                .ok_or_else(|| RpcError::invalid_address_or_key("Invalid or non-wallet transaction id"))?;
            let ledger = wallet.ledger();
            let credit = ledger.credit(&wtx.tx).to_signed().unwrap_or(SignedAmount::MAX);
            let value_out: Amount = wtx.tx.output.iter().map(|o| o.value).sum();
            let from_me = ledger.debit(&wtx.tx) > Amount::ZERO;
            let amount = if from_me { credit - value_out.to_signed().unwrap_or(SignedAmount::MAX) } else { credit };
            let mut m = Map::new();
            m.insert("amount".into(), signed(amount));
            if let Some(fee) = ledger.fee(&wtx.tx) {
                m.insert("fee".into(), signed(-fee.to_signed().unwrap_or(SignedAmount::MAX)));
            }
            m.extend(tx_fields(wallet, wtx, tip));
            let confirmations = if wtx.abandoned { 0 } else { u64::from(wtx.confirmations(tip)) };
            m.insert("reversal_probability".into(), encode::float(attacker_success_probability(share, confirmations)));
            m.insert("attacker_share".into(), json!(share.get()));
            let details: Vec<Value> = entries(wallet, wtx, tip).into_iter().map(Value::Object).collect();
            m.insert("details".into(), Value::Array(details));
            m.insert("hex".into(), json!(serialize_hex(&wtx.tx)));
            Ok(Value::Object(m))
        }
        "signrawtransactionwithwallet" => signrawtransactionwithwallet(request, wallet, chain),
        "encryptwallet" => {
            let params = request.params(&[Arg::Required("passphrase")])?;
            let pass = passphrase(params.required(0)?)?;
            wallet.encrypt(&pass).map_err(wallet_error)?;
            Ok(json!("wallet encrypted; the seed is now sealed with the passphrase. You need to make a new backup."))
        }
        "walletpassphrase" => {
            let params = request.params(&[Arg::Required("passphrase"), Arg::Required("timeout")])?;
            let pass = passphrase(params.required(0)?)?;
            let timeout: i64 = params.required(1)?;
            if timeout < 0 {
                return Err(RpcError::invalid_parameter("Timeout cannot be negative."));
            }
            // Core's cap: about three years.
            let timeout = Duration::from_secs(timeout.min(100_000_000) as u64);
            wallet.unlock(&pass, timeout).map_err(wallet_error)?;
            Ok(Value::Null)
        }
        "walletlock" => {
            request.params(&[])?;
            wallet.lock().map_err(wallet_error)?;
            Ok(Value::Null)
        }
        _ => Err(RpcError::method_not_found()),
    }
}

fn listunspent(request: &Request, wallet: &Wallet, tip: u32) -> Result<Value, RpcError> {
    let params = request.params(&[
        Arg::Optional("minconf"),
        Arg::Optional("maxconf"),
        Arg::Optional("addresses"),
        Arg::Optional("include_unsafe"),
        Arg::Optional("query_options"),
    ])?;
    let min_conf: u32 = params.or(0, 1)?;
    let max_conf: u32 = params.or(1, 9_999_999)?;
    let include_unsafe: bool = params.or(3, true)?;
    let network = wallet.ledger().network();
    let mut only: Option<Vec<ScriptBuf>> = None;
    if let Some(list) = params.optional::<Vec<Value>>(2)? {
        let mut scripts = Vec::new();
        for v in list {
            let text = v.as_str().unwrap_or_default();
            let address = Address::from_str(text)
                .ok()
                .and_then(|a| a.require_network(network).ok())
                .ok_or_else(|| RpcError::invalid_address_or_key(format!("Invalid Bitcoin address: {text}")))?;
            scripts.push(address.script_pubkey());
        }
        only = Some(scripts);
    }
    let mut out = Vec::new();
    for u in wallet.ledger().utxos(tip) {
        if u.immature || u.confirmations < min_conf || u.confirmations > max_conf || (!u.trusted && !include_unsafe) {
            continue;
        }
        if only.as_ref().is_some_and(|o| !o.contains(&u.txout.script_pubkey)) {
            continue;
        }
        let address = wallet.ledger().address(u.path).to_string();
        let mut e = json!({
            "txid": u.outpoint.txid.to_string(),
            "vout": u.outpoint.vout,
            "address": address,
            "scriptPubKey": hex::encode(u.txout.script_pubkey.as_bytes()),
            "amount": encode::amount(u.txout.value),
            "confirmations": u.confirmations,
            "spendable": true,
            "solvable": true,
            "safe": u.trusted,
        });
        if let Some(label) = wallet.label(&address) {
            e["label"] = json!(label);
        }
        out.push(e);
    }
    Ok(Value::Array(out))
}

fn listtransactions(request: &Request, wallet: &Wallet, tip: u32) -> Result<Value, RpcError> {
    let params = request.params(&[
        Arg::Optional("label|dummy"),
        Arg::Optional("count"),
        Arg::Optional("skip"),
        Arg::Optional("include_watchonly"),
    ])?;
    let label: String = params.or(0, "*".to_owned())?;
    let count: i64 = params.or(1, 10)?;
    let skip: i64 = params.or(2, 0)?;
    if count < 0 {
        return Err(RpcError::invalid_parameter("Negative count"));
    }
    if skip < 0 {
        return Err(RpcError::invalid_parameter("Negative from"));
    }
    let mut txs: Vec<&WalletTx> = wallet.ledger().txs().collect();
    // Oldest first: by block, then by arrival.
    txs.sort_by_key(|w| (w.block.map_or(u32::MAX, |b| b.height), w.received, w.tx.compute_txid()));
    let mut all = Vec::new();
    for wtx in txs {
        for mut e in entries(wallet, wtx, tip) {
            if label != "*" && e.get("label").and_then(Value::as_str) != Some(label.as_str()) {
                continue;
            }
            e.extend(tx_fields(wallet, wtx, tip));
            all.push(Value::Object(e));
        }
    }
    // The `count` most recent after skipping `skip` from the newest, oldest first.
    let end = all.len().saturating_sub(skip as usize);
    let start = end.saturating_sub(count as usize);
    Ok(Value::Array(all[start..end].to_vec()))
}

fn signrawtransactionwithwallet(request: &Request, wallet: &mut Wallet, chain: &Chainstate) -> Result<Value, RpcError> {
    let params =
        request.params(&[Arg::Required("hexstring"), Arg::Optional("prevtxs"), Arg::Optional("sighashtype")])?;
    let bytes = params.hex(0)?;
    let mut tx: Transaction = deserialize(&bytes).map_err(|_| RpcError::deserialization("TX decode failed"))?;
    if let Some(kind) = params.optional::<String>(2)? {
        if kind != "ALL" && kind != "DEFAULT" {
            return Err(RpcError::invalid_parameter(format!(
                "{kind} is not a sighash type satpool's wallet signs with"
            )));
        }
    }
    let mut known = HashMap::new();
    for prev in params.or::<Vec<Value>>(1, Vec::new())? {
        let txid = prev
            .get("txid")
            .and_then(Value::as_str)
            .and_then(|t| Txid::from_str(t).ok())
            .ok_or_else(|| RpcError::deserialization("txid must be hexadecimal string"))?;
        let vout = prev
            .get("vout")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| RpcError::deserialization("vout cannot be negative"))?;
        let script = prev
            .get("scriptPubKey")
            .and_then(Value::as_str)
            .and_then(|s| hex::decode(s).ok())
            .ok_or_else(|| RpcError::deserialization("scriptPubKey must be hexadecimal string"))?;
        let Satoshis(sats) = match prev.get("amount") {
            Some(a) => FromParam::from_param(a, "amount")?,
            None => return Err(RpcError::invalid_parameter("Missing amount")),
        };
        known.insert(
            OutPoint { txid, vout },
            TxOut { value: Amount::from_sat(sats as u64), script_pubkey: ScriptBuf::from_bytes(script) },
        );
    }
    let errors = wallet.sign(&mut tx, &known, chain).map_err(wallet_error)?;
    let complete = errors.is_empty();
    let mut out = json!({"hex": serialize_hex(&tx), "complete": complete});
    if !complete {
        let list: Vec<Value> = errors
            .iter()
            .map(|(i, e)| {
                let input = &tx.input[*i];
                json!({
                    "txid": input.previous_output.txid.to_string(),
                    "vout": input.previous_output.vout,
                    "witness": input.witness.iter().map(hex::encode).collect::<Vec<_>>(),
                    "scriptSig": hex::encode(input.script_sig.as_bytes()),
                    "sequence": input.sequence.0,
                    "error": e.to_string(),
                })
            })
            .collect();
        out["errors"] = json!(list);
    }
    Ok(out)
}
