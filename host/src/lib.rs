//! # FastMCP host
//!
//! Runs agent tools as sandboxed WebAssembly components behind a REST API
//! and an MCP endpoint, with every call passing one ordered pipeline (see
//! [`pipeline`]).
//!
//! # Layout
//!
//! Every module of the crate, in one list (a test keeps it complete):
//!
//! - [`config`] — every setting stated once (default, bounds, docs, flag,
//!   variable), read from the config file, the environment and flags;
//! - [`api`] — the HTTP router: REST routes, body extraction, the OpenAPI
//!   document; it mounts the MCP endpoint and serves metrics;
//! - [`mcp`] — the MCP transport (`rmcp`): access layer, `tools/list`,
//!   `tools/call`, elicitation, resource metadata;
//! - [`authoring`] — `fastmcp plugin new/build/check/dev` for tool authors;
//! - [`body`] — request bodies within size and time limits (both transports);
//! - [`correlation`] — correlation ids and the access log;
//! - [`error`] — the error contract (status + stable `code`, problem+json);
//! - [`pipeline`] — the call pipeline, in order, and the `CallRecord`;
//! - [`audit`] — the hash-chained, durable audit trail and its verifier;
//! - [`confirm`] — action tokens for the confirmation gate;
//! - [`approvals`] — calls that wait for approvers: the store of pending
//!   calls, decisions, the inbox, the webhook;
//! - [`idempotency`] — `Idempotency-Key` replay and conflicts;
//! - [`store`] — durable key-value state with TTLs (embedded `redb`);
//! - [`clock`] — the wall clock (advanceable in tests);
//! - [`files`] — atomic writes of host-owned files;
//! - [`auth`] — JWT verification, JWKS and development keys;
//! - [`broker`] — providers, grants and short-lived credentials;
//! - [`connections`] — users' own accounts at providers: the connect flow
//!   (authorization code + PKCE), their tokens sealed at rest, refresh;
//! - [`outbound`] — plugins' outbound HTTP: allowlist, address checks,
//!   credential injection;
//! - [`origin`] — `scheme://host[:port]` origins and the patterns of
//!   `network.allow` (manifests, providers and outbound HTTP use them);
//! - [`policy`] — RBAC roles and CEL rules;
//! - [`principal`] — who is calling;
//! - [`ratelimit`] — GCRA buckets per caller and tool;
//! - [`manifest`] — manifest files, validated at load;
//! - [`registry`] — the immutable snapshot of plugins and tools;
//! - [`runtime`] — the wasmtime sandbox;
//! - [`logging`] — JSON log lines through a bounded, non-blocking writer;
//! - [`plugin_log`] — each plugin's own log file, for its author and `plugin dev`;
//! - [`metrics`] — Prometheus metrics;
//! - [`telemetry`] — OpenTelemetry traces: W3C context in and out, the
//!   call's spans, OTLP export through a bounded queue;
//! - [`server`] — accepting connections within the server's limits;
//! - [`share`] — fair share: per-principal caps on what every caller shares;
//! - [`watch`] — hot reload of manifests, components and policies;
//! - [`state`] — the shared application state;
//! - [`text`] — bounding outside text before it is echoed, logged or recorded.
//!
//! The `fastmcp` binary only parses its command line, binds, and calls
//! [`serve`]; tests call the same function on `127.0.0.1:0`.
//!
//! The public surface is what the binary and the tests need: [`AppState`],
//! [`HostConfig`] and [`config`], [`serve`] and [`serve_metrics`],
//! [`api::router`], [`audit`] (the verifier and checkpoints), [`auth`]
//! (development keys), [`broker`] (secrets and fingerprints), [`clock`] and
//! [`logging`]. Every other module is crate-private; the benchmarks reach
//! the few internals they measure through the hidden `internals` module.

// The layout above names every module, crate-private ones included.
#![allow(rustdoc::private_intra_doc_links)]

pub mod api;
pub(crate) mod approvals;
pub mod audit;
pub mod auth;
pub mod authoring;
pub(crate) mod body;
pub mod broker;
pub mod clock;
pub mod config;
pub(crate) mod confirm;
pub(crate) mod connections;
pub(crate) mod correlation;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod idempotency;
pub mod logging;
pub(crate) mod manifest;
pub(crate) mod mcp;
pub(crate) mod metrics;
pub(crate) mod origin;
pub(crate) mod outbound;
pub(crate) mod pipeline;
pub mod plugin_log;
pub(crate) mod policy;
pub(crate) mod principal;
pub(crate) mod ratelimit;
pub(crate) mod registry;
pub(crate) mod runtime;
pub(crate) mod server;
pub(crate) mod share;
pub(crate) mod state;
pub(crate) mod store;
pub mod telemetry;
pub(crate) mod text;
pub(crate) mod watch;

#[cfg(test)]
mod layout_tests;

pub use config::HostConfig;
pub use principal::Principal;
pub use state::AppState;

/// Internals the criterion benchmarks (`host/benches/`) measure directly.
/// Not part of the host's API: nothing here is stable.
#[doc(hidden)]
pub mod internals {
    pub use crate::manifest::{Manifest, ManifestBounds};
    pub use crate::origin::{Origin, OriginPattern};
    pub use crate::outbound::log::EgressLog;
    pub use crate::policy::PolicySet;
    pub use crate::ratelimit::{Limit, Limiter, RateLimits, RedisBuckets, caller_key};
    pub use crate::runtime::bindings::PluginPre;
    pub use crate::runtime::call_data::{CallData, CallIdentity, OutputLimits, call_context};
    pub use crate::runtime::{engine, link_imports};
    pub use crate::store::redis::Redis;
}

use std::future::Future;
use tokio::net::TcpListener;

/// Serve the API on `listener` until `shutdown` resolves, then stop accepting,
/// let in-flight requests finish, and close the audit trail (`host.stop` and
/// a final checkpoint).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if state.config().reload.watch
        && let Err(e) = watch::spawn(state.clone())
    {
        tracing::error!(error = %e, "cannot watch files: hot reload is off (SIGHUP still reloads)");
    }
    let app = api::router(state.clone());
    let shares = Some(state.shares().clone());
    let served = server::run(listener, app, &state.config().server, shares, shutdown).await;
    state.shutdown().await;
    served
}

/// Serve `GET /metrics` on its own listener until the host shuts down.
pub async fn serve_metrics(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let mut stopping = state.shutdown_signal();
    let app = api::metrics_router(state.clone());
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    server::run(listener, app, &state.config().server, None, stopped).await
}
