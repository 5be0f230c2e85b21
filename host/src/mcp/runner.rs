//! One MCP `tools/call` as the pipeline sees it: who is calling (what the
//! HTTP layer, [`super::access`], established) and the [`Runner`] that
//! hands the call to [`crate::pipeline::call`] — for the invoke, and for the
//! confirm or decline the human's answer leads to ([`super::confirm`]).

use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::pipeline::{self, CallArgs, CallOutcome, CallRequest, Endpoint, Transport};
use crate::principal::Principal;
use crate::state::AppState;
use rmcp::ErrorData as McpError;
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The `_meta` key of a call's idempotency key (REST: the `Idempotency-Key`
/// header; same semantics).
pub const IDEMPOTENCY_META_KEY: &str = "io.fastmcp/idempotency-key";

/// What the HTTP layer established about a request.
pub(super) struct Caller {
    pub principal: Arc<Principal>,
    pub correlation_id: CorrelationId,
    pub peer: Option<IpAddr>,
    /// Tells the HTTP layer the call's record wrote the request's log line.
    pub logged: Option<super::access::CallLogged>,
    /// The HTTP request's trace (the MCP call's span continues it).
    pub trace: crate::telemetry::CallTrace,
    /// The legacy session's id, if any (for the span).
    pub session: Option<String>,
    /// The request's headers a call may read (bearer, `Host`).
    pub headers: crate::pipeline::RequestHeaders,
}

/// The caller of an MCP request. [`super::access`] refuses every request
/// without a principal before rmcp sees it, so a missing one is a host fault.
pub(super) fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    let parts = context.extensions.get::<http::request::Parts>();
    let principal = parts.and_then(|p| p.extensions.get::<Arc<Principal>>()).cloned();
    let Some(principal) = principal else {
        tracing::error!("an MCP request reached the handler without a principal");
        return Err(McpError::internal_error("internal error", None));
    };
    let correlation_id = parts
        .and_then(|p| p.extensions.get::<CorrelationId>())
        .cloned()
        .unwrap_or_else(CorrelationId::generate);
    let peer = parts.and_then(|p| {
        p.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
    });
    let logged = parts.and_then(|p| p.extensions.get::<super::access::CallLogged>()).cloned();
    let trace =
        parts.and_then(|p| p.extensions.get::<crate::telemetry::CallTrace>()).cloned().unwrap_or_default();
    let session = parts
        .and_then(|p| p.headers.get(super::access::SESSION_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::text::clip(v, 128).into_owned());
    let headers = parts.map(|p| crate::pipeline::RequestHeaders::of(&p.headers)).unwrap_or_default();
    Ok(Caller { principal, correlation_id, peer, logged, trace, session, headers })
}

/// Runs the pipeline for one MCP call.
pub(super) struct Runner<'a> {
    pub state: &'a AppState,
    pub caller: &'a Caller,
    pub tool: &'a str,
    pub args: &'a Map<String, Value>,
    pub key: &'a Option<Value>,
    /// Cancelled when the client closes the request's stream.
    pub cancel: &'a CancellationToken,
    /// The MCP call's span.
    pub trace: &'a crate::telemetry::CallTrace,
}

impl Runner<'_> {
    /// Run the call through the pipeline at `endpoint` (the action token for
    /// confirm and decline). rmcp runs every request's handler in a task of
    /// its own, which it never aborts: the call always reaches its record; a
    /// client that goes away cancels `context.ct`, which stops the tool.
    pub async fn call(&self, endpoint: Endpoint, action_token: Option<String>) -> CallOutcome {
        let (args, key) = (self.args.clone(), self.key.clone());
        let request = CallRequest {
            correlation_id: self.caller.correlation_id.clone(),
            trace: self.trace.clone(),
            approved: None,
            headers: self.caller.headers.clone(),
            transport: Transport::Mcp,
            endpoint,
            caller: Ok(self.caller.principal.clone()),
            peer: self.caller.peer,
            tool: self.tool.to_owned(),
            args: Box::pin(async move {
                let idempotency_key = match key {
                    None => None,
                    Some(Value::String(key)) => Some(key),
                    Some(_) => {
                        return Err(ApiError::BadRequest(format!(
                            "`_meta.{IDEMPOTENCY_META_KEY}` must be a string"
                        )));
                    }
                };
                Ok(CallArgs { args, action_token, idempotency_key })
            }),
            cancel: Some(self.cancel.clone()),
        };
        if let Some(logged) = &self.caller.logged {
            logged.mark();
        }
        pipeline::call(self.state, request).await
    }
}
