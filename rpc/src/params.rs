//! A method's arguments, positional or named, read with Core's checks and
//! Core's error messages (`rpc/util.cpp`, `rpc/server.cpp`, univalue).

use serde_json::{Map, Value};

use crate::error::RpcError;

/// One argument a method declares, in its positional order.
///
/// The name is what named-parameter requests use; as in Core it may list
/// aliases separated by `|` (`"height|hash"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// An argument the caller must give.
    Required(&'static str),
    /// An argument the caller may leave out (or pass as `null`).
    Optional(&'static str),
}

impl Arg {
    /// The declared name, aliases included.
    pub fn name(self) -> &'static str {
        match self {
            Arg::Required(name) | Arg::Optional(name) => name,
        }
    }

    fn is_optional(self) -> bool {
        matches!(self, Arg::Optional(_))
    }
}

/// A method's arguments mapped to positions, as Core's
/// `transformNamedArguments` and `RPCHelpMan::IsValidNumArgs` leave them.
///
/// Getters check the JSON type first (`RPC_TYPE_ERROR`, Core's "Wrong type
/// passed" text), then the value. Core checks every argument's type before
/// the method runs and lists all mismatches in one message; here each getter
/// reports its own argument, so a request wrong in two places names the first
/// one read.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    args: Vec<Arg>,
    values: Vec<Value>,
}

impl Params {
    /// Maps `raw` (the request's `params`: an array, an object, or `null`)
    /// onto `args`.
    ///
    /// Named parameters fill their positions; gaps before a given one become
    /// `null`, as in Core. An unknown name is `RPC_INVALID_PARAMETER`
    /// "Unknown named parameter x". Too few or too many arguments is what Core
    /// answers with the method's help text: `RPC_MISC_ERROR` with a usage line.
    pub fn new(method: &str, raw: &Value, args: &[Arg]) -> Result<Self, RpcError> {
        let values = match raw {
            Value::Null => Vec::new(),
            Value::Array(values) => values.clone(),
            Value::Object(named) => positional_from_named(named, args)?,
            other => {
                return Err(RpcError::invalid_request(format!(
                    "Params must be an array or object, not {}",
                    json_type(other)
                )))
            }
        };
        let required = args.iter().rposition(|arg| !arg.is_optional()).map_or(0, |last| last + 1);
        if values.len() < required || values.len() > args.len() {
            return Err(RpcError::misc(usage(method, args)));
        }
        Ok(Self { args: args.to_vec(), values })
    }

    /// How many positions were given (trailing omitted optionals excluded).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no argument was given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw value at `index`, `None` when absent or `null`.
    pub fn raw(&self, index: usize) -> Option<&Value> {
        self.values.get(index).filter(|v| !v.is_null())
    }

    /// A required argument. A `null` or missing value is a type error, as in
    /// Core ("JSON value of type null is not of expected type number").
    pub fn required<T: FromParam>(&self, index: usize) -> Result<T, RpcError> {
        let value = self.values.get(index).unwrap_or(&Value::Null);
        self.convert(index, value)
    }

    /// An optional argument: `None` when left out or `null`.
    pub fn optional<T: FromParam>(&self, index: usize) -> Result<Option<T>, RpcError> {
        match self.raw(index) {
            None => Ok(None),
            Some(value) => self.convert(index, value).map(Some),
        }
    }

    /// An optional argument with a default for when it is left out or `null`.
    pub fn or<T: FromParam>(&self, index: usize, default: T) -> Result<T, RpcError> {
        Ok(self.optional(index)?.unwrap_or(default))
    }

    /// A required string, borrowed.
    pub fn str(&self, index: usize) -> Result<&str, RpcError> {
        let value = self.values.get(index).unwrap_or(&Value::Null);
        match value {
            Value::String(s) => Ok(s),
            other => Err(self.type_mismatch(index, other, JsonType::String)),
        }
    }

    /// A required hex string decoded to bytes (Core's `ParseHexV`).
    pub fn hex(&self, index: usize) -> Result<Vec<u8>, RpcError> {
        self.required::<Hex>(index).map(|hex| hex.0)
    }

    /// A required 256-bit hash such as a block hash (Core's `ParseHashV`),
    /// in internal byte order: reversed from the hex text, ready for
    /// `BlockHash::from_byte_array`.
    pub fn hash(&self, index: usize) -> Result<[u8; 32], RpcError> {
        self.required::<Hash256>(index).map(|hash| hash.0)
    }

    fn name(&self, index: usize) -> &'static str {
        self.args.get(index).map_or("", |arg| arg.name())
    }

    fn convert<T: FromParam>(&self, index: usize, value: &Value) -> Result<T, RpcError> {
        if let Some(expected) = T::EXPECTED {
            if json_type(value) != expected.as_str() {
                return Err(self.type_mismatch(index, value, expected));
            }
        }
        T::from_param(value, self.name(index))
    }

    fn type_mismatch(&self, index: usize, value: &Value, expected: JsonType) -> RpcError {
        // `RPCHelpMan::HandleRequest`: the mismatches as a UniValue object
        // written with a four-space indent.
        RpcError::type_error(format!(
            "Wrong type passed:\n{{\n    \"Position {} ({})\": \"JSON value of type {} is not of expected type {}\"\n}}",
            index + 1,
            self.name(index),
            json_type(value),
            expected.as_str()
        ))
    }
}

/// Core's `transformNamedArguments`, without the `args`/`options` extensions.
fn positional_from_named(named: &Map<String, Value>, args: &[Arg]) -> Result<Vec<Value>, RpcError> {
    let mut left: Vec<(&String, &Value)> = named.iter().collect();
    let mut out = Vec::new();
    let mut hole = 0;
    for arg in args {
        let found = arg.name().split('|').find_map(|alias| left.iter().position(|(key, _)| key.as_str() == alias));
        match found {
            Some(at) => {
                out.extend(std::iter::repeat_n(Value::Null, hole));
                hole = 0;
                out.push(left.remove(at).1.clone());
            }
            None => hole += 1,
        }
    }
    match left.first() {
        Some((key, _)) => Err(RpcError::invalid_parameter(format!("Unknown named parameter {key}"))),
        None => Ok(out),
    }
}

/// The first line of Core's help text, which is what it answers (with
/// `RPC_MISC_ERROR`) when the argument count is wrong.
fn usage(method: &str, args: &[Arg]) -> String {
    let mut line = method.to_owned();
    let mut in_optional = false;
    for arg in args {
        if arg.is_optional() && !in_optional {
            line.push_str(" (");
            in_optional = true;
        }
        line.push(' ');
        line.push_str(arg.name());
    }
    if in_optional {
        line.push_str(" )");
    }
    line
}

/// univalue's type names (`uvTypeName`).
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON type a [`FromParam`] type expects, named as univalue names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `true` or `false`.
    Bool,
    /// Any JSON number.
    Number,
    /// A JSON string.
    String,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
}

impl JsonType {
    /// univalue's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::Bool => "bool",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }
}

/// A type an argument can be read as.
pub trait FromParam: Sized {
    /// The JSON type checked before [`FromParam::from_param`] runs; `None`
    /// takes any type.
    const EXPECTED: Option<JsonType>;

    /// Converts a value already of type [`FromParam::EXPECTED`]; `name` is the
    /// argument's declared name, for messages.
    fn from_param(value: &Value, name: &str) -> Result<Self, RpcError>;
}

macro_rules! integer_param {
    ($($ty:ty),*) => {$(
        impl FromParam for $ty {
            const EXPECTED: Option<JsonType> = Some(JsonType::Number);

            /// univalue's `getInt<T>`: an integer that fits, else
            /// `RPC_MISC_ERROR` "JSON integer out of range".
            fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
                let number = value.as_number();
                number
                    .and_then(|n| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)))
                    .and_then(|n| <$ty>::try_from(n).ok())
                    .ok_or_else(|| RpcError::misc("JSON integer out of range"))
            }
        }
    )*};
}

integer_param!(u8, u16, u32, u64, i32, i64);

impl FromParam for f64 {
    const EXPECTED: Option<JsonType> = Some(JsonType::Number);

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        value.as_f64().ok_or_else(|| RpcError::misc("JSON number out of range"))
    }
}

impl FromParam for bool {
    const EXPECTED: Option<JsonType> = Some(JsonType::Bool);

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        Ok(value.as_bool().unwrap_or_default())
    }
}

impl FromParam for String {
    const EXPECTED: Option<JsonType> = Some(JsonType::String);

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        Ok(value.as_str().unwrap_or_default().to_owned())
    }
}

impl FromParam for Map<String, Value> {
    const EXPECTED: Option<JsonType> = Some(JsonType::Object);

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        Ok(value.as_object().cloned().unwrap_or_default())
    }
}

impl FromParam for Vec<Value> {
    const EXPECTED: Option<JsonType> = Some(JsonType::Array);

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        Ok(value.as_array().cloned().unwrap_or_default())
    }
}

impl FromParam for Value {
    const EXPECTED: Option<JsonType> = None;

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        Ok(value.clone())
    }
}

/// Bytes given as a hex string, read with Core's `ParseHexV`: a non-empty,
/// even-length string of hex digits, else `RPC_INVALID_PARAMETER`
/// "<name> must be hexadecimal string (not '...')".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl FromParam for Hex {
    const EXPECTED: Option<JsonType> = Some(JsonType::String);

    fn from_param(value: &Value, name: &str) -> Result<Self, RpcError> {
        let text = value.as_str().unwrap_or_default();
        // Core's `IsHex` refuses the empty string too.
        match hex::decode(text) {
            Ok(bytes) if !bytes.is_empty() => Ok(Hex(bytes)),
            _ => Err(RpcError::invalid_parameter(format!("{name} must be hexadecimal string (not '{text}')"))),
        }
    }
}

/// A 256-bit hash given as 64 hex digits, read with Core's `ParseHashV`;
/// the bytes are in internal order (the reverse of the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash256(pub [u8; 32]);

impl FromParam for Hash256 {
    const EXPECTED: Option<JsonType> = Some(JsonType::String);

    fn from_param(value: &Value, name: &str) -> Result<Self, RpcError> {
        let text = value.as_str().unwrap_or_default();
        let mut bytes = [0u8; 32];
        if text.len() != 64 {
            return Err(RpcError::invalid_parameter(format!(
                "{name} must be of length 64 (not {}, for '{text}')",
                text.len()
            )));
        }
        if hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(RpcError::invalid_parameter(format!("{name} must be hexadecimal string (not '{text}')")));
        }
        bytes.reverse();
        Ok(Hash256(bytes))
    }
}

/// An amount in satoshis given in BTC as a number or string, read with
/// Core's `AmountFromValue` (at most 8 decimals, within the money range).
///
/// The number's text is what serde_json keeps of it (an `f64`), so values
/// past 15 significant digits may round where Core would refuse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Satoshis(pub i64);

/// Core's `MAX_MONEY`.
const MAX_MONEY: i64 = 21_000_000 * 100_000_000;

impl FromParam for Satoshis {
    const EXPECTED: Option<JsonType> = None;

    fn from_param(value: &Value, _name: &str) -> Result<Self, RpcError> {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return Err(RpcError::type_error("Amount is not a number or string")),
        };
        let sats = parse_fixed_point_8(&text).ok_or_else(|| RpcError::type_error("Invalid amount"))?;
        if !(0..=MAX_MONEY).contains(&sats) {
            return Err(RpcError::type_error("Amount out of range"));
        }
        Ok(Satoshis(sats))
    }
}

/// Core's `ParseFixedPoint` with 8 decimals: `-?digits(.digits)?(e[+-]?digits)?`
/// naming a whole number of satoshis.
fn parse_fixed_point_8(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(frac) || !(-100..=100).contains(&exponent) {
        return None;
    }
    let digits = format!("{whole}{frac}");
    let digits = digits.trim_start_matches('0');
    // sats = digits * 10^scale
    let scale = 8 + exponent - i32::try_from(frac.len()).ok()?;
    let digits = if scale < 0 {
        let cut = digits.len().checked_sub(usize::try_from(-scale).ok()?)?;
        let (kept, dropped) = digits.split_at(cut);
        if dropped.bytes().any(|b| b != b'0') {
            return None;
        }
        kept
    } else {
        digits
    };
    if digits.len() > 18 {
        return None;
    }
    let mantissa: i64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let sats = mantissa.checked_mul(10i64.checked_pow(u32::try_from(scale.max(0)).ok()?)?)?;
    Some(if negative { -sats } else { sats })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    const ARGS: &[Arg] = &[Arg::Required("a"), Arg::Required("b"), Arg::Optional("c|alias")];

    #[test]
    fn named_parameters_map_to_positions() {
        type Case = (&'static str, Value, Result<Vec<Value>, (i32, &'static str)>);
        let cases: &[Case] = &[
            ("positional", json!([1, 2]), Ok(vec![json!(1), json!(2)])),
            ("named in any order", json!({"b": 2, "a": 1}), Ok(vec![json!(1), json!(2)])),
            ("alias", json!({"a": 1, "b": 2, "alias": 3}), Ok(vec![json!(1), json!(2), json!(3)])),
            ("hole becomes null", json!({"a": 1, "c": 3}), Ok(vec![json!(1), Value::Null, json!(3)])),
            ("trailing holes dropped", json!({"a": 1}), Err((-1, "m a b ( c|alias )"))),
            ("unknown name", json!({"a": 1, "b": 2, "zz": 3}), Err((-8, "Unknown named parameter zz"))),
            ("too few", json!([1]), Err((-1, "m a b ( c|alias )"))),
            ("too many", json!([1, 2, 3, 4]), Err((-1, "m a b ( c|alias )"))),
            ("null is none", Value::Null, Err((-1, "m a b ( c|alias )"))),
            ("scalar", json!(5), Err((-32600, "Params must be an array or object, not number"))),
        ];
        for (name, raw, want) in cases {
            let got = Params::new("m", raw, ARGS).map(|p| p.values).map_err(|e| (e.code.code(), e.message));
            let want = want.clone().map_err(|(c, m)| (c, m.to_owned()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn hole_before_given_named_is_null() {
        let p = Params::new("m", &json!({"b": 2}), &[Arg::Optional("a"), Arg::Required("b")]).unwrap();
        assert_eq!(p.values, vec![Value::Null, json!(2)]);
        assert_eq!(p.optional::<u64>(0).unwrap(), None);
    }

    #[test]
    fn getters_use_core_messages() {
        let p = Params::new(
            "m",
            &json!(["x", 1.5, -1, "zz", "00ff", "", "ab"]),
            &[
                Arg::Required("height"),
                Arg::Required("f"),
                Arg::Required("neg"),
                Arg::Required("hexstring"),
                Arg::Required("ok"),
                Arg::Required("empty"),
                Arg::Required("blockhash"),
            ],
        )
        .unwrap();
        let err = p.required::<u64>(0).unwrap_err();
        assert_eq!(err.code, ErrorCode::TypeError);
        assert_eq!(
            err.message,
            "Wrong type passed:\n{\n    \"Position 1 (height)\": \"JSON value of type string is not of expected type number\"\n}"
        );
        assert_eq!(p.required::<u64>(1).unwrap_err().message, "JSON integer out of range");
        assert_eq!(p.required::<u32>(2).unwrap_err().code, ErrorCode::MiscError);
        assert_eq!(p.required::<i64>(2).unwrap(), -1);
        let err = p.hex(3).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (ErrorCode::InvalidParameter, "hexstring must be hexadecimal string (not 'zz')")
        );
        assert_eq!(p.hex(4).unwrap(), vec![0, 255]);
        assert_eq!(p.hex(5).unwrap_err().message, "empty must be hexadecimal string (not '')");
        assert_eq!(p.hash(6).unwrap_err().message, "blockhash must be of length 64 (not 2, for 'ab')");
        assert_eq!(p.str(0).unwrap(), "x");
        assert!(p.required::<bool>(0).unwrap_err().message.contains("type string is not of expected type bool"));
        assert!(p.required::<u64>(9).unwrap_err().message.contains("JSON value of type null"));
        assert_eq!(p.or::<u64>(9, 7).unwrap(), 7);
    }

    #[test]
    fn hashes() {
        let good = format!("{}01", "00".repeat(31));
        let bad = format!("{}0g", "00".repeat(31));
        let p = Params::new("m", &json!([good, bad]), &[Arg::Required("blockhash"), Arg::Required("h")]).unwrap();
        let mut want = [0u8; 32];
        want[0] = 1;
        assert_eq!(p.hash(0).unwrap(), want);
        assert_eq!(p.hash(1).unwrap_err().message, format!("h must be hexadecimal string (not '{bad}')"));
    }

    #[test]
    fn amounts() {
        let cases: &[(Value, Result<i64, &str>)] = &[
            (json!(1), Ok(100_000_000)),
            (json!(0.00000001), Ok(1)),
            (json!("0.1"), Ok(10_000_000)),
            (json!(21000000), Ok(MAX_MONEY)),
            (json!(21000000.00000001), Err("Amount out of range")),
            (json!(0.000000001), Err("Invalid amount")),
            (json!("0.000000010"), Ok(1)),
            (json!("2e-8"), Ok(2)),
            (json!("1.5E1"), Ok(1_500_000_000)),
            (json!("0"), Ok(0)),
            (json!(".5"), Err("Invalid amount")),
            (json!(1e300), Err("Invalid amount")),
            (json!("1e3"), Ok(100_000_000_000)),
            (json!(-1), Err("Amount out of range")),
            (json!(true), Err("Amount is not a number or string")),
        ];
        for (value, want) in cases {
            let got = Satoshis::from_param(value, "amount").map(|s| s.0).map_err(|e| e.message);
            assert_eq!(got, want.map_err(str::to_owned), "{value}");
        }
    }
}
