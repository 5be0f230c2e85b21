//! The approval routes: the requester follows a call that waits for
//! approvers (`/calls/{id}`), approvers list, read and decide what they may
//! decide (`/approvals`). Every route authenticates; an id the caller may
//! not see answers exactly as an id that does not exist.

use super::caller::Authenticated;
use crate::approvals::views::{ApprovalList, ApprovalView, CallStatusBody, DecisionBody};
use crate::auth::{APPROVALS_DECIDE_SCOPE, APPROVALS_READ_SCOPE, INVOKE_SCOPE, require_scope};
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use std::time::Duration;

/// Largest body of a decision (a comment of at most 1000 characters).
const MAX_DECISION_BODY: usize = 16 * 1024;

type Answer<T> = Result<Json<T>, Problem>;

/// The caller, holding `scope`.
fn holding(
    caller: Result<Authenticated, Problem>,
    scope: &str,
    id: &CorrelationId,
) -> Result<Authenticated, Problem> {
    let caller = caller?;
    require_scope(&caller.0, scope).map_err(|e| e.at(id))?;
    Ok(caller)
}

/// The query of `GET /calls/{id}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Seconds to long-poll.
    #[serde(default)]
    wait: u64,
}

/// The requester's call: `awaiting_approval` (with decisions so far),
/// `running`, `completed` (with the result), `denied`, `expired`,
/// `withdrawn` or `failed`.
#[utoipa::path(
    get, path = "/calls/{id}", tag = "approvals",
    params(
        ("id" = String, Path, description = "The call id from the `202`"),
        ("wait" = Option<u64>, Query, description = "Long-poll up to this many seconds (bounded by `approvals.max_wait_s`) while the call waits or runs"),
    ),
    security(("bearer" = [])),
    responses((status = 200, description = "The call", body = CallStatusBody))
)]
pub async fn call_status(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Answer<CallStatusBody> {
    let Authenticated(caller) = holding(caller, INVOKE_SCOPE, &correlation_id)?;
    let Query(query) = query.map_err(|_| {
        ApiError::BadRequest("the only query parameter is `wait`, a whole number of seconds".into())
            .at(&correlation_id)
    })?;
    let wait = Duration::from_secs(query.wait);
    state.approvals().status(&caller, &id, wait).await.map(Json).map_err(|e| e.at(&correlation_id))
}

/// The requester withdraws a call still waiting; it never runs.
#[utoipa::path(
    post, path = "/calls/{id}/withdraw", tag = "approvals",
    params(("id" = String, Path, description = "The call id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Withdrawn", body = CallStatusBody))
)]
pub async fn withdraw(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
) -> Answer<CallStatusBody> {
    let Authenticated(caller) = holding(caller, INVOKE_SCOPE, &correlation_id)?;
    state.approvals().withdraw(&caller, &id).await.map(Json).map_err(|e| e.at(&correlation_id))
}

/// The calls this caller may approve or deny now, oldest first (never
/// another approver's, never the caller's own).
#[utoipa::path(
    get, path = "/approvals", tag = "approvals",
    security(("bearer" = [])),
    responses((status = 200, description = "The inbox", body = ApprovalList))
)]
pub async fn inbox(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    caller: Result<Authenticated, Problem>,
) -> Answer<ApprovalList> {
    let Authenticated(caller) = holding(caller, APPROVALS_READ_SCOPE, &correlation_id)?;
    state.approvals().inbox(&caller).await.map(Json).map_err(|e| e.at(&correlation_id))
}

/// One call, for those who may decide it (and its requester).
#[utoipa::path(
    get, path = "/approvals/{id}", tag = "approvals",
    params(("id" = String, Path, description = "The call id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The call", body = ApprovalView))
)]
pub async fn view(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
) -> Answer<ApprovalView> {
    let Authenticated(caller) = holding(caller, APPROVALS_READ_SCOPE, &correlation_id)?;
    state.approvals().view(&caller, &id).await.map(Json).map_err(|e| e.at(&correlation_id))
}

/// Approve: the approval that completes the quorum starts the call (the
/// answer's `status` is then `running`).
#[utoipa::path(
    post, path = "/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "The call id")),
    security(("bearer" = [])),
    request_body(content = DecisionBody, description = "Optional", content_type = "application/json"),
    responses((status = 200, description = "Decided", body = ApprovalView))
)]
pub async fn approve(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
    request: Request,
) -> Answer<ApprovalView> {
    decide(state, correlation_id, id, caller, request, true).await
}

/// Deny: the call ends `denied` and never runs.
#[utoipa::path(
    post, path = "/approvals/{id}/deny", tag = "approvals",
    params(("id" = String, Path, description = "The call id")),
    security(("bearer" = [])),
    request_body(content = DecisionBody, description = "Optional", content_type = "application/json"),
    responses((status = 200, description = "Decided", body = ApprovalView))
)]
pub async fn deny(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
    request: Request,
) -> Answer<ApprovalView> {
    decide(state, correlation_id, id, caller, request, false).await
}

async fn decide(
    state: AppState,
    correlation_id: CorrelationId,
    id: String,
    caller: Result<Authenticated, Problem>,
    request: Request,
    approve: bool,
) -> Answer<ApprovalView> {
    let Authenticated(caller) = holding(caller, APPROVALS_DECIDE_SCOPE, &correlation_id)?;
    let at = |e: ApiError| e.at(&correlation_id);
    let body = decision_body(&state, request).await.map_err(at)?;
    crate::pipeline::approval::decide(&state, &caller, &id, approve, body.comment).await.map(Json).map_err(at)
}

/// The optional `{"comment": ...}` body.
async fn decision_body(state: &AppState, request: Request) -> Result<DecisionBody, ApiError> {
    let empty = request.headers().get(header::CONTENT_TYPE).is_none()
        && request.headers().get(header::CONTENT_LENGTH).is_none_or(|l| l == "0");
    if empty {
        return Ok(DecisionBody::default());
    }
    let timeout = state.config().server.body_read_timeout;
    let object = crate::body::read_json_object(request, MAX_DECISION_BODY, timeout).await?;
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| ApiError::BadRequest(format!("the decision body: {e}")))
}
