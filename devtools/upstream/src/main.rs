//! `fastmcp-dev-upstream`: the development OAuth token endpoint and Ads API
//! as a process of its own, for `./dev serve`.
//!
//! ```text
//! fastmcp-dev-upstream [--listen 127.0.0.1:8001] [--secret-file .runtime/dev-upstream.secret]
//!                      [--tls-listen 127.0.0.1:8004 --tls-ca-file FILE]
//!                      [--subject-jwks .runtime/dev-jwks.json]
//!                      [--redirect-uri URI]... [--client-jwks FILE]
//! ```
//!
//! The authorization-code flow accepts the redirect URIs given (by default
//! the host's `http://127.0.0.1:8000/connections/ads-user/callback` and its
//! `localhost` twin).
//!
//! Token exchange verifies subject tokens with the JWKS file
//! `--subject-jwks` names (the host's development keys by default); client
//! assertions (`private_key_jwt`) are verified with `--client-jwks`.
//!
//! The client secret is read from the file, or generated into it (owner-only)
//! on first use; the host's providers file names the same file. With
//! `--tls-listen` it also serves HTTPS there (HTTP/2 or HTTP/1.1 by ALPN),
//! with a certificate for `localhost` and `127.0.0.1` from a CA generated at
//! start, whose certificate it writes to FILE for the host's
//! `outbound.ca_file`.

use fastmcp_dev_upstream::tls::DevCa;
use fastmcp_dev_upstream::{DevUpstream, DevUpstreamConfig, Secret};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:8001".parse().expect("a socket address");
    let mut secret_file = PathBuf::from(".runtime/dev-upstream.secret");
    let mut tls_listen: Option<SocketAddr> = None;
    let mut tls_ca_file = None;
    let mut subject_jwks = PathBuf::from(".runtime/dev-jwks.json");
    let mut redirect_uris = Vec::new();
    let mut client_jwks = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let address = |value: &str| value.parse().map_err(|_| invalid(&format!("{arg} {value}")));
        match arg.as_str() {
            "--listen" => listen = address(&value)?,
            "--secret-file" => secret_file = PathBuf::from(value),
            "--tls-listen" => tls_listen = Some(address(&value)?),
            "--tls-ca-file" => tls_ca_file = Some(PathBuf::from(value)),
            "--subject-jwks" => subject_jwks = PathBuf::from(value),
            "--redirect-uri" => redirect_uris.push(value),
            "--client-jwks" => client_jwks = Some(PathBuf::from(value)),
            other => return Err(invalid(&format!("unknown argument {other}"))),
        }
    }
    let secret = load_or_create_secret(&secret_file)?;
    let upstream = DevUpstream::new(DevUpstreamConfig::new(secret));
    upstream.subject_keys.trust(subject_jwks);
    if let Some(jwks) = client_jwks {
        upstream.client_keys.trust(jwks);
    }
    if redirect_uris.is_empty() {
        for host in ["127.0.0.1", "localhost"] {
            redirect_uris.push(format!("http://{host}:8000/connections/ads-user/callback"));
        }
    }
    for uri in &redirect_uris {
        upstream.code_flow.allow_redirect(uri);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let stop = || async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let (tls_listen, ca_file) = match (tls_listen, tls_ca_file) {
        (None, None) => {
            eprintln!(
                "fastmcp-dev-upstream: serving the development OAuth endpoint and Ads API on http://{listen} (not for production)"
            );
            return upstream.serve(listener, stop()).await;
        }
        (Some(tls_listen), Some(ca_file)) => (tls_listen, ca_file),
        _ => return Err(invalid("--tls-listen and --tls-ca-file go together")),
    };
    let ca = DevCa::generate(&["localhost", "127.0.0.1"])
        .map_err(|e| invalid(&format!("generating the CA: {e}")))?;
    write_by_rename(&ca_file, ca.ca_pem.as_bytes())?;
    let tls_listener = tokio::net::TcpListener::bind(tls_listen).await?;
    eprintln!(
        "fastmcp-dev-upstream: serving the development OAuth endpoint and Ads API on http://{listen} and https://{tls_listen} (CA certificate in {}; not for production)",
        ca_file.display()
    );
    // One upstream on both: a token issued over one is good on the other.
    tokio::try_join!(
        upstream.clone().serve(listener, stop()),
        upstream.serve_tls(tls_listener, ca.server, stop()),
    )?;
    Ok(())
}

/// Write `bytes` to `path` through a temporary file and a rename.
fn write_by_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_owned())
}

/// The client secret in `path`, generated (32 random bytes, hex) if absent.
fn load_or_create_secret(path: &Path) -> std::io::Result<Secret> {
    if let Ok(existing) = std::fs::read_to_string(path)
        && !existing.trim().is_empty()
    {
        return Ok(Secret::new(existing.trim().to_owned()));
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&tmp)?.write_all(secret.as_bytes())?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(Secret::new(secret))
}
