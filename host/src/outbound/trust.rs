//! Whom plugins' `https` requests trust: the webpki roots (Mozilla's), plus
//! the operator's PEM bundle `outbound.ca_file` for internal APIs behind a
//! private CA — or only that bundle with `outbound.ca_file_only`. ALPN offers
//! HTTP/2 and HTTP/1.1; rustls keeps session tickets in memory (its default
//! resumption store), so a reconnect to a known server resumes its session.

use anyhow::{Context, bail};
use std::path::Path;
use std::sync::Arc;

/// The TLS client configuration for plugins' requests: the public roots
/// (unless `ca_file_only`) and the bundle `ca_file`.
pub fn client_config(ca_file: Option<&Path>, ca_file_only: bool) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if !ca_file_only {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    match ca_file {
        Some(file) => {
            let added = add_pem_bundle(&mut roots, file)?;
            tracing::info!(file = %file.display(), certificates = added, "trusting the operator's CA bundle for outbound https");
        }
        None if ca_file_only => bail!("outbound.ca_file_only is set but outbound.ca_file names no bundle"),
        None => {}
    }
    let mut tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Add every certificate of the PEM file `file` to `roots`; how many.
fn add_pem_bundle(roots: &mut rustls::RootCertStore, file: &Path) -> anyhow::Result<usize> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .with_context(|| format!("outbound.ca_file: cannot read {}", file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("outbound.ca_file: {} is not a PEM bundle", file.display()))?;
    if certificates.is_empty() {
        bail!("outbound.ca_file: {} holds no certificate", file.display());
    }
    let (added, ignored) = roots.add_parsable_certificates(certificates);
    if ignored > 0 {
        bail!("outbound.ca_file: {ignored} certificate(s) in {} are not usable trust roots", file.display());
    }
    Ok(added)
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
        assert!(client_config(Some(&good), true).is_ok());
        assert!(client_config(Some(&good), false).is_ok());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = client_config(Some(&empty), false).unwrap_err().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
        let missing = client_config(Some(&dir.path().join("nope.pem")), false).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read"), "{missing:#}");
        let only = client_config(None, true).unwrap_err().to_string();
        assert!(only.contains("ca_file_only"), "{only}");
    }
}
