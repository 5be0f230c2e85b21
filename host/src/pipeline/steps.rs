//! The checks between authentication and the gate, in the order of the
//! [module docs](super). Each takes what the step before produced and
//! returns what the next one needs; what is audited is written on the
//! [`CallRecord`] as it becomes known.

use super::digest::args_digest;
use super::{ArgsSource, CallArgs, CallRecord};
use crate::auth::{INVOKE_SCOPE, require_scope};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::idempotency;
use crate::policy::approvals::Requirement;
use crate::policy::{ConfirmRule, Decision};
use crate::principal::Principal;
use crate::ratelimit::{self, Verdict};
use crate::registry::Tool;
use crate::state::{AppState, PolicySnapshot};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A caller allowed to use the tool id it asked for, and the policy
/// snapshot that decides the whole call.
pub(super) struct Authorized {
    principal: Arc<Principal>,
    policy: Arc<PolicySnapshot>,
}

/// What the transport handed over once asked.
pub(super) struct Arguments {
    /// The tool's arguments, not yet validated.
    pub args: Map<String, Value>,
    /// SHA-256 of their canonical form.
    pub args_sha256: String,
    /// What travels with them.
    pub presented: Presented,
}

/// The idempotency key and action token a caller presented.
pub(super) struct Presented {
    /// The idempotency key (its shape checked).
    pub idempotency_key: Option<String>,
    /// The action token, on confirm and decline.
    pub action_token: Option<String>,
}

/// An authorized caller and the tool, resolved (with the broker of the
/// registry it was found in).
pub(super) struct Resolved {
    authorized: Authorized,
    tool: Arc<Tool>,
    broker: Arc<Broker>,
}

/// A resolved call whose arguments passed the schema.
pub(super) struct Validated {
    resolved: Resolved,
    args: Value,
    args_sha256: String,
}

/// A call that passed every check before the rate limit: who, which tool,
/// with what arguments, under which policy.
pub(super) struct Checked {
    /// The caller.
    pub principal: Arc<Principal>,
    /// The policy that decided it.
    pub policy: Arc<PolicySnapshot>,
    /// The tool.
    pub tool: Arc<Tool>,
    /// The broker the tool's registry was validated against.
    pub broker: Arc<Broker>,
    /// The validated arguments.
    pub args: Value,
    /// SHA-256 of the canonical arguments.
    pub args_sha256: String,
    /// The policy's `confirm` rule that applies, if any.
    pub confirm_rule: Option<ConfirmRule>,
    /// The approval rule that applies, if any.
    pub approval: Option<Requirement>,
}

/// The transport's verdict on the bearer token: a principal, or 401.
pub(super) fn authenticate(
    record: &mut CallRecord,
    caller: Result<Arc<Principal>, ApiError>,
) -> Result<Arc<Principal>, ApiError> {
    let principal = caller?;
    record.principal = Some(principal.clone());
    Ok(principal)
}

/// Ids no manifest can declare are unknown to everyone.
pub(super) fn check_shape(record: &CallRecord) -> Result<(), ApiError> {
    if crate::manifest::is_tool_id(&record.tool) {
        Ok(())
    } else {
        Err(ApiError::ToolNotFound(record.tool.clone()))
    }
}

/// The invoke scope, then a role must grant the id (one policy snapshot
/// serves the whole call).
pub(super) fn authorize_id(
    state: &AppState,
    record: &CallRecord,
    principal: Arc<Principal>,
) -> Result<Authorized, ApiError> {
    require_scope(&principal, INVOKE_SCOPE)?;
    let policy = state.policy();
    if !policy.policy.grants(&principal, &record.tool) {
        return Err(ApiError::PolicyDenied {
            rule: "rbac".into(),
            reason: format!("no role of the caller grants `{}`", record.tool),
        });
    }
    Ok(Authorized { principal, policy })
}

/// The transport's arguments, idempotency key and action token.
pub(super) async fn take_args(record: &mut CallRecord, source: ArgsSource) -> Result<Arguments, ApiError> {
    let CallArgs { args, action_token, idempotency_key } = source.await?;
    if let Some(key) = &idempotency_key {
        idempotency::check_key(key).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let args_sha256 = args_digest(&args);
    record.args_sha256 = Some(args_sha256.clone());
    Ok(Arguments { args, args_sha256, presented: Presented { idempotency_key, action_token } })
}

/// The tool in the registry snapshot, then the tool's own scopes.
pub(super) fn resolve(
    state: &AppState,
    record: &mut CallRecord,
    authorized: Authorized,
) -> Result<Resolved, ApiError> {
    let plugins = state.plugins();
    let tool = plugins
        .registry
        .tool(&record.tool)
        .cloned()
        .ok_or_else(|| ApiError::ToolNotFound(record.tool.clone()))?;
    record.tool_known = true;
    for scope in &tool.def.scopes {
        require_scope(&authorized.principal, scope)?;
    }
    Ok(Resolved { authorized, tool, broker: plugins.broker.clone() })
}

/// The arguments against the tool's schema; recorded when the manifest
/// opts in.
pub(super) fn validate(
    record: &mut CallRecord,
    resolved: Resolved,
    args: Map<String, Value>,
    args_sha256: String,
) -> Result<Validated, ApiError> {
    let args = Value::Object(args);
    resolved.tool.def.validate(&args).map_err(ApiError::InvalidArguments)?;
    if resolved.tool.def.record_args {
        record.args = Some(args.clone());
    }
    Ok(Validated { resolved, args, args_sha256 })
}

/// The ABAC rules, which read the validated arguments; finds the `confirm`
/// rule that applies.
pub(super) fn evaluate_rules(state: &AppState, validated: Validated) -> Result<Checked, ApiError> {
    let Validated {
        resolved: Resolved { authorized: Authorized { principal, policy }, tool, broker },
        args,
        args_sha256,
    } = validated;
    let now = state.clock().now_unix_ms();
    // Whether the tool's requests act as the caller (`credential.kind`).
    let credential_kind = match (&tool.def.credential, tool.plugin.network.grants.is_empty()) {
        (Some(provider), _) => broker.kind_of(provider),
        (None, false) => "service",
        (None, true) => "none",
    };
    match policy.policy.decide(&principal, &tool.def, &args, now, credential_kind) {
        Decision::Deny { rule, reason } => Err(ApiError::PolicyDenied { rule, reason }),
        Decision::Permit { confirm, approval } => Ok(Checked {
            principal,
            policy,
            tool,
            broker,
            args,
            args_sha256,
            confirm_rule: confirm,
            approval,
        }),
    }
}

/// The caller's bucket (a policy override, else the manifest's quota), then
/// the tool's bucket across all callers. The verdict that describes the
/// caller is recorded for the transport's `RateLimit*` headers.
pub(super) async fn rate_limit(
    state: &AppState,
    record: &mut CallRecord,
    call: &Checked,
) -> Result<(), ApiError> {
    let (principal, tool) = (&call.principal, &call.tool.def);
    let caller_limit = call.policy.policy.rate_limit_for(principal, &tool.id).or(tool.rate_limit);
    let caller =
        caller_limit.map(|l| (l, ratelimit::caller_key(&principal.tenant, &principal.sub, &tool.id)));
    let total = tool.total_rate_limit.map(|l| (l, ratelimit::tool_key(&tool.id)));
    for (limit, key) in caller.into_iter().chain(total) {
        let verdict = match state.rate_limits().check(limit, &key).await {
            Ok(verdict) => verdict,
            Err(e) if state.config().redis.fails_open() => {
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
        if record.rate.is_none() || limited {
            record.rate = Some(verdict);
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
