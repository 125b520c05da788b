//! Merkle roots as Core computes them, with the CVE-2012-2459 mutation flag.

use bitcoin::hashes::{sha256d, Hash, HashEngine};

/// Computes the merkle root of `leaves` (in internal byte order) and whether
/// the tree is "mutated": some level pairs two identical nodes, which lets a
/// different transaction list (one with a duplicated tail) share the root.
/// Returns `None` for an empty list.
pub fn merkle_root(mut level: Vec<sha256d::Hash>) -> Option<(sha256d::Hash, bool)> {
    if level.is_empty() {
        return None;
    }
    let mut mutated = false;
    while level.len() > 1 {
        for pair in level.chunks_exact(2) {
            if pair[0] == pair[1] {
                mutated = true;
            }
        }
        if level.len() % 2 == 1 {
            let last = *level.last().expect("level is not empty");
            level.push(last);
        }
        level = level.chunks_exact(2).map(|pair| hash_pair(&pair[0], &pair[1])).collect();
    }
    Some((level[0], mutated))
}

/// The parent of two merkle nodes: SHA-256d of their concatenation.
pub fn hash_pair(left: &sha256d::Hash, right: &sha256d::Hash) -> sha256d::Hash {
    let mut engine = sha256d::Hash::engine();
    engine.input(left.as_byte_array());
    engine.input(right.as_byte_array());
    sha256d::Hash::from_engine(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(n: u8) -> sha256d::Hash {
        sha256d::Hash::hash(&[n])
    }

    #[test]
    fn duplicated_tail_has_the_same_root_and_is_flagged() {
        let three = vec![leaf(1), leaf(2), leaf(3)];
        let four = vec![leaf(1), leaf(2), leaf(3), leaf(3)];
        let (r3, m3) = merkle_root(three).unwrap();
        let (r4, m4) = merkle_root(four).unwrap();
        assert_eq!(r3, r4);
        assert!(!m3);
        assert!(m4);
    }

    #[test]
    fn single_leaf_is_its_own_root() {
        assert_eq!(merkle_root(vec![leaf(9)]).unwrap(), (leaf(9), false));
        assert!(merkle_root(vec![]).is_none());
    }
}
