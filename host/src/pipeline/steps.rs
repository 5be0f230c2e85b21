//! The checks between authentication and the gate, each one call on the
//! [`CallRecord`] in the order of the [module docs](super).

use super::digest::args_digest;
use super::{ArgsSource, CallArgs, CallRecord};
use crate::auth::{INVOKE_SCOPE, require_scope};
use crate::error::ApiError;
use crate::idempotency;
use crate::policy::Decision;
use crate::ratelimit::{self, Verdict};
use crate::state::AppState;
use serde_json::{Map, Value};

/// Ids no manifest can declare are unknown to everyone.
pub(super) fn check_shape(call: &CallRecord) -> Result<(), ApiError> {
    if crate::manifest::is_tool_id(&call.tool) {
        Ok(())
    } else {
        Err(ApiError::ToolNotFound(call.tool.clone()))
    }
}

/// The invoke scope, then a role must grant the id (one policy snapshot
/// serves the whole call).
pub(super) fn authorize_id(state: &AppState, call: &mut CallRecord) -> Result<(), ApiError> {
    let principal = call.principal();
    require_scope(principal, INVOKE_SCOPE)?;
    let policy = state.policy();
    if !policy.policy.grants(principal, &call.tool) {
        return Err(ApiError::PolicyDenied {
            rule: "rbac".into(),
            reason: format!("no role of the caller grants `{}`", call.tool),
        });
    }
    call.policy = Some(policy);
    Ok(())
}

/// The transport's arguments, idempotency key and action token.
pub(super) async fn take_args(
    call: &mut CallRecord,
    source: ArgsSource,
) -> Result<Map<String, Value>, ApiError> {
    let CallArgs { args, action_token, idempotency_key } = source.await?;
    if let Some(key) = &idempotency_key {
        idempotency::check_key(key).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    call.args_sha256 = Some(args_digest(&args));
    call.idempotency_key = idempotency_key;
    call.action_token = action_token;
    Ok(args)
}

/// The tool in the registry snapshot, then the tool's own scopes.
pub(super) fn resolve(state: &AppState, call: &mut CallRecord) -> Result<(), ApiError> {
    let tool = state
        .registry()
        .tool(&call.tool)
        .cloned()
        .ok_or_else(|| ApiError::ToolNotFound(call.tool.clone()))?;
    call.tool_known = true;
    for scope in &tool.def.scopes {
        require_scope(call.principal(), scope)?;
    }
    call.resolved = Some(tool);
    Ok(())
}

/// The arguments against the tool's schema.
pub(super) fn validate(call: &mut CallRecord, args: Map<String, Value>) -> Result<(), ApiError> {
    let args = Value::Object(args);
    let tool = call.tool_def();
    tool.validate(&args).map_err(ApiError::InvalidArguments)?;
    if tool.record_args {
        call.args = Some(args.clone());
    }
    call.arguments = args;
    Ok(())
}

/// The ABAC rules, which read the validated arguments; remembers the
/// `confirm` rule that applies.
pub(super) fn evaluate_rules(state: &AppState, call: &mut CallRecord) -> Result<(), ApiError> {
    let policy = call.policy.clone().expect("authorized before the rules");
    let now = state.clock().now_unix_ms();
    match policy.policy.evaluate(call.principal(), call.tool_def(), &call.arguments, now) {
        Decision::Deny { rule, reason } => Err(ApiError::PolicyDenied { rule, reason }),
        Decision::Permit { confirm } => {
            call.confirm_rule = confirm;
            Ok(())
        }
    }
}

/// The caller's bucket (a policy override, else the manifest's quota), then
/// the tool's bucket across all callers. The verdict that describes the
/// caller is kept for the transport's `RateLimit*` headers.
pub(super) async fn rate_limit(state: &AppState, call: &mut CallRecord) -> Result<(), ApiError> {
    let principal = call.principal().clone();
    let tool = &call.resolved.clone().expect("resolved before the rate limit").def;
    let policy = call.policy.clone().expect("authorized before the rate limit");
    let caller_limit = policy.policy.rate_limit_for(&principal, &tool.id).or(tool.rate_limit);
    let caller =
        caller_limit.map(|l| (l, ratelimit::caller_key(&principal.tenant, &principal.sub, &tool.id)));
    let total = tool.total_rate_limit.map(|l| (l, ratelimit::tool_key(&tool.id)));
    for (limit, key) in caller.into_iter().chain(total) {
        let verdict = match state.rate_limits().check(limit, &key).await {
            Ok(verdict) => verdict,
            Err(e) if state.config().redis.as_ref().is_some_and(|r| r.fail_open) => {
                tracing::warn!(error = %e, "rate limiter unavailable; failing open as configured");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "rate limiter unavailable; failing closed");
                return Err(ApiError::RateLimitUnavailable);
            }
        };
        // The headers describe the caller's own bucket unless the tool's is
        // the one that stops the call.
        let limited = matches!(verdict, Verdict::Limited { .. });
        if call.rate.is_none() || limited {
            call.rate = Some(verdict);
        }
        if let Verdict::Limited { retry_after_s, .. } = verdict {
            return Err(ApiError::RateLimited {
                retry_after_s,
                policy: verdict.policy_header(),
                state: verdict.state_header(),
            });
        }
    }
    Ok(())
}
