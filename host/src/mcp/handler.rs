//! The MCP server: rmcp's [`ServerHandler`] over the registry. `tools/list`
//! is the catalog (the tools a role of the caller grants); `tools/call` runs
//! [`crate::pipeline::call`] like `POST /tools/{id}/invoke`, and a call that
//! stops at the confirmation gate is asked of the human by elicitation
//! ([`super::confirm`]). The caller is the principal [`super::access`] put
//! into the HTTP request's extensions; rmcp hands those to every request.

use super::confirm;
use super::names;
use crate::auth::{CATALOG_SCOPE, require_scope};
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::pipeline::{self, CallArgs, CallOutcome, CallRequest, Endpoint, Transport};
use crate::principal::Principal;
use crate::state::AppState;
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, ErrorCode, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, SubscriptionFilter, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The `_meta` key of a call's idempotency key (REST: the `Idempotency-Key`
/// header; same semantics).
pub const IDEMPOTENCY_META_KEY: &str = "io.fastmcp/idempotency-key";

/// Tools per `tools/list` page.
const PAGE_SIZE: usize = 100;

/// How long a client may treat a listing as fresh; changes are also pushed
/// (`notifications/tools/list_changed`).
const LIST_TTL_MS: u64 = 30_000;

/// One handler per legacy session, or per stateless request (cheap: a
/// clone of the state).
pub struct ToolServer {
    state: AppState,
    /// Ends the session's change-notification task when the session ends.
    notifier: OnceLock<DropGuard>,
}

impl ToolServer {
    /// A handler over the host's state.
    pub fn new(state: AppState) -> Self {
        Self { state, notifier: OnceLock::new() }
    }
}

/// What the HTTP layer established about a request.
pub(super) struct Caller {
    pub principal: Arc<Principal>,
    pub correlation_id: CorrelationId,
    pub peer: Option<IpAddr>,
    /// Tells the HTTP layer the call's record wrote the request's log line.
    pub logged: Option<super::access::CallLogged>,
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
    Ok(Caller { principal, correlation_id, peer, logged })
}

/// A protocol error carrying the problem details of `error`.
pub(super) fn protocol_error(code: ErrorCode, error: &ApiError, correlation_id: &CorrelationId) -> McpError {
    let problem = serde_json::to_value(error.problem_body(correlation_id)).ok();
    McpError::new(code, format!("{}: {error}", error.code()), problem)
}

impl ServerHandler for ToolServer {
    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build();
        InitializeResult::new(capabilities)
            .with_server_info(Implementation::new("fastmcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Governed tools: every call is authenticated, authorized, rate limited and audited; \
                 destructive tools ask a human to confirm.",
            )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller(&context)?;
        require_scope(&caller.principal, CATALOG_SCOPE)
            .map_err(|e| protocol_error(ErrorCode::INVALID_REQUEST, &e, &caller.correlation_id))?;
        let after = request.and_then(|r| r.cursor);
        let registry = self.state.registry();
        let policy = self.state.policy();
        let mut granted = registry
            .tools()
            .filter(|t| policy.policy.grants(&caller.principal, &t.def.id))
            .filter_map(|t| names::to_mcp(&t.def.id).map(|name| (name, t)))
            .filter(|(name, _)| after.as_deref().is_none_or(|after| name.as_str() > after))
            .collect::<Vec<_>>();
        granted.sort_by(|a, b| a.0.cmp(&b.0));
        let next_cursor = (granted.len() > PAGE_SIZE).then(|| granted[PAGE_SIZE - 1].0.clone());
        let tools = granted.into_iter().take(PAGE_SIZE).map(|(name, t)| describe(name, &t.def)).collect();
        let mut result = ListToolsResult::with_all_items(tools)
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(CacheScope::Private);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller(&context)?;
        let tool = names::to_tool_id(&request.name);
        let key = idempotency_key(&request, &context);
        let args = request.arguments.take().unwrap_or_default();
        let run = Runner {
            state: &self.state,
            caller: &caller,
            tool: &tool,
            args: &args,
            key: &key,
            cancel: &context.ct,
        };
        if let Some(action_token) = &request.request_state {
            return confirm::resume(&run, action_token, request.input_responses.as_ref()).await;
        }
        let outcome = run.call(Endpoint::Invoke, None).await;
        confirm::answer(&run, outcome, &context).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // A legacy session: tell it when the tool list changes, until it ends.
        let token = CancellationToken::new();
        if self.notifier.set(token.clone().drop_guard()).is_err() {
            return;
        }
        let mut changes = self.state.tools_changed();
        let peer = context.peer;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    changed = changes.changed() => {
                        if changed.is_err() || peer.notify_tool_list_changed().await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    fn accepted_subscription_filter(&self, _requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        // 2026-07-28: a `subscriptions/listen` stream.
        let mut changes = self.state.tools_changed();
        loop {
            tokio::select! {
                _ = subscription.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() || subscription.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// A tool as MCP lists it.
fn describe(name: String, def: &crate::manifest::ToolDef) -> Tool {
    let object = |schema: &Value| match schema {
        Value::Object(map) => Arc::new(map.clone()),
        _ => Arc::new(Map::new()),
    };
    let a = def.annotations;
    let annotations = ToolAnnotations::new()
        .read_only(a.read_only)
        .destructive(a.destructive)
        .idempotent(a.idempotent)
        .open_world(a.open_world);
    let mut tool = Tool::new(name, def.description.clone(), object(&def.input_schema))
        .with_title(def.id.clone())
        .with_annotations(annotations);
    if let Some(output) = &def.output_schema {
        tool = tool.with_raw_output_schema(object(output));
    }
    tool
}

/// The call's idempotency key: `_meta["io.fastmcp/idempotency-key"]` of the
/// params (or of the request).
fn idempotency_key(request: &CallToolRequestParams, context: &RequestContext<RoleServer>) -> Option<Value> {
    request
        .meta
        .as_ref()
        .and_then(|meta| meta.0.get(IDEMPOTENCY_META_KEY))
        .or_else(|| context.meta.0.get(IDEMPOTENCY_META_KEY))
        .cloned()
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
