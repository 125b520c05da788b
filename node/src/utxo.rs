//! The unspent transaction output set's unit: a coin, and how it is stored.

use bitcoin::consensus::encode::{self, Decodable, Encodable, VarInt};
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut};

/// An unspent output with what the consensus rules need to know of it: the
/// height of the block that created it and whether it was a coinbase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The output.
    pub output: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Created by a coinbase (and so subject to maturity).
    pub is_coinbase: bool,
}

impl Coin {
    /// Serialises as Core does in its chainstate: `varint(height·2 + coinbase)`,
    /// then the amount and the script (uncompressed here; redb compresses nothing,
    /// but the format stays simple and self-describing).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.output.script_pubkey.len() + 16);
        let code = (u64::from(self.height) << 1) | u64::from(self.is_coinbase);
        VarInt(code).consensus_encode(&mut out).expect("writing to a Vec never fails");
        self.output.consensus_encode(&mut out).expect("writing to a Vec never fails");
        out
    }

    /// Parses what [`Coin::to_bytes`] wrote.
    pub fn from_bytes(mut bytes: &[u8]) -> Result<Coin, encode::Error> {
        let code = VarInt::consensus_decode(&mut bytes)?.0;
        let output = TxOut::consensus_decode(&mut bytes)?;
        let height = u32::try_from(code >> 1).map_err(|_| encode::Error::ParseFailed("coin height out of range"))?;
        Ok(Coin { output, height, is_coinbase: code & 1 == 1 })
    }

    /// The coin's value.
    pub fn value(&self) -> Amount {
        self.output.value
    }

    /// The coin's locking script.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.output.script_pubkey
    }
}

/// Read access to a UTXO set, as of the parent of the block being connected.
pub trait CoinView {
    /// The coin at `outpoint`, if it exists and is unspent.
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin>;
}

/// Encodes an outpoint as a fixed 36-byte key: txid then index, big-endian
/// index so that a transaction's outputs sort together in order.
pub fn outpoint_key(outpoint: &OutPoint) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(bitcoin::hashes::Hash::as_byte_array(&outpoint.txid));
    key[32..].copy_from_slice(&outpoint.vout.to_be_bytes());
    key
}

/// The inverse of [`outpoint_key`].
pub fn outpoint_from_key(key: &[u8; 36]) -> OutPoint {
    let mut txid = [0u8; 32];
    txid.copy_from_slice(&key[..32]);
    let mut vout = [0u8; 4];
    vout.copy_from_slice(&key[32..]);
    OutPoint { txid: bitcoin::hashes::Hash::from_byte_array(txid), vout: u32::from_be_bytes(vout) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn coin_round_trips(height in 0u32..u32::MAX / 2, cb: bool, value in 0u64..21_000_000 * 100_000_000, script in proptest::collection::vec(any::<u8>(), 0..200)) {
            let coin = Coin { output: TxOut { value: Amount::from_sat(value), script_pubkey: ScriptBuf::from_bytes(script) }, height, is_coinbase: cb };
            prop_assert_eq!(Coin::from_bytes(&coin.to_bytes()).unwrap(), coin);
        }

        #[test]
        fn outpoint_key_round_trips(txid: [u8; 32], vout: u32) {
            let op = OutPoint { txid: bitcoin::hashes::Hash::from_byte_array(txid), vout };
            prop_assert_eq!(outpoint_from_key(&outpoint_key(&op)), op);
        }
    }

    #[test]
    fn truncated_coin_is_an_error() {
        let coin = Coin {
            output: TxOut { value: Amount::from_sat(5), script_pubkey: ScriptBuf::from_bytes(vec![0x51]) },
            height: 7,
            is_coinbase: true,
        };
        let bytes = coin.to_bytes();
        assert!(Coin::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
