//! Token brokering: plugins never hold long-lived secrets.
//!
//! - [`providers`]: what the operator configures (secrets from files or the
//!   environment);
//! - [`oauth`]: token requests (client credentials, token exchange);
//! - [`delegated`]: credentials that name the caller (RFC 8693), cached
//!   per caller token; a user's own connection's token
//!   ([`crate::connections`]) is read by the pipeline and injected here;
//! - this module: [`Grant`]s (what a manifest allows a plugin), and the
//!   [`Broker`], which answers only within a grant and caches access tokens
//!   until shortly before they expire. Refreshes are single-flight: N calls
//!   that need the same token while it is being fetched wait for that one
//!   fetch. A failed fetch is remembered for a short back-off so a provider
//!   that is down is not hammered by every call.
//!
//! Nothing here logs a token or a secret; what may be recorded about a
//! credential is its [`fingerprint`].

pub mod delegated;
pub mod oauth;
pub mod providers;

pub use delegated::OnBehalf;

use crate::clock::Clock;
use crate::origin::Host;
use crate::origin::Origin;
use providers::{Credential, Provider, Secret};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Cached tokens kept at most (one per provider and scope set).
const MAX_CACHED: usize = 1024;

/// What a manifest grants a plugin: one provider, some scopes, and
/// optionally where the host injects the credential.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The provider's name.
    pub provider: String,
    /// The scopes the plugin may use (sorted, unique).
    pub scopes: Vec<String>,
    /// Outbound injection.
    pub inject: Option<Injection>,
}

/// Where the host puts a grant's credential.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The request host it applies to.
    pub host: Host,
    /// The port, when the manifest names one (else any port of the host).
    pub port: Option<u16>,
    /// The header carrying it (`authorization` gets `Bearer <credential>`;
    /// any other header gets the bare credential).
    pub header: http::HeaderName,
}

/// Why the broker gives nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// Not within the plugin's grants.
    #[error("{0}")]
    NotGranted(String),
    /// Granted, but no credential can be had now.
    #[error("{0}")]
    Unavailable(String),
}

/// A credential handed out (to a plugin or into a request).
pub struct Issued {
    /// The credential.
    pub value: Secret,
    /// Time left before it expires (`None` for static keys).
    pub expires_in: Option<Duration>,
    /// [`fingerprint`] of the value.
    pub fingerprint: String,
}

/// `sha256:` and the first 12 hex digits of the credential's SHA-256: enough
/// to correlate uses in the audit trail, useless to an attacker.
pub fn fingerprint(secret: &Secret) -> String {
    let digest = Sha256::digest(secret.expose().as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

pub use crate::config::BrokerConfig;

/// One slot per (provider, sorted scopes); the async mutex makes refreshes
/// single-flight.
type TokenSlots = HashMap<(String, Vec<String>), Arc<tokio::sync::Mutex<Slot>>>;

/// Times are the host clock's Unix milliseconds (tests advance it).
#[derive(Default)]
struct Slot {
    /// The token and until when it may be served.
    token: Option<(Secret, i64)>,
    /// When the last fetch failed, and why.
    failed: Option<(i64, String)>,
}

/// The broker: providers, an HTTP client for token endpoints, and the cache.
pub struct Broker {
    providers: BTreeMap<String, Provider>,
    client: reqwest::Client,
    config: BrokerConfig,
    clock: Clock,
    cache: Mutex<TokenSlots>,
    exchanged: delegated::ExchangeCache,
    fetches: prometheus_client::metrics::counter::Counter,
}

impl Broker {
    /// A broker for these providers; token lifetimes run on `clock`.
    pub fn new(providers: BTreeMap<String, Provider>, config: BrokerConfig, clock: Clock) -> Self {
        Self {
            providers,
            client: oauth::client(config.fetch_timeout, &crate::outbound::trust::Roots::default()),
            config,
            clock,
            cache: Mutex::new(HashMap::new()),
            exchanged: Default::default(),
            fetches: Default::default(),
        }
    }

    /// Token requests trust `roots` (the operator's `outbound.ca_file`).
    pub fn trusting(mut self, roots: &crate::outbound::trust::Roots) -> Self {
        self.client = oauth::client(self.config.fetch_timeout, roots);
        self
    }

    /// Count fetches on `previous`'s counter (a reloaded broker keeps the
    /// metric continuous).
    pub fn sharing_metrics_of(mut self, previous: &Broker) -> Self {
        self.fetches = previous.fetches.clone();
        self
    }

    /// The provider of this name, if configured.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// Whether the operator lets `provider`'s credential go to `origin`.
    pub fn may_inject(&self, provider: &str, origin: &Origin) -> bool {
        self.providers.get(provider).is_some_and(|p| p.binds_origin(origin))
    }

    /// The configured provider names.
    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// Token fetches made so far (successful or not).
    pub fn fetches(&self) -> &prometheus_client::metrics::counter::Counter {
        &self.fetches
    }

    /// `broker.get-token`: a short-lived token for `provider` with `scopes`,
    /// only if one of `grants` names the provider and covers every scope.
    /// Static keys are never handed to plugins (inject them instead).
    pub async fn token_for_plugin(
        &self,
        grants: &[Grant],
        provider: &str,
        scopes: &[String],
    ) -> Result<Issued, BrokerError> {
        let grant = grants.iter().find(|g| g.provider == provider).ok_or_else(|| {
            BrokerError::NotGranted(format!("provider `{provider}` is not granted to this plugin"))
        })?;
        if let Some(extra) = scopes.iter().find(|s| !grant.scopes.contains(s)) {
            return Err(BrokerError::NotGranted(format!(
                "scope `{extra}` is not granted for provider `{provider}`"
            )));
        }
        match self.providers.get(provider).map(|p| &p.credential) {
            Some(Credential::Static { .. }) => Err(BrokerError::NotGranted(format!(
                "provider `{provider}` holds a static key: the host injects it into requests, it is never handed out"
            ))),
            Some(Credential::OAuth2ClientCredentials { .. }) => {
                let mut scopes = scopes.to_vec();
                scopes.sort();
                scopes.dedup();
                self.oauth_token(provider, scopes).await
            }
            Some(Credential::TokenExchange { .. } | Credential::OAuth2AuthorizationCode(_)) => {
                Err(BrokerError::NotGranted(format!(
                    "provider `{provider}` carries the caller's identity: the host injects it into requests, it is never handed out"
                )))
            }
            None => Err(BrokerError::Unavailable(format!("provider `{provider}` is not configured"))),
        }
    }

    /// `user` when `provider` makes the upstream see the caller, `service`
    /// otherwise (and for an unknown provider).
    pub fn kind_of(&self, provider: &str) -> &'static str {
        self.providers.get(provider).map_or("service", |p| p.credential.kind())
    }

    /// Whether `provider`'s credential makes the upstream see the caller.
    pub fn acts_as_caller(&self, provider: &str) -> bool {
        self.providers.get(provider).is_some_and(|p| p.credential.acts_as_caller())
    }

    /// The credential a grant injects: the static key, a token with all of
    /// the grant's scopes, or — for a token-exchange provider — a token
    /// exchanged from the caller's (`on_behalf`).
    pub async fn credential(
        &self,
        grant: &Grant,
        on_behalf: Option<&OnBehalf>,
    ) -> Result<Issued, BrokerError> {
        match self.providers.get(&grant.provider).map(|p| &p.credential) {
            Some(Credential::Static { secret }) => {
                Ok(Issued { value: secret.clone(), expires_in: None, fingerprint: fingerprint(secret) })
            }
            Some(Credential::OAuth2ClientCredentials { .. }) => {
                self.oauth_token(&grant.provider, grant.scopes.clone()).await
            }
            Some(Credential::TokenExchange { .. }) => self.exchanged_token(grant, on_behalf).await,
            // Read (and refreshed) for the call by the pipeline's connection step.
            Some(Credential::OAuth2AuthorizationCode(_)) => {
                match on_behalf.and_then(|o| o.connection.as_ref()) {
                    Some(token) => {
                        Ok(Issued { value: token.clone(), expires_in: None, fingerprint: fingerprint(token) })
                    }
                    None => Err(BrokerError::Unavailable(format!(
                        "provider `{}` acts with the caller's own account, and this call has no connection of theirs",
                        grant.provider
                    ))),
                }
            }
            None => Err(BrokerError::Unavailable(format!("provider `{}` is not configured", grant.provider))),
        }
    }

    /// Who the upstream sees with `provider`'s credential: the caller's
    /// `sub` (delegated) or the client id / `static key` (the operator's).
    pub fn identity(&self, provider: &str, on_behalf: Option<&OnBehalf>) -> String {
        match self.providers.get(provider).map(|p| &p.credential) {
            Some(Credential::TokenExchange { .. } | Credential::OAuth2AuthorizationCode(_)) => {
                on_behalf.map_or_else(|| "-".into(), |o| o.sub.clone())
            }
            Some(Credential::OAuth2ClientCredentials { client_id, .. }) => client_id.clone(),
            Some(Credential::Static { .. }) | None => "static key".into(),
        }
    }

    async fn exchanged_token(
        &self,
        grant: &Grant,
        on_behalf: Option<&OnBehalf>,
    ) -> Result<Issued, BrokerError> {
        let name = &grant.provider;
        let Some(Credential::TokenExchange {
            token_url,
            client_id,
            client_auth,
            audience,
            resource,
            scopes,
            delegation,
            refresh_before,
        }) = self.providers.get(name).map(|p| &p.credential)
        else {
            return Err(BrokerError::Unavailable(format!(
                "provider `{name}` is not a token-exchange provider"
            )));
        };
        let Some(subject) = on_behalf.and_then(|o| o.token.as_ref()) else {
            return Err(BrokerError::Unavailable(format!(
                "provider `{name}` acts as the caller, and this call carries no token of the caller's"
            )));
        };
        let mut wanted: Vec<String> = scopes.iter().chain(&grant.scopes).cloned().collect();
        wanted.sort();
        wanted.dedup();
        let actor = match delegation {
            true => {
                let (url, id, secret) = (token_url, client_id, client_auth);
                Some(self.client_credentials(name, url, id, secret, *refresh_before, Vec::new()).await?)
            }
            false => None,
        };
        let exchange = || async {
            self.fetches.inc();
            let request = oauth::Exchange {
                subject,
                actor: actor.as_ref().map(|a| &a.value),
                audience: audience.as_deref(),
                resource: resource.as_deref(),
                scopes: &wanted,
            };
            let client = oauth::Client { http: &self.client, token_url, client_id, auth: client_auth };
            oauth::exchange(&client, &request).await
        };
        self.exchanged.get(&self.clock, name, &wanted, subject, *refresh_before, exchange).await
    }

    async fn oauth_token(&self, name: &str, scopes: Vec<String>) -> Result<Issued, BrokerError> {
        let Some(Credential::OAuth2ClientCredentials { token_url, client_id, client_auth, refresh_before }) =
            self.providers.get(name).map(|p| &p.credential)
        else {
            return Err(BrokerError::Unavailable(format!("provider `{name}` is not an OAuth2 provider")));
        };
        self.client_credentials(name, token_url, client_id, client_auth, *refresh_before, scopes).await
    }

    /// A client-credentials token of `name`'s endpoint, cached per
    /// (provider, scopes) and single-flight — a service provider's own, or
    /// a token-exchange provider's actor token.
    async fn client_credentials(
        &self,
        name: &str,
        token_url: &reqwest::Url,
        client_id: &str,
        client_auth: &providers::ClientAuth,
        refresh_before: Duration,
        scopes: Vec<String>,
    ) -> Result<Issued, BrokerError> {
        let slot = self.slot(name, &scopes);
        // One fetch at a time per token: later callers wait here and then
        // find the fresh token (or the fresh failure) in the slot.
        let mut slot = slot.lock().await;
        let now = self.clock.now_unix_ms();
        if let Some((token, usable_until)) = &slot.token
            && *usable_until > now
        {
            return Ok(issued(token, millis(*usable_until - now)));
        }
        if let Some((at, reason)) = &slot.failed
            && now - *at < self.config.failure_backoff.as_millis() as i64
        {
            return Err(BrokerError::Unavailable(format!("provider `{name}`: {reason}")));
        }
        self.fetches.inc();
        let client = oauth::Client { http: &self.client, token_url, client_id, auth: client_auth };
        match oauth::fetch(&client, &scopes).await {
            Ok(token) => {
                // Serve a cached token only while it has a safe margin left;
                // short-lived tokens keep at least half their lifetime.
                let margin = refresh_before.min(token.expires_in / 2);
                let usable_for = token.expires_in - margin;
                let result = issued(&token.value, usable_for);
                let usable_until = self.clock.now_unix_ms() + usable_for.as_millis() as i64;
                slot.token = Some((token.value, usable_until));
                slot.failed = None;
                tracing::info!(
                    provider = name,
                    ?scopes,
                    fingerprint = %result.fingerprint,
                    expires_in_s = token.expires_in.as_secs(),
                    "fetched a provider token"
                );
                Ok(result)
            }
            Err(reason) => {
                tracing::warn!(provider = name, %reason, "provider token fetch failed");
                slot.token = None;
                slot.failed = Some((self.clock.now_unix_ms(), reason.clone()));
                Err(BrokerError::Unavailable(format!("provider `{name}`: {reason}")))
            }
        }
    }

    fn slot(&self, name: &str, scopes: &[String]) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut cache = self.cache.lock().expect("the token cache lock is never poisoned");
        let key = (name.to_owned(), scopes.to_vec());
        if !cache.contains_key(&key) && cache.len() >= MAX_CACHED {
            // Bounded: drop slots nobody is using (their tokens are refetched on demand).
            cache.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        cache.entry(key).or_default().clone()
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// A credential handed out with `expires_in` left.
fn issued(value: &Secret, expires_in: Duration) -> Issued {
    Issued { value: value.clone(), expires_in: Some(expires_in), fingerprint: fingerprint(value) }
}

#[cfg(test)]
#[path = "broker_tests.rs"]
mod tests;
