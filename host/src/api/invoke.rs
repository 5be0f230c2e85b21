//! `POST /tools/{id}/invoke` and `POST /tools/{id}/confirm`: the REST
//! transport of the call pipeline.

use super::caller::Authenticated;
use crate::body::read_json_object;
use crate::correlation::{AlreadyLogged, CorrelationId};
use crate::error::{ApiError, Problem};
use crate::pipeline::{
    self, CallArgs, CallOutcome, CallRequest, CompletedBody, DeclineReason, Endpoint, PendingBody, Reply,
    ReplyBody, StoredOutcome, Transport,
};
use crate::server::peer_of;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tracing::Instrument;

/// The request header carrying an idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The response header on replays.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The confirm body's field carrying the action token.
pub const ACTION_TOKEN_FIELD: &str = "action_token";

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
        (status = 200, description = "The tool ran", body = CompletedBody),
        (status = 202, description = "Confirmation required", body = PendingBody),
    )
)]
pub async fn invoke(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
    request: Request,
) -> Response {
    adapt(state, correlation_id, Endpoint::Invoke, id, caller, request).await
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
        (status = 200, description = "Confirmed and ran", body = CompletedBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
    request: Request,
) -> Response {
    adapt(state, correlation_id, Endpoint::Confirm, id, caller, request).await
}

/// Decline a pending action: the original arguments plus `action_token`.
/// The token is spent and the tool does not run (the record says so).
#[utoipa::path(
    post, path = "/tools/{id}/decline", tag = "tools",
    params(("id" = String, Path, description = "Tool id, `plugin:name`")),
    security(("bearer" = [])),
    request_body(content = Object, description = "The original arguments plus `action_token`", content_type = "application/json"),
    responses()
)]
pub async fn decline(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    caller: Result<Authenticated, Problem>,
    request: Request,
) -> Response {
    adapt(state, correlation_id, Endpoint::Decline(DeclineReason::Declined), id, caller, request).await
}

/// The REST side of a call: the request becomes a [`CallRequest`] (the body
/// is read only when the pipeline asks for the arguments, after
/// authorization), and the [`CallOutcome`] becomes the response. The call
/// runs in its own task: if the client goes away or the request timeout
/// answers first, it still runs to its end and its audit record is written.
async fn adapt(
    state: AppState,
    correlation_id: CorrelationId,
    endpoint: Endpoint,
    tool: String,
    caller: Result<Authenticated, Problem>,
    request: Request,
) -> Response {
    let config = state.config();
    let (limit, timeout) = (config.server.max_body_bytes, config.server.body_read_timeout);
    let idempotency_key = match request.headers().get(IDEMPOTENCY_HEADER) {
        None => Ok(None),
        Some(value) => value.to_str().map(|key| Some(key.to_owned())),
    };
    let trace = request.extensions().get::<crate::telemetry::CallTrace>().cloned().unwrap_or_default();
    let headers = crate::pipeline::RequestHeaders::of(request.headers());
    let call = CallRequest {
        headers,
        correlation_id: correlation_id.clone(),
        trace,
        approved: None,
        transport: Transport::Rest,
        endpoint,
        caller: caller.map(|Authenticated(principal)| principal).map_err(|problem| problem.error),
        peer: peer_of(&request).map(|peer| peer.ip()),
        tool,
        args: Box::pin(async move {
            let idempotency_key = idempotency_key.map_err(|_| {
                ApiError::BadRequest("the Idempotency-Key header is not visible ASCII".into())
            })?;
            let mut args = read_json_object(request, limit, timeout).await?;
            let action_token = match endpoint {
                Endpoint::Invoke | Endpoint::Approved => None,
                Endpoint::Confirm | Endpoint::Decline(_) => Some(take_action_token(&mut args)?),
            };
            Ok(CallArgs { args, action_token, idempotency_key })
        }),
        cancel: None,
    };
    let span = tracing::Span::current();
    let task = tokio::spawn(async move { pipeline::call(&state, call).await }.instrument(span));
    let outcome = task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the call task failed");
        CallOutcome { result: Err(ApiError::Internal), rate_limit: None }
    });
    let mut response = render(outcome, &correlation_id);
    // The call's record wrote the request's one log line.
    response.extensions_mut().insert(AlreadyLogged);
    response
}

/// `202` waiting for approvers, with `Location` naming the call's status.
fn awaiting(body: pipeline::AwaitingApprovalBody) -> Response {
    let location = HeaderValue::from_str(&body.status_url).ok();
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Remove and return the confirm body's `action_token`.
fn take_action_token(args: &mut Map<String, Value>) -> Result<String, ApiError> {
    match args.remove(ACTION_TOKEN_FIELD) {
        Some(Value::String(token)) => Ok(token),
        Some(_) => Err(ApiError::BadRequest(format!("`{ACTION_TOKEN_FIELD}` must be a string"))),
        None => Err(ApiError::BadRequest(format!("`{ACTION_TOKEN_FIELD}` is required to confirm"))),
    }
}

/// The outcome as an HTTP response: the typed body, the replay header, and
/// the caller's `RateLimit*` headers (on every answer after the rate-limit
/// step, replays and refusals included).
fn render(outcome: CallOutcome, correlation_id: &CorrelationId) -> Response {
    let mut response = match outcome.result {
        Ok(Reply { body: ReplyBody::Completed(body), .. }) => (StatusCode::OK, Json(body)).into_response(),
        Ok(Reply { body: ReplyBody::Pending(body), .. }) => {
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(Reply { body: ReplyBody::AwaitingApproval(body), .. }) => awaiting(body),
        Ok(Reply { body: ReplyBody::Replayed(stored), .. }) => {
            let mut response = match stored {
                StoredOutcome::Completed(body) => (StatusCode::OK, Json(body)).into_response(),
                StoredOutcome::Pending(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
                StoredOutcome::AwaitingApproval(body) => awaiting(body),
                StoredOutcome::Problem(problem) => {
                    let status =
                        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let mut response = (status, Json(problem)).into_response();
                    let content_type = HeaderValue::from_static("application/problem+json");
                    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
                    response
                }
            };
            response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            response
        }
        Err(error) => error.at(correlation_id).into_response(),
    };
    if let Some(verdict) = outcome.rate_limit {
        let headers = response.headers_mut();
        for (name, value) in
            [("ratelimit-policy", verdict.policy_header()), ("ratelimit", verdict.state_header())]
        {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.entry(name).or_insert(value);
            }
        }
    }
    response
}
