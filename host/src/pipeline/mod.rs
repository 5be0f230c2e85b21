//! The call pipeline: the one place where a tool call passes every check, in
//! one order. `POST /tools/{id}/invoke` and `.../confirm` both run it; they
//! differ only at the confirmation gate.
//!
//! The order, and why:
//! 1. **authenticate** — every later outcome belongs to a known caller, and
//!    an unauthenticated client only ever learns "401" (its failures are
//!    audited within a per-address budget, [`crate::auth::failures`]).
//! 2. **shape** — a tool id that no manifest could ever declare (bad
//!    characters, over [`MAX_TOOL_ID_LEN`]) is 404 at once, before it is
//!    matched against any pattern; the record keeps it cut to that length.
//! 3. **authorize the id** — the invoke scope, then RBAC on the tool id as
//!    given (does a role grant it?). This runs *before* the tool is looked
//!    up or the body is read: a caller who may not use a tool gets the same
//!    403 whether or not it exists, and never its schema.
//! 4. **resolve** — the tool in the registry snapshot (404 only for callers a
//!    role would let use it), then the tool's own scopes.
//! 5. **validate** — arguments against the tool's schema; **ABAC rules**
//!    read `args`, so they only ever see arguments that passed it. Both run
//!    on confirm too: a policy change between invoke and confirm applies.
//! 6. **rate limit** and **idempotency** follow authorization, so denied
//!    callers cannot spend quota or keys; idempotency precedes the gate, so
//!    a retried invoke gets the same action token back and a retried confirm
//!    the same result instead of "token used".
//! 7. **confirmation gate** ([`gate`]), then **execute** ([`execute`]) in a
//!    fresh sandbox.
//! 8. **record** ([`record`]): the [`CallRecord`] becomes the audit record
//!    (durable before the response) and the log line.

mod execute;
mod gate;
pub mod record;

use crate::api::body::read_json_object;
use crate::confirm::ActionClaims;
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::idempotency::{self, Begin, StoredReply};
use crate::policy::Decision;
use crate::principal::Principal;
use crate::ratelimit::{self, Verdict};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
pub use record::CallRecord;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Scope every invoke and confirm needs.
pub const INVOKE_SCOPE: &str = "tools.invoke:write";
/// Scope the catalog needs.
pub const CATALOG_SCOPE: &str = "tools.query:catalog";
/// The body field carrying the action token on confirm.
pub const ACTION_TOKEN_FIELD: &str = "action_token";
/// Longest tool id a manifest can declare (`plugin:name`, 64 + 1 + 64).
pub const MAX_TOOL_ID_LEN: usize = 129;

/// Which route a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /tools/{id}/invoke`.
    Invoke,
    /// `POST /tools/{id}/confirm`.
    Confirm,
}

impl Endpoint {
    /// `invoke` or `confirm`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Invoke => "invoke",
            Endpoint::Confirm => "confirm",
        }
    }
}

/// A successful (or replayed) answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
    /// For the record: `completed`, `pending_confirmation`, `confirmed`, `replayed`.
    pub decision: &'static str,
    /// An `Idempotency-Key` replay.
    pub replayed: bool,
    /// The body is problem details (a replayed failure).
    pub problem: bool,
    /// The action token's id, on a 202 and on a successful confirm.
    pub action_id: Option<String>,
    /// The action token's lifetime, on a 202.
    pub action_ttl: Option<Duration>,
    /// The caller's bucket after this call, for the `RateLimit*` headers.
    pub rate_limit: Option<Verdict>,
}

impl Reply {
    fn completed(tool: &str, result: Value, correlation_id: &str) -> Self {
        Self::ok(StatusCode::OK, "completed", tool, result, correlation_id)
    }

    fn confirmed(tool: &str, result: Value, correlation_id: &str) -> Self {
        Self::ok(StatusCode::OK, "confirmed", tool, result, correlation_id)
    }

    fn ok(
        status: StatusCode,
        decision: &'static str,
        tool: &str,
        result: Value,
        correlation_id: &str,
    ) -> Self {
        let body =
            json!({"status": "completed", "tool": tool, "result": result, "correlation_id": correlation_id});
        Self {
            status,
            body,
            decision,
            replayed: false,
            problem: false,
            action_id: None,
            action_ttl: None,
            rate_limit: None,
        }
    }

    fn pending(
        tool: &str,
        action_token: &str,
        claims: &ActionClaims,
        hint: &str,
        correlation_id: &str,
    ) -> Self {
        let expires_at = claims.exp;
        let expires_at = chrono::DateTime::from_timestamp(expires_at as i64, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({
            "status": "pending_confirmation",
            "tool": tool,
            "action_token": action_token,
            "expires_at": expires_at,
            "confirm_url": format!("/tools/{tool}/confirm"),
            "hint": hint,
            "correlation_id": correlation_id,
        });
        Self {
            status: StatusCode::ACCEPTED,
            body,
            decision: "pending_confirmation",
            replayed: false,
            problem: false,
            action_id: Some(claims.jti.clone()),
            action_ttl: Some(Duration::from_secs(claims.exp.saturating_sub(claims.iat))),
            rate_limit: None,
        }
    }

    fn replay(stored: StoredReply) -> Self {
        Self {
            status: StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
            body: stored.body,
            decision: "replayed",
            replayed: true,
            problem: stored.problem,
            action_id: None,
            action_ttl: None,
            rate_limit: None,
        }
    }
}

/// Run the pipeline for one invoke or confirm.
pub async fn handle(
    state: &AppState,
    correlation_id: &CorrelationId,
    endpoint: Endpoint,
    tool_id: &str,
    request: Request,
) -> Result<Reply, ApiError> {
    let mut record = CallRecord::new(correlation_id, endpoint, tool_id);
    record.peer = crate::server::peer_of(&request).map(|peer| peer.ip());
    let outcome = run(state, &mut record, request).await;
    record.commit(state, outcome).await
}

async fn run(state: &AppState, record: &mut CallRecord, request: Request) -> Result<Reply, ApiError> {
    // 1. authenticate
    let principal = authenticate(state, request.headers()).await?;
    record.principal = Some(principal.clone());

    // 2. shape: ids no manifest can declare are unknown to everyone
    if !crate::manifest::is_tool_id(&record.tool) {
        return Err(ApiError::ToolNotFound(record.tool.clone()));
    }

    // 3. authorize the id: the invoke scope, then a role must grant it
    require_scope(&principal, INVOKE_SCOPE)?;
    let policy = state.policy();
    if !policy.policy.grants(&principal, &record.tool) {
        return Err(ApiError::PolicyDenied {
            rule: "rbac".into(),
            reason: format!("no role of the caller grants `{}`", record.tool),
        });
    }
    let idempotency_key = idempotency::key_from_headers(request.headers())?;
    let config = state.config();
    let mut args = read_json_object(request, config.max_body_bytes, config.server.body_read_timeout).await?;
    let action_token = match record.endpoint {
        Endpoint::Invoke => None,
        Endpoint::Confirm => Some(take_action_token(&mut args)?),
    };
    let args_sha256 = args_digest(&args);
    record.args_sha256 = Some(args_sha256.clone());

    // 4. resolve, then the tool's own scopes
    let registry = state.registry();
    let tool =
        registry.tool(&record.tool).cloned().ok_or_else(|| ApiError::ToolNotFound(record.tool.clone()))?;
    record.tool_known = true;
    for scope in &tool.def.scopes {
        require_scope(&principal, scope)?;
    }

    // 5. validate, then the ABAC rules (which read `args`)
    let args = Value::Object(args);
    tool.def.validate(&args).map_err(ApiError::InvalidArguments)?;
    if tool.def.record_args {
        record.args = Some(args.clone());
    }
    let confirm_rule = match policy.policy.evaluate(&principal, &tool.def, &args, state.clock().now_unix_ms())
    {
        Decision::Deny { rule, reason } => return Err(ApiError::PolicyDenied { rule, reason }),
        Decision::Permit { confirm } => confirm,
    };

    // rate limit: the caller's bucket (a policy override, else the
    // manifest's quota), then the tool's bucket across all callers
    let caller_limit = policy.policy.rate_limit_for(&principal, &tool.def.id).or(tool.def.rate_limit);
    let caller =
        caller_limit.map(|l| (l, ratelimit::caller_key(&principal.tenant, &principal.sub, &tool.def.id)));
    let total = tool.def.total_rate_limit.map(|l| (l, ratelimit::tool_key(&tool.def.id)));
    let mut rate = None;
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
        // The headers describe the caller's own bucket unless the tool's is the one that stops the call.
        if rate.is_none() || matches!(verdict, Verdict::Limited { .. }) {
            rate = Some(verdict);
        }
        if matches!(verdict, Verdict::Limited { .. }) {
            break;
        }
    }
    if let Some(verdict @ Verdict::Limited { retry_after_s, .. }) = rate {
        return Err(ApiError::RateLimited {
            retry_after_s,
            policy: verdict.policy_header(),
            state: verdict.state_header(),
        });
    }

    // idempotency
    let reservation = match idempotency_key {
        None => None,
        Some(key) => {
            let endpoint = record.endpoint.name();
            let store_key =
                idempotency::scoped_key(endpoint, &principal.tenant, &principal.sub, &tool.def.id, &key);
            let fingerprint = request_fingerprint(&args_sha256, action_token.as_deref());
            let in_progress_for = tool.plugin.limits.timeout + Duration::from_secs(60);
            let holder = idempotency::Holder {
                tenant: &principal.tenant,
                sub: &principal.sub,
                max_keys: config.idempotency.max_keys_per_caller,
            };
            match idempotency::begin(state.store(), holder, store_key, fingerprint, in_progress_for).await? {
                Begin::Replay(stored) => return Ok(Reply::replay(stored)),
                Begin::Proceed(reservation) => Some(reservation),
            }
        }
    };

    // confirmation gate, execute
    let caller = execute::Caller {
        correlation_id: record.correlation_id.as_str(),
        principal: &principal,
        egress: &record.egress,
    };
    let outcome = match &action_token {
        None => gate::invoke(state, &caller, &tool, &args, &args_sha256, confirm_rule).await,
        Some(token) => gate::confirm(state, &caller, &tool, &args, &args_sha256, token).await,
    };

    if let Some(reservation) = reservation {
        settle_idempotency(state, reservation, &outcome, &record.correlation_id).await;
    }
    outcome.map(|reply| Reply { rate_limit: rate, ..reply })
}

/// Store the outcome under the key — unless the request never reached the
/// tool, in which case the key is released for a retry.
async fn settle_idempotency(
    state: &AppState,
    reservation: idempotency::Reservation,
    outcome: &Result<Reply, ApiError>,
    correlation_id: &CorrelationId,
) {
    let stored = match outcome {
        Ok(reply) => StoredReply { status: reply.status.as_u16(), body: reply.body.clone(), problem: false },
        Err(e) if !reached_tool(e) => return idempotency::release(state.store(), reservation).await,
        Err(e) => {
            StoredReply { status: e.status().as_u16(), body: e.problem_body(correlation_id), problem: true }
        }
    };
    let limit = state.config().idempotency.max_reply_bytes;
    let too_large = || {
        let error =
            ApiError::IdempotencyReplyTooLarge { limit, first_correlation_id: correlation_id.to_string() };
        StoredReply {
            status: error.status().as_u16(),
            body: error.problem_body(correlation_id),
            problem: true,
        }
    };
    if let Err(e) = idempotency::finish(state.store(), reservation, stored, limit, too_large).await {
        tracing::error!(error = %e, "could not store an idempotent outcome; retries see 409 until it expires");
    }
}

/// Whether an error from the gate/execute steps happened after the tool
/// started (so it must be replayed, never re-executed).
fn reached_tool(error: &ApiError) -> bool {
    !(execute::never_ran(error)
        || matches!(
            error,
            ApiError::InvalidActionToken(_)
                | ApiError::ActionTokenExpired
                | ApiError::ActionTokenUsed
                | ApiError::StateUnavailable
        ))
}

/// Authentication: the bearer token becomes a principal.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<Principal>, ApiError> {
    // Two credentials are ambiguous; proxies may disagree on which one counts.
    if headers.get_all(AUTHORIZATION).iter().nth(1).is_some() {
        return Err(ApiError::Unauthenticated("more than one Authorization header".into()));
    }
    state
        .auth()
        .authenticate(headers.get(AUTHORIZATION))
        .await
        .map_err(|e| ApiError::Unauthenticated(e.to_string()))
}

/// The caller must hold `scope`.
pub fn require_scope(principal: &Principal, scope: &str) -> Result<(), ApiError> {
    if principal.has_scope(scope) { Ok(()) } else { Err(ApiError::InsufficientScope(scope.to_owned())) }
}

/// Remove and return the confirm body's `action_token`.
fn take_action_token(args: &mut Map<String, Value>) -> Result<String, ApiError> {
    match args.remove(ACTION_TOKEN_FIELD) {
        Some(Value::String(token)) => Ok(token),
        Some(_) => Err(ApiError::BadRequest(format!("`{ACTION_TOKEN_FIELD}` must be a string"))),
        None => Err(ApiError::BadRequest(format!("`{ACTION_TOKEN_FIELD}` is required to confirm"))),
    }
}

/// SHA-256 of the canonical arguments: keys sorted (serde_json's default
/// `Map`), no whitespace, and numbers with an integral value written as
/// integers (`1200.0` and `1200` are the same argument, as in RFC 8785).
pub fn args_digest(args: &Map<String, Value>) -> String {
    let canonical: Map<String, Value> = args.iter().map(|(k, v)| (k.clone(), canonical_numbers(v))).collect();
    let canonical = serde_json::to_vec(&canonical).expect("a JSON map always serialises");
    hex::encode(Sha256::digest(&canonical))
}

/// Integral floats (within the exactly representable range) as integers.
fn canonical_numbers(value: &Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < EXACT => Value::from(f as i64),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(canonical_numbers).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), canonical_numbers(v))).collect())
        }
        other => other.clone(),
    }
}

fn request_fingerprint(args_sha256: &str, action_token: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(args_sha256.as_bytes());
    hasher.update([0]);
    hasher.update(action_token.unwrap_or("").as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::args_digest;
    use serde_json::{Map, Value};

    fn digest(text: &str) -> String {
        args_digest(&serde_json::from_str::<Map<String, Value>>(text).unwrap())
    }

    #[test]
    fn the_digest_ignores_key_order_whitespace_and_integral_float_spelling() {
        let base = digest(r#"{"name":"X","budget":1200,"nested":{"b":[1,2.0],"a":null}}"#);
        assert_eq!(
            base,
            digest(r#"{ "nested": {"a": null, "b": [1.0, 2]}, "budget": 1200.0, "name": "X" }"#)
        );
        assert_ne!(base, digest(r#"{"name":"X","budget":1200.5,"nested":{"b":[1,2],"a":null}}"#));
        assert_ne!(base, digest(r#"{"name":"X","budget":"1200","nested":{"b":[1,2],"a":null}}"#));
    }
}
