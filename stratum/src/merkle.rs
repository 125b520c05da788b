//! The merkle branch of the coinbase: the pool computes it once per
//! template from the other transactions' txids, the miner and the share
//! check fold it onto the coinbase txid. The coinbase is always the
//! leftmost leaf, so each step is `sha256d(left = running ‖ right = branch)`;
//! branch hashes are in internal byte order, on the wire too.

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{TxMerkleNode, Txid};

fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut engine = sha256d::Hash::engine();
    engine.input(left);
    engine.input(right);
    sha256d::Hash::from_engine(engine).to_byte_array()
}

/// The merkle root: `root = coinbase_txid; for b in branch { root = sha256d(root ‖ b) }`.
pub fn merkle_root(coinbase_txid: Txid, branch: &[TxMerkleNode]) -> TxMerkleNode {
    let mut root = coinbase_txid.to_byte_array();
    for node in branch {
        root = hash_pair(&root, node.as_byte_array());
    }
    TxMerkleNode::from_byte_array(root)
}

/// The branch for the coinbase, given the txids of the block's other
/// transactions in block order (the template's, without the coinbase).
///
/// Odd levels duplicate their last hash, as Bitcoin's merkle tree does.
pub fn merkle_branch(txids: &[Txid]) -> Vec<TxMerkleNode> {
    // level[0] stands for the (unknown) coinbase path and is never read.
    let mut level: Vec<[u8; 32]> = Vec::with_capacity(txids.len() + 1);
    level.push([0; 32]);
    level.extend(txids.iter().map(|txid| txid.to_byte_array()));
    let mut branch = Vec::new();
    while level.len() > 1 {
        branch.push(TxMerkleNode::from_byte_array(level[1]));
        if level.len() % 2 == 1 {
            let last = level[level.len() - 1];
            level.push(last);
        }
        let mut next = Vec::with_capacity(level.len() / 2);
        next.push([0; 32]);
        for pair in level[2..].chunks_exact(2) {
            next.push(hash_pair(&pair[0], &pair[1]));
        }
        level = next;
    }
    branch
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn txid(n: u8) -> Txid {
        Txid::from_byte_array([n; 32])
    }

    /// Bitcoin's own merkle root over the full txid list.
    fn reference_root(txids: &[Txid]) -> TxMerkleNode {
        bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| TxMerkleNode::from_raw_hash(t.to_raw_hash())))
            .expect("non-empty list")
    }

    #[test]
    fn branch_then_root_matches_bitcoin_for_1_to_20_transactions() {
        for n in 1..=20u8 {
            let all: Vec<Txid> = (0..n).map(txid).collect();
            let branch = merkle_branch(&all[1..]);
            assert_eq!(merkle_root(all[0], &branch), reference_root(&all), "{n} transactions");
        }
    }

    #[test]
    fn coinbase_alone_is_its_own_root() {
        assert!(merkle_branch(&[]).is_empty());
        assert_eq!(merkle_root(txid(7), &[]).to_byte_array(), [7; 32]);
    }
}
