//! The node's wallet (whitepaper sections 9 and 10): BIP 32 keys from a seed
//! kept in `<datadir>/wallets/<name>/`, sealed when a passphrase is set; a
//! fresh key for every address handed out; the chain followed block by
//! block; coin selection that combines and splits value.
//!
//! The pure parts are [`keys`], [`crypto`], [`ledger`] and [`spend`]; this
//! module is the shell that adds storage ([`store`]) and the unlock timer.

pub mod crypto;
pub mod keys;
pub mod ledger;
pub mod spend;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Address, Block, BlockHash, FeeRate, NetworkKind, OutPoint, Transaction, TxOut, Txid};

use crate::attack::AttackerShare;
use crate::chain::Chainstate;
use crate::params::Network;
use crypto::{Passphrase, StoredSeed};
use keys::{Accounts, AddressType, KeyPath, Seed};
use ledger::Ledger;
use spend::{Plan, Recipient, SignError, SpendError};
use store::{Changes, WalletStore};

/// What went wrong in a wallet operation.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The wallet file failed.
    #[error("wallet database error: {0}")]
    Database(#[source] Box<redb::Error>),
    /// A file or directory operation failed.
    #[error("wallet file {0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// Stored data does not decode.
    #[error("wallet data is corrupt: {0}")]
    Corrupt(String),
    /// The wallet file belongs to another network.
    #[error("this wallet is for {found}, not {expected}")]
    WrongNetwork {
        /// The file's network.
        found: String,
        /// The node's.
        expected: String,
    },
    /// Sealing or opening the seed failed.
    #[error("wallet encryption: {0}")]
    Crypto(String),
    /// The seed is sealed and no passphrase has unlocked it.
    #[error("Error: Please enter the wallet passphrase with walletpassphrase first.")]
    Locked,
    /// The passphrase does not open the seed.
    #[error("Error: The wallet passphrase entered was incorrect.")]
    WrongPassphrase,
    /// `address_type` not known.
    #[error("Unknown address type '{0}'")]
    UnknownAddressType(String),
    /// No wallets directory (a node built without a datadir).
    #[error("no wallets directory is configured")]
    NoDirectory,
    /// A wallet name that is not a plain file name.
    #[error("Wallet name '{0}' is invalid")]
    InvalidName(String),
    /// `createwallet` of an existing wallet.
    #[error("Failed to create database path '{0}'. Database already exists.")]
    AlreadyExists(String),
    /// `loadwallet` of a wallet that is loaded.
    #[error("Wallet \"{0}\" is already loaded.")]
    AlreadyLoaded(String),
    /// No such wallet on disk.
    #[error("Wallet file verification failed. Failed to load database path '{0}'. Path does not exist.")]
    NotFound(String),
    /// A named wallet that is not loaded.
    #[error("Requested wallet does not exist or is not loaded")]
    NotLoaded(String),
    /// No wallet is loaded.
    #[error("No wallet is loaded. Load a wallet using loadwallet or create a new one with createwallet. (Note: A default wallet is no longer automatically created)")]
    NoneLoaded,
    /// Several wallets are loaded and the request named none.
    #[error("Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).")]
    NotSpecified,
    /// `encryptwallet` on an encrypted wallet.
    #[error("Error: running with an encrypted wallet, but encryptwallet was called.")]
    AlreadyEncrypted,
    /// `walletpassphrase` or `walletlock` on an unencrypted wallet.
    #[error("Error: running with an unencrypted wallet, but {0} was called.")]
    NotEncrypted(&'static str),
    /// Building the transaction failed.
    #[error(transparent)]
    Spend(#[from] SpendError),
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// One loaded wallet.
pub struct Wallet {
    name: String,
    store: WalletStore,
    ledger: Ledger,
    seed: StoredSeed,
    /// The opened seed of an encrypted wallet, and when it locks again.
    unlocked: Option<(Seed, Instant)>,
    best: (BlockHash, u32),
    labels: BTreeMap<String, String>,
    network: Network,
    secp: Secp256k1<All>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet").field("name", &self.name).field("encrypted", &self.seed.is_encrypted()).finish()
    }
}

/// A signed payment the wallet made.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The transaction.
    pub tx: Transaction,
    /// Its fee.
    pub fee: bitcoin::Amount,
}

impl Wallet {
    fn key_network(&self) -> NetworkKind {
        NetworkKind::from(self.network.address_network())
    }

    /// The wallet's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pure state.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The last block the wallet has seen.
    pub fn best_block(&self) -> (BlockHash, u32) {
        self.best
    }

    /// The label of an address.
    pub fn label(&self, address: &str) -> Option<&str> {
        self.labels.get(address).map(String::as_str)
    }

    /// Whether the seed is sealed.
    pub fn is_encrypted(&self) -> bool {
        self.seed.is_encrypted()
    }

    /// Unix time until which an encrypted wallet stays unlocked (0 when locked).
    pub fn unlocked_until(&self) -> u64 {
        match &self.unlocked {
            Some((_, until)) if *until > Instant::now() => {
                unix_now() + until.saturating_duration_since(Instant::now()).as_secs()
            }
            _ => 0,
        }
    }

    /// A fresh address on the external chain (or the change chain), stored
    /// before it is returned so it is never handed out twice.
    pub fn new_address(&mut self, kind: AddressType, internal: bool, label: &str) -> Result<Address, WalletError> {
        let (_, address) = self.ledger.new_address(kind, internal);
        let text = address.to_string();
        let label_change = (!internal).then_some((text.as_str(), label));
        self.store.commit(Changes {
            next: Some(self.ledger.next_indexes()),
            label: label_change,
            ..Changes::default()
        })?;
        if !internal {
            self.labels.insert(text, label.to_owned());
        }
        Ok(address)
    }

    fn persist(&self, txids: &[Txid], moved: bool, best: Option<(BlockHash, u32)>) -> Result<(), WalletError> {
        let txs = txids.iter().filter_map(|t| self.ledger.tx(t)).collect();
        let next = moved.then(|| self.ledger.next_indexes());
        self.store.commit(Changes { txs, next, best, ..Changes::default() })
    }

    /// Scans a block that joined the active chain.
    pub fn connect_block(&mut self, block: &Block, height: u32) -> Result<(), WalletError> {
        let (changed, moved) = self.ledger.connect_block(block, height, unix_now());
        let best = (block.block_hash(), height);
        self.persist(&changed, moved, Some(best))?;
        self.best = best;
        Ok(())
    }

    /// A block left the active chain.
    pub fn disconnect_block(&mut self, block: &Block, height: u32) -> Result<(), WalletError> {
        let changed = self.ledger.disconnect_block(block);
        let best = (block.header.prev_blockhash, height.saturating_sub(1));
        self.persist(&changed, false, Some(best))?;
        self.best = best;
        Ok(())
    }

    /// Adds a transaction seen outside a block (the wallet's own sends, and
    /// the mempool's additions once there is one).
    pub fn add_unconfirmed(&mut self, tx: &Transaction) -> Result<bool, WalletError> {
        let (changed, moved) = self.ledger.add_tx(tx, None, unix_now());
        if changed {
            self.persist(&[tx.compute_txid()], moved, None)?;
        }
        Ok(changed)
    }

    /// Brings the wallet up to the chain's tip: blocks that left the chain
    /// while it was not loaded are undone, then the missing blocks scanned.
    pub fn catch_up(&mut self, chain: &Chainstate) -> Result<(), WalletError> {
        let index = chain.index();
        let tip = chain.tip();
        let start = if index.is_active(&self.best.0) {
            self.best.1 + 1
        } else {
            let fork = index.fork_point(&self.best.0, &tip.hash).map_or(0, |e| e.height);
            let changed = self.ledger.unconfirm_above(fork);
            self.persist(&changed, false, None)?;
            fork + 1
        };
        for height in start..=tip.height {
            let Some(hash) = index.active_hash(height) else { break };
            let block = chain
                .block(&hash)
                .map_err(|e| WalletError::Corrupt(format!("block {hash} unreadable: {e}")))?
                .ok_or_else(|| WalletError::Corrupt(format!("block {hash} is not stored")))?;
            self.connect_block(&block, height)?;
        }
        if start > tip.height {
            self.best = (tip.hash, tip.height);
            self.store.commit(Changes { best: Some(self.best), ..Changes::default() })?;
        }
        Ok(())
    }

    /// The seed for signing: always for an unencrypted wallet, while
    /// unlocked for an encrypted one.
    fn signing_seed(&mut self) -> Result<Seed, WalletError> {
        if !self.seed.is_encrypted() {
            return self.seed.open(None);
        }
        match &self.unlocked {
            Some((seed, until)) if *until > Instant::now() => Ok(seed.clone()),
            _ => {
                self.unlocked = None;
                Err(WalletError::Locked)
            }
        }
    }

    /// `encryptwallet`: seals the seed; the wallet is locked afterwards.
    pub fn encrypt(&mut self, passphrase: &Passphrase) -> Result<(), WalletError> {
        if self.seed.is_encrypted() {
            return Err(WalletError::AlreadyEncrypted);
        }
        let seed = self.seed.open(None)?;
        let sealed = StoredSeed::encrypt(&seed, passphrase)?;
        self.store.commit(Changes { seed: Some(&sealed), ..Changes::default() })?;
        self.seed = sealed;
        self.unlocked = None;
        Ok(())
    }

    /// `walletpassphrase`: unlocks for `timeout`.
    pub fn unlock(&mut self, passphrase: &Passphrase, timeout: Duration) -> Result<(), WalletError> {
        if !self.seed.is_encrypted() {
            return Err(WalletError::NotEncrypted("walletpassphrase"));
        }
        let seed = self.seed.open(Some(passphrase))?;
        self.unlocked = Some((seed, Instant::now() + timeout));
        Ok(())
    }

    /// `walletlock`.
    pub fn lock(&mut self) -> Result<(), WalletError> {
        if !self.seed.is_encrypted() {
            return Err(WalletError::NotEncrypted("walletlock"));
        }
        self.unlocked = None;
        Ok(())
    }

    /// Signs the inputs of `tx` the wallet has keys for. Previous outputs come
    /// from `known` (e.g. `prevtxs`), the wallet, then `chain`'s UTXO set.
    /// Returns the errors of inputs left unsigned.
    pub fn sign(
        &mut self,
        tx: &mut Transaction,
        known: &HashMap<OutPoint, TxOut>,
        chain: &Chainstate,
    ) -> Result<Vec<(usize, SignError)>, WalletError> {
        let seed = self.signing_seed()?;
        let mut prevouts = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            let op = input.previous_output;
            let found = known
                .get(&op)
                .cloned()
                .or_else(|| self.ledger.tx(&op.txid).and_then(|w| w.tx.output.get(op.vout as usize).cloned()));
            let found = match found {
                Some(f) => Some(f),
                None => chain.coin(&op).ok().flatten().map(|c| c.output),
            };
            prevouts.push(found);
        }
        let keys: Vec<_> = prevouts
            .iter()
            .map(|p| {
                let path = self.ledger.is_mine(&p.as_ref()?.script_pubkey)?;
                Some((keys::signing_key(&self.secp, &seed, path, self.key_network()), path.kind))
            })
            .collect();
        Ok(spend::sign(&self.secp, tx, &prevouts, &keys))
    }

    /// Builds and signs a payment from coins that are mature and either
    /// confirmed or unconfirmed change of the wallet's own, with change to a
    /// fresh change address. Nothing is recorded but the change key's use:
    /// the caller submits the transaction to the mempool, which passes it
    /// back through [`Wallets::add_unconfirmed`], then [`Wallet::set_comments`].
    pub fn create_transaction(
        &mut self,
        recipients: &[Recipient],
        rate: FeeRate,
        replaceable: bool,
        tip_height: u32,
        chain: &Chainstate,
    ) -> Result<Sent, WalletError> {
        // Fail early on a locked wallet, before a change key is used.
        self.signing_seed()?;
        let candidates: Vec<spend::Candidate> = self
            .ledger
            .utxos(tip_height)
            .into_iter()
            .filter(|u| !u.immature && u.trusted)
            .map(|u| spend::Candidate { outpoint: u.outpoint, txout: u.txout, path: u.path })
            .collect();
        let change_kind = AddressType::Bech32;
        // Peek at the next change key; it is taken only if the change is used.
        let next_change = self.ledger.next_indexes().get(&(change_kind, true)).copied().unwrap_or(0);
        let change_path = KeyPath { kind: change_kind, internal: true, index: next_change };
        let change_script = self.ledger.address(change_path).script_pubkey();
        let position = {
            use bitcoin::secp256k1::rand::Rng;
            bitcoin::secp256k1::rand::thread_rng().gen_range(0..=recipients.len())
        };
        let Plan { mut tx, change_position, fee, .. } =
            spend::plan(&candidates, recipients, &change_script, rate, position, replaceable)?;
        if change_position.is_some() {
            self.ledger.new_address(change_kind, true);
            self.store.commit(Changes { next: Some(self.ledger.next_indexes()), ..Changes::default() })?;
        }
        let errors = self.sign(&mut tx, &HashMap::new(), chain)?;
        if let Some((i, e)) = errors.first() {
            return Err(WalletError::Corrupt(format!("cannot sign own input {i}: {e}")));
        }
        Ok(Sent { tx, fee })
    }

    /// Records `sendtoaddress`'s comments on a wallet transaction.
    pub fn set_comments(
        &mut self,
        txid: &Txid,
        comment: Option<String>,
        comment_to: Option<String>,
    ) -> Result<(), WalletError> {
        if comment.is_none() && comment_to.is_none() {
            return Ok(());
        }
        self.ledger.set_comments(txid, comment, comment_to);
        self.persist(&[*txid], false, None)
    }
}

/// The loaded wallets and where wallets live.
pub struct Wallets {
    dir: Option<PathBuf>,
    network: Network,
    loaded: BTreeMap<String, Wallet>,
    /// The attacker's share `gettransaction`'s `reversal_probability` assumes.
    pub attacker_share: AttackerShare,
}

impl Default for Wallets {
    /// No wallets directory: every wallet RPC answers "No wallet is loaded".
    fn default() -> Self {
        Wallets {
            dir: None,
            network: Network::Regtest,
            loaded: BTreeMap::new(),
            attacker_share: AttackerShare::default(),
        }
    }
}

const AUTOLOAD: &str = "autoload.json";

impl Wallets {
    /// Wallets under `dir` (`<datadir>/wallets`) for `network`.
    pub fn new(dir: PathBuf, network: Network, attacker_share: AttackerShare) -> Wallets {
        Wallets { dir: Some(dir), network, loaded: BTreeMap::new(), attacker_share }
    }

    fn wallet_dir(&self, name: &str) -> Result<PathBuf, WalletError> {
        let dir = self.dir.as_ref().ok_or(WalletError::NoDirectory)?;
        let bad = name.contains(['/', '\\', '\0']) || name == "." || name == ".." || name.starts_with('.');
        if bad {
            return Err(WalletError::InvalidName(name.to_owned()));
        }
        Ok(dir.join(name))
    }

    /// The names of loaded wallets.
    pub fn names(&self) -> Vec<String> {
        self.loaded.keys().cloned().collect()
    }

    /// Whether no wallet is loaded.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }

    /// Every loaded wallet.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Wallet> {
        self.loaded.values_mut()
    }

    /// The wallet a request addresses: the one named by `/wallet/<name>`, or
    /// the only one loaded (Core's `GetWalletForJSONRPCRequest`).
    pub fn resolve(&mut self, name: Option<&str>) -> Result<&mut Wallet, WalletError> {
        match name {
            Some(name) => self.loaded.get_mut(name).ok_or_else(|| WalletError::NotLoaded(name.to_owned())),
            None => match self.loaded.len() {
                0 => Err(WalletError::NoneLoaded),
                1 => Ok(self.loaded.values_mut().next().expect("one wallet is loaded")),
                _ => Err(WalletError::NotSpecified),
            },
        }
    }

    /// `createwallet`: a new seed, sealed if `passphrase` is given, starting
    /// at the chain's tip (a new seed has no history to scan).
    pub fn create(
        &mut self,
        name: &str,
        passphrase: Option<&Passphrase>,
        chain: &Chainstate,
    ) -> Result<&mut Wallet, WalletError> {
        let dir = self.wallet_dir(name)?;
        if WalletStore::exists(&dir) {
            return Err(WalletError::AlreadyExists(dir.join(store::FILE).display().to_string()));
        }
        let secp = Secp256k1::new();
        let seed = Seed::random();
        let kind = NetworkKind::from(self.network.address_network());
        let accounts = Accounts::from_seed(&secp, &seed, kind);
        let stored = match passphrase {
            Some(p) => StoredSeed::encrypt(&seed, p)?,
            None => StoredSeed::plain(&seed),
        };
        let tip = chain.tip();
        let best = (tip.hash, tip.height);
        let store = WalletStore::create(&dir, self.network.name(), &stored, &accounts, best)?;
        let ledger = Ledger::new(self.network.address_network(), accounts, BTreeMap::new(), []);
        let wallet = Wallet {
            name: name.to_owned(),
            store,
            ledger,
            seed: stored,
            unlocked: None,
            best,
            labels: BTreeMap::new(),
            network: self.network,
            secp,
        };
        self.loaded.insert(name.to_owned(), wallet);
        self.save_autoload();
        Ok(self.loaded.get_mut(name).expect("just inserted"))
    }

    /// `loadwallet`: opens a wallet and brings it up to the tip.
    pub fn load(&mut self, name: &str, chain: &Chainstate) -> Result<&mut Wallet, WalletError> {
        if self.loaded.contains_key(name) {
            return Err(WalletError::AlreadyLoaded(name.to_owned()));
        }
        let dir = self.wallet_dir(name)?;
        if !WalletStore::exists(&dir) {
            return Err(WalletError::NotFound(dir.display().to_string()));
        }
        let (store, loaded) = WalletStore::open(&dir, self.network.name())?;
        let ledger = Ledger::new(self.network.address_network(), loaded.accounts, loaded.next, loaded.txs);
        let mut wallet = Wallet {
            name: name.to_owned(),
            store,
            ledger,
            seed: loaded.seed,
            unlocked: None,
            best: loaded.best,
            labels: loaded.labels,
            network: self.network,
            secp: Secp256k1::new(),
        };
        wallet.catch_up(chain)?;
        tracing::info!(wallet = name, file = %wallet.store.path().display(), "wallet loaded");
        self.loaded.insert(name.to_owned(), wallet);
        self.save_autoload();
        Ok(self.loaded.get_mut(name).expect("just inserted"))
    }

    /// `unloadwallet`.
    pub fn unload(&mut self, name: &str) -> Result<(), WalletError> {
        self.loaded.remove(name).ok_or_else(|| WalletError::NotLoaded(name.to_owned()))?;
        self.save_autoload();
        Ok(())
    }

    /// Loads the wallets that were loaded when the node last stopped.
    pub fn load_at_startup(&mut self, chain: &Chainstate) {
        let Some(dir) = &self.dir else { return };
        let names: Vec<String> =
            std::fs::read(dir.join(AUTOLOAD)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        for name in names {
            if let Err(e) = self.load(&name, chain) {
                tracing::error!(wallet = %name, "wallet not loaded at start-up: {e}");
            }
        }
    }

    /// Remembers the loaded wallets for the next start (write, then rename).
    fn save_autoload(&self) {
        let Some(dir) = &self.dir else { return };
        let names: Vec<&String> = self.loaded.keys().collect();
        let tmp = dir.join(format!("{AUTOLOAD}.tmp"));
        let result = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, serde_json::to_vec(&names).expect("names serialise")))
            .and_then(|()| std::fs::rename(&tmp, dir.join(AUTOLOAD)));
        if let Err(e) = result {
            tracing::warn!("cannot record the loaded wallets in {}: {e}", dir.display());
        }
    }

    /// Passes a block that joined the active chain to every wallet.
    pub fn connect_block(&mut self, block: &Block, height: u32) {
        for wallet in self.loaded.values_mut() {
            if let Err(e) = wallet.connect_block(block, height) {
                tracing::error!(wallet = %wallet.name, height, "wallet failed to record a block: {e}");
            }
        }
    }

    /// Passes a block that left the active chain to every wallet.
    pub fn disconnect_block(&mut self, block: &Block, height: u32) {
        for wallet in self.loaded.values_mut() {
            if let Err(e) = wallet.disconnect_block(block, height) {
                tracing::error!(wallet = %wallet.name, height, "wallet failed to undo a block: {e}");
            }
        }
    }

    /// Passes a transaction seen outside a block to every wallet.
    pub fn add_unconfirmed(&mut self, tx: &Transaction) {
        for wallet in self.loaded.values_mut() {
            if let Err(e) = wallet.add_unconfirmed(tx) {
                tracing::error!(wallet = %wallet.name, "wallet failed to record a transaction: {e}");
            }
        }
    }

    /// Mutable access to a wallet and nothing else, for tests.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Wallet> {
        self.loaded.get_mut(name)
    }
}
