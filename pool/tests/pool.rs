//! The running pool over its in-memory twins: a template becomes a job, a
//! solved job becomes a submitted, recorded block, and the shutdown token
//! stops every task.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bitcoin::hashes::Hash;
use bitcoin::{block, Amount, BlockHash, CompactTarget, Target};
use clap::Parser;
use satpool::config::{Args, Config, Environment, FileConfig};
use satpool::job::assemble_block;
use satpool::ledger::{BlockStatus, MemoryStore, ShareRecord, ShareStore};
use satpool::service::Pool;
use satpool::template::{MemoryNode, SubmitOutcome, Template};
use satpool_stratum::{Extranonce1, Extranonce2};
use tokio_util::sync::CancellationToken;

const ALICE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
const BOB: &str = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry";

fn config() -> Config {
    let args = Args::parse_from([
        "satpool",
        "--network",
        "regtest",
        "--pool-address",
        ALICE,
        "--pplns-window",
        "100",
        "--min-payout",
        "0",
    ]);
    Config::from_layers(FileConfig::default(), args, &Environment::default()).expect("valid")
}

fn template(height: u32, prev: u8) -> Template {
    let bits = CompactTarget::from_consensus(0x207fffff);
    Template {
        height,
        previous_block_hash: BlockHash::from_byte_array([prev; 32]),
        bits,
        target: Target::from_compact(bits),
        cur_time: 1_700_000_000,
        min_time: 1_600_000_000,
        version: block::Version::from_consensus(0x2000_0000),
        coinbase_value: Amount::from_sat(5_000_000_000),
        transactions: Vec::new(),
        default_witness_commitment: None,
        longpollid: Some(format!("lp{height}")),
    }
}

#[tokio::test]
async fn templates_become_jobs_and_blocks_are_submitted() {
    let store = Arc::new(MemoryStore::new());
    let node = Arc::new(MemoryNode::new());
    node.set_template(template(101, 1));
    let shutdown = CancellationToken::new();
    let (pool, tasks) = Pool::start(config(), store.clone(), node.clone(), &shutdown);

    let mut jobs = pool.jobs.subscribe();
    let first = tokio::time::timeout(Duration::from_secs(5), jobs.wait_for(Option::is_some))
        .await
        .expect("a job within 5 s")
        .expect("the hub lives")
        .clone()
        .expect("some");
    assert_eq!(first.height, 101);
    assert!(first.notify.clean_jobs);
    assert_eq!(first.payout.outputs.len(), 1, "no shares yet: everything to the operator");

    // Shares, durably recorded; the next template's coinbase pays their miner.
    pool.recorder
        .record(ShareRecord {
            time: SystemTime::now(),
            address: BOB.to_owned(),
            worker: "rig".to_owned(),
            difficulty: 10.0,
            height: 101,
            job_id: first.id().to_owned(),
            block_hash: None,
        })
        .await
        .expect("recorded");
    node.set_template(template(102, 2));
    let second =
        tokio::time::timeout(Duration::from_secs(5), jobs.wait_for(|j| j.as_ref().is_some_and(|j| j.height == 102)))
            .await
            .expect("a job for the long-polled template")
            .expect("the hub lives")
            .clone()
            .expect("some");
    assert_eq!(second.payout.outputs.len(), 2, "operator and Bob");
    assert!(matches!(pool.jobs.lookup(first.id()), satpool::job::JobLookup::Stale(_)));

    // A solved job: regtest's target is met by about every other hash.
    let e1 = Extranonce1::from_u32(1);
    let mut found = None;
    for nonce in 0..1_000u32 {
        let e2 = Extranonce2::from_counter(7, 8).unwrap();
        let block = assemble_block(&second, &e1, &e2, second.notify.ntime, nonce, second.notify.version).unwrap();
        if block.header.target().is_met_by(block.block_hash()) {
            found = Some(block);
            break;
        }
    }
    let block = found.expect("a regtest block within 1000 nonces");
    let outcome = pool.block_found(&second, &block, BOB, "rig").await.expect("submitted and recorded");
    assert_eq!(outcome, SubmitOutcome::Accepted);
    assert_eq!(node.submitted().len(), 1);
    let recorded = store.recent_blocks(1).await.unwrap();
    assert_eq!(recorded[0].hash, block.block_hash());
    assert_eq!(recorded[0].status, BlockStatus::Pending);
    let paid: Amount = store.payouts(&block.block_hash()).await.unwrap().iter().map(|p| p.1).sum();
    assert_eq!(paid, Amount::from_sat(5_000_000_000));

    // The node goes away: the pool keeps its last job and stops cleanly.
    node.set_reachable(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.jobs.latest().map(|j| j.height), Some(102));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), tasks.join(pool)).await.expect("every task stops");
}
