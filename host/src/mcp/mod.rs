//! The MCP endpoint: `POST /mcp` (Streamable HTTP) on the API listener,
//! served by the official Rust SDK (`rmcp`) over the same call pipeline as
//! REST. Revisions 2026-07-28 (stateless, per-request `_meta`) and
//! 2025-11-25 (initialize, optional sessions, server→client elicitation) are
//! chosen per request by rmcp. See `docs/mcp.md`.
//!
//! - [`access`]: authentication, scopes, body limits, session ownership.
//! - [`sessions`]: legacy sessions, their owners and shares.
//! - [`streams`]: long-lived streams within their shares and lifetime.
//! - [`handler`]: `tools/list`, `tools/call`, change notifications.
//! - [`confirm`]: the confirmation gate as elicitation.
//! - [`connect`]: `connection_required` as URL-mode elicitation.
//! - [`tasks`]: calls waiting for approvers as tasks (SEP-2663).
//! - [`render`]: outcomes as `tools/call` results.
//! - [`names`]: `plugin:name` ↔ `plugin.name`.
//! - [`metadata`]: RFC 9728 protected-resource metadata.

mod access;
mod confirm;
mod connect;
mod handler;
pub mod metadata;
mod names;
mod render;
mod runner;
mod sessions;
mod streams;
mod tasks;

pub use handler::ToolServer;

use crate::state::AppState;
use axum::Router;
use axum::routing::get;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

/// The routes: `/mcp` behind its access layer, and the resource metadata.
pub fn routes(state: AppState) -> Router<AppState> {
    let config = &state.config().mcp;
    let sessions = Arc::new(sessions::Sessions::new(config.session_idle));
    // Origin is checked against the configured list (empty: any request
    // carrying an Origin is refused). Host is not: every request carries a
    // bearer token, which a rebinding page cannot attach.
    let server_config = StreamableHttpServerConfig::default()
        .with_allowed_origins(config.allowed_origins.clone())
        .enforce_origin_validation()
        .disable_allowed_hosts()
        .with_legacy_session_mode(true)
        .with_json_response(true)
        .with_max_request_body_bytes(state.config().server.max_body_bytes)
        .with_cancellation_token(shutdown_token(&state));
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(ToolServer::new(handler_state.clone())),
        sessions.clone(),
        server_config,
    );
    let access = Arc::new(access::Access::new(state.clone(), sessions));
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
        .route(metadata::WELL_KNOWN_PATH, get(metadata::document))
        .route(&format!("{}/mcp", metadata::WELL_KNOWN_PATH), get(metadata::document))
}

/// Cancelled when the host shuts down: open streams end.
fn shutdown_token(state: &AppState) -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let mut shutdown = state.shutdown_signal();
    let cancel = token.clone();
    tokio::spawn(async move {
        while shutdown.changed().await.is_ok() {
            if *shutdown.borrow() {
                break;
            }
        }
        cancel.cancel();
    });
    token
}
