//! Authentication: a `Bearer` JWT becomes a [`Principal`].
//!
//! - Keys come from a JWKS file, a JWKS URL (cached; refetched on an unknown
//!   `kid` at most once per interval), or generated development keys
//!   ([`devkeys`]).
//! - The algorithm comes from the key ([`keys`]); `iss`, `aud`, `exp` and
//!   `sub` are required, `nbf` and `iat` are honoured, with a leeway.
//! - A verified token is cached by its digest until it expires ([`cache`]),
//!   so the hot path does not pay an RSA verification per request.
//!
//! Every failure is [`AuthError`], which the API renders as 401
//! `unauthenticated`; the messages name what was wrong with the token, never
//! the token.

pub mod cache;
pub mod devkeys;
pub mod keys;

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
    /// A JWKS URL, refetched on unknown `kid`s.
    Remote { url: String, client: reqwest::Client, last_fetch: tokio::sync::Mutex<LastFetch> },
}

/// When the remote JWKS was last fetched, and the digest of what came back.
struct LastFetch {
    at: Instant,
    digest: [u8; 32],
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
                Ok(fetched) => fetched,
                Err(e) => {
                    tracing::error!(%url, error = %format!("{e:#}"), "cannot fetch JWKS; retrying on demand");
                    (KeySet::default(), [0; 32])
                }
            };
            let last_fetch = tokio::sync::Mutex::new(LastFetch { at: Instant::now(), digest });
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
        let (principal, exp) = match self.verify(token, now) {
            Err(AuthError::UnknownKey) if self.refetch_keys().await => self.verify(token, now)?,
            other => other?,
        };
        let principal = Arc::new(principal);
        self.cache.insert(digest, principal.clone(), exp, now, self.generation.load(Ordering::Acquire));
        Ok(principal)
    }

    /// Verify signature and claims; returns the principal and `exp`.
    fn verify(&self, token: &str, now: u64) -> Result<(Principal, u64), AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
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
        Ok((principal, claims.exp))
    }

    /// Refetch a remote JWKS unless fetched within the refetch interval.
    /// Returns whether a lookup is worth retrying.
    async fn refetch_keys(&self) -> bool {
        let KeySource::Remote { url, client, last_fetch } = &self.source else { return false };
        let mut last = last_fetch.lock().await;
        if last.at.elapsed() < self.config.jwks_refetch_interval {
            // Fetched recently (perhaps by a request we queued behind): look
            // again in the current keys, without fetching.
            return true;
        }
        last.at = Instant::now();
        match fetch_jwks(client, url).await {
            // Unchanged: keep the key set, and with it every cached token.
            Ok((_, digest)) if digest == last.digest => true,
            Ok((keys, digest)) => {
                tracing::info!(%url, keys = keys.len(), "JWKS changed");
                last.digest = digest;
                self.keys.store(Arc::new(keys));
                self.generation.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(e) => {
                tracing::warn!(%url, error = %format!("{e:#}"), "JWKS refetch failed");
                false
            }
        }
    }

    /// Tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
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

/// Fetch and parse a JWKS; also returns the SHA-256 of the document.
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> anyhow::Result<(KeySet, [u8; 32])> {
    let mut response = client.get(url).send().await?.error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_JWKS_BYTES,
            "JWKS larger than {MAX_JWKS_BYTES} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    Ok((KeySet::from_jwks(&body)?, Sha256::digest(&body).into()))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
