//! The caller of a request. [`middleware`] authenticates every request once
//! (a request without a token costs nothing) and leaves the [`Verdict`] in
//! its extensions for every later step; a valid token claims the connection
//! for its principal, within the principal's fair share of connections
//! ([`crate::share::ConnectionShare`]) — beyond it the request gets 429
//! `share_exceeded` and the connection is closed. `/health` claims nothing:
//! liveness is answered whatever credentials a probe sends. [`Authenticated`] is the
//! REST handlers' extractor, as in axum's JWT example.

use crate::auth::{Verdict, caller_of};
use crate::correlation::CorrelationId;
use crate::error::Problem;
use crate::principal::Principal;
use crate::share::ConnectionShare;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// An authenticated caller, extracted from the `Authorization` header.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let correlation_id = CorrelationId::from_request_parts(parts, state).await.expect("infallible");
        caller_of(state.auth(), &parts.extensions, &parts.headers)
            .await
            .map(Self)
            .map_err(|e| e.at(&correlation_id))
    }
}

/// Authenticate the request once; claim its connection for the principal.
pub async fn middleware(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    mut request: Request,
    next: Next,
) -> Response {
    let verdict = Verdict::of(state.auth(), request.headers()).await;
    // A probe is answered whatever its credentials: it claims nothing.
    let claims = request.uri().path() != "/health";
    if let (true, Some(principal), Some(connection)) =
        (claims, verdict.principal(), request.extensions().get::<Arc<ConnectionShare>>())
        && let Err(refused) = connection.claim(principal)
    {
        let mut response = refused.at(&correlation_id).into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    request.extensions_mut().insert(verdict);
    next.run(request).await
}
