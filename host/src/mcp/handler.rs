//! The MCP server: rmcp's [`ServerHandler`] over the registry. `tools/list`
//! is the catalog (the tools a role of the caller grants); `tools/call` runs
//! [`crate::pipeline::call`] like `POST /tools/{id}/invoke`, and a call that
//! stops at the confirmation gate is asked of the human by elicitation
//! ([`super::confirm`]); one that waits for approvers becomes a task
//! ([`super::tasks`]). The caller is the principal [`super::access`] put
//! into the HTTP request's extensions; rmcp hands those to every request.

use super::names;
use super::render::protocol_error;
use super::runner::{IDEMPOTENCY_META_KEY, Runner, caller};
use super::tasks;
use super::{confirm, connect};
use crate::auth::{CATALOG_SCOPE, require_scope};
use crate::pipeline::Endpoint;
use crate::state::AppState;
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CancelTaskParams, ErrorCode, GetTaskParams,
    GetTaskResult, Implementation, InitializeResult, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, SubscriptionFilter, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::{CancellationToken, DropGuard};

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

impl ServerHandler for ToolServer {
    fn get_info(&self) -> InitializeResult {
        let capabilities =
            ServerCapabilities::builder().enable_tools().enable_tool_list_changed().enable_tasks().build();
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
        let trace = crate::telemetry::CallTrace::mcp_call(
            &caller.trace,
            Some(request.meta.as_ref().map_or(&context.meta.0, |meta| &meta.0)),
            &tool,
            caller.session.as_deref(),
            &context.id.to_string(),
        );
        let run = Runner {
            trace: &trace,
            state: &self.state,
            caller: &caller,
            tool: &tool,
            args: &args,
            key: &key,
            cancel: &context.ct,
        };
        if let Some(action_token) = &request.request_state {
            return confirm::resume(&run, action_token, request.input_responses.as_ref(), &context).await;
        }
        let outcome = run.call(Endpoint::Invoke, None).await;
        let outcome = connect::connecting(&run, outcome, &context).await;
        confirm::answer(&run, outcome, &context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        tasks::get(&self.state, &request.task_id, &context).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        tasks::cancel(&self.state, &request.task_id, &context).await
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
