//! Calls that wait for approvers, over MCP: the Tasks extension
//! (`io.modelcontextprotocol/tasks`, SEP-2663).
//!
//! - A client that declared the extension gets a task for a call that waits
//!   for approvers (`resultType: "task"`; the task id is the call id).
//!   `tasks/get` reads the call as `GET /calls/{id}` does — `working` with a
//!   status message saying what it waits for, then `completed` with the
//!   tool's result (an `isError` result when the approved run failed), or
//!   `failed` (denied, expired) — and `tasks/cancel` withdraws it. Only the
//!   requester can see or cancel their task (others: unknown task).
//! - Any other client gets an `isError` result with code
//!   `approval_pending`, the call id and its REST status URL in `_meta`, so
//!   that an agent can tell its user and follow it out of band.
//!
//! The state is the approvals store's, not rmcp's in-memory task manager:
//! every replica answers for every task, and tasks survive restarts.

use super::render::{CORRELATION_META_KEY, PROBLEM_META_KEY, protocol_error};
use super::runner::caller;
use crate::approvals::views::{AwaitingApprovalBody, CallStatusBody};
use crate::auth::{INVOKE_SCOPE, require_scope};
use crate::error::ApiError;
use crate::state::AppState;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, ErrorCode, GetTaskResult,
    MetaObject, Task, TaskPayload, TaskStatus,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};
use std::time::Duration;

/// `_meta` key of an `approval_pending` result: the call and where to follow it.
pub const APPROVAL_META_KEY: &str = "io.fastmcp/approval";
/// How often a client should poll `tasks/get`.
const POLL_INTERVAL_MS: u64 = 2000;

/// Answer a call that now waits for approvers.
pub(super) fn awaiting(
    state: &AppState,
    body: AwaitingApprovalBody,
    context: &RequestContext<RoleServer>,
) -> CallToolResponse {
    if context.client_capabilities().is_some_and(|c| c.supports_tasks()) {
        let now = crate::approvals::views::rfc3339(state.clock().now_unix_ms());
        let task = Task::new(body.call_id.clone(), TaskStatus::Working, now.clone(), now)
            .with_status_message(waiting_for(&body.approval, 0))
            .with_poll_interval_ms(POLL_INTERVAL_MS)
            .with_ttl_ms(ttl_ms(state, &body.approval.expires_at));
        let mut result = CreateTaskResult::new(task);
        result.meta = Some(correlation(&body.correlation_id));
        return CallToolResponse::Task(result);
    }
    let text = format!(
        "approval_pending: {} waits for approval ({}); follow it at {} (call id {})",
        body.tool,
        waiting_for(&body.approval, 0),
        body.status_url,
        body.call_id
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    let mut meta = correlation(&body.correlation_id);
    meta.insert(
        APPROVAL_META_KEY.into(),
        json!({
            "code": "approval_pending",
            "call_id": body.call_id,
            "status_url": body.status_url,
            "approval": body.approval,
        }),
    );
    result.meta = Some(meta);
    result.into()
}

/// `tasks/get`: the requester's call as a task.
pub(super) async fn get(
    state: &AppState,
    id: &str,
    context: &RequestContext<RoleServer>,
) -> Result<GetTaskResult, McpError> {
    let caller = caller(context)?;
    require_scope(&caller.principal, INVOKE_SCOPE).map_err(|e| task_error(&e, &caller.correlation_id))?;
    let status = state
        .approvals()
        .status(&caller.principal, id, Duration::ZERO)
        .await
        .map_err(|e| task_error(&e, &caller.correlation_id))?;
    Ok(GetTaskResult::new(detailed(state, &status)))
}

/// `tasks/cancel`: the requester withdraws a call still waiting.
pub(super) async fn cancel(
    state: &AppState,
    id: &str,
    context: &RequestContext<RoleServer>,
) -> Result<(), McpError> {
    let caller = caller(context)?;
    require_scope(&caller.principal, INVOKE_SCOPE).map_err(|e| task_error(&e, &caller.correlation_id))?;
    state
        .approvals()
        .withdraw(&caller.principal, id)
        .await
        .map(|_| ())
        .map_err(|e| task_error(&e, &caller.correlation_id))
}

/// An unknown task (or another's) is invalid params, as rmcp's own task
/// manager answers; a call no longer waiting cannot be cancelled.
fn task_error(error: &ApiError, correlation_id: &crate::correlation::CorrelationId) -> McpError {
    let code = match error {
        ApiError::CallNotFound(_) | ApiError::ApprovalClosed(_) => ErrorCode::INVALID_PARAMS,
        ApiError::InsufficientScope(_) => ErrorCode::INVALID_REQUEST,
        _ => ErrorCode::INTERNAL_ERROR,
    };
    protocol_error(code, error, correlation_id)
}

fn detailed(state: &AppState, status: &CallStatusBody) -> DetailedTask {
    let now = crate::approvals::views::rfc3339(state.clock().now_unix_ms());
    let approvals = status.decisions.iter().filter(|d| d.decision == "approved").count();
    let task = Task::new(status.call_id.clone(), TaskStatus::Working, status.requested_at.clone(), now)
        .with_poll_interval_ms(POLL_INTERVAL_MS)
        .with_ttl_ms(ttl_ms(state, &status.approval.expires_at));
    let (message, payload) = match status.status.as_str() {
        "awaiting_approval" => (waiting_for(&status.approval, approvals), TaskPayload::Working),
        "running" => ("approved; running".into(), TaskPayload::Working),
        "completed" => ("completed".into(), TaskPayload::Completed { result: completed(status) }),
        "failed" => {
            ("approved, but the call failed".into(), TaskPayload::Completed { result: failed(status) })
        }
        "withdrawn" => ("withdrawn by the requester".into(), TaskPayload::Cancelled),
        other => {
            let why = match status.decisions.iter().find(|d| d.decision == "denied") {
                Some(d) => format!(
                    "denied by {}: {}",
                    d.approver.sub,
                    d.comment.as_deref().unwrap_or("no reason given")
                ),
                None => format!("{other}: nobody decided before {}", status.approval.expires_at),
            };
            let error = json!({
                "code": -32003,
                "message": format!("approval_{other}: {why}"),
                "data": { "code": format!("approval_{other}"), "call_id": status.call_id },
            });
            (why, TaskPayload::Failed { error: object(error) })
        }
    };
    DetailedTask::new(task.with_status_message(message), payload)
}

/// `awaiting approval by rule X: 1 of 2 approvals, until T`.
fn waiting_for(approval: &crate::approvals::views::RequiredApproval, approvals: usize) -> String {
    let hint = approval.hint.as_deref().map(|h| format!(" — {h}")).unwrap_or_default();
    format!(
        "awaiting approval (rule `{}`: {approvals} of {} approvals, until {}){hint}",
        approval.rule, approval.quorum, approval.expires_at
    )
}

/// The call's result as the `tools/call` result it would have been.
fn completed(status: &CallStatusBody) -> rmcp::model::JsonObject {
    let result = status.result.clone().unwrap_or_else(|| json!({"result_omitted": true}));
    let text = serde_json::to_string(&result).expect("JSON values serialise");
    let mut call = CallToolResult::success(vec![ContentBlock::text(text)]);
    call.structured_content = Some(result);
    call.meta = Some(correlation(&status.correlation_id));
    object(serde_json::to_value(call).expect("results serialise"))
}

/// A run that failed, as the `isError` result a synchronous call answers.
fn failed(status: &CallStatusBody) -> rmcp::model::JsonObject {
    let mut meta = correlation(&status.correlation_id);
    let text = match &status.error {
        Some(problem) => {
            meta.insert(PROBLEM_META_KEY.into(), serde_json::to_value(problem).expect("problems serialise"));
            format!("{}: {}", problem.code, problem.detail)
        }
        None => "the approved call failed".into(),
    };
    let mut call = CallToolResult::error(vec![ContentBlock::text(text)]);
    call.meta = Some(meta);
    object(serde_json::to_value(call).expect("results serialise"))
}

fn correlation(id: &str) -> MetaObject {
    let mut meta = MetaObject::new();
    meta.insert(CORRELATION_META_KEY.into(), Value::String(id.to_owned()));
    meta
}

fn object(value: Value) -> rmcp::model::JsonObject {
    match value {
        Value::Object(map) => map,
        _ => Default::default(),
    }
}

/// Milliseconds until the call's expiry plus its retention: how long the
/// task stays readable.
fn ttl_ms(state: &AppState, expires_at: &str) -> u64 {
    let expires = chrono::DateTime::parse_from_rfc3339(expires_at).map_or(0, |t| t.timestamp_millis());
    let left = (expires - state.clock().now_unix_ms()).max(0) as u64;
    left + state.config().approvals.result_retention.as_millis() as u64
}
