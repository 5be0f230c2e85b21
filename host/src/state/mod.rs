//! The application state shared by every request: configuration, the
//! sandbox, the authenticator, the current registry and policy snapshots, and
//! the metrics. Reloads live in [`reload`], the background tasks (sweeps,
//! checks, refreshes, reports) in [`background`].

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
use crate::outbound::log::EgressLog;
use crate::outbound::{Egress, OutboundConfig};
use crate::policy::PolicySet;
use crate::ratelimit::{Limiter, RateLimits, RedisBuckets};
use crate::registry::RegistrySnapshot;
use crate::runtime::Runtime;
use crate::runtime::call_data::CallGrants;
use crate::store::KeyValueStore;
use crate::store::embedded::EmbeddedStore;
use crate::store::redis::{RedisHealth, RedisStore};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Cheap to clone; all clones share one host.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: HostConfig,
    runtime: Runtime,
    registry: ArcSwap<RegistrySnapshot>,
    auth: Authenticator,
    policy: ArcSwap<PolicySnapshot>,
    store: Arc<dyn KeyValueStore>,
    action_tokens: ActionTokenKey,
    audit: AuditLog,
    rate_limits: Limiter,
    /// Swapped (with the registry) when SIGHUP reloads the providers file.
    broker: ArcSwap<Broker>,
    outbound: Arc<OutboundConfig>,
    redis: Option<redis::aio::ConnectionManager>,
    /// The outcome of the last Redis operation or check.
    redis_health: RedisHealth,
    /// Failed authentications per client address.
    auth_failures: AuthFailures,
    last_policy_reload: Mutex<Option<ReloadOutcome>>,
    last_reload: Mutex<Option<ReloadOutcome>>,
    /// Serialises registry rebuilds (a watcher event and a SIGHUP at once).
    registry_reload: tokio::sync::Mutex<()>,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Bumped whenever a reload may change which tools a caller sees.
    tools_changed: tokio::sync::watch::Sender<u64>,
    metrics: Metrics,
    started_at: SystemTime,
}

pub use reload::ReloadOutcome;
use reload::log_policy;

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
        let audit_config = AuditConfig {
            max_record_bytes: config.audit.max_record_bytes,
            witness_dir: config.audit.witness_dir.as_ref().map(|dir| config.resolve(dir)),
            witness_url: config.audit.witness_url.clone(),
            ..AuditConfig::new(config.audit_dir(), config.runtime_dir(), config.clock.clone())
        };
        let audit = AuditLog::start(audit_config).await.context("opening the audit trail")?;
        let auth = Authenticator::start(config.auth.clone(), &config.runtime_dir()).await?;
        let mut redis_connection = None;
        let redis_health = RedisHealth::default();
        let (store, limiter): (Arc<dyn KeyValueStore>, Limiter) = match &config.redis.url {
            None => (
                EmbeddedStore::open(&config.runtime_dir().join("state.redb"))?,
                Limiter::Memory(RateLimits::new(config.clock.clone())),
            ),
            Some(url) => {
                let redis = &config.redis;
                let connection = crate::store::redis::connect(url).await?;
                let url = crate::store::redis::redacted(url);
                tracing::info!(%url, fail_open = redis.fail_open, "shared state in Redis");
                redis_connection = Some(connection.clone());
                (
                    Arc::new(RedisStore::new(connection.clone(), redis.timeout, redis_health.clone())),
                    Limiter::Redis(RedisBuckets::new(connection, redis.timeout, redis_health.clone())),
                )
            }
        };
        let shutdown = tokio::sync::watch::channel(false).0;
        let providers = crate::broker::providers::load_configured(&config)?;
        let broker = Broker::new(providers, config.broker.clone(), config.clock.clone());
        let parts = StartParts {
            redis_health,
            auth,
            store,
            rate_limits: limiter,
            redis: redis_connection,
            audit,
            broker,
            shutdown,
        };
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
        Ok(state)
    }

    fn start_blocking(config: HostConfig, parts: StartParts) -> anyhow::Result<Self> {
        let StartParts { auth, store, rate_limits, redis, redis_health, audit, broker, shutdown } = parts;
        let action_tokens = ActionTokenKey::load_or_create(&config.runtime_dir().join("action-token.key"))?;
        let policy = PolicySet::load(&config.policy_file())?;
        log_policy(&policy, 1);
        let runtime = Runtime::new(config.runtime.clone(), config.compile_cache_dir())
            .context("building the WebAssembly runtime")?;
        let registry = RegistrySnapshot::load(&config, &runtime, &broker, 1, None)?;
        tracing::info!(
            root = %config.root.display(),
            plugins = registry.plugins().count(),
            tools = registry.tools().count(),
            pooling = runtime.pooling(),
            compile_cache_hits = runtime.cache_stats().hits.get(),
            compile_cache_misses = runtime.cache_stats().misses.get(),
            "registry loaded"
        );
        let metrics = Metrics::new(&runtime, &broker, audit.batch_counters(), config.log_drops.clone());
        let outbound = Arc::new(config.outbound.clone());
        let auth_failures = AuthFailures::new(config.server.auth_failures_per_minute);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                runtime,
                registry: ArcSwap::from_pointee(registry),
                auth,
                policy: ArcSwap::from_pointee(PolicySnapshot { version: 1, policy }),
                last_policy_reload: Mutex::new(None),
                last_reload: Mutex::new(None),
                registry_reload: tokio::sync::Mutex::new(()),
                shutdown,
                broker: ArcSwap::from_pointee(broker),
                outbound,
                store,
                action_tokens,
                audit,
                rate_limits,
                redis,
                redis_health,
                auth_failures,
                tools_changed: tokio::sync::watch::Sender::new(0),
                metrics,
                started_at: SystemTime::now(),
            }),
        })
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
        self.inner.registry.load_full()
    }

    /// Shared state for confirmations and idempotency.
    pub fn store(&self) -> &dyn KeyValueStore {
        self.inner.store.as_ref()
    }

    /// How the last Redis operation ended (`None` without Redis): the
    /// store's, the rate limiter's, or the host's periodic PING. `/health`
    /// reads it, so it never waits on Redis.
    pub fn redis_status(&self) -> Option<Result<(), String>> {
        self.inner.redis.as_ref()?;
        Some(self.inner.redis_health.last())
    }

    /// Failed authentications per client address.
    pub fn auth_failures(&self) -> &AuthFailures {
        &self.inner.auth_failures
    }

    /// Audit the authentication failures counted since the last report, in
    /// one `auth.failures_suppressed` record (nothing if there were none).
    pub async fn report_auth_failures(&self) {
        let Some(mut detail) = self.auth_failures().take_report() else { return };
        detail["window_s"] = background::AUTH_FAILURE_REPORT_EVERY.as_secs().into();
        let event = AuditEvent::host("auth.failures_suppressed", "unauthenticated", detail);
        if let Err(e) = self.audit().append(event).await {
            tracing::error!(error = %e, "cannot record suppressed authentication failures");
        }
    }

    /// The credential broker in force; keep the `Arc` for the whole call.
    pub fn broker(&self) -> Arc<Broker> {
        self.inner.broker.load_full()
    }

    /// What a call into `plugin` is given: its config values, and brokering
    /// and outbound HTTP within its grants, recorded in `log`.
    pub fn call_grants(&self, plugin: &crate::registry::LoadedPlugin, log: EgressLog) -> CallGrants {
        CallGrants {
            config: plugin.config.clone(),
            egress: Egress {
                network: plugin.network.clone(),
                broker: self.broker(),
                config: self.inner.outbound.clone(),
                log,
            },
        }
    }

    /// The shared Redis connection, when configured.
    pub(crate) fn redis(&self) -> Option<&redis::aio::ConnectionManager> {
        self.inner.redis.as_ref()
    }

    /// Where Redis operations record their outcome.
    pub(crate) fn redis_health(&self) -> &RedisHealth {
        &self.inner.redis_health
    }

    /// The rate-limit buckets.
    pub fn rate_limits(&self) -> &Limiter {
        &self.inner.rate_limits
    }

    /// The audit trail.
    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// Stop: stop watching files, record `host.stop` and a final checkpoint.
    /// Call once, after the server has drained.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.report_auth_failures().await;
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
        self.inner.started_at
    }

    /// Changes whenever a registry or policy reload took effect (the MCP
    /// endpoint tells listening clients their tool list changed).
    pub fn tools_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.tools_changed.subscribe()
    }

    /// Tell listeners the tool set may have changed.
    fn announce_tools_changed(&self) {
        self.inner.tools_changed.send_modify(|generation| *generation += 1);
    }

    /// Resolves when the host begins to shut down.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }
}

/// What `start` prepares before the blocking part of startup.
struct StartParts {
    redis_health: RedisHealth,
    auth: Authenticator,
    store: Arc<dyn KeyValueStore>,
    rate_limits: Limiter,
    redis: Option<redis::aio::ConnectionManager>,
    audit: AuditLog,
    broker: Broker,
    shutdown: tokio::sync::watch::Sender<bool>,
}
