//! Token exchange (RFC 8693) at the development token endpoint: a subject
//! token signed by a key of the host's development JWKS (audience
//! `fastmcp`, not expired) becomes an upstream token bound to its `sub` and
//! `tenant`; an `actor_token` that is a live client-credentials token of
//! this upstream makes the host the actor (`act`).

use super::{DEV_CLIENT_ID, DevUpstream};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Mutex;

/// The grant type of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Where the subject tokens' keys come from: a JWKS file (the host's
/// `.runtime/dev-jwks.json`, read at each exchange: the host may create it
/// after the upstream starts).
#[derive(Default)]
pub struct SubjectKeys(Mutex<Option<PathBuf>>);

impl SubjectKeys {
    /// Trust the keys in the JWKS file at `path`.
    pub fn trust(&self, path: PathBuf) {
        *self.0.lock().expect("lock") = Some(path);
    }

    pub(crate) fn load(&self) -> Option<JwkSet> {
        let path = self.0.lock().expect("lock").clone()?;
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// Who an exchanged token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The subject of the subject token.
    pub sub: String,
    /// Its tenant.
    pub tenant: String,
    /// The actor (the client whose token was the actor token), if any.
    pub act: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    tenant: String,
}

/// The user a subject token names, if it verifies.
pub fn verify_subject(upstream: &DevUpstream, token: &str) -> Result<User, &'static str> {
    let keys = upstream.subject_keys.load().ok_or("no subject keys are trusted")?;
    let header = decode_header(token).map_err(|_| "not a JWT")?;
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None => keys.keys.first(),
    }
    .ok_or("unknown key")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "unusable key")?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["fastmcp"]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let data = decode::<Claims>(token, &key, &validation).map_err(|_| "invalid or expired subject token")?;
    Ok(User { sub: data.claims.sub, tenant: data.claims.tenant, act: None })
}

/// The actor an actor token names: this upstream's own client, if the
/// token is one it issued by client credentials and still live.
pub fn verify_actor(upstream: &DevUpstream, token: &str) -> Result<String, &'static str> {
    match upstream.live_token(token) {
        Some(live) if live.user.is_none() => Ok(DEV_CLIENT_ID.to_owned()),
        _ => Err("invalid actor token"),
    }
}
