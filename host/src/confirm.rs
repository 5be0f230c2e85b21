//! Action tokens for the confirmation gate.
//!
//! An action token is `at1.<claims>.<mac>`: base64url JSON claims and an
//! HMAC-SHA256 over them with a host key generated once into
//! `.runtime/action-token.key` (share that file between replicas). The claims
//! bind the tool, a digest of the canonical arguments, the principal (`sub`
//! and `tenant`), a unique id and an expiry. Verification compares MACs in
//! constant time; single use is enforced by the caller through the state
//! store, keyed by the unique id.

use crate::files::write_atomically;
use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// Why a call stopped at the gate did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeclineReason {
    /// The human said no.
    #[default]
    Declined,
    /// The human dismissed the question (MCP elicitation `cancel`).
    Cancelled,
}

impl DeclineReason {
    /// `declined` or `cancelled`, as recorded and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::Declined => "declined",
            DeclineReason::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const PREFIX: &str = "at1";
/// Longest action token accepted before any parsing.
const MAX_TOKEN_BYTES: usize = 2048;

/// What an action token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionClaims {
    /// Unique id (UUIDv7).
    pub jti: String,
    /// Tool id.
    pub tool: String,
    /// SHA-256 of the canonical arguments.
    pub args_sha256: String,
    /// Subject of the principal that invoked.
    pub sub: String,
    /// Tenant of the principal that invoked.
    pub tenant: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

/// Why an action token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionTokenError {
    /// Not an action token, or a bad MAC, or bound to something else.
    #[error("{0}")]
    Invalid(&'static str),
    /// Past its expiry.
    #[error("the action token expired")]
    Expired,
}

/// The host's action-token key.
pub struct ActionTokenKey {
    key: [u8; 32],
}

impl ActionTokenKey {
    /// Load the key from `path`, generating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let key: [u8; 32] = rand::random();
            write_atomically(path, hex::encode(key).as_bytes(), true)?;
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        let key = bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
        Ok(Self { key })
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// Sign claims into a token.
    pub fn issue(&self, claims: &ActionClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{PREFIX}.{body}.{tag}")
    }

    /// Check the MAC and decode the claims (binding and expiry are checked
    /// by [`check_binding`]).
    pub fn verify(&self, token: &str) -> Result<ActionClaims, ActionTokenError> {
        const MALFORMED: ActionTokenError = ActionTokenError::Invalid("malformed action token");
        if token.len() > MAX_TOKEN_BYTES {
            return Err(MALFORMED);
        }
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(body), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MALFORMED);
        };
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| MALFORMED)?;
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&tag).map_err(|_| ActionTokenError::Invalid("bad action token signature"))?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| MALFORMED)?;
        serde_json::from_slice(&json).map_err(|_| MALFORMED)
    }
}

/// The call a confirm presents, to compare with what the token binds.
pub struct Presented<'a> {
    /// Tool id of the confirm route.
    pub tool: &'a str,
    /// Digest of the confirm's arguments.
    pub args_sha256: &'a str,
    /// The confirming principal.
    pub sub: &'a str,
    /// The confirming principal's tenant.
    pub tenant: &'a str,
    /// Now, Unix seconds.
    pub now: u64,
}

/// Whether verified claims fit the presented call.
pub fn check_binding(claims: &ActionClaims, presented: &Presented<'_>) -> Result<(), ActionTokenError> {
    if claims.tool != presented.tool {
        return Err(ActionTokenError::Invalid("the action token is for another tool"));
    }
    if claims.sub != presented.sub || claims.tenant != presented.tenant {
        return Err(ActionTokenError::Invalid("the action token belongs to another principal"));
    }
    if claims.args_sha256 != presented.args_sha256 {
        return Err(ActionTokenError::Invalid("the arguments differ from the ones confirmed"));
    }
    if presented.now >= claims.exp {
        return Err(ActionTokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> ActionClaims {
        ActionClaims {
            jti: "01".into(),
            tool: "ads:createCampaign".into(),
            args_sha256: "abc".into(),
            sub: "agent-1".into(),
            tenant: "public".into(),
            iat: 100,
            exp: 400,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let key = ActionTokenKey::from_bytes([7; 32]);
        let token = key.issue(&claims());
        assert_eq!(key.verify(&token).unwrap(), claims());
        let other = ActionTokenKey::from_bytes([8; 32]);
        assert_eq!(other.verify(&token), Err(ActionTokenError::Invalid("bad action token signature")));
        let (head, tag) = token.rsplit_once('.').unwrap();
        let forged_body = URL_SAFE_NO_PAD.encode(br#"{"jti":"01","tool":"x"}"#);
        assert!(key.verify(&format!("at1.{forged_body}.{tag}")).is_err());
        assert!(key.verify(head).is_err());
        assert!(key.verify(&format!("{token}.x")).is_err());
        assert!(key.verify("").is_err());
        assert!(key.verify(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn binding_checks() {
        let c = claims();
        let ok = Presented {
            tool: "ads:createCampaign",
            args_sha256: "abc",
            sub: "agent-1",
            tenant: "public",
            now: 399,
        };
        assert_eq!(check_binding(&c, &ok), Ok(()));
        assert!(matches!(
            check_binding(&c, &Presented { tool: "ads:other", ..ok }),
            Err(ActionTokenError::Invalid(_))
        ));
        assert!(matches!(
            check_binding(&c, &Presented { sub: "x", ..ok }),
            Err(ActionTokenError::Invalid(_))
        ));
        assert!(matches!(
            check_binding(&c, &Presented { tenant: "x", ..ok }),
            Err(ActionTokenError::Invalid(_))
        ));
        assert!(matches!(
            check_binding(&c, &Presented { args_sha256: "x", ..ok }),
            Err(ActionTokenError::Invalid(_))
        ));
        assert_eq!(check_binding(&c, &Presented { now: 400, ..ok }), Err(ActionTokenError::Expired));
    }

    #[test]
    fn the_key_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("action-token.key");
        let token = ActionTokenKey::load_or_create(&path).unwrap().issue(&claims());
        assert!(ActionTokenKey::load_or_create(&path).unwrap().verify(&token).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
