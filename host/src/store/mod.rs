//! Shared state for confirmations and idempotency: a small key-value trait
//! with TTLs, and its embedded, durable default ([`embedded`]).
//!
//! The trait is the whole contract a backend must meet — atomic
//! insert-if-absent, overwrite, get and delete, each with an expiry, and
//! bounded sets whose members expire (for per-caller quotas) — so a Redis
//! backend (`SET NX PX`, `SET PX`, `GET`, `DEL`, a sorted set in one Lua
//! script) drops in without touching its callers. Expired entries are absent
//! for every operation.

pub mod embedded;
pub mod keys;
pub mod redis;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, for a dyn-compatible async trait.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not answer; callers fail closed.
#[derive(Debug, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StoreError(pub String);

/// Key-value state with expiry.
pub trait KeyValueStore: Send + Sync + 'static {
    /// Store `value` under `key` for `ttl` unless a live entry exists.
    /// Returns whether it was stored. Atomic across every user of the store.
    fn insert_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool>;

    /// Store `value` under `key` for `ttl`, replacing any entry.
    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;

    /// The live value under `key`.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Remove `key` (no error if absent).
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Add `member` (for `ttl`) to the bounded set `set`, unless the set
    /// already holds `max` live members. Returns whether `member` is in the
    /// set now (a member already present counts as admitted). Atomic.
    fn admit<'a>(&'a self, set: &'a str, member: &'a str, ttl: Duration, max: u64) -> StoreFuture<'a, bool>;

    /// Remove `member` from `set` (no error if absent).
    fn forget<'a>(&'a self, set: &'a str, member: &'a str) -> StoreFuture<'a, ()>;

    /// The live members of `set` (at most the `max` it was admitted with),
    /// in no particular order.
    fn members<'a>(&'a self, set: &'a str) -> StoreFuture<'a, Vec<String>>;
}

/// The key of a set member in a flat key space.
pub(crate) fn member_key(set: &str, member: &str) -> String {
    format!("{set}\u{0}{member}")
}
