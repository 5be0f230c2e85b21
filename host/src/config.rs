//! Host configuration: every limit in one place, each with a safe default.
//!
//! The binary fills a [`HostConfig`] from CLI flags and environment variables
//! (flags win); tests build one directly with [`HostConfig::for_root`].

use crate::broker::BrokerConfig;
use crate::clock::Clock;
use crate::outbound::OutboundConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the host needs to know to serve.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Project root: `manifests/`, `policies/`, `plugins/`, `.runtime/` live under it.
    pub root: PathBuf,
    /// Address to listen on (the binary binds it; `serve` takes a listener).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// The sandbox limits.
    pub runtime: RuntimeConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Wall clock for action-token lifetimes and policy time (tests advance it).
    pub clock: Clock,
    /// Reload manifests, components and policies when their files change.
    pub watch: bool,
    /// Shared state for several replicas: rate limits, spent action tokens
    /// and idempotency records live in this Redis when set.
    pub redis: Option<RedisConfig>,
    /// The operator's providers file (secrets by reference). Default:
    /// `.runtime/providers.yml` under the root, when it exists.
    pub providers_file: Option<PathBuf>,
    /// Token brokering.
    pub broker: BrokerConfig,
    /// Limits on plugins' outbound HTTP.
    pub outbound: OutboundConfig,
    /// Limits of the inbound HTTP server.
    pub server: ServerConfig,
    /// Where `/metrics` is served: its own listener (the binary's default is
    /// `127.0.0.1:9464`), never the API listener. `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Quotas of the idempotency store.
    pub idempotency: IdempotencyConfig,
    /// The audit trail's witness and record cap.
    pub audit: AuditOptions,
    /// Where precompiled components are kept (default `.runtime/cache`);
    /// hosts of the same build may share one.
    pub compile_cache: Option<PathBuf>,
    /// The log writer's drop count, for the metrics (the binary's writer).
    pub log_drops: Option<crate::logging::LogDrops>,
    /// The MCP endpoint.
    pub mcp: McpConfig,
}

/// The MCP endpoint (`/mcp`).
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// Browser origins allowed to call `/mcp` (`scheme://host[:port]`); a
    /// request carrying any other `Origin` is refused (403).
    pub allowed_origins: Vec<String>,
    /// The host's public base URL (`https://tools.example.com`), for the
    /// protected-resource metadata; default: `http://` and the `Host` header.
    pub public_url: Option<String>,
    /// Authorization servers named in the metadata (default: the token
    /// issuer, when it is a URL).
    pub authorization_servers: Vec<String>,
    /// Legacy (2025-11-25) sessions open at once; beyond, 503.
    pub max_sessions: usize,
    /// A legacy session idle this long is closed.
    pub session_idle: Duration,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            public_url: None,
            authorization_servers: Vec::new(),
            max_sessions: 256,
            session_idle: Duration::from_secs(300),
        }
    }
}

/// Limits of the inbound HTTP server and of unauthenticated traffic.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest wait for a request's line and headers — and for the next
    /// request on an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// Longest wait for a request body to arrive in full (408 `body_timeout`).
    pub body_read_timeout: Duration,
    /// Longest a response may take (503 `request_timeout`); a call already
    /// running still finishes and is audited.
    pub request_timeout: Duration,
    /// Connections served at once; beyond, new ones wait to be accepted.
    pub max_connections: usize,
    /// Largest request line plus headers, in bytes (at least 8192).
    pub max_header_bytes: usize,
    /// Keep connections open between requests.
    pub keep_alive: bool,
    /// How long shutdown waits for open connections.
    pub shutdown_grace: Duration,
    /// Failed authentications per client address per minute that are
    /// audited one by one; beyond, they are counted and audited in aggregate.
    pub auth_failures_per_minute: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            keep_alive: true,
            shutdown_grace: Duration::from_secs(30),
            auth_failures_per_minute: 30,
        }
    }
}

/// Quotas of the idempotency store.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// Largest reply stored for replay; a bigger one is still answered, and
    /// a retry gets 409 `idempotency_reply_too_large`.
    pub max_reply_bytes: usize,
    /// Keys one caller (tenant + subject) may hold at once; beyond, 429
    /// `idempotency_quota_exceeded`.
    pub max_keys_per_caller: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self { max_reply_bytes: 64 * 1024, max_keys_per_caller: 1000 }
    }
}

/// Options of the audit trail.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Largest record in bytes; bigger events are cut with a digest.
    pub max_record_bytes: usize,
    /// A directory (on another mount) that receives a copy of every checkpoint.
    pub witness_dir: Option<PathBuf>,
    /// An HTTP endpoint that receives every checkpoint (POST, JSON).
    pub witness_url: Option<String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            max_record_bytes: crate::audit::DEFAULT_MAX_RECORD_BYTES,
            witness_dir: None,
            witness_url: None,
        }
    }
}

/// Where the shared Redis is and how the host treats it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Longest wait for one Redis operation before failing it.
    pub timeout: Duration,
    /// When Redis cannot answer, let calls through without rate limiting
    /// (confirmations and idempotency still fail closed). Off by default.
    pub fail_open: bool,
}

/// How bearer tokens are verified.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_s: u64,
    /// A JWKS file (wins over the URL).
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL.
    pub jwks_url: Option<String>,
    /// Timeout of one JWKS fetch.
    pub jwks_timeout: Duration,
    /// Minimum time between refetches triggered by unknown `kid`s.
    pub jwks_refetch_interval: Duration,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Verified tokens remembered (0 disables the cache).
    pub token_cache_size: usize,
    /// How often a remote JWKS is refetched when its response names no
    /// `Cache-Control: max-age` (which is honoured within
    /// [`AuthConfig::jwks_max_age_bounds`]).
    pub jwks_refresh_interval: Duration,
    /// The shortest and longest refresh interval a `max-age` may set.
    pub jwks_max_age_bounds: (Duration, Duration),
    /// When set, tokens must carry this `typ` header (e.g. `at+jwt`, RFC 9068).
    pub required_typ: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "https://idp.local".into(),
            audience: "fastmcp".into(),
            leeway_s: 30,
            jwks_file: None,
            jwks_url: None,
            jwks_timeout: Duration::from_secs(5),
            jwks_refetch_interval: Duration::from_secs(5),
            max_token_bytes: 8 * 1024,
            token_cache_size: 10_000,
            jwks_refresh_interval: Duration::from_secs(300),
            jwks_max_age_bounds: (Duration::from_secs(30), Duration::from_secs(3600)),
            required_typ: None,
        }
    }
}

/// Limits of the WebAssembly sandbox that are not per plugin.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Calls that may run at once; the pooling allocator is sized to match.
    pub max_concurrent_calls: u32,
    /// How long a call may wait for a free slot before 503 `overloaded`.
    pub queue_timeout: Duration,
    /// Epoch tick: the granularity of deadlines and of cooperative yields.
    pub epoch_tick: Duration,
    /// Upper bound for any manifest's `limits.memory_mb`.
    pub max_memory_mb: u32,
    /// Upper bound for any manifest's `limits.timeout_ms`.
    pub max_timeout_ms: u64,
    /// Use the pooling allocator if the machine allows it.
    pub pooling: bool,
    /// Largest JSON result a plugin may return, in bytes.
    pub max_result_bytes: usize,
    /// Log lines a single call may write through the `log` import.
    pub max_log_lines_per_call: u32,
    /// Bytes of each linear memory the pooling allocator resets with
    /// `memset` (and keeps resident) when a call ends, instead of returning
    /// them to the kernel with `madvise` — no syscall, TLB shootdown or page
    /// fault per call for small plugins. Either way the next call starts from
    /// a clean memory.
    pub memory_keep_resident_bytes: usize,
    /// The same for tables.
    pub table_keep_resident_bytes: usize,
    /// Bytes of compiled functions kept in memory (Cranelift's incremental
    /// cache), so a rebuilt component whose code is mostly unchanged (a
    /// Python or JavaScript plugin is an interpreter plus the author's code)
    /// compiles only what changed. 0 turns it off.
    pub function_cache_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 128,
            queue_timeout: Duration::from_millis(250),
            epoch_tick: Duration::from_millis(10),
            max_memory_mb: 1024,
            max_timeout_ms: 60_000,
            pooling: true,
            max_result_bytes: 4 << 20,
            max_log_lines_per_call: 256,
            memory_keep_resident_bytes: 4 << 20,
            function_cache_bytes: 256 << 20,
            table_keep_resident_bytes: 64 << 10,
        }
    }
}

impl HostConfig {
    /// Defaults for a root directory.
    pub fn for_root(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 1 << 20,
            runtime: RuntimeConfig::default(),
            auth: AuthConfig::default(),
            clock: Clock::default(),
            watch: true,
            redis: None,
            providers_file: None,
            broker: BrokerConfig::default(),
            outbound: OutboundConfig::default(),
            server: ServerConfig::default(),
            metrics_listen: None,
            idempotency: IdempotencyConfig::default(),
            audit: AuditOptions::default(),
            compile_cache: None,
            log_drops: None,
            mcp: McpConfig::default(),
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
        match &self.providers_file {
            Some(file) => Some(self.resolve(file)),
            None => Some(self.runtime_dir().join("providers.yml")).filter(|f| f.is_file()),
        }
    }

    /// Precompiled components: the configured directory, else
    /// `.runtime/cache/`.
    pub fn compile_cache_dir(&self) -> PathBuf {
        match &self.compile_cache {
            Some(dir) => self.resolve(dir),
            None => self.runtime_dir().join("cache"),
        }
    }

    /// A path from a manifest, relative to the root unless absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.root.join(path) }
    }
}
