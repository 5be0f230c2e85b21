//! The idempotency step: replay an earlier outcome, refuse a conflicting or
//! concurrent duplicate, or reserve the key; and after the gate, settle it.

use super::digest::request_fingerprint;
use super::{CallRecord, Reply};
use crate::error::ApiError;
use crate::idempotency::{self, Begin, IdempotencyError, KeyOf, Reservation, StoredReply};
use crate::state::AppState;
use std::time::Duration;

/// How the call goes on after the idempotency step.
pub(super) enum Begun {
    /// Answer with the stored outcome.
    Replay(Reply),
    /// Run (holding the key, if there was one).
    Proceed(Option<Reservation>),
}

/// Reserve the call's key, or replay what it already produced.
pub(super) async fn begin(state: &AppState, call: &CallRecord) -> Result<Begun, ApiError> {
    let Some(key) = &call.idempotency_key else { return Ok(Begun::Proceed(None)) };
    let (principal, tool) = (call.principal(), call.resolved.as_ref().expect("resolved before idempotency"));
    let fingerprint = request_fingerprint(
        call.args_sha256.as_deref().expect("digested before idempotency"),
        call.action_token.as_deref(),
    );
    let key = KeyOf {
        endpoint: call.endpoint.name(),
        tenant: &principal.tenant,
        sub: &principal.sub,
        tool: &tool.def.id,
        key,
    };
    let max_keys = state.config().idempotency.max_keys_per_caller;
    let in_progress_for = tool.plugin.limits.timeout + Duration::from_secs(60);
    match idempotency::begin(state.store(), key, max_keys, fingerprint, in_progress_for).await {
        Ok(Begin::Replay(stored)) => Ok(Begun::Replay(Reply::replay(stored))),
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
    call: &CallRecord,
    reservation: Option<Reservation>,
    outcome: &Result<Reply, ApiError>,
) {
    let Some(reservation) = reservation else { return };
    let correlation_id = &call.correlation_id;
    let stored = match outcome {
        Ok(reply) => StoredReply { status: reply.status(), body: reply.json(), problem: false },
        Err(e) if !e.class().tool_ran => return idempotency::release(state.store(), reservation).await,
        Err(e) => stored_problem(e, correlation_id),
    };
    let limit = state.config().idempotency.max_reply_bytes;
    let too_large = || {
        let error =
            ApiError::IdempotencyReplyTooLarge { limit, first_correlation_id: correlation_id.to_string() };
        stored_problem(&error, correlation_id)
    };
    if let Err(e) = idempotency::finish(state.store(), reservation, stored, limit, too_large).await {
        tracing::error!(error = %e, "could not store an idempotent outcome; retries see 409 until it expires");
    }
}

fn stored_problem(error: &ApiError, correlation_id: &crate::correlation::CorrelationId) -> StoredReply {
    let body = serde_json::to_value(error.problem_body(correlation_id)).expect("problems serialise");
    StoredReply { status: error.status().as_u16(), body, problem: true }
}
