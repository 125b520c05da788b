//! Every row of Core's `script_tests.json`: evaluate, and compare the error
//! name with the expected one. Also, as Core's `DoTest` does, removing a flag
//! from a passing row, or adding one to a failing row, must not change
//! whether it passes.

mod common;

use bitcoin::secp256k1::{Scalar, Secp256k1, XOnlyPublicKey};
use bitcoin::Amount;
use satpool_consensus::taproot::{tapleaf_hash, taptweak_hash, TAPROOT_LEAF_TAPSCRIPT};
use satpool_consensus::{verify_script_bytes, PrecomputedTx, ScriptError, TransactionSignatureChecker, VerifyFlags};
use serde_json::Value;

use common::{crediting_tx, load, parse_flags, parse_script, spending_tx};

/// BIP341's NUMS point: a key nobody knows the discrete log of. Core uses
/// another internal key; no row can tell them apart (none spends the key
/// path).
const NUMS: &str = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0";

struct Case {
    witness: Vec<Vec<u8>>,
    amount: Amount,
    script_sig: Vec<u8>,
    script_pubkey: Vec<u8>,
    flags: VerifyFlags,
    expected: String,
}

/// Fills in the `#SCRIPT#`, `#CONTROLBLOCK#` and `#TAPROOTOUTPUT#`
/// placeholders that Core's harness generates: a one-leaf tapscript tree.
fn parse_case(row: &[Value]) -> Result<Case, String> {
    let (wit, rest) = match &row[0] {
        Value::Array(w) => (Some(w), &row[1..]),
        _ => (None, row),
    };
    let text = |v: &Value| v.as_str().map(str::to_owned).ok_or("not a string".to_owned());
    let mut pubkey_asm = text(&rest[1])?;
    let mut witness = Vec::new();
    let mut amount = Amount::ZERO;
    if let Some(wit) = wit {
        let (last, items) = wit.split_last().ok_or("empty witness array")?;
        let btc = last.as_f64().ok_or("amount is not a number")?;
        amount = Amount::from_sat((btc * 1e8).round() as u64);
        let mut leaf_script: Option<Vec<u8>> = None;
        for item in items {
            let item = item.as_str().ok_or("witness item is not a string")?;
            if let Some(asm) = item.strip_prefix("#SCRIPT#") {
                let script = parse_script(asm)?;
                leaf_script = Some(script.clone());
                witness.push(script);
            } else if item == "#CONTROLBLOCK#" {
                let script = leaf_script.as_ref().ok_or("control block before script")?;
                let (control, output_key) = one_leaf_tree(script);
                witness.push(control);
                pubkey_asm = pubkey_asm.replace("#TAPROOTOUTPUT#", &format!("0x{}", hex::encode(output_key)));
            } else {
                witness.push(hex::decode(item).map_err(|e| format!("witness hex: {e}"))?);
            }
        }
    }
    Ok(Case {
        witness,
        amount,
        script_sig: parse_script(&text(&rest[0])?)?,
        script_pubkey: parse_script(&pubkey_asm)?,
        flags: parse_flags(&text(&rest[2])?),
        expected: text(&rest[3])?,
    })
}

/// The control block and output key of a tree holding only `script`.
fn one_leaf_tree(script: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let secp = Secp256k1::verification_only();
    let internal_bytes: [u8; 32] = hex::decode(NUMS).expect("constant hex").try_into().expect("32 bytes");
    let internal = XOnlyPublicKey::from_slice(&internal_bytes).expect("NUMS is on the curve");
    let leaf = tapleaf_hash(TAPROOT_LEAF_TAPSCRIPT, script);
    let tweak = taptweak_hash(&internal_bytes, Some(&leaf));
    let tweak = Scalar::from_be_bytes(tweak).expect("tweak below the order");
    let (output, parity) = internal.add_tweak(&secp, &tweak).expect("tweak succeeds");
    let mut control = vec![TAPROOT_LEAF_TAPSCRIPT | parity.to_u8()];
    control.extend_from_slice(&internal_bytes);
    (control, output.serialize())
}

fn run(case: &Case, flags: VerifyFlags) -> Result<(), ScriptError> {
    let credit = crediting_tx(&case.script_pubkey, case.amount);
    let spend = spending_tx(&case.script_sig, &case.witness, &credit);
    let spent = [credit.output[0].clone()];
    let data = PrecomputedTx::new(&spend, &spent).expect("one input, one spent output");
    let checker = TransactionSignatureChecker::new(&data, 0);
    verify_script_bytes(&case.script_sig, &case.script_pubkey, &case.witness, case.amount, flags, &checker)
}

#[test]
fn script_tests_json() {
    let rows = load("script_tests.json");
    let rows = rows.as_array().expect("top level is an array");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (index, row) in rows.iter().enumerate() {
        let row = row.as_array().expect("rows are arrays");
        let min_len = if row.first().is_some_and(Value::is_array) { 5 } else { 4 };
        if row.len() < min_len {
            continue; // a comment
        }
        let case = match parse_case(row) {
            Ok(case) => case,
            Err(e) => {
                failures.push(format!("row {index} {row:?}: cannot parse: {e}"));
                continue;
            }
        };
        checked += 1;
        let mut flags = case.flags;
        // As Core's DoTest: CLEANSTACK is only defined with P2SH and WITNESS.
        if flags.contains(VerifyFlags::CLEANSTACK) {
            flags |= VerifyFlags::P2SH | VerifyFlags::WITNESS;
        }
        let result = run(&case, flags);
        let got = match result {
            Ok(()) => "OK",
            Err(e) => e.name(),
        };
        if got != case.expected {
            failures.push(format!("row {index} {row:?}: expected {}, got {got}", case.expected));
            continue;
        }
        // Flag monotonicity, one flag at a time.
        let expect_ok = case.expected == "OK";
        for (name, flag) in VerifyFlags::NAMED {
            let combined = if expect_ok { flags.without(flag) } else { flags | flag };
            if combined.contains(VerifyFlags::CLEANSTACK)
                && !combined.contains(VerifyFlags::P2SH | VerifyFlags::WITNESS)
            {
                continue;
            }
            if combined.contains(VerifyFlags::WITNESS) && !combined.contains(VerifyFlags::P2SH) {
                continue;
            }
            if run(&case, combined).is_ok() != expect_ok {
                failures.push(format!("row {index} {row:?}: result changed when toggling {name} (flags {combined})"));
            }
        }
    }
    assert!(checked > 1200, "only {checked} rows found");
    assert!(failures.is_empty(), "{} of {checked} rows failed:\n{}", failures.len(), failures.join("\n"));
}
