//! Development keys: an RSA-2048 keypair generated once into `.runtime/`
//! (`dev-private.pem`, and its public half as `dev-jwks.json`, kid `dev-key`)
//! when no JWKS is configured, and the token minting behind `fastmcp token`.
//!
//! Deleting either file forces a new pair. Both are written to temporary
//! names and renamed into place; the private key is readable by its owner only.

use super::Claims;
use crate::files::write_atomically;
use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The development key id.
pub const DEV_KID: &str = "dev-key";

/// Where the development keys live under a runtime directory.
pub struct DevKeyFiles {
    /// `dev-private.pem` (PKCS#8).
    pub private_pem: PathBuf,
    /// `dev-jwks.json` (public JWKS).
    pub jwks: PathBuf,
}

impl DevKeyFiles {
    /// The files under `runtime_dir`.
    pub fn in_dir(runtime_dir: &Path) -> Self {
        Self { private_pem: runtime_dir.join("dev-private.pem"), jwks: runtime_dir.join("dev-jwks.json") }
    }

    /// Generate the pair unless both files exist. Returns whether it generated.
    pub fn ensure(&self) -> anyhow::Result<bool> {
        if self.private_pem.is_file() && self.jwks.is_file() {
            return Ok(false);
        }
        let dir = self.private_pem.parent().context("key path has a parent")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).context("generating RSA key")?;
        let pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding private key")?;
        let jwks = json!({ "keys": [{
            "kty": "RSA",
            "kid": DEV_KID,
            "use": "sig",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }]});
        write_atomically(&self.private_pem, pem.as_bytes(), true)?;
        write_atomically(&self.jwks, serde_json::to_vec_pretty(&jwks)?.as_slice(), false)?;
        Ok(true)
    }

    /// Mint a token signed with the development private key.
    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        let pem = std::fs::read(&self.private_pem)
            .with_context(|| format!("reading {}", self.private_pem.display()))?;
        let key = EncodingKey::from_rsa_pem(&pem).context("parsing the development private key")?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(DEV_KID.into());
        jsonwebtoken::encode(&header, claims, &key).context("signing the token")
    }
}

/// Claims for a development token valid for `ttl` from now.
#[allow(clippy::too_many_arguments)]
pub fn dev_claims(
    issuer: &str,
    audience: &str,
    sub: &str,
    tenant: &str,
    roles: Vec<String>,
    scopes: Vec<String>,
    ttl: Duration,
) -> Claims {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Claims {
        iss: Some(issuer.into()),
        aud: Some(audience.into()),
        sub: sub.into(),
        exp: now + ttl.as_secs(),
        iat: Some(now),
        nbf: Some(now),
        tenant: Some(tenant.into()),
        roles,
        scopes: Some(scopes),
        scope: None,
    }
}

/// Parse a TTL such as `90s`, `15m`, `1h`, `2d` or a number of seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 90s, 15m, 1h or 2d"))?;
    let unit_s: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use s, m, h or d)")),
    };
    let seconds = n.checked_mul(unit_s).ok_or_else(|| format!("`{text}` is too long"))?;
    if seconds == 0 {
        return Err("the TTL must be positive".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ttls() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "1y", "0", "-5m", "1.5h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
