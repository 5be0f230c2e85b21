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
        Kept::Typed(problem(&error, correlation_id))
    };
    if let Err(e) =
        idempotency::finish(state.store(), reservation, Kept::Typed(stored), limit, too_large).await
    {
        tracing::error!(error = %e, "could not store an idempotent outcome; retries see 409 until it expires");
    }
}

fn problem(error: &ApiError, correlation_id: &CorrelationId) -> StoredOutcome {
    StoredOutcome::Problem(error.problem_body(correlation_id))
}

/// What a key holds: a typed outcome, or — written by a host before typed
/// outcomes, within the last 24 hours — an HTTP status and body.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant, reason = "read once per replay and dropped at once")]
enum Kept {
    Typed(StoredOutcome),
    Legacy { status: u16, body: Value, problem: bool },
}

impl Kept {
    fn into_outcome(self) -> Result<StoredOutcome, ApiError> {
        let (status, body, problem) = match self {
            Kept::Typed(outcome) => return Ok(outcome),
            Kept::Legacy { status, body, problem } => (status, body, problem),
        };
        let parsed = match (problem, status) {
            (true, _) => serde_json::from_value::<ProblemBody>(body).map(StoredOutcome::Problem),
            (false, 202) => serde_json::from_value(body).map(StoredOutcome::Pending),
            (false, _) => serde_json::from_value(body).map(StoredOutcome::Completed),
        };
        parsed.map_err(|e| {
            tracing::error!(error = %e, "an idempotency record of an earlier version does not parse");
            ApiError::StateUnavailable
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_kept_by_an_earlier_version_replay_typed() {
        let legacy = json!({"status": 200, "problem": false, "body": {
            "status": "completed", "tool": "util:echo", "result": {"a": 1}, "correlation_id": "c1"}});
        let kept: Kept = serde_json::from_value(legacy).unwrap();
        let StoredOutcome::Completed(body) = kept.into_outcome().unwrap() else { panic!("completed") };
        assert_eq!(body.result, json!({"a": 1}));
        let problem = ApiError::ToolTimeout { timeout_ms: 5 }.problem_body(&CorrelationId::generate());
        let legacy = json!({"status": 504, "problem": true, "body": problem});
        let kept: Kept = serde_json::from_value(legacy).unwrap();
        assert_eq!(kept.into_outcome().unwrap().status(), 504);
        // What this version writes reads back as itself.
        let typed = serde_json::to_value(Kept::Typed(StoredOutcome::Problem(problem.clone()))).unwrap();
        assert_eq!(typed["outcome"], "problem");
        let kept: Kept = serde_json::from_value(typed).unwrap();
        assert_eq!(kept.into_outcome().unwrap(), StoredOutcome::Problem(problem));
    }
}
