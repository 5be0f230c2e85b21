//! What the approval routes answer: the requester's `202` and status, the
//! approver's view of a call (the REST bodies and the OpenAPI schemas are
//! these types).

use super::ledger::{CallState, PendingCall, Vote, Who};
use crate::error::ProblemBody;
use crate::policy::approvals::Approvers;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a call needs before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequiredApproval {
    /// The approval rule's name.
    pub rule: String,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Who may approve (any of the roles, scopes or subjects; never the requester).
    pub approvers: Approvers,
    /// When the call expires unless decided (RFC 3339).
    pub expires_at: String,
    /// What approvers are told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A call that waits for approvers (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AwaitingApprovalBody {
    /// Always `awaiting_approval`.
    pub status: String,
    /// The tool id.
    pub tool: String,
    /// The call's id.
    pub call_id: String,
    /// What it waits for.
    pub approval: RequiredApproval,
    /// Where the requester follows it (`GET`, `?wait=S` to long-poll).
    pub status_url: String,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    /// Who decided.
    pub approver: Who,
    /// `approved` or `denied`.
    pub decision: String,
    /// Their comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// A call as its requester sees it (`GET /calls/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallStatusBody {
    /// The call's id.
    pub call_id: String,
    /// The tool id.
    pub tool: String,
    /// `awaiting_approval`, `running`, `completed`, `denied`, `expired`, `withdrawn` or `failed`.
    pub status: String,
    /// What it waits (or waited) for.
    pub approval: RequiredApproval,
    /// The decisions so far.
    pub decisions: Vec<DecisionView>,
    /// When it was requested (RFC 3339).
    pub requested_at: String,
    /// The tool's result (`completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// The result was over the size cap and not kept (`completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_omitted: Option<bool>,
    /// Why it did not complete (`failed`): the problem the call answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProblemBody>,
    /// The correlation id of the invoke.
    pub correlation_id: String,
}

/// A call as an approver (or its requester) sees it (`/approvals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// The call's id.
    pub call_id: String,
    /// The tool id.
    pub tool: String,
    /// Where the call stands (as in `GET /calls/{id}`).
    pub status: String,
    /// The validated arguments it will run with.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// Who asked.
    pub requester: Who,
    /// What it waits for.
    pub approval: RequiredApproval,
    /// Approvals so far.
    pub approvals: u32,
    /// The decisions so far.
    pub decisions: Vec<DecisionView>,
    /// When it was requested (RFC 3339).
    pub requested_at: String,
    /// Whether this caller may approve or deny it now.
    pub can_decide: bool,
}

/// The calls this caller may decide now, oldest first (`GET /approvals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    /// The calls.
    pub approvals: Vec<ApprovalView>,
    /// More were open than one page shows.
    pub truncated: bool,
}

/// An approver's comment (`POST /approvals/{id}/approve|deny`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (kept with the decision; the trail keeps its digest).
    #[serde(default)]
    pub comment: Option<String>,
}

/// RFC 3339 (seconds, UTC) of a Unix-ms time.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl RequiredApproval {
    pub(super) fn of(call: &PendingCall) -> Self {
        let r = &call.requirement;
        Self {
            rule: r.rule.clone(),
            quorum: r.quorum,
            approvers: r.approvers.clone(),
            expires_at: rfc3339(call.expires_at_ms),
            hint: r.hint.clone(),
        }
    }
}

impl DecisionView {
    pub(super) fn of(vote: &Vote) -> Self {
        Self {
            approver: vote.approver.clone(),
            decision: if vote.approve { "approved" } else { "denied" }.into(),
            comment: vote.comment.clone(),
            at: rfc3339(vote.at_ms),
        }
    }
}

impl AwaitingApprovalBody {
    /// The `202` of a call that now waits for approvers.
    pub fn of(call: &PendingCall) -> Self {
        Self {
            status: "awaiting_approval".into(),
            tool: call.tool.clone(),
            call_id: call.id.clone(),
            approval: RequiredApproval::of(call),
            status_url: format!("/calls/{}", call.id),
            correlation_id: call.correlation_id.clone(),
        }
    }
}

impl CallStatusBody {
    pub(super) fn of(call: &PendingCall, votes: &[Vote]) -> Self {
        let (mut result, mut result_omitted, mut error) = (None, None, None);
        match &call.state {
            CallState::Completed { result: r, result_omitted: o, .. } => {
                result = r.clone();
                result_omitted = Some(*o);
            }
            CallState::Failed { problem, .. } => error = Some((**problem).clone()),
            _ => {}
        }
        Self {
            call_id: call.id.clone(),
            tool: call.tool.clone(),
            status: call.state.name().into(),
            approval: RequiredApproval::of(call),
            decisions: votes.iter().map(DecisionView::of).collect(),
            requested_at: rfc3339(call.requested_at_ms),
            result,
            result_omitted,
            error,
            correlation_id: call.correlation_id.clone(),
        }
    }
}

impl ApprovalView {
    pub(super) fn of(call: &PendingCall, votes: &[Vote], can_decide: bool) -> Self {
        Self {
            call_id: call.id.clone(),
            tool: call.tool.clone(),
            status: call.state.name().into(),
            arguments: call.args.clone(),
            requester: Who::of(&call.requester),
            approval: RequiredApproval::of(call),
            approvals: votes.iter().filter(|v| v.approve).count() as u32,
            decisions: votes.iter().map(DecisionView::of).collect(),
            requested_at: rfc3339(call.requested_at_ms),
            can_decide,
        }
    }
}
