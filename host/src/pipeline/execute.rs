//! Step 9, execute: run the tool in a fresh sandbox and map how it ended to
//! the error contract.

use crate::error::{ApiError, FieldError};
use crate::outbound::log::EgressLog;
use crate::principal::Principal;
use crate::registry::Tool;
use crate::runtime::state::CallIdentity;
use crate::runtime::{CallError, ToolError};
use crate::state::AppState;
use serde_json::Value;

/// Longest plugin-supplied message passed on to the client.
const MAX_PLUGIN_MESSAGE: usize = 1024;

/// Who a call is for and where its egress is recorded.
pub struct Caller<'a> {
    /// The request's correlation id.
    pub correlation_id: &'a str,
    /// The authenticated principal.
    pub principal: &'a Principal,
    /// The call's egress log (it ends up in the audit record).
    pub egress: &'a EgressLog,
}

/// Run `tool` with `args` for the caller; returns the tool's JSON result.
pub async fn execute(
    state: &AppState,
    caller: &Caller<'_>,
    tool: &Tool,
    args: &Value,
) -> Result<Value, ApiError> {
    let Caller { correlation_id, principal, .. } = *caller;
    let identity = CallIdentity {
        correlation_id: correlation_id.to_owned(),
        tenant: principal.tenant.clone(),
        subject: principal.sub.clone(),
        tool_id: tool.def.id.clone(),
    };
    let plugin = &tool.plugin;
    let grants = state.call_grants(plugin, caller.egress.clone());
    let output = state
        .runtime()
        .call(&plugin.component, plugin.limits, identity, grants, &tool.def.name, args.to_string())
        .await
        .map_err(|e| call_error(&tool.def.id, e))?;
    state.metrics().record_instantiate(output.instantiate);
    Ok(output.result)
}

/// Whether an error from [`execute`] means the tool never started.
pub fn never_ran(error: &ApiError) -> bool {
    matches!(error, ApiError::Overloaded)
}

/// Map a sandbox failure to the error contract.
fn call_error(tool: &str, error: CallError) -> ApiError {
    match error {
        CallError::Overloaded => ApiError::Overloaded,
        CallError::Timeout(timeout_ms) => ApiError::ToolTimeout { timeout_ms },
        CallError::MemoryLimit(_)
        | CallError::StackOverflow
        | CallError::Trap(_)
        | CallError::BadResult(_) => {
            tracing::warn!(tool, error = %error, "plugin failed");
            ApiError::ToolFailed(format!("tool `{tool}` {error}"))
        }
        CallError::Tool(ToolError::InvalidInput(message)) => {
            ApiError::InvalidArguments(vec![FieldError { path: String::new(), message: clip(message) }])
        }
        CallError::Tool(ToolError::Denied(message)) => ApiError::ToolDenied(clip(message)),
        CallError::Tool(ToolError::Upstream(message)) => {
            ApiError::Upstream(format!("tool `{tool}` reported an upstream failure: {}", clip(message)))
        }
        CallError::Tool(ToolError::Internal(message)) => {
            ApiError::ToolFailed(format!("tool `{tool}` failed: {}", clip(message)))
        }
    }
}

fn clip(message: String) -> String {
    match crate::text::clip(&message, MAX_PLUGIN_MESSAGE) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(clipped) => clipped,
    }
}
