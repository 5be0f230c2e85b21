//! Manifests: parsed into [`spec`] types, then validated into a [`Manifest`]
//! whose tools carry compiled JSON Schema validators.
//!
//! Validation happens once, at load. A bad manifest is rejected with a
//! [`ManifestError`] naming the file, the field and the reason; nothing about
//! a manifest is re-checked per call.

mod network;
pub mod spec;

use crate::broker::Grant;
use crate::error::FieldError;
use crate::origin::OriginPattern;
use crate::ratelimit::Limit;
use serde_json::Value;
use spec::{AnnotationsSpec, ManifestSpec, ToolSpec};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Default linear-memory cap per call.
pub const DEFAULT_MEMORY_MB: u32 = 64;
/// Default deadline per call.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Default lifetime of an action token.
pub const DEFAULT_CONFIRMATION_TTL_S: u64 = 300;

/// A manifest that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// The offending field (a path like `tools[1].input_schema`), or `-` for
    /// the whole file.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl ManifestError {
    fn new(file: &Path, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), field: field.into(), reason: reason.into() }
    }
}

/// Bounds the host puts on every manifest.
#[derive(Debug, Clone, Copy)]
pub struct ManifestBounds {
    /// Largest `limits.memory_mb` accepted.
    pub max_memory_mb: u32,
    /// Largest `limits.timeout_ms` accepted.
    pub max_timeout_ms: u64,
}

/// A validated manifest.
#[derive(Debug)]
pub struct Manifest {
    /// The file it came from.
    pub file: PathBuf,
    /// Plugin name (tool-id namespace).
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// Component path as written (resolve against the root).
    pub component: PathBuf,
    /// Memory cap in bytes.
    pub memory_bytes: usize,
    /// Deadline per call in milliseconds.
    pub timeout_ms: u64,
    /// `network.allow`, parsed.
    pub allow: Vec<OriginPattern>,
    /// `credentials`, validated (providers are checked against the
    /// operator's configuration when the registry is built).
    pub grants: Vec<Grant>,
    /// `config:` values for the plugin.
    pub config: BTreeMap<String, String>,
    /// The tools, in manifest order.
    pub tools: Vec<ToolDef>,
}

/// A validated tool definition.
#[derive(Debug)]
pub struct ToolDef {
    /// `plugin:name`.
    pub id: String,
    /// Name within the plugin.
    pub name: String,
    /// Description for agents.
    pub description: String,
    /// The input schema as written.
    pub input_schema: Value,
    /// The compiled input schema.
    pub validator: jsonschema::Validator,
    /// The output schema as written, when declared.
    pub output_schema: Option<Value>,
    /// The compiled output schema: every result is checked against it.
    pub output_validator: Option<jsonschema::Validator>,
    /// MCP-style hints.
    pub annotations: AnnotationsSpec,
    /// Tool-level scopes.
    pub scopes: Vec<String>,
    /// Confirmation gate, if any.
    pub confirmation: Option<Confirmation>,
    /// Whether audit records keep the arguments (not only their digest).
    pub record_args: bool,
    /// The provider this tool's requests carry (`credential:`).
    pub credential: Option<String>,
    /// Quota per (tenant, subject); `None` means unlimited (unless a policy
    /// override applies).
    pub rate_limit: Option<Limit>,
    /// Quota for the tool across all callers.
    pub total_rate_limit: Option<Limit>,
}

/// A tool's confirmation gate.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// Lifetime of action tokens in seconds.
    pub ttl_s: u64,
    /// Shown to the confirming human.
    pub hint: Option<String>,
}

impl ToolDef {
    /// Check a result against the declared output schema (if any); the
    /// violations, for the log.
    pub fn check_result(&self, result: &Value) -> Result<(), Vec<String>> {
        let Some(validator) = &self.output_validator else { return Ok(()) };
        let errors: Vec<String> =
            validator.iter_errors(result).take(8).map(|e| format!("{}: {e}", e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Check arguments against the input schema; every violation is reported.
    pub fn validate(&self, args: &Value) -> Result<(), Vec<FieldError>> {
        let errors: Vec<FieldError> = self
            .validator
            .iter_errors(args)
            .map(|e| FieldError { path: e.instance_path().to_string(), message: e.to_string() })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

impl Manifest {
    /// Read and validate one manifest file.
    pub fn load(file: &Path, bounds: ManifestBounds) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ManifestError::new(file, "-", format!("cannot read: {e}")))?;
        Self::parse(file, &text, bounds)
    }

    /// Validate manifest text; `file` is used in errors only.
    pub fn parse(file: &Path, text: &str, bounds: ManifestBounds) -> Result<Self, ManifestError> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let spec: ManifestSpec = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = match e.path().to_string() {
                path if path == "." => "-".to_owned(),
                path => path,
            };
            ManifestError::new(file, field, e.inner().to_string())
        })?;
        Self::from_spec(file, spec, bounds)
    }

    /// Validate a parsed spec.
    pub fn from_spec(file: &Path, spec: ManifestSpec, bounds: ManifestBounds) -> Result<Self, ManifestError> {
        let err = |field: &str, reason: String| ManifestError::new(file, field, reason);
        if !is_plugin_name(&spec.plugin) {
            return Err(err("plugin", format!("`{}` is not [a-z][a-z0-9_-]{{0,63}}", spec.plugin)));
        }
        if spec.version.trim().is_empty() {
            return Err(err("version", "must not be empty".into()));
        }
        let memory_mb = spec.limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if memory_mb == 0 || memory_mb > bounds.max_memory_mb {
            return Err(err(
                "limits.memory_mb",
                format!("{memory_mb} is outside 1..={}", bounds.max_memory_mb),
            ));
        }
        let timeout_ms = spec.limits.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 || timeout_ms > bounds.max_timeout_ms {
            return Err(err(
                "limits.timeout_ms",
                format!("{timeout_ms} is outside 1..={}", bounds.max_timeout_ms),
            ));
        }
        let allow = network::allowlist(&spec.network).map_err(|(f, r)| err(&f, r))?;
        let grants = network::grants(spec.credentials, &allow).map_err(|(f, r)| err(&f, r))?;
        network::check_config(&spec.config).map_err(|(f, r)| err(&f, r))?;
        if spec.tools.is_empty() {
            return Err(err("tools", "a plugin must declare at least one tool".into()));
        }
        let mut names = HashSet::new();
        let mut tools = Vec::with_capacity(spec.tools.len());
        for (i, tool) in spec.tools.into_iter().enumerate() {
            if !names.insert(tool.name.clone()) {
                return Err(err(&format!("tools[{i}].name"), format!("duplicate tool `{}`", tool.name)));
            }
            if let Some(provider) = &tool.credential
                && !grants.iter().any(|g| &g.provider == provider)
            {
                return Err(err(
                    &format!("tools[{i}].credential"),
                    format!("`{provider}` is not one of the plugin's `credentials`"),
                ));
            }
            tools.push(tool_def(&spec.plugin, i, tool).map_err(|(f, r)| err(&f, r))?);
        }
        Ok(Self {
            file: file.to_path_buf(),
            plugin: spec.plugin,
            version: spec.version,
            component: spec.component,
            memory_bytes: (memory_mb as usize) << 20,
            timeout_ms,
            allow,
            grants,
            config: spec.config,
            tools,
        })
    }
}

/// An invalid schema's error, at the JSON pointer of the offending keyword
/// inside the schema (`tools[0].input_schema/properties/name/type`).
fn schema_error(field: String, error: &jsonschema::ValidationError<'_>) -> (String, String) {
    let at = error.instance_path().as_str();
    (format!("{field}{at}"), format!("invalid JSON Schema: {error}"))
}

fn tool_def(plugin: &str, index: usize, spec: ToolSpec) -> Result<ToolDef, (String, String)> {
    let field = |name: &str| format!("tools[{index}].{name}");
    if !is_tool_name(&spec.name) {
        return Err((field("name"), format!("`{}` is not [A-Za-z][A-Za-z0-9_.-]{{0,63}}", spec.name)));
    }
    if spec.input_schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err((field("input_schema"), "must be an object schema (`type: object`)".into()));
    }
    let validator =
        jsonschema::validator_for(&spec.input_schema).map_err(|e| schema_error(field("input_schema"), &e))?;
    let output_validator = match &spec.output_schema {
        None => None,
        Some(output) => {
            Some(jsonschema::validator_for(output).map_err(|e| schema_error(field("output_schema"), &e))?)
        }
    };
    let confirmation = match spec.confirmation {
        Some(c) if c.required => {
            let ttl_s = c.ttl_s.unwrap_or(DEFAULT_CONFIRMATION_TTL_S);
            if ttl_s == 0 || ttl_s > 86_400 {
                return Err((field("confirmation.ttl_s"), format!("{ttl_s} is outside 1..=86400")));
            }
            Some(Confirmation { ttl_s, hint: c.hint })
        }
        _ => None,
    };
    let (rate_limit, total_rate_limit) = match &spec.rate_limit {
        None => (None, None),
        Some(rate) => {
            let caller = Limit::new(rate.per_minute, rate.burst)
                .ok_or_else(|| (field("rate_limit"), "per_minute and burst must be positive".to_owned()))?;
            let total = match rate.total {
                None => None,
                Some(total) => Some(Limit::new(total.per_minute, total.burst).ok_or_else(|| {
                    (field("rate_limit.total"), "per_minute and burst must be positive".to_owned())
                })?),
            };
            (Some(caller), total)
        }
    };
    Ok(ToolDef {
        id: format!("{plugin}:{}", spec.name),
        name: spec.name,
        description: spec.description,
        input_schema: spec.input_schema,
        validator,
        output_schema: spec.output_schema,
        output_validator,
        annotations: spec.annotations,
        scopes: spec.scopes,
        confirmation,
        record_args: spec.audit.record_args,
        credential: spec.credential,
        rate_limit,
        total_rate_limit,
    })
}

/// Whether `id` has the shape of a tool id a manifest can declare:
/// `plugin:name` with both parts valid (at most 129 bytes in all).
pub fn is_tool_id(id: &str) -> bool {
    id.split_once(':').is_some_and(|(plugin, name)| is_plugin_name(plugin) && is_tool_name(name))
}

/// The rule for plugin names (also the tool-id namespace): `[a-z][a-z0-9_-]{0,63}`.
pub fn is_plugin_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_tool_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
