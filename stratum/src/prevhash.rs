//! The previous-block hash as `mining.notify` carries it.
//!
//! Take the hash in display order (as `getblocktemplate` and explorers show
//! it), cut it into eight 4-byte words and reverse the order of the words,
//! keeping the bytes inside each word. Equivalently: take the header's
//! internal byte order and byte-swap each 4-byte word. Merkle branches and
//! extranonces are never swapped; only this field is.

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;

/// Swaps the bytes inside each 4-byte word (its own inverse).
fn swap_words(bytes: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (dst, src) in out.chunks_exact_mut(4).zip(bytes.chunks_exact(4)) {
        dst.copy_from_slice(&[src[3], src[2], src[1], src[0]]);
    }
    out
}

/// The 32 bytes that `mining.notify` writes (as hex) for `hash`.
pub fn prev_hash_to_stratum(hash: &BlockHash) -> [u8; 32] {
    swap_words(&hash.to_byte_array())
}

/// The block hash from the 32 bytes of `mining.notify`'s previous-hash field.
pub fn prev_hash_from_stratum(words: &[u8; 32]) -> BlockHash {
    BlockHash::from_byte_array(swap_words(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of STRATUM.md (a mainnet block hash).
    const DISPLAY: &str = "00000000000000000328e9fea9914ad83b7404a838aa66aefb970e5689c2f63d";
    const STRATUM: &str = "89c2f63dfb970e5638aa66ae3b7404a8a9914ad80328e9fe0000000000000000";

    #[test]
    fn worked_example_both_ways() {
        let hash: BlockHash = DISPLAY.parse().expect("display hex");
        assert_eq!(hex::encode(prev_hash_to_stratum(&hash)), STRATUM);
        let words: [u8; 32] = hex::decode(STRATUM).expect("hex").try_into().expect("32 bytes");
        assert_eq!(prev_hash_from_stratum(&words), hash);
    }

    #[test]
    fn genesis_as_a_pool_would_send_it() {
        // Block 1's prevhash is the genesis hash.
        let genesis: BlockHash =
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f".parse().expect("display hex");
        assert_eq!(
            hex::encode(prev_hash_to_stratum(&genesis)),
            "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"
        );
    }
}
