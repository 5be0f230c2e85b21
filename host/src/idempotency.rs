//! Idempotency keys: the first outcome of a request is stored for 24 hours
//! and replayed for the same key and the same request; the same key with a
//! different request is refused, and a duplicate that arrives while the first
//! is still running is refused.
//!
//! Keys are scoped to endpoint, tenant, subject and tool
//! ([`crate::store::keys`]). A request first reserves its key with an atomic
//! insert-if-absent, so exactly one request per key runs; its outcome then
//! replaces the reservation. Outcomes of requests that never reached the tool
//! (the host was overloaded, a token was refused) release the key instead,
//! so a retry can still run.
//!
//! Bounded: each caller (tenant + subject) holds at most `max_keys` live
//! keys, and a reply is kept only up to `max_reply_bytes` — a bigger one is
//! still answered the first time, and a retry under its key is told that
//! the call ran but its reply was not kept (it never runs twice).
//!
//! Transport-free: a key arrives as a string (REST reads it from the
//! `Idempotency-Key` header, MCP from the request's `_meta`).

use crate::store::{KeyValueStore, StoreError, keys};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long outcomes are kept.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why a key does not proceed.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// Not 1..=255 visible ASCII characters.
    #[error("an idempotency key must be 1..={MAX_KEY_LEN} visible ASCII characters")]
    Malformed,
    /// The first request under this key is still running.
    #[error("in progress")]
    InProgress,
    /// The key was used with a different request.
    #[error("reused with a different request")]
    Reused,
    /// The caller holds as many live keys as allowed.
    #[error("quota of {0} keys exceeded")]
    QuotaExceeded(u64),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Check a key's shape.
pub fn check_key(key: &str) -> Result<(), IdempotencyError> {
    let good = !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if good { Ok(()) } else { Err(IdempotencyError::Malformed) }
}

/// What the store holds under a key; `R` is the caller's kept outcome
/// (the pipeline's typed `StoredOutcome`).
#[derive(Serialize, Deserialize)]
enum Record<R> {
    InProgress { fingerprint: String },
    Done { fingerprint: String, reply: R },
}

/// A reserved key, to be settled with [`finish`] or [`release`].
#[derive(Debug)]
pub struct Reservation {
    store_key: String,
    fingerprint: String,
    caller_set: String,
}

/// What to do with a request that carries a key.
pub enum Begin<R> {
    /// First of its key: run it.
    Proceed(Reservation),
    /// Seen before with the same request: answer this.
    Replay(R),
}

/// Who holds a key, and what it is.
pub struct KeyOf<'a> {
    /// `invoke` or `confirm`.
    pub endpoint: &'a str,
    /// The caller's tenant.
    pub tenant: &'a str,
    /// The caller's subject.
    pub sub: &'a str,
    /// The tool id.
    pub tool: &'a str,
    /// The key as the caller sent it.
    pub key: &'a str,
}

/// Reserve the key (within the caller's quota of `max_keys`), or say how to
/// answer a duplicate. `fingerprint` identifies the request.
pub async fn begin<R: DeserializeOwned>(
    store: &dyn KeyValueStore,
    key: KeyOf<'_>,
    max_keys: u64,
    fingerprint: String,
    in_progress_ttl: Duration,
) -> Result<Begin<R>, IdempotencyError> {
    let store_key = keys::idempotency(key.endpoint, key.tenant, key.sub, key.tool, key.key);
    let caller_set = keys::idempotency_keys_of(key.tenant, key.sub);
    // A key already held (a retry) is admitted whatever the count.
    if !store.admit(&caller_set, &store_key, RECORD_TTL, max_keys).await? {
        return Err(IdempotencyError::QuotaExceeded(max_keys));
    }
    let reserving = serde_json::to_vec(&Record::<()>::InProgress { fingerprint: fingerprint.clone() })
        .expect("records serialise");
    // Twice at most: a record can expire between our insert and our read.
    for _ in 0..2 {
        if store.insert_if_absent(&store_key, &reserving, in_progress_ttl).await? {
            return Ok(Begin::Proceed(Reservation { store_key, fingerprint, caller_set }));
        }
        let Some(bytes) = store.get(&store_key).await? else { continue };
        let record: Record<R> = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError(format!("unreadable idempotency record: {e}")))?;
        return match record {
            Record::InProgress { fingerprint: first } if first == fingerprint => {
                Err(IdempotencyError::InProgress)
            }
            Record::Done { fingerprint: first, reply } if first == fingerprint => Ok(Begin::Replay(reply)),
            Record::InProgress { .. } | Record::Done { .. } => Err(IdempotencyError::Reused),
        };
    }
    Err(IdempotencyError::InProgress)
}

/// Store the outcome for replays: `reply`, or `too_large()` in its place
/// when the reply's JSON is over `max_reply_bytes`.
pub async fn finish<R: Serialize>(
    store: &dyn KeyValueStore,
    reservation: Reservation,
    reply: R,
    max_reply_bytes: usize,
    too_large: impl FnOnce() -> R,
) -> Result<(), StoreError> {
    let size = serde_json::to_vec(&reply).map_or(usize::MAX, |b| b.len());
    let reply = if size > max_reply_bytes { too_large() } else { reply };
    let record = Record::Done { fingerprint: reservation.fingerprint, reply };
    let bytes = serde_json::to_vec(&record).expect("records serialise");
    store.put(&reservation.store_key, &bytes, RECORD_TTL).await
}

/// Give the key back: the request never reached the tool.
pub async fn release(store: &dyn KeyValueStore, reservation: Reservation) {
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

    #[test]
    fn keys_are_checked() {
        assert!(check_key("order-42").is_ok());
        assert!(check_key(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", &"k".repeat(256), "tab\there"] {
            assert!(matches!(check_key(bad), Err(IdempotencyError::Malformed)), "{bad:?}");
        }
    }
}
