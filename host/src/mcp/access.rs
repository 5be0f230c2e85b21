//! The HTTP layer in front of rmcp at `/mcp`: who is calling, before the
//! protocol is parsed. Every request must carry a valid bearer token (401
//! with `WWW-Authenticate: Bearer resource_metadata=…` otherwise, and
//! recorded like any unauthenticated call); a token that can do nothing on
//! MCP, or a 2026-07-28 `tools/list` without the catalog scope, gets 403
//! `insufficient_scope` naming the scope (step-up). The principal rides in
//! the request's extensions to [`super::handler`]. The body is read within
//! the REST limits (size and time) only after authentication.
//!
//! Legacy sessions (2025-11-25) belong to the principal that opened them:
//! a request naming another caller's session gets exactly the answer of an
//! unknown session (404, the same bytes on POST, GET and DELETE). Their
//! number is bounded globally and per principal (429 `share_exceeded`), as
//! are long-lived streams ([`super::streams`]).

use super::metadata;
use super::names;
use super::sessions::Sessions;
use super::streams::Streams;
use crate::auth::{CATALOG_SCOPE, INVOKE_SCOPE, caller_of};
use crate::correlation::{AlreadyLogged, CorrelationId};
use crate::error::ApiError;
use crate::pipeline::{self, CallArgs, CallRequest, Endpoint, Transport};
use crate::principal::Principal;
use crate::server::peer_of;
use crate::share::Owner;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// Set by the handler when a request ran a call through the pipeline, whose
/// record writes the request's log line (the access line is then skipped,
/// as on REST).
#[derive(Clone, Default)]
pub struct CallLogged(Arc<AtomicBool>);

impl CallLogged {
    /// The call's record has written (or will write) the request's line.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The state of the layer.
pub struct Access {
    state: AppState,
    sessions: Arc<Sessions>,
    streams: Streams,
}

impl Access {
    /// The layer over `sessions`.
    pub fn new(state: AppState, sessions: Arc<Sessions>) -> Self {
        let streams = Streams::new(state.config(), state.shares().clone());
        Self { state, sessions, streams }
    }
}

/// The middleware.
pub async fn guard(
    State(access): State<Arc<Access>>,
    correlation_id: CorrelationId,
    request: Request,
    next: Next,
) -> Response {
    let principal = match caller_of(access.state.auth(), request.extensions(), request.headers()).await {
        Ok(principal) => principal,
        Err(error) => return unauthenticated(&access.state, error, request, &correlation_id).await,
    };
    if let Err(error) = check_scopes(&principal, &request) {
        return error.at(&correlation_id).into_response();
    }
    let owner = Owner::from(principal.as_ref());
    let session = match request.headers().get(SESSION_HEADER) {
        None => None,
        Some(id) => match id.to_str() {
            Ok(id) if access.sessions.is_owned_by(id, &owner) => Some(id.to_owned()),
            // Unknown, ended, or another caller's: one answer for all.
            _ => return unknown_session(),
        },
    };
    let stream = match Streams::opens_stream(&request).then(|| access.streams.admit(&principal)) {
        Some(Err(refused)) => return refused.at(&correlation_id).into_response(),
        Some(Ok(held)) => Some(held),
        None => None,
    };
    let mut request = match read_body(&access.state, request).await {
        Ok(request) => request,
        Err(error) => return error.at(&correlation_id).into_response(),
    };
    request.extensions_mut().insert(principal);
    let logged = CallLogged::default();
    request.extensions_mut().insert(logged.clone());
    let method = request.method().clone();
    let mut response = next.run(request).await;
    if logged.0.load(Ordering::Relaxed) {
        // The call's record wrote the request's one log line.
        response.extensions_mut().insert(AlreadyLogged);
    }
    if let Some(held) = stream {
        response = access.streams.bound(response, held);
    }
    match (&session, response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok())) {
        (None, Some(opened)) => {
            let opened = opened.to_owned();
            match admit_session(&access, opened, owner).await {
                Ok(true) => {}
                // Ended already (the client went away).
                Ok(false) => response = unknown_session(),
                Err(error) => response = error.at(&correlation_id).into_response(),
            }
        }
        // The session ended between the check and rmcp: still one answer.
        (Some(_), _) if is_unknown_session(&response) => response = unknown_session(),
        (Some(_), _) if method == Method::DELETE && response.status().is_success() => {
            // rmcp answers 202; clients expect 200 or 204 for a terminated
            // session (the Python SDK logs a failure otherwise).
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        _ => {}
    }
    response
}

/// A token that can neither list nor call gets 403 for anything on MCP; a
/// 2026-07-28 `tools/list` (its method is in a header rmcp checks against
/// the body) needs the catalog scope. A `tools/call` without the invoke
/// scope goes on to the pipeline, which refuses and records it as REST does.
fn check_scopes(principal: &Principal, request: &Request) -> Result<(), ApiError> {
    if !principal.has_scope(INVOKE_SCOPE) && !principal.has_scope(CATALOG_SCOPE) {
        return Err(ApiError::InsufficientScope(format!("{CATALOG_SCOPE} {INVOKE_SCOPE}")));
    }
    let method = request.headers().get(METHOD_HEADER).and_then(|v| v.to_str().ok());
    if method == Some("tools/list") && !principal.has_scope(CATALOG_SCOPE) {
        return Err(ApiError::InsufficientScope(CATALOG_SCOPE.to_owned()));
    }
    Ok(())
}

/// Read the body within the REST limits, so rmcp gets it whole.
async fn read_body(state: &AppState, request: Request) -> Result<Request, ApiError> {
    if request.method() != Method::POST {
        return Ok(request);
    }
    let config = state.config();
    let (parts, body) = request.into_parts();
    let bytes = crate::body::read_bytes(
        &parts.headers,
        body,
        config.server.max_body_bytes,
        config.server.body_read_timeout,
    )
    .await?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// 401 with the resource metadata; a POST is recorded as an unauthenticated
/// call (within the per-address budget, as on REST).
async fn unauthenticated(
    state: &AppState,
    error: ApiError,
    request: Request,
    correlation_id: &CorrelationId,
) -> Response {
    let presented = request.headers().contains_key(header::AUTHORIZATION);
    let metadata_url = metadata::document_url(state, request.headers());
    let error = if request.method() == Method::POST {
        let tool = request.headers().get(NAME_HEADER).and_then(|v| v.to_str().ok()).map(names::to_tool_id);
        let call = CallRequest {
            correlation_id: correlation_id.clone(),
            transport: Transport::Mcp,
            endpoint: Endpoint::Invoke,
            caller: Err(error),
            peer: peer_of(&request).map(|peer| peer.ip()),
            tool: tool.unwrap_or_default(),
            args: Box::pin(async { Ok(CallArgs::default()) }),
            cancel: None,
            trace: request.extensions().get::<crate::telemetry::CallTrace>().cloned().unwrap_or_default(),
            approved: None,
            headers: Default::default(),
        };
        pipeline::call(state, call).await.result.err().unwrap_or(ApiError::Internal)
    } else {
        error
    };
    let mut response = error.at(correlation_id).into_response();
    let challenge = if presented {
        format!(r#"Bearer error="invalid_token", resource_metadata="{metadata_url}""#)
    } else {
        format!(r#"Bearer resource_metadata="{metadata_url}""#)
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    if request.method() == Method::POST {
        response.extensions_mut().insert(AlreadyLogged);
    }
    response
}

/// Record who opened a new session (`false` if it is gone already); over
/// the global limit (503) or the owner's share (429), close it again.
async fn admit_session(access: &Access, id: String, owner: Owner) -> Result<bool, ApiError> {
    use rmcp::transport::streamable_http_server::session::SessionManager;
    let open = access.sessions.open_count();
    let limit = access.state.config().mcp.max_sessions;
    let admitted = if open > limit {
        tracing::warn!(open, limit, "MCP session limit reached");
        Err(ApiError::Overloaded)
    } else {
        access.state.shares().sessions.take(owner).map(|share| access.sessions.admit(&id, share))
    };
    if !matches!(admitted, Ok(true)) {
        let _ = access.sessions.close_session(&id.into()).await;
    }
    admitted
}

/// rmcp's own answer for a session it does not know: a plain-text 404 (a
/// JSON-RPC error that maps to 404 is not one).
fn is_unknown_session(response: &Response) -> bool {
    response.status() == StatusCode::NOT_FOUND
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"))
}

/// The one answer for a session that is unknown, ended, or another
/// caller's: the same status, headers and body whichever it is.
fn unknown_session() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found: Session not found",
    )
        .into_response()
}
