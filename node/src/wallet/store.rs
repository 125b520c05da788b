//! A wallet's storage: one redb file, `<datadir>/wallets/<name>/wallet.redb`.
//! Each change (a new key index, a block's transactions, the seed sealed by
//! `encryptwallet`) is one durable commit, made before the RPC that caused it
//! answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

use super::crypto::StoredSeed;
use super::keys::{Accounts, AddressType};
use super::ledger::WalletTx;
use super::WalletError;

/// Named values: seed, accounts, network, best block.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `<address type>/<0|1>` → next index on that chain.
const INDEXES: TableDefinition<&str, u32> = TableDefinition::new("indexes");
/// Txid → the wallet transaction (JSON).
const TXS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("txs");
/// Address → label.
const LABELS: TableDefinition<&str, &str> = TableDefinition::new("labels");

const SEED: &str = "seed";
const ACCOUNTS: &str = "accounts";
const NETWORK: &str = "network";
const BEST: &str = "best_block";

/// The file name inside the wallet's directory.
pub const FILE: &str = "wallet.redb";

/// Everything a wallet file holds, read at load.
pub struct Loaded {
    /// The seed as stored.
    pub seed: StoredSeed,
    /// The account xpubs.
    pub accounts: Accounts,
    /// Next indexes.
    pub next: BTreeMap<(AddressType, bool), u32>,
    /// Wallet transactions.
    pub txs: Vec<WalletTx>,
    /// Labels by address.
    pub labels: BTreeMap<String, String>,
    /// The last block the wallet has seen: hash and height.
    pub best: (BlockHash, u32),
}

/// One commit's worth of changes.
#[derive(Default)]
pub struct Changes<'a> {
    /// Transactions to write.
    pub txs: Vec<&'a WalletTx>,
    /// Next indexes to write.
    pub next: Option<&'a BTreeMap<(AddressType, bool), u32>>,
    /// A new best block.
    pub best: Option<(BlockHash, u32)>,
    /// A new seed record.
    pub seed: Option<&'a StoredSeed>,
    /// A label to set.
    pub label: Option<(&'a str, &'a str)>,
}

/// An open wallet file.
pub struct WalletStore {
    db: Database,
    path: PathBuf,
}

fn db_error(e: impl Into<redb::Error>) -> WalletError {
    WalletError::Database(Box::new(e.into()))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("wallet records always serialise")
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, WalletError> {
    serde_json::from_slice(bytes).map_err(|e| WalletError::Corrupt(format!("{what}: {e}")))
}

fn index_key(kind: AddressType, internal: bool) -> String {
    format!("{}/{}", kind.name(), u8::from(internal))
}

impl WalletStore {
    /// Whether `dir` holds a wallet file.
    pub fn exists(dir: &Path) -> bool {
        dir.join(FILE).exists()
    }

    /// Creates a new wallet file in `dir` (which may exist, empty).
    pub fn create(
        dir: &Path,
        network: &str,
        seed: &StoredSeed,
        accounts: &Accounts,
        best: (BlockHash, u32),
    ) -> Result<WalletStore, WalletError> {
        std::fs::create_dir_all(dir).map_err(|e| WalletError::Io(dir.display().to_string(), e))?;
        let path = dir.join(FILE);
        let db = Database::create(&path).map_err(db_error)?;
        let store = WalletStore { db, path };
        let txn = store.db.begin_write().map_err(db_error)?;
        {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            meta.insert(NETWORK, network.as_bytes()).map_err(db_error)?;
            meta.insert(SEED, encode(seed).as_slice()).map_err(db_error)?;
            meta.insert(ACCOUNTS, encode(accounts).as_slice()).map_err(db_error)?;
            meta.insert(BEST, encode(&(best.0, best.1)).as_slice()).map_err(db_error)?;
            txn.open_table(INDEXES).map_err(db_error)?;
            txn.open_table(TXS).map_err(db_error)?;
            txn.open_table(LABELS).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(store)
    }

    /// Opens the wallet file in `dir`, refusing one of another network.
    pub fn open(dir: &Path, network: &str) -> Result<(WalletStore, Loaded), WalletError> {
        let path = dir.join(FILE);
        let db = Database::open(&path).map_err(db_error)?;
        let store = WalletStore { db, path };
        let txn = store.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let get = |key: &str| -> Result<Vec<u8>, WalletError> {
            meta.get(key)
                .map_err(db_error)?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| WalletError::Corrupt(format!("no {key} record")))
        };
        let found = String::from_utf8_lossy(&get(NETWORK)?).into_owned();
        if found != network {
            return Err(WalletError::WrongNetwork { found, expected: network.to_owned() });
        }
        let seed: StoredSeed = decode(&get(SEED)?, SEED)?;
        let accounts: Accounts = decode(&get(ACCOUNTS)?, ACCOUNTS)?;
        let best: (BlockHash, u32) = decode(&get(BEST)?, BEST)?;
        let mut next = BTreeMap::new();
        let indexes = txn.open_table(INDEXES).map_err(db_error)?;
        for kind in AddressType::ALL {
            for internal in [false, true] {
                if let Some(v) = indexes.get(index_key(kind, internal).as_str()).map_err(db_error)? {
                    next.insert((kind, internal), v.value());
                }
            }
        }
        let mut txs = Vec::new();
        for row in txn.open_table(TXS).map_err(db_error)?.iter().map_err(db_error)? {
            let (_, value) = row.map_err(db_error)?;
            txs.push(decode(value.value(), "wallet transaction")?);
        }
        let mut labels = BTreeMap::new();
        for row in txn.open_table(LABELS).map_err(db_error)?.iter().map_err(db_error)? {
            let (k, v) = row.map_err(db_error)?;
            labels.insert(k.value().to_owned(), v.value().to_owned());
        }
        drop(meta);
        drop(txn);
        Ok((store, Loaded { seed, accounts, next, txs, labels, best }))
    }

    /// Writes `changes` in one durable commit.
    pub fn commit(&self, changes: Changes<'_>) -> Result<(), WalletError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            if let Some(seed) = changes.seed {
                meta.insert(SEED, encode(seed).as_slice()).map_err(db_error)?;
            }
            if let Some(best) = changes.best {
                meta.insert(BEST, encode(&best).as_slice()).map_err(db_error)?;
            }
            if let Some(next) = changes.next {
                let mut indexes = txn.open_table(INDEXES).map_err(db_error)?;
                for (&(kind, internal), &v) in next {
                    indexes.insert(index_key(kind, internal).as_str(), v).map_err(db_error)?;
                }
            }
            let mut txs = txn.open_table(TXS).map_err(db_error)?;
            for wtx in changes.txs {
                let txid = wtx.tx.compute_txid().to_byte_array();
                txs.insert(&txid, encode(wtx).as_slice()).map_err(db_error)?;
            }
            if let Some((address, label)) = changes.label {
                txn.open_table(LABELS).map_err(db_error)?.insert(address, label).map_err(db_error)?;
            }
        }
        txn.commit().map_err(db_error)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
