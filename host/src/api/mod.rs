//! The HTTP router: the REST API (`docs/api.md`) and the transport layers
//! around it (one authentication per request: [`caller::middleware`]); it
//! mounts the MCP endpoint ([`crate::mcp`]) and serves `/metrics` (and
//! `/health` for probes) on its own listener. Handlers are thin: they
//! extract (the caller with [`caller::Authenticated`]), call the pipeline
//! or read state, and render. The approver inbox page is served from the
//! binary ([`console`]); users connect their own accounts at providers
//! through [`connections`].

mod approvals;
mod caller;
mod catalog;
mod connections;
mod console;
mod health;
mod invoke;
pub mod openapi;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod router_tests;

use crate::correlation::{self, CorrelationId};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The application router.
pub fn router(state: AppState) -> Router {
    let request_timeout = state.config().server.request_timeout;
    Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::document))
        .route("/tool-catalog", get(catalog::catalog))
        .route("/tools/{id}/invoke", post(invoke::invoke))
        .route("/tools/{id}/confirm", post(invoke::confirm))
        .route("/tools/{id}/decline", post(invoke::decline))
        .route("/calls/{id}", get(approvals::call_status))
        .route("/calls/{id}/withdraw", post(approvals::withdraw))
        .route("/approvals", get(approvals::inbox))
        .route("/approvals/{id}", get(approvals::view))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route("/connections", get(connections::list))
        .route("/connections/{provider}", post(connections::start).delete(connections::forget))
        .route("/connections/{provider}/callback", get(connections::callback).post(connections::confirm))
        .route("/console/approvals", get(console::page))
        .route("/console/approvals.js", get(console::script))
        .route("/console/approvals.css", get(console::style))
        .merge(crate::mcp::routes(state.clone()))
        .route_layer(axum::middleware::from_fn(name_request_span))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), caller::middleware))
        .layer(axum::middleware::from_fn_with_state(request_timeout, deadline))
        .layer(axum::middleware::from_fn(correlation::middleware))
        .with_state(state)
}

/// Name the request's span after its route (`POST /tools/{id}/invoke`), once
/// routing has matched one.
async fn name_request_span(request: Request, next: Next) -> Response {
    if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        crate::telemetry::context::name_route(&tracing::Span::current(), request.method(), route.as_str());
    }
    next.run(request).await
}

/// The metrics listener's router: `GET /metrics`, and `GET /health` for
/// probes (answered here even when the API listener is saturated).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/health", get(health::health))
        .with_state(state)
}

/// Answer 503 `request_timeout` when a response takes longer than the
/// request timeout. Tool calls run in their own task ([`invoke`]), so a call
/// that started still finishes and is audited.
async fn deadline(
    State(limit): State<std::time::Duration>,
    correlation_id: CorrelationId,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout { timeout_ms: limit.as_millis() as u64 }
            .at(&correlation_id)
            .into_response(),
    }
}

async fn not_found(correlation_id: CorrelationId, uri: Uri) -> Response {
    ApiError::RouteNotFound(crate::text::clip(uri.path(), correlation::MAX_LOGGED_PATH).into_owned())
        .at(&correlation_id)
        .into_response()
}

async fn method_not_allowed(correlation_id: CorrelationId) -> Response {
    ApiError::MethodNotAllowed.at(&correlation_id).into_response()
}
