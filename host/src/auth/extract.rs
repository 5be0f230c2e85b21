//! Who is calling, for every transport: the bearer token of a request
//! becomes a [`Principal`] (or a 401), and [`require_scope`] checks scopes.
//! The REST handlers' axum extractor is `api::caller::Authenticated`; the
//! tool pipeline takes the outcome as it is, so that even a failed
//! authentication is decided and recorded in one place.

use super::Authenticator;
use crate::error::ApiError;
use crate::principal::Principal;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use std::sync::Arc;

/// Scope every invoke and confirm needs.
pub const INVOKE_SCOPE: &str = "tools.invoke:write";
/// Scope the catalog needs.
pub const CATALOG_SCOPE: &str = "tools.query:catalog";
/// Scope that shows `/health` in detail.
pub const HEALTH_SCOPE: &str = "host.health:read";

/// The bearer token in `headers` as a principal.
pub async fn authenticate(
    authenticator: &Authenticator,
    headers: &HeaderMap,
) -> Result<Arc<Principal>, ApiError> {
    // Two credentials are ambiguous; proxies may disagree on which one counts.
    if headers.get_all(AUTHORIZATION).iter().nth(1).is_some() {
        return Err(ApiError::Unauthenticated("more than one Authorization header".into()));
    }
    authenticator
        .authenticate(headers.get(AUTHORIZATION))
        .await
        .map_err(|e| ApiError::Unauthenticated(e.to_string()))
}

/// The caller must hold `scope`.
pub fn require_scope(principal: &Principal, scope: &str) -> Result<(), ApiError> {
    if principal.has_scope(scope) { Ok(()) } else { Err(ApiError::InsufficientScope(scope.to_owned())) }
}
