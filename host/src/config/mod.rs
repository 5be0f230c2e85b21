//! Host configuration, stated once.
//!
//! Every setting — section, name, type, default, bounds, documentation, flag
//! and environment variable — is one entry in [`sections`]; the section
//! structs and the table of [`Setting`]s are made from it. A configuration
//! is read ([`load`]) from defaults, then an optional YAML config file
//! (`fastmcp.yaml` under the root, or `--config FILE`), then environment
//! variables, then `serve` flags: each later source wins, and
//! [`Loaded::sources`] says where each value came from. [`HostConfig::validate`]
//! checks every bound and the rules between settings, for configurations
//! read from files and built in code alike (`serve`, `plugin check`, tests).

mod codec;
pub mod flags;
mod load;
mod sections;
mod settings;

pub use load::{CONFIG_ENV, DEFAULT_CONFIG_FILE, Loaded, Source, example_file, load, markdown_table};
pub use sections::{
    ApprovalsConfig, AuditOptions, AuthConfig, BrokerConfig, ConnectionsConfig, IdempotencyConfig, McpConfig,
    MetricsConfig, OutboundConfig, RedisConfig, ReloadConfig, RuntimeConfig, ServerConfig, TelemetryConfig,
};
pub use settings::Setting;

use crate::clock::Clock;
use std::path::{Path, PathBuf};

/// Every setting of the table, in order.
pub fn settings() -> Vec<Setting> {
    sections::all()
}

/// Everything the host needs to know to serve.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Project root: `manifests/`, `policies/`, `plugins/`, `.runtime/` live
    /// under it (given by `--root`, not by the config file it holds).
    pub root: PathBuf,
    /// The inbound HTTP server.
    pub server: ServerConfig,
    /// The sandbox.
    pub runtime: RuntimeConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Shared state in Redis (for replicas), when its URL is set.
    pub redis: RedisConfig,
    /// Token brokering.
    pub broker: BrokerConfig,
    /// Plugins' outbound HTTP.
    pub outbound: OutboundConfig,
    /// Quotas of the idempotency store.
    pub idempotency: IdempotencyConfig,
    /// The audit trail.
    pub audit: AuditOptions,
    /// Calls waiting for approvers.
    pub approvals: ApprovalsConfig,
    /// Users' connections to their own accounts at providers.
    pub connections: ConnectionsConfig,
    /// Traces and the OTLP collector.
    pub telemetry: TelemetryConfig,
    /// The MCP endpoint.
    pub mcp: McpConfig,
    /// `/metrics`.
    pub metrics: MetricsConfig,
    /// Hot reload.
    pub reload: ReloadConfig,
    /// Wall clock for action-token lifetimes and policy time (tests advance it).
    pub clock: Clock,
    /// The log writer's drop count, for the metrics (the binary's writer).
    pub log_drops: Option<crate::logging::LogDrops>,
}

impl HostConfig {
    /// Defaults for a root directory.
    pub fn for_root(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            server: ServerConfig::default(),
            runtime: RuntimeConfig::default(),
            auth: AuthConfig::default(),
            redis: RedisConfig::default(),
            broker: BrokerConfig::default(),
            outbound: OutboundConfig::default(),
            idempotency: IdempotencyConfig::default(),
            audit: AuditOptions::default(),
            approvals: ApprovalsConfig::default(),
            connections: ConnectionsConfig::default(),
            telemetry: TelemetryConfig::default(),
            mcp: McpConfig::default(),
            metrics: MetricsConfig::default(),
            reload: ReloadConfig::default(),
            clock: Clock::default(),
            log_drops: None,
        }
    }

    /// Check every bound, and the rules between settings; the error names
    /// the setting's key and what is allowed.
    pub fn validate(&self) -> anyhow::Result<()> {
        for setting in settings() {
            setting.check_range(&setting.get(self)).map_err(|e| anyhow::anyhow!("{}: {e}", setting.key))?;
        }
        if self.auth.jwks_min_max_age > self.auth.jwks_max_max_age {
            anyhow::bail!("auth.jwks_min_max_age_s: must not exceed auth.jwks_max_max_age_s");
        }
        // The Redis client's own parser; the URL may hold a password, so the
        // error never shows it.
        if let Some(url) = &self.redis.url
            && redis::Client::open(url.as_str()).is_err()
        {
            anyhow::bail!("redis.url: not a URL the Redis client accepts (redis://, rediss://, unix://…)");
        }
        if self.metrics.listen.is_some_and(|m| m == self.server.listen && m.port() != 0) {
            anyhow::bail!(
                "metrics.listen: must differ from server.listen (metrics are never served on the API listener)"
            );
        }
        for (key, url) in [
            ("mcp.public_url", &self.mcp.public_url),
            ("audit.witness_url", &self.audit.witness_url),
            ("audit.export_url", &self.audit.export_url),
            ("approvals.webhook_url", &self.approvals.webhook_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                anyhow::bail!("{key}: must be an http:// or https:// URL");
            }
        }
        if self.audit.export_url.is_some() && self.audit.export_key_file.is_none() {
            anyhow::bail!(
                "audit.export_key_file: required with audit.export_url (the key that signs batches)"
            );
        }
        if self.approvals.webhook_url.is_some() && self.approvals.webhook_key_file.is_none() {
            anyhow::bail!(
                "approvals.webhook_key_file: required with approvals.webhook_url (the key that signs events)"
            );
        }
        Ok(())
    }

    /// The key that seals users' connection tokens: the configured file,
    /// else `.runtime/connections.key`.
    pub fn connections_key_file(&self) -> PathBuf {
        match &self.connections.key_file {
            Some(file) => self.resolve(file),
            None => self.runtime_dir().join("connections.key"),
        }
    }

    /// `manifests/` under the root.
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// `policies/policies.yml` under the root.
    pub fn policy_file(&self) -> PathBuf {
        self.root.join("policies").join("policies.yml")
    }

    /// `.audit/` under the root: the audit trail and its checkpoints.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join(".audit")
    }

    /// `.runtime/` under the root: generated keys, caches, embedded state.
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join(".runtime")
    }

    /// The providers file in force: the configured one, else
    /// `.runtime/providers.yml` if it exists.
    pub fn providers_file(&self) -> Option<PathBuf> {
        match &self.broker.providers_file {
            Some(file) => Some(self.resolve(file)),
            None => Some(self.runtime_dir().join("providers.yml")).filter(|f| f.is_file()),
        }
    }

    /// Precompiled components: the configured directory, else
    /// `.runtime/cache/`.
    pub fn compile_cache_dir(&self) -> PathBuf {
        match &self.runtime.compile_cache_dir {
            Some(dir) => self.resolve(dir),
            None => self.runtime_dir().join("cache"),
        }
    }

    /// A path from a manifest or setting, relative to the root unless absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.root.join(path) }
    }
}

impl RedisConfig {
    /// Whether shared state lives in Redis.
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Whether calls go on without rate limiting while Redis cannot answer.
    pub fn fails_open(&self) -> bool {
        self.enabled() && self.fail_open
    }
}

#[cfg(test)]
mod config_tests;
