//! Who is calling, for every transport: the bearer token of a request
//! becomes a [`Principal`] (or a 401), and [`require_scope`] checks scopes.
//! The router authenticates each request once (`api::caller::middleware`)
//! and leaves the [`Verdict`] in its extensions, where every later step
//! reads it ([`caller_of`]). The REST handlers' axum extractor is
//! `api::caller::Authenticated`; the tool pipeline takes the outcome as it
//! is, so that even a failed authentication is decided and recorded in one
//! place.

use super::Authenticator;
use crate::error::ApiError;
use crate::principal::Principal;
use axum::http::header::AUTHORIZATION;
use axum::http::{Extensions, HeaderMap};
use std::sync::Arc;

/// Scope every invoke and confirm needs.
pub const INVOKE_SCOPE: &str = "tools.invoke:write";
/// Scope the catalog needs.
pub const CATALOG_SCOPE: &str = "tools.query:catalog";
/// Scope that lists and shows calls awaiting this caller's approval.
pub const APPROVALS_READ_SCOPE: &str = "approvals.inbox:read";
/// Scope that approves or denies them.
pub const APPROVALS_DECIDE_SCOPE: &str = "approvals.decide:write";
/// Scope that shows `/health` in detail.
pub const HEALTH_SCOPE: &str = "host.health:read";

/// A request's authentication, decided once per request.
#[derive(Clone)]
pub struct Verdict(Result<Arc<Principal>, String>);

impl Verdict {
    /// Authenticate the bearer token in `headers`.
    pub async fn of(authenticator: &Authenticator, headers: &HeaderMap) -> Self {
        Self(authenticate(authenticator, headers).await.map_err(|e| e.to_string()))
    }

    /// The principal, if the token was valid.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        self.0.as_ref().ok()
    }

    /// The principal, or the 401.
    pub fn result(&self) -> Result<Arc<Principal>, ApiError> {
        self.0.clone().map_err(ApiError::Unauthenticated)
    }
}

/// The caller of a request: the [`Verdict`] the router left in its
/// `extensions`, or — outside the router — a fresh authentication.
pub async fn caller_of(
    authenticator: &Authenticator,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Result<Arc<Principal>, ApiError> {
    match extensions.get::<Verdict>() {
        Some(verdict) => verdict.result(),
        None => authenticate(authenticator, headers).await,
    }
}

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
