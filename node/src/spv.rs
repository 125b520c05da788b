//! Simplified payment verification (whitepaper section 8): proofs that a
//! transaction is in a block, and the check a client that keeps only block
//! headers makes of such a proof.
//!
//! The proof is Bitcoin Core's BIP 37 merkle block (`CMerkleBlock`): the
//! block header, the block's transaction count, and a partial merkle tree
//! (hashes in depth-first order and one flag bit per visited node). The
//! `bitcoin` crate's [`MerkleBlock`] and [`PartialMerkleTree`] are a
//! translation of Core's `merkleblock.cpp`: the same encoding byte for byte
//! and the same refusals (no transactions, more transactions than fit in a
//! block, more hashes than transactions, fewer bits than hashes, running out
//! of bits or hashes, identical left and right branches (CVE-2012-2459),
//! unused bits beyond the last byte's padding, unused hashes). The tests
//! below check that against Core's own vectors; this module adds only what
//! the crate lacks: building a proof for a set of txids, reading one the way
//! Core's RPC does, and the header-chain check of an SPV client.
//!
//! Everything here is pure: no storage, no clock.

use std::collections::BTreeSet;

use bitcoin::block::Header;
use bitcoin::consensus::encode;
use bitcoin::{Block, BlockHash, Txid};

pub use bitcoin::merkle_tree::{MerkleBlock, MerkleBlockError, PartialMerkleTree};

use crate::params::ChainParams;
use crate::pow::{self, Parent, PowError};

/// A proof for the transactions of `block` whose txids are in `txids`
/// (Core's `CMerkleBlock(block, txids)`); txids not in the block are ignored.
pub fn build_proof(block: &Block, txids: &BTreeSet<Txid>) -> MerkleBlock {
    MerkleBlock::from_block_with_predicate(block, |txid| txids.contains(txid))
}

/// Consensus-encodes a proof (what `gettxoutproof` returns, as hex).
pub fn encode_proof(proof: &MerkleBlock) -> Vec<u8> {
    encode::serialize(proof)
}

/// Decodes a proof as Core's `verifytxoutproof` reads one: from the start of
/// `bytes`, ignoring anything after it (Core's stream reader does not
/// require the input to be consumed).
pub fn decode_proof(bytes: &[u8]) -> Result<MerkleBlock, encode::Error> {
    encode::deserialize_partial(bytes).map(|(proof, _)| proof)
}

/// The txids a proof commits to, in block order, with their positions, once
/// its partial tree is well formed and hashes up to its header's merkle root.
pub fn proven_txids(proof: &MerkleBlock) -> Result<Vec<(Txid, u32)>, MerkleBlockError> {
    let (mut txids, mut positions) = (Vec::new(), Vec::new());
    proof.extract_matches(&mut txids, &mut positions)?;
    Ok(txids.into_iter().zip(positions).collect())
}

/// Where a client's header chain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The network's genesis block, at height 0.
    Genesis,
    /// A block the client trusts (a checkpoint) at a known height.
    Checkpoint {
        /// Its height.
        height: u32,
        /// Its hash.
        hash: BlockHash,
    },
}

/// How far the header check goes beyond linking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifficultyCheck {
    /// Each header meets the target its own `bits` encode (and `bits` is
    /// within the network's limit): what a client can check of any segment.
    OwnBits,
    /// Also that `bits` is what the network's difficulty rule requires
    /// (the node's [`pow::next_work_required`]). Needs the chain from the
    /// genesis block ([`Anchor::Genesis`]), since the rule reads ancestors.
    Rule,
}

/// Why a header chain or a payment proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum SpvError {
    /// No headers were given.
    #[error("the header chain is empty")]
    EmptyChain,
    /// The first header is not the anchor.
    #[error("the first header is {found}, not the anchor {expected}")]
    AnchorMismatch {
        /// The anchor's hash.
        expected: BlockHash,
        /// The first header's hash.
        found: BlockHash,
    },
    /// The difficulty rule was asked for on a chain that does not start at genesis.
    #[error("the difficulty rule can only be checked on a chain from the genesis block")]
    RuleNeedsGenesis,
    /// A header does not build on the one before it.
    #[error("header at height {height} builds on {found}, not on {expected}")]
    Unlinked {
        /// Its height.
        height: u32,
        /// The previous header's hash.
        expected: BlockHash,
        /// Its `prev_blockhash`.
        found: BlockHash,
    },
    /// A header's proof of work fails.
    #[error("header at height {height}: {source}")]
    ProofOfWork {
        /// Its height.
        height: u32,
        /// Why.
        #[source]
        source: PowError,
    },
    /// A header's `bits` is not what the difficulty rule requires.
    #[error("header at height {height} has bits {found:#010x}, the rule requires {expected:#010x}")]
    WrongBits {
        /// Its height.
        height: u32,
        /// The rule's bits.
        expected: u32,
        /// The header's bits.
        found: u32,
    },
    /// The proof's partial merkle tree is malformed or does not hash to its header's root.
    #[error("the proof is malformed: {0}")]
    BadProof(#[source] MerkleBlockError),
    /// The proof does not commit to the transaction.
    #[error("the proof does not commit to transaction {0}")]
    TxNotProven(Txid),
    /// The proof's block is not in the header chain.
    #[error("block {0} is not in the header chain")]
    BlockNotInChain(BlockHash),
    /// The block is in the chain but not deep enough.
    #[error("block has {have} confirmations, {need} required")]
    TooFewConfirmations {
        /// Confirmations it has (1 for the tip).
        have: u32,
        /// Confirmations asked for.
        need: u32,
    },
}

/// A chain of headers that links and carries valid proof of work, checked
/// once, with each header's height.
#[derive(Debug, Clone)]
pub struct HeaderChain {
    start_height: u32,
    headers: Vec<Header>,
    hashes: std::collections::HashMap<BlockHash, u32>,
}

impl HeaderChain {
    /// Checks `headers` (oldest first, the first being `anchor`) against
    /// `params`: each builds on the one before it, each meets its own `bits`,
    /// and with [`DifficultyCheck::Rule`] each carries the `bits` the network's
    /// rule requires.
    pub fn verify(
        headers: Vec<Header>,
        anchor: Anchor,
        params: &ChainParams,
        check: DifficultyCheck,
    ) -> Result<HeaderChain, SpvError> {
        let first = headers.first().ok_or(SpvError::EmptyChain)?;
        let (start_height, expected) = match anchor {
            Anchor::Genesis => (0, params.genesis_hash()),
            Anchor::Checkpoint { height, hash } => (height, hash),
        };
        if first.block_hash() != expected {
            return Err(SpvError::AnchorMismatch { expected, found: first.block_hash() });
        }
        if check == DifficultyCheck::Rule && start_height != 0 {
            return Err(SpvError::RuleNeedsGenesis);
        }
        let mut hashes = std::collections::HashMap::with_capacity(headers.len());
        hashes.insert(expected, start_height);
        let ancestor = |h: u32| headers[(h - start_height) as usize];
        for (i, pair) in headers.windows(2).enumerate() {
            let (parent, header) = (&pair[0], &pair[1]);
            let parent_height = start_height + i as u32;
            let height = parent_height + 1;
            let parent_hash = parent.block_hash();
            if header.prev_blockhash != parent_hash {
                return Err(SpvError::Unlinked { height, expected: parent_hash, found: header.prev_blockhash });
            }
            let hash = pow::check_proof_of_work(header, params.pow_limit)
                .map_err(|source| SpvError::ProofOfWork { height, source })?;
            if check == DifficultyCheck::Rule {
                let parent = Parent { height: parent_height, header: *parent, ancestor: &ancestor };
                let expected = pow::next_work_required(params, &parent, header.time);
                if expected != header.bits {
                    return Err(SpvError::WrongBits {
                        height,
                        expected: expected.to_consensus(),
                        found: header.bits.to_consensus(),
                    });
                }
            }
            hashes.insert(hash, height);
        }
        Ok(HeaderChain { start_height, headers, hashes })
    }

    /// Height of the last header.
    pub fn tip_height(&self) -> u32 {
        self.start_height + self.headers.len() as u32 - 1
    }

    /// The headers, oldest first.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Height of a header in the chain.
    pub fn height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.hashes.get(hash).copied()
    }

    /// Confirmations of a block in the chain: 1 for the tip.
    pub fn confirmations(&self, hash: &BlockHash) -> Option<u32> {
        self.height_of(hash).map(|h| self.tip_height() - h + 1)
    }

    /// Whitepaper section 8: checks that `proof` is well formed, commits to
    /// `txid`, and that its block is in this chain with at least
    /// `min_confirmations`; returns the confirmations.
    ///
    /// What a headers-only client cannot check: that the proof's transaction
    /// count is the block's (a full node compares it with its index), so a
    /// 64-byte "transaction" that is really an inner node of the tree could
    /// be passed off as a leaf. Consensus rules make such transactions
    /// non-standard, and callers that know the transaction should check that
    /// it is not 64 bytes long.
    pub fn verify_payment(&self, proof: &MerkleBlock, txid: &Txid, min_confirmations: u32) -> Result<u32, SpvError> {
        let proven = proven_txids(proof).map_err(SpvError::BadProof)?;
        if !proven.iter().any(|(t, _)| t == txid) {
            return Err(SpvError::TxNotProven(*txid));
        }
        let hash = proof.header.block_hash();
        let have = self.confirmations(&hash).ok_or(SpvError::BlockNotInChain(hash))?;
        if have < min_confirmations {
            return Err(SpvError::TooFewConfirmations { have, need: min_confirmations });
        }
        Ok(have)
    }
}

/// One call for a client: checks `headers` from `anchor` and that `proof`
/// proves `txid` with at least `min_confirmations`; returns the confirmations.
pub fn verify_payment(
    headers: Vec<Header>,
    anchor: Anchor,
    params: &ChainParams,
    check: DifficultyCheck,
    proof: &MerkleBlock,
    txid: &Txid,
    min_confirmations: u32,
) -> Result<u32, SpvError> {
    HeaderChain::verify(headers, anchor, params, check)?.verify_payment(proof, txid, min_confirmations)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bitcoin::consensus::{deserialize, serialize};
    use bitcoin::hashes::Hash;
    use bitcoin::{absolute, transaction, Amount, ScriptBuf, Transaction, TxIn, TxMerkleNode, TxOut};

    use super::*;
    use crate::chain::Chainstate;
    use crate::params::Network;

    fn vectors() -> std::path::PathBuf {
        std::env::var_os("SATPOOL_VECTORS")
            .map(Into::into)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors").into())
    }

    fn block_413567() -> Block {
        let bytes = std::fs::read(vectors().join("block413567.raw")).expect("block413567.raw in ../shared/vectors");
        deserialize(&bytes).expect("the vector parses")
    }

    /// A block of `n` distinct transactions (no proof of work: only the tree matters).
    fn synthetic_block(n: usize) -> Block {
        let txdata: Vec<Transaction> = (0..n)
            .map(|i| Transaction {
                version: transaction::Version::ONE,
                lock_time: absolute::LockTime::from_consensus(i as u32),
                input: vec![TxIn::default()],
                output: vec![TxOut { value: Amount::from_sat(i as u64), script_pubkey: ScriptBuf::new() }],
            })
            .collect();
        let mut block = Block {
            header: Header {
                version: bitcoin::block::Version::ONE,
                prev_blockhash: BlockHash::all_zeros(),
                merkle_root: TxMerkleNode::all_zeros(),
                time: 0,
                bits: bitcoin::CompactTarget::from_consensus(0x207f_ffff),
                nonce: 0,
            },
            txdata,
        };
        block.header.merkle_root = block.compute_merkle_root().expect("not empty");
        block
    }

    fn txids(block: &Block) -> Vec<Txid> {
        block.txdata.iter().map(Transaction::compute_txid).collect()
    }

    /// Builds, encodes, decodes and verifies a proof for `chosen`.
    fn round_trip(block: &Block, chosen: &[usize]) {
        let all = txids(block);
        let set: BTreeSet<Txid> = chosen.iter().map(|&i| all[i]).collect();
        let proof = build_proof(block, &set);
        let bytes = encode_proof(&proof);
        let decoded = decode_proof(&bytes).expect("decodes");
        assert_eq!(serialize(&decoded), bytes, "re-encodes to the same bytes");
        let proven = proven_txids(&decoded).expect("valid proof");
        let mut want: Vec<(Txid, u32)> = chosen.iter().map(|&i| (all[i], i as u32)).collect();
        want.sort_by_key(|(_, pos)| *pos);
        want.dedup();
        assert_eq!(proven, want, "{} txs, chosen {chosen:?}", block.txdata.len());
        // Core's size bound: at most 10 + ceil(32.25·N) bytes past the header.
        let n = block.txdata.len() as f64;
        assert!((bytes.len() - 80) as f64 <= 10.0 + (32.25 * n).ceil());
    }

    #[test]
    fn round_trips_for_small_blocks() {
        for (n, choices) in [
            (1, vec![vec![0]]),
            (2, vec![vec![0], vec![1], vec![0, 1]]),
            (3, vec![vec![0], vec![1], vec![2], vec![0, 2], vec![0, 1, 2]]),
        ] {
            let block = synthetic_block(n);
            for chosen in choices {
                round_trip(&block, &chosen);
            }
        }
    }

    #[test]
    fn round_trips_for_a_real_block_of_1557_transactions() {
        let block = block_413567();
        assert_eq!(block.txdata.len(), 1557);
        round_trip(&block, &[0]);
        round_trip(&block, &[1556]);
        round_trip(&block, &[700]);
        round_trip(&block, &[3, 4]);
        round_trip(&block, &[0, 1556]);
        let many: Vec<usize> = (0..1557).step_by(37).collect();
        round_trip(&block, &many);
        let all: Vec<usize> = (0..1557).collect();
        round_trip(&block, &all);
    }

    #[test]
    fn txids_not_in_the_block_prove_nothing() {
        let block = synthetic_block(5);
        let stranger = synthetic_block(6).txdata[5].compute_txid();
        let proof = build_proof(&block, &BTreeSet::from([stranger]));
        assert_eq!(proven_txids(&proof).expect("a proof of nothing is still valid"), vec![]);
    }

    /// Bitcoin Core's own output: `gettxoutproof` for a transaction of
    /// mainnet block 80000, as the `bitcoin` crate's documentation quotes it,
    /// and the block it came from. Ours is the same, byte for byte.
    #[test]
    fn matches_core_byte_for_byte() {
        let core_proof = hex::decode(
            "01000000ba8b9cda965dd8e536670f9ddec10e53aab14b20bacad27b9137190000000000190760b278fe7b8565fda3b968b9\
             18d5fd997f993b23674c0af3b6fde300b38f33a5914ce6ed5b1b01e32f570200000002252bf9d75c4f481ebb6278d708257d\
             1f12beb6dd30301d26c623f789b2ba6fc0e2d32adb5f8ca820731dff234a84e78ec30bce4ec69dbd562d0b2b8266bf4e5a0105",
        )
        .expect("hex");
        let block: Block = deserialize(
            &hex::decode(
                "01000000ba8b9cda965dd8e536670f9ddec10e53aab14b20bacad27b9137190000000000190760b278fe7b8565fda3b968b9\
                 18d5fd997f993b23674c0af3b6fde300b38f33a5914ce6ed5b1b01e32f570201000000010000000000000000000000000000\
                 000000000000000000000000000000000000ffffffff0704e6ed5b1b014effffffff0100f2052a01000000434104b68a50ea\
                 a0287eff855189f949c1c6e5f58b37c88231373d8a59809cbae83059cc6469d65c665ccfd1cfeb75c6e8e19413bba7fbff9b\
                 c762419a76d87b16086eac000000000100000001a6b97044d03da79c005b20ea9c0e1a6d9dc12d9f7b91a5911c9030a439ee\
                 d8f5000000004948304502206e21798a42fae0e854281abd38bacd1aeed3ee3738d9e1446618c4571d1090db022100e2ac98\
                 0643b0b82c0e88ffdfec6b64e3e6ba35e7ba5fdd7d5d6cc8d25c6b241501ffffffff0100f2052a010000001976a914404371\
                 705fa9bd789a2fcd52d2c580b65d35549d88ac00000000",
            )
            .expect("hex"),
        )
        .expect("block 80000 parses");
        let txid: Txid = "5a4ebf66822b0b2d56bd9dc64ece0bc38ee7844a23ff1d7320a88c5fdb2ad3e2".parse().expect("txid");
        let ours = encode_proof(&build_proof(&block, &BTreeSet::from([txid])));
        assert_eq!(ours, core_proof);
        let decoded = decode_proof(&core_proof).expect("decodes");
        assert_eq!(proven_txids(&decoded).expect("valid"), vec![(txid, 1)]);
    }

    /// Core's `pmt_malleability` test: a transaction list whose tail repeats
    /// (the CVE-2012-2459 shape) gives a tree that is refused.
    #[test]
    fn duplicated_subtree_is_refused_as_core_does() {
        let n = |v: u8| {
            let mut bytes = [0u8; 32];
            bytes[0] = v; // uint256{v}: little-endian
            Txid::from_byte_array(bytes)
        };
        let txids: Vec<Txid> = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10].into_iter().map(n).collect();
        let matches = [false, false, false, false, false, false, false, false, false, true, true, false];
        let tree = PartialMerkleTree::from_txids(&txids, &matches);
        let (mut found, mut positions) = (Vec::new(), Vec::new());
        assert_eq!(tree.extract_matches(&mut found, &mut positions), Err(MerkleBlockError::IdenticalHashesFound));
    }

    /// Re-encodes a proof with its parts replaced.
    fn reassemble(header: &Header, total: u32, hashes: &[[u8; 32]], flag_bytes: &[u8]) -> Vec<u8> {
        let mut out = serialize(header);
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&serialize(&bitcoin::VarInt(hashes.len() as u64)));
        for h in hashes {
            out.extend_from_slice(h);
        }
        out.extend_from_slice(&serialize(&flag_bytes.to_vec()));
        out
    }

    /// Splits an encoded proof into its parts.
    fn parts(bytes: &[u8]) -> (Header, u32, Vec<[u8; 32]>, Vec<u8>) {
        let proof = decode_proof(bytes).expect("decodes");
        let hashes = proof.txn.hashes().iter().map(|h| h.to_byte_array()).collect();
        let header_and_tree_len = 80 + 4 + serialize(&proof.txn.hashes().clone()).len();
        let flag_bytes: Vec<u8> = deserialize(&bytes[header_and_tree_len..]).expect("flag bytes");
        (proof.header, proof.txn.num_transactions(), hashes, flag_bytes)
    }

    fn verdict(bytes: &[u8]) -> Result<Vec<(Txid, u32)>, MerkleBlockError> {
        proven_txids(&decode_proof(bytes).expect("still decodes"))
    }

    #[test]
    fn mutated_proofs_are_refused() {
        let block = synthetic_block(7);
        let all = txids(&block);
        let good = encode_proof(&build_proof(&block, &BTreeSet::from([all[2], all[5]])));
        let (header, total, hashes, flags) = parts(&good);
        assert!(verdict(&good).is_ok());

        let cases: Vec<(&str, Vec<u8>, MerkleBlockError)> = vec![
            ("no transactions", reassemble(&header, 0, &hashes, &flags), MerkleBlockError::NoTransactions),
            (
                "more transactions than fit in a block",
                reassemble(&header, 4_000_000 / 240 + 1, &hashes, &flags),
                MerkleBlockError::TooManyTransactions,
            ),
            (
                "more hashes than transactions",
                reassemble(&header, total, &[hashes.as_slice(), &[[7; 32]; 8]].concat(), &flags),
                MerkleBlockError::TooManyHashes,
            ),
            ("fewer bits than hashes", reassemble(&header, total, &hashes, &[]), MerkleBlockError::NotEnoughBits),
            (
                "a hash too many",
                reassemble(&header, total, &[hashes.as_slice(), &[[7; 32]]].concat(), &flags),
                MerkleBlockError::NotAllHashesConsumed,
            ),
            (
                "a hash too few",
                reassemble(&header, total, &hashes[..hashes.len() - 1], &flags),
                MerkleBlockError::HashesArrayOverflow,
            ),
            (
                "a whole unused byte of flag bits",
                reassemble(&header, total, &hashes, &[flags.as_slice(), &[0]].concat()),
                MerkleBlockError::NotAllBitsConsumed,
            ),
            (
                "a flipped hash",
                {
                    let mut h = hashes.clone();
                    h[0][0] ^= 1;
                    reassemble(&header, total, &h, &flags)
                },
                MerkleBlockError::MerkleRootMismatch,
            ),
            (
                "another header's root",
                {
                    let mut other = header;
                    other.merkle_root = TxMerkleNode::all_zeros();
                    reassemble(&other, total, &hashes, &flags)
                },
                MerkleBlockError::MerkleRootMismatch,
            ),
        ];
        for (name, bytes, want) in cases {
            let got = verdict(&bytes);
            assert_eq!(got.as_ref().err(), Some(&want), "{name}: {got:?}");
        }

        // The transaction count is not covered by the root where the tree's
        // last, odd subtree is not expanded: claiming 8 transactions instead of
        // 7 reads the node hash(tx6 ‖ tx6) as hash(tx6 ‖ tx7) and still verifies.
        // That is why `verifytxoutproof` compares the count with the block's.
        assert_eq!(verdict(&reassemble(&header, total + 1, &hashes, &flags)), verdict(&good));

        // A flipped flag bit either breaks the proof, or (a leaf's bit: the
        // leaf's hash is used either way) changes which leaves count as
        // matched. Then it still proves only txids that are in the block, at
        // their true positions: the flags are not authenticated, the hashes are.
        for bit in 0..flags.len() * 8 {
            let mut f = flags.clone();
            f[bit / 8] ^= 1 << (bit % 8);
            if let Ok(proven) = verdict(&reassemble(&header, total, &hashes, &f)) {
                for (txid, pos) in proven {
                    assert_eq!(all[pos as usize], txid, "flag bit {bit}");
                }
            }
        }
    }

    /// Padding bits in the last flag byte are not inspected (Core's rule), so
    /// setting them does not change the verdict.
    #[test]
    fn padding_bits_are_ignored_as_core_does() {
        let block = synthetic_block(3);
        let all = txids(&block);
        let good = encode_proof(&build_proof(&block, &BTreeSet::from([all[0]])));
        let (header, total, hashes, mut flags) = parts(&good);
        let used = decode_proof(&good).expect("decodes").txn.bits().iter().rposition(|b| *b).expect("a set bit") + 1;
        assert!(used < 8, "test assumes a spare bit in the single flag byte");
        *flags.last_mut().expect("a flag byte") |= 0x80;
        assert_eq!(verdict(&reassemble(&header, total, &hashes, &flags)).expect("still valid"), vec![(all[0], 0)]);
    }

    #[test]
    fn trailing_bytes_are_ignored_when_decoding() {
        let block = synthetic_block(2);
        let mut bytes = encode_proof(&build_proof(&block, &BTreeSet::from([txids(&block)[1]])));
        bytes.extend_from_slice(&[1, 2, 3]);
        assert!(proven_txids(&decode_proof(&bytes).expect("decodes")).is_ok());
        assert!(decode_proof(&bytes[..50]).is_err());
    }

    /// A regtest chain of `n` blocks past genesis, each with the coinbase only.
    fn regtest_chain(n: usize) -> (tempfile::TempDir, Chainstate, Vec<Block>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let params = ChainParams::new(Network::Regtest);
        let mut chain = Chainstate::open(dir.path(), params, Arc::new(|| 2_000_000_000)).expect("opens");
        let mut blocks = vec![chain.params().genesis.clone()];
        let never = std::sync::atomic::AtomicBool::new(false);
        for _ in 0..n {
            let mut block =
                crate::mining::block_template(&chain, ScriptBuf::from_bytes(vec![0x51]), Vec::new(), Amount::ZERO);
            assert!(crate::mining::solve_header(&mut block.header, u64::MAX, &never));
            chain.process_block(&block).expect("valid block");
            blocks.push(block);
        }
        (dir, chain, blocks)
    }

    #[test]
    fn headers_only_client_checks_a_regtest_payment() {
        let (_dir, chain, blocks) = regtest_chain(12);
        let params = chain.params().clone();
        let headers: Vec<Header> = blocks.iter().map(|b| b.header).collect();
        let paid = &blocks[5];
        let txid = paid.txdata[0].compute_txid();
        let proof = build_proof(paid, &BTreeSet::from([txid]));

        for check in [DifficultyCheck::OwnBits, DifficultyCheck::Rule] {
            let confirmations =
                verify_payment(headers.clone(), Anchor::Genesis, &params, check, &proof, &txid, 6).expect("valid");
            assert_eq!(confirmations, 8, "block 5 of 12");
        }
        // From a checkpoint at height 3.
        let from_checkpoint = HeaderChain::verify(
            headers[3..].to_vec(),
            Anchor::Checkpoint { height: 3, hash: blocks[3].block_hash() },
            &params,
            DifficultyCheck::OwnBits,
        )
        .expect("valid segment");
        assert_eq!(from_checkpoint.tip_height(), 12);
        assert_eq!(from_checkpoint.verify_payment(&proof, &txid, 1).expect("valid"), 8);
        assert!(matches!(
            HeaderChain::verify(
                headers[3..].to_vec(),
                Anchor::Checkpoint { height: 3, hash: blocks[3].block_hash() },
                &params,
                DifficultyCheck::Rule
            ),
            Err(SpvError::RuleNeedsGenesis)
        ));

        let chain_ok =
            HeaderChain::verify(headers.clone(), Anchor::Genesis, &params, DifficultyCheck::Rule).expect("valid chain");
        assert!(matches!(
            chain_ok.verify_payment(&proof, &txid, 9),
            Err(SpvError::TooFewConfirmations { have: 8, need: 9 })
        ));
        let other = blocks[6].txdata[0].compute_txid();
        assert!(matches!(chain_ok.verify_payment(&proof, &other, 1), Err(SpvError::TxNotProven(t)) if t == other));
        let short = HeaderChain::verify(headers[..5].to_vec(), Anchor::Genesis, &params, DifficultyCheck::OwnBits)
            .expect("a shorter chain is fine");
        assert!(matches!(short.verify_payment(&proof, &txid, 1), Err(SpvError::BlockNotInChain(_))));
        let mut forged = proof.clone();
        forged.header.merkle_root = TxMerkleNode::all_zeros();
        assert!(matches!(
            chain_ok.verify_payment(&forged, &txid, 1),
            Err(SpvError::BadProof(MerkleBlockError::MerkleRootMismatch))
        ));
    }

    #[test]
    fn broken_header_chains_are_refused() {
        let (_dir, chain, blocks) = regtest_chain(6);
        let params = chain.params().clone();
        let headers: Vec<Header> = blocks.iter().map(|b| b.header).collect();

        assert!(matches!(
            HeaderChain::verify(Vec::new(), Anchor::Genesis, &params, DifficultyCheck::OwnBits),
            Err(SpvError::EmptyChain)
        ));
        assert!(matches!(
            HeaderChain::verify(headers[1..].to_vec(), Anchor::Genesis, &params, DifficultyCheck::OwnBits),
            Err(SpvError::AnchorMismatch { .. })
        ));
        let mut gap = headers.clone();
        gap.remove(3);
        assert!(matches!(
            HeaderChain::verify(gap, Anchor::Genesis, &params, DifficultyCheck::OwnBits),
            Err(SpvError::Unlinked { height: 3, .. })
        ));
        // A header whose hash misses its target: search for a nonce that fails.
        let mut weak = headers.clone();
        while weak[4].target().is_met_by(weak[4].block_hash()) {
            weak[4].nonce = weak[4].nonce.wrapping_add(1);
        }
        weak[5].prev_blockhash = weak[4].block_hash();
        assert!(matches!(
            HeaderChain::verify(weak, Anchor::Genesis, &params, DifficultyCheck::OwnBits),
            Err(SpvError::ProofOfWork { height: 4, source: PowError::HighHash(_) })
        ));
        // Other bits than the rule requires (regtest keeps the genesis bits),
        // but met by its own hash: only the rule check notices.
        let mut easy = headers[..3].to_vec();
        easy[2].bits = bitcoin::CompactTarget::from_consensus(0x2000_ffff);
        let never = std::sync::atomic::AtomicBool::new(false);
        assert!(crate::mining::solve_header(&mut easy[2], u64::MAX, &never));
        assert!(HeaderChain::verify(easy.clone(), Anchor::Genesis, &params, DifficultyCheck::OwnBits).is_ok());
        assert!(matches!(
            HeaderChain::verify(easy, Anchor::Genesis, &params, DifficultyCheck::Rule),
            Err(SpvError::WrongBits { height: 2, expected: 0x207f_ffff, found: 0x2000_ffff })
        ));
    }
}
