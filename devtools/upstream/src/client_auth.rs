//! Client authentication at the development token and revocation
//! endpoints: HTTP Basic with the client secret, or `private_key_jwt`
//! (RFC 7523) — a `client_assertion` signed by a key of the JWKS file the
//! upstream trusts for clients (`--client-jwks`), with `iss` = `sub` = the
//! client id, `aud` this upstream's token endpoint, not expired, living at
//! most five minutes, and a `jti` never seen before (replays are refused);
//! an unknown `kid`, or Basic and an assertion together, are refused.

use super::{DEV_CLIENT_ID, DevUpstream, Secret, constant_time_eq};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertion ids remembered (to refuse replays); beyond, assertions are
/// refused until some expire.
const MAX_SEEN: usize = 10_000;
/// Longest lifetime an assertion may claim.
const MAX_LIFETIME_S: u64 = 300;

/// The `jti` and expiry of every unexpired assertion accepted.
#[derive(Default)]
pub struct SeenAssertions(Mutex<HashMap<String, u64>>);

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
    exp: u64,
}

/// Whether the request authenticates the development client.
pub fn authenticated(upstream: &DevUpstream, headers: &HeaderMap, form: &AssertionFields) -> bool {
    match (&form.client_assertion_type, &form.client_assertion) {
        // One method per request: an assertion with Basic too is refused.
        (Some(kind), Some(assertion))
            if kind == ASSERTION_TYPE && !headers.contains_key(header::AUTHORIZATION) =>
        {
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
    let jwk = match header.kid.as_deref() {
        Some(kid) => keys.find(kid).ok_or("unknown key id")?,
        None => keys.keys.first().ok_or("no key")?,
    };
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
    // The audience is the token endpoint (for revocation too).
    if !claims.aud.ends_with("/oauth/token") {
        return Err("not this upstream");
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if claims.exp > now + MAX_LIFETIME_S {
        return Err("an assertion that lives too long");
    }
    let mut seen = upstream.seen_assertions.0.lock().expect("lock");
    seen.retain(|_, exp| *exp + 60 >= now);
    if seen.len() >= MAX_SEEN {
        return Err("too many live assertions");
    }
    if seen.insert(claims.jti, claims.exp).is_some() {
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
