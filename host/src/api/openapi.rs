//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers
//! and response types.

use super::{catalog, health, invoke};
use crate::error::{FieldError, ProblemBody};
use axum::Json;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    info(
        title = "FastMCP",
        description = "A host for agent tools running as sandboxed WebAssembly components."
    ),
    paths(health::health, health::metrics, catalog::catalog, invoke::invoke, invoke::confirm, invoke::decline),
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

/// Serve the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
