//! The manifest file format (`manifests/*.yaml`) exactly as written on disk.
//!
//! Every struct denies unknown fields, so a typo is an error naming the file,
//! the field and the line, never a silently ignored setting. Validation into
//! runtime types happens in [`super::Manifest::from_spec`].

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One plugin's manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// Namespace of the tool ids (`ads` in `ads:createCampaign`).
    pub plugin: String,
    /// The plugin's version (semver recommended).
    pub version: String,
    /// Path of the built component, relative to the root unless absolute.
    pub component: PathBuf,
    /// Sandbox limits for every call into this plugin.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Outbound HTTP allowlist; empty (the default) means no network at all.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Token-brokering grants.
    #[serde(default)]
    pub credentials: Vec<CredentialGrantSpec>,
    /// Plain settings the plugin reads through the `config` import (never
    /// secrets: those are the broker's).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The tools this plugin exports.
    pub tools: Vec<ToolSpec>,
}

/// `limits:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Linear-memory cap in MiB (default 64).
    pub memory_mb: Option<u32>,
    /// Deadline per call in milliseconds (default 5000).
    pub timeout_ms: Option<u64>,
}

/// `network:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `scheme://host:port` patterns (`*` for any port).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// One entry of `credentials:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialGrantSpec {
    /// Provider name, as configured by the operator.
    pub provider: String,
    /// Scopes the plugin may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where the host injects the credential into outbound requests.
    pub inject: Option<InjectSpec>,
}

/// `inject:` of a credential grant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectSpec {
    /// Host (`api.example.com`, `127.0.0.1`) or `host:port` the credential is
    /// injected for.
    pub host: String,
    /// Header carrying the credential.
    pub header: String,
}

/// One entry of `tools:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The tool's name within the plugin.
    pub name: String,
    /// What the tool does, for agents choosing tools.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub input_schema: Value,
    /// JSON Schema of the result: every result is checked against it.
    pub output_schema: Option<Value>,
    /// MCP-style hints.
    #[serde(default)]
    pub annotations: AnnotationsSpec,
    /// Scopes a caller needs, on top of the host-level ones.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Human confirmation gate.
    pub confirmation: Option<ConfirmationSpec>,
    /// Rate limit per (tenant, subject, tool).
    pub rate_limit: Option<RateLimitSpec>,
    /// What the audit trail keeps about calls.
    #[serde(default)]
    pub audit: AuditSpec,
    /// The granted provider whose credential this tool's requests carry
    /// (one of the plugin's `credentials`); a provider that acts as the
    /// caller is used only by tools that name it.
    pub credential: Option<String>,
}

/// `audit:` of a tool.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    /// Store the arguments themselves in audit records, not only their digest.
    /// Off by default: arguments may carry personal data.
    #[serde(default)]
    pub record_args: bool,
}

/// `annotations:` (all default to false).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationsSpec {
    /// The tool does not change anything.
    #[serde(default)]
    pub read_only: bool,
    /// The tool changes external state in a way that may not be undone.
    #[serde(default)]
    pub destructive: bool,
    /// Calling twice with the same arguments has the effect of calling once.
    #[serde(default)]
    pub idempotent: bool,
    /// The tool talks to an open world (the internet) rather than a closed one.
    #[serde(default)]
    pub open_world: bool,
}

/// `confirmation:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationSpec {
    /// Whether every call needs a human confirmation.
    #[serde(default)]
    pub required: bool,
    /// Lifetime of an action token in seconds (default 300).
    pub ttl_s: Option<u64>,
    /// Shown to the human who confirms.
    pub hint: Option<String>,
}

/// `rate_limit:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Sustained calls per minute, per (tenant, subject).
    pub per_minute: u32,
    /// Calls allowed at once (default: `per_minute`).
    pub burst: Option<u32>,
    /// A quota for the tool as a whole, across all callers.
    pub total: Option<QuotaSpec>,
}

/// A bare quota.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// Sustained calls per minute.
    pub per_minute: u32,
    /// Calls allowed at once (default: `per_minute`).
    pub burst: Option<u32>,
}
