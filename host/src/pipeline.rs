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

use crate::api::body::read_json_object;
use crate::correlation::CorrelationId;
use crate::error::{ApiError, FieldError};
use crate::policy::Decision;
use crate::principal::Principal;
use crate::registry::Tool;
use crate::runtime::state::CallIdentity;
use crate::runtime::{CallError, ToolError};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Longest plugin-supplied message passed on to the client.
const MAX_PLUGIN_MESSAGE: usize = 1024;

/// Scope every invoke (and confirm) needs.
pub const INVOKE_SCOPE: &str = "tools.invoke:write";
/// Scope the catalog needs.
pub const CATALOG_SCOPE: &str = "tools.query:catalog";

/// A completed call.
#[derive(Debug)]
pub struct Completed {
    /// The tool id.
    pub tool: String,
    /// The tool's result.
    pub result: Value,
}

/// One call as it moves through the pipeline. Each step fills in what it
/// learns; at the end it becomes the log line (and the audit record).
#[derive(Debug)]
pub struct CallRecord {
    /// The request's correlation id.
    pub correlation_id: CorrelationId,
    /// The caller, once authenticated.
    pub principal: Option<Arc<Principal>>,
    /// The requested tool id (as given, even if unknown).
    pub tool: String,
    /// Whether the tool exists (only known tools become metric labels).
    pub tool_known: bool,
    /// SHA-256 of the canonical (key-sorted) arguments, once parsed.
    pub args_sha256: Option<String>,
    started: Instant,
}

impl CallRecord {
    fn new(correlation_id: &CorrelationId, tool: &str) -> Self {
        Self {
            correlation_id: correlation_id.clone(),
            principal: None,
            tool: tool.to_owned(),
            tool_known: false,
            args_sha256: None,
            started: Instant::now(),
        }
    }

    /// Close the record: one log line, and metrics for known tools.
    fn finish(self, state: &AppState, outcome: &Result<Completed, ApiError>) {
        let elapsed = self.started.elapsed();
        let (status, code) = match outcome {
            Ok(_) => (200, "completed"),
            Err(e) => (e.status().as_u16(), e.code()),
        };
        if self.tool_known {
            state.metrics().record_call(&self.tool, code, elapsed);
        }
        let (sub, tenant) = match &self.principal {
            Some(p) => (p.sub.as_str(), p.tenant.as_str()),
            None => ("-", "-"),
        };
        tracing::info!(
            target: "fastmcp::call",
            correlation_id = %self.correlation_id,
            sub,
            tenant,
            tool = %self.tool,
            args_sha256 = self.args_sha256.as_deref().unwrap_or("-"),
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
    tool_id: &str,
    request: Request,
) -> Result<Completed, ApiError> {
    let mut record = CallRecord::new(correlation_id, tool_id);
    let outcome = run(state, &mut record, request).await;
    record.finish(state, &outcome);
    outcome
}

async fn run(state: &AppState, record: &mut CallRecord, request: Request) -> Result<Completed, ApiError> {
    // authenticate
    let principal = authenticate(state, request.headers()).await?;
    record.principal = Some(principal.clone());
    let args = read_json_object(request, state.config().max_body_bytes).await?;
    record.args_sha256 = Some(args_digest(&args));

    // resolve
    let registry = state.registry();
    let tool =
        registry.tool(&record.tool).cloned().ok_or_else(|| ApiError::ToolNotFound(record.tool.clone()))?;
    record.tool_known = true;

    // validate
    let args = Value::Object(args);
    tool.def.validate(&args).map_err(ApiError::InvalidArguments)?;

    // authorize
    let confirm_rule = authorize(state, &principal, &tool, &args)?;

    // confirmation gate: fail closed until confirmations can be collected.
    if let Some(rule) = confirm_rule.or_else(|| tool.def.confirmation.as_ref().map(|_| "manifest".to_owned()))
    {
        return Err(ApiError::ConfirmationUnavailable(rule));
    }

    // execute
    execute(state, record, &principal, &tool, &args).await
}

/// Step 2: the bearer token becomes a principal.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<Principal>, ApiError> {
    state
        .auth()
        .authenticate(headers.get(AUTHORIZATION))
        .await
        .map_err(|e| ApiError::Unauthenticated(e.to_string()))
}

/// The caller must hold `scope`.
pub fn require_scope(principal: &Principal, scope: &str) -> Result<(), ApiError> {
    if principal.has_scope(scope) { Ok(()) } else { Err(ApiError::InsufficientScope(scope.to_owned())) }
}

/// Step 5: scopes, then policy. Returns the `confirm` rule that applies.
fn authorize(
    state: &AppState,
    principal: &Principal,
    tool: &Tool,
    args: &Value,
) -> Result<Option<String>, ApiError> {
    require_scope(principal, INVOKE_SCOPE)?;
    for scope in &tool.def.scopes {
        require_scope(principal, scope)?;
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    match state.policy().policy.evaluate(principal, &tool.def, args, now_ms) {
        Decision::Deny { rule, reason } => Err(ApiError::PolicyDenied { rule, reason }),
        Decision::Permit { confirm } => Ok(confirm.map(|c| c.rule)),
    }
}

/// Step 9: run the tool in a fresh sandbox.
async fn execute(
    state: &AppState,
    record: &CallRecord,
    principal: &Principal,
    tool: &Arc<Tool>,
    args: &Value,
) -> Result<Completed, ApiError> {
    let identity = CallIdentity {
        correlation_id: record.correlation_id.to_string(),
        tenant: principal.tenant.clone(),
        subject: principal.sub.clone(),
        tool_id: tool.def.id.clone(),
    };
    let plugin = &tool.plugin;
    let output = state
        .runtime()
        .call(&plugin.component, plugin.limits, identity, &tool.def.name, args.to_string())
        .await
        .map_err(|e| call_error(&tool.def.id, e))?;
    state.metrics().record_instantiate(output.instantiate);
    Ok(Completed { tool: tool.def.id.clone(), result: output.result })
}

/// SHA-256 of the arguments; serde_json's default `Map` is key-sorted, so
/// the serialisation is canonical.
pub fn args_digest(args: &Map<String, Value>) -> String {
    let canonical = serde_json::to_vec(args).expect("a JSON map always serialises");
    hex::encode(Sha256::digest(&canonical))
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
