//! Authentication: a `Bearer` JWT becomes a [`Principal`].
//!
//! - Keys come from a JWKS file, a JWKS URL, or generated development keys
//!   ([`devkeys`]). A remote JWKS is refetched on a schedule (its
//!   `Cache-Control: max-age` within bounds, else every few minutes), so a
//!   key the identity provider removed stops verifying, and on an unknown
//!   `kid` at most once per interval.
//! - The algorithm comes from the key ([`keys`]); `iss`, `aud`, `exp` and
//!   `sub` are required, `nbf` and `iat` are honoured, with a leeway. A
//!   header whose `crit` names any extension is rejected (the host
//!   understands none; RFC 7515 §4.1.11), and `typ` is enforced when
//!   configured (`at+jwt`, RFC 9068).
//! - A verified token is cached by its digest until it expires ([`cache`]),
//!   so the hot path does not pay an RSA verification per request. The
//!   cache entry carries the key-set generation read *before* the keys it
//!   was verified with, so a key rotation always invalidates it.
//!
//! Every failure is [`AuthError`], which the API renders as 401
//! `unauthenticated`; the messages name what was wrong with the token, never
//! the token.

pub mod cache;
pub mod devkeys;
pub mod extract;
pub mod failures;
pub mod keys;

pub use extract::{
    APPROVALS_DECIDE_SCOPE, APPROVALS_READ_SCOPE, CATALOG_SCOPE, HEALTH_SCOPE, INVOKE_SCOPE, Verdict,
    authenticate, caller_of, require_scope,
};

use crate::config::AuthConfig;
use crate::principal::Principal;
use anyhow::Context;
use arc_swap::ArcSwap;
use axum::http::HeaderValue;
use cache::TokenCache;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use keys::KeySet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Largest JWKS document fetched from a URL.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The claims FastMCP reads from a token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: a string or an array (checked by the verifier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    /// Subject.
    pub sub: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Tenant (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scopes as an array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Scopes as a space-separated string (OAuth 2 style).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// Not `Bearer <token>`.
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    /// Longer than the configured limit.
    #[error("the token is longer than {0} bytes")]
    TooLarge(usize),
    /// Not a JWT, or a claim of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// No key with the token's `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The header's `alg` is not the key's algorithm.
    #[error("algorithm not allowed for this key")]
    AlgorithmNotAllowed,
    /// Signature, expiry, issuer, audience… did not verify.
    #[error("{0}")]
    Invalid(String),
}

/// Where keys come from.
enum KeySource {
    /// A file or the development keys: loaded once.
    Static,
    /// A JWKS URL, refetched on a schedule and on unknown `kid`s.
    Remote { url: String, client: reqwest::Client, last_fetch: tokio::sync::Mutex<LastFetch> },
}

/// A fetched JWKS: the keys, the document's digest, and its `max-age`.
struct Fetched {
    keys: KeySet,
    digest: [u8; 32],
    max_age: Option<std::time::Duration>,
}

/// When the remote JWKS was last fetched, the digest of what came back, and
/// the `max-age` it was served with.
struct LastFetch {
    at: Instant,
    digest: [u8; 32],
    max_age: Option<std::time::Duration>,
}

/// Verifies bearer tokens.
pub struct Authenticator {
    config: AuthConfig,
    keys: ArcSwap<KeySet>,
    generation: AtomicU64,
    source: KeySource,
    cache: TokenCache,
    /// Whether the development keys are in use.
    pub dev_keys: bool,
}

impl Authenticator {
    /// Keys from the configured JWKS file or URL, or the development keys
    /// under `runtime_dir` (generated if missing).
    pub async fn start(config: AuthConfig, runtime_dir: &Path) -> anyhow::Result<Self> {
        let cache = TokenCache::new(config.token_cache_size);
        let mut dev_keys = false;
        let (keys, source) = if let Some(file) = &config.jwks_file {
            let bytes = std::fs::read(file).with_context(|| format!("reading JWKS {}", file.display()))?;
            let keys = KeySet::from_jwks(&bytes).with_context(|| format!("JWKS {}", file.display()))?;
            (keys, KeySource::Static)
        } else if let Some(url) = &config.jwks_url {
            let client = reqwest::Client::builder().timeout(config.jwks_timeout).build()?;
            let (keys, digest) = match fetch_jwks(&client, url).await {
                Ok(fetched) => (fetched.keys, fetched.digest),
                Err(e) => {
                    tracing::error!(%url, error = %format!("{e:#}"), "cannot fetch JWKS; retrying on demand");
                    (KeySet::default(), [0; 32])
                }
            };
            let last_fetch = tokio::sync::Mutex::new(LastFetch { at: Instant::now(), digest, max_age: None });
            (keys, KeySource::Remote { url: url.clone(), client, last_fetch })
        } else {
            let files = devkeys::DevKeyFiles::in_dir(runtime_dir);
            let generated = files.ensure()?;
            dev_keys = true;
            tracing::warn!(
                jwks = %files.jwks.display(),
                generated,
                "running with development keys: mint tokens with `fastmcp token`; configure FASTMCP_JWKS_FILE or FASTMCP_JWKS_URL in production"
            );
            let bytes = std::fs::read(&files.jwks)?;
            (KeySet::from_jwks(&bytes).context("development JWKS")?, KeySource::Static)
        };
        Ok(Self {
            config,
            keys: ArcSwap::from_pointee(keys),
            generation: AtomicU64::new(1),
            source,
            cache,
            dev_keys,
        })
    }

    /// Authenticate an `Authorization` header value.
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Arc<Principal>, AuthError> {
        let token = bearer_token(authorization)?;
        if token.len() > self.config.max_token_bytes {
            return Err(AuthError::TooLarge(self.config.max_token_bytes));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(principal) = self.cache.get(&digest, now, generation) {
            return Ok(principal);
        }
        // The generation is read before the keys each verification uses: a
        // rotation stores the keys first, then bumps the generation, so an
        // entry is never filed under a generation newer than its keys.
        let (principal, exp, generation) = match self.verify(token, now, generation) {
            Err(AuthError::UnknownKey) if self.refetch_keys(false).await => {
                self.verify(token, now, self.generation.load(Ordering::Acquire))?
            }
            other => other?,
        };
        let principal = Arc::new(principal);
        self.cache.insert(digest, principal.clone(), exp, now, generation);
        Ok(principal)
    }

    /// Verify signature and claims with the current keys; returns the
    /// principal, `exp`, and `generation` (read before the keys were).
    fn verify(&self, token: &str, now: u64, generation: u64) -> Result<(Principal, u64, u64), AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if let Some(crit) = &header.crit {
            return Err(AuthError::Invalid(format!(
                "critical header extensions are not understood ({} named)",
                crit.len()
            )));
        }
        if let Some(required) = &self.config.required_typ {
            let typ = header.typ.as_deref().unwrap_or("");
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            if !typ.eq_ignore_ascii_case(required) {
                return Err(AuthError::Invalid(format!("the token's `typ` is not `{required}`")));
            }
        }
        let keys = self.keys.load();
        let key = match &header.kid {
            Some(kid) => keys.get(kid),
            None => keys.only(),
        }
        .ok_or(AuthError::UnknownKey)?;
        if header.alg != key.algorithm {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.config.leeway_s;
        validation.validate_nbf = true;
        let claims = decode::<Claims>(token, &key.key, &validation).map_err(|e| invalid(e.kind()))?.claims;
        if claims.iat.is_some_and(|iat| iat > now + self.config.leeway_s) {
            return Err(AuthError::Invalid("token issued in the future".into()));
        }
        let tenant = claims
            .tenant
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthError::Invalid("missing `tenant` claim".into()))?;
        if claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty `sub` claim".into()));
        }
        let mut scopes = claims.scopes.unwrap_or_default();
        if let Some(scope) = claims.scope {
            scopes.extend(scope.split_whitespace().map(str::to_owned));
        }
        let principal = Principal { sub: claims.sub, tenant, roles: claims.roles, scopes };
        Ok((principal, claims.exp, generation))
    }

    /// Refetch a remote JWKS — on schedule (`scheduled`), or for an unknown
    /// `kid` unless fetched within the refetch interval. Returns whether a
    /// lookup is worth retrying, and the next scheduled refresh is due
    /// after [`Authenticator::refresh_after`].
    async fn refetch_keys(&self, scheduled: bool) -> bool {
        let KeySource::Remote { url, client, last_fetch } = &self.source else { return false };
        let mut last = last_fetch.lock().await;
        if !scheduled && last.at.elapsed() < self.config.jwks_refetch_interval {
            // Fetched recently (perhaps by a request we queued behind): look
            // again in the current keys, without fetching.
            return true;
        }
        last.at = Instant::now();
        match fetch_jwks(client, url).await {
            Ok(fetched) => {
                last.max_age = fetched.max_age;
                // Unchanged: keep the key set, and with it every cached token.
                if fetched.digest != last.digest {
                    tracing::info!(%url, keys = fetched.keys.len(), "JWKS changed");
                    last.digest = fetched.digest;
                    self.keys.store(Arc::new(fetched.keys));
                    self.generation.fetch_add(1, Ordering::AcqRel);
                }
                true
            }
            Err(e) => {
                tracing::warn!(%url, error = %format!("{e:#}"), "JWKS refetch failed");
                false
            }
        }
    }

    /// How long until the next scheduled JWKS refresh: the last response's
    /// `max-age` within the configured bounds, else the refresh interval.
    async fn refresh_after(&self) -> Option<std::time::Duration> {
        let KeySource::Remote { last_fetch, .. } = &self.source else { return None };
        let (min, max) = (self.config.jwks_min_max_age, self.config.jwks_max_max_age);
        let max_age = last_fetch.lock().await.max_age;
        Some(max_age.map_or(self.config.jwks_refresh_interval, |age| age.clamp(min, max)))
    }

    /// Refresh a remote JWKS on its schedule until `stop` turns true.
    pub async fn refresh_keys_until(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        while let Some(wait) = self.refresh_after().await {
            tokio::select! {
                () = tokio::time::sleep(wait) => { self.refetch_keys(true).await; }
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
            }
        }
    }

    /// Tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

/// The bearer token of an `Authorization` header value, kept as a secret:
/// what a delegated credential is exchanged from (after the request was
/// authenticated with the same header).
pub fn presented_token(authorization: Option<&HeaderValue>) -> Option<crate::broker::providers::Secret> {
    bearer_token(authorization).ok().map(|token| crate::broker::providers::Secret::new(token.to_owned()))
}

fn bearer_token(authorization: Option<&HeaderValue>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::Missing)?.to_str().map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}

fn invalid(kind: &ErrorKind) -> AuthError {
    let reason = match kind {
        ErrorKind::ExpiredSignature => "token expired".to_owned(),
        ErrorKind::ImmatureSignature => "token not yet valid (nbf)".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidSignature => "invalid signature".to_owned(),
        ErrorKind::InvalidAlgorithm => return AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(claim) => format!("missing `{claim}` claim"),
        ErrorKind::InvalidSubject => "invalid subject".to_owned(),
        other => return AuthError::Malformed(format!("{other:?}")),
    };
    AuthError::Invalid(reason)
}

/// Fetch and parse a JWKS, with the SHA-256 of the document and its
/// `Cache-Control: max-age`.
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> anyhow::Result<Fetched> {
    let mut response = client.get(url).send().await?.error_for_status()?;
    let max_age = response
        .headers()
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|directive| directive.trim().strip_prefix("max-age=")?.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_JWKS_BYTES,
            "JWKS larger than {MAX_JWKS_BYTES} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { keys: KeySet::from_jwks(&body)?, digest: Sha256::digest(&body).into(), max_age })
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
