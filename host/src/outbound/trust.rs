//! Whom plugins' `https` requests — and the broker's token requests — trust:
//! the webpki roots (Mozilla's), plus the operator's PEM bundle
//! `outbound.ca_file` for internal APIs behind a private CA — or only that
//! bundle with `outbound.ca_file_only`. ALPN offers
//! HTTP/2 and HTTP/1.1; rustls keeps session tickets in memory (its default
//! resumption store), so a reconnect to a known server resumes its session.

use anyhow::{Context, bail};
use std::path::Path;
use std::sync::Arc;

/// The operator's trust roots: its bundle, and whether the public roots
/// are trusted too. Read once, at start.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// The certificates of `outbound.ca_file`.
    pub extra: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `outbound.ca_file_only`: not the public roots.
    pub only: bool,
}

impl Roots {
    /// Read `ca_file` (if any); fails naming the file when it holds no
    /// usable certificate, or when `only` is set without a file.
    pub fn load(ca_file: Option<&Path>, only: bool) -> anyhow::Result<Self> {
        let extra = match ca_file {
            Some(file) => {
                let extra = read_pem_bundle(file)?;
                tracing::info!(file = %file.display(), certificates = extra.len(), "trusting the operator's CA bundle for outbound https");
                extra
            }
            None if only => bail!("outbound.ca_file_only is set but outbound.ca_file names no bundle"),
            None => Vec::new(),
        };
        Ok(Self { extra, only })
    }
}

/// The TLS client configuration for plugins' requests with `roots`.
pub fn client_config(roots: &Roots) -> anyhow::Result<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    if !roots.only {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let (_, ignored) = store.add_parsable_certificates(roots.extra.iter().cloned());
    if ignored > 0 {
        bail!("outbound.ca_file: {ignored} certificate(s) are not usable trust roots");
    }
    let mut tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(store)
            .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Every certificate of the PEM file `file` (at least one, each a usable
/// trust root).
fn read_pem_bundle(file: &Path) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .with_context(|| format!("outbound.ca_file: cannot read {}", file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("outbound.ca_file: {} is not a PEM bundle", file.display()))?;
    if certificates.is_empty() {
        bail!("outbound.ca_file: {} holds no certificate", file.display());
    }
    let (_, ignored) = rustls::RootCertStore::empty().add_parsable_certificates(certificates.iter().cloned());
    if ignored > 0 {
        bail!("outbound.ca_file: {ignored} certificate(s) in {} are not usable trust roots", file.display());
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_added_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.cert.pem()).unwrap();
        let load = |file: Option<&Path>, only: bool| Roots::load(file, only).and_then(|r| client_config(&r));
        assert!(load(Some(&good), true).is_ok());
        assert!(load(Some(&good), false).is_ok());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = load(Some(&empty), false).unwrap_err().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
        let missing = load(Some(&dir.path().join("nope.pem")), false).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read"), "{missing:#}");
        let only = load(None, true).unwrap_err().to_string();
        assert!(only.contains("ca_file_only"), "{only}");
    }
}
