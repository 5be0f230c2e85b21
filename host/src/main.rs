//! The `fastmcp` binary: parse the command line, bind, serve.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fastmcp_host::{AppState, HostConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The allocator: mimalloc measured faster than the system allocator on the
/// call path (BENCHMARKS.md, "Load test").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// FastMCP: a host for agent tools running as sandboxed WebAssembly components.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API.
    Serve(Box<ServeArgs>),
    /// Print a token signed with the development key (for local use).
    Token(TokenArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Tool authors' commands: new, build, check, dev.
    #[command(subcommand)]
    Plugin(fastmcp_host::authoring::cli::PluginCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the signed checkpoints; exit non-zero naming
    /// the first bad file and line.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Project root (the trail is `ROOT/.audit`, the key `ROOT/.runtime/audit-checkpoint.pub`).
    #[arg(long, env = "FASTMCP_ROOT", default_value = ".")]
    root: PathBuf,
    /// The trail directory (overrides the root's).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The checkpoint public key, hex. Production verification pins it out
    /// of band; without it, the key beside the private key in the root's
    /// `.runtime/` is trusted (and a note says so).
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// A witness directory holding copies of the checkpoints (`serve
    /// --audit-witness-dir`): a trail rolled back behind it fails.
    #[arg(long)]
    witness: Option<PathBuf>,
    /// Records the host writes at most between checkpoints.
    #[arg(long, default_value_t = 1000)]
    checkpoint_interval: u64,
    /// Accept a trail longer than the interval without a checkpoints file.
    #[arg(long)]
    allow_missing_checkpoints: bool,
    /// Accept more than the interval's records after the last checkpoint
    /// (e.g. verifying a trail while a host is writing it without a final
    /// checkpoint).
    #[arg(long)]
    allow_unanchored_tail: bool,
}

/// Identity settings shared by `serve` and `token`.
#[derive(clap::Args)]
struct IdentityArgs {
    /// Required token issuer (`iss`).
    #[arg(long, env = "FASTMCP_ISSUER", default_value = "https://idp.local")]
    issuer: String,
    /// Required token audience (`aud`).
    #[arg(long, env = "FASTMCP_AUDIENCE", default_value = "fastmcp")]
    audience: String,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Subject (`sub`).
    #[arg(long)]
    sub: String,
    /// Tenant.
    #[arg(long, default_value = "public")]
    tenant: String,
    /// A role (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A scope (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Lifetime: 90s, 15m, 1h, 2d.
    #[arg(long, default_value = "1h", value_parser = fastmcp_host::auth::devkeys::parse_ttl)]
    ttl: Duration,
    /// Project root whose `.runtime/` holds the development key.
    #[arg(long, env = "FASTMCP_ROOT", default_value = ".")]
    root: PathBuf,
    #[command(flatten)]
    identity: IdentityArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Project root (manifests/, policies/, plugins/, .runtime/).
    #[arg(long, env = "FASTMCP_ROOT", default_value = ".")]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "FASTMCP_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Largest request body in bytes.
    #[arg(long, env = "FASTMCP_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Plugin calls that may run at once (the sandbox pool is sized to match).
    #[arg(long, env = "FASTMCP_MAX_CONCURRENT_CALLS", default_value_t = 128)]
    max_concurrent_calls: u32,
    /// How long a call may wait for a free sandbox slot before 503, in ms.
    #[arg(long, env = "FASTMCP_QUEUE_TIMEOUT_MS", default_value_t = 250)]
    queue_timeout_ms: u64,
    /// Upper bound for any manifest's `limits.memory_mb`.
    #[arg(long, env = "FASTMCP_MAX_MEMORY_MB", default_value_t = 1024)]
    max_memory_mb: u32,
    /// Redis for shared rate limits, action tokens and idempotency (replicas).
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Longest wait for one Redis operation, in ms.
    #[arg(long, env = "FASTMCP_REDIS_TIMEOUT_MS", default_value_t = 250)]
    redis_timeout_ms: u64,
    /// When Redis is down, skip rate limiting instead of answering 503.
    #[arg(long, env = "FASTMCP_REDIS_FAIL_OPEN")]
    redis_fail_open: bool,
    /// Do not reload manifests, components and policies on file changes.
    #[arg(long, env = "FASTMCP_NO_WATCH")]
    no_watch: bool,
    /// Bytes of each plugin memory reset in place (memset) rather than
    /// returned to the kernel when a call ends (pooling allocator).
    #[arg(long, env = "FASTMCP_MEMORY_KEEP_RESIDENT_BYTES", default_value_t = 4 << 20)]
    memory_keep_resident_bytes: usize,
    /// Bytes of compiled functions kept in memory, so a changed component
    /// recompiles only its changed functions (0: off).
    #[arg(long, env = "FASTMCP_FUNCTION_CACHE_BYTES", default_value_t = 256 << 20)]
    function_cache_bytes: usize,
    /// Do not use the pooling allocator even if the machine allows it.
    #[arg(long, env = "FASTMCP_NO_POOLING")]
    no_pooling: bool,
    /// JWKS file with the token verification keys.
    #[arg(long, env = "FASTMCP_JWKS_FILE")]
    jwks_file: Option<PathBuf>,
    /// JWKS URL with the token verification keys.
    #[arg(long, env = "FASTMCP_JWKS_URL")]
    jwks_url: Option<String>,
    /// Clock skew allowed for token times, in seconds.
    #[arg(long, env = "FASTMCP_TOKEN_LEEWAY_S", default_value_t = 30)]
    token_leeway_s: u64,
    /// The providers file (credential sources; secrets by file or env name).
    /// Default: ROOT/.runtime/providers.yml when it exists.
    #[arg(long, env = "FASTMCP_PROVIDERS_FILE")]
    providers: Option<PathBuf>,
    /// Largest response body a plugin may receive over outbound HTTP.
    #[arg(long, env = "FASTMCP_OUTBOUND_MAX_RESPONSE_BYTES", default_value_t = 4 << 20)]
    outbound_max_response_bytes: u64,
    /// Largest request body a plugin may send over outbound HTTP.
    #[arg(long, env = "FASTMCP_OUTBOUND_MAX_REQUEST_BYTES", default_value_t = 1 << 20)]
    outbound_max_request_bytes: u64,
    /// Outbound requests one plugin call may make.
    #[arg(long, env = "FASTMCP_OUTBOUND_MAX_REQUESTS_PER_CALL", default_value_t = 32)]
    outbound_max_requests_per_call: u32,
    /// Longest wait for an outbound connection (TCP, TLS, HTTP), in ms.
    #[arg(long, env = "FASTMCP_OUTBOUND_CONNECT_TIMEOUT_MS", default_value_t = 5000)]
    outbound_connect_timeout_ms: u64,
    /// Longest wait for an outbound response's head, in ms.
    #[arg(long, env = "FASTMCP_OUTBOUND_FIRST_BYTE_TIMEOUT_MS", default_value_t = 30_000)]
    outbound_first_byte_timeout_ms: u64,
    /// Longest silence between chunks of an outbound response body, in ms.
    #[arg(long, env = "FASTMCP_OUTBOUND_BETWEEN_BYTES_TIMEOUT_MS", default_value_t = 10_000)]
    outbound_between_bytes_timeout_ms: u64,
    /// Internal address ranges plugins may reach (CIDRs, comma-separated):
    /// loopback, private, link-local… are refused unless listed here.
    #[arg(long, env = "FASTMCP_OUTBOUND_ALLOW_INTERNAL", value_delimiter = ',')]
    outbound_allow_internal: Vec<ipnet::IpNet>,
    /// Longest wait for a request's headers (and for the next request on an
    /// idle keep-alive connection), in ms.
    #[arg(long, env = "FASTMCP_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// Longest wait for a request body, in ms.
    #[arg(long, env = "FASTMCP_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    body_read_timeout_ms: u64,
    /// Longest a response may take, in ms.
    #[arg(long, env = "FASTMCP_REQUEST_TIMEOUT_MS", default_value_t = 120_000)]
    request_timeout_ms: u64,
    /// Connections served at once.
    #[arg(long, env = "FASTMCP_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Largest request line plus headers, in bytes.
    #[arg(long, env = "FASTMCP_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    max_header_bytes: usize,
    /// Close each connection after one request.
    #[arg(long, env = "FASTMCP_NO_KEEP_ALIVE")]
    no_keep_alive: bool,
    /// Failed authentications per client address per minute audited one by
    /// one (beyond: counted, audited in aggregate).
    #[arg(long, env = "FASTMCP_AUTH_FAILURES_PER_MINUTE", default_value_t = 30)]
    auth_failures_per_minute: u32,
    /// Where `/metrics` is served (its own listener), or `off`.
    #[arg(long, env = "FASTMCP_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    metrics_listen: String,
    /// Largest reply kept for Idempotency-Key replay, in bytes.
    #[arg(long, env = "FASTMCP_IDEMPOTENCY_MAX_REPLY_BYTES", default_value_t = 64 * 1024)]
    idempotency_max_reply_bytes: usize,
    /// Live Idempotency-Keys one caller may hold.
    #[arg(long, env = "FASTMCP_IDEMPOTENCY_MAX_KEYS", default_value_t = 1000)]
    idempotency_max_keys: u64,
    /// Largest audit record, in bytes (bigger events are cut with a digest).
    #[arg(long, env = "FASTMCP_AUDIT_MAX_RECORD_BYTES", default_value_t = 16 * 1024)]
    audit_max_record_bytes: usize,
    /// A directory (another mount) that receives a copy of every checkpoint.
    #[arg(long, env = "FASTMCP_AUDIT_WITNESS_DIR")]
    audit_witness_dir: Option<PathBuf>,
    /// An HTTP endpoint that receives every checkpoint (POST).
    #[arg(long, env = "FASTMCP_AUDIT_WITNESS_URL")]
    audit_witness_url: Option<String>,
    /// Refetch a remote JWKS this often (unless its Cache-Control max-age
    /// says otherwise, within 30 s..1 h), in seconds.
    #[arg(long, env = "FASTMCP_JWKS_REFRESH_S", default_value_t = 300)]
    jwks_refresh_s: u64,
    /// Where precompiled components are kept (default ROOT/.runtime/cache).
    #[arg(long, env = "FASTMCP_COMPILE_CACHE_DIR")]
    compile_cache_dir: Option<PathBuf>,
    /// Require this JWT `typ` header (e.g. `at+jwt`, RFC 9068).
    #[arg(long, env = "FASTMCP_REQUIRE_TOKEN_TYPE")]
    require_token_type: Option<String>,
    /// Browser origins allowed to call `/mcp` (comma-separated
    /// `scheme://host[:port]`); any other `Origin` is refused with 403.
    #[arg(long, env = "FASTMCP_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    mcp_allowed_origins: Vec<String>,
    /// The host's public base URL (e.g. `https://tools.example.com`), named
    /// in the OAuth protected-resource metadata.
    #[arg(long, env = "FASTMCP_PUBLIC_URL")]
    public_url: Option<String>,
    /// Authorization servers named in the protected-resource metadata
    /// (comma-separated; default: the token issuer when it is a URL).
    #[arg(long, env = "FASTMCP_AUTHORIZATION_SERVERS", value_delimiter = ',')]
    authorization_servers: Vec<String>,
    /// Legacy (2025-11-25) MCP sessions open at once.
    #[arg(long, env = "FASTMCP_MCP_MAX_SESSIONS", default_value_t = 256)]
    mcp_max_sessions: usize,
    /// Close a legacy MCP session idle this long, in seconds.
    #[arg(long, env = "FASTMCP_MCP_SESSION_IDLE_S", default_value_t = 300)]
    mcp_session_idle_s: u64,
    #[command(flatten)]
    identity: IdentityArgs,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<HostConfig> {
        // Absolute, so watched paths and manifest paths compare equal.
        let root = std::fs::canonicalize(&self.root).unwrap_or(self.root);
        let mut config = HostConfig::for_root(root);
        config.watch = !self.no_watch;
        config.redis =
            self.redis_url.filter(|url| !url.is_empty()).map(|url| fastmcp_host::config::RedisConfig {
                url,
                timeout: Duration::from_millis(self.redis_timeout_ms.max(1)),
                fail_open: self.redis_fail_open,
            });
        config.listen = self.listen;
        config.max_body_bytes = self.max_body_bytes;
        config.runtime.max_concurrent_calls = self.max_concurrent_calls.max(1);
        config.runtime.queue_timeout = Duration::from_millis(self.queue_timeout_ms);
        config.runtime.max_memory_mb = self.max_memory_mb.max(1);
        config.runtime.pooling = !self.no_pooling;
        config.runtime.memory_keep_resident_bytes = self.memory_keep_resident_bytes;
        config.runtime.function_cache_bytes = self.function_cache_bytes;
        config.auth.issuer = self.identity.issuer;
        config.auth.audience = self.identity.audience;
        config.auth.jwks_file = self.jwks_file;
        config.auth.jwks_url = self.jwks_url;
        config.auth.leeway_s = self.token_leeway_s;
        config.providers_file = self.providers;
        config.outbound.max_response_body_bytes = self.outbound_max_response_bytes;
        config.outbound.max_request_body_bytes = self.outbound_max_request_bytes;
        config.outbound.max_requests_per_call = self.outbound_max_requests_per_call;
        config.outbound.connect_timeout = Duration::from_millis(self.outbound_connect_timeout_ms.max(1));
        config.outbound.first_byte_timeout =
            Duration::from_millis(self.outbound_first_byte_timeout_ms.max(1));
        config.outbound.between_bytes_timeout =
            Duration::from_millis(self.outbound_between_bytes_timeout_ms.max(1));
        config.outbound.allow_internal = self.outbound_allow_internal;
        config.server.header_read_timeout = Duration::from_millis(self.header_read_timeout_ms.max(1));
        config.server.body_read_timeout = Duration::from_millis(self.body_read_timeout_ms.max(1));
        config.server.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        config.server.max_connections = self.max_connections.max(1);
        config.server.max_header_bytes = self.max_header_bytes;
        config.server.keep_alive = !self.no_keep_alive;
        config.server.auth_failures_per_minute = self.auth_failures_per_minute;
        config.metrics_listen = match self.metrics_listen.as_str() {
            "off" | "" => None,
            addr => Some(
                addr.parse()
                    .with_context(|| format!("--metrics-listen: `{addr}` is not ADDR:PORT or off"))?,
            ),
        };
        config.idempotency.max_reply_bytes = self.idempotency_max_reply_bytes;
        config.idempotency.max_keys_per_caller = self.idempotency_max_keys.max(1);
        config.audit.max_record_bytes = self.audit_max_record_bytes.max(2048);
        config.audit.witness_dir = self.audit_witness_dir;
        config.audit.witness_url = self.audit_witness_url;
        config.auth.jwks_refresh_interval = Duration::from_secs(self.jwks_refresh_s.max(1));
        config.auth.required_typ = self.require_token_type;
        config.compile_cache = self.compile_cache_dir;
        config.mcp.allowed_origins = self.mcp_allowed_origins;
        config.mcp.public_url = self.public_url;
        config.mcp.authorization_servers = self.authorization_servers;
        config.mcp.max_sessions = self.mcp_max_sessions.max(1);
        config.mcp.session_idle = Duration::from_secs(self.mcp_session_idle_s.max(1));
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    if let Command::Plugin(command) = command {
        fastmcp_host::logging::init_for_terminal();
        return tokio::task::spawn_blocking(move || fastmcp_host::authoring::cli::run(command)).await?;
    }
    let (_flush_on_exit, log_drops) = fastmcp_host::logging::init();
    match command {
        Command::Serve(args) => {
            let mut config = args.into_config()?;
            config.log_drops = Some(log_drops);
            serve(config).await
        }
        Command::Token(args) => token(args),
        Command::Audit(AuditCommand::Verify(args)) => verify_audit(args),
        Command::Plugin(_) => unreachable!("run above"),
    }
}

fn verify_audit(args: VerifyArgs) -> anyhow::Result<()> {
    use fastmcp_host::audit::{checkpoint, verify};
    let config = HostConfig::for_root(&args.root);
    let dir = args.dir.unwrap_or_else(|| config.audit_dir());
    let pinned = args.public_key.is_some();
    let key_path = args.public_key.unwrap_or_else(|| config.runtime_dir().join(checkpoint::PUBLIC_KEY_FILE));
    let key = if key_path.exists() || pinned { Some(checkpoint::read_public_key(&key_path)?) } else { None };
    if !pinned && key.is_some() {
        eprintln!(
            "note: trusting the public key in {} (beside the private key); pin it with --public-key in production",
            key_path.display()
        );
    }
    let options = verify::VerifyOptions {
        public_key: key.as_ref(),
        checkpoint_interval: args.checkpoint_interval.max(1),
        allow_missing_checkpoints: args.allow_missing_checkpoints,
        allow_unanchored_tail: args.allow_unanchored_tail,
        witness: args.witness.as_deref(),
    };
    match verify::verify_with(&dir, &options) {
        Ok(summary) => {
            println!(
                "ok: {} records in {} files, {} checkpoints verified, head {}",
                summary.records, summary.files, summary.checkpoints, summary.head
            );
            Ok(())
        }
        Err(failure) => {
            eprintln!("audit verify failed: {failure}");
            std::process::exit(1);
        }
    }
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    use fastmcp_host::auth::devkeys::{DevKeyFiles, dev_claims};
    let files = DevKeyFiles::in_dir(&HostConfig::for_root(&args.root).runtime_dir());
    if files.ensure()? {
        eprintln!("generated development keys in {}", files.jwks.display());
    }
    let claims = dev_claims(
        &args.identity.issuer,
        &args.identity.audience,
        &args.sub,
        &args.tenant,
        args.roles,
        args.scopes,
        args.ttl,
    );
    println!("{}", files.mint(&claims)?);
    Ok(())
}

async fn serve(config: HostConfig) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::start(config).await?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    if let Some(metrics) = state.config().metrics_listen {
        let metrics = tokio::net::TcpListener::bind(metrics).await.with_context(|| {
            format!("binding the metrics listener {metrics} (--metrics-listen; `off` to not serve)")
        })?;
        tracing::info!(addr = %metrics.local_addr()?, "metrics listening");
        tokio::spawn(fastmcp_host::serve_metrics(metrics, state.clone()));
    }
    reload_on_sighup(state.clone());
    tracing::info!(%addr, "listening");
    fastmcp_host::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `SIGHUP` reloads manifests, components and policies (a broken input keeps
/// what is serving).
fn reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading manifests, components and policies");
            state.reload_all().await;
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight calls");
}
