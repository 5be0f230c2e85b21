//! Signed checkpoints: every so often the writer appends
//! `{seq, hash, ts, signature}` to `.audit/checkpoints.jsonl`, signed with an
//! Ed25519 key kept in `.runtime/` (public half beside it). A tail that was
//! truncated or rewritten after a checkpoint no longer matches it.

use crate::files::write_atomically;
use anyhow::Context;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// File names under the runtime directory.
pub const PRIVATE_KEY_FILE: &str = "audit-checkpoint.key";
/// The public key, hex.
pub const PUBLIC_KEY_FILE: &str = "audit-checkpoint.pub";
/// The checkpoints file under the audit directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";

/// One line of `checkpoints.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last record covered.
    pub seq: u64,
    /// Its hash (the chain head at that point).
    pub hash: String,
    /// When (RFC 3339).
    pub ts: String,
    /// Ed25519 over the canonical `{hash, seq, ts}`, hex.
    pub signature: String,
}

fn signed_message(seq: u64, hash: &str, ts: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"hash": hash, "seq": seq, "ts": ts})).expect("values serialise")
}

/// Load the signing key from `runtime_dir`, generating it on first use.
pub fn load_or_create_key(runtime_dir: &Path) -> anyhow::Result<SigningKey> {
    let private = runtime_dir.join(PRIVATE_KEY_FILE);
    if !private.exists() {
        std::fs::create_dir_all(runtime_dir)?;
        let key = SigningKey::from_bytes(&rand::random());
        write_atomically(&private, hex::encode(key.to_bytes()).as_bytes(), true)?;
        let public = hex::encode(key.verifying_key().to_bytes());
        write_atomically(&runtime_dir.join(PUBLIC_KEY_FILE), public.as_bytes(), false)?;
    }
    let text = std::fs::read_to_string(&private).with_context(|| format!("reading {}", private.display()))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} must hold 32 hex bytes", private.display()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Read a public key file (hex).
pub fn read_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} must hold 32 hex bytes", path.display()))?;
    VerifyingKey::from_bytes(&bytes)
        .with_context(|| format!("{} is not an Ed25519 public key", path.display()))
}

impl Checkpoint {
    /// Sign a checkpoint of the chain at `seq` / `hash`.
    pub fn sign(key: &SigningKey, seq: u64, hash: &str, ts: String) -> Self {
        let signature = key.sign(&signed_message(seq, hash, &ts));
        Self { seq, hash: hash.to_owned(), ts, signature: hex::encode(signature.to_bytes()) }
    }

    /// Whether the signature is valid under `key`.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Some(bytes) = hex::decode(&self.signature).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
            return false;
        };
        key.verify(&signed_message(self.seq, &self.hash, &self.ts), &Signature::from_bytes(&bytes)).is_ok()
    }

    /// The line written to disk.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("checkpoints serialise");
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        assert_eq!(load_or_create_key(dir.path()).unwrap().to_bytes(), key.to_bytes(), "generated once");
        let public = read_public_key(&dir.path().join(PUBLIC_KEY_FILE)).unwrap();
        let checkpoint = Checkpoint::sign(&key, 7, "abc", "2026-01-01T00:00:00Z".into());
        assert!(checkpoint.verify(&public));
        assert!(!Checkpoint { seq: 8, ..checkpoint.clone() }.verify(&public));
        assert!(!Checkpoint { hash: "abd".into(), ..checkpoint.clone() }.verify(&public));
        let other = SigningKey::from_bytes(&[9; 32]).verifying_key();
        assert!(!checkpoint.verify(&other));
    }
}
