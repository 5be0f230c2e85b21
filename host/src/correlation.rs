//! Correlation ids: taken from `X-Correlation-ID` when well-formed, otherwise a
//! new UUIDv7; echoed on every response and carried by every log line.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The header carrying the correlation id, both ways.
pub static HEADER: HeaderName = HeaderName::from_static("x-correlation-id");

/// Longest correlation id taken from a client.
const MAX_LEN: usize = 128;
/// Longest request path written to a log line.
pub const MAX_LOGGED_PATH: usize = 256;

/// The correlation id of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(Arc<str>);

impl CorrelationId {
    /// A fresh UUIDv7 (time-ordered) id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }

    /// The client's id if it is 1..=128 characters of `[A-Za-z0-9._:-]`;
    /// anything else is replaced, so ids are safe to log and echo.
    pub fn from_client(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_well_formed(v))
            .map(|v| Self(v.into()))
            .unwrap_or_else(Self::generate)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .cloned()
            .unwrap_or_else(|| Self::from_client(parts.headers.get(&HEADER))))
    }
}

/// A response extension: the handler already wrote the request's one log
/// line (a tool call's line carries everything the access line would).
#[derive(Debug, Clone, Copy)]
pub struct AlreadyLogged;

/// Middleware: assigns the id, runs the request inside a span carrying it,
/// echoes it on the response and writes one access-log line — unless the
/// handler wrote the request's line itself ([`AlreadyLogged`]).
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id = CorrelationId::from_client(request.headers().get(&HEADER));
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    let path = crate::text::clip(request.uri().path(), MAX_LOGGED_PATH).into_owned();
    let span = crate::telemetry::context::request_span(&method, &path, id.as_str());
    let trace = crate::telemetry::CallTrace::new(
        span.clone(),
        crate::telemetry::context::from_headers(request.headers()),
    );
    request.extensions_mut().insert(trace);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    crate::telemetry::context::end_request(&span, response.status().as_u16());
    let header = HeaderValue::from_str(id.as_str()).expect("well-formed ids are valid headers");
    response.headers_mut().insert(HEADER.clone(), header);
    if response.extensions().get::<AlreadyLogged>().is_some() {
        return response;
    }
    span.in_scope(|| {
        tracing::info!(
            correlation_id = %id,
            %method,
            %path,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_well_formed_client_ids() {
        let v = HeaderValue::from_static("req-42.a:b_c");
        assert_eq!(CorrelationId::from_client(Some(&v)).as_str(), "req-42.a:b_c");
    }

    #[test]
    fn replaces_malformed_client_ids() {
        for bad in ["", "has space", "semi;colon", &"x".repeat(129)] {
            let v = HeaderValue::from_str(bad).unwrap();
            let id = CorrelationId::from_client(Some(&v));
            assert_ne!(id.as_str(), bad);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        }
    }
}
