//! Sealing users' connection tokens at rest: AES-256-GCM (RustCrypto's
//! `aes-gcm`) under the operator's key, a fresh random 96-bit nonce per
//! seal, and associated data naming what the value belongs to (the
//! connection's tenant, subject and provider; a flow's state digest) — so a
//! value copied to another user's key in the store does not open.
//!
//! A sealed value records which key sealed it (a key id: the first 8 bytes
//! of a SHA-256 of the key, not the key). The ring holds the current key,
//! which seals, and earlier keys, which only open: rotation is a new
//! `connections.key_file` with the old one in `previous_key_files`; a
//! connection sealed with an old key is sealed again with the current one
//! when next refreshed, and expires after `connections.max_idle` in any
//! case.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// One key and its id.
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"fastmcp-connections-key-id\0");
        hasher.update(bytes);
        let id = hex::encode(&hasher.finalize()[..8]);
        Self { id, cipher: Aes256Gcm::new(bytes.into()) }
    }
}

/// The keys that seal and open connection tokens.
pub struct KeyRing {
    current: Key,
    previous: Vec<Key>,
}

/// A sealed value as stored.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Format version.
    v: u8,
    /// The id of the key that sealed it.
    kid: String,
    /// The nonce (base64url).
    nonce: String,
    /// Ciphertext and tag (base64url).
    ct: String,
}

/// Why a stored value does not open: tampered with, moved, or sealed with a
/// key no longer configured. Callers treat it as absent.
#[derive(Debug, thiserror::Error)]
#[error("a sealed value does not open: {0}")]
pub struct Unreadable(&'static str);

impl KeyRing {
    /// The ring of `current` and `previous` keys.
    pub fn from_keys(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self { current: Key::new(current), previous: previous.iter().map(Key::new).collect() }
    }

    /// The operator's keys: `current` (generated, owner-only, when it is the
    /// default file and absent) and `previous` files.
    pub fn load(current: &Path, generate: bool, previous: &[impl AsRef<Path>]) -> anyhow::Result<Self> {
        if generate && !current.exists() {
            if let Some(dir) = current.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let key: [u8; 32] = rand::random();
            crate::files::write_atomically(current, hex::encode(key).as_bytes(), true)?;
        }
        let read = |path: &Path| -> anyhow::Result<[u8; 32]> {
            let size = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
            anyhow::ensure!(size <= MAX_KEY_FILE_BYTES, "{} is not a key file (too large)", path.display());
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            parse_key(text.trim()).with_context(|| format!("{}", path.display()))
        };
        let current = read(current)?;
        let previous = previous.iter().map(|p| read(p.as_ref())).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self::from_keys(&current, &previous))
    }

    /// Seal `plaintext` for `aad` with the current key.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let ct = self
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let sealed = Sealed {
            v: 1,
            kid: self.current.id.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ct: URL_SAFE_NO_PAD.encode(ct),
        };
        serde_json::to_vec(&sealed).expect("a sealed value serialises")
    }

    /// Open a value sealed for `aad` by any key of the ring: the plaintext.
    pub fn open(&self, aad: &[u8], stored: &[u8]) -> Result<Vec<u8>, Unreadable> {
        let sealed: Sealed = serde_json::from_slice(stored).map_err(|_| Unreadable("not a sealed value"))?;
        if sealed.v != 1 {
            return Err(Unreadable("unknown format"));
        }
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == sealed.kid)
            .ok_or(Unreadable("sealed with a key that is not configured"))?;
        let nonce = URL_SAFE_NO_PAD.decode(&sealed.nonce).map_err(|_| Unreadable("bad nonce"))?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| Unreadable("bad nonce"))?;
        let ct = URL_SAFE_NO_PAD.decode(&sealed.ct).map_err(|_| Unreadable("bad ciphertext"))?;
        key.cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
            .map_err(|_| Unreadable("authentication failed (tampered with, or moved)"))
    }
}

/// A key: 64 hex digits, or base64 of 32 bytes.
fn parse_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = match hex::decode(text) {
        Ok(bytes) => bytes,
        Err(_) => STANDARD.decode(text).map_err(|_| anyhow::anyhow!("a key is 64 hex digits or base64"))?,
    };
    bytes.try_into().map_err(|_| anyhow::anyhow!("a key is 32 bytes (AES-256)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_for_its_own_associated_data_and_key() {
        let ring = KeyRing::from_keys(&[7; 32], &[]);
        let sealed = ring.seal(b"connection\0acme\0alice\0crm", b"refresh-token-of-alice");
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("refresh-token-of-alice"), "{text}");
        let opened = ring.open(b"connection\0acme\0alice\0crm", &sealed).unwrap();
        assert_eq!(opened, b"refresh-token-of-alice");
        // Copied under another user's key: does not open.
        assert!(ring.open(b"connection\0acme\0mallory\0crm", &sealed).is_err());
        // Flipped bit: does not open.
        let mut tampered: Sealed = serde_json::from_slice(&sealed).unwrap();
        let mut ct = URL_SAFE_NO_PAD.decode(&tampered.ct).unwrap();
        ct[0] ^= 1;
        tampered.ct = URL_SAFE_NO_PAD.encode(ct);
        let tampered = serde_json::to_vec(&tampered).unwrap();
        assert!(ring.open(b"connection\0acme\0alice\0crm", &tampered).is_err());
        // Another key: does not open.
        assert!(KeyRing::from_keys(&[8; 32], &[]).open(b"connection\0acme\0alice\0crm", &sealed).is_err());
    }

    #[test]
    fn a_rotated_ring_opens_old_values_and_seals_with_the_new_key() {
        let old = KeyRing::from_keys(&[1; 32], &[]);
        let sealed = old.seal(b"a", b"secret");
        let rotated = KeyRing::from_keys(&[2; 32], &[[1; 32]]);
        let opened = rotated.open(b"a", &sealed).unwrap();
        assert_eq!(opened, b"secret");
        let resealed = rotated.seal(b"a", &opened);
        assert_eq!(KeyRing::from_keys(&[2; 32], &[]).open(b"a", &resealed).unwrap(), b"secret");
        assert!(old.open(b"a", &resealed).is_err(), "the old ring cannot read values of the new key");
    }

    #[test]
    fn keys_load_from_hex_or_base64_and_the_default_is_generated_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let generated = dir.path().join("connections.key");
        let ring = KeyRing::load(&generated, true, &[] as &[&Path]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&generated).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let sealed = ring.seal(b"a", b"x");
        assert!(KeyRing::load(&generated, false, &[] as &[&Path]).unwrap().open(b"a", &sealed).is_ok());
        let b64 = dir.path().join("b64.key");
        std::fs::write(&b64, STANDARD.encode([9u8; 32])).unwrap();
        assert!(KeyRing::load(&b64, false, &[&b64]).unwrap().open(b"a", &sealed).is_err());
        assert_eq!(KeyRing::load(&b64, false, &[&generated]).unwrap().open(b"a", &sealed).unwrap(), b"x");
        let short = dir.path().join("short.key");
        std::fs::write(&short, "abcd").unwrap();
        assert!(KeyRing::load(&short, false, &[] as &[&Path]).is_err());
        assert!(KeyRing::load(&dir.path().join("missing.key"), false, &[] as &[&Path]).is_err());
    }
}
