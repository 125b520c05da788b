//! Headers-first synchronisation, the scheduling half (Core's
//! `FindNextBlocksToDownload` and block-in-flight bookkeeping): block
//! locators, the best header chain, which blocks to ask which peer for within
//! a moving window, per-peer in-flight limits, and who is stalling the window.
//!
//! No I/O: the caller passes the block index and the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bitcoin::BlockHash;

use crate::chain::{BlockIndex, IndexEntry};

/// A peer's number for the life of its connection.
pub type PeerId = u64;

/// Core's `BLOCK_DOWNLOAD_WINDOW`: blocks beyond the tip that may be fetched.
pub const BLOCK_DOWNLOAD_WINDOW: u32 = 1024;
/// Core's `MAX_BLOCKS_IN_TRANSIT_PER_PEER`.
pub const MAX_BLOCKS_IN_TRANSIT_PER_PEER: usize = 16;
/// Core's `BLOCK_STALLING_TIMEOUT_DEFAULT`: how long the block at the
/// window's start may be outstanding while other peers wait for the window.
pub const BLOCK_STALLING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long any requested block may take before its peer is dropped.
pub const BLOCK_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Core's `MAX_HEADERS_RESULTS`.
pub const MAX_HEADERS_RESULTS: usize = 2000;
/// Core's `NODE_NETWORK_LIMITED_MIN_BLOCKS` (BIP 159): a peer that signals
/// NETWORK_LIMITED without NETWORK serves at least the last this many blocks.
pub const NODE_NETWORK_LIMITED_MIN_BLOCKS: u32 = 288;
/// Core's margin below [`NODE_NETWORK_LIMITED_MIN_BLOCKS`] when asking a
/// limited peer (its tip may move on while we ask), and above it when a
/// pruned node refuses to serve.
pub const LIMITED_RACE_BUFFER: u32 = 2;

/// The hashes of the best header chain by height, kept up to date cheaply.
#[derive(Debug, Default, Clone)]
pub struct HeaderChain {
    hashes: Vec<BlockHash>,
}

impl HeaderChain {
    /// Moves the chain to end at `tip`, touching only the changed heights.
    pub fn set_tip(&mut self, index: &BlockIndex, tip: &IndexEntry) {
        let mut added = Vec::new();
        let mut cursor = Some(tip);
        while let Some(entry) = cursor {
            if self.hashes.get(entry.height as usize) == Some(&entry.hash) {
                break;
            }
            added.push(entry.hash);
            if entry.height == 0 {
                break;
            }
            cursor = index.get(&entry.header.prev_blockhash);
        }
        let keep = tip.height as usize + 1 - added.len();
        self.hashes.truncate(keep);
        self.hashes.extend(added.into_iter().rev());
    }

    /// The hash at `height`.
    pub fn get(&self, height: u32) -> Option<BlockHash> {
        self.hashes.get(height as usize).copied()
    }

    /// Whether `entry` is on the chain.
    pub fn contains(&self, entry: &IndexEntry) -> bool {
        self.get(entry.height) == Some(entry.hash)
    }

    /// The tip's height.
    pub fn height(&self) -> u32 {
        self.hashes.len().saturating_sub(1) as u32
    }
}

/// Core's `CChain::GetLocator`: the last ten hashes, then exponentially
/// further back, ending with the genesis block.
pub fn locator(index: &BlockIndex, from: &BlockHash) -> Vec<BlockHash> {
    let mut out = Vec::with_capacity(32);
    let Some(mut entry) = index.get(from) else { return out };
    let mut step = 1u32;
    loop {
        out.push(entry.hash);
        if entry.height == 0 {
            break;
        }
        let next = entry.height.saturating_sub(step);
        entry = match index.ancestor(&entry.hash, next) {
            Some(e) => e,
            None => break,
        };
        if out.len() > 10 {
            step = step.saturating_mul(2);
        }
    }
    out
}

/// One outstanding block request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// Who was asked.
    pub peer: PeerId,
    /// The block's height.
    pub height: u32,
    /// When.
    pub since: Instant,
}

/// Every outstanding block request; each block is asked of one peer at a time.
#[derive(Debug, Default)]
pub struct BlockDownload {
    in_flight: HashMap<BlockHash, InFlight>,
    per_peer: HashMap<PeerId, usize>,
}

impl BlockDownload {
    /// Records that `peer` was asked for `hash`.
    pub fn request(&mut self, peer: PeerId, hash: BlockHash, height: u32, now: Instant) {
        if let Some(old) = self.in_flight.insert(hash, InFlight { peer, height, since: now }) {
            self.dec(old.peer);
        }
        *self.per_peer.entry(peer).or_default() += 1;
    }

    fn dec(&mut self, peer: PeerId) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }

    /// A block arrived (from anyone): the request it answers, if any.
    pub fn received(&mut self, hash: &BlockHash) -> Option<InFlight> {
        let done = self.in_flight.remove(hash)?;
        self.dec(done.peer);
        Some(done)
    }

    /// `peer` said it does not have `hash`, or is gone: the request is freed.
    pub fn cancel(&mut self, peer: PeerId, hash: &BlockHash) -> bool {
        if self.in_flight.get(hash).is_some_and(|f| f.peer == peer) {
            self.received(hash);
            return true;
        }
        false
    }

    /// `peer` disconnected: its requests are freed for others.
    pub fn peer_gone(&mut self, peer: PeerId) -> Vec<BlockHash> {
        let gone: Vec<BlockHash> = self.in_flight.iter().filter(|(_, f)| f.peer == peer).map(|(h, _)| *h).collect();
        for hash in &gone {
            self.in_flight.remove(hash);
        }
        self.per_peer.remove(&peer);
        gone
    }

    /// The request for `hash`, if any.
    pub fn get(&self, hash: &BlockHash) -> Option<&InFlight> {
        self.in_flight.get(hash)
    }

    /// Blocks outstanding with `peer`.
    pub fn count(&self, peer: PeerId) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }

    /// Further blocks `peer` may be asked for.
    pub fn free_slots(&self, peer: PeerId) -> usize {
        MAX_BLOCKS_IN_TRANSIT_PER_PEER.saturating_sub(self.count(peer))
    }

    /// Heights outstanding with `peer` (`getpeerinfo`'s `inflight`).
    pub fn heights(&self, peer: PeerId) -> Vec<u32> {
        let mut h: Vec<u32> = self.in_flight.values().filter(|f| f.peer == peer).map(|f| f.height).collect();
        h.sort_unstable();
        h
    }

    /// Peers with a request older than `timeout`.
    pub fn timed_out(&self, now: Instant, timeout: Duration) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> =
            self.in_flight.values().filter(|f| now.duration_since(f.since) > timeout).map(|f| f.peer).collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// Blocks outstanding in all.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

/// What to ask one peer for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Blocks to request, lowest first, with their heights.
    pub fetch: Vec<(BlockHash, u32)>,
    /// The lowest block the window waits for, when another peer has it in
    /// flight and this peer could take more: the candidate staller's block.
    pub blocked_by: Option<BlockHash>,
}

/// Whether a limited peer whose best block is at `peer_best_height` may be
/// asked for the block at `height` (Core's check in `FindNextBlocks`).
pub fn limited_peer_serves(peer_best_height: u32, height: u32) -> bool {
    peer_best_height.saturating_sub(height) < NODE_NETWORK_LIMITED_MIN_BLOCKS - LIMITED_RACE_BUFFER
}

/// Which blocks `peer`, whose best header is `peer_best`, should be asked
/// for: those on its chain beyond our `tip`, within the window, that we
/// neither have nor have asked anyone for; at most its free slots. A
/// `limited` peer (pruned: NETWORK_LIMITED without NETWORK) is asked only for
/// blocks less than 286 below its best one; deeper ones are left to others,
/// as Core does.
pub fn plan(
    index: &BlockIndex,
    best: &HeaderChain,
    tip: &IndexEntry,
    peer_best: &IndexEntry,
    download: &BlockDownload,
    peer: PeerId,
    limited: bool,
) -> Plan {
    let mut out = Plan::default();
    let free = download.free_slots(peer);
    if free == 0 || peer_best.chainwork <= tip.chainwork {
        return out;
    }
    // The heights to walk: from above the fork with our tip up to the window's end.
    let path: Vec<BlockHash> = if best.contains(peer_best) && best.contains(tip) {
        let end = peer_best.height.min(tip.height + BLOCK_DOWNLOAD_WINDOW);
        (tip.height + 1..=end).filter_map(|h| best.get(h)).collect()
    } else {
        let fork = match index.fork_point(&tip.hash, &peer_best.hash) {
            Some(f) => f.height,
            None => return out,
        };
        let end = peer_best.height.min(fork + BLOCK_DOWNLOAD_WINDOW);
        let mut path = Vec::new();
        let mut cursor = index.ancestor(&peer_best.hash, end);
        while let Some(e) = cursor {
            if e.height <= fork {
                break;
            }
            path.push(e.hash);
            cursor = index.get(&e.header.prev_blockhash);
        }
        path.reverse();
        path
    };
    for hash in path {
        let Some(entry) = index.get(&hash) else { break };
        if entry.failed() {
            break;
        }
        if entry.have_data() {
            continue;
        }
        match download.get(&hash) {
            Some(f) if f.peer != peer => {
                if out.blocked_by.is_none() && out.fetch.is_empty() {
                    out.blocked_by = Some(hash);
                }
            }
            Some(_) => {}
            None if limited && !limited_peer_serves(peer_best.height, entry.height) => {}
            None => {
                out.fetch.push((hash, entry.height));
                if out.fetch.len() >= free {
                    out.blocked_by = None;
                    break;
                }
            }
        }
    }
    if out.fetch.len() >= free {
        out.blocked_by = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::status;
    use bitcoin::block::{Header, Version};
    use bitcoin::hashes::Hash;
    use bitcoin::{CompactTarget, TxMerkleNode, Work};

    /// An index with a chain of `len` headers above a genesis, plus a fork
    /// of `fork_len` headers from `fork_at`; `with_data` heights have data.
    fn index(len: u32, fork_at: u32, fork_len: u32, with_data: u32) -> (BlockIndex, Vec<IndexEntry>, Vec<IndexEntry>) {
        let mut index = BlockIndex::default();
        let mut entry = |prev: Option<&IndexEntry>, nonce: u32, main: bool| -> IndexEntry {
            let header = Header {
                version: Version::TWO,
                prev_blockhash: prev.map_or(BlockHash::all_zeros(), |p| p.hash),
                merkle_root: TxMerkleNode::all_zeros(),
                time: nonce,
                bits: CompactTarget::from_consensus(0x207fffff),
                nonce,
            };
            let height = prev.map_or(0, |p| p.height + 1);
            let e = IndexEntry {
                hash: header.block_hash(),
                header,
                height,
                chainwork: prev.map_or(Work::from_be_bytes([0; 32]), |p| p.chainwork) + header.work(),
                status: if main && height <= with_data { status::HAVE_DATA } else { 0 },
                sequence: u64::from(nonce),
            };
            index.insert(e.clone());
            e
        };
        let mut main = vec![entry(None, 0, true)];
        for i in 1..=len {
            let e = entry(main.last(), i, true);
            main.push(e);
        }
        let mut fork = Vec::new();
        for i in 0..fork_len {
            let prev = if i == 0 { &main[fork_at as usize] } else { fork.last().unwrap() };
            let e = entry(Some(prev), 1_000_000 + i, false);
            fork.push(e);
        }
        for e in &main[..=with_data as usize] {
            index.push_active(e.hash);
        }
        (index, main, fork)
    }

    #[test]
    fn header_chain_follows_a_reorganisation() {
        let (index, main, fork) = index(20, 10, 15, 0);
        let mut chain = HeaderChain::default();
        chain.set_tip(&index, &main[20]);
        assert_eq!(chain.height(), 20);
        assert_eq!(chain.get(7), Some(main[7].hash));
        chain.set_tip(&index, fork.last().unwrap());
        assert_eq!(chain.height(), 25);
        assert_eq!(chain.get(10), Some(main[10].hash));
        assert_eq!(chain.get(11), Some(fork[0].hash));
    }

    #[test]
    fn locator_is_dense_then_sparse_and_ends_at_genesis() {
        let (index, main, _) = index(100, 0, 0, 100);
        let loc = locator(&index, &main[100].hash);
        let heights: Vec<u32> = loc.iter().map(|h| index.get(h).unwrap().height).collect();
        assert_eq!(&heights[..11], &[100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 90]);
        assert_eq!(&heights[11..13], &[89, 87], "then steps of 2, 4, 8...");
        assert_eq!(*heights.last().unwrap(), 0);
        assert!(heights.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn plan_fills_free_slots_within_the_window_and_spreads_over_peers() {
        let (index, main, _) = index(3000, 0, 0, 10);
        let mut best = HeaderChain::default();
        best.set_tip(&index, &main[3000]);
        let mut download = BlockDownload::default();
        let now = Instant::now();
        let tip = &main[10];
        let first = plan(&index, &best, tip, &main[3000], &download, 1, false);
        assert_eq!(first.fetch.len(), MAX_BLOCKS_IN_TRANSIT_PER_PEER);
        assert_eq!(first.fetch[0].1, 11);
        for (h, height) in &first.fetch {
            download.request(1, *h, *height, now);
        }
        assert_eq!(download.free_slots(1), 0);
        assert!(plan(&index, &best, tip, &main[3000], &download, 1, false).fetch.is_empty());
        let second = plan(&index, &best, tip, &main[3000], &download, 2, false);
        assert_eq!(second.fetch[0].1, 27, "peer 2 takes the next blocks");
        assert_eq!(second.blocked_by, None);
        // A peer whose chain has less work than our tip gets nothing.
        assert!(plan(&index, &best, &main[3000], &main[2000], &download, 3, false).fetch.is_empty());
    }

    #[test]
    fn a_full_window_names_the_staller() {
        let (index, main, _) = index(40, 0, 0, 0);
        let mut best = HeaderChain::default();
        best.set_tip(&index, &main[40]);
        let mut download = BlockDownload::default();
        let now = Instant::now();
        // Everything is in flight with peer 1.
        for e in &main[1..=40] {
            download.request(1, e.hash, e.height, now);
        }
        let p = plan(&index, &best, &main[0], &main[40], &download, 2, false);
        assert!(p.fetch.is_empty());
        assert_eq!(p.blocked_by, Some(main[1].hash));
        assert_eq!(download.timed_out(now + Duration::from_secs(61), BLOCK_DOWNLOAD_TIMEOUT), vec![1]);
        // Peer 1 goes: its blocks are free for peer 2.
        assert_eq!(download.peer_gone(1).len(), 40);
        assert_eq!(plan(&index, &best, &main[0], &main[40], &download, 2, false).fetch[0].1, 1);
    }

    #[test]
    fn limited_peers_are_asked_only_for_their_last_286_blocks() {
        let (index, main, _) = index(400, 0, 0, 0);
        let mut best = HeaderChain::default();
        best.set_tip(&index, &main[400]);
        let mut download = BlockDownload::default();
        let now = Instant::now();
        // A pruned peer at 400 keeps at least 288 blocks; we ask from 400 - 285 on.
        let p = plan(&index, &best, &main[0], &main[400], &download, 1, true);
        assert_eq!(p.fetch.first().map(|f| f.1), Some(115));
        assert_eq!(p.fetch.len(), MAX_BLOCKS_IN_TRANSIT_PER_PEER);
        assert_eq!(p.blocked_by, None, "skipped blocks are nobody's stall");
        assert!(!limited_peer_serves(400, 114));
        assert!(limited_peer_serves(400, 115));
        assert!(limited_peer_serves(10, 0), "a short chain is served whole");
        // A full peer is asked from the bottom; the limited one then takes the top.
        let full = plan(&index, &best, &main[0], &main[400], &download, 2, false);
        assert_eq!(full.fetch.first().map(|f| f.1), Some(1));
        for (h, height) in &full.fetch {
            download.request(2, *h, *height, now);
        }
        assert_eq!(plan(&index, &best, &main[0], &main[400], &download, 1, true).fetch[0].1, 115);
        // Near its tip a limited peer serves everything we lack.
        let p = plan(&index, &best, &main[300], &main[400], &download, 1, true);
        assert_eq!(p.fetch.first().map(|f| f.1), Some(301));
    }

    #[test]
    fn plan_follows_a_fork_off_the_best_header_chain() {
        let (index, main, fork) = index(20, 15, 10, 20);
        let mut best = HeaderChain::default();
        best.set_tip(&index, fork.last().unwrap());
        let download = BlockDownload::default();
        // Our tip (main 20) is not on the best header chain.
        let p = plan(&index, &best, &main[20], fork.last().unwrap(), &download, 1, false);
        assert_eq!(p.fetch.first().map(|f| f.1), Some(16));
        assert_eq!(p.fetch.len(), 10);
    }
}
