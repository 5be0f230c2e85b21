//! TLS for the development upstream: a certificate authority generated at
//! start (rcgen), a server certificate it signs for `localhost` and
//! `127.0.0.1`, and a listener that completes TLS handshakes (ALPN `h2`,
//! `http/1.1`) off the accept loop. The host trusts the CA through its
//! `outbound.ca_file`, as it would an operator's private CA.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// A CA and the server configuration of a certificate it issued.
pub struct DevCa {
    /// The CA certificate, PEM (what a client trusts).
    pub ca_pem: String,
    /// The server side: the issued certificate and its key.
    pub server: Arc<rustls::ServerConfig>,
}

impl DevCa {
    /// A new CA, and a certificate from it for `names` (DNS names or IP
    /// addresses).
    pub fn generate(names: &[&str]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "FastMCP development CA");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(names)?.signed_by(&leaf_key, &issuer)?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut server =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self { ca_pem: ca_cert.pem(), server: Arc::new(server) })
    }
}

/// A TCP listener whose connections are handed out once their TLS
/// handshake is done (handshakes run on tasks of their own, so a slow or
/// failed one holds up nobody); counts the TCP connections it accepted.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accept on `listener` with `config`, counting connections in `accepted`.
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        accepted: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (sender, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    // Out of descriptors, say: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                // Small TLS records go out at once (Nagle's algorithm and
                // the peer's delayed ACK would hold each handshake ~40 ms).
                let _ = tcp.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = sender.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
