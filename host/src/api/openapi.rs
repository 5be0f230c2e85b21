//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers
//! and response types.

use super::{catalog, health, invoke};
use crate::error::{FieldError, ProblemBody};
use axum::Json;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FastMCP",
        description = "A host for agent tools running as sandboxed WebAssembly components."
    ),
    paths(health::health, health::metrics, catalog::catalog, invoke::invoke),
    components(schemas(
        ProblemBody,
        FieldError,
        catalog::CatalogResponse,
        catalog::CatalogEntry,
        catalog::Annotations,
        health::HealthResponse,
        health::RegistryHealth,
        health::RuntimeHealth,
        invoke::InvokeResponse,
    ))
)]
pub struct ApiDoc;

/// Serve the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
