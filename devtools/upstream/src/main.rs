//! `fastmcp-dev-upstream`: the development OAuth token endpoint and Ads API
//! as a process of its own, for `./dev serve`.
//!
//! ```text
//! fastmcp-dev-upstream [--listen 127.0.0.1:8001] [--secret-file .runtime/dev-upstream.secret]
//!                      [--tls-ca-file FILE]
//! ```
//!
//! The client secret is read from the file, or generated into it (owner-only)
//! on first use; the host's providers file names the same file. With
//! `--tls-ca-file` it serves HTTPS (HTTP/2 or HTTP/1.1) with a certificate for
//! `localhost` and `127.0.0.1` from a CA generated at start, whose
//! certificate it writes to FILE for the host's `outbound.ca_file`.

use fastmcp_dev_upstream::tls::DevCa;
use fastmcp_dev_upstream::{DevUpstream, DevUpstreamConfig, Secret};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:8001".parse().expect("a socket address");
    let mut secret_file = PathBuf::from(".runtime/dev-upstream.secret");
    let mut tls_ca_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--listen" => listen = value.parse().map_err(|_| invalid(&format!("--listen {value}")))?,
            "--secret-file" => secret_file = PathBuf::from(value),
            "--tls-ca-file" => tls_ca_file = Some(PathBuf::from(value)),
            other => return Err(invalid(&format!("unknown argument {other}"))),
        }
    }
    let secret = load_or_create_secret(&secret_file)?;
    let upstream = DevUpstream::new(DevUpstreamConfig::new(secret));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let Some(ca_file) = tls_ca_file else {
        eprintln!(
            "fastmcp-dev-upstream: serving the development OAuth endpoint and Ads API on http://{listen} (not for production)"
        );
        return upstream.serve(listener, stop).await;
    };
    let ca = DevCa::generate(&["localhost", "127.0.0.1"])
        .map_err(|e| invalid(&format!("generating the CA: {e}")))?;
    write_by_rename(&ca_file, ca.ca_pem.as_bytes())?;
    eprintln!(
        "fastmcp-dev-upstream: serving the development OAuth endpoint and Ads API on https://{listen}, CA certificate in {} (not for production)",
        ca_file.display()
    );
    upstream.serve_tls(listener, ca.server, stop).await
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
