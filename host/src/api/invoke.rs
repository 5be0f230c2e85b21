//! `POST /tools/{id}/invoke`.

use crate::correlation::CorrelationId;
use crate::error::{Problem, ProblemBody};
use crate::pipeline;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Request, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A completed call.
#[derive(Serialize, ToSchema)]
pub struct InvokeResponse {
    /// Always `completed`.
    pub status: &'static str,
    /// The tool id.
    pub tool: String,
    /// The tool's result.
    #[schema(value_type = Object)]
    pub result: Value,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// Run a tool.
#[utoipa::path(
    post, path = "/tools/{id}/invoke", tag = "tools",
    params(("id" = String, Path, description = "Tool id, `plugin:name`")),
    security(("bearer" = [])),
    request_body(content = Object, description = "The tool's arguments (a JSON object)", content_type = "application/json"),
    responses(
        (status = 200, description = "The tool ran", body = InvokeResponse),
        (status = 400, description = "`bad_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, `policy_denied` or `tool_denied`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`tool_not_found`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_arguments`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "`tool_failed` or `upstream_error`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 504, description = "`tool_timeout`", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn invoke(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<InvokeResponse>, Problem> {
    let completed =
        pipeline::invoke(&state, &correlation_id, &id, request).await.map_err(|e| e.at(&correlation_id))?;
    Ok(Json(InvokeResponse {
        status: "completed",
        tool: completed.tool,
        result: completed.result,
        correlation_id: correlation_id.to_string(),
    }))
}
