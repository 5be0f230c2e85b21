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
//! a request naming another caller's session is answered as an unknown
//! session, and their number is bounded.

use super::metadata;
use super::names;
use super::sessions::Sessions;
use crate::auth::{CATALOG_SCOPE, INVOKE_SCOPE, authenticate};
use crate::correlation::{AlreadyLogged, CorrelationId};
use crate::error::ApiError;
use crate::pipeline::{self, CallArgs, CallRequest, Endpoint, Transport};
use crate::principal::Principal;
use crate::server::peer_of;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const SESSION_HEADER: &str = "mcp-session-id";
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
    /// Who opened each legacy session: (tenant, subject).
    owners: Mutex<HashMap<String, (String, String)>>,
    max_sessions: usize,
}

impl Access {
    /// The layer over `sessions`, holding at most `max_sessions` of them.
    pub fn new(state: AppState, sessions: Arc<Sessions>, max_sessions: usize) -> Self {
        Self { state, sessions, owners: Mutex::default(), max_sessions }
    }
}

/// The middleware.
pub async fn guard(
    State(access): State<Arc<Access>>,
    correlation_id: CorrelationId,
    request: Request,
    next: Next,
) -> Response {
    let principal = match authenticate(access.state.auth(), request.headers()).await {
        Ok(principal) => principal,
        Err(error) => return unauthenticated(&access.state, error, request, &correlation_id).await,
    };
    if let Err(error) = check_scopes(&principal, &request) {
        return error.at(&correlation_id).into_response();
    }
    let owner = (principal.tenant.clone(), principal.sub.clone());
    let session = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(id) = &session
        && access.owners.lock().expect("owners lock").get(id).is_some_and(|o| *o != owner)
    {
        return unknown_session();
    }
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
    match (&session, response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok())) {
        (None, Some(opened)) => {
            let opened = opened.to_owned();
            if let Err(error) = admit_session(&access, opened, owner).await {
                response = error.at(&correlation_id).into_response();
            }
        }
        (Some(id), _) if method == Method::DELETE && response.status().is_success() => {
            access.owners.lock().expect("owners lock").remove(id);
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

/// Record who opened a new session; over the limit, close it again (503).
async fn admit_session(access: &Access, id: String, owner: (String, String)) -> Result<(), ApiError> {
    let open = access.sessions.open_count();
    if open > access.max_sessions {
        use rmcp::transport::streamable_http_server::session::SessionManager;
        let _ = access.sessions.close_session(&id.into()).await;
        tracing::warn!(open, limit = access.max_sessions, "MCP session limit reached");
        return Err(ApiError::Overloaded);
    }
    // Forget the owners of sessions that ended (idle timeout, DELETE) once
    // the map is as large as the session limit: it never holds more than
    // the live sessions plus this one.
    if access.owners.lock().expect("owners lock").len() >= access.max_sessions {
        access.owners.lock().expect("owners lock").retain(|id, _| access.sessions.is_open(id));
    }
    access.owners.lock().expect("owners lock").insert(id, owner);
    Ok(())
}

/// What rmcp answers for a session it does not know.
fn unknown_session() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}
