//! The seed at rest: stored as it is, or, once a passphrase is set, sealed
//! with XChaCha20-Poly1305 under a key stretched from the passphrase with
//! Argon2id (a random salt per encryption, a random nonce per seal).

use argon2::Argon2;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keys::Seed;
use super::WalletError;

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;

/// A passphrase; zeroed on drop, `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps `text`.
    pub fn new(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text))
    }

    /// Whether it is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The seed as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredSeed {
    /// No passphrase: the seed's bytes, hex.
    Plain(String),
    /// Sealed: Argon2id salt, XChaCha20 nonce, ciphertext with its tag, all hex.
    Encrypted {
        /// Argon2id salt.
        salt: String,
        /// XChaCha20-Poly1305 nonce.
        nonce: String,
        /// The sealed seed.
        ciphertext: String,
    },
}

impl std::fmt::Debug for StoredSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredSeed::Plain(_) => f.write_str("Plain(<redacted>)"),
            StoredSeed::Encrypted { .. } => f.write_str("Encrypted(..)"),
        }
    }
}

impl StoredSeed {
    /// The seed stored unencrypted.
    pub fn plain(seed: &Seed) -> StoredSeed {
        StoredSeed::Plain(hex::encode(seed.as_bytes()))
    }

    /// The seed sealed under `passphrase`.
    pub fn encrypt(seed: &Seed, passphrase: &Passphrase) -> Result<StoredSeed, WalletError> {
        use bitcoin::secp256k1::rand::RngCore;
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        bitcoin::secp256k1::rand::rngs::OsRng.fill_bytes(&mut salt);
        bitcoin::secp256k1::rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = cipher(passphrase, &salt)?;
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), seed.as_bytes())
            .map_err(|_| WalletError::Crypto("sealing the seed failed".into()))?;
        Ok(StoredSeed::Encrypted {
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        })
    }

    /// Whether a passphrase is needed.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, StoredSeed::Encrypted { .. })
    }

    /// The seed; `passphrase` is needed (and checked) when it is sealed.
    pub fn open(&self, passphrase: Option<&Passphrase>) -> Result<Seed, WalletError> {
        match self {
            StoredSeed::Plain(text) => {
                let bytes = Zeroizing::new(hex::decode(text).map_err(|_| corrupt())?);
                Seed::from_bytes(&bytes)
            }
            StoredSeed::Encrypted { salt, nonce, ciphertext } => {
                let passphrase = passphrase.ok_or(WalletError::Locked)?;
                let salt = hex::decode(salt).map_err(|_| corrupt())?;
                let nonce = hex::decode(nonce).map_err(|_| corrupt())?;
                let ciphertext = hex::decode(ciphertext).map_err(|_| corrupt())?;
                if nonce.len() != NONCE_LEN {
                    return Err(corrupt());
                }
                let cipher = cipher(passphrase, &salt)?;
                let bytes = Zeroizing::new(
                    cipher
                        .decrypt(XNonce::from_slice(&nonce), ciphertext.as_slice())
                        .map_err(|_| WalletError::WrongPassphrase)?,
                );
                Seed::from_bytes(&bytes)
            }
        }
    }
}

fn corrupt() -> WalletError {
    WalletError::Corrupt("the stored seed does not decode".into())
}

fn cipher(passphrase: &Passphrase, salt: &[u8]) -> Result<XChaCha20Poly1305, WalletError> {
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::default()
        .hash_password_into(passphrase.0.as_bytes(), salt, key.as_mut())
        .map_err(|e| WalletError::Crypto(format!("argon2: {e}")))?;
    Ok(XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let seed = Seed::random();
        let passphrase = Passphrase::new("correct horse".into());
        let sealed = StoredSeed::encrypt(&seed, &passphrase).expect("sealing works");
        assert!(sealed.is_encrypted());
        let opened = sealed.open(Some(&passphrase)).expect("the right passphrase opens it");
        assert_eq!(opened.as_bytes(), seed.as_bytes());
        let text = serde_json::to_string(&sealed).expect("serialises");
        assert!(!text.contains(&hex::encode(seed.as_bytes())), "the seed must not appear in the sealed form");
        let back: StoredSeed = serde_json::from_str(&text).expect("deserialises");
        assert_eq!(back.open(Some(&passphrase)).expect("opens").as_bytes(), seed.as_bytes());
    }

    #[test]
    fn wrong_or_missing_passphrase() {
        let seed = Seed::random();
        let sealed = StoredSeed::encrypt(&seed, &Passphrase::new("right".into())).expect("sealing works");
        assert!(matches!(sealed.open(Some(&Passphrase::new("wrong".into()))), Err(WalletError::WrongPassphrase)));
        assert!(matches!(sealed.open(None), Err(WalletError::Locked)));
    }

    #[test]
    fn plain_needs_no_passphrase_and_debug_hides_secrets() {
        let seed = Seed::random();
        let plain = StoredSeed::plain(&seed);
        assert_eq!(plain.open(None).expect("opens").as_bytes(), seed.as_bytes());
        assert_eq!(format!("{plain:?}"), "Plain(<redacted>)");
        assert_eq!(format!("{:?}", Passphrase::new("x".into())), "Passphrase(<redacted>)");
    }
}
