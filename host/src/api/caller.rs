//! The caller of a REST request: the axum extractor that turns the
//! `Authorization` header into a [`Principal`] (or the 401 problem), as in
//! axum's JWT example.

use crate::auth::authenticate;
use crate::correlation::CorrelationId;
use crate::error::Problem;
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;

/// An authenticated caller, extracted from the `Authorization` header.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let correlation_id = CorrelationId::from_request_parts(parts, state).await.expect("infallible");
        authenticate(state.auth(), &parts.headers).await.map(Self).map_err(|e| e.at(&correlation_id))
    }
}
