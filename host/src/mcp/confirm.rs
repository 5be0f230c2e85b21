//! The confirmation gate over MCP: a call that needs a human stops at the
//! gate (the pipeline issued an action token and recorded
//! `pending_confirmation`) and the human is asked by elicitation:
//!
//! - **2026-07-28** clients that can elicit get an input-required result
//!   whose form asks for approval and whose `requestState` is the action
//!   token — integrity-protected, single-use, expiring, bound to the tool,
//!   the argument digest, `sub` and `tenant`. The retry carries the answer.
//! - **2025-11-25** (and earlier) clients that declared form elicitation
//!   get `elicitation/create` on the request's stream; the wait is bounded
//!   by the token's lifetime.
//! - Any other client: the call never runs. The result is an `isError`
//!   `confirmation_required` carrying the action token, its expiry and the
//!   REST confirm URL, so that a human can approve out of band.
//!
//! An approval runs the pipeline's confirm (current policy, manifest and
//! schema apply, the token is spent); a decline or cancel runs its decline
//! (the token is spent, nothing runs, the record says why).

use super::render::protocol_error;
use super::render::{CORRELATION_META_KEY, Rendered, render};
use super::runner::Runner;
use crate::error::ApiError;
use crate::pipeline::{CallOutcome, DeclineReason, Endpoint, PendingBody};
use crate::text::clip;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ElicitRequestParams, ErrorCode, InputRequest,
    InputRequests, InputRequiredResult, InputResponses, MetaObject, ProtocolVersion,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};
use std::time::Duration;

/// The key of the approval request in `inputRequests` / `inputResponses`.
pub const CONFIRM_INPUT_KEY: &str = "confirm";
/// The form's one field.
const APPROVE_FIELD: &str = "approve";
/// `_meta` key of a `confirmation_required` result: the pending action.
pub const PENDING_META_KEY: &str = "io.fastmcp/pending";
/// The arguments shown to the human are cut to this many bytes.
const MAX_SHOWN_ARGS_BYTES: usize = 2048;

/// What the human answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Approved,
    Declined,
    Cancelled,
}

/// Answer an invoke: its result, or — at the gate — ask the human.
pub(super) async fn answer(
    run: &Runner<'_>,
    outcome: CallOutcome,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    match render(outcome.result, &run.caller.correlation_id)? {
        Rendered::Result(result) => Ok(result.into()),
        Rendered::Pending(pending) => ask(run, pending, context).await,
        Rendered::AwaitingApproval(body) => Ok(super::tasks::awaiting(run.state, body, context)),
    }
}

/// A 2026-07-28 retry carrying `requestState` (our action token) and, if
/// the human answered, `inputResponses`.
pub(super) async fn resume(
    run: &Runner<'_>,
    action_token: &str,
    responses: Option<&InputResponses>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    match responses.and_then(|r| r.get(CONFIRM_INPUT_KEY)).map(verdict_of) {
        Some(verdict) => decide(run, action_token.to_owned(), verdict, context).await,
        // No answer yet: the client must ask the human first.
        None => Err(protocol_error(
            ErrorCode::INVALID_PARAMS,
            &ApiError::BadRequest(format!("the retry carries no `inputResponses.{CONFIRM_INPUT_KEY}`")),
            &run.caller.correlation_id,
        )),
    }
}

async fn ask(
    run: &Runner<'_>,
    pending: PendingBody,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let message = message(run, &pending);
    let stateless =
        context.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if stateless {
        if !can_elicit_form(context) {
            return Ok(confirmation_required(pending).into());
        }
        let request = json!({
            "method": "elicitation/create",
            "params": {"mode": "form", "message": message, "requestedSchema": approval_form(&pending.tool)},
        });
        let request: InputRequest =
            serde_json::from_value(request).expect("the approval request is well-formed");
        let requests = InputRequests::from([(CONFIRM_INPUT_KEY.to_owned(), request)]);
        return Ok(InputRequiredResult::new(Some(requests), Some(pending.action_token)).into());
    }
    if !context.peer.supported_elicitation_modes().contains(&rmcp::service::ElicitationMode::Form) {
        return Ok(confirmation_required(pending).into());
    }
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: serde_json::from_value(approval_form(&pending.tool))
            .expect("the form is well-formed"),
    };
    let wait = time_left(&pending.expires_at, run.state.clock().now_unix_s());
    match context.peer.create_elicitation_with_timeout(params, Some(wait)).await {
        Ok(answer) => {
            let verdict = verdict_of(&serde_json::to_value(&answer).unwrap_or(Value::Null));
            decide(run, pending.action_token, verdict, context).await
        }
        Err(e) => {
            // No answer within the token's lifetime, or the client failed:
            // nothing ran; an approval may still come out of band.
            tracing::info!(error = %e, tool = %pending.tool, "elicitation got no answer");
            Ok(confirmation_required(pending).into())
        }
    }
}

/// Run the pipeline's confirm (approved) or decline (anything else).
async fn decide(
    run: &Runner<'_>,
    action_token: String,
    verdict: Verdict,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let endpoint = match verdict {
        Verdict::Approved => Endpoint::Confirm,
        Verdict::Declined => Endpoint::Decline(DeclineReason::Declined),
        Verdict::Cancelled => Endpoint::Decline(DeclineReason::Cancelled),
    };
    let outcome = run.call(endpoint, Some(action_token)).await;
    match render(outcome.result, &run.caller.correlation_id)? {
        Rendered::Result(result) => Ok(result.into()),
        // Confirmed by the caller; now it waits for approvers.
        Rendered::AwaitingApproval(body) => Ok(super::tasks::awaiting(run.state, body, context)),
        Rendered::Pending(_) => {
            tracing::error!("a confirm answered with another pending confirmation");
            Err(protocol_error(ErrorCode::INTERNAL_ERROR, &ApiError::Internal, &run.caller.correlation_id))
        }
    }
}

/// An elicitation result (`{"action", "content"}`) as a verdict: only an
/// accepted form with `approve: true` approves.
fn verdict_of(answer: &Value) -> Verdict {
    match answer.get("action").and_then(Value::as_str) {
        Some("accept")
            if answer.pointer(&format!("/content/{APPROVE_FIELD}")) == Some(&Value::Bool(true)) =>
        {
            Verdict::Approved
        }
        Some("cancel") => Verdict::Cancelled,
        _ => Verdict::Declined,
    }
}

/// Whether a 2026-07-28 request declared form elicitation.
fn can_elicit_form(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// The form: one boolean. It never asks for anything else (no secrets).
fn approval_form(tool: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            APPROVE_FIELD: {
                "type": "boolean",
                "title": "Approve",
                "description": format!("Run {tool} with the arguments shown"),
            }
        },
        "required": [APPROVE_FIELD],
    })
}

/// What the human reads: the hint, the tool, the arguments, the expiry.
fn message(run: &Runner<'_>, pending: &PendingBody) -> String {
    let args = serde_json::to_string_pretty(run.args).expect("JSON values serialise");
    format!(
        "{hint}\n\nTool: {tool}\nArguments:\n{args}\n\nApprove before {expires}.",
        hint = pending.hint,
        tool = pending.tool,
        args = clip(&args, MAX_SHOWN_ARGS_BYTES),
        expires = pending.expires_at,
    )
}

/// The `isError` result for a client that cannot ask a human.
fn confirmation_required(pending: PendingBody) -> CallToolResult {
    let text = format!(
        "confirmation_required: {hint}. This client cannot ask a human to approve, so the tool did not run. \
         To approve out of band, POST the same arguments plus `action_token` to {url} before {expires}.",
        hint = pending.hint,
        url = pending.confirm_url,
        expires = pending.expires_at,
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    let mut meta = MetaObject::new();
    meta.insert(CORRELATION_META_KEY.into(), Value::String(pending.correlation_id.clone()));
    meta.insert(PENDING_META_KEY.into(), serde_json::to_value(&pending).expect("bodies serialise"));
    result.meta = Some(meta);
    result
}

/// Time left from `now` (the host's clock, Unix seconds) until an RFC 3339
/// instant, at least one second.
fn time_left(rfc3339: &str, now: u64) -> Duration {
    let at = chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |at| at.timestamp());
    Duration::from_secs(at.saturating_sub(now as i64).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_accepted_form_with_approve_true_approves() {
        let cases = [
            (json!({"action": "accept", "content": {"approve": true}}), Verdict::Approved),
            (json!({"action": "accept", "content": {"approve": false}}), Verdict::Declined),
            (json!({"action": "accept", "content": {"approve": "true"}}), Verdict::Declined),
            (json!({"action": "accept"}), Verdict::Declined),
            (json!({"action": "decline"}), Verdict::Declined),
            (json!({"action": "cancel"}), Verdict::Cancelled),
            (json!("yes"), Verdict::Declined),
        ];
        for (answer, expected) in cases {
            assert_eq!(verdict_of(&answer), expected, "{answer}");
        }
    }

    #[test]
    fn the_wait_is_what_is_left_of_the_token_on_the_host_clock() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T04:00:00Z").unwrap().timestamp() as u64;
        assert_eq!(time_left("2026-11-25T04:05:00Z", now), Duration::from_secs(300));
        assert_eq!(time_left("2026-11-25T03:00:00Z", now), Duration::from_secs(1));
        assert_eq!(time_left("not a time", now), Duration::from_secs(1));
    }

    #[test]
    fn the_form_deserialises_as_an_elicitation_schema() {
        let schema: Result<rmcp::model::ElicitationSchema, _> =
            serde_json::from_value(approval_form("ads:x"));
        assert!(schema.is_ok(), "{schema:?}");
    }
}
