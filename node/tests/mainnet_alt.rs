//! End to end on mainnet rules: the 2,016 blocks of Bitcoin Core's
//! `mainnet_alt.json` (an alternative chain on the real mainnet genesis, at
//! difficulty 1, whose block 2016 retargets to difficulty 4), rebuilt as
//! `../shared/vectors/README.md` says and submitted through `submitblock`.

mod harness;

use std::path::PathBuf;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::opcodes::all::OP_PUSHNUM_1;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness,
};
use harness::Daemon;
use serde::Deserialize;
use serde_json::{json, Value};

const MAINNET_GENESIS: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
const COINBASE_SCRIPT_PUBKEY: &str = "76a914eadbac7f36c37e39361168b7aaee3cb24a25312d88ac";
const BLOCKS: usize = 2016;
/// Blocks per JSON-RPC batch: Core answers a batch's calls in order.
const BATCH: usize = 144;

#[derive(Debug, Deserialize)]
struct MainnetAlt {
    timestamps: Vec<u32>,
    nonces: Vec<u32>,
}

fn vectors_dir() -> PathBuf {
    std::env::var_os("SATPOOL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors")))
}

fn load_vectors() -> MainnetAlt {
    let path = vectors_dir().join("mainnet_alt.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let vectors: MainnetAlt =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not the expected JSON: {e}", path.display()));
    assert_eq!((vectors.timestamps.len(), vectors.nonces.len()), (BLOCKS, BLOCKS));
    vectors
}

/// The README's BIP 34 height push: `OP_h OP_0` up to 16, else the minimal
/// script-number push of `h` alone.
fn height_script(height: u32) -> ScriptBuf {
    if height <= 16 {
        let op_h = bitcoin::opcodes::Opcode::from(OP_PUSHNUM_1.to_u8() + height as u8 - 1);
        Builder::new().push_opcode(op_h).push_opcode(bitcoin::opcodes::OP_0).into_script()
    } else {
        let mut number = Vec::new();
        let mut rest = height;
        while rest > 0 {
            number.push((rest & 0xff) as u8);
            rest >>= 8;
        }
        if number.last().is_some_and(|top| top & 0x80 != 0) {
            number.push(0); // keep the number positive
        }
        let push = PushBytesBuf::try_from(number).expect("a height is at most five bytes");
        Builder::new().push_slice(push).into_script()
    }
}

/// Block `height` (1 to 2016) on `prev`, as the README rebuilds it.
fn alt_block(vectors: &MainnetAlt, height: u32, prev: BlockHash) -> Block {
    let i = height as usize - 1;
    let coinbase = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: height_script(height),
            sequence: Sequence::MAX,
            witness: Witness::default(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(50 * 100_000_000),
            script_pubkey: ScriptBuf::from_hex(COINBASE_SCRIPT_PUBKEY).expect("valid hex"),
        }],
    };
    let bits = if height < 2016 { 0x1d00_ffff } else { 0x1c3f_ffc0 };
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: vectors.timestamps[i],
            bits: CompactTarget::from_consensus(bits),
            nonce: vectors.nonces[i],
        },
        txdata: vec![coinbase],
    };
    block.header.merkle_root = block.compute_merkle_root().expect("a block with a coinbase has a merkle root");
    block
}

#[test]
fn height_pushes_follow_the_readme() {
    let cases: &[(u32, &str)] = &[
        (1, "5100"),
        (16, "6000"),
        (17, "0111"),
        (127, "017f"),
        (128, "028000"),
        (255, "02ff00"),
        (256, "020001"),
        (2016, "02e007"),
    ];
    for (height, want) in cases {
        assert_eq!(height_script(*height).to_hex_string(), *want, "height {height}");
    }
}

#[test]
fn rebuilt_blocks_meet_their_targets() {
    // If this fails the rebuilding is wrong, not the node.
    let vectors = load_vectors();
    let mut prev: BlockHash = MAINNET_GENESIS.parse().expect("a block hash");
    for height in 1..=BLOCKS as u32 {
        let block = alt_block(&vectors, height, prev);
        assert!(block.header.target().is_met_by(block.block_hash()), "block {height} misses its target");
        prev = block.block_hash();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainnet_accepts_the_alternative_chain_and_retargets_to_difficulty_4() {
    let vectors = load_vectors();
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Daemon::start("main", dir.path(), &[]).await;
    assert_eq!(node.call::<String>("getblockhash", json!([0])).await, MAINNET_GENESIS);

    let mut prev: BlockHash = MAINNET_GENESIS.parse().expect("a block hash");
    let mut blocks = Vec::with_capacity(BLOCKS);
    for height in 1..=BLOCKS as u32 {
        let block = alt_block(&vectors, height, prev);
        prev = block.block_hash();
        blocks.push(block);
    }
    let rpc = node.rpc();
    let mut refused = Vec::new();
    for (i, chunk) in blocks.chunks(BATCH).enumerate() {
        let calls: Vec<(&str, Value)> = chunk.iter().map(|b| ("submitblock", json!([serialize_hex(b)]))).collect();
        let outcomes = rpc.batch(&calls).await.expect("the node answers a batch");
        for (j, outcome) in outcomes.into_iter().enumerate() {
            if outcome != Ok(Value::Null) {
                refused.push(format!("block {}: {outcome:?}", 1 + i * BATCH + j));
            }
        }
        if !refused.is_empty() {
            break; // the rest builds on a refused block
        }
    }
    assert!(refused.is_empty(), "refused:\n{}\nnode log:\n{}", refused.join("\n"), node.log_tail());

    let info: Value = node.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["chain"], "main");
    assert_eq!(info["blocks"], 2016);
    assert_eq!(info["bestblockhash"], prev.to_string());
    assert_eq!(info["bits"], "1c3fffc0");
    assert_eq!(info["difficulty"], 4.0);
    assert_eq!(node.call::<f64>("getdifficulty", json!([])).await, 4.0);
    let header: Value = node.call("getblockheader", json!([prev.to_string()])).await;
    assert_eq!(header["height"], 2016);
    assert_eq!(header["bits"], "1c3fffc0");
    assert_eq!(header["difficulty"], 4.0);
    let before: Value = node.call("getblockheader", json!([blocks[2014].block_hash().to_string()])).await;
    assert_eq!(before["difficulty"], 1.0);
}
