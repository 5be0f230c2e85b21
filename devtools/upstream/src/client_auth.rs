//! Client authentication at the development token and revocation
//! endpoints: HTTP Basic with the client secret, or `private_key_jwt`
//! (RFC 7523) — a `client_assertion` signed by a key of the JWKS file the
//! upstream trusts for clients (`--client-jwks`), with `iss` = `sub` = the
//! client id, `aud` this upstream's endpoint, not expired, and a `jti` never
//! seen before (replays are refused).

use super::{DEV_CLIENT_ID, DevUpstream, Secret, constant_time_eq};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertion ids remembered (to refuse replays).
const MAX_SEEN: usize = 10_000;

/// `jti`s of the assertions accepted so far.
#[derive(Default)]
pub struct SeenAssertions(Mutex<HashSet<String>>);

/// The client-authentication fields of a form.
#[derive(Debug, Default, Deserialize)]
pub struct AssertionFields {
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[serde(default)]
    pub client_assertion_type: Option<String>,
    /// The signed assertion.
    #[serde(default)]
    pub client_assertion: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: String,
    jti: String,
}

/// Whether the request authenticates the development client.
pub fn authenticated(upstream: &DevUpstream, headers: &HeaderMap, form: &AssertionFields) -> bool {
    match (&form.client_assertion_type, &form.client_assertion) {
        (Some(kind), Some(assertion)) if kind == ASSERTION_TYPE => {
            let ok = verify(upstream, assertion).is_ok();
            if ok {
                upstream.stats.assertion_clients.fetch_add(1, Ordering::Relaxed);
            }
            ok
        }
        (None, None) => basic(headers, &upstream.config.client_secret),
        _ => false,
    }
}

fn verify(upstream: &DevUpstream, assertion: &str) -> Result<(), &'static str> {
    let keys = upstream.client_keys.load().ok_or("no client keys are trusted")?;
    let header = decode_header(assertion).map_err(|_| "not a JWT")?;
    let jwk =
        header.kid.as_deref().and_then(|kid| keys.find(kid)).or(keys.keys.first()).ok_or("unknown key")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "unusable key")?;
    // The algorithm comes from the key, never from the assertion.
    let alg = match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
        _ => return Err("unsupported key type"),
    };
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims =
        decode::<AssertionClaims>(assertion, &key, &validation).map_err(|_| "invalid assertion")?.claims;
    if claims.iss != DEV_CLIENT_ID || claims.sub != DEV_CLIENT_ID {
        return Err("not this client");
    }
    if !(claims.aud.ends_with("/oauth/token") || claims.aud.ends_with("/oauth/revoke")) {
        return Err("not this upstream");
    }
    let mut seen = upstream.seen_assertions.0.lock().expect("lock");
    if seen.len() >= MAX_SEEN {
        seen.clear();
    }
    if !seen.insert(claims.jti) {
        return Err("a replayed assertion");
    }
    Ok(())
}

/// HTTP Basic client authentication, compared in constant time.
fn basic(headers: &HeaderMap, secret: &Secret) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{DEV_CLIENT_ID}:{}", secret.expose());
    constant_time_eq(&Sha256::digest(&decoded), &Sha256::digest(expected.as_bytes()))
}
