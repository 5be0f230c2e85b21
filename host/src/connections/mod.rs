//! Users' own accounts at `oauth2_authorization_code` providers: a user
//! connects once ([`flow`]: authorization code + PKCE, `/connections`), the
//! host keeps their tokens and injects a fresh access token into the
//! requests of the tools that name the provider.
//!
//! **Where tokens live.** In the state store (embedded redb, or Redis so
//! that every replica can use them), one record per (tenant, subject,
//! provider), sealed with AES-256-GCM under the operator's key
//! ([`sealed`]; associated data binds a record to its owner). A record
//! lasts `connections.max_idle` from its last refresh; `DELETE` forgets it
//! (and revokes it at the provider when it has a `revoke_url`). The
//! decrypted access token lives in memory for one call; it never reaches a
//! log, a span, the trail or the guest.
//!
//! **Refresh** ([`refresh`]). An access token within the provider's
//! `refresh_before` of its expiry is refreshed before the call, in a task
//! of its own (a caller that goes away never loses a rotated refresh
//! token): one refresh at a time per connection on this replica (a lock)
//! and across replicas (a claim in the store; the others wait for the
//! record to change, or for the claim to go). A refresh token the provider
//! refuses (`invalid_grant`: revoked, expired, rotated away) ends the
//! connection — unless the user connected again meanwhile: the user
//! connects again.

pub mod flow;
mod refresh;
pub mod sealed;

pub use refresh::Unconnected;

use crate::audit::AuditLog;
use crate::audit::record::{AuditEvent, AuditPrincipal};
use crate::broker::Broker;
use crate::broker::oauth;
use crate::broker::providers::{AuthorizationCode, Credential, Secret};
use crate::clock::Clock;
use crate::config::ConnectionsConfig;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::store::{KeyValueStore, keys};
use sealed::KeyRing;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Refresh locks kept at most on one replica.
const MAX_REFRESH_LOCKS: usize = 4096;

/// A user's tokens at one provider, as sealed in the store.
#[derive(Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    /// Host-clock Unix ms from which the access token is refreshed before
    /// use (`refresh_before` ahead of its expiry, at most half its life).
    refresh_at_ms: i64,
    #[serde(default)]
    refresh_token: Option<String>,
    connected_ms: i64,
    refreshed_ms: i64,
}

/// A connection as its owner sees it (never a token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// The provider.
    pub provider: String,
    /// When the user connected (RFC 3339).
    pub connected_at: String,
    /// When its access token was last issued (RFC 3339).
    pub refreshed_at: String,
    /// Whether the provider issued a refresh token (else the user connects
    /// again when the access token expires).
    pub refreshable: bool,
}

/// `GET /connections`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionList {
    /// The caller's connections to the providers configured now.
    pub connections: Vec<ConnectionView>,
}

/// `DELETE /connections/{provider}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Forgotten {
    /// The provider.
    pub provider: String,
    /// Whether the provider confirmed revoking the tokens (`null`: it has
    /// no `revoke_url`, or is no longer configured). The host forgot them
    /// either way.
    pub revoked: Option<bool>,
}

/// The long-lived part: the keys, a client for token endpoints, the
/// refresh locks.
pub struct Vault {
    keys: KeyRing,
    http: reqwest::Client,
    config: ConnectionsConfig,
    /// Longest a refresh may hold its claim (the token request's timeout
    /// and a margin).
    refresh_bound: Duration,
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Vault {
    /// The vault of `config`: its keys (the default key file generated on
    /// first use), trusting `roots` for token endpoints.
    pub fn start(
        config: &crate::config::HostConfig,
        roots: &crate::outbound::trust::Roots,
    ) -> anyhow::Result<Self> {
        let settings = &config.connections;
        let previous: Vec<std::path::PathBuf> =
            settings.previous_key_files.iter().map(|f| config.resolve(std::path::Path::new(f))).collect();
        let keys = KeyRing::load(&config.connections_key_file(), settings.key_file.is_none(), &previous)
            .map_err(|e| anyhow::anyhow!("connections.key_file: {e:#}"))?;
        Ok(Self {
            keys,
            http: oauth::client(config.broker.fetch_timeout, roots),
            config: settings.clone(),
            refresh_bound: config.broker.fetch_timeout + Duration::from_secs(5),
            refreshing: Mutex::default(),
        })
    }

    fn refresh_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refreshing.lock().expect("the refresh locks are never poisoned");
        if !locks.contains_key(key) && locks.len() >= MAX_REFRESH_LOCKS {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(key.to_owned()).or_default().clone()
    }
}

/// Connections in the host's store, under the providers of one broker.
/// Cheap to clone (handles only): a refresh runs in a task of its own.
#[derive(Clone)]
pub struct Connections {
    vault: Arc<Vault>,
    store: Arc<dyn KeyValueStore>,
    broker: Arc<Broker>,
    clock: Clock,
    audit: AuditLog,
    /// The host's configured public URL (`mcp.public_url`), for redirect URIs.
    public_url: Option<String>,
}

/// What [`Connections`] works with.
pub struct Parts {
    /// The keys and client.
    pub vault: Arc<Vault>,
    /// The state store.
    pub store: Arc<dyn KeyValueStore>,
    /// The providers in force.
    pub broker: Arc<Broker>,
    /// The host clock.
    pub clock: Clock,
    /// The audit trail.
    pub audit: AuditLog,
    /// `mcp.public_url`.
    pub public_url: Option<String>,
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "connections: state store unavailable");
    ApiError::StateUnavailable
}

/// The associated data of a user's record: whose it is.
fn record_aad(tenant: &str, sub: &str, provider: &str) -> Vec<u8> {
    format!("connection\0{tenant}\0{sub}\0{provider}").into_bytes()
}

impl Connections {
    /// Connections over these parts.
    pub fn new(parts: Parts) -> Self {
        let Parts { vault, store, broker, clock, audit, public_url } = parts;
        Self { vault, store, broker, clock, audit, public_url }
    }

    fn vault(&self) -> &Vault {
        &self.vault
    }

    fn store(&self) -> &dyn KeyValueStore {
        self.store.as_ref()
    }

    fn now(&self) -> i64 {
        self.clock.now_unix_ms()
    }

    /// The authorization-code provider of this name, if configured.
    pub fn provider(&self, name: &str) -> Option<&AuthorizationCode> {
        match self.broker.provider(name).map(|p| &p.credential) {
            Some(Credential::OAuth2AuthorizationCode(provider)) => Some(provider.as_ref()),
            _ => None,
        }
    }

    fn client<'c>(&'c self, provider: &'c AuthorizationCode) -> oauth::Client<'c> {
        oauth::Client {
            http: &self.vault().http,
            token_url: &provider.token_url,
            client_id: &provider.client_id,
            auth: &provider.client_auth,
        }
    }

    /// The user's record at `name`, opened (`None` when absent or unreadable).
    async fn load(&self, user: &Principal, name: &str) -> Result<Option<Tokens>, ApiError> {
        let key = keys::connection(&user.tenant, &user.sub, name);
        let Some(stored) = self.store().get(&key).await.map_err(store_error)? else {
            return Ok(None);
        };
        let opened = match self.vault().keys.open(&record_aad(&user.tenant, &user.sub, name), &stored) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "a stored connection is unreadable; the user must connect again");
                return Ok(None);
            }
        };
        Ok(serde_json::from_slice::<Tokens>(&opened).ok())
    }

    /// Seal (with the current key) and store the user's record, for `max_idle`.
    async fn save(&self, user: &Principal, name: &str, tokens: &Tokens) -> Result<(), ApiError> {
        let plaintext = serde_json::to_vec(tokens).expect("tokens serialise");
        let sealed = self.vault().keys.seal(&record_aad(&user.tenant, &user.sub, name), &plaintext);
        let key = keys::connection(&user.tenant, &user.sub, name);
        self.store().put(&key, &sealed, self.vault().config.max_idle).await.map_err(store_error)
    }

    /// Whether `user` has a (readable) connection to `name`.
    pub async fn connected(&self, user: &Principal, name: &str) -> bool {
        matches!(self.load(user, name).await, Ok(Some(_)))
    }

    /// The record for tokens just issued (a refresh token not reissued is
    /// kept); `Err` when a token is over `max_token_bytes`.
    fn tokens_of(
        &self,
        provider: &AuthorizationCode,
        issued: oauth::AccessToken,
        previous_refresh: Option<String>,
        connected_ms: Option<i64>,
    ) -> Result<Tokens, ()> {
        let max = self.vault().config.max_token_bytes;
        let refresh_token = issued.refresh.map(|r| r.expose().to_owned()).or(previous_refresh);
        if issued.value.expose().len() > max || refresh_token.as_ref().is_some_and(|r| r.len() > max) {
            return Err(());
        }
        let now = self.now();
        let margin = provider.refresh_before.min(issued.expires_in / 2);
        Ok(Tokens {
            access_token: issued.value.expose().to_owned(),
            refresh_at_ms: now.saturating_add((issued.expires_in - margin).as_millis() as i64),
            refresh_token,
            connected_ms: connected_ms.unwrap_or(now),
            refreshed_ms: now,
        })
    }

    /// The caller's connections to the providers configured now (never a
    /// token).
    pub async fn list(&self, user: &Principal) -> Result<ConnectionList, ApiError> {
        let mut connections = Vec::new();
        for name in self.broker.provider_names() {
            if self.provider(name).is_none() {
                continue;
            }
            if let Some(tokens) = self.load(user, name).await? {
                connections.push(ConnectionView {
                    provider: name.to_owned(),
                    connected_at: crate::approvals::views::rfc3339(tokens.connected_ms),
                    refreshed_at: crate::approvals::views::rfc3339(tokens.refreshed_ms),
                    refreshable: tokens.refresh_token.is_some(),
                });
            }
        }
        Ok(ConnectionList { connections })
    }

    /// Forget the caller's connection to `name`, revoking it at the
    /// provider when it has a `revoke_url`.
    pub async fn forget(&self, user: &Principal, name: &str) -> Result<Forgotten, ApiError> {
        // Under the refresh claims, so that no refresh in flight stores the
        // connection again after it is forgotten.
        let key = keys::connection(&user.tenant, &user.sub, name);
        let lock = self.vault().refresh_lock(&key);
        let _held = lock.lock().await;
        let claim = keys::connection_refresh(&user.tenant, &user.sub, name);
        let deadline = tokio::time::Instant::now() + self.vault().refresh_bound;
        let claimed = loop {
            match self.claim(&claim).await.map_err(store_error)? {
                Some(at) => break Some(at),
                None if tokio::time::Instant::now() >= deadline => break None,
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let forgotten = self.forget_claimed(user, name, &key).await;
        if let Some(at) = claimed {
            self.release(&claim, at).await;
        }
        forgotten
    }

    async fn forget_claimed(&self, user: &Principal, name: &str, key: &str) -> Result<Forgotten, ApiError> {
        let Some(tokens) = self.load(user, name).await? else {
            return Err(ApiError::ConnectionNotFound(name.to_owned()));
        };
        self.store().delete(key).await.map_err(store_error)?;
        let revoked = match self.provider(name) {
            Some(provider @ AuthorizationCode { revoke_url: Some(url), .. }) => {
                // The refresh token first: revoking it ends the grant.
                let (token, hint) = match tokens.refresh_token {
                    Some(refresh) => (refresh, "refresh_token"),
                    None => (tokens.access_token, "access_token"),
                };
                Some(oauth::revoke(&self.client(provider), url, &Secret::new(token), hint).await)
            }
            _ => None,
        };
        let detail = serde_json::json!({ "provider": name, "revoked": revoked });
        self.record(user, "connections.forgotten", "forgotten", detail).await;
        Ok(Forgotten { provider: name.to_owned(), revoked })
    }

    /// Append a connection event to the audit trail (never a token).
    async fn record(&self, user: &Principal, event: &str, decision: &str, detail: serde_json::Value) {
        let event = AuditEvent {
            event: event.into(),
            principal: Some(AuditPrincipal { sub: user.sub.clone(), tenant: user.tenant.clone() }),
            decision: decision.into(),
            detail: Some(detail),
            ..Default::default()
        };
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "connections: the audit trail did not take an event");
        }
    }
}
