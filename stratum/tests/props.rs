//! Property tests of the line codec: every message written parses back to
//! itself, and no line whatever makes the parser panic.

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use proptest::prelude::*;
use satpool_stratum::{
    Authorize, Configure, ErrorCode, ErrorReply, Extranonce1, Extranonce2, Id, Message, Method, Notify, Reconnect,
    Request, Response, SetExtranonce, ShareDifficulty, Submit, Subscribe,
};
use serde_json::{Map, Number, Value};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-zA-Z0-9._/-]{0,24}"]
}

fn difficulty() -> impl Strategy<Value = ShareDifficulty> {
    prop_oneof![
        any::<f64>(),
        (1u32..1_000_000, 0i32..8).prop_map(|(m, e)| f64::from(m) / 10f64.powi(e)),
        Just(0.00001),
        Just(0.001),
    ]
    .prop_filter_map("finite and positive", |d| ShareDifficulty::new(d.abs()).ok())
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        Just(Id::Null),
        any::<u64>().prop_map(Id::from),
        any::<i64>().prop_map(|n| Id::Number(Number::from(n))),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Id::Number)),
        text().prop_map(Id::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn method() -> impl Strategy<Value = Method> {
    let configure = (
        prop::collection::vec(text(), 0..4),
        any::<Option<u32>>(),
        prop::option::of(0u32..=32),
        prop::option::of(difficulty()),
        prop::collection::btree_map("[a-z]{1,6}\\.[a-z]{1,6}", json_value(), 0..3),
    )
        .prop_map(|(extensions, mask, bits, min, other)| {
            Method::Configure(Configure {
                extensions,
                version_rolling_mask: mask.map(satpool_stratum::VersionMask),
                version_rolling_min_bit_count: bits,
                minimum_difficulty: min,
                other_params: other.into_iter().collect::<Map<_, _>>(),
            })
        });
    let submit = (text(), text(), bytes(12), any::<u32>(), any::<u32>(), any::<Option<u32>>()).prop_map(
        |(worker, job_id, e2, ntime, nonce, version_bits)| {
            Method::Submit(Submit {
                worker,
                job_id,
                extranonce2: Extranonce2::from_bytes(e2).expect("short"),
                ntime,
                nonce,
                version_bits,
            })
        },
    );
    let notify = (
        text(),
        any::<[u8; 32]>(),
        bytes(80),
        bytes(80),
        prop::collection::vec(any::<[u8; 32]>(), 0..5),
        (any::<i32>(), any::<u32>(), any::<u32>(), any::<bool>()),
    )
        .prop_map(|(job_id, prev, coinb1, coinb2, branch, (version, nbits, ntime, clean_jobs))| {
            Method::Notify(Notify {
                job_id,
                prev_hash: BlockHash::from_byte_array(prev),
                coinb1,
                coinb2,
                merkle_branch: branch.into_iter().map(TxMerkleNode::from_byte_array).collect(),
                version: Version::from_consensus(version),
                nbits: CompactTarget::from_consensus(nbits),
                ntime,
                clean_jobs,
            })
        });
    prop_oneof![
        (prop::option::of(text()), prop::option::of(text()))
            .prop_map(|(user_agent, session_id)| Method::Subscribe(Subscribe { user_agent, session_id })),
        (text(), prop::option::of(text())).prop_map(|(user, password)| Method::Authorize(Authorize { user, password })),
        configure,
        difficulty().prop_map(Method::SuggestDifficulty),
        Just(Method::ExtranonceSubscribe),
        submit,
        difficulty().prop_map(Method::SetDifficulty),
        notify,
        (bytes(16), 0usize..=100).prop_map(|(e1, extranonce2_size)| Method::SetExtranonce(SetExtranonce {
            extranonce1: Extranonce1::from_bytes(e1).expect("short"),
            extranonce2_size,
        })),
        (prop::option::of(text()), any::<Option<u16>>(), any::<Option<u64>>())
            .prop_map(|(host, port, wait_secs)| Method::Reconnect(Reconnect { host, port, wait_secs })),
        text().prop_map(Method::ShowMessage),
        ("x\\.[a-z_.]{0,12}", json_value()).prop_map(|(method, params)| Method::Unknown { method, params }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (id(), method()).prop_map(|(id, method)| Message::Request(Request { id, method })),
        (id(), json_value()).prop_map(|(id, result)| Message::Response(Response::ok(id, result))),
        (id(), any::<i64>(), text()).prop_map(|(id, code, message)| Message::Response(Response {
            id,
            outcome: Err(ErrorReply { code: ErrorCode::from_code(code), message }),
        })),
    ]
}

const KNOWN: &[&str] = &[
    "mining.subscribe",
    "mining.authorize",
    "mining.configure",
    "mining.suggest_difficulty",
    "mining.extranonce.subscribe",
    "mining.submit",
    "mining.set_difficulty",
    "mining.notify",
    "mining.set_extranonce",
    "client.reconnect",
    "client.show_message",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_message_round_trips(message in message()) {
        let line = message.to_line();
        prop_assert!(line.ends_with('\n'));
        prop_assert!(!line[..line.len() - 1].contains('\n'), "one line: {}", line);
        let parsed = Message::parse(&line);
        prop_assert!(parsed.is_ok(), "{}: {:?}", line, parsed);
        prop_assert_eq!(parsed.expect("checked above"), message);
    }

    #[test]
    fn random_text_never_panics(line in ".{0,200}") {
        let _ = Message::parse(&line);
    }

    #[test]
    fn random_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Message::parse(&String::from_utf8_lossy(&raw));
    }

    /// Known methods with params of any shape: the param readers must
    /// reject, never panic.
    #[test]
    fn known_methods_with_random_params_never_panic(
        method in prop::sample::select(KNOWN),
        id in json_value(),
        params in prop::collection::vec(json_value(), 0..10),
    ) {
        let line = serde_json::json!({"id": id, "method": method, "params": params}).to_string();
        let _ = Message::parse(&line);
    }

    /// A valid line cut short or with a byte changed never panics.
    #[test]
    fn mangled_valid_lines_never_panic(message in message(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let line = message.to_line();
        let at = cut.index(line.len());
        let _ = Message::parse(&line[..line.floor_char_boundary_compat(at)]);
        let mut mangled = line.into_bytes();
        mangled[at] = byte;
        let _ = Message::parse(&String::from_utf8_lossy(&mangled));
    }

    #[test]
    fn difficulty_text_round_trips(d in difficulty()) {
        prop_assert_eq!(d.to_string().parse::<ShareDifficulty>(), Ok(d));
        prop_assert!(!d.to_string().contains('e'));
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut index: usize) -> usize {
        while !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}
