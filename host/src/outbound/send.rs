//! The sender behind a plugin's outbound request: it connects to exactly the
//! addresses [`super::address`] permitted (a name is never resolved again
//! behind the check), speaks TLS for `https` with the request's host as the
//! server name and the webpki roots, and caps both bodies.

use crate::origin::{Host, Origin, Scheme};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

/// The future that drives the connection after the response head arrived.
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

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Send `request` to `origin` over one of `addrs` (tried in order).
pub async fn send(
    mut request: http::Request<WasiBody>,
    origin: &Origin,
    addrs: &[SocketAddr],
    limits: SendLimits,
) -> Result<(http::Response<WasiBody>, ConnectionTask), Error> {
    let handshake = async {
        let tcp = connect(addrs).await?;
        let io: Box<dyn Io> = match origin.scheme {
            Scheme::Http => Box::new(tcp),
            Scheme::Https => Box::new(tls(tcp, &origin.host).await?),
        };
        hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(io)).await.map_err(Error::from)
    };
    let (mut sender, connection) = tokio::time::timeout(limits.connect_timeout, handshake)
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

    // Origin-form on the wire: scheme and authority live in `Host`.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
    let (parts, body) = request.into_parts();
    let body = Capped::new(body, limits.max_request_body, Error::HttpRequestBodySize);
    let oversized = body.tripped.clone();
    let request = http::Request::from_parts(parts, body.boxed_unsync());

    let mut connection = Box::pin(connection);
    let sent = tokio::select! {
        sent = tokio::time::timeout(limits.first_byte_timeout, sender.send_request(request)) => {
            sent.map_err(|_| Error::ConnectionReadTimeout).and_then(|sent| sent.map_err(Error::from))
        }
        closed = &mut connection => Err(closed.err().map_or(Error::ConnectionTerminated, Error::from)),
    };
    // Hyper reports a request body that failed as a broken connection: say why.
    let response = sent.map_err(|e| {
        if oversized.load(Ordering::Relaxed) {
            Error::HttpRequestBodySize(Some(limits.max_request_body))
        } else {
            e
        }
    })?;
    let max_response = limits.max_response_body;
    let response = response.map(|incoming| {
        Capped::new(incoming.map_err(Error::from), max_response, Error::HttpResponseBodySize)
            .with_idle_timeout(limits.between_bytes_timeout)
            .boxed_unsync()
    });
    let task: ConnectionTask = Box::new(async move { connection.await.map_err(Error::from) });
    Ok((response, task))
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
        Some(e) => Error::Connect(e),
        None => Error::DestinationNotFound,
    })
}

async fn tls(tcp: TcpStream, host: &Host) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    use rustls::pki_types::ServerName;
    let name = match host {
        Host::Name(name) => ServerName::try_from(name.clone()).map_err(|_| Error::HttpRequestUriInvalid)?,
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
    };
    tls_connector().connect(name, tcp).await.map_err(|e| {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
            _ => Error::Tls(e),
        }
    })
}

fn tls_connector() -> &'static tokio_rustls::TlsConnector {
    static CONNECTOR: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();
    CONNECTOR.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    })
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
}

impl<B> Capped<B> {
    fn new(inner: B, limit: u64, error: fn(Option<u64>) -> Error) -> Self {
        Self { inner, remaining: limit, limit, error, tripped: Arc::default(), idle: None }
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
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
