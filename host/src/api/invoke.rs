//! `POST /tools/{id}/invoke` and `POST /tools/{id}/confirm`.

use crate::correlation::CorrelationId;
use crate::error::{ApiError, Problem, ProblemBody};
use crate::idempotency::REPLAYED_HEADER;
use crate::pipeline::{self, Endpoint, Reply};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;
use utoipa::ToSchema;

/// A completed call (200).
#[derive(Serialize, ToSchema)]
pub struct InvokeResponse {
    /// Always `completed`.
    pub status: String,
    /// The tool id.
    pub tool: String,
    /// The tool's result.
    #[schema(value_type = Object)]
    pub result: Value,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// A call stopped at the confirmation gate (202).
#[derive(Serialize, ToSchema)]
pub struct PendingResponse {
    /// Always `pending_confirmation`.
    pub status: String,
    /// The tool id.
    pub tool: String,
    /// Present it, with the same arguments, to `confirm_url`.
    pub action_token: String,
    /// When the token expires (RFC 3339).
    pub expires_at: String,
    /// Where to confirm.
    pub confirm_url: String,
    /// What the human is asked to confirm.
    pub hint: String,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// Run a tool, or stop at the confirmation gate with an action token.
#[utoipa::path(
    post, path = "/tools/{id}/invoke", tag = "tools",
    params(
        ("id" = String, Path, description = "Tool id, `plugin:name`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replay protection, up to 255 characters"),
    ),
    security(("bearer" = [])),
    request_body(content = Object, description = "The tool's arguments (a JSON object)", content_type = "application/json"),
    responses(
        (status = 200, description = "The tool ran", body = InvokeResponse),
        (status = 202, description = "Confirmation required", body = PendingResponse),
        (status = 400, description = "`bad_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, `policy_denied` or `tool_denied`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`tool_not_found`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 408, description = "`body_timeout`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_in_progress` or `idempotency_reply_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_arguments` or `idempotency_key_reused`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (with `Retry-After`, `RateLimit-Policy`, `RateLimit`) or `idempotency_quota_exceeded`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "`tool_failed` or `upstream_error`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`, `state_unavailable`, `audit_unavailable`, `rate_limit_unavailable` or `request_timeout`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 504, description = "`tool_timeout`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn invoke(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Problem> {
    let reply = run_detached(state, correlation_id.clone(), Endpoint::Invoke, id, request).await;
    reply.map(render).map_err(|e| e.at(&correlation_id))
}

/// Execute a pending action: the original arguments plus `action_token`.
#[utoipa::path(
    post, path = "/tools/{id}/confirm", tag = "tools",
    params(
        ("id" = String, Path, description = "Tool id, `plugin:name`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replay protection, up to 255 characters"),
    ),
    security(("bearer" = [])),
    request_body(content = Object, description = "The original arguments plus `action_token`", content_type = "application/json"),
    responses(
        (status = 200, description = "Confirmed and ran", body = InvokeResponse),
        (status = 400, description = "`bad_request` (e.g. no `action_token`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`invalid_action_token`, `insufficient_scope` or `policy_denied`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`action_token_used` or `idempotency_in_progress`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`action_token_expired`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_arguments` or `idempotency_key_reused`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "`tool_failed` or `upstream_error`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 504, description = "`tool_timeout`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Problem> {
    let reply = run_detached(state, correlation_id.clone(), Endpoint::Confirm, id, request).await;
    reply.map(render).map_err(|e| e.at(&correlation_id))
}

/// Run the pipeline in its own task: if the client goes away or the request
/// timeout answers first, the call still runs to its end and its audit
/// record is written.
async fn run_detached(
    state: AppState,
    correlation_id: CorrelationId,
    endpoint: Endpoint,
    id: String,
    request: Request,
) -> Result<Reply, ApiError> {
    let span = tracing::Span::current();
    let task = tokio::spawn(
        async move { pipeline::handle(&state, &correlation_id, endpoint, &id, request).await }
            .instrument(span),
    );
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the call task failed");
        Err(ApiError::Internal)
    })
}

fn render(reply: Reply) -> Response {
    let mut response = (reply.status, Json(reply.body)).into_response();
    let headers = response.headers_mut();
    if reply.problem {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    }
    if reply.replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    if let Some(verdict) = reply.rate_limit {
        for (name, value) in
            [("ratelimit-policy", verdict.policy_header()), ("ratelimit", verdict.state_header())]
        {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}
