//! The host's one outbound client: opens connections to checked addresses
//! only (TCP, then TLS with the request's host as the server name and ALPN,
//! then hyper's HTTP/1.1 or HTTP/2 handshake) and keeps them in the
//! [`Pool`] for requests to the same origin and address.

use super::pool::{Connection, Key, Lent, Pool, PoolLimits, PoolStats, Sender};
use crate::config::HostConfig;
use crate::origin::{Host, Origin, Scheme};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::io::TokioIo;

/// Connections for plugins' requests, shared by every call.
pub struct OutboundClient {
    roots: super::trust::Roots,
    tls: tokio_rustls::TlsConnector,
    pool: Arc<Pool>,
    resolver: super::resolve::Resolver,
}

/// A connection a request may use.
pub struct Checkout {
    /// What it is filed under.
    pub key: Key,
    /// The connection.
    pub lent: Lent,
    /// Whether it served an earlier request (a failure before the request
    /// was written is then retried on a new connection).
    pub reused: bool,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

impl OutboundClient {
    /// The client for `config`'s trust roots and pool limits.
    pub fn new(config: &HostConfig) -> anyhow::Result<Self> {
        let outbound = &config.outbound;
        let ca_file = outbound.ca_file.as_ref().map(|f| config.resolve(f));
        let roots = super::trust::Roots::load(ca_file.as_deref(), outbound.ca_file_only)?;
        let tls = super::trust::client_config(&roots)?;
        let limits = PoolLimits {
            idle_per_origin: outbound.pool_idle_per_origin,
            idle_total: outbound.pool_idle_total,
            idle_timeout: outbound.pool_idle_timeout,
            max_lifetime: outbound.pool_max_lifetime,
        };
        Ok(Self {
            roots,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            pool: Arc::new(Pool::new(limits)),
            resolver: super::resolve::Resolver::new(outbound),
        })
    }

    /// The operator's trust roots (the broker's token requests use them too).
    pub fn roots(&self) -> &super::trust::Roots {
        &self.roots
    }

    /// The resolver for plugins' host names.
    pub fn resolver(&self) -> &super::resolve::Resolver {
        &self.resolver
    }

    /// A client for code that has no network (a component's `declare` at
    /// load): the defaults, built once.
    pub fn unused() -> Arc<Self> {
        static CLIENT: OnceLock<Arc<OutboundClient>> = OnceLock::new();
        CLIENT
            .get_or_init(|| {
                Arc::new(Self::new(&HostConfig::for_root(".")).expect("the default outbound client builds"))
            })
            .clone()
    }

    /// Close idle connections on time from a background task (call once,
    /// on the host's runtime).
    pub fn sweep_in_background(&self) {
        self.pool.sweep_in_background();
    }

    /// Its pool's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.pool.stats
    }

    /// A connection to `origin` at one of `addrs` (the addresses its check
    /// just returned, in order): a kept one for the first address that has
    /// one, else a new one to the first address that accepts — unless
    /// `fresh`, which always opens a new one.
    pub async fn connection(
        &self,
        origin: &Origin,
        addrs: &[SocketAddr],
        fresh: bool,
    ) -> Result<Checkout, Error> {
        if !fresh {
            for addr in addrs {
                let key = Key { origin: origin.clone(), addr: *addr };
                if let Some(lent) = self.pool.take(&key) {
                    return Ok(Checkout { key, lent, reused: true });
                }
            }
        }
        let (tcp, addr) = connect(addrs).await?;
        let key = Key { origin: origin.clone(), addr };
        let (io, h2): (Box<dyn Io>, bool) = match origin.scheme {
            Scheme::Http => (Box::new(tcp), false),
            Scheme::Https => {
                let tls = self.tls(tcp, &origin.host).await?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                (Box::new(tls), h2)
            }
        };
        let opened = Instant::now();
        let io = TokioIo::new(io);
        self.pool.stats.opened.inc();
        let lent = if h2 {
            let (sender, driver) =
                hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .handshake(io)
                    .await
                    .map_err(Error::from)?;
            tokio::spawn(async move {
                let _ = driver.await;
            });
            // Shared from the start: the next request to this origin and
            // address opens a stream on it.
            self.pool.put(key.clone(), Connection { sender: Sender::Http2(sender.clone()), opened });
            Lent::Shared(sender)
        } else {
            let (sender, driver) = hyper::client::conn::http1::handshake(io).await.map_err(Error::from)?;
            tokio::spawn(async move {
                let _ = driver.await;
            });
            Lent::Exclusive(Connection { sender: Sender::Http1(sender), opened })
        };
        Ok(Checkout { key, lent, reused: false })
    }

    /// Keep an HTTP/1.1 connection whose response was read to the end.
    pub fn give_back(&self, key: Key, connection: Connection) {
        self.pool.put(key, connection);
    }

    async fn tls(
        &self,
        tcp: TcpStream,
        host: &Host,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
        use rustls::pki_types::ServerName;
        let name = match host {
            Host::Name(name) => {
                ServerName::try_from(name.clone()).map_err(|_| Error::HttpRequestUriInvalid)?
            }
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        self.tls.connect(name, tcp).await.map_err(|e| {
            match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
                _ => Error::Tls(e),
            }
        })
    }
}

/// A TCP connection to the first of `addrs` that accepts, and its address.
async fn connect(addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *addr));
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
