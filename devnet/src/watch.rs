//! What the newcomer watches: a line for every block the pool finds and for
//! what it paid, read from the pool's own JSON API (`/api/blocks`,
//! `/api/payouts`), as any client would.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bitcoin::Amount;
use satpool::http::api::{BlocksInfo, PayoutsInfo, PoolInfo};
use tokio_util::sync::CancellationToken;

/// The addresses whose payouts get a name in the lines printed.
#[derive(Debug, Clone)]
pub struct Names {
    /// The local miner's payout address.
    pub miner: String,
    /// The pool operator's.
    pub operator: String,
}

/// A client of the pool's API at `http`.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// The API of the pool listening on `http`.
    pub fn new(http: SocketAddr) -> Api {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client without TLS or proxies always builds");
        Api { client, base: format!("http://{http}") }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self.client.get(&url).send().await.with_context(|| format!("while asking {url}"))?;
        let response = response.error_for_status().with_context(|| format!("while asking {url}"))?;
        response.json().await.with_context(|| format!("while reading {url}"))
    }

    /// `/api/pool`.
    pub async fn pool(&self) -> Result<PoolInfo> {
        self.get("/api/pool").await
    }

    /// `/api/blocks`, the newest `limit`.
    pub async fn blocks(&self, limit: u32) -> Result<BlocksInfo> {
        self.get(&format!("/api/blocks?limit={limit}")).await
    }

    /// `/api/payouts`, the newest `limit`.
    pub async fn payouts(&self, limit: u32) -> Result<PayoutsInfo> {
        self.get(&format!("/api/payouts?limit={limit}")).await
    }
}

/// Prints a line per block found and per payout it made, until `shutdown`.
/// Blocks already in the ledger at start are summed up, not repeated.
pub async fn print_blocks(api: Api, names: Names, shutdown: CancellationToken) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut first = true;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (blocks, payouts) = match tokio::try_join!(api.blocks(1000), api.payouts(1000)) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "the pool's API did not answer");
                continue;
            }
        };
        if first {
            first = false;
            if let Ok(Some(height)) = api.pool().await.map(|info| info.height) {
                println!("chain: height {height}");
            }
            if !blocks.blocks.is_empty() {
                let paid: u64 =
                    payouts.payouts.iter().filter(|p| p.address == names.miner).map(|p| p.amount_sats).sum();
                println!(
                    "ledger: {} blocks found before, {} paid to this miner",
                    blocks.blocks.len(),
                    Amount::from_sat(paid)
                );
            }
            seen.extend(blocks.blocks.iter().map(|b| b.hash.clone()));
            continue;
        }
        let mut new: Vec<_> = blocks.blocks.iter().filter(|b| !seen.contains(&b.hash)).collect();
        new.sort_by_key(|b| b.height);
        for block in new {
            seen.insert(block.hash.clone());
            let short = block.hash.get(..16).unwrap_or(&block.hash);
            println!(
                "block {} found by {}.{} ({short}…): {} in the coinbase",
                block.height,
                who(&block.finder_address, &names),
                block.finder_worker,
                Amount::from_sat(block.reward_sats),
            );
            let mut paid: Vec<_> = payouts.payouts.iter().filter(|p| p.block_hash == block.hash).collect();
            paid.sort_by_key(|p| std::cmp::Reverse(p.amount_sats));
            for payout in paid {
                println!("  paid {} to {}", Amount::from_sat(payout.amount_sats), who(&payout.address, &names));
            }
        }
    }
}

fn who(address: &str, names: &Names) -> String {
    if address == names.miner {
        format!("{address} (this miner)")
    } else if address == names.operator {
        format!("{address} (the pool operator)")
    } else {
        address.to_owned()
    }
}
