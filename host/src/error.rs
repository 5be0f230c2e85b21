//! The error contract: every failure a client can see, mapped in one
//! exhaustive `match` to an HTTP status and a stable `code`, rendered as
//! RFC 9457 problem details (`application/problem+json`).
//!
//! Internal causes are logged where they happen; the body says what the client
//! can act on and nothing about the host's internals.

use crate::correlation::CorrelationId;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// One JSON Schema violation: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON Pointer into the arguments (`""` for the whole object).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// Every error a client can receive.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not a JSON object.
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token lacks a scope.
    #[error("the token lacks the scope `{0}`")]
    InsufficientScope(String),
    /// The policy refuses the call.
    #[error("denied by policy rule `{rule}`: {reason}")]
    PolicyDenied {
        /// The deciding rule (`rbac` when no role grants the tool).
        rule: String,
        /// Why.
        reason: String,
    },
    /// The action token is malformed, badly signed, or bound to another
    /// tool, principal or arguments.
    #[error("{0}")]
    InvalidActionToken(String),
    /// The action token is past its expiry.
    #[error("the action token expired; invoke the tool again for a new one")]
    ActionTokenExpired,
    /// The action token was already used.
    #[error("the action token was already used")]
    ActionTokenUsed,
    /// The same Idempotency-Key is still being processed.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
    /// The same Idempotency-Key came with a different request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// The shared rate limiter (Redis) cannot answer; the host fails closed.
    #[error("the rate limiter is unavailable; retry shortly")]
    RateLimitUnavailable,
    /// The audit trail cannot record the call, so the call does not count.
    #[error("the audit trail is unavailable; the call was not acknowledged")]
    AuditUnavailable,
    /// The state store (confirmations, idempotency) cannot be reached.
    #[error("the state store is unavailable; retry shortly")]
    StateUnavailable,
    /// No tool with this id in the current registry.
    #[error("no tool `{0}`")]
    ToolNotFound(String),
    /// No such route.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The method is not allowed on this route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not `application/json`.
    #[error("expected `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// The arguments do not match the tool's input schema (or the plugin
    /// reported them unusable).
    #[error("the arguments do not match the tool's input schema")]
    InvalidArguments(Vec<FieldError>),
    /// The plugin refused the call.
    #[error("the tool refused the call: {0}")]
    ToolDenied(String),
    /// The plugin trapped, ran out of memory, or reported an internal error.
    #[error("{0}")]
    ToolFailed(String),
    /// The plugin reported an upstream failure.
    #[error("{0}")]
    Upstream(String),
    /// The caller is over the tool's quota.
    #[error("rate limit exceeded; retry after {retry_after_s} s")]
    RateLimited {
        /// Seconds until a call would be allowed.
        retry_after_s: u64,
        /// `RateLimit-Policy` header value.
        policy: String,
        /// `RateLimit` header value.
        state: String,
    },
    /// No free call slot within the queue timeout.
    #[error("the host is at its concurrency limit; retry shortly")]
    Overloaded,
    /// The plugin exceeded its deadline.
    #[error("the tool did not finish within {timeout_ms} ms")]
    ToolTimeout {
        /// The deadline that was exceeded.
        timeout_ms: u64,
    },
    /// The request body did not arrive in full within the body-read timeout.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The response was not ready within the request timeout. A call that
    /// had started still finishes and is audited.
    #[error("no response within {timeout_ms} ms; a call that started still finishes and is audited")]
    RequestTimeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The caller holds as many live Idempotency-Keys as allowed.
    #[error("this caller already holds {limit} live Idempotency-Keys")]
    IdempotencyQuotaExceeded {
        /// The per-caller limit.
        limit: u64,
    },
    /// The first request under this Idempotency-Key ran, but its reply was
    /// too large to keep for replay.
    #[error(
        "the request under this Idempotency-Key already ran (correlation id {first_correlation_id}); its reply was larger than the {limit}-byte replay limit and was not kept"
    )]
    IdempotencyReplyTooLarge {
        /// The replay limit.
        limit: usize,
        /// The correlation id of the request that ran.
        first_correlation_id: String,
    },
    /// A host fault; details are in the log only.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// Status, stable code and title for each error.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", "Bad request"),
            Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated"),
            InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope", "Insufficient scope"),
            PolicyDenied { .. } => (StatusCode::FORBIDDEN, "policy_denied", "Denied by policy"),
            InvalidActionToken(_) => (StatusCode::FORBIDDEN, "invalid_action_token", "Invalid action token"),
            ActionTokenExpired => (StatusCode::GONE, "action_token_expired", "Action token expired"),
            ActionTokenUsed => (StatusCode::CONFLICT, "action_token_used", "Action token used"),
            IdempotencyInProgress => (StatusCode::CONFLICT, "idempotency_in_progress", "Request in progress"),
            IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Idempotency key reused")
            }
            StateUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "state_unavailable", "State unavailable"),
            AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable", "Audit unavailable"),
            RateLimitUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "rate_limit_unavailable", "Rate limiter unavailable")
            }
            ToolNotFound(_) => (StatusCode::NOT_FOUND, "tool_not_found", "Tool not found"),
            RouteNotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large")
            }
            UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            InvalidArguments(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_arguments", "Invalid arguments")
            }
            ToolDenied(_) => (StatusCode::FORBIDDEN, "tool_denied", "Tool denied the call"),
            ToolFailed(_) => (StatusCode::BAD_GATEWAY, "tool_failed", "Tool failed"),
            Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_error", "Upstream error"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Rate limited"),
            Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded"),
            ToolTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "tool_timeout", "Tool timed out"),
            BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "body_timeout", "Body timeout"),
            RequestTimeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "request_timeout", "Request timeout"),
            IdempotencyQuotaExceeded { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "idempotency_quota_exceeded", "Idempotency quota exceeded")
            }
            IdempotencyReplyTooLarge { .. } => {
                (StatusCode::CONFLICT, "idempotency_reply_too_large", "Reply not kept for replay")
            }
            Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// Attach the request's correlation id, producing a response-ready problem.
    pub fn at(self, correlation_id: &CorrelationId) -> Problem {
        Problem { error: self, correlation_id: correlation_id.clone() }
    }
}

/// An [`ApiError`] bound to its request: renders as problem+json.
#[derive(Debug)]
pub struct Problem {
    /// What went wrong.
    pub error: ApiError,
    /// The request it belongs to.
    pub correlation_id: CorrelationId,
}

/// The problem+json body, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// A URI naming the problem type (`urn:fastmcp:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human-readable summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// The request's correlation id.
    pub correlation_id: String,
    /// The deciding rule (for `policy_denied`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The rule's reason (for `policy_denied`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The missing scope (for `insufficient_scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Schema violations (for `invalid_arguments`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    /// The problem+json body this error renders to for a request.
    pub fn problem_body(&self, correlation_id: &CorrelationId) -> Value {
        render(self, correlation_id).1
    }
}

type ExtraHeaders = Vec<(header::HeaderName, HeaderValue)>;

fn render(error: &ApiError, correlation_id: &CorrelationId) -> (StatusCode, Value, ExtraHeaders) {
    let (status, code, title) = error.parts();
    let mut body = Map::new();
    body.insert("type".into(), json!(format!("urn:fastmcp:problem:{code}")));
    body.insert("title".into(), json!(title));
    body.insert("status".into(), json!(status.as_u16()));
    body.insert("detail".into(), json!(error.to_string()));
    body.insert("code".into(), json!(code));
    body.insert("correlation_id".into(), json!(correlation_id.as_str()));
    let mut extra_headers = Vec::new();
    match error {
        ApiError::InvalidArguments(errors) => {
            body.insert("errors".into(), json!(errors));
        }
        ApiError::PolicyDenied { rule, reason } => {
            body.insert("rule".into(), json!(rule));
            body.insert("reason".into(), json!(reason));
        }
        ApiError::InsufficientScope(scope) => {
            body.insert("scope".into(), json!(scope));
            let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                extra_headers.push((header::WWW_AUTHENTICATE, value));
            }
        }
        ApiError::Unauthenticated(_) => extra_headers
            .push((header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#))),
        ApiError::RateLimited { retry_after_s, policy, state } => {
            body.insert("retry_after_s".into(), json!(retry_after_s));
            for (name, value) in [
                (header::RETRY_AFTER.as_str(), retry_after_s.to_string()),
                ("ratelimit-policy", policy.clone()),
                ("ratelimit", state.clone()),
            ] {
                if let (Ok(name), Ok(value)) =
                    (header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
                {
                    extra_headers.push((name, value));
                }
            }
        }
        ApiError::Overloaded
        | ApiError::StateUnavailable
        | ApiError::AuditUnavailable
        | ApiError::RateLimitUnavailable
        | ApiError::RequestTimeout { .. } => {
            extra_headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        _ => {}
    }
    (status, Value::Object(body), extra_headers)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, body, extra_headers) = render(&self.error, &self.correlation_id);
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        for (name, value) in extra_headers {
            headers.insert(name, value);
        }
        response
    }
}
