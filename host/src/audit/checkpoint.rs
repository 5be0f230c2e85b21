//! Signed checkpoints: every so often the writer appends
//! `{n, prev, seq, hash, ts, signature}` to `.audit/checkpoints.jsonl`, signed
//! with an Ed25519 key kept in `.runtime/` (public half beside it). A tail
//! that was truncated or rewritten after a checkpoint no longer matches it.
//!
//! Checkpoints are numbered (`n` from 1) and chained: `prev` is the SHA-256
//! of the previous checkpoint's line ([`GENESIS`] for the first), so one
//! cannot be dropped or moved without breaking the chain. Dropping the
//! *newest* ones is what the witness catches: every checkpoint is also
//! written to an operator-chosen place ([`super::witness`]).

use crate::files::write_atomically;
use anyhow::Context;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;

use super::record::GENESIS;

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
    /// Its number, from 1 without gaps.
    pub n: u64,
    /// SHA-256 of the previous checkpoint's line ([`GENESIS`] for the first).
    pub prev: String,
    /// The last record covered.
    pub seq: u64,
    /// Its hash (the chain head at that point).
    pub hash: String,
    /// When (RFC 3339).
    pub ts: String,
    /// Ed25519 over the canonical `{hash, n, prev, seq, ts}`, hex.
    pub signature: String,
}

fn signed_message(n: u64, prev: &str, seq: u64, hash: &str, ts: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"hash": hash, "n": n, "prev": prev, "seq": seq, "ts": ts}))
        .expect("values serialise")
}

/// Where the checkpoint chain stands: the last checkpoint's number and the
/// hash of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last checkpoint's `n` (0 before the first).
    pub n: u64,
    /// SHA-256 of its line ([`GENESIS`] before the first).
    pub line_hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self { n: 0, line_hash: GENESIS.to_owned() }
    }
}

/// SHA-256 (hex) of a checkpoint line without its newline.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The checkpoints in a checkpoints file, with their lines; an absent file
/// has none.
pub fn read_all(path: &Path) -> anyhow::Result<Vec<(Checkpoint, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let checkpoint = serde_json::from_slice(line)
                .with_context(|| format!("{}:{}: not a checkpoint", path.display(), i + 1))?;
            Ok((checkpoint, line.to_vec()))
        })
        .collect()
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
    /// Sign the checkpoint after `previous` of the trail at `seq` / `hash`.
    pub fn sign(key: &SigningKey, previous: &ChainHead, seq: u64, hash: &str, ts: String) -> Self {
        let n = previous.n + 1;
        let signature = key.sign(&signed_message(n, &previous.line_hash, seq, hash, &ts));
        Self {
            n,
            prev: previous.line_hash.clone(),
            seq,
            hash: hash.to_owned(),
            ts,
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// The chain head once this checkpoint is written.
    pub fn head(&self) -> ChainHead {
        let line = self.to_line();
        ChainHead { n: self.n, line_hash: line_hash(&line[..line.len() - 1]) }
    }

    /// Whether the signature is valid under `key`.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Some(bytes) = hex::decode(&self.signature).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
            return false;
        };
        let message = signed_message(self.n, &self.prev, self.seq, &self.hash, &self.ts);
        key.verify(&message, &Signature::from_bytes(&bytes)).is_ok()
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
        let checkpoint =
            Checkpoint::sign(&key, &ChainHead::default(), 7, "abc", "2026-01-01T00:00:00Z".into());
        assert!(checkpoint.verify(&public));
        assert_eq!((checkpoint.n, checkpoint.prev.as_str()), (1, GENESIS));
        let next = Checkpoint::sign(&key, &checkpoint.head(), 9, "abd", "2026-01-01T00:00:01Z".into());
        assert_eq!(next.n, 2);
        assert_eq!(next.prev, checkpoint.head().line_hash);
        assert!(!Checkpoint { seq: 8, ..checkpoint.clone() }.verify(&public));
        assert!(!Checkpoint { n: 2, ..checkpoint.clone() }.verify(&public));
        assert!(!Checkpoint { prev: "0".into(), ..checkpoint.clone() }.verify(&public));
        assert!(!Checkpoint { hash: "abd".into(), ..checkpoint.clone() }.verify(&public));
        let other = SigningKey::from_bytes(&[9; 32]).verifying_key();
        assert!(!checkpoint.verify(&other));
    }
}
