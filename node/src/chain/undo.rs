//! Undo data: the coins a block spent, so that it can be disconnected.

use bitcoin::consensus::encode::{Decodable, Encodable, VarInt};
use bitcoin::OutPoint;

use crate::utxo::Coin;
use crate::validation::SpentCoin;

/// Serialises spent coins: a count, then each outpoint and length-prefixed coin.
pub fn encode(spent: &[SpentCoin]) -> Vec<u8> {
    let mut out = Vec::new();
    VarInt(spent.len() as u64).consensus_encode(&mut out).expect("writing to a Vec never fails");
    for s in spent {
        s.outpoint.consensus_encode(&mut out).expect("writing to a Vec never fails");
        s.coin.to_bytes().consensus_encode(&mut out).expect("writing to a Vec never fails");
    }
    out
}

/// Parses what [`encode`] wrote; `None` if malformed.
pub fn decode(mut bytes: &[u8]) -> Option<Vec<SpentCoin>> {
    let count = VarInt::consensus_decode(&mut bytes).ok()?.0;
    let mut spent = Vec::with_capacity(count.min(100_000) as usize);
    for _ in 0..count {
        let outpoint = OutPoint::consensus_decode(&mut bytes).ok()?;
        let coin_bytes = Vec::<u8>::consensus_decode(&mut bytes).ok()?;
        let coin = Coin::from_bytes(&coin_bytes).ok()?;
        spent.push(SpentCoin { outpoint, coin });
    }
    bytes.is_empty().then_some(spent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::{Amount, ScriptBuf, TxOut};

    #[test]
    fn round_trip_and_truncation() {
        let spent = vec![SpentCoin {
            outpoint: OutPoint { txid: bitcoin::hashes::Hash::from_byte_array([7; 32]), vout: 3 },
            coin: Coin {
                output: TxOut { value: Amount::from_sat(42), script_pubkey: ScriptBuf::from_bytes(vec![0x51]) },
                height: 9,
                is_coinbase: false,
            },
        }];
        let bytes = encode(&spent);
        assert_eq!(decode(&bytes).unwrap(), spent);
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
    }
}
