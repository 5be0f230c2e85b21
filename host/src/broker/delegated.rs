//! Delegated credentials: upstream tokens that name the caller, got by
//! exchanging the caller's verified inbound token (RFC 8693).
//!
//! Exchanged tokens are cached per (provider, SHA-256 of the caller's
//! token, scopes) — never shared between callers, since two callers never
//! present the same token — until shortly before they expire, in memory
//! only, bounded in entries ([`MAX_EXCHANGED`]) and in size
//! ([`MAX_CACHED_TOKEN_BYTES`]: a bigger token is used once and not kept).
//! Exchanges of one key are single-flight. A caller without a token (an
//! approved call run later, as its requester) gets no delegated credential.

use super::providers::Secret;
use super::{BrokerError, Issued, fingerprint};
use crate::clock::Clock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Exchanged tokens kept at most (all callers and providers together).
pub const MAX_EXCHANGED: usize = 4096;
/// Largest exchanged token kept in the cache.
pub const MAX_CACHED_TOKEN_BYTES: usize = 8 * 1024;

/// Who a call acts for: the identity delegated credentials carry upstream.
#[derive(Clone)]
pub struct OnBehalf {
    /// Subject.
    pub sub: String,
    /// Tenant.
    pub tenant: String,
    /// The caller's verified bearer token (`None` when the call was not
    /// made with one now: an approved call run later).
    pub token: Option<Secret>,
    /// The access token of the caller's own connection to the tool's
    /// provider (`oauth2_authorization_code`), read for this call.
    pub connection: Option<Secret>,
}

impl std::fmt::Debug for OnBehalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnBehalf")
            .field("sub", &self.sub)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

type Key = (String, [u8; 32], Vec<String>);

/// A cached exchanged token and until when it may be served (host clock ms).
#[derive(Default)]
struct Slot {
    token: Option<(Secret, i64)>,
}

/// The exchanged-token cache.
#[derive(Default)]
pub struct ExchangeCache {
    slots: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl ExchangeCache {
    /// The token for `provider` and `scopes` exchanged from `subject`:
    /// cached, or got from `exchange` (one at a time per key).
    pub async fn get<F, Fut>(
        &self,
        clock: &Clock,
        provider: &str,
        scopes: &[String],
        subject: &Secret,
        refresh_before: Duration,
        exchange: F,
    ) -> Result<Issued, BrokerError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<super::oauth::AccessToken, String>>,
    {
        let key: Key =
            (provider.to_owned(), Sha256::digest(subject.expose().as_bytes()).into(), scopes.to_vec());
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        let now = clock.now_unix_ms();
        if let Some((token, until)) = &slot.token
            && *until > now
        {
            return Ok(issued(token, *until - now));
        }
        let token = exchange().await.map_err(|reason| {
            tracing::warn!(provider, %reason, "token exchange failed");
            BrokerError::Unavailable(format!("provider `{provider}`: {reason}"))
        })?;
        let margin = refresh_before.min(token.expires_in / 2);
        let usable_for = (token.expires_in - margin).as_millis() as i64;
        let result = issued(&token.value, usable_for);
        tracing::info!(provider, fingerprint = %result.fingerprint, expires_in_s = token.expires_in.as_secs(), "exchanged a caller's token");
        slot.token = (token.value.expose().len() <= MAX_CACHED_TOKEN_BYTES)
            .then(|| (token.value, clock.now_unix_ms() + usable_for));
        Ok(result)
    }

    fn slot(&self, key: Key) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().expect("the exchange cache lock is never poisoned");
        if !slots.contains_key(&key) && slots.len() >= MAX_EXCHANGED {
            // Drop the slots nobody is using now; if every one is in use,
            // this exchange is not cached.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            if slots.len() >= MAX_EXCHANGED {
                return Arc::default();
            }
        }
        slots.entry(key).or_default().clone()
    }
}

fn issued(value: &Secret, ms: i64) -> Issued {
    Issued {
        value: value.clone(),
        expires_in: Some(Duration::from_millis(ms.max(0) as u64)),
        fingerprint: fingerprint(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An exchange that names the subject in the token it issues.
    async fn fake(
        subject: String,
        calls: Arc<AtomicU32>,
    ) -> Result<super::super::oauth::AccessToken, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(super::super::oauth::AccessToken {
            value: Secret::new(format!("upstream-for-{subject}")),
            expires_in: Duration::from_secs(300),
            refresh: None,
        })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn tokens_are_cached_per_caller_and_exchanged_once_per_caller() {
        let (cache, clock, calls) =
            (Arc::new(ExchangeCache::default()), Clock::default(), Arc::new(AtomicU32::new(0)));
        let scopes = vec!["read".to_owned()];
        let tasks = (0..32).map(|i| {
            let subject = if i % 2 == 0 { "token-of-alice" } else { "token-of-bob" };
            let (cache, clock, calls, scopes) = (cache.clone(), clock.clone(), calls.clone(), scopes.clone());
            tokio::spawn(async move {
                let secret = Secret::new(subject.to_owned());
                let issued = cache
                    .get(&clock, "p", &scopes, &secret, Duration::from_secs(30), || {
                        fake(subject.to_owned(), calls)
                    })
                    .await
                    .unwrap();
                (subject, issued.value.expose().to_owned())
            })
        });
        for task in tasks {
            let (subject, token) = task.await.unwrap();
            assert_eq!(token, format!("upstream-for-{subject}"), "never another caller's token");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one exchange per caller, the rest cached");
        // Shortly before expiry the cached token is no longer served.
        clock.advance(Duration::from_secs(271));
        let secret = Secret::new("token-of-alice".to_owned());
        cache
            .get(&clock, "p", &scopes, &secret, Duration::from_secs(30), || fake("x".into(), calls.clone()))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_exchange_names_the_provider_not_the_token() {
        let cache = ExchangeCache::default();
        let secret = Secret::new("caller-token".to_owned());
        let error = cache
            .get(&Clock::default(), "crm", &[], &secret, Duration::from_secs(30), || async {
                Err::<super::super::oauth::AccessToken, _>("token endpoint at idp answered 400".to_owned())
            })
            .await
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(text.contains("crm") && !text.contains("caller-token"), "{text}");
    }
}
