//! Long-lived MCP streams — `subscriptions/listen` (2026-07-28) and the
//! standalone `GET /mcp` stream of a legacy session — held within bounds so
//! that nobody can hoard them: each principal holds at most its share of
//! streams (429 `share_exceeded`), all streams together at most
//! `mcp.max_streams` and never more than half of the server's connections
//! (503 `overloaded`; the rest stays for short requests), and every stream
//! ends after `mcp.stream_lifetime` (clients reconnect).

use crate::config::HostConfig;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::share::{Owner, Share, Shares};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::Response;
use http_body::Frame;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// The MCP method that opens a stream in a POST (2026-07-28).
const LISTEN_METHOD: &str = "subscriptions/listen";

/// The streams' global cap and lifetime.
pub struct Streams {
    open: Arc<Semaphore>,
    lifetime: Duration,
    shares: Arc<Shares>,
}

/// What an open stream holds; released when the stream's body is dropped.
pub struct Held {
    _share: Share<Owner>,
    _permit: OwnedSemaphorePermit,
}

impl Streams {
    /// The bounds of `config`, counting shares in `shares`.
    pub fn new(config: &HostConfig, shares: Arc<Shares>) -> Self {
        let cap = config.mcp.max_streams.min(config.server.max_connections / 2).max(1);
        Self { open: Arc::new(Semaphore::new(cap)), lifetime: config.mcp.stream_lifetime, shares }
    }

    /// Whether `request` asks for a long-lived stream: a `GET`, or a POST
    /// whose `Mcp-Method` is `subscriptions/listen` (rmcp refuses a
    /// 2026-07-28 request whose header and body disagree).
    pub fn opens_stream(request: &Request) -> bool {
        request.method() == Method::GET
            || request.headers().get("mcp-method").is_some_and(|method| method == LISTEN_METHOD)
    }

    /// A stream for `principal`, within its share and the global cap.
    pub fn admit(&self, principal: &Principal) -> Result<Held, ApiError> {
        let share = self.shares.streams.take(Owner::from(principal))?;
        let permit = self.open.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!("MCP stream limit reached");
            ApiError::Overloaded
        })?;
        Ok(Held { _share: share, _permit: permit })
    }

    /// `response` with its body ended after the stream lifetime, holding
    /// `held` until then; a response that is not a stream drops `held`.
    pub fn bound(&self, response: Response, held: Held) -> Response {
        let is_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        if !is_stream {
            return response;
        }
        let deadline = Box::pin(tokio::time::sleep(self.lifetime));
        response.map(|inner| Body::new(Bounded { inner, deadline, _held: held }))
    }
}

/// A stream's body that ends at its deadline.
struct Bounded {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    _held: Held,
}

impl http_body::Body for Bounded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }
}
