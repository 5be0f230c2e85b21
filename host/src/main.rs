//! The `fastmcp` binary: parse the command line, bind, serve.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fastmcp_host::{AppState, HostConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

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
    Serve(ServeArgs),
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
    /// Do not use the pooling allocator even if the machine allows it.
    #[arg(long, env = "FASTMCP_NO_POOLING")]
    no_pooling: bool,
}

impl ServeArgs {
    fn into_config(self) -> HostConfig {
        let mut config = HostConfig::for_root(self.root);
        config.listen = self.listen;
        config.max_body_bytes = self.max_body_bytes;
        config.runtime.max_concurrent_calls = self.max_concurrent_calls.max(1);
        config.runtime.queue_timeout = Duration::from_millis(self.queue_timeout_ms);
        config.runtime.max_memory_mb = self.max_memory_mb.max(1);
        config.runtime.pooling = !self.no_pooling;
        config
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(false)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args.into_config()).await,
    }
}

async fn serve(config: HostConfig) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::start(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    fastmcp_host::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
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
