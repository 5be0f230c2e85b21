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
    /// The call needs a human confirmation that this host cannot collect yet.
    #[error("this call requires human confirmation (rule `{0}`), which this host cannot collect yet")]
    ConfirmationUnavailable(String),
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
    /// No free call slot within the queue timeout.
    #[error("the host is at its concurrency limit; retry shortly")]
    Overloaded,
    /// The plugin exceeded its deadline.
    #[error("the tool did not finish within {timeout_ms} ms")]
    ToolTimeout {
        /// The deadline that was exceeded.
        timeout_ms: u64,
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
            ConfirmationUnavailable(_) => {
                (StatusCode::FORBIDDEN, "confirmation_unavailable", "Confirmation unavailable")
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
            Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded"),
            ToolTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "tool_timeout", "Tool timed out"),
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

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, code, title) = self.error.parts();
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("urn:fastmcp:problem:{code}")));
        body.insert("title".into(), json!(title));
        body.insert("status".into(), json!(status.as_u16()));
        body.insert("detail".into(), json!(self.error.to_string()));
        body.insert("code".into(), json!(code));
        body.insert("correlation_id".into(), json!(self.correlation_id.as_str()));
        let mut extra_headers = Vec::new();
        match &self.error {
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
            ApiError::Unauthenticated(_) => extra_headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            )),
            ApiError::Overloaded => {
                extra_headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        let mut response = (status, axum::Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        for (name, value) in extra_headers {
            headers.insert(name, value);
        }
        response
    }
}
