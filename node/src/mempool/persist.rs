//! Saving the pool across restarts: `<datadir>/mempool.dat`.
//!
//! The format is ours, versioned, and checked:
//!
//! ```text
//! magic "SATPMEMP" | version u32 LE (1)
//! count u64 LE | count × (transaction with witness | entry time i64 LE)
//! count u64 LE | count × (txid 32 bytes | prioritisation delta i64 LE)
//! count u64 LE | count × (unbroadcast txid 32 bytes)
//! SHA-256d of everything above (32 bytes)
//! ```
//!
//! Transactions are written parents first, so loading them in order finds
//! each one's in-mempool inputs already there. The file is written to a
//! temporary name, synced and renamed, so a crash leaves the old file or the
//! new one, never half of one. Loading re-validates every transaction (the
//! caller does that, against the chain as it is then).

use std::io::Write;
use std::path::Path;

use bitcoin::consensus::{Decodable, Encodable};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Transaction, Txid};

use super::Mempool;

/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"SATPMEMP";
/// The format version written.
pub const VERSION: u32 = 1;
/// The file name under the data directory.
pub const FILE_NAME: &str = "mempool.dat";

/// Why the saved pool could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not a saved pool.
    #[error("not a satpool mempool file (bad magic)")]
    BadMagic,
    /// A version this build does not read.
    #[error("mempool file version {0} is not supported (this build reads {VERSION})")]
    UnsupportedVersion(u32),
    /// Cut short or damaged.
    #[error("mempool file is corrupt: {0}")]
    Corrupt(&'static str),
    /// A transaction in it does not decode.
    #[error("mempool file holds an undecodable transaction: {0}")]
    Decode(#[from] bitcoin::consensus::encode::Error),
}

/// One saved transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTx {
    /// The transaction.
    pub tx: Transaction,
    /// When it entered the pool (Unix seconds).
    pub time: i64,
}

/// A saved pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedMempool {
    /// Transactions, parents before children.
    pub txs: Vec<SavedTx>,
    /// `prioritisetransaction` deltas in satoshis.
    pub deltas: Vec<(Txid, i64)>,
    /// Transactions not yet broadcast.
    pub unbroadcast: Vec<Txid>,
}

/// What is to be saved of `pool`, parents first.
pub fn snapshot(pool: &Mempool) -> SavedMempool {
    let mut order: Vec<(usize, Txid)> = pool.entries().map(|e| (pool.ancestors(&e.txid()).len(), e.txid())).collect();
    order.sort();
    let txs = order
        .iter()
        .filter_map(|(_, t)| pool.get(t))
        .map(|e| SavedTx { tx: Transaction::clone(e.tx()), time: e.time() })
        .collect();
    let mut deltas: Vec<(Txid, i64)> = pool.deltas().iter().map(|(t, d)| (*t, *d)).collect();
    deltas.sort();
    let mut unbroadcast: Vec<Txid> = pool.unbroadcast().iter().copied().collect();
    unbroadcast.sort();
    SavedMempool { txs, deltas, unbroadcast }
}

/// Serialises a saved pool.
pub fn encode(saved: &SavedMempool) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(saved.txs.len() as u64).to_le_bytes());
    for s in &saved.txs {
        s.tx.consensus_encode(&mut out).expect("writing to a Vec never fails");
        out.extend_from_slice(&s.time.to_le_bytes());
    }
    out.extend_from_slice(&(saved.deltas.len() as u64).to_le_bytes());
    for (txid, delta) in &saved.deltas {
        out.extend_from_slice(txid.as_byte_array());
        out.extend_from_slice(&delta.to_le_bytes());
    }
    out.extend_from_slice(&(saved.unbroadcast.len() as u64).to_le_bytes());
    for txid in &saved.unbroadcast {
        out.extend_from_slice(txid.as_byte_array());
    }
    let checksum = sha256d::Hash::hash(&out);
    out.extend_from_slice(checksum.as_byte_array());
    out
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], PersistError> {
    if bytes.len() < n {
        return Err(PersistError::Corrupt("truncated"));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn take_array<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], PersistError> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(bytes, N)?);
    Ok(out)
}

fn take_count(bytes: &mut &[u8], item_min: usize) -> Result<usize, PersistError> {
    let n = u64::from_le_bytes(take_array(bytes)?);
    // A count larger than the bytes left could hold is damage, not a reason
    // to allocate.
    if n > (bytes.len() / item_min.max(1)) as u64 {
        return Err(PersistError::Corrupt("count larger than the file"));
    }
    Ok(n as usize)
}

/// Parses what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<SavedMempool, PersistError> {
    if bytes.len() < MAGIC.len() + 4 + 32 || bytes[..MAGIC.len()] != MAGIC {
        return Err(PersistError::BadMagic);
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    let mut rest = &body[MAGIC.len()..];
    let version = u32::from_le_bytes(take_array(&mut rest)?);
    if version != VERSION {
        return Err(PersistError::UnsupportedVersion(version));
    }
    if sha256d::Hash::hash(body).as_byte_array() != checksum {
        return Err(PersistError::Corrupt("checksum mismatch"));
    }
    let mut saved = SavedMempool::default();
    for _ in 0..take_count(&mut rest, 60)? {
        let tx = Transaction::consensus_decode(&mut rest)?;
        let time = i64::from_le_bytes(take_array(&mut rest)?);
        saved.txs.push(SavedTx { tx, time });
    }
    for _ in 0..take_count(&mut rest, 40)? {
        let txid = Txid::from_byte_array(take_array(&mut rest)?);
        let delta = i64::from_le_bytes(take_array(&mut rest)?);
        saved.deltas.push((txid, delta));
    }
    for _ in 0..take_count(&mut rest, 32)? {
        saved.unbroadcast.push(Txid::from_byte_array(take_array(&mut rest)?));
    }
    if !rest.is_empty() {
        return Err(PersistError::Corrupt("trailing bytes"));
    }
    Ok(saved)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io { path: path.display().to_string(), source }
}

/// Writes `pool` to `path` durably: a temporary file beside it, synced,
/// then renamed over it, and the directory synced.
pub fn save(pool: &Mempool, path: &Path) -> Result<(), PersistError> {
    let bytes = encode(&snapshot(pool));
    let tmp = path.with_extension("dat.new");
    {
        let mut file = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
        file.write_all(&bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        // Makes the rename itself durable; not every platform can open a
        // directory, and the data is already safe in the file.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads a saved pool; `None` if there is no file.
pub fn read(path: &Path) -> Result<Option<SavedMempool>, PersistError> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Why a saved pool could not be put back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] PersistError),
    /// The chainstate could not be read while re-validating.
    #[error("while re-validating the saved mempool: {0}")]
    Chain(#[from] crate::chain::ChainError),
}

/// Reads `path` and puts its transactions back into `pool`, re-validated
/// against `chain`; a missing file leaves the pool empty. Either way the
/// pool counts as loaded afterwards.
pub fn load(pool: &mut Mempool, path: &Path, chain: &dyn super::ChainView, now: i64) -> Result<LoadOutcome, LoadError> {
    let outcome = match read(path)? {
        Some(saved) => pool.load_saved(saved, chain, now)?,
        None => LoadOutcome::default(),
    };
    pool.set_loaded();
    Ok(outcome)
}

/// What loading a saved pool did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    /// Transactions accepted again.
    pub accepted: usize,
    /// Transactions refused against the current chain.
    pub failed: usize,
    /// Transactions older than the expiry.
    pub expired: usize,
}

impl Mempool {
    /// Puts a saved pool back (Core's `LoadMempool`): the prioritisations
    /// first, then each transaction through full acceptance with its
    /// original entry time, skipping the expired; then the unbroadcast set.
    pub fn load_saved(
        &mut self,
        saved: SavedMempool,
        chain: &dyn super::ChainView,
        now: i64,
    ) -> Result<LoadOutcome, crate::chain::ChainError> {
        let mut outcome = LoadOutcome::default();
        for (txid, delta) in saved.deltas {
            self.prioritise(txid, delta);
        }
        for SavedTx { tx, time } in saved.txs {
            if time <= now - self.config().expiry_secs {
                outcome.expired += 1;
                continue;
            }
            let options = super::AcceptOptions { time: Some(time), ..super::AcceptOptions::default() };
            match self.accept(std::sync::Arc::new(tx), chain, now, options) {
                Ok(_) => outcome.accepted += 1,
                Err(super::MempoolReject::Chain(e)) => return Err(e),
                Err(super::MempoolReject::Invalid(reason)) => {
                    tracing::debug!(%reason, "saved mempool transaction refused");
                    outcome.failed += 1;
                }
            }
        }
        for txid in saved.unbroadcast {
            self.add_unbroadcast(txid);
        }
        self.set_loaded();
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::{absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};
    use proptest::prelude::*;

    use super::*;

    fn sample() -> SavedMempool {
        let mut witness = Witness::default();
        witness.push([1u8; 71]);
        let tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([3; 32]), 1),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness,
            }],
            output: vec![TxOut { value: Amount::from_sat(1234), script_pubkey: ScriptBuf::from_bytes(vec![0x51]) }],
        };
        SavedMempool {
            txs: vec![SavedTx { tx, time: 1_700_000_000 }],
            deltas: vec![(Txid::from_byte_array([9; 32]), -500)],
            unbroadcast: vec![Txid::from_byte_array([4; 32])],
        }
    }

    #[test]
    fn round_trips() {
        let saved = sample();
        assert_eq!(decode(&encode(&saved)).unwrap(), saved);
        assert_eq!(decode(&encode(&SavedMempool::default())).unwrap(), SavedMempool::default());
    }

    #[test]
    fn damage_is_refused() {
        let bytes = encode(&sample());
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(matches!(decode(&flipped), Err(PersistError::Corrupt("checksum mismatch"))));
        assert!(matches!(decode(&bytes[..bytes.len() - 1]), Err(PersistError::Corrupt(_))));
        assert!(matches!(decode(b"NOTAPOOL...................................."), Err(PersistError::BadMagic)));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(decode(&v2), Err(PersistError::UnsupportedVersion(2))));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
