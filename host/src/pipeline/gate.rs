//! Step 8, the confirmation gate: an invoke that needs a human stops here
//! with 202 and an action token; a confirm proves the token, spends it once,
//! and only then executes.

use super::Reply;
use super::execute::{Caller, execute};
use crate::confirm::{ActionClaims, ActionTokenError, Presented, check_binding};
use crate::error::ApiError;
use crate::manifest::DEFAULT_CONFIRMATION_TTL_S;
use crate::policy::ConfirmRule;
use crate::registry::Tool;
use crate::state::AppState;
use serde_json::Value;
use std::time::Duration;

/// Hint shown when neither the manifest nor the policy gives one.
const DEFAULT_HINT: &str = "This action requires human confirmation";

/// Extra lifetime of a spent-token record past the token's own expiry.
const SPENT_GRACE: Duration = Duration::from_secs(60);

/// Invoke: execute, or stop at the gate when the manifest or a policy rule
/// demands confirmation.
pub async fn invoke(
    state: &AppState,
    caller: &Caller<'_>,
    tool: &Tool,
    args: &Value,
    args_sha256: &str,
    confirm_rule: Option<ConfirmRule>,
) -> Result<Reply, ApiError> {
    let Caller { correlation_id, principal, .. } = *caller;
    let manifest = tool.def.confirmation.as_ref();
    if manifest.is_none() && confirm_rule.is_none() {
        let result = execute(state, caller, tool, args).await?;
        return Ok(Reply::completed(&tool.def.id, result, correlation_id));
    }
    let ttl_s = manifest.map_or(DEFAULT_CONFIRMATION_TTL_S, |c| c.ttl_s);
    let hint = manifest
        .and_then(|c| c.hint.clone())
        .or_else(|| confirm_rule.and_then(|r| r.hint))
        .unwrap_or_else(|| DEFAULT_HINT.to_owned());
    let now = state.clock().now_unix_s();
    let claims = ActionClaims {
        jti: uuid::Uuid::now_v7().to_string(),
        tool: tool.def.id.clone(),
        args_sha256: args_sha256.to_owned(),
        sub: principal.sub.clone(),
        tenant: principal.tenant.clone(),
        iat: now,
        exp: now + ttl_s,
    };
    let token = state.action_tokens().issue(&claims);
    Ok(Reply::pending(&tool.def.id, &token, &claims, &hint, correlation_id))
}

/// Confirm: verify the token against this call, spend it, execute.
pub async fn confirm(
    state: &AppState,
    caller: &Caller<'_>,
    tool: &Tool,
    args: &Value,
    args_sha256: &str,
    token: &str,
) -> Result<Reply, ApiError> {
    let Caller { correlation_id, principal, .. } = *caller;
    let now = state.clock().now_unix_s();
    let claims = state.action_tokens().verify(token).map_err(token_error)?;
    let presented =
        Presented { tool: &tool.def.id, args_sha256, sub: &principal.sub, tenant: &principal.tenant, now };
    check_binding(&claims, &presented).map_err(token_error)?;
    let spent_for = Duration::from_secs(claims.exp.saturating_sub(now)) + SPENT_GRACE;
    let spent_key = format!("spent:{}", claims.jti);
    let first_use = state.store().insert_if_absent(&spent_key, b"1", spent_for).await.map_err(|e| {
        tracing::error!(error = %e, "cannot record a spent action token");
        ApiError::StateUnavailable
    })?;
    if !first_use {
        return Err(ApiError::ActionTokenUsed);
    }
    let result = execute(state, caller, tool, args).await?;
    let mut reply = Reply::confirmed(&tool.def.id, result, correlation_id);
    reply.action_id = Some(claims.jti);
    Ok(reply)
}

fn token_error(error: ActionTokenError) -> ApiError {
    match error {
        ActionTokenError::Invalid(reason) => ApiError::InvalidActionToken(reason.to_owned()),
        ActionTokenError::Expired => ApiError::ActionTokenExpired,
    }
}
