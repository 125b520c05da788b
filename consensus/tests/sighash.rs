//! Every row of Core's `sighash.json`: legacy signature hashes of random
//! transactions, scripts and hash types (negative ones included).

mod common;

use common::{decode_tx, load};
use satpool_consensus::check_transaction;
use satpool_consensus::sighash::legacy_sighash;

#[test]
fn sighash_json() {
    let rows = load("sighash.json");
    let rows = rows.as_array().expect("top level is an array");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (index, row) in rows.iter().enumerate() {
        let row = row.as_array().expect("rows are arrays");
        if row.len() < 5 {
            continue; // a comment
        }
        checked += 1;
        let result = (|| -> Result<(), String> {
            let tx = decode_tx(row[0].as_str().ok_or("tx")?)?;
            let script = hex::decode(row[1].as_str().ok_or("script")?).map_err(|e| e.to_string())?;
            let input = usize::try_from(row[2].as_u64().ok_or("input index")?).map_err(|e| e.to_string())?;
            // A signed 32-bit number in the file; hashed as its bits.
            let hash_type = row[3].as_i64().ok_or("hash type")? as i32 as u32;
            let expected = row[4].as_str().ok_or("expected hash")?;
            check_transaction(&tx).map_err(|e| format!("CheckTransaction: {e}"))?;
            let mut hash = legacy_sighash(&tx, input, &script, hash_type);
            hash.reverse(); // Core prints uint256 reversed
            let got = hex::encode(hash);
            if got != expected {
                return Err(format!("expected {expected}, got {got}"));
            }
            Ok(())
        })();
        if let Err(e) = result {
            failures.push(format!("row {index} {row:?}: {e}"));
        }
    }
    assert_eq!(checked, 500, "rows in sighash.json");
    assert!(failures.is_empty(), "{} of {checked} rows failed:\n{}", failures.len(), failures.join("\n"));
}
