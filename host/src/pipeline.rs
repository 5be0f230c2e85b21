//! The call pipeline: the one place where a tool call passes every check, in
//! the order of DESIGN §2.
//!
//! Why this order:
//! 1. **correlation** and **authenticate** happen before anything else (in the
//!    correlation middleware and the principal), so every later outcome —
//!    including "no such tool" — is attributed to a request and a caller.
//! 2. **resolve** before **validate**: the schema belongs to the tool.
//! 3. **validate** before **authorize**: policies may read `args`, so they
//!    must only ever see arguments that passed the schema.
//! 4. **rate limit**, **idempotency** and the **confirmation gate** come after
//!    authorization so that denied callers cannot spend quota or keys.
//! 5. **execute** runs in a fresh sandbox; nothing of it outlives the call.
//! 6. **record**: one [`CallRecord`] travels through the steps and becomes the
//!    log line (and the audit record) at the end, denials included.
//!
//! Authorization, rate limits, idempotency, confirmation and audit are added
//! as steps here by the issues that build them; the order above is fixed.

use crate::correlation::CorrelationId;
use crate::error::{ApiError, FieldError};
use crate::principal::Principal;
use crate::registry::Tool;
use crate::runtime::state::CallIdentity;
use crate::runtime::{CallError, ToolError};
use crate::state::AppState;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// Longest plugin-supplied message passed on to the client.
const MAX_PLUGIN_MESSAGE: usize = 1024;

/// A completed call.
#[derive(Debug)]
pub struct Completed {
    /// The tool id.
    pub tool: String,
    /// The tool's result.
    pub result: Value,
}

/// One call as it moves through the pipeline.
#[derive(Debug)]
pub struct CallRecord {
    /// The request's correlation id.
    pub correlation_id: CorrelationId,
    /// The caller.
    pub principal: Principal,
    /// The requested tool id (as given, even if unknown).
    pub tool: String,
    /// SHA-256 of the canonical (key-sorted) arguments.
    pub args_sha256: String,
    started: Instant,
}

impl CallRecord {
    fn new(
        correlation_id: &CorrelationId,
        principal: Principal,
        tool: &str,
        args: &Map<String, Value>,
    ) -> Self {
        // serde_json's default `Map` is key-sorted, so this serialisation is
        // canonical for digests.
        let canonical = serde_json::to_vec(args).expect("a JSON map always serialises");
        Self {
            correlation_id: correlation_id.clone(),
            principal,
            tool: tool.to_owned(),
            args_sha256: hex::encode(Sha256::digest(&canonical)),
            started: Instant::now(),
        }
    }

    /// Close the record: one log line, and metrics for known tools.
    fn finish(self, state: &AppState, known_tool: bool, outcome: &Result<Completed, ApiError>) {
        let elapsed = self.started.elapsed();
        let (status, code) = match outcome {
            Ok(_) => (200, "completed"),
            Err(e) => (e.status().as_u16(), e.code()),
        };
        if known_tool {
            state.metrics().record_call(&self.tool, code, elapsed);
        }
        tracing::info!(
            target: "fastmcp::call",
            correlation_id = %self.correlation_id,
            sub = %self.principal.sub,
            tenant = %self.principal.tenant,
            tool = %self.tool,
            args_sha256 = %self.args_sha256,
            decision = if outcome.is_ok() { "allow" } else { code },
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "tool call"
        );
    }
}

/// `POST /tools/{id}/invoke`: run the whole pipeline for one call.
pub async fn invoke(
    state: &AppState,
    correlation_id: &CorrelationId,
    principal: Principal,
    tool_id: &str,
    args: Map<String, Value>,
) -> Result<Completed, ApiError> {
    let record = CallRecord::new(correlation_id, principal, tool_id, &args);
    let registry = state.registry();
    let tool = registry.tool(tool_id).cloned();
    let outcome = match &tool {
        None => Err(ApiError::ToolNotFound(tool_id.to_owned())),
        Some(tool) => run(state, &record, tool, Value::Object(args)).await,
    };
    record.finish(state, tool.is_some(), &outcome);
    outcome
}

/// The steps after `resolve`, for a known tool.
async fn run(
    state: &AppState,
    record: &CallRecord,
    tool: &Arc<Tool>,
    args: Value,
) -> Result<Completed, ApiError> {
    // validate
    tool.def
        .validate(&args)
        .map_err(ApiError::InvalidArguments)?;

    // execute
    let identity = CallIdentity {
        correlation_id: record.correlation_id.to_string(),
        tenant: record.principal.tenant.clone(),
        subject: record.principal.sub.clone(),
        tool_id: tool.def.id.clone(),
    };
    let plugin = &tool.plugin;
    let output = state
        .runtime()
        .call(
            &plugin.component,
            plugin.limits,
            identity,
            &tool.def.name,
            args.to_string(),
        )
        .await
        .map_err(|e| call_error(&tool.def.id, e))?;
    state.metrics().record_instantiate(output.instantiate);
    Ok(Completed {
        tool: tool.def.id.clone(),
        result: output.result,
    })
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
            ApiError::InvalidArguments(vec![FieldError {
                path: String::new(),
                message: clip(message),
            }])
        }
        CallError::Tool(ToolError::Denied(message)) => ApiError::ToolDenied(clip(message)),
        CallError::Tool(ToolError::Upstream(message)) => ApiError::Upstream(format!(
            "tool `{tool}` reported an upstream failure: {}",
            clip(message)
        )),
        CallError::Tool(ToolError::Internal(message)) => {
            ApiError::ToolFailed(format!("tool `{tool}` failed: {}", clip(message)))
        }
    }
}

fn clip(mut message: String) -> String {
    if message.len() > MAX_PLUGIN_MESSAGE {
        let mut end = MAX_PLUGIN_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}
