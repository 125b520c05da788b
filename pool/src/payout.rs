//! Sharing the block reward (whitepaper section 6, "Incentive"): the coinbase
//! value — subsidy plus fees — split among the miners whose shares built the
//! block, paid directly in the coinbase (non-custodial PPLNS), or taken whole
//! by the finder (solo). Pure arithmetic: no I/O, no clock, no floating point
//! on money.
//!
//! # The rule, to the satoshi
//!
//! For a coinbase value `V`, a fee of `f` parts per million and shares of
//! weights `w_i` (summing to `W`), keyed by payout script:
//!
//! 1. `fee = floor(V · f / 1 000 000)`: the operator's, always below the exact
//!    fee by less than one satoshi.
//! 2. `pool = V − fee`; each miner's part is `floor(pool · w_i / W)` (products
//!    in `u128`). The rounding remainder, less than one satoshi per miner, goes
//!    to the operator's output: the operator is the one party present in every
//!    block, so nobody's amount depends on the order of the shares.
//! 3. Each miner's *credit* is its part plus the balance owed to it from
//!    earlier blocks (amounts that were too small, or beyond the output cap;
//!    the operator's output took them then, so it pays them back now).
//! 4. Credits become outputs largest first (ties by script), at most
//!    `max_outputs − 1` of them (one slot is the operator's). Each output is
//!    the credit, or what is left of `V` after the outputs before it if that
//!    is less (the rest of that credit stays owed), and is made only when at
//!    least `min_payout`. Every other credit stays owed, in full.
//! 5. The operator's output is `V − Σ paid`, so the outputs always sum to
//!    exactly `V`; it is left out when zero. A miner whose script is the
//!    operator's is merged into the operator's output.
//!
//! Outputs come operator first, then miners largest first: deterministic,
//! whatever the order of the shares given.
//!
//! A payout also says how it changes each balance owed
//! ([`Payout::balance_changes`]: after it less the balances it started
//! from), so that the ledger can apply that change to the balances as they
//! are when the block is found, which may no longer be those the job was
//! built on (another block was found, or an orphaned block gave its changes
//! back).

use std::collections::BTreeMap;

use bitcoin::{Amount, ScriptBuf, SignedAmount, TxOut};

use crate::config::PoolFee;

/// The largest weight kept exact; larger weights are scaled down together so
/// that `pool · w` fits a `u128` (`2^51 · 2^72 < 2^128`).
const MAX_WEIGHT_BITS: u32 = 72;

/// A share's weight in PPLNS: its difficulty in fixed point (2^-32 units),
/// so that fractional test-network difficulties still count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShareWeight(pub u128);

impl ShareWeight {
    /// The one place a Stratum difficulty (a float) becomes a weight. A
    /// negative or non-finite difficulty weighs nothing.
    pub fn from_difficulty(difficulty: f64) -> ShareWeight {
        if !difficulty.is_finite() || difficulty <= 0.0 {
            return ShareWeight(0);
        }
        // `as` saturates at u128::MAX; difficulties are far below 2^96.
        ShareWeight((difficulty * 4_294_967_296.0).round() as u128)
    }

    /// The weight back as a difficulty (for display only).
    pub fn difficulty(self) -> f64 {
        self.0 as f64 / 4_294_967_296.0
    }
}

/// One share, or several of one miner, in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedShare {
    /// Where the miner is paid.
    pub script: ScriptBuf,
    /// How much the share counts.
    pub weight: ShareWeight,
}

/// What a block's reward is shared among.
#[derive(Debug, Clone)]
pub struct PayoutInput<'a> {
    /// The coinbase value: subsidy plus the fees of the template's transactions.
    pub coinbase_value: Amount,
    /// The operator's fee.
    pub fee: PoolFee,
    /// The operator's script: the fee, the remainders and what stays owed.
    pub operator: &'a ScriptBuf,
    /// The shares in the PPLNS window, in any order (the ledger cuts the
    /// window: `ShareStore::window_workers`).
    pub shares: &'a [WeightedShare],
    /// Balances owed from earlier blocks.
    pub owed: &'a [(ScriptBuf, Amount)],
    /// Smaller credits stay owed.
    pub min_payout: Amount,
    /// Most outputs, the operator's included (at least 1).
    pub max_outputs: usize,
}

/// The coinbase outputs of a block, and what stays owed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// The outputs, summing to exactly the coinbase value.
    pub outputs: Vec<TxOut>,
    /// The operator's fee proper (within `outputs`' operator output).
    pub fee: Amount,
    /// Every balance owed after this block, by script, in script order
    /// (balances paid now are absent; the rest carry over in full).
    pub owed: Vec<(ScriptBuf, Amount)>,
    /// Each script's balance owed after this block less the balance this
    /// payout started from (the `owed` it was given), in script order;
    /// scripts whose balance does not change are absent.
    pub balance_changes: Vec<(ScriptBuf, SignedAmount)>,
}

impl Payout {
    /// The total of the outputs.
    pub fn total(&self) -> Amount {
        self.outputs.iter().map(|o| o.value).sum()
    }
}

/// Why a payout could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutError {
    /// An amount overflowed the money supply.
    #[error("the owed balances or the coinbase value exceed the money supply")]
    Overflow,
    /// `max_outputs` was zero.
    #[error("max_outputs must be at least 1")]
    NoOutputs,
}

/// Each script's balance in `after` less its balance in `before` (a script
/// listed twice counts its sum), zeros left out, in script order.
fn balance_changes(
    before: &[(ScriptBuf, Amount)],
    after: &[(ScriptBuf, Amount)],
) -> Result<Vec<(ScriptBuf, SignedAmount)>, PayoutError> {
    let sats = |amount: Amount| i64::try_from(amount.to_sat()).map_err(|_| PayoutError::Overflow);
    let mut changes: BTreeMap<&ScriptBuf, i64> = BTreeMap::new();
    for (script, amount) in before {
        let entry = changes.entry(script).or_default();
        *entry = entry.checked_sub(sats(*amount)?).ok_or(PayoutError::Overflow)?;
    }
    for (script, amount) in after {
        let entry = changes.entry(script).or_default();
        *entry = entry.checked_add(sats(*amount)?).ok_or(PayoutError::Overflow)?;
    }
    Ok(changes
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .map(|(script, delta)| (script.clone(), SignedAmount::from_sat(delta)))
        .collect())
}

/// `floor(value · numerator / denominator)` in `u128`; `None` on a zero
/// denominator.
fn mul_div(value: u64, numerator: u128, denominator: u128) -> Option<u64> {
    let product = u128::from(value).checked_mul(numerator)?;
    u64::try_from(product.checked_div(denominator)?).ok()
}

/// PPLNS: shares the coinbase value by weight; see the module's rule.
pub fn pplns(input: &PayoutInput<'_>) -> Result<Payout, PayoutError> {
    if input.max_outputs == 0 {
        return Err(PayoutError::NoOutputs);
    }
    let value = input.coinbase_value;
    if value > Amount::MAX_MONEY {
        return Err(PayoutError::Overflow);
    }
    let fee = Amount::from_sat(
        mul_div(value.to_sat(), u128::from(input.fee.ppm()), u128::from(PoolFee::WHOLE))
            .expect("the fee is at most the value"),
    );
    let pool = value - fee;

    // Weights by script; the operator's own shares merge into its output.
    let mut weights: BTreeMap<&ScriptBuf, u128> = BTreeMap::new();
    for share in input.shares {
        if share.weight.0 == 0 {
            continue;
        }
        let entry = weights.entry(&share.script).or_default();
        *entry = entry.saturating_add(share.weight.0);
    }
    // Scale every weight down alike until the largest, and the total, fit.
    let largest = weights.values().copied().max().unwrap_or(0);
    let count = weights.len().max(1) as u128;
    let bits = (u128::BITS - largest.leading_zeros()) + (u128::BITS - count.leading_zeros());
    let shift = bits.saturating_sub(MAX_WEIGHT_BITS);
    let total: u128 = weights
        .values_mut()
        .map(|w| {
            *w >>= shift;
            *w
        })
        .sum();

    let mut credits: BTreeMap<&ScriptBuf, Amount> = BTreeMap::new();
    let mut distributed = Amount::ZERO;
    if total > 0 {
        for (script, weight) in &weights {
            let part = Amount::from_sat(mul_div(pool.to_sat(), *weight, total).expect("a part is at most the pool"));
            distributed += part;
            if part > Amount::ZERO {
                credits.insert(script, part);
            }
        }
    }
    debug_assert!(distributed <= pool);
    for (script, amount) in input.owed {
        let entry = credits.entry(script).or_insert(Amount::ZERO);
        *entry = entry.checked_add(*amount).ok_or(PayoutError::Overflow)?;
    }
    // The operator's own credit needs no output of its own.
    credits.remove(input.operator);

    let mut ranked: Vec<(&ScriptBuf, Amount)> = credits.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut paid: Vec<TxOut> = Vec::new();
    let mut paid_sum = Amount::ZERO;
    let mut owed: Vec<(ScriptBuf, Amount)> = Vec::new();
    for (script, credit) in ranked {
        // What is left of the value after the outputs so far bounds this one.
        let payable = credit.min(value - paid_sum);
        let fits = paid.len() + 1 < input.max_outputs && payable >= input.min_payout && payable > Amount::ZERO;
        if fits {
            paid_sum += payable;
            paid.push(TxOut { value: payable, script_pubkey: script.clone() });
            if payable < credit {
                owed.push((script.clone(), credit - payable));
            }
        } else {
            owed.push((script.clone(), credit));
        }
    }
    owed.sort_by(|a, b| a.0.cmp(&b.0));

    let operator_amount = value - paid_sum;
    let mut outputs = Vec::with_capacity(paid.len() + 1);
    if operator_amount > Amount::ZERO {
        outputs.push(TxOut { value: operator_amount, script_pubkey: input.operator.clone() });
    }
    outputs.extend(paid);
    let balance_changes = balance_changes(input.owed, &owed)?;
    Ok(Payout { outputs, fee, owed, balance_changes })
}

/// Solo: the finder takes the coinbase value less the fee; the operator the
/// fee (`floor(V · f / 1 000 000)`). Balances owed are untouched and carry over.
pub fn solo(
    coinbase_value: Amount,
    fee: PoolFee,
    operator: &ScriptBuf,
    finder: &ScriptBuf,
    owed: &[(ScriptBuf, Amount)],
) -> Result<Payout, PayoutError> {
    if coinbase_value > Amount::MAX_MONEY {
        return Err(PayoutError::Overflow);
    }
    let fee_amount = Amount::from_sat(
        mul_div(coinbase_value.to_sat(), u128::from(fee.ppm()), u128::from(PoolFee::WHOLE))
            .expect("the fee is at most the value"),
    );
    let finder_amount = coinbase_value - fee_amount;
    let mut outputs = Vec::with_capacity(2);
    if finder == operator {
        outputs.push(TxOut { value: coinbase_value, script_pubkey: operator.clone() });
    } else {
        if fee_amount > Amount::ZERO || finder_amount == Amount::ZERO {
            outputs.push(TxOut { value: fee_amount, script_pubkey: operator.clone() });
        }
        if finder_amount > Amount::ZERO {
            outputs.push(TxOut { value: finder_amount, script_pubkey: finder.clone() });
        }
    }
    let mut owed = owed.to_vec();
    owed.sort_by(|a, b| a.0.cmp(&b.0));
    // The balances carry over untouched: no change.
    Ok(Payout { outputs, fee: fee_amount, owed, balance_changes: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn script(n: u8) -> ScriptBuf {
        ScriptBuf::from_bytes(vec![0x51, n])
    }

    fn share(n: u8, difficulty: f64) -> WeightedShare {
        WeightedShare { script: script(n), weight: ShareWeight::from_difficulty(difficulty) }
    }

    fn input<'a>(
        value: u64,
        fee_ppm: u32,
        operator: &'a ScriptBuf,
        shares: &'a [WeightedShare],
        owed: &'a [(ScriptBuf, Amount)],
    ) -> PayoutInput<'a> {
        PayoutInput {
            coinbase_value: Amount::from_sat(value),
            fee: PoolFee::from_ppm(fee_ppm).expect("test fee"),
            operator,
            shares,
            owed,
            min_payout: Amount::ZERO,
            max_outputs: usize::MAX,
        }
    }

    fn amount_of(payout: &Payout, script: &ScriptBuf) -> Option<u64> {
        payout.outputs.iter().find(|o| &o.script_pubkey == script).map(|o| o.value.to_sat())
    }

    #[test]
    fn even_split_with_fee() {
        let operator = script(0);
        let shares = [share(1, 1.0), share(2, 1.0), share(1, 1.0), share(2, 1.0)];
        let payout = pplns(&input(5_000_000_000, 10_000, &operator, &shares, &[])).unwrap();
        assert_eq!(payout.fee.to_sat(), 50_000_000);
        assert_eq!(amount_of(&payout, &operator), Some(50_000_000));
        assert_eq!(amount_of(&payout, &script(1)), Some(2_475_000_000));
        assert_eq!(amount_of(&payout, &script(2)), Some(2_475_000_000));
        assert_eq!(payout.outputs[0].script_pubkey, operator, "operator first");
    }

    #[test]
    fn remainder_goes_to_the_operator() {
        let operator = script(0);
        let shares = [share(1, 1.0), share(2, 1.0), share(3, 1.0)];
        let payout = pplns(&input(100, 0, &operator, &shares, &[])).unwrap();
        assert_eq!(amount_of(&payout, &script(1)), Some(33));
        assert_eq!(amount_of(&payout, &operator), Some(1));
        assert_eq!(payout.total().to_sat(), 100);
    }

    #[test]
    fn dust_stays_owed_then_is_paid() {
        let operator = script(0);
        let shares = [share(1, 999.0), share(2, 1.0)];
        let mut first = input(10_000, 0, &operator, &shares, &[]);
        first.min_payout = Amount::from_sat(100);
        let payout = pplns(&first).unwrap();
        assert_eq!(amount_of(&payout, &script(2)), None);
        assert_eq!(payout.owed, vec![(script(2), Amount::from_sat(10))]);
        assert_eq!(amount_of(&payout, &operator), Some(10));
        assert_eq!(payout.balance_changes, vec![(script(2), SignedAmount::from_sat(10))]);

        // Next block: miner 2 alone in the window; its owed 10 sat is added.
        let shares = [share(2, 1.0)];
        let mut second = input(1_000, 0, &operator, &shares, &payout.owed);
        second.min_payout = Amount::from_sat(100);
        let payout = pplns(&second).unwrap();
        assert_eq!(amount_of(&payout, &script(2)), Some(1_000), "no more than the value");
        assert_eq!(payout.owed, vec![(script(2), Amount::from_sat(10))]);
        assert_eq!(amount_of(&payout, &operator), None);

        // A block with a fee: the operator's part repays the rest.
        let shares = [share(2, 1.0)];
        let mut third = input(1_000, 100_000, &operator, &shares, &payout.owed);
        third.min_payout = Amount::from_sat(100);
        let payout = pplns(&third).unwrap();
        assert_eq!(amount_of(&payout, &script(2)), Some(910));
        assert_eq!(amount_of(&payout, &operator), Some(90));
        assert!(payout.owed.is_empty());
        assert_eq!(payout.balance_changes, vec![(script(2), SignedAmount::from_sat(-10))], "paid off");
    }

    #[test]
    fn output_cap_keeps_the_smallest_owed() {
        let operator = script(0);
        let shares = [share(1, 3.0), share(2, 2.0), share(3, 1.0)];
        let mut capped = input(6_000, 0, &operator, &shares, &[]);
        capped.max_outputs = 3;
        let payout = pplns(&capped).unwrap();
        assert_eq!(payout.outputs.len(), 3);
        assert_eq!(payout.owed, vec![(script(3), Amount::from_sat(1_000))]);
        assert_eq!(amount_of(&payout, &operator), Some(1_000));
    }

    #[test]
    fn operators_own_shares_merge() {
        let operator = script(0);
        let shares = [share(0, 1.0), share(1, 1.0)];
        let payout = pplns(&input(1_000, 0, &operator, &shares, &[])).unwrap();
        assert_eq!(payout.outputs.len(), 2);
        assert_eq!(amount_of(&payout, &operator), Some(500));
    }

    #[test]
    fn no_shares_pays_the_operator() {
        let operator = script(0);
        let payout = pplns(&input(1_000, 20_000, &operator, &[], &[])).unwrap();
        assert_eq!(payout.outputs, vec![TxOut { value: Amount::from_sat(1_000), script_pubkey: operator }]);
    }

    #[test]
    fn solo_pays_the_finder() {
        let operator = script(0);
        let fee = PoolFee::from_percent(2.0).unwrap();
        let payout = solo(Amount::from_sat(5_000_000_000), fee, &operator, &script(7), &[]).unwrap();
        assert_eq!(amount_of(&payout, &operator), Some(100_000_000));
        assert_eq!(amount_of(&payout, &script(7)), Some(4_900_000_000));
        let own = solo(Amount::from_sat(5_000), fee, &operator, &operator, &[]).unwrap();
        assert_eq!(own.outputs.len(), 1);
        assert_eq!(own.total().to_sat(), 5_000);
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let operator = script(0);
        let shares = [
            WeightedShare { script: script(1), weight: ShareWeight(u128::MAX / 2) },
            WeightedShare { script: script(2), weight: ShareWeight(u128::MAX / 2) },
        ];
        let payout = pplns(&input(21_000_000 * 100_000_000, 0, &operator, &shares, &[])).unwrap();
        assert_eq!(payout.total(), Amount::MAX_MONEY);
        assert_eq!(amount_of(&payout, &script(1)), amount_of(&payout, &script(2)));
    }

    fn arb_shares() -> impl Strategy<Value = Vec<WeightedShare>> {
        prop::collection::vec(
            (0u8..12, 1u128..1u128 << 80)
                .prop_map(|(n, w)| WeightedShare { script: script(n), weight: ShareWeight(w) }),
            0..40,
        )
    }

    fn arb_owed() -> impl Strategy<Value = Vec<(ScriptBuf, Amount)>> {
        prop::collection::vec((0u8..12, 0u64..1_000_000).prop_map(|(n, a)| (script(n), Amount::from_sat(a))), 0..5)
    }

    proptest! {
        #[test]
        fn sums_are_exact_and_fee_is_right(
            value in 0u64..=21_000_000 * 100_000_000,
            fee_ppm in 0u32..=1_000_000,
            shares in arb_shares(),
            owed in arb_owed(),
            min_payout in 0u64..100_000,
            max_outputs in 1usize..20,
        ) {
            let operator = script(0);
            let mut pin = input(value, fee_ppm, &operator, &shares, &owed);
            pin.min_payout = Amount::from_sat(min_payout);
            pin.max_outputs = max_outputs;
            let payout = pplns(&pin).unwrap();
            prop_assert_eq!(payout.total().to_sat(), value);
            prop_assert!(payout.outputs.len() <= max_outputs);
            // Amount is unsigned: no negative output can exist; none is empty either.
            prop_assert!(payout.outputs.iter().all(|o| o.value > Amount::ZERO));
            let exact_fee = u128::from(value) * u128::from(fee_ppm);
            let fee_scaled = u128::from(payout.fee.to_sat()) * 1_000_000;
            prop_assert!(fee_scaled <= exact_fee && exact_fee - fee_scaled < 1_000_000, "fee within 1 sat");
            // The operator's output holds at least the fee less what it repaid of the old balances.
            let operator_out = payout.outputs.iter().filter(|o| o.script_pubkey == operator).map(|o| o.value.to_sat()).sum::<u64>();
            let repaid: u64 = owed.iter().map(|o| o.1.to_sat()).sum();
            prop_assert!(operator_out + repaid >= payout.fee.to_sat());
        }

        /// The balances it started from plus its changes are the balances
        /// after it, script by script.
        #[test]
        fn changes_lead_from_the_owed_given_to_the_owed_after(
            value in 0u64..=21_000_000 * 100_000_000,
            shares in arb_shares(),
            owed in arb_owed(),
            min_payout in 0u64..100_000,
            max_outputs in 1usize..20,
        ) {
            let operator = script(0);
            let mut pin = input(value, 10_000, &operator, &shares, &owed);
            pin.min_payout = Amount::from_sat(min_payout);
            pin.max_outputs = max_outputs;
            let payout = pplns(&pin).unwrap();
            let mut balances: BTreeMap<ScriptBuf, i64> = BTreeMap::new();
            for (script, amount) in &owed {
                *balances.entry(script.clone()).or_default() += amount.to_sat() as i64;
            }
            for (script, delta) in &payout.balance_changes {
                prop_assert_ne!(*delta, SignedAmount::ZERO);
                *balances.entry(script.clone()).or_default() += delta.to_sat();
            }
            balances.retain(|_, v| *v != 0);
            let mut after: BTreeMap<ScriptBuf, i64> =
                payout.owed.iter().map(|(s, a)| (s.clone(), a.to_sat() as i64)).collect();
            after.retain(|_, v| *v != 0);
            prop_assert_eq!(balances, after);
        }

        #[test]
        fn no_owed_no_limits_pays_every_miner_in_proportion(
            value in 0u64..=21_000_000 * 100_000_000,
            fee_ppm in 0u32..=1_000_000,
            shares in arb_shares(),
        ) {
            let operator = script(0);
            let shares: Vec<WeightedShare> = shares.into_iter().filter(|s| s.script != operator).collect();
            let payout = pplns(&input(value, fee_ppm, &operator, &shares, &[])).unwrap();
            let miners = shares.iter().map(|s| &s.script).collect::<std::collections::BTreeSet<_>>().len() as u64;
            let operator_out = amount_of(&payout, &operator).unwrap_or(0);
            // The fee, plus remainders of under one satoshi per miner (all of it when nobody mined).
            prop_assert!(operator_out >= payout.fee.to_sat());
            if miners > 0 {
                prop_assert!(operator_out < payout.fee.to_sat() + miners);
            } else {
                prop_assert_eq!(operator_out, value);
            }
        }

        #[test]
        fn order_of_shares_does_not_matter(
            value in 0u64..=21_000_000 * 100_000_000,
            fee_ppm in 0u32..=1_000_000,
            shares in arb_shares(),
            owed in arb_owed(),
            seed in any::<u64>(),
        ) {
            let operator = script(0);
            let mut shuffled = shares.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut owed_rev = owed.clone();
            owed_rev.reverse();
            let a = pplns(&input(value, fee_ppm, &operator, &shares, &owed)).unwrap();
            let b = pplns(&input(value, fee_ppm, &operator, &shuffled, &owed_rev)).unwrap();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn solo_is_exact(value in 0u64..=21_000_000 * 100_000_000, fee_ppm in 0u32..=1_000_000, finder in 0u8..3) {
            let operator = script(0);
            let payout = solo(Amount::from_sat(value), PoolFee::from_ppm(fee_ppm).unwrap(), &operator, &script(finder), &[]).unwrap();
            prop_assert_eq!(payout.total().to_sat(), value);
        }
    }
}
