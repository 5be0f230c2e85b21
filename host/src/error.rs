//! The error contract: every failure a client can see, classified in one
//! exhaustive `match` ([`ApiError::class`]) — HTTP status, stable `code`,
//! title, audit event, and whether the tool had started — and rendered as
//! RFC 9457 problem details ([`ProblemBody`], `application/problem+json`).
//!
//! Internal causes are logged where they happen; the body says what the client
//! can act on and nothing about the host's internals.

use crate::correlation::CorrelationId;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One JSON Schema violation: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON Pointer into the arguments (`""` for the whole object).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// Every error a client can receive. [`ApiError::iter`] (strum) lists one of
/// each variant, so the OpenAPI document and the contract tests cannot miss
/// a new one.
#[derive(Debug, thiserror::Error, strum::EnumIter)]
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
    /// The arguments do not match the tool's input schema.
    #[error("the arguments do not match the tool's input schema")]
    InvalidArguments(Vec<FieldError>),
    /// The plugin reported the arguments unusable (after it started).
    #[error("the tool found the arguments unusable: {0}")]
    ToolRejectedInput(String),
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
    /// The caller holds as much of a shared resource (sessions, streams,
    /// connections, sandbox slots) as one caller may ([`crate::share`]).
    #[error("this caller already holds {limit} {resource}, the most one caller may; release some and retry")]
    ShareExceeded {
        /// The resource (`sessions`, `streams`, `connections`, `calls`, ...).
        resource: &'static str,
        /// The per-caller cap.
        limit: usize,
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
    /// The human declined (or cancelled) a call at the confirmation gate;
    /// the action token is spent and the tool did not run.
    #[error("the call was {reason} at the confirmation gate; the tool did not run")]
    ConfirmationDeclined {
        /// Declined or cancelled.
        reason: crate::confirm::DeclineReason,
        /// The spent action token's id.
        action_id: String,
    },
    /// The requester (or the host as a whole) has as many calls awaiting
    /// approval as allowed.
    #[error("{whose} already has {limit} calls awaiting approval, the most allowed")]
    ApprovalQuotaExceeded {
        /// The limit.
        limit: u64,
        /// `this caller` or `the host`.
        whose: &'static str,
    },
    /// No call with this id that the caller requested (`/calls/{id}`).
    #[error("no call `{0}` of this caller")]
    CallNotFound(String),
    /// No call with this id that the caller may see as an approver.
    #[error("no approval `{0}` this caller may see")]
    ApprovalNotFound(String),
    /// A requester tried to approve or deny their own call.
    #[error("the requester of a call cannot decide it")]
    SelfApproval,
    /// The call is no longer awaiting approval.
    #[error("the call is {0}, no longer awaiting approval")]
    ApprovalClosed(String),
    /// This approver already decided this call; a decision counts once.
    #[error("this approver already decided this call")]
    AlreadyDecided,
    /// A credential the call needed could not be had (the provider's token
    /// endpoint refused or is down, or the call carries no token of the
    /// caller's to exchange); the tool could not reach its upstream.
    #[error("no credential from provider `{0}` for this call; the upstream was not reached with it")]
    CredentialUnavailable(String),
    /// The tool acts with the caller's own account at a provider, and the
    /// caller has not connected it (or the provider ended the connection).
    #[error(
        "this tool acts with your own account at `{provider}`: connect it first (POST /connections/{provider}, then open the authorization URL)"
    )]
    ConnectionRequired {
        /// The provider.
        provider: String,
        /// A connect flow started for the caller: open it in a browser.
        authorization_url: Option<String>,
    },
    /// No connection of the caller's to this provider.
    #[error("you have no connection to `{0}`")]
    ConnectionNotFound(String),
    /// No provider of this name that users connect accounts to.
    #[error("no provider `{0}` to connect an account to")]
    ProviderNotFound(String),
    /// The caller has as many connect flows pending as allowed.
    #[error("you already have {limit} connect flows pending, the most allowed; finish or wait out one")]
    ConnectionQuotaExceeded {
        /// The limit.
        limit: u64,
    },
    /// The client gave up while the tool ran (MCP: it closed the request's
    /// stream); the sandbox was torn down. Never on REST.
    #[error("the client closed the request while the tool ran; the tool was stopped")]
    Cancelled,
    /// A host fault; details are in the log only.
    #[error("internal error")]
    Internal,
}

/// Codes only MCP can produce (REST runs every started call to its end); the
/// OpenAPI document of the REST API does not name them.
pub const MCP_ONLY_CODES: &[&str] = &["cancelled"];

/// 499 Client Closed Request (the status proxies record for a client that
/// went away; no HTTP client ever reads it).
const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => panic!("499 is a valid status"),
};

/// The audit event an error is recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// `tools.denied`: the caller or the request was refused.
    Denied,
    /// `tools.rate_limited`: over a quota.
    RateLimited,
    /// `tools.failed`: the tool or the host could not complete the call.
    Failed,
}

impl AuditKind {
    /// The event name.
    pub fn event(self) -> &'static str {
        match self {
            AuditKind::Denied => "tools.denied",
            AuditKind::RateLimited => "tools.rate_limited",
            AuditKind::Failed => "tools.failed",
        }
    }
}

/// Everything the contract says about one error: status, stable code,
/// title, audit event, and whether the tool had started (so an
/// Idempotency-Key replays the outcome and never runs the call again).
#[derive(Debug, Clone, Copy)]
pub struct Class {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The problem title.
    pub title: &'static str,
    /// Where the audit trail files it.
    pub audit: AuditKind,
    /// The tool had started.
    pub tool_ran: bool,
}

impl ApiError {
    /// The one classification of every error (no catch-all: a new variant
    /// does not compile until it is classified here).
    pub fn class(&self) -> Class {
        use ApiError::*;
        use AuditKind::{Denied, Failed, RateLimited as Limited};
        let c = |status, code, title, audit, tool_ran| Class { status, code, title, audit, tool_ran };
        match self {
            BadRequest(_) => c(StatusCode::BAD_REQUEST, "bad_request", "Bad request", Denied, false),
            Unauthenticated(_) => {
                c(StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated", Denied, false)
            }
            InsufficientScope(_) => {
                c(StatusCode::FORBIDDEN, "insufficient_scope", "Insufficient scope", Denied, false)
            }
            PolicyDenied { .. } => {
                c(StatusCode::FORBIDDEN, "policy_denied", "Denied by policy", Denied, false)
            }
            InvalidActionToken(_) => {
                c(StatusCode::FORBIDDEN, "invalid_action_token", "Invalid action token", Denied, false)
            }
            ActionTokenExpired => {
                c(StatusCode::GONE, "action_token_expired", "Action token expired", Denied, false)
            }
            ActionTokenUsed => {
                c(StatusCode::CONFLICT, "action_token_used", "Action token used", Denied, false)
            }
            IdempotencyInProgress => {
                c(StatusCode::CONFLICT, "idempotency_in_progress", "Request in progress", Denied, false)
            }
            IdempotencyKeyReused => c(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                Denied,
                false,
            ),
            StateUnavailable => {
                c(StatusCode::SERVICE_UNAVAILABLE, "state_unavailable", "State unavailable", Failed, false)
            }
            AuditUnavailable => {
                c(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable", "Audit unavailable", Failed, false)
            }
            RateLimitUnavailable => c(
                StatusCode::SERVICE_UNAVAILABLE,
                "rate_limit_unavailable",
                "Rate limiter unavailable",
                Failed,
                false,
            ),
            ToolNotFound(_) => c(StatusCode::NOT_FOUND, "tool_not_found", "Tool not found", Denied, false),
            RouteNotFound(_) => c(StatusCode::NOT_FOUND, "not_found", "Not found", Denied, false),
            MethodNotAllowed => {
                c(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed", Denied, false)
            }
            PayloadTooLarge { .. } => {
                c(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", Denied, false)
            }
            UnsupportedMediaType => c(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                Denied,
                false,
            ),
            InvalidArguments(_) => {
                c(StatusCode::UNPROCESSABLE_ENTITY, "invalid_arguments", "Invalid arguments", Denied, false)
            }
            ToolRejectedInput(_) => {
                c(StatusCode::UNPROCESSABLE_ENTITY, "invalid_arguments", "Invalid arguments", Denied, true)
            }
            ToolDenied(_) => c(StatusCode::FORBIDDEN, "tool_denied", "Tool denied the call", Denied, true),
            ToolFailed(_) => c(StatusCode::BAD_GATEWAY, "tool_failed", "Tool failed", Failed, true),
            Upstream(_) => c(StatusCode::BAD_GATEWAY, "upstream_error", "Upstream error", Failed, true),
            RateLimited { .. } => {
                c(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Rate limited", Limited, false)
            }
            Overloaded => c(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded", Failed, false),
            ToolTimeout { .. } => {
                c(StatusCode::GATEWAY_TIMEOUT, "tool_timeout", "Tool timed out", Failed, true)
            }
            BodyTimeout { .. } => {
                c(StatusCode::REQUEST_TIMEOUT, "body_timeout", "Body timeout", Denied, false)
            }
            RequestTimeout { .. } => {
                c(StatusCode::SERVICE_UNAVAILABLE, "request_timeout", "Request timeout", Failed, false)
            }
            ShareExceeded { .. } => {
                c(StatusCode::TOO_MANY_REQUESTS, "share_exceeded", "Share exceeded", Limited, false)
            }
            IdempotencyQuotaExceeded { .. } => c(
                StatusCode::TOO_MANY_REQUESTS,
                "idempotency_quota_exceeded",
                "Idempotency quota exceeded",
                Limited,
                false,
            ),
            IdempotencyReplyTooLarge { .. } => c(
                StatusCode::CONFLICT,
                "idempotency_reply_too_large",
                "Reply not kept for replay",
                Denied,
                true,
            ),
            ConfirmationDeclined { .. } => {
                c(StatusCode::CONFLICT, "confirmation_declined", "Confirmation declined", Denied, false)
            }
            ApprovalQuotaExceeded { .. } => c(
                StatusCode::TOO_MANY_REQUESTS,
                "approval_quota_exceeded",
                "Too many calls awaiting approval",
                Limited,
                false,
            ),
            CallNotFound(_) => c(StatusCode::NOT_FOUND, "call_not_found", "Call not found", Denied, false),
            ApprovalNotFound(_) => {
                c(StatusCode::NOT_FOUND, "approval_not_found", "Approval not found", Denied, false)
            }
            SelfApproval => {
                c(StatusCode::FORBIDDEN, "self_approval", "Requester cannot decide", Denied, false)
            }
            ApprovalClosed(_) => {
                c(StatusCode::CONFLICT, "approval_closed", "No longer awaiting approval", Denied, false)
            }
            AlreadyDecided => c(StatusCode::CONFLICT, "already_decided", "Already decided", Denied, false),
            CredentialUnavailable(_) => {
                c(StatusCode::BAD_GATEWAY, "credential_unavailable", "Credential unavailable", Failed, true)
            }
            ConnectionRequired { .. } => {
                c(StatusCode::FORBIDDEN, "connection_required", "Connection required", Denied, false)
            }
            ConnectionNotFound(_) => {
                c(StatusCode::NOT_FOUND, "connection_not_found", "Connection not found", Denied, false)
            }
            ProviderNotFound(_) => {
                c(StatusCode::NOT_FOUND, "provider_not_found", "Provider not found", Denied, false)
            }
            ConnectionQuotaExceeded { .. } => c(
                StatusCode::TOO_MANY_REQUESTS,
                "connection_quota_exceeded",
                "Too many connect flows pending",
                Limited,
                false,
            ),
            Cancelled => c(CLIENT_CLOSED_REQUEST, "cancelled", "Cancelled by the client", Failed, true),
            Internal => c(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", Failed, false),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        let class = self.class();
        (class.status, class.code, class.title)
    }

    /// Seconds after which a retry may succeed: the bucket's wait when rate
    /// limited, one second when the host or a dependency is momentarily
    /// unable (REST sends it as `Retry-After`, MCP in `_meta`).
    pub fn retry_after_s(&self) -> Option<u64> {
        use ApiError::*;
        match self {
            RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            Overloaded
            | ShareExceeded { .. }
            | StateUnavailable
            | AuditUnavailable
            | RateLimitUnavailable
            | RequestTimeout { .. } => Some(1),
            _ => None,
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

/// The problem+json body: what every error renders to, and what the OpenAPI
/// document describes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The rule's reason (for `policy_denied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The missing scope (for `insufficient_scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Schema violations (for `invalid_arguments`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Seconds until a retry may succeed (for `rate_limited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// The provider (for `connection_required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Where the caller connects their account (for `connection_required`):
    /// the provider's consent page, for a flow started for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
}

impl ApiError {
    /// The problem+json body this error renders to for a request.
    pub fn problem_body(&self, correlation_id: &CorrelationId) -> ProblemBody {
        render(self, correlation_id).0
    }
}

type ExtraHeaders = Vec<(header::HeaderName, HeaderValue)>;

/// The body and the extra headers of an error's response.
fn render(error: &ApiError, correlation_id: &CorrelationId) -> (ProblemBody, ExtraHeaders) {
    let Class { status, code, title, .. } = error.class();
    let mut body = ProblemBody {
        kind: format!("urn:fastmcp:problem:{code}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: error.to_string(),
        code: code.to_owned(),
        correlation_id: correlation_id.as_str().to_owned(),
        rule: None,
        reason: None,
        scope: None,
        errors: None,
        retry_after_s: None,
        provider: None,
        authorization_url: None,
    };
    let mut extra_headers = Vec::new();
    use ApiError::*;
    match error {
        InvalidArguments(errors) => body.errors = Some(errors.clone()),
        ToolRejectedInput(message) => {
            body.errors = Some(vec![FieldError { path: String::new(), message: message.clone() }]);
        }
        PolicyDenied { rule, reason } => {
            body.rule = Some(rule.clone());
            body.reason = Some(reason.clone());
        }
        ConnectionRequired { provider, authorization_url } => {
            body.provider = Some(provider.clone());
            body.authorization_url = authorization_url.clone();
        }
        InsufficientScope(scope) => {
            body.scope = Some(scope.clone());
            let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                extra_headers.push((header::WWW_AUTHENTICATE, value));
            }
        }
        Unauthenticated(_) => extra_headers
            .push((header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#))),
        RateLimited { retry_after_s, policy, state } => {
            body.retry_after_s = Some(*retry_after_s);
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
        Overloaded
        | ShareExceeded { .. }
        | StateUnavailable
        | AuditUnavailable
        | RateLimitUnavailable
        | RequestTimeout { .. } => {
            extra_headers.push((header::RETRY_AFTER, HeaderValue::from(error.retry_after_s().unwrap_or(1))))
        }
        BadRequest(_)
        | InvalidActionToken(_)
        | ActionTokenExpired
        | ActionTokenUsed
        | IdempotencyInProgress
        | IdempotencyKeyReused
        | ToolNotFound(_)
        | RouteNotFound(_)
        | MethodNotAllowed
        | PayloadTooLarge { .. }
        | UnsupportedMediaType
        | ToolDenied(_)
        | ToolFailed(_)
        | Upstream(_)
        | ToolTimeout { .. }
        | BodyTimeout { .. }
        | IdempotencyQuotaExceeded { .. }
        | IdempotencyReplyTooLarge { .. }
        | ConfirmationDeclined { .. }
        | ApprovalQuotaExceeded { .. }
        | CallNotFound(_)
        | ApprovalNotFound(_)
        | SelfApproval
        | ApprovalClosed(_)
        | AlreadyDecided
        | CredentialUnavailable(_)
        | ConnectionNotFound(_)
        | ProviderNotFound(_)
        | ConnectionQuotaExceeded { .. }
        | Cancelled
        | Internal => {}
    }
    (body, extra_headers)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let (body, extra_headers) = render(&self.error, &self.correlation_id);
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        for (name, value) in extra_headers {
            headers.insert(name, value);
        }
        response
    }
}

/// One error of every variant (fields at their defaults).
pub fn every_variant() -> Vec<ApiError> {
    use strum::IntoEnumIterator as _;
    ApiError::iter().collect()
}

#[cfg(test)]
/// Every stable code, once each, in the order of [`every_variant`].
pub fn every_code() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = Vec::new();
    for error in every_variant() {
        if !codes.contains(&error.code()) {
            codes.push(error.code());
        }
    }
    codes
}
