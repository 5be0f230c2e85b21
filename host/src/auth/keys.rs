//! Verification keys: a JWKS (file, URL, or the generated development set)
//! turned into `kid → (key, algorithm)`.
//!
//! The algorithm belongs to the key — from the JWK's `alg`, or implied by its
//! type and curve — and a token whose header names another algorithm is
//! rejected. Symmetric (`oct`) keys are refused outright: a public key set
//! has no business holding shared secrets, and accepting them is how HS/RS
//! confusion attacks start.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;

/// One verification key and the only algorithm it verifies.
pub struct VerifyingKey {
    /// The key.
    pub key: DecodingKey,
    /// Its algorithm.
    pub algorithm: Algorithm,
}

/// Keys by `kid`.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

/// A JWKS that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// Not a JWKS document.
    #[error("not a JWKS document: {0}")]
    Parse(String),
    /// A key without a `kid`.
    #[error("key #{0} has no `kid`")]
    MissingKid(usize),
    /// A key of a type or algorithm that is not accepted.
    #[error("key `{kid}`: {reason}")]
    Unsupported {
        /// The key id.
        kid: String,
        /// Why.
        reason: String,
    },
}

impl KeySet {
    /// Parse a JWKS document.
    pub fn from_jwks(json: &[u8]) -> Result<Self, KeySetError> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| KeySetError::Parse(e.to_string()))?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let kid = jwk.common.key_id.clone().ok_or(KeySetError::MissingKid(i))?;
            let unsupported = |reason: String| KeySetError::Unsupported { kid: kid.clone(), reason };
            let algorithm = algorithm_of(jwk).map_err(unsupported)?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| unsupported(e.to_string()))?;
            keys.insert(kid, VerifyingKey { key, algorithm });
        }
        Ok(Self { keys })
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// The only key, for tokens without a `kid` when the set has exactly one.
    pub fn only(&self) -> Option<&VerifyingKey> {
        (self.keys.len() == 1).then(|| self.keys.values().next()).flatten()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The algorithm a JWK verifies: its `alg` if given (and consistent with the
/// key type), otherwise the one its type implies.
fn algorithm_of(jwk: &Jwk) -> Result<Algorithm, String> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            ref other => return Err(format!("unsupported curve {other:?}")),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are not accepted".into()),
        _ => return Err("unsupported key type".into()),
    };
    let Some(declared) = jwk.common.key_algorithm else { return Ok(implied) };
    let declared = match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        other => return Err(format!("algorithm {other:?} is not accepted")),
    };
    let family_matches = match implied {
        Algorithm::RS256 => matches!(
            declared,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        other => declared == other,
    };
    if family_matches { Ok(declared) } else { Err(format!("`alg` {declared:?} does not fit the key type")) }
}
