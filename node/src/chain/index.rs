//! The block index: every header the node has accepted, with its height,
//! cumulative work and validation status, and the tree they form.

use std::collections::HashMap;

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{BlockHash, Work};

/// Validation status bits of an index entry (a subset of Core's `BlockStatus`).
pub mod status {
    /// The block's data is stored.
    pub const HAVE_DATA: u8 = 1;
    /// The block passed every check and was connected at least once (undo data stored).
    pub const VALID_SCRIPTS: u8 = 2;
    /// The block itself broke a rule.
    pub const FAILED_VALID: u8 = 4;
    /// An ancestor broke a rule.
    pub const FAILED_CHILD: u8 = 8;
    /// Either failure.
    pub const FAILED: u8 = FAILED_VALID | FAILED_CHILD;
    /// The block's data and undo data were pruned (it had them once; see `chain::prune`).
    pub const PRUNED: u8 = 16;
}

/// One header in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The header's hash.
    pub hash: BlockHash,
    /// The header.
    pub header: Header,
    /// Height in its branch.
    pub height: u32,
    /// Total work of the branch up to and including this header.
    pub chainwork: Work,
    /// [`status`] bits.
    pub status: u8,
    /// Order of arrival: of two branches with equal work, the first seen wins.
    pub sequence: u64,
}

impl IndexEntry {
    /// Whether the block broke a rule or descends from one that did.
    pub fn failed(&self) -> bool {
        self.status & status::FAILED != 0
    }

    /// Whether the block's data is stored.
    pub fn have_data(&self) -> bool {
        self.status & status::HAVE_DATA != 0
    }

    /// Fixed layout: header (80), height (4), chainwork (32, big-endian),
    /// status (1), sequence (8).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serialize(&self.header);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.chainwork.to_be_bytes());
        out.push(self.status);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out
    }

    /// Parses what [`IndexEntry::encode`] wrote; `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<IndexEntry> {
        if bytes.len() != 80 + 4 + 32 + 1 + 8 {
            return None;
        }
        let header: Header = deserialize(&bytes[..80]).ok()?;
        let height = u32::from_le_bytes(bytes[80..84].try_into().ok()?);
        let chainwork = Work::from_be_bytes(bytes[84..116].try_into().ok()?);
        let status = bytes[116];
        let sequence = u64::from_le_bytes(bytes[117..125].try_into().ok()?);
        Some(IndexEntry { hash: header.block_hash(), header, height, chainwork, status, sequence })
    }
}

/// The tree of headers, and the active chain through it.
#[derive(Debug, Default)]
pub struct BlockIndex {
    entries: HashMap<BlockHash, IndexEntry>,
    children: HashMap<BlockHash, Vec<BlockHash>>,
    /// The active chain: `active[h]` is the hash at height `h`.
    active: Vec<BlockHash>,
    next_sequence: u64,
}

impl BlockIndex {
    /// Adds an entry (its parent, if any, must already be present).
    pub fn insert(&mut self, entry: IndexEntry) {
        if entry.height > 0 {
            self.children.entry(entry.header.prev_blockhash).or_default().push(entry.hash);
        }
        self.next_sequence = self.next_sequence.max(entry.sequence + 1);
        self.entries.insert(entry.hash, entry);
    }

    /// The next arrival sequence number.
    pub fn take_sequence(&mut self) -> u64 {
        let s = self.next_sequence;
        self.next_sequence += 1;
        s
    }

    /// An entry.
    pub fn get(&self, hash: &BlockHash) -> Option<&IndexEntry> {
        self.entries.get(hash)
    }

    /// An entry, mutably.
    pub fn get_mut(&mut self, hash: &BlockHash) -> Option<&mut IndexEntry> {
        self.entries.get_mut(hash)
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &IndexEntry> {
        self.entries.values()
    }

    /// Number of headers known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The children of a header.
    pub fn children(&self, hash: &BlockHash) -> &[BlockHash] {
        self.children.get(hash).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every descendant of a header (not itself), parents before children.
    pub fn descendants(&self, hash: &BlockHash) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut stack = self.children(hash).to_vec();
        while let Some(h) = stack.pop() {
            stack.extend_from_slice(self.children(&h));
            out.push(h);
        }
        out
    }

    /// The active chain's tip.
    pub fn tip(&self) -> &IndexEntry {
        let hash = self.active.last().expect("the active chain always holds the genesis block");
        &self.entries[hash]
    }

    /// The active chain's height.
    pub fn height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// The active chain's hash at `height`.
    pub fn active_hash(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.entries.get(hash).is_some_and(|e| self.active.get(e.height as usize) == Some(hash))
    }

    /// Extends the active chain by one block, whose parent is the tip.
    pub fn push_active(&mut self, hash: BlockHash) {
        self.active.push(hash);
    }

    /// Removes the tip from the active chain.
    pub fn pop_active(&mut self) -> Option<BlockHash> {
        (self.active.len() > 1).then(|| self.active.pop()).flatten()
    }

    /// Rebuilds the active chain from a tip back to genesis.
    pub fn set_active_tip(&mut self, tip: BlockHash) {
        let mut chain = Vec::new();
        let mut cursor = Some(tip);
        while let Some(hash) = cursor {
            let entry = &self.entries[&hash];
            chain.push(hash);
            cursor = (entry.height > 0).then_some(entry.header.prev_blockhash);
        }
        chain.reverse();
        self.active = chain;
    }

    /// The ancestor of `hash` at `height` (itself at its own height).
    pub fn ancestor(&self, hash: &BlockHash, height: u32) -> Option<&IndexEntry> {
        let mut entry = self.entries.get(hash)?;
        if height > entry.height {
            return None;
        }
        loop {
            if entry.height == height {
                return Some(entry);
            }
            // Once on the active chain, jump straight to the height.
            if self.active.get(entry.height as usize) == Some(&entry.hash) {
                return self.entries.get(&self.active[height as usize]);
            }
            entry = self.entries.get(&entry.header.prev_blockhash)?;
        }
    }

    /// Median of the times of `hash` and its ten predecessors (BIP 113).
    pub fn median_time_past(&self, hash: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(11);
        let mut cursor = self.entries.get(hash);
        while let Some(entry) = cursor {
            times.push(entry.header.time);
            if times.len() == 11 || entry.height == 0 {
                break;
            }
            cursor = self.entries.get(&entry.header.prev_blockhash);
        }
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// The last common ancestor of two entries.
    pub fn fork_point(&self, a: &BlockHash, b: &BlockHash) -> Option<&IndexEntry> {
        let (mut a, mut b) = (self.entries.get(a)?, self.entries.get(b)?);
        if a.height > b.height {
            a = self.ancestor(&a.hash, b.height)?;
        } else if b.height > a.height {
            b = self.ancestor(&b.hash, a.height)?;
        }
        while a.hash != b.hash {
            a = self.entries.get(&a.header.prev_blockhash)?;
            b = self.entries.get(&b.header.prev_blockhash)?;
        }
        Some(a)
    }
}
