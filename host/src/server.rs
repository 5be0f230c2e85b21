//! The inbound HTTP server: accepting connections within the configured
//! limits and serving the router on each, until shutdown.
//!
//! `axum::serve` sets no hyper timer, so no header-read timeout can apply and
//! a client that never finishes its headers holds a connection forever. Here
//! each connection is a hyper HTTP/1 connection with a tokio timer and:
//!
//! - a **header-read timeout**, which also bounds how long an idle
//!   keep-alive connection waits for its next request;
//! - a cap on the **header buffer** (request line and headers);
//! - a **connection limit**: at most `max_connections` are served at once;
//!   beyond that the listener stops accepting (clients wait in the kernel's
//!   backlog) until one closes;
//! - optional **keep-alive** (on by default);
//! - with `shares`, a **fair share** of connections: each client address
//!   holds at most its cap of connections not yet used by an authenticated
//!   request (beyond it, new ones are closed at once), and each connection
//!   counts against its principal's cap once a request on it is
//!   authenticated ([`ConnectionShare`], claimed by the router).
//!
//! Body-read and whole-request timeouts are applied per request by the
//! router ([`crate::api`]). Each request carries the peer's address as
//! axum's `ConnectInfo`.

use crate::config::ServerConfig;
use crate::share::{ConnectionShare, Shares};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting
/// and wait (at most `limits.shutdown_grace`) for open connections to finish
/// their requests. With `shares`, connections are held within their fair
/// share (the API listener; the metrics listener has none).
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &ServerConfig,
    shares: Option<Arc<Shares>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(limits.keep_alive);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let share = match shares.as_ref().map(|shares| ConnectionShare::accept(shares, peer.ip())).transpose()
        {
            Ok(share) => share.map(Arc::new),
            Err(_) => {
                // Closed at once: this address holds its cap of connections
                // that no authenticated request has used yet.
                tracing::debug!(%peer, "connection refused beyond the address's fair share");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                if let Some(share) = &share {
                    request.extensions_mut().insert(share.clone());
                }
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?limits.shutdown_grace, "connections still open at the end of the shutdown grace");
    }
    Ok(())
}

/// The peer of a request served by [`run`] (absent in in-process tests that
/// call the router directly).
pub fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
}
