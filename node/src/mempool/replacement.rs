//! Replace-by-fee as current Bitcoin Core does it (`policy/rbf.cpp`): full
//! RBF (no signalling needed), with BIP 125's rules 2 to 6. Each rule is a
//! pure function returning Core's detail message on failure; the pool calls
//! them in Core's order (`MemPoolAccept::ReplacementChecks`).

use std::collections::{BTreeSet, HashSet};

use bitcoin::{Transaction, Txid};

use super::policy::{format_money, FeeRate};
use super::{Mempool, RejectClass, TxReject};

/// Most transactions one replacement may evict, descendants included
/// (`MAX_REPLACEMENT_CANDIDATES`, rule 5).
pub const MAX_REPLACEMENT_CANDIDATES: usize = 100;

/// Rule 6 (Core's `PaysMoreThanConflicts`): the replacement's fee rate must
/// beat that of every transaction it directly conflicts with.
pub fn pays_more_than_conflicts(
    replacement: &Txid,
    replacement_rate: FeeRate,
    conflicts: &[(Txid, FeeRate)],
) -> Result<(), String> {
    for (_, original) in conflicts {
        if replacement_rate <= *original {
            return Err(format!(
                "rejecting replacement {replacement}; new feerate {replacement_rate} <= old feerate {original}"
            ));
        }
    }
    Ok(())
}

/// Rule 5 (Core's `GetEntriesForConflicts`): no more than
/// [`MAX_REPLACEMENT_CANDIDATES`] evictions.
pub fn few_enough_replacements(replacement: &Txid, candidates: usize) -> Result<(), String> {
    if candidates > MAX_REPLACEMENT_CANDIDATES {
        return Err(format!(
            "rejecting replacement {replacement}; too many potential replacements ({candidates} > {MAX_REPLACEMENT_CANDIDATES})\n"
        ));
    }
    Ok(())
}

/// Rules 3 and 4 (Core's `PaysForRBF`): the replacement pays at least the
/// fees of everything it evicts, and the difference pays for its own
/// bandwidth at the incremental relay fee.
pub fn pays_for_rbf(
    replacement: &Txid,
    original_fees: i64,
    replacement_fees: i64,
    replacement_vsize: u64,
    incremental_relay_fee: FeeRate,
) -> Result<(), String> {
    if replacement_fees < original_fees {
        return Err(format!(
            "rejecting replacement {replacement}, less fees than conflicting txs; {} < {}",
            format_money(replacement_fees),
            format_money(original_fees)
        ));
    }
    let additional = replacement_fees - original_fees;
    let relay = incremental_relay_fee.fee(replacement_vsize).to_sat() as i64;
    if additional < relay {
        return Err(format!(
            "rejecting replacement {replacement}, not enough additional fees to relay; {} < {}",
            format_money(additional),
            format_money(relay)
        ));
    }
    Ok(())
}

impl Mempool {
    /// Core's `ReplacementChecks` for `tx` (already shown to conflict with
    /// `direct`): returns every entry it would evict, descendants included.
    pub(super) fn check_replacement(
        &self,
        tx: &Transaction,
        txid: &Txid,
        direct: &BTreeSet<Txid>,
        modified_fee: i64,
        vsize: u64,
    ) -> Result<BTreeSet<Txid>, TxReject> {
        let conflicts: Vec<(Txid, FeeRate)> = direct
            .iter()
            .filter_map(|c| self.entries.get(c))
            .map(|e| (e.txid, FeeRate::from_fee(e.modified_fee(), e.vsize)))
            .collect();
        pays_more_than_conflicts(txid, FeeRate::from_fee(modified_fee, vsize), &conflicts)
            .map_err(|d| TxReject::new(RejectClass::MempoolPolicy, "insufficient fee", Some(d)))?;

        let candidates: usize = direct.iter().map(|c| self.descendant_stats(c).count).sum();
        few_enough_replacements(txid, candidates)
            .map_err(|d| TxReject::new(RejectClass::MempoolPolicy, "too many potential replacements", Some(d)))?;
        let mut all: BTreeSet<Txid> = direct.clone();
        for c in direct {
            all.extend(self.descendants(c));
        }

        // Rule 2: no unconfirmed inputs that the conflicts did not already have.
        let parents_of_conflicts: HashSet<Txid> = direct
            .iter()
            .filter_map(|c| self.entries.get(c))
            .flat_map(|e| e.tx.input.iter().map(|i| i.previous_output.txid))
            .filter(|p| self.entries.contains_key(p))
            .collect();
        for (j, input) in tx.input.iter().enumerate() {
            let parent = input.previous_output.txid;
            if !parents_of_conflicts.contains(&parent) && self.entries.contains_key(&parent) {
                return Err(TxReject::new(
                    RejectClass::MempoolPolicy,
                    "replacement-adds-unconfirmed",
                    Some(format!("replacement {txid} adds unconfirmed input, idx {j}")),
                ));
            }
        }

        let original_fees: i64 = all.iter().filter_map(|t| self.entries.get(t)).map(|e| e.modified_fee()).sum();
        pays_for_rbf(txid, original_fees, modified_fee, vsize, self.config.incremental_relay_fee)
            .map_err(|d| TxReject::new(RejectClass::Reconsiderable, "insufficient fee", Some(d)))?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;

    use super::*;

    fn txid(n: u8) -> Txid {
        Txid::from_byte_array([n; 32])
    }

    #[test]
    fn rule_6_fee_rate() {
        let r = txid(1);
        let cases = [
            ("higher rate", 2000, vec![1000, 1999], true),
            ("equal rate", 2000, vec![2000], false),
            ("lower than one", 2000, vec![1000, 3000], false),
            ("no conflicts", 0, vec![], true),
        ];
        for (name, rate, olds, ok) in cases {
            let conflicts: Vec<_> = olds.iter().map(|&o| (txid(2), FeeRate::from_sat_per_kvb(o))).collect();
            let result = pays_more_than_conflicts(&r, FeeRate::from_sat_per_kvb(rate), &conflicts);
            assert_eq!(result.is_ok(), ok, "{name}: {result:?}");
        }
        let err = pays_more_than_conflicts(
            &r,
            FeeRate::from_sat_per_kvb(1000),
            &[(txid(2), FeeRate::from_sat_per_kvb(1000))],
        )
        .unwrap_err();
        assert!(err.ends_with("; new feerate 0.00001000 BTC/kvB <= old feerate 0.00001000 BTC/kvB"), "{err}");
    }

    #[test]
    fn rules_3_and_4_absolute_fee() {
        let r = txid(1);
        let inc = FeeRate::DEFAULT_INCREMENTAL_RELAY;
        // (name, original fees, replacement fees, vsize, expected detail prefix)
        let cases: [(&str, i64, i64, u64, Option<&str>); 4] = [
            ("pays enough", 1000, 1100, 110, None),
            ("less than originals", 1000, 999, 110, Some("less fees than conflicting txs; 0.00000999 < 0.00001")),
            ("not enough more", 1000, 1010, 110, Some("not enough additional fees to relay; 0.0000001 < 0.00000011")),
            ("exactly the relay fee more", 1000, 1011, 110, None),
        ];
        for (name, original, replacement, vsize, expected) in cases {
            let result = pays_for_rbf(&r, original, replacement, vsize, inc);
            match expected {
                None => assert!(result.is_ok(), "{name}: {result:?}"),
                Some(text) => assert!(result.as_ref().unwrap_err().ends_with(text), "{name}: {result:?}"),
            }
        }
    }

    #[test]
    fn rule_5_eviction_count() {
        assert!(few_enough_replacements(&txid(1), 100).is_ok());
        let err = few_enough_replacements(&txid(1), 101).unwrap_err();
        assert!(err.contains("too many potential replacements (101 > 100)"), "{err}");
    }
}
