//! Signature and public key encodings (BIP66, low S, strict encodings) and
//! the verification of ECDSA and BIP340 signatures through libsecp256k1.
//!
//! One verification context serves the whole process: creating one is
//! costly, and verifying through it needs no lock.

use std::sync::OnceLock;

use bitcoin::secp256k1::{ecdsa, schnorr, Message, PublicKey, Secp256k1, VerifyOnly, XOnlyPublicKey};

use crate::error::ScriptError;
use crate::flags::VerifyFlags;
use crate::interpreter::SigVersion;
use crate::sighash::{SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_SINGLE};

/// The process-wide verification context.
pub fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CONTEXT: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CONTEXT.get_or_init(Secp256k1::verification_only)
}

/// Whether `sig` (with its hash type byte) is strict DER as BIP66 defines
/// it (Core's `IsValidSignatureEncoding`).
pub fn is_valid_signature_encoding(sig: &[u8]) -> bool {
    // Format: 0x30 [total-length] 0x02 [R-length] [R] 0x02 [S-length] [S] [sighash]
    let len = sig.len();
    if !(9..=73).contains(&len) {
        return false;
    }
    if sig[0] != 0x30 || usize::from(sig[1]) != len - 3 {
        return false;
    }
    let len_r = usize::from(sig[3]);
    if 5 + len_r >= len {
        return false;
    }
    let len_s = usize::from(sig[5 + len_r]);
    if len_r + len_s + 7 != len {
        return false;
    }
    if sig[2] != 0x02 || len_r == 0 || sig[4] & 0x80 != 0 {
        return false;
    }
    if len_r > 1 && sig[4] == 0 && sig[5] & 0x80 == 0 {
        return false;
    }
    if sig[len_r + 4] != 0x02 || len_s == 0 || sig[len_r + 6] & 0x80 != 0 {
        return false;
    }
    if len_s > 1 && sig[len_r + 6] == 0 && sig[len_r + 7] & 0x80 == 0 {
        return false;
    }
    true
}

/// Whether the DER signature `der` (without hash type) parses and has a
/// low S (Core's `CPubKey::CheckLowS`).
fn has_low_s(der: &[u8]) -> bool {
    let Ok(sig) = ecdsa::Signature::from_der_lax(der) else {
        return false;
    };
    let mut normalized = sig;
    normalized.normalize_s();
    normalized == sig
}

/// Checks a signature's encoding against the flags (Core's
/// `CheckSignatureEncoding`). Empty signatures pass: they are the way to
/// fail a check on purpose.
pub fn check_signature_encoding(sig: &[u8], flags: VerifyFlags) -> Result<(), ScriptError> {
    if sig.is_empty() {
        return Ok(());
    }
    let strict = VerifyFlags::DERSIG | VerifyFlags::LOW_S | VerifyFlags::STRICTENC;
    if flags.intersects(strict) && !is_valid_signature_encoding(sig) {
        return Err(ScriptError::SigDer);
    }
    if flags.contains(VerifyFlags::LOW_S) && !has_low_s(&sig[..sig.len() - 1]) {
        return Err(ScriptError::SigHighS);
    }
    if flags.contains(VerifyFlags::STRICTENC) {
        let base = u32::from(sig[sig.len() - 1]) & !SIGHASH_ANYONECANPAY;
        if !(SIGHASH_ALL..=SIGHASH_SINGLE).contains(&base) {
            return Err(ScriptError::SigHashtype);
        }
    }
    Ok(())
}

fn is_compressed_or_uncompressed(pubkey: &[u8]) -> bool {
    match pubkey.first() {
        Some(0x04) => pubkey.len() == 65,
        Some(0x02 | 0x03) => pubkey.len() == 33,
        _ => false,
    }
}

fn is_compressed(pubkey: &[u8]) -> bool {
    pubkey.len() == 33 && matches!(pubkey[0], 0x02 | 0x03)
}

/// Checks a public key's encoding against the flags (Core's
/// `CheckPubKeyEncoding`).
pub fn check_pubkey_encoding(pubkey: &[u8], flags: VerifyFlags, sigversion: SigVersion) -> Result<(), ScriptError> {
    if flags.contains(VerifyFlags::STRICTENC) && !is_compressed_or_uncompressed(pubkey) {
        return Err(ScriptError::PubkeyType);
    }
    if flags.contains(VerifyFlags::WITNESS_PUBKEYTYPE) && sigversion == SigVersion::WitnessV0 && !is_compressed(pubkey)
    {
        return Err(ScriptError::WitnessPubkeyType);
    }
    Ok(())
}

/// Parses a public key as Core's `CPubKey` does: the length must match the
/// first byte (33 for 02/03, 65 for 04/06/07), then libsecp256k1 parses it.
pub fn parse_pubkey(pubkey: &[u8]) -> Option<PublicKey> {
    let expected = match pubkey.first()? {
        0x02 | 0x03 => 33,
        0x04 | 0x06 | 0x07 => 65,
        _ => return None,
    };
    if pubkey.len() != expected {
        return None;
    }
    PublicKey::from_slice(pubkey).ok()
}

/// Verifies an ECDSA signature (DER, without hash type, parsed as laxly as
/// Core does; high S accepted) over `sighash`.
pub fn verify_ecdsa(der: &[u8], pubkey: &PublicKey, sighash: [u8; 32]) -> bool {
    let Ok(mut sig) = ecdsa::Signature::from_der_lax(der) else {
        return false;
    };
    // libsecp256k1 only verifies low-S signatures; consensus accepts both.
    sig.normalize_s();
    secp().verify_ecdsa(&Message::from_digest(sighash), &sig, pubkey).is_ok()
}

/// Verifies a 64-byte BIP340 signature by the x-only key `pubkey` over
/// `sighash`.
pub fn verify_schnorr(sig: &[u8], pubkey: &[u8], sighash: [u8; 32]) -> bool {
    let Ok(sig) = schnorr::Signature::from_slice(sig) else {
        return false;
    };
    let Ok(key) = XOnlyPublicKey::from_slice(pubkey) else {
        return false;
    };
    secp().verify_schnorr(&sig, &Message::from_digest(sighash), &key).is_ok()
}
