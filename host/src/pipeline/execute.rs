//! Execute: run the tool in a fresh sandbox — within the caller's share of
//! sandbox slots, running or waiting (429 `share_exceeded` beyond it, so
//! that one caller's slow calls cannot make every other caller wait out the
//! queue) — and map how it ended to the error contract. Clients learn what kind of failure it was; the runtime's
//! own words (trap messages, wasmtime errors) go to the log only.

use super::CallRecord;
use super::steps::Checked;
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::runtime::call_data::CallIdentity;
use crate::runtime::{CallError, ToolError};
use crate::share::Owner;
use crate::state::AppState;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Run the call's tool with its validated arguments; returns the JSON
/// result. When `cancel` fires first, the sandbox is torn down.
pub(super) async fn execute(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    cancel: Option<&CancellationToken>,
) -> Result<Value, ApiError> {
    let (tool, principal) = (&call.tool, &call.principal);
    let identity = CallIdentity {
        correlation_id: record.correlation_id.to_string(),
        tenant: principal.tenant.clone(),
        subject: principal.sub.clone(),
        tool_id: tool.def.id.clone(),
    };
    let plugin = &tool.plugin;
    let span = record.trace.execute_span(
        &plugin.name,
        &tool.def.id,
        plugin.limits.memory_bytes,
        plugin.limits.timeout.as_millis(),
    );
    let result = run(state, record, call, cancel, identity, &span).instrument(span.clone()).await;
    if let Err(e) = &result {
        crate::telemetry::context::fail(&span, e.code());
    }
    result
}

async fn run(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    cancel: Option<&CancellationToken>,
    identity: CallIdentity,
    span: &tracing::Span,
) -> Result<Value, ApiError> {
    let tool = &call.tool;
    let _slot_share = state.shares().calls.take(Owner::from(call.principal.as_ref()))?;
    let plugin = &tool.plugin;
    let mut grants = state.call_grants(plugin, call.broker.clone(), record.egress.clone());
    grants.egress.trace = record.trace.outbound(span);
    // Only a tool that names its credential can act as the caller.
    if let Some(provider) = &tool.def.credential {
        grants.egress.credential = Some(provider.clone());
        grants.egress.on_behalf = Some(std::sync::Arc::new(crate::broker::OnBehalf {
            sub: call.principal.sub.clone(),
            tenant: call.principal.tenant.clone(),
            token: record.headers.bearer(),
            connection: record.connection.clone(),
        }));
    }
    let running = state.runtime().call(
        &plugin.component,
        plugin.limits,
        identity,
        grants,
        &tool.def.name,
        call.args.to_string(),
    );
    let output = match cancel {
        None => running.await,
        // Dropping the call drops its store: the sandbox is torn down.
        Some(cancel) => tokio::select! {
            output = running => output,
            _ = cancel.cancelled() => {
                crate::telemetry::context::sandbox_outcome(span, "cancelled");
                return Err(ApiError::Cancelled);
            }
        },
    };
    crate::telemetry::context::sandbox_outcome(
        span,
        output.as_ref().map_or_else(sandbox_outcome, |_| "completed"),
    );
    let output = output.map_err(|e| match record.egress.unavailable_credential() {
        // The tool failed after a credential it needed could not be had:
        // that is the failure the caller can act on.
        Some(provider) if !matches!(e, CallError::Overloaded) => ApiError::CredentialUnavailable(provider),
        _ => call_error(&record.correlation_id, &tool.def.id, e),
    })?;
    state.metrics().record_instantiate(output.instantiate);
    // A result must be what the manifest promises callers (and MCP clients,
    // which check `structuredContent` against `outputSchema`).
    if let Err(violations) = tool.def.check_result(&output.result) {
        tracing::warn!(tool = %tool.def.id, ?violations, "result does not match the output schema");
        return Err(ApiError::ToolFailed(format!(
            "tool `{}` returned a result that does not match its output schema",
            tool.def.id
        )));
    }
    Ok(output.result)
}
/// How a sandbox run ended, for its span.
fn sandbox_outcome(error: &CallError) -> &'static str {
    match error {
        CallError::Overloaded => "overloaded",
        CallError::Timeout(_) => "timeout",
        CallError::MemoryLimit(_) => "memory_limit",
        CallError::StackOverflow => "stack_overflow",
        CallError::BadResult(_) => "bad_result",
        CallError::Trap(_) => "trap",
        CallError::Tool(_) => "tool_error",
    }
}

/// Map a sandbox failure to the error contract. Plugin messages are already
/// cut to [`crate::runtime::MAX_TOOL_ERROR_MESSAGE`] in guest memory.
fn call_error(correlation_id: &CorrelationId, tool: &str, error: CallError) -> ApiError {
    match error {
        CallError::Overloaded => ApiError::Overloaded,
        CallError::Timeout(timeout_ms) => ApiError::ToolTimeout { timeout_ms },
        CallError::MemoryLimit(_) | CallError::StackOverflow | CallError::BadResult(_) => {
            tracing::warn!(target: crate::plugin_log::TARGET, %correlation_id, tool, error = %error, "plugin failed");
            ApiError::ToolFailed(format!("tool `{tool}` {error}"))
        }
        CallError::Trap(detail) => {
            // What the plugin printed (its panic message, traceback or
            // error) was logged just before, under the same correlation id.
            tracing::warn!(target: crate::plugin_log::TARGET, %correlation_id, tool, %detail, "plugin trapped");
            ApiError::ToolFailed(format!("tool `{tool}` trapped"))
        }
        CallError::Tool(ToolError::InvalidInput(message)) => ApiError::ToolRejectedInput(message),
        CallError::Tool(ToolError::Denied(message)) => ApiError::ToolDenied(message),
        CallError::Tool(ToolError::Upstream(message)) => {
            tracing::info!(target: crate::plugin_log::TARGET, %correlation_id, tool, %message, "the tool reported an upstream failure");
            ApiError::Upstream(format!("tool `{tool}` reported an upstream failure: {message}"))
        }
        CallError::Tool(ToolError::Internal(message)) => {
            tracing::info!(target: crate::plugin_log::TARGET, %correlation_id, tool, %message, "the tool reported an internal failure");
            ApiError::ToolFailed(format!("tool `{tool}` failed: {message}"))
        }
    }
}
