//! The chainstate's storage: one redb database holding the block index, block
//! data, undo data, the UTXO set and the tip, so that connecting a block (its
//! UTXO changes, its undo data, the new tip) is one atomic, durable commit.

use std::path::Path;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::index::IndexEntry;

/// Block hash → encoded [`IndexEntry`].
pub(super) const INDEX: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("block_index");
/// Block hash → the block, consensus-encoded.
pub(super) const BLOCKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blocks");
/// Block hash → the coins it spent (see `undo`).
pub(super) const UNDO: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("undo");
/// Outpoint (see `utxo::outpoint_key`) → coin.
pub(super) const UTXO: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("utxo");
/// Block hash → number of transactions, for blocks whose data was pruned
/// (so that `verifytxoutproof` can still compare a proof's count).
pub(super) const TX_COUNT: TableDefinition<&[u8; 32], u32> = TableDefinition::new("pruned_tx_count");
/// Named single values: the tip.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Key of the active tip's hash in [`META`].
pub(super) const META_TIP: &str = "tip";
/// Key of the network name in [`META`], so a datadir of another network is refused.
pub(super) const META_NETWORK: &str = "network";

/// A storage failure. The node cannot go on safely after one, so callers
/// report it and stop rather than retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the chainstate database at {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: redb::DatabaseError,
    },
    /// A read or write failed.
    #[error("chainstate database error: {0}")]
    Database(#[from] redb::Error),
    /// Stored bytes do not decode: the database is corrupt.
    #[error("chainstate database is corrupt: {0}")]
    Corrupt(String),
    /// The datadir holds another network's chain.
    #[error("this datadir holds a {found} chain, not {expected}")]
    WrongNetwork {
        /// Network of the stored chain.
        found: String,
        /// Network the node was started for.
        expected: String,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Database(e.into()) }
        }
    )*};
}
from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// The database.
pub struct Store {
    pub(super) db: Database,
    path: std::path::PathBuf,
}

impl Store {
    /// Opens or creates `<dir>/chainstate.redb` with a page cache of at most
    /// `cache_bytes`, creating every table.
    pub fn open(dir: &Path, network: &str, cache_bytes: usize) -> Result<Store, StoreError> {
        let path = dir.join("chainstate.redb");
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        let txn = db.begin_write()?;
        {
            txn.open_table(INDEX)?;
            txn.open_table(BLOCKS)?;
            txn.open_table(UNDO)?;
            txn.open_table(UTXO)?;
            txn.open_table(TX_COUNT)?;
            let mut meta = txn.open_table(META)?;
            let stored = meta.get(META_NETWORK)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
            match stored {
                Some(found) if found != network => {
                    return Err(StoreError::WrongNetwork { found, expected: network.to_owned() })
                }
                Some(_) => {}
                None => {
                    meta.insert(META_NETWORK, network.as_bytes())?;
                }
            }
        }
        txn.commit()?;
        Ok(Store { db, path })
    }

    /// Bytes the database file takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Every index entry, in no particular order.
    pub fn load_index(&self) -> Result<Vec<IndexEntry>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INDEX)?;
        let mut entries = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            let entry = IndexEntry::decode(value.value())
                .ok_or_else(|| StoreError::Corrupt(format!("index entry {}", hex::encode(key.value()))))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The stored tip, if any block was ever connected.
    pub fn tip(&self) -> Result<Option<BlockHash>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let tip = meta.get(META_TIP)?;
        match tip {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 32] =
                    v.value().try_into().map_err(|_| StoreError::Corrupt("tip is not 32 bytes".into()))?;
                Ok(Some(BlockHash::from_byte_array(bytes)))
            }
        }
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let row = table.get(hash.as_byte_array())?;
        match row {
            None => Ok(None),
            Some(v) => deserialize(v.value()).map(Some).map_err(|e| StoreError::Corrupt(format!("block {hash}: {e}"))),
        }
    }

    /// A stored block's raw bytes.
    pub fn raw_block(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let row = table.get(hash.as_byte_array())?;
        Ok(row.map(|v| v.value().to_vec()))
    }

    /// Writes index entries and, for a new block, its data, in one commit.
    pub fn write_entries(&self, entries: &[&IndexEntry], block: Option<&Block>) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut index = txn.open_table(INDEX)?;
            for entry in entries {
                index.insert(entry.hash.as_byte_array(), entry.encode().as_slice())?;
            }
            if let Some(block) = block {
                let mut blocks = txn.open_table(BLOCKS)?;
                blocks.insert(block.block_hash().as_byte_array(), serialize(block).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}
