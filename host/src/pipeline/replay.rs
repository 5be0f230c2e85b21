//! The idempotency step: replay an earlier outcome, refuse a conflicting or
//! concurrent duplicate, or reserve the key; and after the gate, settle it.

use super::digest::request_fingerprint;
use super::steps::{Checked, Presented};
use super::{CallRecord, Endpoint, Reply, StoredOutcome};
use crate::correlation::CorrelationId;
use crate::error::{ApiError, ProblemBody};
use crate::idempotency::{self, Begin, IdempotencyError, KeyOf, Reservation};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// How the call goes on after the idempotency step.
pub(super) enum Begun {
    /// Answer with the stored outcome.
    Replay(Box<Reply>),
    /// Run (holding the key, if there was one).
    Proceed(Option<Reservation>),
}

/// Reserve the call's key, or replay what it already produced.
pub(super) async fn begin(
    state: &AppState,
    endpoint: Endpoint,
    call: &Checked,
    presented: &Presented,
) -> Result<Begun, ApiError> {
    let Some(key) = &presented.idempotency_key else { return Ok(Begun::Proceed(None)) };
    let fingerprint = request_fingerprint(&call.args_sha256, presented.action_token.as_deref());
    let key = KeyOf {
        endpoint: endpoint.name(),
        tenant: &call.principal.tenant,
        sub: &call.principal.sub,
        tool: &call.tool.def.id,
        key,
    };
    let max_keys = state.config().idempotency.max_keys_per_caller;
    let in_progress_for = call.tool.plugin.limits.timeout + Duration::from_secs(60);
    match idempotency::begin::<Kept>(state.store(), key, max_keys, fingerprint, in_progress_for).await {
        Ok(Begin::Replay(kept)) => Ok(Begun::Replay(Box::new(Reply::replay(kept.into_outcome()?)))),
        Ok(Begin::Proceed(reservation)) => Ok(Begun::Proceed(Some(reservation))),
        Err(e) => Err(refusal(e)),
    }
}

fn refusal(error: IdempotencyError) -> ApiError {
    match error {
        IdempotencyError::Malformed => ApiError::BadRequest(error.to_string()),
        IdempotencyError::InProgress => ApiError::IdempotencyInProgress,
        IdempotencyError::Reused => ApiError::IdempotencyKeyReused,
        IdempotencyError::QuotaExceeded(limit) => ApiError::IdempotencyQuotaExceeded { limit },
        IdempotencyError::Store(e) => {
            tracing::error!(error = %e, "idempotency store failed");
            ApiError::StateUnavailable
        }
    }
}

/// Store the outcome under the key — unless the tool never started, in
/// which case the key is released for a retry.
pub(super) async fn settle(
    state: &AppState,
    record: &CallRecord,
    reservation: Option<Reservation>,
    outcome: &Result<Reply, ApiError>,
) {
    let Some(reservation) = reservation else { return };
    let correlation_id = &record.correlation_id;
    let stored = match outcome {
        Ok(reply) => reply.stored(),
        Err(e) if !e.class().tool_ran => return idempotency::release(state.store(), reservation).await,
        Err(e) => problem(e, correlation_id),
    };
    let limit = state.config().idempotency.max_reply_bytes;
    let too_large = || {
        let error =
            ApiError::IdempotencyReplyTooLarge { limit, first_correlation_id: correlation_id.to_string() };
        Kept::from_outcome(&problem(&error, correlation_id))
    };
    let kept = Kept::from_outcome(&stored);
    if let Err(e) = idempotency::finish(state.store(), reservation, kept, limit, too_large).await {
        tracing::error!(error = %e, "could not store an idempotent outcome; retries see 409 until it expires");
    }
}

fn problem(error: &ApiError, correlation_id: &CorrelationId) -> StoredOutcome {
    StoredOutcome::Problem(error.problem_body(correlation_id))
}

/// How an outcome is kept under a key: its HTTP status, its body and
/// whether that is problem details — the form every version of the host
/// writes and reads, so replicas of different versions sharing one Redis
/// replay each other's outcomes. The pipeline sees it only as a typed
/// [`StoredOutcome`].
#[derive(Serialize, Deserialize)]
struct Kept {
    status: u16,
    body: Value,
    problem: bool,
}

impl Kept {
    fn from_outcome(outcome: &StoredOutcome) -> Self {
        let body = |value: Result<Value, serde_json::Error>| value.expect("bodies serialise");
        match outcome {
            StoredOutcome::Completed(b) => {
                Kept { status: 200, body: body(serde_json::to_value(b)), problem: false }
            }
            StoredOutcome::Pending(b) => {
                Kept { status: 202, body: body(serde_json::to_value(b)), problem: false }
            }
            StoredOutcome::AwaitingApproval(b) => {
                Kept { status: 202, body: body(serde_json::to_value(b)), problem: false }
            }
            StoredOutcome::Problem(p) => {
                Kept { status: p.status, body: body(serde_json::to_value(p)), problem: true }
            }
        }
    }

    fn into_outcome(self) -> Result<StoredOutcome, ApiError> {
        let Kept { status, body, problem } = self;
        let parsed = match (problem, status) {
            (true, _) => serde_json::from_value::<ProblemBody>(body).map(StoredOutcome::Problem),
            (false, 202) if body["status"] == "awaiting_approval" => {
                serde_json::from_value(body).map(StoredOutcome::AwaitingApproval)
            }
            (false, 202) => serde_json::from_value(body).map(StoredOutcome::Pending),
            (false, _) => serde_json::from_value(body).map(StoredOutcome::Completed),
        };
        parsed.map_err(|e| {
            tracing::error!(error = %e, "a kept idempotent outcome does not parse");
            ApiError::StateUnavailable
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_are_kept_in_the_form_every_version_reads() {
        let kept = json!({"status": 200, "problem": false, "body": {
            "status": "completed", "tool": "util:echo", "result": {"a": 1}, "correlation_id": "c1"}});
        let outcome = serde_json::from_value::<Kept>(kept.clone()).unwrap().into_outcome().unwrap();
        let StoredOutcome::Completed(body) = &outcome else { panic!("completed") };
        assert_eq!(body.result, json!({"a": 1}));
        assert_eq!(serde_json::to_value(Kept::from_outcome(&outcome)).unwrap(), kept, "written as read");
        let problem = ApiError::ToolTimeout { timeout_ms: 5 }.problem_body(&CorrelationId::generate());
        let kept = Kept::from_outcome(&StoredOutcome::Problem(problem.clone()));
        assert_eq!((kept.status, kept.problem), (504, true));
        assert_eq!(kept.into_outcome().unwrap(), StoredOutcome::Problem(problem));
    }
}
