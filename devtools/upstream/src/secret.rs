//! Secrets as the upstream holds them: never printed.

use sha2::{Digest, Sha256};
use std::fmt;

/// A secret value (a client secret, an issued token). `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `sha256:` and the first 12 hex digits of the value's SHA-256 — the same
/// fingerprint the host records, so a test can match what the upstream saw
/// with the host's audit trail without either holding the value.
pub fn fingerprint(value: &str) -> String {
    format!("sha256:{}", &hex::encode(Sha256::digest(value.as_bytes()))[..12])
}
