//! A call's outcome as an MCP `tools/call` result. The JSON result of a tool
//! is `structuredContent` plus the same JSON as a text block; every refusal
//! or failure is an `isError` result whose text names the stable `code` (and,
//! for invalid arguments, each failing argument and why, so that a model can
//! correct its call) and whose `_meta["io.fastmcp/problem"]` carries the
//! problem details REST would answer — except an unknown tool, which MCP
//! makes a protocol error.

use crate::correlation::CorrelationId;
use crate::error::{ApiError, ProblemBody};
use crate::pipeline::{AwaitingApprovalBody, CompletedBody, PendingBody, Reply, ReplyBody, StoredOutcome};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, MetaObject};
use serde_json::{Value, json};

/// `_meta` key: the request's correlation id (as in the audit trail).
pub const CORRELATION_META_KEY: &str = "io.fastmcp/correlation-id";
/// `_meta` key: the problem details of an `isError` result.
pub const PROBLEM_META_KEY: &str = "io.fastmcp/problem";
/// `_meta` key: seconds after which a retry may succeed.
pub const RETRY_AFTER_META_KEY: &str = "io.fastmcp/retry-after-s";
/// `_meta` key: `true` on an idempotent replay.
pub const REPLAYED_META_KEY: &str = "io.fastmcp/replayed";

/// What a finished call answers over MCP: a result, a pending confirmation
/// (the gate's, handled by the caller), or a protocol error.
pub(super) enum Rendered {
    /// A `tools/call` result (success or `isError`).
    Result(CallToolResult),
    /// The call stopped at the confirmation gate.
    Pending(PendingBody),
    /// The call waits for approvers.
    AwaitingApproval(AwaitingApprovalBody),
}

/// Render a reply or an error.
pub(super) fn render(
    result: Result<Reply, ApiError>,
    correlation_id: &CorrelationId,
) -> Result<Rendered, McpError> {
    match result {
        Ok(Reply { body: ReplyBody::Completed(body), .. }) => Ok(Rendered::Result(completed(body, false))),
        Ok(Reply { body: ReplyBody::Pending(body), .. }) => Ok(Rendered::Pending(body)),
        Ok(Reply { body: ReplyBody::AwaitingApproval(body), .. }) => Ok(Rendered::AwaitingApproval(body)),
        Ok(Reply { body: ReplyBody::Replayed(stored), .. }) => Ok(match stored {
            StoredOutcome::Completed(body) => Rendered::Result(completed(body, true)),
            StoredOutcome::Pending(body) => Rendered::Pending(body),
            StoredOutcome::AwaitingApproval(body) => Rendered::AwaitingApproval(body),
            StoredOutcome::Problem(body) => Rendered::Result(problem(body, None)),
        }),
        Err(error @ ApiError::ToolNotFound(_)) => {
            Err(protocol_error(ErrorCode::INVALID_PARAMS, &error, correlation_id))
        }
        Err(error) => Ok(Rendered::Result(failure(&error, correlation_id))),
    }
}

/// A protocol error carrying the problem details of `error`.
pub(super) fn protocol_error(code: ErrorCode, error: &ApiError, correlation_id: &CorrelationId) -> McpError {
    let problem = serde_json::to_value(error.problem_body(correlation_id)).ok();
    McpError::new(code, format!("{}: {error}", error.code()), problem)
}

/// A completed call: the result as structured content and as text.
fn completed(body: CompletedBody, replayed: bool) -> CallToolResult {
    let text = serde_json::to_string(&body.result).expect("JSON values serialise");
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(body.result);
    let mut meta = MetaObject::new();
    meta.insert(CORRELATION_META_KEY.into(), Value::String(body.correlation_id));
    if replayed {
        meta.insert(REPLAYED_META_KEY.into(), Value::Bool(true));
    }
    result.meta = Some(meta);
    result
}

/// An error as an `isError` result.
pub(super) fn failure(error: &ApiError, correlation_id: &CorrelationId) -> CallToolResult {
    problem(error.problem_body(correlation_id), error.retry_after_s())
}

fn problem(body: ProblemBody, retry_after_s: Option<u64>) -> CallToolResult {
    let mut text = format!("{}: {}", body.code, body.detail);
    append_field_errors(&mut text, &body);
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    let mut meta = MetaObject::new();
    meta.insert(CORRELATION_META_KEY.into(), Value::String(body.correlation_id.clone()));
    if let Some(seconds) = retry_after_s.or(body.retry_after_s) {
        meta.insert(RETRY_AFTER_META_KEY.into(), json!(seconds));
    }
    meta.insert(PROBLEM_META_KEY.into(), serde_json::to_value(body).expect("problems serialise"));
    result.meta = Some(meta);
    result
}

/// Field errors named in an `isError` text at most.
const MAX_FIELD_ERRORS_IN_TEXT: usize = 10;
/// The longest a field error's line gets in the text.
const MAX_FIELD_ERROR_LINE: usize = 200;

/// Name each failing argument and why, as REST's body does, so that a model
/// can correct its call (MCP reports input errors as tool errors for this).
/// Only callers authorized for the tool get here: the arguments are
/// validated after authorization. Bounded in count and length.
fn append_field_errors(text: &mut String, body: &ProblemBody) {
    let Some(errors) = &body.errors else { return };
    for error in errors.iter().take(MAX_FIELD_ERRORS_IN_TEXT) {
        let at = if error.path.is_empty() { "(the arguments)" } else { error.path.as_str() };
        let line = format!("{at}: {}", error.message);
        text.push_str("\n- ");
        text.push_str(&crate::text::clip(&line, MAX_FIELD_ERROR_LINE));
    }
    if errors.len() > MAX_FIELD_ERRORS_IN_TEXT {
        text.push_str(&format!("\n- and {} more", errors.len() - MAX_FIELD_ERRORS_IN_TEXT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(result: &CallToolResult) -> &MetaObject {
        result.meta.as_ref().expect("results carry _meta")
    }

    #[test]
    fn refusals_name_the_code_and_say_when_to_retry() {
        let correlation_id = CorrelationId::generate();
        let limited = ApiError::RateLimited { retry_after_s: 7, policy: "p".into(), state: "s".into() };
        let result = failure(&limited, &correlation_id);
        assert_eq!(result.is_error, Some(true));
        assert_eq!(meta(&result).get(RETRY_AFTER_META_KEY), Some(&json!(7)));
        assert_eq!(meta(&result)[PROBLEM_META_KEY]["code"], "rate_limited");
        let text = serde_json::to_value(&result.content[0]).unwrap();
        assert!(text["text"].as_str().unwrap().starts_with("rate_limited: "), "{text}");

        let overloaded = failure(&ApiError::Overloaded, &correlation_id);
        assert_eq!(meta(&overloaded).get(RETRY_AFTER_META_KEY), Some(&json!(1)));
        let denied = failure(&ApiError::ToolDenied("no".into()), &correlation_id);
        assert_eq!(meta(&denied).get(RETRY_AFTER_META_KEY), None);
    }

    #[test]
    fn invalid_arguments_name_each_failing_argument_in_the_text() {
        let correlation_id = CorrelationId::generate();
        let field = |path: &str, message: &str| crate::error::FieldError {
            path: path.into(),
            message: message.into(),
        };
        let mut errors = vec![
            field("/budget", "\"x\" is not of type \"number\""),
            field("", "\"name\" is a required property"),
        ];
        errors.extend((0..12).map(|i| field(&format!("/n{i}"), &"m".repeat(500))));
        let result = failure(&ApiError::InvalidArguments(errors), &correlation_id);
        let text = serde_json::to_value(&result.content[0]).unwrap()["text"].as_str().unwrap().to_owned();
        assert!(text.starts_with("invalid_arguments: "), "{text}");
        assert!(text.contains("\n- /budget: \"x\" is not of type \"number\""), "{text}");
        assert!(text.contains("\n- (the arguments): \"name\" is a required property"), "{text}");
        assert!(text.ends_with("\n- and 4 more"), "{text}");
        assert!(text.len() < 3000, "bounded: {} bytes", text.len());
    }

    #[test]
    fn an_unknown_tool_is_a_protocol_error() {
        let correlation_id = CorrelationId::generate();
        let Err(error) = render(Err(ApiError::ToolNotFound("a:b".into())), &correlation_id) else {
            panic!("an unknown tool renders as a protocol error");
        };
        assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(error.data.unwrap()["code"], "tool_not_found");
    }
}
