//! Taproot commitments (BIP341): tagged hashes, tapleaf and tapbranch
//! hashes, and the check that a control block commits to a script.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{Parity, Scalar, XOnlyPublicKey};

use crate::sighash::write_compact_size;
use crate::signature::secp;

/// The leaf version of tapscript (BIP342).
pub const TAPROOT_LEAF_TAPSCRIPT: u8 = 0xc0;
/// The bits of a control block's first byte that hold the leaf version.
pub const TAPROOT_LEAF_MASK: u8 = 0xfe;
/// The first byte of an annex.
pub const ANNEX_TAG: u8 = 0x50;
/// The size of a control block with an empty path.
pub const TAPROOT_CONTROL_BASE_SIZE: usize = 33;
/// The size of one step of a control block's path.
pub const TAPROOT_CONTROL_NODE_SIZE: usize = 32;
/// The longest path a control block may hold.
pub const TAPROOT_CONTROL_MAX_NODE_COUNT: usize = 128;
/// The largest control block.
pub const TAPROOT_CONTROL_MAX_SIZE: usize =
    TAPROOT_CONTROL_BASE_SIZE + TAPROOT_CONTROL_NODE_SIZE * TAPROOT_CONTROL_MAX_NODE_COUNT;

/// A SHA256 engine primed with BIP340's tag prefix for `tag`.
pub fn tagged_engine(tag: &str) -> sha256::HashEngine {
    let tag_hash = sha256::Hash::hash(tag.as_bytes());
    let mut engine = sha256::Hash::engine();
    engine.input(tag_hash.as_byte_array());
    engine.input(tag_hash.as_byte_array());
    engine
}

/// The tapleaf hash of `script` under `leaf_version`.
pub fn tapleaf_hash(leaf_version: u8, script: &[u8]) -> [u8; 32] {
    let mut e = tagged_engine("TapLeaf");
    e.input(&[leaf_version]);
    write_compact_size(&mut e, script.len());
    e.input(script);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The tapbranch hash of two nodes (ordered, so either order gives it).
pub fn tapbranch_hash(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut e = tagged_engine("TapBranch");
    e.input(low);
    e.input(high);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The tweak of internal key `internal_key` for `merkle_root` (none for a
/// key with no script tree).
pub fn taptweak_hash(internal_key: &[u8; 32], merkle_root: Option<&[u8; 32]>) -> [u8; 32] {
    let mut e = tagged_engine("TapTweak");
    e.input(internal_key);
    if let Some(root) = merkle_root {
        e.input(root);
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The Merkle root that `control`'s path leads to from `leaf_hash`. The
/// caller has checked the control block's size.
pub fn merkle_root_from_path(control: &[u8], leaf_hash: &[u8; 32]) -> [u8; 32] {
    control[TAPROOT_CONTROL_BASE_SIZE..].chunks_exact(TAPROOT_CONTROL_NODE_SIZE).fold(*leaf_hash, |k, node| {
        let mut n = [0u8; 32];
        n.copy_from_slice(node);
        tapbranch_hash(&k, &n)
    })
}

/// Whether output key `program` commits to the leaf `leaf_hash` through
/// `control` (Core's `VerifyTaprootCommitment`). The caller has checked the
/// control block's size.
pub fn verify_commitment(control: &[u8], program: &[u8], leaf_hash: &[u8; 32]) -> bool {
    let Ok(internal) = XOnlyPublicKey::from_slice(&control[1..TAPROOT_CONTROL_BASE_SIZE]) else {
        return false;
    };
    let Ok(output) = XOnlyPublicKey::from_slice(program) else {
        return false;
    };
    let root = merkle_root_from_path(control, leaf_hash);
    let tweak = taptweak_hash(&internal.serialize(), Some(&root));
    let Ok(tweak) = Scalar::from_be_bytes(tweak) else {
        return false;
    };
    let parity = if control[0] & 1 == 1 { Parity::Odd } else { Parity::Even };
    internal.tweak_add_check(secp(), &output, parity, tweak)
}
