//! A usable access token for a call: the stored one while fresh, else a
//! refresh — in a task of its own, one at a time per connection on this
//! replica (a lock) and across replicas (a claim in the store, held at
//! most the token request's timeout and a margin; the others poll the
//! record until it is fresh, or the claim is gone).

use super::{Connections, keys};
use crate::broker::oauth;
use crate::broker::providers::Secret;
use crate::principal::Principal;
use std::time::Duration;

/// How often a replica that lost the refresh claim looks for the winner's
/// token.
const REFRESH_POLL: Duration = Duration::from_millis(100);

/// Why a call cannot have a connection's token.
#[derive(Debug)]
pub enum Unconnected {
    /// The user has no (usable) connection: they must connect.
    Required,
    /// The provider could not refresh the token now.
    Unavailable(String),
    /// The store could not answer.
    Store,
}

impl Connections {
    /// A usable access token of `user`'s connection to `name`: stored, or
    /// refreshed now.
    pub async fn access_token(&self, user: &Principal, name: &str) -> Result<Secret, Unconnected> {
        if self.provider(name).is_none() {
            return Err(Unconnected::Required);
        }
        match self.load(user, name).await.map_err(|_| Unconnected::Store)? {
            None => return Err(Unconnected::Required),
            Some(tokens) if tokens.refresh_at_ms > self.now() => return Ok(Secret::new(tokens.access_token)),
            Some(_) => {}
        }
        // A task of its own: once the provider rotated the refresh token,
        // the new one is stored even if this call's client went away.
        let (this, user, name) = (self.clone(), user.clone(), name.to_owned());
        tokio::spawn(async move { this.refresh_once(&user, &name).await })
            .await
            .unwrap_or_else(|_| Err(Unconnected::Unavailable("the refresh task failed".into())))
    }

    /// Refresh under both claims, or wait for whoever holds them.
    async fn refresh_once(&self, user: &Principal, name: &str) -> Result<Secret, Unconnected> {
        let record_key = keys::connection(&user.tenant, &user.sub, name);
        let lock = self.vault().refresh_lock(&record_key);
        let _held = lock.lock().await;
        let claim = keys::connection_refresh(&user.tenant, &user.sub, name);
        let Some(claimed) = self.claim(&claim).await.map_err(|_| Unconnected::Store)? else {
            return self.await_refresh_elsewhere(user, name, &claim).await;
        };
        let result = self.refresh(user, name).await;
        self.release(&claim, claimed).await;
        result
    }

    /// Claim `claim` for one refresh (or a forget) across replicas: when
    /// it was taken, or `None` if another holds it.
    pub(super) async fn claim(
        &self,
        claim: &str,
    ) -> Result<Option<tokio::time::Instant>, crate::store::StoreError> {
        let at = tokio::time::Instant::now();
        let won = self.store().insert_if_absent(claim, b"1", self.vault().refresh_bound).await?;
        Ok(won.then_some(at))
    }

    /// Release a claim taken at `at` — unless it may have expired and been
    /// taken by another replica meanwhile (then it expires by itself).
    pub(super) async fn release(&self, claim: &str, at: tokio::time::Instant) {
        if at.elapsed() < self.vault().refresh_bound {
            let _ = self.store().delete(claim).await;
        }
    }

    /// Another replica is refreshing: wait (within the claim's bound) for
    /// its fresh token, or until its claim is gone without one.
    async fn await_refresh_elsewhere(
        &self,
        user: &Principal,
        name: &str,
        claim: &str,
    ) -> Result<Secret, Unconnected> {
        let deadline = tokio::time::Instant::now() + self.vault().refresh_bound;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(REFRESH_POLL).await;
            match self.load(user, name).await.map_err(|_| Unconnected::Store)? {
                None => return Err(Unconnected::Required),
                Some(tokens) if tokens.refresh_at_ms > self.now() => {
                    return Ok(Secret::new(tokens.access_token));
                }
                Some(_) => {}
            }
            if self.store().get(claim).await.map_err(|_| Unconnected::Store)?.is_none() {
                break;
            }
        }
        Err(Unconnected::Unavailable(format!(
            "provider `{name}`: a refresh on another replica did not succeed"
        )))
    }

    /// Refresh the user's access token (holding both claims). The record is
    /// sealed again with the current key (rotation).
    async fn refresh(&self, user: &Principal, name: &str) -> Result<Secret, Unconnected> {
        let provider = self.provider(name).ok_or(Unconnected::Required)?;
        // Read again under the claim: another holder may have refreshed.
        let Some(tokens) = self.load(user, name).await.map_err(|_| Unconnected::Store)? else {
            return Err(Unconnected::Required);
        };
        if tokens.refresh_at_ms > self.now() {
            return Ok(Secret::new(tokens.access_token));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            self.end_if_unchanged(user, name, None, "expired").await;
            return Err(Unconnected::Required);
        };
        match oauth::refresh(&self.client(provider), &Secret::new(refresh_token.clone())).await {
            Ok(issued) => {
                let refreshed =
                    self.tokens_of(provider, issued, Some(refresh_token.clone()), Some(tokens.connected_ms));
                let Ok(refreshed) = refreshed else {
                    // The old refresh token may be rotated away already: the
                    // connection cannot go on.
                    self.end_if_unchanged(user, name, Some(&refresh_token), "token_too_large").await;
                    return Err(Unconnected::Required);
                };
                self.save(user, name, &refreshed).await.map_err(|_| Unconnected::Store)?;
                tracing::info!(provider = name, "refreshed a user's connection");
                Ok(Secret::new(refreshed.access_token))
            }
            Err(e) if e.grant_refused => self.refused(user, name, &refresh_token).await,
            Err(e) => {
                tracing::warn!(provider = name, reason = %e.message, "refreshing a user's connection failed");
                Err(Unconnected::Unavailable(format!("provider `{name}`: {}", e.message)))
            }
        }
    }

    /// The provider refused `refresh_token`: the connection ends — unless
    /// the user connected again meanwhile (then that one serves).
    async fn refused(
        &self,
        user: &Principal,
        name: &str,
        refresh_token: &str,
    ) -> Result<Secret, Unconnected> {
        if self.end_if_unchanged(user, name, Some(refresh_token), "refresh_refused").await {
            return Err(Unconnected::Required);
        }
        match self.load(user, name).await.map_err(|_| Unconnected::Store)? {
            Some(tokens) if tokens.refresh_at_ms > self.now() => Ok(Secret::new(tokens.access_token)),
            _ => Err(Unconnected::Required),
        }
    }

    /// End the connection if it still holds `refresh_token`; audited.
    /// Returns whether it ended.
    async fn end_if_unchanged(
        &self,
        user: &Principal,
        name: &str,
        refresh_token: Option<&str>,
        why: &str,
    ) -> bool {
        match self.load(user, name).await {
            Ok(Some(tokens)) if tokens.refresh_token.as_deref() == refresh_token => {}
            _ => return false,
        }
        let _ = self.store().delete(&keys::connection(&user.tenant, &user.sub, name)).await;
        tracing::info!(provider = name, why, "a user's connection ended; they must connect again");
        self.record(user, "connections.ended", why, serde_json::json!({ "provider": name })).await;
        true
    }
}
