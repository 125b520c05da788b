//! The chainstate across branches: the most work wins (not the most
//! blocks), reorganisations restore exactly the UTXO set a replay gives,
//! invalid branches are marked with their descendants, and a restart comes
//! back at the same tip.

mod common;

use std::sync::Arc;

use bitcoin::{Amount, Block, CompactTarget, Target};
use common::*;
use satpool_node::chain::{BlockOutcome, ChainEvent, Chainstate};
use satpool_node::params::{ChainParams, DifficultyRule, Network};

/// Devnet's ASERT with a 600 s spacing and regtest's easy limit, so blocks
/// are instant to mine but their work depends on their timestamps.
fn asert_params() -> ChainParams {
    let mut p = ChainParams::devnet(600);
    p.pow_limit = Target::from_compact(CompactTarget::from_consensus(0x207f_ffff));
    assert!(matches!(p.difficulty, DifficultyRule::Asert { .. }));
    p
}

fn open(params: &ChainParams) -> (Chainstate, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chainstate::open(dir.path(), params.clone(), Arc::new(|| NOW)).unwrap();
    (chain, dir)
}

/// Mines `n` blocks on `chain`'s tip, `spacing` seconds apart, with `txs`
/// in the first one.
fn extend(chain: &mut Chainstate, n: usize, spacing: u32, mut txs: Vec<bitcoin::Transaction>) -> Vec<Block> {
    let mut out = Vec::new();
    for _ in 0..n {
        let time = chain.tip().header.time + spacing;
        let mut block = satpool_node::mining::block_template(chain, op_true(), std::mem::take(&mut txs), Amount::ZERO);
        block.header.time = time;
        block.header.bits = chain.next_work_required(time);
        solve(&mut block);
        chain.process_block(&block).expect("valid block");
        out.push(block);
    }
    out
}

fn submit_all(chain: &mut Chainstate, blocks: &[Block]) -> Vec<BlockOutcome> {
    blocks.iter().map(|b| chain.process_block(b).expect("valid block")).collect()
}

#[test]
fn most_work_wins_over_most_blocks_and_reorg_restores_utxos() {
    let params = asert_params();
    // A common prefix, on schedule, long enough for coinbases to mature.
    let (mut gen_a, _d1) = open(&params);
    let common = extend(&mut gen_a, 110, 600, vec![]);
    let (mut gen_b, _d2) = open(&params);
    submit_all(&mut gen_b, &common);

    // Branch B: 150 blocks on schedule, spending the coinbase of block 2.
    let spend_b = spend(&[coinbase_outpoint(&common[1])], &[(Amount::from_sat(50 * 100_000_000), op_true())]);
    let branch_b = extend(&mut gen_b, 150, 600, vec![spend_b]);
    // Branch A: 60 blocks one second apart, far ahead of schedule, so each is
    // harder than the last; spends the coinbase of block 3.
    let spend_a = spend(&[coinbase_outpoint(&common[2])], &[(Amount::from_sat(50 * 100_000_000), op_true())]);
    let branch_a = extend(&mut gen_a, 60, 1, vec![spend_a]);
    assert!(gen_a.tip().chainwork > gen_b.tip().chainwork, "the short branch carries more work");
    assert!(gen_a.tip().height < gen_b.tip().height);

    // A node that sees B first, then A.
    let (mut node, dir) = open(&params);
    submit_all(&mut node, &common);
    submit_all(&mut node, &branch_b);
    assert_eq!(node.tip().hash, branch_b.last().unwrap().block_hash());
    node.record_events();
    let outcomes = submit_all(&mut node, &branch_a);
    // Followers see B's blocks leave, newest first, then A's arrive in order.
    let events = node.take_events();
    assert_eq!(events.len(), 150 + 60);
    for (i, event) in events.iter().enumerate() {
        match event {
            ChainEvent::Disconnected { block, height } if i < 150 => {
                assert_eq!(*height as usize, 260 - i);
                assert_eq!(block.block_hash(), branch_b[149 - i].block_hash());
            }
            ChainEvent::Connected { block, height } if i >= 150 => {
                assert_eq!(*height as usize, 111 + (i - 150));
                assert_eq!(block.block_hash(), branch_a[i - 150].block_hash());
            }
            other => panic!("event {i} out of order: {other:?}"),
        }
    }
    assert!(node.take_events().is_empty());
    assert_eq!(outcomes.last(), Some(&BlockOutcome::Connected));
    assert!(outcomes[..outcomes.len() - 1].contains(&BlockOutcome::SideBranch));
    assert_eq!(node.tip().hash, branch_a.last().unwrap().block_hash());

    // Its UTXO set is exactly branch A's, as the generator that never saw B has it.
    let reorged = node.utxo_set_info().unwrap();
    let replay = gen_a.utxo_set_info().unwrap();
    assert_eq!(reorged.hash_serialized, replay.hash_serialized);
    assert_eq!(reorged.txouts, replay.txouts);
    assert!(node.coin(&coinbase_outpoint(&common[1])).unwrap().is_some(), "B's spend was undone");
    assert!(node.coin(&coinbase_outpoint(&common[2])).unwrap().is_none(), "A's spend holds");

    // The tips: A active, B a valid fork.
    let tips = node.chain_tips();
    assert!(tips.iter().any(|t| t.status == "active" && t.hash == node.tip().hash));
    assert!(tips.iter().any(|t| t.status == "valid-fork" && t.branch_len == 150));

    // A restart comes back at the same tip and UTXO set.
    let tip = node.tip().hash;
    drop(node);
    let node = Chainstate::open(dir.path(), params.clone(), Arc::new(|| NOW)).unwrap();
    assert_eq!(node.tip().hash, tip);
    assert_eq!(node.utxo_set_info().unwrap().hash_serialized, replay.hash_serialized);
}

#[test]
fn heavier_branch_with_an_invalid_block_is_abandoned() {
    let mut t = TestChain::regtest();
    let common = t.mine(5);
    let honest_tip = t.chain.tip().hash;

    // A competing branch from block 3: valid, invalid, then three more on top.
    let (mut other, _d) = {
        let dir = tempfile::tempdir().unwrap();
        let chain = Chainstate::open(dir.path(), ChainParams::new(Network::Regtest), Arc::new(|| NOW)).unwrap();
        (chain, dir)
    };
    submit_all(&mut other, &common[..3]);
    let fork1 = extend(&mut other, 1, 7, vec![]);
    let mut bad = satpool_node::mining::block_template(&other, op_true(), vec![], Amount::ZERO);
    bad.header.time = other.tip().header.time + 7;
    bad.txdata[0].output[0].value += Amount::from_sat(1);
    fix(&mut bad);
    solve(&mut bad);
    // The generator refuses it too; build the rest on it by hand.
    assert!(other.process_block(&bad).is_err());
    let mut rest = Vec::new();
    let mut prev = bad.clone();
    for i in 0..3u32 {
        let mut b = prev.clone();
        b.header.prev_blockhash = prev.block_hash();
        b.header.time = prev.header.time + 7;
        b.txdata = vec![satpool_node::mining::coinbase_transaction(
            5 + i + 1,
            op_true(),
            Amount::from_sat(50 * 100_000_000),
            true,
        )];
        let commitment = satpool_node::mining::witness_commitment_script(&b.txdata);
        b.txdata[0].output.push(bitcoin::TxOut { value: Amount::ZERO, script_pubkey: commitment });
        fix(&mut b);
        solve(&mut b);
        rest.push(b.clone());
        prev = b;
    }

    assert_eq!(t.submit(&fork1[0]).unwrap(), BlockOutcome::SideBranch);
    // Equal work: the first seen stays, and the new block is not validated yet.
    assert_eq!(t.submit(&bad).unwrap(), BlockOutcome::SideBranch);
    // Now the branch has more work: it is tried, fails at `bad`, and is dropped.
    let err = t.submit(&rest[0]).unwrap_err();
    assert_eq!(err.reject_reason().as_deref(), Some("bad-cb-amount"));
    assert_eq!(t.chain.tip().hash, honest_tip);
    // Descendants of the invalid block are refused from now on.
    assert_eq!(t.reject_reason(&rest[1]), "bad-prevblk");
    let tips = t.chain.chain_tips();
    assert!(tips.iter().any(|tip| tip.status == "invalid" && tip.hash == rest[0].block_hash()));
    // And the honest chain goes on.
    t.mine(1);
}

#[test]
fn invalidate_and_reconsider() {
    let mut t = TestChain::regtest();
    let blocks = t.mine(10);
    let tip = t.chain.tip().hash;
    let utxos = t.chain.utxo_set_info().unwrap().hash_serialized;
    t.chain.invalidate_block(&blocks[5].block_hash()).unwrap();
    assert_eq!(t.chain.tip().height, 5);
    assert_eq!(t.chain.tip().hash, blocks[4].block_hash());
    t.chain.reconsider_block(&blocks[5].block_hash()).unwrap();
    assert_eq!(t.chain.tip().hash, tip);
    assert_eq!(t.chain.utxo_set_info().unwrap().hash_serialized, utxos);
    let t = t.reopen();
    assert_eq!(t.chain.tip().hash, tip);
}

#[test]
fn a_datadir_of_another_network_is_refused() {
    let TestChain { chain, dir, .. } = TestChain::regtest();
    // While it is open, a second chainstate on the same datadir is refused.
    let err =
        Chainstate::open(dir.path(), ChainParams::new(Network::Regtest), Arc::new(|| NOW)).err().expect("refused");
    assert!(err.to_string().contains("already open"), "{err}");
    drop(chain);
    let err =
        Chainstate::open(dir.path(), ChainParams::new(Network::Mainnet), Arc::new(|| NOW)).err().expect("refused");
    assert!(err.to_string().contains("regtest"), "{err}");
}
