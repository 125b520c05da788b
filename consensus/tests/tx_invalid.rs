//! Every row of Core's `tx_invalid.json`, as Core's `tx_invalid` test runs
//! it: the row's flags are the ones *included*, and `BADTX` marks rows that
//! `CheckTransaction` must reject. Otherwise some input must fail under the
//! flags; adding any flag must keep it failing; and each included flag must
//! be needed (removing it makes the transaction valid).

mod common;

use common::{exclude_individual_flags, fill_flags, parse_flags, tx_cases, tx_scripts_pass};
use satpool_consensus::{check_transaction, VerifyFlags};

#[test]
fn tx_invalid_json() {
    let cases = tx_cases("tx_invalid.json");
    let mut failures = Vec::new();
    let count = cases.len();
    for case in cases {
        let case = match case {
            Ok(case) => case,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let row = format!("row {} (tx {})", case.index, case.tx.compute_txid());
        let check = check_transaction(&case.tx);
        if case.flags_field == "BADTX" {
            if check.is_ok() {
                failures.push(format!("{row}: BADTX but CheckTransaction accepts it"));
            }
            continue;
        }
        if let Err(e) = check {
            failures.push(format!("{row}: CheckTransaction failed ({e}) but the row is not BADTX"));
            continue;
        }
        let flags = parse_flags(&case.flags_field);
        if flags != fill_flags(flags) {
            failures.push(format!("{row}: bad test flags {}", case.flags_field));
            continue;
        }
        if tx_scripts_pass(&case, flags).is_ok() {
            failures.push(format!("{row}: unexpectedly valid with flags {flags}"));
            continue;
        }
        for (name, flag) in VerifyFlags::NAMED {
            let more = fill_flags(flags | flag);
            if tx_scripts_pass(&case, more).is_ok() {
                failures.push(format!("{row}: unexpectedly valid with {name} added ({more})"));
            }
        }
        for fewer in exclude_individual_flags(flags) {
            if let Err(e) = tx_scripts_pass(&case, fewer) {
                failures.push(format!("{row}: too many flags set: still invalid with {fewer}: {e}"));
            }
        }
    }
    assert!(count > 90, "only {count} rows found");
    assert!(failures.is_empty(), "{} failures in {count} rows:\n{}", failures.len(), failures.join("\n"));
}
