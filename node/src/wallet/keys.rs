//! BIP 32 keys: the seed, the three account kinds the wallet derives
//! (BIP 84 P2WPKH, BIP 86 taproot, BIP 44 P2PKH), and the scripts and signing
//! keys at `m/purpose'/coin'/0'/chain/index`.
//!
//! Scripts are derived from the account xpubs, so a locked wallet still
//! recognises its outputs; only signing needs the seed.

use std::fmt;
use std::str::FromStr;

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv, Xpub};
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Address, CompressedPublicKey, NetworkKind, PrivateKey, ScriptBuf};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::WalletError;

/// Bytes of a fresh seed (BIP 32 allows 16 to 64; 32 is Core's choice).
pub const SEED_LEN: usize = 32;

/// The wallet's BIP 32 seed. Zeroed on drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct Seed(Zeroizing<Vec<u8>>);

impl Seed {
    /// A seed of [`SEED_LEN`] random bytes from the OS's generator.
    pub fn random() -> Seed {
        use bitcoin::secp256k1::rand::RngCore;
        let mut bytes = Zeroizing::new(vec![0u8; SEED_LEN]);
        bitcoin::secp256k1::rand::rngs::OsRng.fill_bytes(&mut bytes);
        Seed(bytes)
    }

    /// A seed from its bytes (BIP 32: 16 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Seed, WalletError> {
        if !(16..=64).contains(&bytes.len()) {
            return Err(WalletError::Corrupt(format!("a seed of {} bytes", bytes.len())));
        }
        Ok(Seed(Zeroizing::new(bytes.to_vec())))
    }

    /// The seed's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The master key for `network`.
    pub fn master(&self, network: NetworkKind) -> Xpriv {
        Xpriv::new_master(network, &self.0).expect("a 16 to 64 byte seed always gives a master key")
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// Which kind of address, and so which BIP 44-style account, a key belongs to
/// (Core's `address_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AddressType {
    /// BIP 84 native segwit v0, P2WPKH (`bech32`); the default.
    Bech32,
    /// BIP 86 taproot key path (`bech32m`).
    Bech32m,
    /// BIP 44 P2PKH (`legacy`).
    Legacy,
}

impl AddressType {
    /// Every type, in a fixed order.
    pub const ALL: [AddressType; 3] = [AddressType::Bech32, AddressType::Bech32m, AddressType::Legacy];

    /// The BIP 43 purpose.
    pub fn purpose(self) -> u32 {
        match self {
            AddressType::Bech32 => 84,
            AddressType::Bech32m => 86,
            AddressType::Legacy => 44,
        }
    }

    /// Core's name.
    pub fn name(self) -> &'static str {
        match self {
            AddressType::Bech32 => "bech32",
            AddressType::Bech32m => "bech32m",
            AddressType::Legacy => "legacy",
        }
    }
}

impl FromStr for AddressType {
    type Err = WalletError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bech32" => Ok(AddressType::Bech32),
            "bech32m" => Ok(AddressType::Bech32m),
            "legacy" => Ok(AddressType::Legacy),
            other => Err(WalletError::UnknownAddressType(other.to_owned())),
        }
    }
}

/// Where a key sits: its account kind, chain (external for receiving,
/// internal for change) and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyPath {
    /// Account kind.
    pub kind: AddressType,
    /// The internal (change) chain, `/1/`, rather than the external `/0/`.
    pub internal: bool,
    /// Index on the chain.
    pub index: u32,
}

impl KeyPath {
    /// The full BIP 32 path from the master key.
    pub fn derivation_path(self, network: NetworkKind) -> DerivationPath {
        let mut path = account_path(self.kind, network);
        path = path.child(ChildNumber::Normal { index: u32::from(self.internal) });
        path.child(ChildNumber::Normal { index: self.index })
    }
}

/// `m/purpose'/coin'/0'`; coin 0 on mainnet, 1 on every test network (SLIP 44).
pub fn account_path(kind: AddressType, network: NetworkKind) -> DerivationPath {
    let coin = match network {
        NetworkKind::Main => 0,
        NetworkKind::Test => 1,
    };
    DerivationPath::from(vec![
        ChildNumber::Hardened { index: kind.purpose() },
        ChildNumber::Hardened { index: coin },
        ChildNumber::Hardened { index: 0 },
    ])
}

/// The account xpubs a wallet derives its scripts from; public, so stored
/// unencrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// BIP 84 account.
    pub bech32: Xpub,
    /// BIP 86 account.
    pub bech32m: Xpub,
    /// BIP 44 account.
    pub legacy: Xpub,
}

impl Accounts {
    /// The three accounts of `seed` on `network`.
    pub fn from_seed(secp: &Secp256k1<All>, seed: &Seed, network: NetworkKind) -> Accounts {
        let master = seed.master(network);
        let account = |kind| {
            let xpriv = master
                .derive_priv(secp, &account_path(kind, network))
                .expect("hardened derivation fails only with negligible probability");
            Xpub::from_priv(secp, &xpriv)
        };
        Accounts {
            bech32: account(AddressType::Bech32),
            bech32m: account(AddressType::Bech32m),
            legacy: account(AddressType::Legacy),
        }
    }

    fn get(&self, kind: AddressType) -> &Xpub {
        match kind {
            AddressType::Bech32 => &self.bech32,
            AddressType::Bech32m => &self.bech32m,
            AddressType::Legacy => &self.legacy,
        }
    }

    /// The address at `path`.
    pub fn address(&self, secp: &Secp256k1<All>, path: KeyPath, network: bitcoin::Network) -> Address {
        let child = self
            .get(path.kind)
            .derive_pub(
                secp,
                &[ChildNumber::Normal { index: u32::from(path.internal) }, ChildNumber::Normal { index: path.index }],
            )
            .expect("normal derivation fails only with negligible probability");
        let public = CompressedPublicKey(child.public_key);
        match path.kind {
            AddressType::Bech32 => Address::p2wpkh(&public, network),
            AddressType::Bech32m => Address::p2tr(secp, child.public_key.x_only_public_key().0, None, network),
            AddressType::Legacy => Address::p2pkh(public, network),
        }
    }

    /// The script at `path`.
    pub fn script(&self, secp: &Secp256k1<All>, path: KeyPath, network: bitcoin::Network) -> ScriptBuf {
        self.address(secp, path, network).script_pubkey()
    }
}

/// The private key at `path`.
pub fn signing_key(secp: &Secp256k1<All>, seed: &Seed, path: KeyPath, network: NetworkKind) -> PrivateKey {
    let xpriv = seed
        .master(network)
        .derive_priv(secp, &path.derivation_path(network))
        .expect("derivation fails only with negligible probability");
    xpriv.to_priv()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP 39's seed of "abandon ×11 about" with no passphrase: the seed of
    /// the BIP 84 and BIP 86 test vectors.
    const ABANDON_SEED: &str = "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4";

    fn accounts() -> Accounts {
        let seed = Seed::from_bytes(&hex::decode(ABANDON_SEED).expect("hex")).expect("a 64-byte seed");
        Accounts::from_seed(&Secp256k1::new(), &seed, NetworkKind::Main)
    }

    #[test]
    fn bip84_bip86_bip44_vectors() {
        let secp = Secp256k1::new();
        let accounts = accounts();
        let cases = [
            ("bip84 m/84'/0'/0'/0/0", AddressType::Bech32, false, 0, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"),
            ("bip84 m/84'/0'/0'/0/1", AddressType::Bech32, false, 1, "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"),
            ("bip84 m/84'/0'/0'/1/0", AddressType::Bech32, true, 0, "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"),
            (
                "bip86 m/86'/0'/0'/0/0",
                AddressType::Bech32m,
                false,
                0,
                "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
            ),
            (
                "bip86 m/86'/0'/0'/0/1",
                AddressType::Bech32m,
                false,
                1,
                "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh",
            ),
            (
                "bip86 m/86'/0'/0'/1/0",
                AddressType::Bech32m,
                true,
                0,
                "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7",
            ),
            ("bip44 m/44'/0'/0'/0/0", AddressType::Legacy, false, 0, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
        ];
        for (name, kind, internal, index, expected) in cases {
            let address = accounts.address(&secp, KeyPath { kind, internal, index }, bitcoin::Network::Bitcoin);
            assert_eq!(address.to_string(), expected, "{name}");
        }
    }

    #[test]
    fn bip84_account_xpub() {
        // BIP 84 gives account 0 as a zpub: the same key under another version.
        let zpub = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";
        let mut bytes = bitcoin::base58::decode_check(zpub).expect("valid base58check");
        bytes[..4].copy_from_slice(&[0x04, 0x88, 0xb2, 0x1e]);
        let expected = Xpub::decode(&bytes).expect("an xpub");
        assert_eq!(accounts().bech32, expected);
    }

    #[test]
    fn signing_key_matches_address() {
        let secp = Secp256k1::new();
        let seed = Seed::from_bytes(&hex::decode(ABANDON_SEED).expect("hex")).expect("a 64-byte seed");
        let accounts = Accounts::from_seed(&secp, &seed, NetworkKind::Test);
        let path = KeyPath { kind: AddressType::Bech32, internal: true, index: 7 };
        let key = signing_key(&secp, &seed, path, NetworkKind::Test);
        let public = CompressedPublicKey::from_private_key(&secp, &key).expect("compressed");
        assert_eq!(
            Address::p2wpkh(&public, bitcoin::Network::Regtest),
            accounts.address(&secp, path, bitcoin::Network::Regtest)
        );
        assert_eq!(path.derivation_path(NetworkKind::Test).to_string(), "84'/1'/0'/1/7");
    }

    #[test]
    fn seed_is_redacted() {
        let seed = Seed::random();
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
        assert_eq!(seed.as_bytes().len(), SEED_LEN);
    }

    #[test]
    fn address_type_names() {
        for kind in AddressType::ALL {
            assert_eq!(kind.name().parse::<AddressType>().expect("own name parses"), kind);
        }
        assert!("p2sh-segwit".parse::<AddressType>().is_err());
    }
}
