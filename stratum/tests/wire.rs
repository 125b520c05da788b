//! Lines as real clients and pools send them, written from what each is
//! documented to send; the exact lines we write; and the typed errors for
//! malformed lines.

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use satpool_stratum::{
    ConfigureResult, ErrorCode, ErrorReply, FieldError, Id, Message, Method, ParseError, Request, Response,
    ShareDifficulty, SubscribeResult, VersionMask,
};
use serde_json::json;

fn request(line: &str) -> Request {
    match Message::parse(line) {
        Ok(Message::Request(request)) => request,
        other => panic!("{line}: not a request: {other:?}"),
    }
}

fn response(line: &str) -> Response {
    match Message::parse(line) {
        Ok(Message::Response(response)) => response,
        other => panic!("{line}: not a response: {other:?}"),
    }
}

/// Every captured line parses, writes back as one `\n`-terminated line, and
/// that line parses to the same message.
#[test]
fn captured_lines_round_trip() {
    let lines = [
        // cpuminer 2.5.1
        r#"{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1"]}"#,
        r#"{"id": 2, "method": "mining.authorize", "params": ["bc1qworker.cpu", "x"]}"#,
        r#"{"method": "mining.submit", "params": ["bc1qworker.cpu", "6", "00000000", "504e86ed", "b2957c02"], "id":4}"#,
        // cgminer 4.12 (resuming a session), submit as cgminer formats it
        r#"{"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.12.0", "08000002"]}"#,
        r#"{"params": ["worker1", "4f", "fe36a31b", "504e86ed", "e9695791"], "id": 4, "method": "mining.submit"}"#,
        // bfgminer: subscribe, and its capabilities announcement (unknown to us)
        r#"{"id": 0, "method": "mining.subscribe", "params": ["bfgminer/5.5.0"]}"#,
        r#"{"id": null, "method": "mining.capabilities", "params": [{"notify": [], "set_difficulty": {}, "set_goal": [], "suggested_target": "0000000000000000000000000000000000000000000000000000ffff00000000"}]}"#,
        // Antminer (bmminer): configure with three extensions, submit with version bits
        r#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]}"#,
        r#"{"id":2,"method":"mining.subscribe","params":["bmminer/2.0.0"]}"#,
        r#"{"params": ["user.s9", "1a2b", "00000000", "5e2a0b3c", "1dbe0a4f", "04d46000"], "id": 26, "method": "mining.submit"}"#,
        // BIP 310's own example
        r#"{"method": "mining.configure","id": 1,"params": [["minimum-difficulty", "version-rolling"],{"minimum-difficulty.value": 2048, "version-rolling.mask": "00fff000", "version-rolling.min-bit-count": 2}]}"#,
        // Whatsminer: suggest_difficulty before subscribe
        r#"{"id":1,"method":"mining.suggest_difficulty","params":[512]}"#,
        r#"{"id":2,"method":"mining.subscribe","params":["btminer/1.0"]}"#,
        // NiceHash-style extranonce subscription, and the notification it enables
        r#"{"id": 3, "method": "mining.extranonce.subscribe", "params": []}"#,
        r#"{"id": null, "method": "mining.set_extranonce", "params": ["08000002", 4]}"#,
        // An authorize without a password, a string id
        r#"{"id": "auth-1", "method": "mining.authorize", "params": ["worker"]}"#,
        // Pool side (slush's documentation)
        r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#,
        r#"{"id": null, "method": "mining.set_difficulty", "params": [0.001]}"#,
        r#"{"id": null, "method": "client.reconnect", "params": ["pool.example", 3333, 0]}"#,
        r#"{"id": null, "method": "client.reconnect", "params": ["pool.example", "3333"]}"#,
        r#"{"id": null, "method": "client.reconnect", "params": []}"#,
        r#"{"id": null, "method": "client.show_message", "params": ["Pool maintenance at 12:00 UTC"]}"#,
        r#"{"id": 1, "result": [[["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#,
        r#"{"id": 2, "result": true, "error": null}"#,
        r#"{"id": 4, "result": null, "error": [23, "Low difficulty share", null]}"#,
        r#"{"id": 5, "result": null, "error": {"code": 21, "message": "Job not found"}}"#,
        r#"{"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":false},"error":null}"#,
    ];
    for line in lines {
        let message = Message::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let written = message.to_line();
        assert!(written.ends_with('\n') && !written[..written.len() - 1].contains('\n'), "{written}");
        let again = Message::parse(&written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(again, message, "{line}");
        assert_eq!(again.to_line(), written, "writing is deterministic");
    }
}

#[test]
fn typed_contents_of_captured_lines() {
    let r = request(r#"{"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.12.0", "08000002"]}"#);
    assert_eq!(r.id, Id::from(0));
    let Method::Subscribe(s) = r.method else { panic!("subscribe") };
    assert_eq!(s.user_agent.as_deref(), Some("cgminer/4.12.0"));
    assert_eq!(s.session_id.as_deref(), Some("08000002"));

    let r = request(
        r#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]}"#,
    );
    let Method::Configure(c) = r.method else { panic!("configure") };
    assert!(c.wants("version-rolling") && c.wants("subscribe-extranonce"));
    assert_eq!(c.version_rolling_mask, Some(VersionMask::BIP320));
    assert_eq!(c.version_rolling_min_bit_count, Some(2));
    assert_eq!(c.minimum_difficulty.map(ShareDifficulty::as_f64), Some(2048.0));
    assert!(c.other_params.is_empty());
    // The server grants its mask ∩ the miner's and refuses the rest.
    let answer = ConfigureResult::answer(&c, VersionMask(0x1fff_0000));
    assert_eq!(answer.version_rolling, Some(VersionMask(0x1fff_0000)));
    assert_eq!(answer.answers, vec![("minimum-difficulty".into(), false), ("subscribe-extranonce".into(), false)]);
    assert_eq!(
        Response::ok(Id::from(1), answer.to_value()).to_line(),
        "{\"id\":1,\"result\":{\"minimum-difficulty\":false,\"subscribe-extranonce\":false,\"version-rolling\":true,\"version-rolling.mask\":\"1fff0000\"},\"error\":null}\n"
    );
    let refused = ConfigureResult::answer(&c, VersionMask::NONE);
    assert_eq!(refused.version_rolling, None);
    assert_eq!(refused.answers[0], ("version-rolling".into(), false));
    let back = ConfigureResult::from_value(&answer.to_value()).expect("valid result");
    assert_eq!(back.version_rolling, answer.version_rolling);

    let r = request(
        r#"{"params": ["user.s9", "1a2b", "00000000", "5e2a0b3c", "1dbe0a4f", "04d46000"], "id": 26, "method": "mining.submit"}"#,
    );
    let Method::Submit(s) = r.method else { panic!("submit") };
    assert_eq!((s.ntime, s.nonce, s.version_bits), (0x5e2a0b3c, 0x1dbe0a4f, Some(0x04d46000)));
    assert_eq!(s.extranonce2.to_string(), "00000000");

    let r = request(
        r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#,
    );
    assert_eq!(r.id, Id::Null);
    let Method::Notify(n) = r.method else { panic!("notify") };
    // Stratum's word order back to display order.
    assert_eq!(
        n.prev_hash,
        "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8".parse::<BlockHash>().expect("hex")
    );
    assert_eq!((n.version.to_consensus(), n.nbits.to_consensus(), n.ntime), (2, 0x1c2a_c4af, 0x504e_86b9));
    assert!(!n.clean_jobs && n.merkle_branch.is_empty());

    let r = response(
        r#"{"id": 1, "result": [[["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#,
    );
    let result = SubscribeResult::from_value(r.outcome.as_ref().expect("a result")).expect("subscribe result");
    assert_eq!(result.extranonce1.to_string(), "08000002");
    assert_eq!(result.extranonce2_size, 4);
    assert_eq!(result.subscriptions[1].0, "mining.notify");
    // Some pools send one pair instead of a list of pairs.
    let single = SubscribeResult::from_value(&json!([["mining.notify", "ae68"], "08000002", 4])).expect("one pair");
    assert_eq!(single.subscriptions, vec![("mining.notify".into(), "ae68".into())]);

    let r = response(r#"{"id": 5, "result": null, "error": {"code": 21, "message": "Job not found"}}"#);
    assert_eq!(r.outcome, Err(ErrorReply { code: ErrorCode::JobNotFound, message: "Job not found".into() }));

    let r = request(r#"{"id": null, "method": "client.reconnect", "params": ["pool.example", "3333"]}"#);
    let Method::Reconnect(c) = r.method else { panic!("reconnect") };
    assert_eq!((c.host.as_deref(), c.port, c.wait_secs), (Some("pool.example"), Some(3333), None));
}

#[test]
fn lines_we_write() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "low difficulty reply in the shape firmware parses",
            Response::reject(Id::from(4), ErrorCode::LowDifficulty).to_line(),
            "{\"id\":4,\"result\":null,\"error\":[23,\"Low difficulty share\",null]}\n",
        ),
        (
            "unknown method answered with code 20, id kept as a string",
            Response::unknown_method(Id::from("x7"), "mining.capabilities").to_line(),
            "{\"id\":\"x7\",\"result\":null,\"error\":[20,\"Unknown method mining.capabilities\",null]}\n",
        ),
        (
            "authorize result",
            Response::ok(Id::from(2), serde_json::Value::Bool(true)).to_line(),
            "{\"id\":2,\"result\":true,\"error\":null}\n",
        ),
        (
            "subscribe result",
            Response::ok(Id::from(1), SubscribeResult::new("ab", "08000002".parse().expect("hex"), 4).to_value())
                .to_line(),
            "{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"ab\"],[\"mining.notify\",\"ab\"]],\"08000002\",4],\"error\":null}\n",
        ),
        (
            "fractional difficulty without float noise",
            Request::notification(Method::SetDifficulty(ShareDifficulty::new(0.001).expect("valid"))).to_line(),
            "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[0.001]}\n",
        ),
        (
            "tiny difficulty in plain decimal",
            Request::notification(Method::SetDifficulty(ShareDifficulty::new(0.00001).expect("valid"))).to_line(),
            "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[0.00001]}\n",
        ),
        (
            "integral difficulty as an integer",
            Request::notification(Method::SetDifficulty(ShareDifficulty::new(65536.0).expect("valid"))).to_line(),
            "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[65536]}\n",
        ),
        (
            "notify with the prevhash word-swapped",
            Request::notification(Method::Notify(satpool_stratum::Notify {
                job_id: "1f".into(),
                prev_hash: "00000000000000000328e9fea9914ad83b7404a838aa66aefb970e5689c2f63d".parse().expect("hex"),
                coinb1: vec![1, 2],
                coinb2: vec![3],
                merkle_branch: vec![bitcoin::TxMerkleNode::from_byte_array([0xab; 32])],
                version: bitcoin::block::Version::from_consensus(0x2000_0000),
                nbits: bitcoin::CompactTarget::from_consensus(0x1703_4219),
                ntime: 0x6650_0000,
                clean_jobs: true,
            }))
            .to_line(),
            "{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"1f\",\"89c2f63dfb970e5638aa66ae3b7404a8a9914ad80328e9fe0000000000000000\",\"0102\",\"03\",[\"abababababababababababababababababababababababababababababababab\"],\"20000000\",\"17034219\",\"66500000\",true]}\n",
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn malformed_lines_are_typed_errors_that_name_the_problem() {
    let cases: &[(&str, &str, &str)] = &[
        ("empty", "   ", "line is empty"),
        ("not json", "{\"id\":1,", "line is not JSON"),
        ("array", "[1,2]", "not a JSON object"),
        ("bool id", r#"{"id":true,"method":"mining.subscribe","params":[]}"#, "id is a boolean"),
        ("numeric method", r#"{"id":1,"method":5,"params":[]}"#, "method is not a string"),
        ("neither", r#"{"id":1}"#, "no method, result or error"),
        ("params object", r#"{"id":1,"method":"mining.submit","params":{}}"#, "mining.submit: params are not an array"),
        (
            "submit with 4 params",
            r#"{"id":1,"method":"mining.submit","params":["w","j","00","504e86ed"]}"#,
            "mining.submit: 4 params, expected 5 or 6",
        ),
        (
            "short nonce",
            r#"{"id":1,"method":"mining.submit","params":["w","j","00","504e86ed","b2957c0"]}"#,
            "mining.submit: param 4 (nonce) has 7 hex digits, expected 8",
        ),
        (
            "non-hex ntime",
            r#"{"id":1,"method":"mining.submit","params":["w","j","00","504e86eg","b2957c02"]}"#,
            "param 3 (ntime) is not hex",
        ),
        (
            "odd extranonce2",
            r#"{"id":1,"method":"mining.submit","params":["w","j","000","504e86ed","b2957c02"]}"#,
            "param 2 (extranonce2) is not hex",
        ),
        (
            "numeric worker",
            r#"{"id":1,"method":"mining.submit","params":[7,"j","00","504e86ed","b2957c02"]}"#,
            "param 0 (worker) is not a string",
        ),
        ("zero difficulty", r#"{"id":null,"method":"mining.set_difficulty","params":[0]}"#, "not greater than zero"),
        ("string difficulty", r#"{"id":null,"method":"mining.set_difficulty","params":["1"]}"#, "is not a number"),
        (
            "short prevhash",
            r#"{"id":null,"method":"mining.notify","params":["j","00","","",[],"00000002","1c2ac4af","504e86b9",false]}"#,
            "param 1 (prevhash) has 2 hex digits, expected 64",
        ),
        (
            "notify with 8 params",
            r#"{"id":null,"method":"mining.notify","params":["j","00","","",[],"00000002","1c2ac4af","504e86b9"]}"#,
            "mining.notify: 8 params, expected 9",
        ),
        (
            "string clean_jobs",
            r#"{"id":null,"method":"mining.notify","params":["j","0000000000000000000000000000000000000000000000000000000000000000","","",[],"00000002","1c2ac4af","504e86b9","true"]}"#,
            "param 8 (clean_jobs) is not a boolean",
        ),
        (
            "bad mask",
            r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"fffe000"}]}"#,
            "mining.configure: version-rolling.mask has 7 hex digits, expected 8",
        ),
        (
            "huge extranonce2 size",
            r#"{"id":null,"method":"mining.set_extranonce","params":["00",1000]}"#,
            "param 1 (extranonce2_size) is not an integer from 0 to 100",
        ),
        ("bad error member", r#"{"id":1,"result":null,"error":"boom"}"#, "error is neither"),
    ];
    for (name, line, want) in cases {
        match Message::parse(line) {
            Ok(message) => panic!("{name}: parsed as {message:?}"),
            Err(e) => assert!(e.to_string().contains(want), "{name}: {e} (wanted {want:?})"),
        }
    }
    let err = Message::parse(r#"{"id":1,"method":"mining.submit","params":["w","j","00","504e86ed","b2957c0"]}"#)
        .expect_err("short nonce");
    assert!(matches!(
        err,
        ParseError::Param { index: 4, name: "nonce", error: FieldError::HexLength { expected: 8, got: 7 }, .. }
    ));
}

#[test]
fn unknown_methods_keep_their_name_and_params() {
    let r = request(r#"{"id":9,"method":"mining.get_transactions","params":["3a"]}"#);
    assert_eq!(r.id, Id::from(9));
    assert_eq!(r.method, Method::Unknown { method: "mining.get_transactions".into(), params: json!(["3a"]) });
    assert_eq!(r.method.name(), "mining.get_transactions");
}

#[test]
fn trailing_newline_and_crlf_are_fine() {
    for line in ["{\"id\":1,\"result\":true,\"error\":null}\n", "{\"id\":1,\"result\":true,\"error\":null}\r\n"] {
        assert_eq!(response(line).outcome, Ok(json!(true)));
    }
}
