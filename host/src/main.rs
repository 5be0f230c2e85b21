//! The `fastmcp` binary: parse the command line, bind, serve.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fastmcp_host::config::Loaded;
use fastmcp_host::config::flags::{ConfigLocation, SettingFlags};
use fastmcp_host::{AppState, HostConfig};
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
    /// Serve the REST API and the MCP endpoint.
    Serve(Box<ServeArgs>),
    /// Print a token signed with the development key (for local use).
    Token(TokenArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Tool authors' commands: new, build, check, dev.
    #[command(subcommand)]
    Plugin(fastmcp_host::authoring::cli::PluginCommand),
    /// The host's configuration: check it, print it.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the signed checkpoints; exit non-zero naming
    /// the first bad file and line.
    Verify(VerifyArgs),
    /// Print the last records (and, with --follow, new ones as they come).
    Tail(TailArgs),
    /// Print the records matching filters (time range, tool, sub, decision,
    /// event, trace id).
    Query(QueryArgs),
}

#[derive(clap::Args)]
struct TrailArgs {
    /// Project root (the trail is `ROOT/.audit`).
    #[arg(long, env = "FASTMCP_ROOT", default_value = ".")]
    root: PathBuf,
    /// The trail directory (overrides the root's).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// JSON lines (as in the trail) or a table.
    #[arg(long, value_enum, default_value = "json")]
    format: fastmcp_host::audit::query::Format,
}

impl TrailArgs {
    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| HostConfig::for_root(&self.root).audit_dir())
    }
}

#[derive(clap::Args)]
struct TailArgs {
    #[command(flatten)]
    trail: TrailArgs,
    /// How many of the last records.
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: usize,
    /// Keep printing records as they are written.
    #[arg(short, long)]
    follow: bool,
}

#[derive(clap::Args)]
struct QueryArgs {
    #[command(flatten)]
    trail: TrailArgs,
    /// Records at or after: RFC 3339, or a duration back from now (15m, 2h, 1d).
    #[arg(long)]
    since: Option<String>,
    /// Records before: RFC 3339, or a duration back from now.
    #[arg(long)]
    until: Option<String>,
    /// The tool id (`plugin:tool`).
    #[arg(long)]
    tool: Option<String>,
    /// The caller's subject.
    #[arg(long)]
    sub: Option<String>,
    /// The decision: `completed`, `pending_confirmation`, …, or an error code.
    #[arg(long, alias = "code")]
    decision: Option<String>,
    /// The event: `tools.invoke`, `tools.denied`, `host.start`, …
    #[arg(long)]
    event: Option<String>,
    /// The W3C trace id (32 hex digits).
    #[arg(long)]
    trace_id: Option<String>,
    /// At most the last N matching records.
    #[arg(long)]
    limit: Option<usize>,
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
    /// The token's issuer (default: the host's `auth.issuer`).
    #[arg(long)]
    issuer: Option<String>,
    /// The token's audience (default: the host's `auth.audience`).
    #[arg(long)]
    audience: Option<String>,
    /// The project whose `.runtime/` holds the development key, and its configuration.
    #[command(flatten)]
    location: ConfigLocation,
}

/// `serve`, and the `config` commands that show what it would serve with.
#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    location: ConfigLocation,
    #[command(flatten)]
    settings: SettingFlags,
}

impl ServeArgs {
    /// The configuration: defaults, file, environment, flags; validated.
    fn load(&self) -> anyhow::Result<Loaded> {
        self.location.load(&self.settings.given)
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration `serve` would use (config file,
    /// environment, flags); exit 1 naming the first error.
    Check(Box<ServeArgs>),
    /// Show the effective configuration as a config file: every setting,
    /// its value (secrets redacted) and where it came from.
    Print(Box<ServeArgs>),
    /// Print a config file to start from: every setting at its default,
    /// documented and commented out (`fastmcp.example.yaml`).
    Example,
    /// Print the table of settings as the README shows it (Markdown).
    Table,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    if let Command::Plugin(command) = command {
        fastmcp_host::logging::init_for_terminal();
        return tokio::task::spawn_blocking(move || fastmcp_host::authoring::cli::run(command)).await?;
    }
    if let Command::Serve(args) = command {
        let Loaded { mut config, warnings, .. } = args.load()?;
        fastmcp_host::telemetry::check(&config)?;
        let tracing = fastmcp_host::telemetry::Tracing::start(&config.telemetry)?;
        let (tracing, tracer) = tracing.unzip();
        let (_flush_on_exit, log_drops) = fastmcp_host::logging::init(tracer);
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        if let Some(tracing) = &tracing {
            tracing::info!(endpoint = %tracing.endpoint, "exporting traces");
        }
        config.log_drops = Some(log_drops);
        let served = serve(config).await;
        if let Some(tracing) = tracing {
            tracing.shutdown().await;
        }
        return served;
    }
    let (_flush_on_exit, _) = fastmcp_host::logging::init(None);
    match command {
        Command::Serve(_) => unreachable!("served above"),
        Command::Config(ConfigCommand::Check(args)) => {
            let loaded = args.load()?;
            fastmcp_host::telemetry::check(&loaded.config)?;
            let file = loaded.file.as_ref().map_or("no config file".to_owned(), |f| f.display().to_string());
            println!("ok: {file}; {} settings", fastmcp_host::config::settings().len());
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", fastmcp_host::config::example_file());
            Ok(())
        }
        Command::Config(ConfigCommand::Table) => {
            print!("{}", fastmcp_host::config::markdown_table());
            Ok(())
        }
        Command::Config(ConfigCommand::Print(args)) => {
            let loaded = args.load()?;
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{}", loaded.print());
            Ok(())
        }
        Command::Token(args) => token(args),
        Command::Audit(AuditCommand::Verify(args)) => verify_audit(args),
        Command::Audit(AuditCommand::Tail(args)) => {
            let filter = fastmcp_host::audit::query::Filter::default();
            print_trail(&args.trail, &filter, Some(args.lines), args.follow)
        }
        Command::Audit(AuditCommand::Query(args)) => {
            use fastmcp_host::audit::query::{Filter, parse_time};
            let time =
                |t: &Option<String>| t.as_deref().map(parse_time).transpose().map_err(anyhow::Error::msg);
            let filter = Filter {
                since: time(&args.since)?,
                until: time(&args.until)?,
                tool: args.tool,
                sub: args.sub,
                decision: args.decision,
                event: args.event,
                trace_id: args.trace_id.map(|t| t.to_ascii_lowercase()),
            };
            print_trail(&args.trail, &filter, args.limit, false)
        }
        Command::Plugin(_) => unreachable!("run above"),
    }
}

/// Print the trail's matching records; a broken chain ends it with exit 1.
fn print_trail(
    args: &TrailArgs,
    filter: &fastmcp_host::audit::query::Filter,
    last: Option<usize>,
    follow: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Err(e) = fastmcp_host::audit::query::run(&args.dir(), filter, args.format, last, follow, &mut out)
    {
        eprintln!("audit: {e}");
        std::process::exit(1);
    }
    Ok(())
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
    let config = args.location.load(&[])?.config;
    let files = DevKeyFiles::in_dir(&config.runtime_dir());
    if files.ensure()? {
        eprintln!("generated development keys in {}", files.jwks.display());
    }
    let claims = dev_claims(
        args.issuer.as_deref().unwrap_or(&config.auth.issuer),
        args.audience.as_deref().unwrap_or(&config.auth.audience),
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
    let listen = config.server.listen;
    fastmcp_host::plugin_log::start(
        config.runtime_dir().join(fastmcp_host::plugin_log::DIR),
        config.runtime.plugin_log_bytes,
    );
    let state = AppState::start(config).await?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    if let Some(metrics) = state.config().metrics.listen {
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
