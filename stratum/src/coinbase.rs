//! The coinbase as Stratum ships it: `coinb1 ‖ extranonce1 ‖ extranonce2 ‖
//! coinb2`, the transaction serialised **without** witness (the form whose
//! double SHA-256 is the txid, which the merkle root commits to). The pool
//! adds the witness reserved value itself when it assembles a block.

use bitcoin::consensus::encode;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Transaction, Txid};

use crate::extranonce::{Extranonce1, Extranonce2};

/// The largest coinbase scriptSig that consensus allows.
pub const MAX_COINBASE_SCRIPT_SIG_LEN: usize = 100;

/// Version (4) + input count (1) + null outpoint (36) + scriptSig length (1):
/// where the scriptSig starts in a non-witness coinbase serialisation whose
/// scriptSig is under 253 bytes.
const SCRIPT_SIG_START: usize = 4 + 1 + 32 + 4 + 1;

/// Why a transaction cannot be split into coinb1 and coinb2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoinbaseError {
    /// Not exactly one input spending the null outpoint.
    #[error("transaction is not a coinbase: it has {inputs} inputs (a coinbase has one, spending the null outpoint)")]
    NotCoinbase {
        /// How many inputs it has.
        inputs: usize,
    },
    /// The scriptSig is longer than consensus allows.
    #[error("coinbase scriptSig is {0} bytes, over the consensus limit of {MAX_COINBASE_SCRIPT_SIG_LEN}")]
    ScriptSigTooLong(usize),
    /// The extranonce region does not lie within the scriptSig.
    #[error("extranonce region {offset}..{offset}+{len} lies outside the {script_sig_len}-byte scriptSig")]
    ExtranonceOutsideScriptSig {
        /// Offset of the region in the scriptSig.
        offset: usize,
        /// Its length.
        len: usize,
        /// The scriptSig's length.
        script_sig_len: usize,
    },
}

/// A coinbase cut around its extranonce region: what `mining.notify`
/// carries as coinb1 and coinb2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinbaseParts {
    /// Serialised coinbase up to the extranonce region.
    pub coinb1: Vec<u8>,
    /// Serialised coinbase after the extranonce region.
    pub coinb2: Vec<u8>,
}

impl CoinbaseParts {
    /// Splits `tx` (a coinbase whose scriptSig holds a placeholder of
    /// `extranonce_len` bytes, usually extranonce1 size + extranonce2 size,
    /// at `extranonce_offset_in_script_sig`) into coinb1 and coinb2.
    ///
    /// The transaction is serialised without its witness whatever it holds.
    /// The placeholder's content is dropped; only its length matters, and it
    /// must already be counted in the scriptSig's length byte.
    pub fn split(
        tx: &Transaction,
        extranonce_offset_in_script_sig: usize,
        extranonce_len: usize,
    ) -> Result<CoinbaseParts, CoinbaseError> {
        if tx.input.len() != 1 || !tx.input[0].previous_output.is_null() {
            return Err(CoinbaseError::NotCoinbase { inputs: tx.input.len() });
        }
        let script_sig_len = tx.input[0].script_sig.len();
        if script_sig_len > MAX_COINBASE_SCRIPT_SIG_LEN {
            return Err(CoinbaseError::ScriptSigTooLong(script_sig_len));
        }
        let end = extranonce_offset_in_script_sig.checked_add(extranonce_len);
        if end.is_none_or(|end| end > script_sig_len) {
            return Err(CoinbaseError::ExtranonceOutsideScriptSig {
                offset: extranonce_offset_in_script_sig,
                len: extranonce_len,
                script_sig_len,
            });
        }
        let bytes = serialize_without_witness(tx);
        debug_assert_eq!(
            &bytes[SCRIPT_SIG_START..SCRIPT_SIG_START + script_sig_len],
            tx.input[0].script_sig.as_bytes(),
            "one input and a scriptSig under 253 bytes put the scriptSig at byte 42"
        );
        let start = SCRIPT_SIG_START + extranonce_offset_in_script_sig;
        Ok(CoinbaseParts { coinb1: bytes[..start].to_vec(), coinb2: bytes[start + extranonce_len..].to_vec() })
    }

    /// The serialised coinbase with these extranonces in the region.
    pub fn assemble(&self, extranonce1: &Extranonce1, extranonce2: &Extranonce2) -> Vec<u8> {
        assemble_coinbase(&self.coinb1, extranonce1, extranonce2, &self.coinb2)
    }
}

/// `coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2`.
pub fn assemble_coinbase(
    coinb1: &[u8],
    extranonce1: &Extranonce1,
    extranonce2: &Extranonce2,
    coinb2: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(coinb1.len() + extranonce1.len() + extranonce2.len() + coinb2.len());
    out.extend_from_slice(coinb1);
    out.extend_from_slice(extranonce1.as_bytes());
    out.extend_from_slice(extranonce2.as_bytes());
    out.extend_from_slice(coinb2);
    out
}

/// The txid of a serialised (non-witness) coinbase: its double SHA-256.
pub fn coinbase_txid(coinbase: &[u8]) -> Txid {
    Txid::from_raw_hash(sha256d::Hash::hash(coinbase))
}

/// The consensus serialisation of `tx` without witness data.
pub fn serialize_without_witness(tx: &Transaction) -> Vec<u8> {
    if tx.input.iter().all(|input| input.witness.is_empty()) {
        return encode::serialize(tx);
    }
    let mut stripped = tx.clone();
    for input in &mut stripped.input {
        input.witness.clear();
    }
    encode::serialize(&stripped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::{Network, Witness};

    #[test]
    fn split_then_assemble_gives_the_transaction_back() {
        let coinbase = genesis_block(Network::Bitcoin).txdata[0].clone();
        let script = coinbase.input[0].script_sig.as_bytes().to_vec();
        let parts = CoinbaseParts::split(&coinbase, 8, 8).expect("region inside the scriptSig");
        let e1 = Extranonce1::from_bytes(script[8..12].to_vec()).expect("4 bytes");
        let e2 = Extranonce2::from_bytes(script[12..16].to_vec()).expect("4 bytes");
        let bytes = parts.assemble(&e1, &e2);
        assert_eq!(bytes, encode::serialize(&coinbase));
        assert_eq!(coinbase_txid(&bytes), coinbase.compute_txid());
    }

    #[test]
    fn witness_is_left_out() {
        let mut coinbase = genesis_block(Network::Bitcoin).txdata[0].clone();
        let plain = encode::serialize(&coinbase);
        coinbase.input[0].witness = Witness::from_slice(&[[0u8; 32]]);
        let parts = CoinbaseParts::split(&coinbase, 0, 0).expect("empty region");
        let mut joined = parts.coinb1.clone();
        joined.extend_from_slice(&parts.coinb2);
        assert_eq!(joined, plain);
    }

    #[test]
    fn rejects_bad_regions_and_non_coinbases() {
        let coinbase = genesis_block(Network::Bitcoin).txdata[0].clone();
        let len = coinbase.input[0].script_sig.len();
        assert!(matches!(
            CoinbaseParts::split(&coinbase, len - 3, 4),
            Err(CoinbaseError::ExtranonceOutsideScriptSig { .. })
        ));
        assert!(CoinbaseParts::split(&coinbase, usize::MAX, 2).is_err());
        let mut two = coinbase.clone();
        two.input.push(two.input[0].clone());
        assert_eq!(CoinbaseParts::split(&two, 0, 0), Err(CoinbaseError::NotCoinbase { inputs: 2 }));
        let mut long = coinbase;
        long.input[0].script_sig = bitcoin::ScriptBuf::from_bytes(vec![0x51; 101]);
        assert_eq!(CoinbaseParts::split(&long, 0, 8), Err(CoinbaseError::ScriptSigTooLong(101)));
    }
}
