//! Every row of Core's `tx_valid.json`, as Core's `tx_valid` test runs it:
//! the row's flags are the ones *excluded*. The transaction must pass
//! `CheckTransaction` and every input must verify; every excluded flag must
//! be needed (adding it back makes the transaction fail); and removing any
//! one flag must keep it valid.

mod common;

use common::{exclude_individual_flags, fill_flags, parse_flags, trim_flags, tx_cases, tx_scripts_pass};
use satpool_consensus::{check_transaction, VerifyFlags};

#[test]
fn tx_valid_json() {
    let cases = tx_cases("tx_valid.json");
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
        let excluded = parse_flags(&case.flags_field);
        let verify_flags = !excluded;
        if verify_flags != fill_flags(verify_flags) {
            failures.push(format!("{row}: bad test flags {}", case.flags_field));
            continue;
        }
        if let Err(e) = check_transaction(&case.tx) {
            failures.push(format!("{row}: CheckTransaction failed: {e}"));
            continue;
        }
        if let Err(e) = tx_scripts_pass(&case, verify_flags) {
            failures.push(format!("{row}: invalid with flags {verify_flags}: {e}"));
            continue;
        }
        // Each excluded flag is needed.
        for excluded_less_one in exclude_individual_flags(excluded) {
            let flags = !excluded_less_one;
            if tx_scripts_pass(&case, flags).is_ok() {
                failures.push(format!("{row}: too many flags unset: still valid with {flags}"));
            }
        }
        // Removing a flag never invalidates a valid transaction.
        for (name, flag) in VerifyFlags::NAMED {
            let flags = trim_flags(!(excluded | flag));
            if let Err(e) = tx_scripts_pass(&case, flags) {
                failures.push(format!("{row}: invalid with {name} unset: {e}"));
            }
        }
    }
    assert!(count > 100, "only {count} rows found");
    assert!(failures.is_empty(), "{} failures in {count} rows:\n{}", failures.len(), failures.join("\n"));
}
