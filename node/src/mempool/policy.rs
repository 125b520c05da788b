//! Standardness: the relay policy Bitcoin Core applies on top of consensus
//! (`policy/policy.cpp`: `IsStandardTx`, `GetDustThreshold`,
//! `AreInputsStandard`, `IsWitnessStandard`), and the fee rate unit it is
//! written in (`CFeeRate`).

use std::fmt;

use bitcoin::{Amount, Script, Transaction, TxOut};
use satpool_consensus::script::{is_push_only, witness_program, Instructions};

/// Largest weight of a standard transaction (`MAX_STANDARD_TX_WEIGHT`).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
/// Smallest serialised size, without witness, of a standard transaction
/// (`MIN_STANDARD_TX_NONWITNESS_SIZE`): 64-byte transactions look like inner
/// merkle nodes.
pub const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;
/// Largest standard scriptSig (`MAX_STANDARD_SCRIPTSIG_SIZE`).
pub const MAX_STANDARD_SCRIPTSIG_SIZE: usize = 1650;
/// Largest sigop cost of a standard transaction (`MAX_STANDARD_TX_SIGOPS_COST`).
pub const MAX_STANDARD_TX_SIGOPS_COST: usize = 16_000;
/// Virtual bytes each sigop counts for in the fee rate (`DEFAULT_BYTES_PER_SIGOP`).
pub const DEFAULT_BYTES_PER_SIGOP: u64 = 20;
/// Most sigops a standard P2SH redeem script may have (`MAX_P2SH_SIGOPS`).
pub const MAX_P2SH_SIGOPS: usize = 15;
/// Most witness stack items of a standard P2WSH spend, the script excluded.
pub const MAX_STANDARD_P2WSH_STACK_ITEMS: usize = 100;
/// Largest witness stack item of a standard P2WSH spend.
pub const MAX_STANDARD_P2WSH_STACK_ITEM_SIZE: usize = 80;
/// Largest standard P2WSH witness script.
pub const MAX_STANDARD_P2WSH_SCRIPT_SIZE: usize = 3600;
/// Largest stack item of a standard tapscript spend.
pub const MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE: usize = 80;
/// Lowest standard transaction version (`TX_MIN_STANDARD_VERSION`).
pub const TX_MIN_STANDARD_VERSION: i32 = 1;
/// Highest standard transaction version (`TX_MAX_STANDARD_VERSION`, TRUC is 3).
pub const TX_MAX_STANDARD_VERSION: i32 = 3;
/// Default bytes of OP_RETURN outputs a transaction may carry, all outputs
/// together (Core 30's `MAX_OP_RETURN_RELAY`).
pub const MAX_OP_RETURN_RELAY: usize = 100_000;

/// A fee rate in satoshis per 1000 virtual bytes (Core's `CFeeRate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(u64);

impl FeeRate {
    /// No fee.
    pub const ZERO: FeeRate = FeeRate(0);
    /// Core's `DEFAULT_MIN_RELAY_TX_FEE` (100 sat/kvB since Core 29.1).
    pub const DEFAULT_MIN_RELAY: FeeRate = FeeRate(100);
    /// Core's `DEFAULT_INCREMENTAL_RELAY_FEE` (100 sat/kvB since Core 29.1).
    pub const DEFAULT_INCREMENTAL_RELAY: FeeRate = FeeRate(100);
    /// Core's `DUST_RELAY_TX_FEE`: 3 sat/vB.
    pub const DUST_RELAY: FeeRate = FeeRate(3000);

    /// A rate of `sat_per_kvb` satoshis per 1000 virtual bytes.
    pub const fn from_sat_per_kvb(sat_per_kvb: u64) -> FeeRate {
        FeeRate(sat_per_kvb)
    }

    /// The rate `fee` over `vsize` (Core's `CFeeRate(fee, size)`), truncated;
    /// a negative fee is a zero rate.
    pub fn from_fee(fee: i64, vsize: u64) -> FeeRate {
        if vsize == 0 || fee <= 0 {
            return FeeRate(0);
        }
        FeeRate((i128::from(fee) * 1000 / i128::from(vsize)) as u64)
    }

    /// Satoshis per 1000 virtual bytes.
    pub const fn sat_per_kvb(self) -> u64 {
        self.0
    }

    /// The fee for `vsize` virtual bytes, rounded up (Core's `GetFee`).
    pub fn fee(self, vsize: u64) -> Amount {
        Amount::from_sat((u128::from(self.0) * u128::from(vsize)).div_ceil(1000) as u64)
    }

    /// As an amount per kvB (how RPC prints rates, in BTC/kvB).
    pub fn per_kvb(self) -> Amount {
        Amount::from_sat(self.0)
    }
}

impl fmt::Display for FeeRate {
    /// Core's `CFeeRate::ToString`: `0.00001000 BTC/kvB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:08} BTC/kvB", self.0 / 100_000_000, self.0 % 100_000_000)
    }
}

/// Core's `FormatMoney`: coins with at least two decimals and no trailing
/// zeros beyond them (`0.00001`, `1.00`); negative amounts get a minus sign.
pub fn format_money(sat: i64) -> String {
    let abs = sat.unsigned_abs();
    let mut text = format!("{}{}.{:08}", if sat < 0 { "-" } else { "" }, abs / 100_000_000, abs % 100_000_000);
    while text.ends_with('0') && text.len() - text.find('.').map_or(0, |p| p + 1) > 2 {
        text.pop();
    }
    text
}

/// Core's `GetVirtualTransactionSize`: weight (or sigop cost times bytes per
/// sigop, whichever is larger) over four, rounded up.
pub fn virtual_size(weight: u64, sigop_cost: usize) -> u64 {
    weight.max(sigop_cost as u64 * DEFAULT_BYTES_PER_SIGOP).div_ceil(4)
}

/// The policy knobs standardness reads.
#[derive(Debug, Clone)]
pub struct StandardnessConfig {
    /// Rate that defines dust (`-dustrelayfee`).
    pub dust_relay_fee: FeeRate,
    /// Bytes of OP_RETURN outputs allowed per transaction (`-datacarriersize`);
    /// `None` refuses data carrier outputs (`-datacarrier=0`).
    pub max_datacarrier_bytes: Option<usize>,
    /// Relay bare multisig outputs (`-permitbaremultisig`).
    pub permit_bare_multisig: bool,
}

impl Default for StandardnessConfig {
    fn default() -> Self {
        StandardnessConfig {
            dust_relay_fee: FeeRate::DUST_RELAY,
            max_datacarrier_bytes: Some(MAX_OP_RETURN_RELAY),
            permit_bare_multisig: true,
        }
    }
}

/// Core's `TxoutType`, the standard script templates (`Solver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// Matches no template.
    NonStandard,
    /// `<key> OP_CHECKSIG`.
    PubKey,
    /// P2PKH.
    PubKeyHash,
    /// P2SH.
    ScriptHash,
    /// Bare `m <keys> n OP_CHECKMULTISIG`.
    Multisig {
        /// Signatures required.
        required: u8,
        /// Keys.
        keys: u8,
    },
    /// `OP_RETURN` followed by pushes only.
    NullData,
    /// P2WPKH.
    WitnessV0KeyHash,
    /// P2WSH.
    WitnessV0ScriptHash,
    /// P2TR.
    WitnessV1Taproot,
    /// Pay-to-anchor (`OP_1 <4e73>`).
    Anchor,
    /// A witness program of a version or length with no meaning yet.
    WitnessUnknown,
}

fn is_pubkey(data: &[u8]) -> bool {
    match data.first() {
        Some(0x02 | 0x03) => data.len() == 33,
        Some(0x04) => data.len() == 65,
        _ => false,
    }
}

/// Core's `Solver`: which template `script` matches.
pub fn classify(script: &Script) -> ScriptKind {
    let bytes = script.as_bytes();
    if script.is_p2sh() {
        return ScriptKind::ScriptHash;
    }
    if let Some((version, program)) = witness_program(bytes) {
        return match (version, program.len()) {
            (0, 20) => ScriptKind::WitnessV0KeyHash,
            (0, 32) => ScriptKind::WitnessV0ScriptHash,
            (1, 32) => ScriptKind::WitnessV1Taproot,
            (1, 2) if program == [0x4e, 0x73] => ScriptKind::Anchor,
            (0, _) => ScriptKind::NonStandard,
            _ => ScriptKind::WitnessUnknown,
        };
    }
    if bytes.first() == Some(&0x6a) && is_push_only(&bytes[1..]) {
        return ScriptKind::NullData;
    }
    if script.is_p2pkh() {
        return ScriptKind::PubKeyHash;
    }
    let ops: Vec<_> = match Instructions::new(bytes).collect::<Result<Vec<_>, _>>() {
        Ok(ops) => ops,
        Err(_) => return ScriptKind::NonStandard,
    };
    if ops.len() == 2 && ops[1].opcode == 0xac && is_pubkey(ops[0].data) && ops[0].opcode == ops[0].data.len() as u8 {
        return ScriptKind::PubKey;
    }
    // m <keys> n OP_CHECKMULTISIG, m and n as OP_1..OP_16.
    if ops.len() >= 4 && ops[ops.len() - 1].opcode == 0xae {
        let small = |op: u8| (0x51..=0x60).contains(&op).then(|| op - 0x50);
        let (Some(m), Some(n)) = (small(ops[0].opcode), small(ops[ops.len() - 2].opcode)) else {
            return ScriptKind::NonStandard;
        };
        let keys = &ops[1..ops.len() - 2];
        if keys.len() == usize::from(n)
            && m <= n
            && keys.iter().all(|k| is_pubkey(k.data) && k.opcode as usize == k.data.len())
        {
            return ScriptKind::Multisig { required: m, keys: n };
        }
    }
    ScriptKind::NonStandard
}

/// Core's `GetDustThreshold`: the value below which spending `output` would
/// cost more than a third of it at `dust_relay_fee`.
pub fn dust_threshold(output: &TxOut, dust_relay_fee: FeeRate) -> Amount {
    let script = &output.script_pubkey;
    if script.is_op_return() || script.len() > 10_000 {
        return Amount::ZERO;
    }
    let mut size = output.size() as u64;
    size += if script.is_witness_program() {
        // outpoint, scriptSig length, sequence, and the witness discounted.
        32 + 4 + 1 + (107 / 4) + 4
    } else {
        32 + 4 + 1 + 107 + 4
    };
    dust_relay_fee.fee(size)
}

/// Core's `IsDust`.
pub fn is_dust(output: &TxOut, dust_relay_fee: FeeRate) -> bool {
    output.value < dust_threshold(output, dust_relay_fee)
}

/// Core's `IsStandardTx`; the error is the reject reason.
pub fn check_standard(tx: &Transaction, config: &StandardnessConfig) -> Result<(), &'static str> {
    if !(TX_MIN_STANDARD_VERSION..=TX_MAX_STANDARD_VERSION).contains(&tx.version.0) {
        return Err("version");
    }
    if tx.weight().to_wu() > MAX_STANDARD_TX_WEIGHT {
        return Err("tx-size");
    }
    for input in &tx.input {
        if input.script_sig.len() > MAX_STANDARD_SCRIPTSIG_SIZE {
            return Err("scriptsig-size");
        }
        if !is_push_only(input.script_sig.as_bytes()) {
            return Err("scriptsig-not-pushonly");
        }
    }
    let mut datacarrier_left = config.max_datacarrier_bytes.unwrap_or(0);
    let mut dust = 0usize;
    for output in &tx.output {
        match classify(&output.script_pubkey) {
            ScriptKind::NonStandard => return Err("scriptpubkey"),
            ScriptKind::Multisig { required, keys } => {
                if !(1..=3).contains(&keys) || required < 1 {
                    return Err("scriptpubkey");
                }
                if !config.permit_bare_multisig {
                    return Err("bare-multisig");
                }
            }
            ScriptKind::NullData => {
                let size = output.script_pubkey.len();
                if config.max_datacarrier_bytes.is_none() || size > datacarrier_left {
                    return Err("datacarrier");
                }
                datacarrier_left -= size;
            }
            _ => {}
        }
        if is_dust(output, config.dust_relay_fee) {
            dust += 1;
        }
    }
    // Core 28 allows one dust output in a zero-fee transaction whose child
    // spends it in the same package (ephemeral dust); without package relay
    // such a transaction could never enter alone, so any dust is refused.
    if dust > 0 {
        return Err("dust");
    }
    Ok(())
}

/// The last push of a push-only scriptSig: the P2SH redeem script.
fn redeem_script(script_sig: &Script) -> Option<&[u8]> {
    let mut last = None;
    for op in Instructions::new(script_sig.as_bytes()) {
        let op = op.ok()?;
        if op.opcode > 0x60 {
            return None;
        }
        last = Some(op.data);
    }
    last
}

/// Core's `AreInputsStandard`: every spent output is of a standard kind, and
/// P2SH redeem scripts have at most [`MAX_P2SH_SIGOPS`] sigops.
/// `spent[i]` is what input `i` spends.
pub fn inputs_standard(tx: &Transaction, spent: &[TxOut]) -> bool {
    tx.input.iter().zip(spent).all(|(input, prev)| match classify(&prev.script_pubkey) {
        ScriptKind::NonStandard | ScriptKind::WitnessUnknown => false,
        ScriptKind::ScriptHash => match redeem_script(&input.script_sig) {
            Some(redeem) => satpool_consensus::script_sigop_count(redeem, true) <= MAX_P2SH_SIGOPS,
            None => false,
        },
        _ => true,
    })
}

/// Core's `IsWitnessStandard`: witness data only where a witness program is
/// spent, with Core's limits on P2WSH and tapscript stacks and no annex.
pub fn witness_standard(tx: &Transaction, spent: &[TxOut]) -> bool {
    for (input, prev) in tx.input.iter().zip(spent) {
        if input.witness.is_empty() {
            continue;
        }
        let mut program_script = prev.script_pubkey.as_bytes();
        let nested = prev.script_pubkey.is_p2sh();
        if nested {
            match redeem_script(&input.script_sig) {
                Some(redeem) => program_script = redeem,
                None => return false,
            }
        }
        let Some((version, program)) = witness_program(program_script) else { return false };
        let items: Vec<&[u8]> = input.witness.iter().collect();
        if version == 0 && program.len() == 32 {
            let Some((script, stack)) = items.split_last() else { return false };
            if script.len() > MAX_STANDARD_P2WSH_SCRIPT_SIZE
                || stack.len() > MAX_STANDARD_P2WSH_STACK_ITEMS
                || stack.iter().any(|item| item.len() > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE)
            {
                return false;
            }
        }
        if version == 1 && program.len() == 32 && !nested {
            let mut stack = items.as_slice();
            if stack.len() >= 2 && stack[stack.len() - 1].first() == Some(&0x50) {
                return false; // an annex: reserved for future soft forks
            }
            if stack.len() >= 2 {
                let control = stack[stack.len() - 1];
                stack = &stack[..stack.len() - 2];
                if control.first().map(|c| c & 0xfe) == Some(0xc0)
                    && stack.iter().any(|item| item.len() > MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE)
                {
                    return false;
                }
            } else if stack.is_empty() {
                return false;
            }
        }
    }
    true
}

/// Whether a transaction signals BIP 125 replaceability itself.
pub fn signals_rbf(tx: &Transaction) -> bool {
    tx.input.iter().any(|i| i.sequence.0 < 0xffff_fffe)
}

/// Core's `IsFinalTx` for the next block: height `height`, lock-time
/// cutoff `cutoff_time` (the tip's median time past).
pub fn is_final(tx: &Transaction, height: u32, cutoff_time: u32) -> bool {
    let lock_time = tx.lock_time.to_consensus_u32();
    if lock_time == 0 {
        return true;
    }
    let limit = if lock_time < 500_000_000 { height } else { cutoff_time };
    lock_time < limit || tx.input.iter().all(|i| i.sequence.0 == u32::MAX)
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::{absolute, transaction, OutPoint, ScriptBuf, Sequence, TxIn, Witness};

    use super::*;

    fn p2wpkh() -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::all_zeros())
    }

    fn tx_with(version: i32, script_sig: ScriptBuf, outputs: Vec<TxOut>) -> Transaction {
        Transaction {
            version: transaction::Version(version),
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(bitcoin::Txid::all_zeros(), 0),
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::default(),
            }],
            output: outputs,
        }
    }

    fn out(sat: u64, script: ScriptBuf) -> TxOut {
        TxOut { value: Amount::from_sat(sat), script_pubkey: script }
    }

    #[test]
    fn dust_thresholds_are_cores() {
        let p2pkh = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::all_zeros());
        assert_eq!(dust_threshold(&out(0, p2pkh), FeeRate::DUST_RELAY), Amount::from_sat(546));
        assert_eq!(dust_threshold(&out(0, p2wpkh()), FeeRate::DUST_RELAY), Amount::from_sat(294));
        let p2tr = ScriptBuf::from_bytes([&[0x51, 0x20][..], &[7u8; 32]].concat());
        assert_eq!(dust_threshold(&out(0, p2tr), FeeRate::DUST_RELAY), Amount::from_sat(330));
        assert_eq!(dust_threshold(&out(0, ScriptBuf::from_bytes(vec![0x6a])), FeeRate::DUST_RELAY), Amount::ZERO);
    }

    #[test]
    fn standardness_reasons() {
        let config = StandardnessConfig::default();
        let good = out(10_000, p2wpkh());
        let op_return = |len: usize| {
            let mut s = vec![0x6a, 0x4d];
            s.extend_from_slice(&(len as u16).to_le_bytes());
            s.extend(std::iter::repeat_n(0u8, len));
            out(0, ScriptBuf::from_bytes(s))
        };
        let cases: Vec<(&str, Transaction, Result<(), &str>)> = vec![
            ("standard", tx_with(2, ScriptBuf::new(), vec![good.clone()]), Ok(())),
            ("version 0", tx_with(0, ScriptBuf::new(), vec![good.clone()]), Err("version")),
            ("version 4", tx_with(4, ScriptBuf::new(), vec![good.clone()]), Err("version")),
            ("version 3 (TRUC)", tx_with(3, ScriptBuf::new(), vec![good.clone()]), Ok(())),
            ("tx-size", tx_with(2, ScriptBuf::new(), vec![good.clone(); 3300]), Err("tx-size")),
            (
                "scriptsig-size",
                tx_with(2, ScriptBuf::from_bytes(vec![0x51; 1651]), vec![good.clone()]),
                Err("scriptsig-size"),
            ),
            (
                "scriptsig-not-pushonly",
                tx_with(2, ScriptBuf::from_bytes(vec![0x76]), vec![good.clone()]),
                Err("scriptsig-not-pushonly"),
            ),
            (
                "nonstandard output",
                tx_with(2, ScriptBuf::new(), vec![out(10_000, ScriptBuf::from_bytes(vec![0x76]))]),
                Err("scriptpubkey"),
            ),
            ("dust", tx_with(2, ScriptBuf::new(), vec![out(293, p2wpkh())]), Err("dust")),
            ("not dust", tx_with(2, ScriptBuf::new(), vec![out(294, p2wpkh())]), Ok(())),
            ("op_return", tx_with(2, ScriptBuf::new(), vec![good.clone(), op_return(80)]), Ok(())),
            ("two op_returns", tx_with(2, ScriptBuf::new(), vec![good.clone(), op_return(80), op_return(80)]), Ok(())),
            (
                "op_return not push-only",
                tx_with(2, ScriptBuf::new(), vec![good.clone(), out(0, ScriptBuf::from_bytes(vec![0x6a, 0x76]))]),
                Err("scriptpubkey"),
            ),
        ];
        for (name, tx, expected) in cases {
            assert_eq!(check_standard(&tx, &config), expected, "{name}");
        }
        let small = StandardnessConfig { max_datacarrier_bytes: Some(83), ..StandardnessConfig::default() };
        let two = tx_with(2, ScriptBuf::new(), vec![good.clone(), op_return(40), op_return(40)]);
        assert_eq!(check_standard(&two, &small), Err("datacarrier"));
        let none = StandardnessConfig { max_datacarrier_bytes: None, ..StandardnessConfig::default() };
        assert_eq!(check_standard(&tx_with(2, ScriptBuf::new(), vec![good, op_return(1)]), &none), Err("datacarrier"));
    }

    #[test]
    fn multisig_classification() {
        let key = [2u8; 33];
        let mut s = vec![0x51];
        for _ in 0..3 {
            s.push(33);
            s.extend_from_slice(&key);
        }
        s.extend_from_slice(&[0x53, 0xae]);
        assert_eq!(classify(Script::from_bytes(&s)), ScriptKind::Multisig { required: 1, keys: 3 });
        let config = StandardnessConfig::default();
        let tx = tx_with(2, ScriptBuf::new(), vec![out(10_000, ScriptBuf::from_bytes(s.clone()))]);
        assert_eq!(check_standard(&tx, &config), Ok(()));
        let strict = StandardnessConfig { permit_bare_multisig: false, ..config };
        assert_eq!(check_standard(&tx, &strict), Err("bare-multisig"));
    }

    #[test]
    fn money_and_rates_print_like_core() {
        assert_eq!(format_money(1000), "0.00001");
        assert_eq!(format_money(100_000_000), "1.00");
        assert_eq!(format_money(-150), "-0.0000015");
        assert_eq!(FeeRate::from_sat_per_kvb(1000).to_string(), "0.00001000 BTC/kvB");
        assert_eq!(FeeRate::from_sat_per_kvb(100).fee(141), Amount::from_sat(15));
        assert_eq!(FeeRate::from_fee(1410, 141), FeeRate::from_sat_per_kvb(10_000));
        assert_eq!(virtual_size(561, 0), 141);
        assert_eq!(virtual_size(400, 100), 500);
    }
}
