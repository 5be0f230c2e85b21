//! `Idempotency-Key`: the first outcome of a request is stored for 24 hours
//! and replayed for the same key and the same request; the same key with a
//! different request is refused (422), and a duplicate that arrives while the
//! first is still running is refused (409).
//!
//! Keys are scoped to endpoint, tenant, subject and tool. A request first
//! reserves its key with an atomic insert-if-absent, so exactly one request
//! per key runs; its outcome then replaces the reservation. Outcomes of
//! requests that never reached the tool (the host was overloaded, a token was
//! refused) release the key instead, so a retry can still run.
//!
//! Bounded: each caller (tenant + subject) holds at most
//! `max_keys_per_caller` live keys (more: 429 `idempotency_quota_exceeded`),
//! and a reply is kept only up to `max_reply_bytes` — a bigger one is still
//! answered the first time, and a retry under its key gets 409
//! `idempotency_reply_too_large` (the call is never run twice).

use crate::error::ApiError;
use crate::store::StateStore;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header on replays.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long outcomes are kept.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// A stored outcome: status and JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// Whether the body is problem details.
    pub problem: bool,
}

#[derive(Serialize, Deserialize)]
enum Record {
    InProgress { fingerprint: String },
    Done { fingerprint: String, reply: StoredReply },
}

/// A reserved key, to be settled with [`finish`] or [`release`].
#[derive(Debug)]
pub struct Reservation {
    store_key: String,
    fingerprint: String,
    caller_set: String,
}

/// What to do with a request that carries a key.
pub enum Begin {
    /// First of its key: run it.
    Proceed(Reservation),
    /// Seen before with the same request: answer this.
    Replay(StoredReply),
}

/// The key from the headers: absent, valid, or a 400.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1..={MAX_KEY_LEN} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

/// The store key for (endpoint, tenant, subject, tool, key).
pub fn scoped_key(endpoint: &str, tenant: &str, sub: &str, tool: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [endpoint, tenant, sub, tool, key] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!("idem:{}", hex::encode(hasher.finalize()))
}

/// The set of a caller's live keys.
fn caller_set(tenant: &str, sub: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [tenant, sub] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!("idem-keys:{}", hex::encode(hasher.finalize()))
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "idempotency store failed");
    ApiError::StateUnavailable
}

/// Who holds a key, and how many keys they may hold.
pub struct Holder<'a> {
    /// The caller's tenant.
    pub tenant: &'a str,
    /// The caller's subject.
    pub sub: &'a str,
    /// Live keys allowed per caller.
    pub max_keys: u64,
}

/// Reserve the key (within the caller's quota), or say how to answer a
/// duplicate.
pub async fn begin(
    store: &dyn StateStore,
    holder: Holder<'_>,
    store_key: String,
    fingerprint: String,
    in_progress_ttl: Duration,
) -> Result<Begin, ApiError> {
    let caller_set = caller_set(holder.tenant, holder.sub);
    // A key already held (a retry) is admitted whatever the count.
    if !store.admit(&caller_set, &store_key, RECORD_TTL, holder.max_keys).await.map_err(store_error)? {
        return Err(ApiError::IdempotencyQuotaExceeded { limit: holder.max_keys });
    }
    let reserving = serde_json::to_vec(&Record::InProgress { fingerprint: fingerprint.clone() })
        .expect("records serialise");
    // Twice at most: a record can expire between our insert and our read.
    for _ in 0..2 {
        if store.insert_if_absent(&store_key, &reserving, in_progress_ttl).await.map_err(store_error)? {
            return Ok(Begin::Proceed(Reservation { store_key, fingerprint, caller_set }));
        }
        let Some(bytes) = store.get(&store_key).await.map_err(store_error)? else { continue };
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
            tracing::error!(error = %e, "unreadable idempotency record");
            ApiError::StateUnavailable
        })?;
        return match record {
            Record::InProgress { fingerprint: first } if first == fingerprint => {
                Err(ApiError::IdempotencyInProgress)
            }
            Record::Done { fingerprint: first, reply } if first == fingerprint => Ok(Begin::Replay(reply)),
            Record::InProgress { .. } | Record::Done { .. } => Err(ApiError::IdempotencyKeyReused),
        };
    }
    Err(ApiError::IdempotencyInProgress)
}

/// Store the outcome for replays: `reply`, or `too_large()` in its place
/// when the reply's JSON is over `max_reply_bytes`.
pub async fn finish(
    store: &dyn StateStore,
    reservation: Reservation,
    reply: StoredReply,
    max_reply_bytes: usize,
    too_large: impl FnOnce() -> StoredReply,
) -> Result<(), ApiError> {
    let size = serde_json::to_vec(&reply.body).map_or(usize::MAX, |b| b.len());
    let reply = if size > max_reply_bytes { too_large() } else { reply };
    let record = Record::Done { fingerprint: reservation.fingerprint, reply };
    let bytes = serde_json::to_vec(&record).expect("records serialise");
    store.put(&reservation.store_key, &bytes, RECORD_TTL).await.map_err(store_error)
}

/// Give the key back: the request never reached the tool.
pub async fn release(store: &dyn StateStore, reservation: Reservation) {
    if let Err(e) = store.delete(&reservation.store_key).await {
        // The reservation expires on its own; until then retries get 409.
        tracing::warn!(error = %e, "could not release an idempotency key");
    }
    if let Err(e) = store.forget(&reservation.caller_set, &reservation.store_key).await {
        tracing::warn!(error = %e, "could not return an idempotency key to its caller's quota");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_are_validated() {
        let mut headers = HeaderMap::new();
        assert_eq!(key_from_headers(&headers).unwrap(), None);
        headers.insert(HEADER, HeaderValue::from_static("order-42"));
        assert_eq!(key_from_headers(&headers).unwrap().as_deref(), Some("order-42"));
        for bad in ["", "has space", &"k".repeat(256)] {
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            assert!(matches!(key_from_headers(&headers), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
        headers.insert(HEADER, HeaderValue::from_str(&"k".repeat(255)).unwrap());
        assert!(key_from_headers(&headers).is_ok());
    }

    #[test]
    fn scopes_do_not_collide() {
        let a = scoped_key("invoke", "t", "s", "x:y", "k");
        assert_ne!(a, scoped_key("confirm", "t", "s", "x:y", "k"));
        assert_ne!(a, scoped_key("invoke", "t2", "s", "x:y", "k"));
        assert_ne!(scoped_key("invoke", "a", "bc", "t", "k"), scoped_key("invoke", "ab", "c", "t", "k"));
    }
}
