//! The REST API (DESIGN §3): routes, the JSON body extractor, and the
//! transport layers around them. Handlers are thin: they extract, call the
//! pipeline or read state, and render.

pub(crate) mod body;
mod catalog;
mod health;
mod invoke;
pub mod openapi;

use crate::correlation::{self, CorrelationId};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/tool-catalog", get(catalog::catalog))
        .route("/tools/{id}/invoke", post(invoke::invoke))
        .route("/tools/{id}/confirm", post(invoke::confirm))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(correlation::middleware))
        .with_state(state)
}

async fn not_found(correlation_id: CorrelationId, uri: Uri) -> Response {
    ApiError::RouteNotFound(uri.path().to_owned()).at(&correlation_id).into_response()
}

async fn method_not_allowed(correlation_id: CorrelationId) -> Response {
    ApiError::MethodNotAllowed.at(&correlation_id).into_response()
}
