//! `check_transaction`'s reject reasons, one case each.

use bitcoin::hashes::Hash;
use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use satpool_consensus::{check_transaction, TxCheckError};

fn input(txid_byte: u8, vout: u32, script_sig: Vec<u8>) -> TxIn {
    TxIn {
        previous_output: OutPoint::new(Txid::from_byte_array([txid_byte; 32]), vout),
        script_sig: ScriptBuf::from_bytes(script_sig),
        sequence: Sequence::MAX,
        witness: Witness::new(),
    }
}

fn output(sats: u64) -> TxOut {
    TxOut { value: Amount::from_sat(sats), script_pubkey: ScriptBuf::new() }
}

fn tx(input: Vec<TxIn>, output: Vec<TxOut>) -> Transaction {
    Transaction { version: transaction::Version(2), lock_time: absolute::LockTime::ZERO, input, output }
}

#[test]
fn reject_reasons() {
    let coinbase_in = |len: usize| TxIn { previous_output: OutPoint::null(), ..input(0, 0, vec![0x51; len]) };
    let max_money = 21_000_000 * 100_000_000;
    let cases: Vec<(&str, Transaction, Result<(), &str>)> = vec![
        ("ordinary", tx(vec![input(1, 0, vec![])], vec![output(1)]), Ok(())),
        ("no inputs", tx(vec![], vec![output(1)]), Err("bad-txns-vin-empty")),
        ("no outputs", tx(vec![input(1, 0, vec![])], vec![]), Err("bad-txns-vout-empty")),
        ("oversize", tx(vec![input(1, 0, vec![0; 1_000_001])], vec![output(1)]), Err("bad-txns-oversize")),
        ("negative output", tx(vec![input(1, 0, vec![])], vec![output(u64::MAX)]), Err("bad-txns-vout-negative")),
        (
            "output above MAX_MONEY",
            tx(vec![input(1, 0, vec![])], vec![output(max_money + 1)]),
            Err("bad-txns-vout-toolarge"),
        ),
        (
            "outputs above MAX_MONEY together",
            tx(vec![input(1, 0, vec![])], vec![output(max_money), output(1)]),
            Err("bad-txns-txouttotal-toolarge"),
        ),
        (
            "duplicate inputs",
            tx(vec![input(1, 0, vec![]), input(1, 0, vec![])], vec![output(1)]),
            Err("bad-txns-inputs-duplicate"),
        ),
        ("coinbase of 1 byte", tx(vec![coinbase_in(1)], vec![output(1)]), Err("bad-cb-length")),
        ("coinbase of 2 bytes", tx(vec![coinbase_in(2)], vec![output(1)]), Ok(())),
        ("coinbase of 101 bytes", tx(vec![coinbase_in(101)], vec![output(1)]), Err("bad-cb-length")),
        ("null prevout", tx(vec![input(1, 0, vec![]), coinbase_in(2)], vec![output(1)]), Err("bad-txns-prevout-null")),
    ];
    for (name, tx, expected) in cases {
        let got = check_transaction(&tx).map_err(TxCheckError::reject_reason);
        assert_eq!(got, expected, "{name}");
        if let Err(e) = check_transaction(&tx) {
            assert_eq!(e.to_string(), e.reject_reason(), "{name}");
        }
    }
}
