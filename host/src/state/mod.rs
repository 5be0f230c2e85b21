//! The application state shared by every request: the configuration, the
//! sandbox, the authenticator, the audit trail and metrics; the state
//! replicas share (store, rate limits: embedded or one Redis); the swapped
//! snapshots (plugins with their broker, policy); and the lifecycle.
//! Reloads live in [`reload`], the background tasks (sweeps, checks,
//! refreshes, reports) in [`background`].

mod background;
mod reload;

use crate::audit::record::AuditEvent;
use crate::audit::{AuditConfig, AuditLog};
use crate::auth::Authenticator;
use crate::auth::failures::AuthFailures;
use crate::broker::Broker;
use crate::clock::Clock;
use crate::config::HostConfig;
use crate::confirm::ActionTokenKey;
use crate::metrics::Metrics;
use crate::outbound::Egress;
use crate::outbound::log::EgressLog;
use crate::policy::PolicySet;
use crate::ratelimit::{Limiter, RateLimits, RedisBuckets};
use crate::registry::RegistrySnapshot;
use crate::runtime::Runtime;
use crate::runtime::call_data::CallGrants;
use crate::share::Shares;
use crate::store::KeyValueStore;
use crate::store::embedded::EmbeddedStore;
use crate::store::redis::{Redis, RedisStore};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::SystemTime;

/// Cheap to clone; all clones share one host.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<HostConfig>,
    runtime: Runtime,
    /// Plugins' outbound connections (pooled) and trust roots.
    outbound: Arc<crate::outbound::client::OutboundClient>,
    auth: Authenticator,
    action_tokens: ActionTokenKey,
    audit: AuditLog,
    /// The audit export sinks' progress.
    audit_export: crate::audit::export::ExportStatus,
    metrics: Metrics,
    /// Failed authentications per client address.
    auth_failures: AuthFailures,
    /// What each caller holds of what all share.
    shares: Arc<Shares>,
    /// State shared with replicas (or embedded): the store and rate limits.
    shared: Shared,
    /// The plugins and their credentials, swapped together by reloads.
    plugins: ArcSwap<Plugins>,
    /// The policy in force, swapped by policy reloads.
    policy: ArcSwap<PolicySnapshot>,
    /// The approver notification webhook, when configured.
    approval_webhook: Option<crate::approvals::webhook::Webhook>,
    /// The keys of users' connection tokens.
    vault: Arc<crate::connections::Vault>,
    /// How the last reloads went, and who hears of changes.
    reloads: Reloads,
    /// Shutdown and uptime.
    lifecycle: Lifecycle,
}

/// Where the state that replicas share lives: the embedded store and
/// in-memory buckets, or one Redis (whose handle is kept for `/health`).
struct Shared {
    store: Arc<dyn KeyValueStore>,
    rate_limits: Limiter,
    redis: Option<Redis>,
}

impl Shared {
    async fn open(config: &HostConfig) -> anyhow::Result<Self> {
        let Some(url) = &config.redis.url else {
            return Ok(Self {
                store: EmbeddedStore::open(&config.runtime_dir().join("state.redb"))?,
                rate_limits: Limiter::Memory(RateLimits::new(config.clock.clone())),
                redis: None,
            });
        };
        let redis = Redis::connect(url, config.redis.timeout).await?;
        let shown = crate::store::redis::redacted(url);
        tracing::info!(url = %shown, fail_open = config.redis.fail_open, "shared state in Redis");
        Ok(Self {
            store: Arc::new(RedisStore::new(redis.clone())),
            rate_limits: Limiter::Redis(RedisBuckets::new(redis.clone())),
            redis: Some(redis),
        })
    }
}

/// The registry and the broker it was validated against: a reload of the
/// providers file swaps both at once, so no call sees one without the other.
pub(crate) struct Plugins {
    /// The registry.
    pub registry: Arc<RegistrySnapshot>,
    /// The broker it was validated against.
    pub broker: Arc<Broker>,
}

/// Shutdown and uptime.
struct Lifecycle {
    shutdown: tokio::sync::watch::Sender<bool>,
    started_at: SystemTime,
}

use reload::{Reloads, log_policy};

/// The policy in force and its version.
pub struct PolicySnapshot {
    /// Increases with every successful (re)load.
    pub version: u64,
    /// The compiled policy.
    pub policy: PolicySet,
}

impl AppState {
    /// Build the sandbox and load every manifest under the root. Fails, naming
    /// the file, field and reason, if any manifest or component is invalid.
    pub async fn start(config: HostConfig) -> anyhow::Result<Self> {
        config.validate()?;
        crate::telemetry::check(&config)?;
        let audit_config = AuditConfig {
            max_record_bytes: config.audit.max_record_bytes,
            witness_dir: config.audit.witness_dir.as_ref().map(|dir| config.resolve(dir)),
            witness_url: config.audit.witness_url.clone(),
            ..AuditConfig::new(config.audit_dir(), config.runtime_dir(), config.clock.clone())
        };
        let audit = AuditLog::start(audit_config).await.context("opening the audit trail")?;
        let audit_export = crate::audit::export::start_configured(&config, &audit)?;
        let auth = Authenticator::start(config.auth.clone(), &config.runtime_dir()).await?;
        let shared = Shared::open(&config).await?;
        let providers = crate::broker::providers::load_configured(&config)?;
        let outbound = Arc::new(crate::outbound::client::OutboundClient::new(&config)?);
        let connecting = providers.values().any(|p| {
            matches!(p.credential, crate::broker::providers::Credential::OAuth2AuthorizationCode(_))
        });
        if connecting && config.redis.enabled() && config.connections.key_file.is_none() {
            anyhow::bail!(
                "connections.key_file: required with redis.url when a provider is oauth2_authorization_code (every replica must seal users' tokens with the same key)"
            );
        }
        let vault = crate::connections::Vault::start(&config, outbound.roots())?;
        let broker =
            Broker::new(providers, config.broker.clone(), config.clock.clone()).trusting(outbound.roots());
        let parts = StartParts { auth, shared, audit, audit_export, broker, outbound, vault };
        let state = tokio::task::spawn_blocking(move || Self::start_blocking(config, parts))
            .await
            .context("startup task panicked")??;
        let registry = state.registry();
        let plugins: Vec<_> = registry
            .plugins()
            .map(|p| serde_json::json!({"name": p.name, "version": p.version, "sha256": p.component.sha256}))
            .collect();
        let started = AuditEvent::host(
            "host.start",
            "started",
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "registry_version": registry.version,
                "plugins": plugins,
                "tools": registry.tools().count(),
                "providers": state.broker().provider_names().collect::<Vec<_>>(),
                "policy_version": state.policy().version,
                "dev_keys": state.auth().dev_keys,
            }),
        );
        state.audit().append(started).await?;
        background::spawn_all(&state);
        state.inner.outbound.sweep_in_background();
        Ok(state)
    }

    fn start_blocking(config: HostConfig, parts: StartParts) -> anyhow::Result<Self> {
        let StartParts { auth, shared, audit, audit_export, broker, outbound, vault } = parts;
        let action_tokens = ActionTokenKey::load_or_create(&config.runtime_dir().join("action-token.key"))?;
        let policy = PolicySet::load(&config.policy_file())?;
        log_policy(&policy, 1);
        let runtime = Runtime::new(config.runtime.clone(), config.compile_cache_dir())
            .context("building the WebAssembly runtime")?;
        let registry = RegistrySnapshot::load(&config, &runtime, &broker, 1, None, false)?;
        tracing::info!(
            root = %config.root.display(),
            plugins = registry.plugins().count(),
            tools = registry.tools().count(),
            pooling = runtime.pooling(),
            compile_cache_hits = runtime.cache_stats().hits.get(),
            compile_cache_misses = runtime.cache_stats().misses.get(),
            "registry loaded"
        );
        let shares = Arc::new(Shares::new(&config));
        let metrics = Metrics::new(
            &runtime,
            &broker,
            &audit,
            audit_export.clone(),
            &shares,
            outbound.stats(),
            config.log_drops.clone(),
        );
        let approval_webhook =
            crate::approvals::webhook::Webhook::start(&config.approvals, metrics.approval_webhook.clone())?;
        let auth_failures =
            AuthFailures::new(config.server.auth_failures_per_minute, config.server.auth_failure_peers);
        let plugins = Plugins { registry: Arc::new(registry), broker: Arc::new(broker) };
        Ok(Self {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                runtime,
                outbound,
                auth,
                action_tokens,
                audit,
                audit_export,
                metrics,
                auth_failures,
                shares,
                shared,
                plugins: ArcSwap::from_pointee(plugins),
                policy: ArcSwap::from_pointee(PolicySnapshot { version: 1, policy }),
                approval_webhook,
                vault: Arc::new(vault),
                reloads: Reloads::default(),
                lifecycle: Lifecycle {
                    shutdown: tokio::sync::watch::channel(false).0,
                    started_at: SystemTime::now(),
                },
            }),
        })
    }

    /// The host's base URL as a request reached it: the configured
    /// `mcp.public_url`, else `http://` and the request's `Host` (a forged
    /// `Host` only changes the forger's own answer).
    pub fn public_base(&self, headers: &http::HeaderMap) -> String {
        self.public_base_of(headers.get(http::header::HOST))
    }

    /// [`Self::public_base`] from a request's `Host` value.
    pub fn public_base_of(&self, host: Option<&http::HeaderValue>) -> String {
        if let Some(url) = &self.config().mcp.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = host
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
            .map(str::to_owned)
            .unwrap_or_else(|| self.config().server.listen.to_string());
        format!("http://{host}")
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The sandbox.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The current registry snapshot; keep the `Arc` for the whole call.
    pub fn registry(&self) -> Arc<RegistrySnapshot> {
        self.inner.plugins.load().registry.clone()
    }

    /// Shared state for confirmations and idempotency.
    pub fn store(&self) -> &dyn KeyValueStore {
        self.inner.shared.store.as_ref()
    }

    /// How the last Redis operation ended (`None` without Redis): the
    /// store's, the rate limiter's, or the host's periodic PING. `/health`
    /// reads it, so it never waits on Redis.
    pub fn redis_status(&self) -> Option<Result<(), String>> {
        self.inner.shared.redis.as_ref().map(Redis::health)
    }

    /// Failed authentications per client address.
    pub fn auth_failures(&self) -> &AuthFailures {
        &self.inner.auth_failures
    }

    /// What each caller holds of what all share.
    pub fn shares(&self) -> &Arc<Shares> {
        &self.inner.shares
    }

    /// Audit the fair-share refusals counted since the last report, in one
    /// `share.refused` record (nothing if there were none).
    pub async fn report_share_refusals(&self) {
        let Some(mut detail) = self.shares().take_report() else { return };
        detail["window_s"] = background::REPORT_EVERY.as_secs().into();
        tracing::warn!(refused = %detail["refused"], "callers refused beyond their fair share");
        let event = AuditEvent::host("share.refused", "refused", detail);
        if let Err(e) = self.audit().append(event).await {
            tracing::error!(error = %e, "cannot record fair-share refusals");
        }
    }

    /// Audit the authentication failures counted since the last report, in
    /// one `auth.failures_suppressed` record (nothing if there were none).
    pub async fn report_auth_failures(&self) {
        let Some(mut detail) = self.auth_failures().take_report() else { return };
        detail["window_s"] = background::REPORT_EVERY.as_secs().into();
        let event = AuditEvent::host("auth.failures_suppressed", "unauthenticated", detail);
        if let Err(e) = self.audit().append(event).await {
            tracing::error!(error = %e, "cannot record suppressed authentication failures");
        }
    }

    /// The credential broker in force.
    pub fn broker(&self) -> Arc<Broker> {
        self.inner.plugins.load().broker.clone()
    }

    /// The registry and its broker in force; a call keeps the `Arc` from
    /// resolution to execution, so it never pairs a tool with another
    /// reload's broker.
    pub(crate) fn plugins(&self) -> Arc<Plugins> {
        self.inner.plugins.load_full()
    }

    /// What a call into `plugin` is given: its config values, and brokering
    /// (by `broker`, the one its registry was validated against) and
    /// outbound HTTP within its grants, recorded in `log`.
    pub fn call_grants(
        &self,
        plugin: &crate::registry::LoadedPlugin,
        broker: Arc<Broker>,
        log: EgressLog,
    ) -> CallGrants {
        CallGrants {
            config: plugin.config.clone(),
            egress: Egress {
                network: plugin.network.clone(),
                broker,
                config: self.inner.config.clone(),
                log,
                client: self.inner.outbound.clone(),
                trace: Default::default(),
                on_behalf: None,
                credential: None,
            },
        }
    }

    /// The shared Redis, when configured.
    pub(crate) fn redis(&self) -> Option<&Redis> {
        self.inner.shared.redis.as_ref()
    }

    /// The rate-limit buckets.
    pub fn rate_limits(&self) -> &Limiter {
        &self.inner.shared.rate_limits
    }

    /// The audit export sinks' progress.
    pub fn audit_export(&self) -> &crate::audit::export::ExportStatus {
        &self.inner.audit_export
    }

    /// Calls waiting for approvers, and their decisions.
    pub fn approvals(&self) -> crate::approvals::Approvals<'_> {
        let config = &self.inner.config;
        crate::approvals::Approvals::new(
            self.store(),
            self.audit(),
            self.clock(),
            &config.approvals,
            self.inner.approval_webhook.as_ref(),
            (std::time::Duration::from_millis(config.runtime.max_timeout_ms), config.runtime.queue_timeout),
        )
    }

    /// Users' connections, under the providers of `broker`.
    pub fn connections(&self, broker: Arc<Broker>) -> crate::connections::Connections {
        crate::connections::Connections::new(crate::connections::Parts {
            vault: self.inner.vault.clone(),
            store: self.inner.shared.store.clone(),
            broker,
            clock: self.inner.config.clock.clone(),
            audit: self.inner.audit.clone(),
            public_url: self.inner.config.mcp.public_url.clone(),
        })
    }

    /// The audit trail.
    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// Stop: stop watching files, record `host.stop` and a final checkpoint.
    /// Call once, after the server has drained.
    pub async fn shutdown(&self) {
        self.inner.lifecycle.shutdown.send_replace(true);
        self.report_auth_failures().await;
        self.report_share_refusals().await;
        let uptime = self.started_at().elapsed().map(|d| d.as_secs()).unwrap_or(0);
        self.audit().close(serde_json::json!({"uptime_s": uptime})).await;
    }

    /// The key that signs action tokens.
    pub fn action_tokens(&self) -> &ActionTokenKey {
        &self.inner.action_tokens
    }

    /// The host's wall clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    /// The authenticator.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The policy in force; keep the `Arc` for the whole call.
    pub fn policy(&self) -> Arc<PolicySnapshot> {
        self.inner.policy.load_full()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// When the host started.
    pub fn started_at(&self) -> SystemTime {
        self.inner.lifecycle.started_at
    }

    /// Changes whenever a registry or policy reload took effect (the MCP
    /// endpoint tells listening clients their tool list changed).
    pub fn tools_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.reloads.tools_changed.subscribe()
    }

    /// Resolves when the host begins to shut down.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.lifecycle.shutdown.subscribe()
    }
}

/// What `start` prepares before the blocking part of startup.
struct StartParts {
    auth: Authenticator,
    shared: Shared,
    audit: AuditLog,
    audit_export: crate::audit::export::ExportStatus,
    broker: Broker,
    outbound: Arc<crate::outbound::client::OutboundClient>,
    vault: crate::connections::Vault,
}
