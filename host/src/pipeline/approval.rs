//! The approval step: a call an approval rule covers is stored to wait for
//! its approvers ([`request`]); a decision that completes the quorum runs
//! it once, in the background, as its requester, through every step of the
//! pipeline again ([`decide`], [`Endpoint::Approved`]) — so a grant revoked,
//! a manifest changed or a rule added meanwhile applies, and the run is
//! audited like any call, naming the approval it carries out.

use super::steps::Checked;
use super::{CallArgs, CallRecord, CallRequest, Endpoint, Reply, ReplyBody, Transport};
use crate::approvals::ledger::{CallState, PendingCall};
use crate::approvals::views::{ApprovalView, AwaitingApprovalBody};
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::policy::approvals::Requirement;
use crate::principal::Principal;
use crate::state::AppState;
use serde_json::json;
use std::sync::Arc;

/// Store the call to wait for its approvers; the requester gets a `202`
/// with its id.
pub(super) async fn request(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    requirement: &Requirement,
) -> Result<Reply, ApiError> {
    // Every approver's inbox reads a waiting call's arguments: they are
    // bounded apart from the request body.
    let limit = state.config().approvals.max_args_bytes;
    if serde_json::to_vec(&call.args).map_or(usize::MAX, |b| b.len()) > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let now = state.clock().now_unix_ms();
    let principal = &call.principal;
    let pending = PendingCall {
        id: uuid::Uuid::now_v7().to_string(),
        tool: call.tool.def.id.clone(),
        args: call.args.clone(),
        args_sha256: call.args_sha256.clone(),
        requester: (**principal).clone(),
        transport: record.transport.name().into(),
        requirement: requirement.clone(),
        correlation_id: record.correlation_id.to_string(),
        requested_at_ms: now,
        expires_at_ms: now + (requirement.ttl_s * 1000) as i64,
        state: CallState::AwaitingApproval,
    };
    state.approvals().open(&pending).await?;
    Ok(Reply::awaiting(AwaitingApprovalBody::of(&pending)))
}

/// An approver approves or denies; the decision that completes the quorum
/// starts the run (the answer says `running`).
pub async fn decide(
    state: &AppState,
    approver: &Principal,
    id: &str,
    approve: bool,
    comment: Option<String>,
) -> Result<ApprovalView, ApiError> {
    let decided = state.approvals().decide(approver, id, approve, comment).await?;
    if let Some(call) = decided.run {
        let state = state.clone();
        tokio::spawn(async move { run(&state, call).await });
    }
    Ok(decided.view)
}

/// Wait before the second attempt; it doubles each time.
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `error` refused the run before the tool started, for a moment.
/// (`audit_unavailable` is not: the tool may have run before the record
/// failed.)
fn momentary(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Overloaded
            | ApiError::ShareExceeded { .. }
            | ApiError::StateUnavailable
            | ApiError::RateLimitUnavailable
    )
}

/// Run an approved call as its requester and store how it ended.
async fn run(state: &AppState, call: PendingCall) {
    let approvers = state.approvals().approvers_of(&call.id).await;
    let mut wait = FIRST_RETRY;
    let mut attempt = 1;
    let (outcome, correlation_id) = loop {
        let request = approved_request(&call, &approvers);
        let correlation_id = request.correlation_id.clone();
        let outcome = super::call(state, request).await;
        match &outcome.result {
            Err(e) if momentary(e) && attempt < crate::approvals::RUN_ATTEMPTS => {
                tracing::info!(call_id = %call.id, attempt, code = e.code(), "approved run refused for a moment; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            _ => break (outcome, correlation_id),
        }
    };
    let approvals = state.approvals();
    let ended = match outcome.result {
        Ok(Reply { body: ReplyBody::Completed(body), .. }) => approvals.completed(body.result),
        Ok(other) => {
            tracing::error!(call_id = %call.id, decision = other.decision, "an approved run answered neither a result nor an error");
            approvals.failed(&ApiError::Internal, &correlation_id)
        }
        Err(e) => approvals.failed(&e, &correlation_id),
    };
    approvals.ran(call, ended).await;
}

/// The pipeline request of one attempt to run `call` as its requester.
fn approved_request(call: &PendingCall, approvers: &[crate::approvals::ledger::Who]) -> CallRequest {
    let args = match &call.args {
        serde_json::Value::Object(args) => args.clone(),
        _ => Default::default(),
    };
    CallRequest {
        correlation_id: CorrelationId::generate(),
        transport: if call.transport == "mcp" { Transport::Mcp } else { Transport::Rest },
        endpoint: Endpoint::Approved,
        caller: Ok(Arc::new(call.requester.clone())),
        peer: None,
        tool: call.tool.clone(),
        args: Box::pin(std::future::ready(Ok(CallArgs { args, ..Default::default() }))),
        cancel: None,
        trace: crate::telemetry::CallTrace::approved(&call.tool, &call.id),
        approved: Some(json!({ "call_id": call.id, "rule": call.requirement.rule, "approvers": approvers })),
        headers: Default::default(),
    }
}
