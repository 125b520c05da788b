//! Building a payment: fee-rate estimation, coin selection (combining
//! inputs, splitting off change, folding dust change into the fee), and
//! signing P2WPKH, P2TR key-path and P2PKH inputs. Pure: no storage, no clock.

use bitcoin::ecdsa;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::{All, Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{
    absolute, transaction, Amount, CompressedPublicKey, FeeRate, OutPoint, PrivateKey, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Witness,
};

use super::keys::{AddressType, KeyPath};

/// Core's minimum relay fee, 1 sat/vB: the floor of every estimate.
pub const MIN_RELAY_FEE: FeeRate = FeeRate::from_sat_per_vb_u32(1);

/// The fee rate to pay: the fees the last blocks paid per virtual byte of
/// their transactions (each sample is a block's total fees, that is its
/// coinbase value less the subsidy, and the vsize of its non-coinbase
/// transactions), never below [`MIN_RELAY_FEE`]. Blocks with no transactions
/// say nothing and are skipped.
pub fn estimate_fee_rate(samples: &[(Amount, u64)]) -> FeeRate {
    let (fees, vsize) = samples
        .iter()
        .filter(|(_, vsize)| *vsize > 0)
        .fold((0u64, 0u64), |(f, v), (fee, vsize)| (f.saturating_add(fee.to_sat()), v.saturating_add(*vsize)));
    if vsize == 0 {
        return MIN_RELAY_FEE;
    }
    // sat/kwu = sat/vB * 250
    let estimate = FeeRate::from_sat_per_kwu(fees.saturating_mul(250) / vsize);
    estimate.max(MIN_RELAY_FEE)
}

/// The fee for `vsize` virtual bytes at `rate`, rounded up.
pub fn fee_for(rate: FeeRate, vsize: u64) -> Amount {
    let sat_per_kvb = rate.to_sat_per_kwu() * 4;
    Amount::from_sat((sat_per_kvb * vsize).div_ceil(1000))
}

/// A wallet output offered to coin selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Where it is.
    pub outpoint: OutPoint,
    /// The output.
    pub txout: TxOut,
    /// Its key.
    pub path: KeyPath,
}

/// One payment of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    /// The script paid.
    pub script: ScriptBuf,
    /// How much.
    pub amount: Amount,
    /// The fee comes out of this amount (shared among such recipients).
    pub subtract_fee: bool,
}

/// Why no transaction could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendError {
    /// The candidates do not cover the amounts and the fee.
    #[error("insufficient funds: {available} available, {needed} needed")]
    InsufficientFunds {
        /// Sum of the candidates.
        available: Amount,
        /// Amounts plus fee.
        needed: Amount,
    },
    /// A payment is below the dust threshold of its script.
    #[error("transaction amount too small: output {index} of {amount} is dust")]
    Dust {
        /// Which recipient.
        index: usize,
        /// Its amount.
        amount: Amount,
    },
    /// Subtracting the fee leaves a payment at or below dust.
    #[error("the transaction amount is too small to pay the fee")]
    TooSmallForFee,
    /// No recipient.
    #[error("transaction must have at least one recipient")]
    NoRecipients,
}

/// The chosen inputs and outputs, unsigned.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Inputs, in the order of the transaction.
    pub inputs: Vec<Candidate>,
    /// The transaction (inputs unsigned).
    pub tx: Transaction,
    /// Position of the change output, if any.
    pub change_position: Option<usize>,
    /// The fee it pays.
    pub fee: Amount,
}

/// Worst-case weight of spending an input of `kind`, signature included.
fn input_weight(kind: AddressType) -> u64 {
    // outpoint 36 + sequence 4 + script length 1, times 4, plus the signature data
    match kind {
        // witness: count 1, sig 1+72, key 1+33
        AddressType::Bech32 => 41 * 4 + 108,
        // witness: count 1, sig 1+64
        AddressType::Bech32m => 41 * 4 + 66,
        // scriptSig: 1+72 sig, 1+33 key, all non-witness
        AddressType::Legacy => (41 + 107) * 4,
    }
}

fn output_weight(script: &ScriptBuf) -> u64 {
    (8 + 1 + script.len() as u64) * 4
}

fn vsize(inputs: &[Candidate], outputs: &[&ScriptBuf]) -> u64 {
    let segwit = inputs.iter().any(|c| c.path.kind != AddressType::Legacy);
    // version 4, locktime 4, input and output counts 1 each (under 253 of each)
    let mut weight = 10 * 4 + if segwit { 2 } else { 0 };
    weight += inputs.iter().map(|c| input_weight(c.path.kind)).sum::<u64>();
    weight += outputs.iter().map(|s| output_weight(s)).sum::<u64>();
    weight.div_ceil(4)
}

/// Picks inputs from `candidates` (largest first, so a payment uses few
/// inputs and combines several only when one is not enough) to pay
/// `recipients` at `rate`, and splits off change to `change` unless the
/// change would be dust, in which case it goes to the fee. `change_position`
/// (taken modulo the output count) lets the caller place change at random.
/// `replaceable` signals BIP 125.
pub fn plan(
    candidates: &[Candidate],
    recipients: &[Recipient],
    change: &ScriptBuf,
    rate: FeeRate,
    change_position: usize,
    replaceable: bool,
) -> Result<Plan, SpendError> {
    if recipients.is_empty() {
        return Err(SpendError::NoRecipients);
    }
    let subtracting = recipients.iter().filter(|r| r.subtract_fee).count() as u64;
    for (index, r) in recipients.iter().enumerate() {
        if r.amount < r.script.minimal_non_dust() && subtracting == 0 {
            return Err(SpendError::Dust { index, amount: r.amount });
        }
    }
    let target: Amount = recipients.iter().map(|r| r.amount).sum();
    let scripts: Vec<&ScriptBuf> = recipients.iter().map(|r| &r.script).collect();
    let mut with_change = scripts.clone();
    with_change.push(change);

    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.txout.value));
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut total = Amount::ZERO;
    let mut needed = target;
    for candidate in sorted {
        chosen.push(candidate.clone());
        total += candidate.txout.value;
        let fee = fee_for(rate, vsize(&chosen, &scripts));
        needed = if subtracting > 0 { target } else { target + fee };
        if total >= needed {
            break;
        }
    }
    if chosen.is_empty() || total < needed {
        let fee = fee_for(rate, vsize(&chosen, &scripts));
        let needed = if subtracting > 0 { target } else { target + fee };
        return Err(SpendError::InsufficientFunds { available: total, needed });
    }

    let fee_without = fee_for(rate, vsize(&chosen, &scripts));
    let fee_with = fee_for(rate, vsize(&chosen, &with_change));
    let mut amounts: Vec<Amount> = recipients.iter().map(|r| r.amount).collect();
    let (change_value, fee) = if subtracting > 0 {
        let leftover = total - target;
        match leftover.checked_sub(fee_with) {
            // Change only when it pays its own way and is not dust.
            Some(c) if c >= change.minimal_non_dust() => (Some(leftover), fee_with),
            _ => (None, fee_without),
        }
    } else {
        match (total - target).checked_sub(fee_with) {
            Some(c) if c >= change.minimal_non_dust() => (Some(c), fee_with),
            _ => (None, total - target),
        }
    };
    // With subtractfeefromamount the fee comes out of the payments (shared
    // among them, the first paying the remainder), and the whole leftover is change.
    if let Some(share) = fee.to_sat().checked_div(subtracting) {
        let mut remainder = fee.to_sat() % subtracting;
        for (i, r) in recipients.iter().enumerate() {
            if r.subtract_fee {
                let cut = Amount::from_sat(share + std::mem::take(&mut remainder));
                amounts[i] = amounts[i].checked_sub(cut).ok_or(SpendError::TooSmallForFee)?;
                if amounts[i] < r.script.minimal_non_dust() {
                    return Err(SpendError::TooSmallForFee);
                }
            }
        }
    }

    let mut outputs: Vec<TxOut> =
        recipients.iter().zip(&amounts).map(|(r, a)| TxOut { value: *a, script_pubkey: r.script.clone() }).collect();
    let mut position = None;
    if let Some(value) = change_value {
        let at = change_position % (outputs.len() + 1);
        outputs.insert(at, TxOut { value, script_pubkey: change.clone() });
        position = Some(at);
    }
    let sequence = if replaceable { Sequence::ENABLE_RBF_NO_LOCKTIME } else { Sequence::ENABLE_LOCKTIME_NO_RBF };
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: chosen
            .iter()
            .map(|c| TxIn {
                previous_output: c.outpoint,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    };
    Ok(Plan { inputs: chosen, tx, change_position: position, fee })
}

/// Why an input was left unsigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Its previous output is unknown.
    #[error("Input not found or already spent")]
    MissingPrevout,
    /// The wallet holds no key for it.
    #[error("Unable to sign input, missing keys")]
    NotMine,
    /// A taproot input needs every previous output, and one is unknown.
    #[error("Unable to sign taproot input: not all previous outputs are known")]
    TaprootNeedsAllPrevouts,
    /// The sighash could not be computed.
    #[error("sighash: {0}")]
    Sighash(String),
}

/// Signs every input of `tx` that has a key; `prevouts[i]` is input i's
/// previous output when known, `keys[i]` its key and kind when the wallet
/// holds it. Returns the errors of the inputs left unsigned, by index.
pub fn sign(
    secp: &Secp256k1<All>,
    tx: &mut Transaction,
    prevouts: &[Option<TxOut>],
    keys: &[Option<(PrivateKey, AddressType)>],
) -> Vec<(usize, SignError)> {
    let mut errors = Vec::new();
    let all: Option<Vec<TxOut>> = prevouts.iter().cloned().collect();
    let mut signed: Vec<(usize, ScriptBuf, Witness)> = Vec::new();
    {
        let mut cache = SighashCache::new(&*tx);
        for i in 0..prevouts.len() {
            let Some(prevout) = &prevouts[i] else {
                errors.push((i, SignError::MissingPrevout));
                continue;
            };
            let Some((key, kind)) = &keys[i] else {
                errors.push((i, SignError::NotMine));
                continue;
            };
            let result = match kind {
                AddressType::Bech32 => cache
                    .p2wpkh_signature_hash(i, &prevout.script_pubkey, prevout.value, EcdsaSighashType::All)
                    .map_err(|e| SignError::Sighash(e.to_string()))
                    .map(|sighash| {
                        let signature = ecdsa::Signature {
                            signature: secp.sign_ecdsa(&Message::from(sighash), &key.inner),
                            sighash_type: EcdsaSighashType::All,
                        };
                        let public =
                            CompressedPublicKey::from_private_key(secp, key).expect("wallet keys are compressed");
                        (ScriptBuf::new(), Witness::p2wpkh(&signature, &public.0))
                    }),
                AddressType::Bech32m => match &all {
                    None => Err(SignError::TaprootNeedsAllPrevouts),
                    Some(all) => cache
                        .taproot_key_spend_signature_hash(i, &Prevouts::All(all), TapSighashType::Default)
                        .map_err(|e| SignError::Sighash(e.to_string()))
                        .map(|sighash| {
                            let keypair = Keypair::from_secret_key(secp, &key.inner).tap_tweak(secp, None);
                            let signature = bitcoin::taproot::Signature {
                                signature: secp.sign_schnorr(&Message::from(sighash), &keypair.to_keypair()),
                                sighash_type: TapSighashType::Default,
                            };
                            (ScriptBuf::new(), Witness::p2tr_key_spend(&signature))
                        }),
                },
                AddressType::Legacy => cache
                    .legacy_signature_hash(i, &prevout.script_pubkey, EcdsaSighashType::All.to_u32())
                    .map_err(|e| SignError::Sighash(e.to_string()))
                    .map(|sighash| {
                        let signature = ecdsa::Signature {
                            signature: secp.sign_ecdsa(&Message::from(sighash), &key.inner),
                            sighash_type: EcdsaSighashType::All,
                        };
                        let public = key.public_key(secp);
                        let sig_bytes = PushBytesBuf::try_from(signature.to_vec())
                            .expect("a signature is far below the push limit");
                        let script = Builder::new().push_slice(sig_bytes).push_key(&public).into_script();
                        (script, Witness::new())
                    }),
            };
            match result {
                Ok((script, witness)) => signed.push((i, script, witness)),
                Err(e) => errors.push((i, e)),
            }
        }
    }
    for (i, script, witness) in signed {
        tx.input[i].script_sig = script;
        tx.input[i].witness = witness;
    }
    errors
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::{NetworkKind, Txid};

    use super::*;
    use crate::wallet::keys::{signing_key, Accounts, Seed};

    fn p2wpkh() -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::all_zeros())
    }

    fn candidate(n: u32, sats: u64) -> Candidate {
        Candidate {
            outpoint: OutPoint { txid: Txid::all_zeros(), vout: n },
            txout: TxOut { value: Amount::from_sat(sats), script_pubkey: p2wpkh() },
            path: KeyPath { kind: AddressType::Bech32, internal: false, index: n },
        }
    }

    fn pay(sats: u64) -> Recipient {
        Recipient { script: p2wpkh(), amount: Amount::from_sat(sats), subtract_fee: false }
    }

    const RATE: FeeRate = FeeRate::from_sat_per_vb_u32(10);

    #[test]
    fn fee_estimate() {
        assert_eq!(estimate_fee_rate(&[]), MIN_RELAY_FEE, "no data: the floor");
        assert_eq!(estimate_fee_rate(&[(Amount::ZERO, 0)]), MIN_RELAY_FEE, "empty blocks say nothing");
        let rate = estimate_fee_rate(&[(Amount::from_sat(5_000), 250), (Amount::from_sat(1_000), 250)]);
        assert_eq!(rate.to_sat_per_vb_floor(), 12);
        assert_eq!(estimate_fee_rate(&[(Amount::from_sat(10), 1_000)]), MIN_RELAY_FEE, "below the floor");
        assert_eq!(fee_for(RATE, 141), Amount::from_sat(1_410));
    }

    #[test]
    fn one_input_with_change() {
        let change = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([9; 20]));
        let p = plan(&[candidate(0, 100_000), candidate(1, 30_000)], &[pay(40_000)], &change, RATE, 1, true)
            .expect("enough");
        assert_eq!(p.inputs.len(), 1, "the largest covers it alone");
        assert_eq!(p.change_position, Some(1));
        // 1 input, 2 P2WPKH outputs: 11 + 68 + 62 = 141 vB (rounded up from the weight)
        assert_eq!(p.fee, Amount::from_sat(1_410));
        let out: Amount = p.tx.output.iter().map(|o| o.value).sum();
        assert_eq!(out + p.fee, Amount::from_sat(100_000));
        assert_eq!(p.tx.input[0].sequence, Sequence::ENABLE_RBF_NO_LOCKTIME);
    }

    #[test]
    fn combines_inputs() {
        let change = p2wpkh();
        let coins = [candidate(0, 30_000), candidate(1, 30_000), candidate(2, 30_000)];
        let p = plan(&coins, &[pay(50_000)], &change, RATE, 0, false).expect("enough");
        assert_eq!(p.inputs.len(), 2);
        assert_eq!(p.change_position, Some(0));
        assert_eq!(p.tx.input[0].sequence, Sequence::ENABLE_LOCKTIME_NO_RBF);
    }

    #[test]
    fn dust_change_goes_to_the_fee() {
        let change = p2wpkh();
        // 100_000 - 98_500 leaves 1_500; the change output would leave 1_500 - 1_410 = 90 sat: dust.
        let p = plan(&[candidate(0, 100_000)], &[pay(98_500)], &change, RATE, 0, true).expect("enough");
        assert_eq!(p.change_position, None);
        assert_eq!(p.tx.output.len(), 1);
        assert_eq!(p.fee, Amount::from_sat(1_500));
    }

    #[test]
    fn insufficient_funds_and_dust_payments() {
        let change = p2wpkh();
        let err = plan(&[candidate(0, 10_000)], &[pay(10_000)], &change, RATE, 0, true).expect_err("fee missing");
        assert!(matches!(err, SpendError::InsufficientFunds { .. }));
        let err = plan(&[], &[pay(1_000)], &change, RATE, 0, true).expect_err("no coins");
        assert!(matches!(err, SpendError::InsufficientFunds { .. }));
        let err = plan(&[candidate(0, 10_000)], &[pay(100)], &change, RATE, 0, true).expect_err("dust");
        assert_eq!(err, SpendError::Dust { index: 0, amount: Amount::from_sat(100) });
    }

    #[test]
    fn subtract_fee_from_amount() {
        let change = p2wpkh();
        let mut r = pay(100_000);
        r.subtract_fee = true;
        let p = plan(&[candidate(0, 100_000)], &[r], &change, RATE, 0, true).expect("sweep");
        assert_eq!(p.change_position, None);
        // 1 input, 1 output: 11 + 68 + 31 = 110 vB
        assert_eq!(p.fee, Amount::from_sat(1_100));
        assert_eq!(p.tx.output[0].value, Amount::from_sat(98_900));
    }

    #[test]
    fn signs_every_kind() {
        let secp = Secp256k1::new();
        let seed = Seed::random();
        let accounts = Accounts::from_seed(&secp, &seed, NetworkKind::Test);
        let mut prevouts = Vec::new();
        let mut keys = Vec::new();
        let mut candidates = Vec::new();
        for (n, kind) in AddressType::ALL.into_iter().enumerate() {
            let path = KeyPath { kind, internal: false, index: n as u32 };
            let txout = TxOut {
                value: Amount::from_sat(50_000),
                script_pubkey: accounts.script(&secp, path, bitcoin::Network::Regtest),
            };
            candidates.push(Candidate {
                outpoint: OutPoint { txid: Txid::all_zeros(), vout: n as u32 },
                txout: txout.clone(),
                path,
            });
            prevouts.push(Some(txout));
            keys.push(Some((signing_key(&secp, &seed, path, NetworkKind::Test), kind)));
        }
        let p = plan(&candidates, &[pay(140_000)], &p2wpkh(), RATE, 0, true).expect("enough");
        // keep the plan's input order for prevouts and keys
        let order: Vec<usize> = p.inputs.iter().map(|c| c.outpoint.vout as usize).collect();
        let prevouts: Vec<_> = order.iter().map(|&i| prevouts[i].clone()).collect();
        let keys: Vec<_> = order.iter().map(|&i| keys[i]).collect();
        let mut tx = p.tx.clone();
        assert!(sign(&secp, &mut tx, &prevouts, &keys).is_empty());
        // Verify each input with the consensus script interpreter.
        let spent: Vec<TxOut> = prevouts.iter().map(|p| p.clone().expect("known")).collect();
        for (i, input) in tx.input.iter().enumerate() {
            match p.inputs[i].path.kind {
                AddressType::Legacy => assert!(!input.script_sig.is_empty() && input.witness.is_empty()),
                AddressType::Bech32 => assert_eq!(input.witness.len(), 2),
                AddressType::Bech32m => assert_eq!(input.witness.len(), 1),
            }
        }
        crate::wallet::spend::tests::verify(&tx, &spent);
        // An input without a key is reported, not signed.
        let mut tx2 = p.tx.clone();
        let mut keys2 = keys.clone();
        keys2[0] = None;
        let errors = sign(&secp, &mut tx2, &prevouts, &keys2);
        assert_eq!(errors, vec![(0, SignError::NotMine)]);
    }

    /// Checks every input's signature with the consensus crate's interpreter.
    pub(crate) fn verify(tx: &Transaction, spent: &[TxOut]) {
        let data = satpool_consensus::PrecomputedTx::new(tx, spent).expect("one spent output per input");
        for i in 0..tx.input.len() {
            satpool_consensus::verify_input(&data, i, satpool_consensus::VerifyFlags::STANDARD)
                .unwrap_or_else(|e| panic!("input {i} fails verification: {e:?}"));
        }
    }
}
