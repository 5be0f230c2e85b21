//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers
//! and response types; each route's problem responses are generated from
//! [`ApiError::class`] (status and code), for the errors [`problems_of`]
//! says the route may answer.

use super::{approvals, catalog, connections, health, invoke};
use crate::error::{ApiError, FieldError, MCP_ONLY_CODES, ProblemBody, every_variant};
use axum::Json;
use std::collections::BTreeMap;
use utoipa::OpenApi;
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    modifiers(&BearerAuth, &ProblemResponses),
    info(
        title = "FastMCP",
        description = "A host for agent tools running as sandboxed WebAssembly components."
    ),
    paths(
        health::health, health::metrics, catalog::catalog, invoke::invoke, invoke::confirm, invoke::decline,
        approvals::call_status, approvals::withdraw, approvals::inbox, approvals::view, approvals::approve,
        approvals::deny, connections::start, connections::list, connections::forget,
    ),
    components(schemas(
        ProblemBody,
        FieldError,
        catalog::CatalogResponse,
        catalog::CatalogEntry,
        catalog::Annotations,
        health::HealthResponse,
        health::PublicHealth,
        health::RegistryHealth,
        health::RuntimeHealth,
        crate::pipeline::CompletedBody, crate::pipeline::PendingBody,
        crate::approvals::views::AwaitingApprovalBody, crate::approvals::views::RequiredApproval,
        crate::approvals::views::CallStatusBody, crate::approvals::views::DecisionView,
        crate::approvals::views::ApprovalView, crate::approvals::views::ApprovalList,
        crate::approvals::views::DecisionBody, crate::approvals::ledger::Who,
        crate::policy::approvals::Approvers,
        crate::connections::flow::Started, crate::connections::ConnectionList,
        crate::connections::ConnectionView, crate::connections::Forgotten,
    ))
)]
pub struct ApiDoc;

/// Declares the `bearer` (JWT) security scheme the paths refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The errors a route may answer (besides the router's own `not_found` and
/// `method_not_allowed`, which any route may).
fn problems_of(path: &str) -> Vec<ApiError> {
    let tool_call = || every_variant().into_iter().filter(|e| !MCP_ONLY_CODES.contains(&e.code())).collect();
    match path {
        "/tools/{id}/invoke" | "/tools/{id}/confirm" | "/tools/{id}/decline" => tool_call(),
        "/calls/{id}"
        | "/calls/{id}/withdraw"
        | "/approvals"
        | "/approvals/{id}"
        | "/approvals/{id}/approve"
        | "/approvals/{id}/deny" => approval_route(path),
        "/connections" | "/connections/{provider}" => vec![
            ApiError::Unauthenticated(String::new()),
            ApiError::InsufficientScope(String::new()),
            ApiError::ProviderNotFound(String::new()),
            ApiError::ConnectionNotFound(String::new()),
            ApiError::ConnectionQuotaExceeded { limit: 0 },
            ApiError::StateUnavailable,
            ApiError::RequestTimeout { timeout_ms: 0 },
            ApiError::Internal,
        ],
        "/tool-catalog" | "/health" => vec![
            ApiError::Unauthenticated(String::new()),
            ApiError::InsufficientScope(String::new()),
            ApiError::RequestTimeout { timeout_ms: 0 },
            ApiError::Internal,
        ],
        _ => Vec::new(),
    }
}

/// The errors of an approval route.
fn approval_route(path: &str) -> Vec<ApiError> {
    let mut errors = vec![
        ApiError::Unauthenticated(String::new()),
        ApiError::InsufficientScope(String::new()),
        ApiError::BadRequest(String::new()),
        ApiError::StateUnavailable,
        ApiError::RequestTimeout { timeout_ms: 0 },
        ApiError::Internal,
    ];
    if path.starts_with("/calls") {
        errors.push(ApiError::CallNotFound(String::new()));
    } else if path != "/approvals" {
        errors.push(ApiError::ApprovalNotFound(String::new()));
    }
    if path.ends_with("/withdraw") || path.ends_with("/approve") || path.ends_with("/deny") {
        errors.extend([ApiError::ApprovalClosed(String::new()), ApiError::AuditUnavailable]);
    }
    if path.ends_with("/approve") || path.ends_with("/deny") {
        errors.extend([
            ApiError::SelfApproval,
            ApiError::AlreadyDecided,
            ApiError::PayloadTooLarge { limit: 0 },
            ApiError::UnsupportedMediaType,
            ApiError::BodyTimeout { timeout_ms: 0 },
        ]);
    }
    errors
}

/// Adds each route's problem responses, one per status, naming its codes.
struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
            for error in problems_of(path) {
                let codes = by_status.entry(error.status().as_u16()).or_default();
                if !codes.contains(&error.code()) {
                    codes.push(error.code());
                }
            }
            let operations = [&mut item.get, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                for (status, codes) in &by_status {
                    let description = codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
                    let content =
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ProblemBody"))).build();
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content("application/problem+json", content)
                        .build();
                    operation.responses.responses.insert(status.to_string(), response.into());
                }
            }
        }
    }
}

/// Serve the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
