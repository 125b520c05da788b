//! Known headers rebuilt through the Stratum path: the mainnet genesis block,
//! and constructed blocks whose hashes `bitcoin::Block` computes on its own.

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hashes::Hash;
use bitcoin::{
    transaction, Amount, Block, BlockHash, CompactTarget, Network, OutPoint, ScriptBuf, Sequence, Target, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use proptest::prelude::*;
use satpool_stratum::{
    check_share, hash_difficulty, header_bytes, meets, merkle_branch, CoinbaseParts, Extranonce1, Extranonce2, Message,
    Method, Notify, Request, ShareError, Submit, VersionMask,
};

fn parse_request(line: &str) -> Method {
    match Message::parse(line).expect("valid line") {
        Message::Request(Request { method, .. }) => method,
        other => panic!("not a request: {other:?}"),
    }
}

/// The genesis coinbase has no extranonce region of its own; its scriptSig
/// begins `04ffff001d010445`, and we declare those eight bytes the region:
/// extranonce1 `04ffff00`, extranonce2 `1d010445`. The bytes are the same,
/// so the txid, the merkle root and the hash must be the genesis block's.
#[test]
fn mainnet_genesis_through_notify_and_submit_lines() {
    let genesis = genesis_block(Network::Bitcoin);
    let coinbase = &genesis.txdata[0];
    let parts = CoinbaseParts::split(coinbase, 0, 8).expect("region within the scriptSig");
    let job = Notify {
        job_id: "0".into(),
        prev_hash: genesis.header.prev_blockhash,
        coinb1: parts.coinb1,
        coinb2: parts.coinb2,
        merkle_branch: merkle_branch(&[]),
        version: genesis.header.version,
        nbits: genesis.header.bits,
        ntime: genesis.header.time,
        clean_jobs: true,
    };
    // Through the wire: notify out and back in.
    let line = Request::notification(Method::Notify(job.clone())).to_line();
    assert!(line.contains(r#""00000001","1d00ffff","495fab29",true]"#), "{line}");
    let Method::Notify(job) = parse_request(&line) else { panic!("notify parses as notify") };

    let extranonce1: Extranonce1 = "04ffff00".parse().expect("hex");
    let submit = parse_request(
        r#"{"params": ["satoshi.genesis", "0", "1d010445", "495fab29", "7c2bac1d"], "id": 4, "method": "mining.submit"}"#,
    );
    let Method::Submit(submit) = submit else { panic!("submit parses as submit") };
    let share = check_share(&job, &extranonce1, 4, &submit, VersionMask::NONE).expect("well-formed share");

    assert_eq!(share.header, genesis.header);
    assert_eq!(share.hash, genesis.block_hash());
    assert_eq!(
        share.hash,
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f".parse::<BlockHash>().expect("hex")
    );
    assert_eq!(share.coinbase, bitcoin::consensus::encode::serialize(coinbase));
    assert_eq!(header_bytes(&share.header).to_vec(), bitcoin::consensus::encode::serialize(&genesis.header));
    assert!(meets(&share.hash, &Target::from_compact(job.nbits)));
    assert!((hash_difficulty(&share.hash) - 2536.4262984453103).abs() < 1e-9);

    // A wrong extranonce2 size or stray version bits are typed errors.
    assert_eq!(
        check_share(&job, &extranonce1, 8, &submit, VersionMask::NONE),
        Err(ShareError::Extranonce2Size { expected: 8, got: 4 })
    );
    let rolled = Submit { version_bits: Some(0x2000), ..submit.clone() };
    assert_eq!(
        check_share(&job, &extranonce1, 4, &rolled, VersionMask::NONE),
        Err(ShareError::VersionBitsOutsideMask { bits: 0x2000, mask: VersionMask::NONE })
    );
    // One nonce off is a different, non-block hash.
    let off = Submit { nonce: submit.nonce + 1, ..submit };
    let share = check_share(&job, &extranonce1, 4, &off, VersionMask::NONE).expect("well-formed");
    assert!(!meets(&share.hash, &Target::from_compact(job.nbits)));
}

/// A coinbase in the shape the pool builds: BIP 34 height, extranonce
/// placeholder, pool tag; a payout and a witness-commitment-like output;
/// a witness (which must not reach coinb1/coinb2).
fn pool_coinbase(height: u32, placeholder_len: usize, outputs: usize) -> (Transaction, usize) {
    let mut script = vec![0x03];
    script.extend_from_slice(&height.to_le_bytes()[..3]);
    let offset = script.len();
    script.extend(std::iter::repeat_n(0u8, placeholder_len));
    script.extend_from_slice(b"/satpool/");
    let mut output: Vec<TxOut> = (0..outputs)
        .map(|i| TxOut {
            value: Amount::from_sat(1_000 + i as u64),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51; 1 + i % 30]),
        })
        .collect();
    output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes([&[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed][..], &[7u8; 32]].concat()),
    });
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output,
    };
    (tx, offset)
}

fn spend(n: u32) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: Txid::from_byte_array([(n % 251) as u8; 32]), vout: n },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: Amount::from_sat(u64::from(n)), script_pubkey: ScriptBuf::new() }],
    }
}

proptest! {
    /// Header assembly equals bitcoin's own: the merkle root that
    /// `Block::compute_merkle_root` finds, the header bytes of
    /// `consensus::serialize`, and `Header::block_hash`.
    #[test]
    fn stratum_header_equals_bitcoins(
        height in 1u32..1_000_000,
        tx_count in 0u32..40,
        e1 in prop::collection::vec(any::<u8>(), 0..9),
        e2 in prop::collection::vec(any::<u8>(), 0..9),
        outputs in 0usize..20,
        prev in any::<[u8; 32]>(),
        job_version in any::<i32>(),
        version_bits in any::<u32>(),
        mask in any::<u32>(),
        bits in any::<u32>(),
        ntime in any::<u32>(),
        nonce in any::<u32>(),
    ) {
        let (template_coinbase, offset) = pool_coinbase(height, e1.len() + e2.len(), outputs);
        let parts = CoinbaseParts::split(&template_coinbase, offset, e1.len() + e2.len()).expect("placeholder in scriptSig");

        // The block a miner's share would make, built independently.
        let mut coinbase = template_coinbase.clone();
        let mut script = coinbase.input[0].script_sig.as_bytes().to_vec();
        script[offset..offset + e1.len()].copy_from_slice(&e1);
        script[offset + e1.len()..offset + e1.len() + e2.len()].copy_from_slice(&e2);
        coinbase.input[0].script_sig = ScriptBuf::from_bytes(script);
        let mut txdata = vec![coinbase];
        txdata.extend((0..tx_count).map(spend));
        let mask = VersionMask(mask);
        let version_bits = version_bits & mask.0;
        let rolled = (job_version as u32 & !mask.0) | version_bits;
        let mut block = Block {
            header: Header {
                version: Version::from_consensus(rolled as i32),
                prev_blockhash: BlockHash::from_byte_array(prev),
                merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                time: ntime,
                bits: CompactTarget::from_consensus(bits),
                nonce,
            },
            txdata,
        };
        block.header.merkle_root = block.compute_merkle_root().expect("non-empty block");

        let txids: Vec<Txid> = block.txdata[1..].iter().map(Transaction::compute_txid).collect();
        let job = Notify {
            job_id: "j".into(),
            prev_hash: BlockHash::from_byte_array(prev),
            coinb1: parts.coinb1,
            coinb2: parts.coinb2,
            merkle_branch: merkle_branch(&txids),
            version: Version::from_consensus(job_version),
            nbits: CompactTarget::from_consensus(bits),
            ntime: 0,
            clean_jobs: false,
        };
        let submit = Submit {
            worker: "w".into(),
            job_id: "j".into(),
            extranonce2: Extranonce2::from_bytes(e2.clone()).expect("short"),
            ntime,
            nonce,
            version_bits: Some(version_bits),
        };
        let e1 = Extranonce1::from_bytes(e1).expect("short");
        let share = check_share(&job, &e1, e2.len(), &submit, mask).expect("well-formed share");
        prop_assert_eq!(share.header, block.header);
        prop_assert_eq!(share.hash, block.block_hash());
        prop_assert_eq!(header_bytes(&share.header).to_vec(), bitcoin::consensus::encode::serialize(&block.header));
        prop_assert_eq!(share.coinbase, satpool_stratum::serialize_without_witness(&block.txdata[0]));
    }
}
