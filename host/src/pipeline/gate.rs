//! The gate: an invoke that needs the caller's own confirmation stops here
//! with an action token; a confirm proves the token, spends it once, and
//! only then goes on; a decline proves and spends it, and nothing runs.
//! Past confirmation, a call an approval rule covers is stored to wait for
//! its approvers ([`super::approval`]); an approved run goes straight to
//! execution.

use super::execute::execute;
use super::steps::Checked;
use super::{CallRecord, Reply};
use crate::confirm::{ActionClaims, ActionTokenError, DeclineReason, Presented, check_binding};
use crate::error::ApiError;
use crate::manifest::DEFAULT_CONFIRMATION_TTL_S;
use crate::state::AppState;
use crate::store::keys;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Hint shown when neither the manifest nor the policy gives one.
const DEFAULT_HINT: &str = "This action requires human confirmation";

/// Extra lifetime of a spent-token record past the token's own expiry.
const SPENT_GRACE: Duration = Duration::from_secs(60);

/// Invoke: execute, or stop at the gate when the manifest or a policy rule
/// demands confirmation.
pub(super) async fn invoke(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    cancel: Option<&CancellationToken>,
) -> Result<Reply, ApiError> {
    let tool = &call.tool.def;
    let manifest = tool.confirmation.as_ref();
    if manifest.is_none() && call.confirm_rule.is_none() {
        return confirmed(state, record, call, cancel, "completed").await;
    }
    let ttl_s = manifest.map_or(DEFAULT_CONFIRMATION_TTL_S, |c| c.ttl_s);
    let hint = manifest
        .and_then(|c| c.hint.clone())
        .or_else(|| call.confirm_rule.as_ref().and_then(|r| r.hint.clone()))
        .unwrap_or_else(|| DEFAULT_HINT.to_owned());
    let now = state.clock().now_unix_s();
    let principal = &call.principal;
    let claims = ActionClaims {
        jti: uuid::Uuid::now_v7().to_string(),
        tool: tool.id.clone(),
        args_sha256: call.args_sha256.clone(),
        sub: principal.sub.clone(),
        tenant: principal.tenant.clone(),
        iat: now,
        exp: now + ttl_s,
    };
    let token = state.action_tokens().issue(&claims);
    Ok(Reply::pending(&tool.id, token, &claims, hint, record.correlation_id.as_str()))
}

/// Confirm: verify the token against this call, spend it, execute.
pub(super) async fn confirm(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    token: &str,
    cancel: Option<&CancellationToken>,
) -> Result<Reply, ApiError> {
    let claims = spend(state, call, token).await?;
    let mut reply = confirmed(state, record, call, cancel, "confirmed").await?;
    reply.action_id = Some(claims.jti);
    Ok(reply)
}

/// Past the caller's confirmation (or none needed): wait for approvers if
/// a rule says so, else execute.
async fn confirmed(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    cancel: Option<&CancellationToken>,
    decision: &'static str,
) -> Result<Reply, ApiError> {
    if let Some(requirement) = &call.approval {
        return super::approval::request(state, record, call, requirement).await;
    }
    let result = execute(state, record, call, cancel).await?;
    Ok(Reply::completed(&call.tool.def.id, result, record.correlation_id.as_str(), decision))
}

/// An approved run: its approvers agreed; execute.
pub(super) async fn approved(
    state: &AppState,
    record: &CallRecord,
    call: &Checked,
    cancel: Option<&CancellationToken>,
) -> Result<Reply, ApiError> {
    let result = execute(state, record, call, cancel).await?;
    Ok(Reply::completed(&call.tool.def.id, result, record.correlation_id.as_str(), "approved"))
}

/// Decline: verify the token against this call and spend it; nothing runs.
pub(super) async fn decline(
    state: &AppState,
    call: &Checked,
    token: &str,
    reason: DeclineReason,
) -> Result<Reply, ApiError> {
    let claims = spend(state, call, token).await?;
    Err(ApiError::ConfirmationDeclined { reason, action_id: claims.jti })
}

/// Verify the action token against this call (tool, arguments, caller,
/// expiry) and spend it: a token is good for one confirm or decline.
async fn spend(state: &AppState, call: &Checked, token: &str) -> Result<ActionClaims, ApiError> {
    let (tool, principal) = (&call.tool.def, &call.principal);
    let now = state.clock().now_unix_s();
    let claims = state.action_tokens().verify(token).map_err(token_error)?;
    let presented = Presented {
        tool: &tool.id,
        args_sha256: &call.args_sha256,
        sub: &principal.sub,
        tenant: &principal.tenant,
        now,
    };
    check_binding(&claims, &presented).map_err(token_error)?;
    let spent_for = Duration::from_secs(claims.exp.saturating_sub(now)) + SPENT_GRACE;
    let first_use = state
        .store()
        .insert_if_absent(&keys::spent_action_token(&claims.jti), b"1", spent_for)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record a spent action token");
            ApiError::StateUnavailable
        })?;
    if !first_use {
        return Err(ApiError::ActionTokenUsed);
    }
    Ok(claims)
}

fn token_error(error: ActionTokenError) -> ApiError {
    match error {
        ActionTokenError::Invalid(reason) => ApiError::InvalidActionToken(reason.to_owned()),
        ActionTokenError::Expired => ApiError::ActionTokenExpired,
    }
}
