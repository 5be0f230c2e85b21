//! What a call answers when it does not fail: the typed bodies every
//! transport renders (REST serialises them as they are; the OpenAPI
//! document is generated from the same types), and the outcome the
//! pipeline hands back.

pub use crate::approvals::views::AwaitingApprovalBody;
use crate::confirm::ActionClaims;
use crate::error::{ApiError, ProblemBody};
use crate::ratelimit::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use utoipa::ToSchema;

/// A completed call (200).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CompletedBody {
    /// Always `completed`.
    pub status: String,
    /// The tool id.
    pub tool: String,
    /// The tool's result.
    #[schema(value_type = Object)]
    pub result: Value,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// A call stopped at the confirmation gate (202).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PendingBody {
    /// Always `pending_confirmation`.
    pub status: String,
    /// The tool id.
    pub tool: String,
    /// Present it, with the same arguments, to `confirm_url`.
    pub action_token: String,
    /// When the token expires (RFC 3339).
    pub expires_at: String,
    /// Where to confirm.
    pub confirm_url: String,
    /// What the human is asked to confirm.
    pub hint: String,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// The answer, by kind.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// The tool ran (200).
    Completed(CompletedBody),
    /// Confirmation required (202).
    Pending(PendingBody),
    /// Waiting for approvers (202).
    AwaitingApproval(AwaitingApprovalBody),
    /// An earlier outcome under the same idempotency key, as it was stored.
    Replayed(StoredOutcome),
}

/// The first outcome of a call under an idempotency key, kept for its
/// retries: each transport renders it as it renders a fresh one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "body", rename_all = "snake_case")]
pub enum StoredOutcome {
    /// The tool ran (200).
    Completed(CompletedBody),
    /// It stopped at the confirmation gate (202).
    Pending(PendingBody),
    /// It waits for approvers (202).
    AwaitingApproval(AwaitingApprovalBody),
    /// It failed after the tool started (its problem details).
    Problem(ProblemBody),
}

impl StoredOutcome {
    /// The HTTP status it answered with.
    pub fn status(&self) -> u16 {
        match self {
            StoredOutcome::Completed(_) => 200,
            StoredOutcome::Pending(_) | StoredOutcome::AwaitingApproval(_) => 202,
            StoredOutcome::Problem(problem) => problem.status,
        }
    }
}

/// A successful (or replayed) answer, and what the record needs to know.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The body.
    pub body: ReplyBody,
    /// For the record: `completed`, `pending_confirmation`, `confirmed`,
    /// `awaiting_approval`, `replayed`.
    pub decision: &'static str,
    /// The action token's id, on a 202 and on a successful confirm.
    pub action_id: Option<String>,
    /// The action token's lifetime, on a 202.
    pub action_ttl: Option<Duration>,
}

impl Reply {
    pub(super) fn completed(tool: &str, result: Value, correlation_id: &str, decision: &'static str) -> Self {
        let body = CompletedBody {
            status: "completed".into(),
            tool: tool.to_owned(),
            result,
            correlation_id: correlation_id.to_owned(),
        };
        Self { body: ReplyBody::Completed(body), decision, action_id: None, action_ttl: None }
    }

    pub(super) fn pending(
        tool: &str,
        action_token: String,
        claims: &ActionClaims,
        hint: String,
        correlation_id: &str,
    ) -> Self {
        let expires_at = chrono::DateTime::from_timestamp(claims.exp as i64, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = PendingBody {
            status: "pending_confirmation".into(),
            tool: tool.to_owned(),
            action_token,
            expires_at,
            confirm_url: format!("/tools/{tool}/confirm"),
            hint,
            correlation_id: correlation_id.to_owned(),
        };
        Self {
            body: ReplyBody::Pending(body),
            decision: "pending_confirmation",
            action_id: Some(claims.jti.clone()),
            action_ttl: Some(Duration::from_secs(claims.exp.saturating_sub(claims.iat))),
        }
    }

    pub(super) fn awaiting(body: AwaitingApprovalBody) -> Self {
        Self {
            body: ReplyBody::AwaitingApproval(body),
            decision: "awaiting_approval",
            action_id: None,
            action_ttl: None,
        }
    }

    pub(super) fn replay(stored: StoredOutcome) -> Self {
        Self { body: ReplyBody::Replayed(stored), decision: "replayed", action_id: None, action_ttl: None }
    }

    /// The HTTP status this answer carries.
    pub fn status(&self) -> u16 {
        match &self.body {
            ReplyBody::Completed(_) => 200,
            ReplyBody::Pending(_) | ReplyBody::AwaitingApproval(_) => 202,
            ReplyBody::Replayed(stored) => stored.status(),
        }
    }

    /// What an idempotency key keeps of this answer.
    pub fn stored(&self) -> StoredOutcome {
        match &self.body {
            ReplyBody::Completed(body) => StoredOutcome::Completed(body.clone()),
            ReplyBody::Pending(body) => StoredOutcome::Pending(body.clone()),
            ReplyBody::AwaitingApproval(body) => StoredOutcome::AwaitingApproval(body.clone()),
            ReplyBody::Replayed(stored) => stored.clone(),
        }
    }
}

/// Everything a transport needs to answer a call.
#[derive(Debug)]
pub struct CallOutcome {
    /// The answer, or the error.
    pub result: Result<Reply, ApiError>,
    /// The caller's bucket after this call, for `RateLimit*` headers (also
    /// on replays and refusals after the rate-limit step).
    pub rate_limit: Option<Verdict>,
}
