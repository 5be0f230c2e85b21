//! The sender behind a plugin's outbound request: it takes a connection to
//! exactly the addresses [`super::address`] permitted (a name is never
//! resolved again behind the check) from the [`OutboundClient`] — a kept one
//! for the same origin and address, or a new one — sends the request with
//! both bodies capped, and gives an HTTP/1.1 connection back once its
//! response has been read to the end.

use super::client::{Checkout, OutboundClient};
use super::pool::{Lent, Sender};
use crate::origin::Origin;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::{Error, WasiBody};

/// The future that drives the connection after the response head arrived
/// (nothing: the client drives its connections itself).
pub type ConnectionTask = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    /// TCP connect plus TLS and HTTP handshakes.
    pub connect_timeout: Duration,
    /// Until the response head.
    pub first_byte_timeout: Duration,
    /// Between two chunks of the response body.
    pub between_bytes_timeout: Duration,
    /// Request body cap.
    pub max_request_body: u64,
    /// Response body cap.
    pub max_response_body: u64,
}

/// Send `request` to `origin` over one of `addrs` (tried in order).
pub async fn send(
    client: &Arc<OutboundClient>,
    request: http::Request<WasiBody>,
    origin: &Origin,
    addrs: &[SocketAddr],
    limits: SendLimits,
) -> Result<(http::Response<WasiBody>, ConnectionTask), Error> {
    let absolute = request.uri().clone();
    // Origin-form for HTTP/1.1: scheme and authority live in `Host`.
    let origin_form = http::Uri::try_from(absolute.path_and_query().map_or("/", |p| p.as_str()))
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let (parts, body) = request.into_parts();
    let body = Capped::new(body, limits.max_request_body, Error::HttpRequestBodySize);
    let oversized = body.tripped.clone();
    let mut request = http::Request::from_parts(parts, body.boxed_unsync());
    // Hyper reports a request body that failed as a broken connection: say why.
    let why = |e: Error| {
        if oversized.load(Ordering::Relaxed) {
            Error::HttpRequestBodySize(Some(limits.max_request_body))
        } else {
            e
        }
    };
    let mut fresh = false;
    loop {
        let Checkout { key, lent, reused } =
            tokio::time::timeout(limits.connect_timeout, client.connection(origin, addrs, fresh))
                .await
                .map_err(|_| Error::ConnectionTimeout)??;
        let (sent, connection) = match lent {
            Lent::Exclusive(mut connection) => {
                let Sender::Http1(sender) = &mut connection.sender else {
                    unreachable!("only HTTP/1.1 connections are lent exclusively")
                };
                if let Err(e) = sender.ready().await {
                    if !reused {
                        // A new connection that closed at once: no retry.
                        return Err(Error::from(e));
                    }
                    // Closed while kept: nothing was sent yet; once more on
                    // a new connection (which is never retried).
                    fresh = true;
                    continue;
                }
                *request.uri_mut() = origin_form.clone();
                let sent =
                    tokio::time::timeout(limits.first_byte_timeout, sender.try_send_request(request)).await;
                (sent, Some(connection))
            }
            Lent::Shared(mut sender) => {
                *request.uri_mut() = absolute.clone();
                let sent =
                    tokio::time::timeout(limits.first_byte_timeout, sender.try_send_request(request)).await;
                (sent, None)
            }
        };
        let response = match sent {
            Err(_) => return Err(Error::ConnectionReadTimeout),
            Ok(Ok(response)) => response,
            Ok(Err(mut failed)) => match failed.take_message() {
                // A kept connection the server had closed: the request was
                // not written, so it goes on a new connection.
                Some(unsent) if reused => {
                    request = unsent;
                    fresh = true;
                    continue;
                }
                _ => return Err(why(Error::from(failed.into_error()))),
            },
        };
        let max_response = limits.max_response_body;
        let client = client.clone();
        let response = response.map(|incoming| {
            let mut body =
                Capped::new(incoming.map_err(Error::from), max_response, Error::HttpResponseBodySize)
                    .with_idle_timeout(limits.between_bytes_timeout);
            if let Some(connection) = connection {
                body.on_end = Some(Box::new(move || client.give_back(key, connection)));
            }
            body.boxed_unsync()
        });
        let task: ConnectionTask = Box::new(std::future::ready(Ok(())));
        return Ok((response, task));
    }
}

/// A body that fails once more than `limit` bytes went through it, or
/// (with an idle timeout) when it stays silent too long between frames.
struct Capped<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    error: fn(Option<u64>) -> Error,
    /// Set when the cap was hit.
    tripped: Arc<AtomicBool>,
    /// The idle timeout and the timer running until the next frame.
    idle: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    /// Run once when the body has been read to its end.
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl<B> Capped<B> {
    fn new(inner: B, limit: u64, error: fn(Option<u64>) -> Error) -> Self {
        Self { inner, remaining: limit, limit, error, tripped: Arc::default(), idle: None, on_end: None }
    }

    fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = Some((timeout, Box::pin(tokio::time::sleep(timeout))));
        self
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Pending => {
                if let Some((_, timer)) = &mut self.idle
                    && timer.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                }
                return Poll::Pending;
            }
            Poll::Ready(_) => {
                if let Some((timeout, timer)) = &mut self.idle {
                    timer.as_mut().reset(tokio::time::Instant::now() + *timeout);
                }
            }
        }
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            if len > self.remaining {
                self.remaining = 0;
                self.tripped.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err((self.error)(Some(self.limit)))));
            }
            self.remaining -= len;
        }
        let ended = matches!(polled, Poll::Ready(None))
            || (matches!(polled, Poll::Ready(Some(Ok(_)))) && self.inner.is_end_stream());
        if ended && let Some(on_end) = self.on_end.take() {
            on_end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
