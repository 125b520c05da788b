//! The demo's two keys, kept in the data directory so that a restart pays
//! the same addresses: the pool operator's (it takes the pool fee) and the
//! local miner's (its worker name is `<address>.local`). Each is a WIF in a
//! file of mode 0600, importable into any wallet of the devnet.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};
use bitcoin::secp256k1::{rand, Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, PrivateKey};

/// Devnet uses regtest's address formats (`bcrt1…`).
const NETWORK: bitcoin::Network = bitcoin::Network::Regtest;

/// The P2WPKH address of the key in `path`, creating the key on first use.
pub fn address(path: &Path) -> Result<Address> {
    let key = match std::fs::read_to_string(path) {
        Ok(wif) => {
            PrivateKey::from_str(wif.trim()).with_context(|| format!("while reading the key in {}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::new(SecretKey::new(&mut rand::thread_rng()), NETWORK);
            write_private(path, &key.to_wif()).with_context(|| format!("while writing {}", path.display()))?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
    };
    let public = CompressedPublicKey::from_private_key(&Secp256k1::new(), &key)
        .with_context(|| format!("the key in {} is not compressed", path.display()))?;
    Ok(Address::p2wpkh(&public, NETWORK))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("keys").join("miner.key");
        let first = super::address(&path).expect("made");
        let second = super::address(&path).expect("read back");
        assert_eq!(first, second);
        assert!(first.to_string().starts_with("bcrt1q"), "{first}");
    }
}
