//! Which credential providers the host brokers: the operator's providers
//! file when there is one; otherwise, on development defaults, the built-in
//! development upstream ([`crate::devupstream`]) started on its address and
//! brokered as the provider `ads-api`.

use crate::broker::providers::{self, Credential, DEFAULT_REFRESH_BEFORE, Provider, Secret};
use crate::config::HostConfig;
use crate::devupstream::{DEV_CLIENT_ID, DevUpstream, DevUpstreamConfig};
use crate::files::write_atomically;
use crate::outbound::origin::Origin;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;

/// The provider the development upstream stands in for.
pub const DEV_PROVIDER: &str = "ads-api";
/// The example plugin the development provider is bound to.
pub const DEV_PLUGIN: &str = "ads";

/// File holding the development upstream's client secret.
const DEV_SECRET_FILE: &str = "dev-upstream.secret";

/// Load the providers (starting the development upstream if that is what
/// serves them). The upstream stops when `shutdown` turns true.
pub async fn load(
    config: &HostConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<BTreeMap<String, Provider>> {
    if let Some(file) = config.providers_file() {
        let loaded = providers::load(&file)?;
        tracing::info!(file = %file.display(), providers = ?loaded.keys().collect::<Vec<_>>(), "providers loaded");
        return Ok(loaded);
    }
    let Some(addr) = config.dev_upstream else {
        tracing::info!("no providers file: no credentials are brokered");
        return Ok(BTreeMap::new());
    };
    let client_secret = dev_secret(&config.runtime_dir())?;
    let upstream = DevUpstream::new(DevUpstreamConfig::new(client_secret.clone()));
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            let bound = listener.local_addr()?;
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                };
                if let Err(e) = upstream.serve(listener, stopped).await {
                    tracing::error!(error = %e, "the development upstream stopped");
                }
            });
            tracing::warn!(
                addr = %bound,
                provider = DEV_PROVIDER,
                "no providers file: serving the development upstream (OAuth token endpoint + Ads API); not for production"
            );
        }
        Err(e) => tracing::error!(
            %addr,
            error = %e,
            "cannot start the development upstream; calls that need `ads-api` will fail with upstream_error"
        ),
    }
    let token_url =
        reqwest::Url::parse(&format!("http://{addr}/oauth/token")).context("development token URL")?;
    let credential = Credential::OAuth2ClientCredentials {
        token_url,
        client_id: DEV_CLIENT_ID.to_owned(),
        client_secret,
        refresh_before: DEFAULT_REFRESH_BEFORE,
    };
    // Bound as an operator would bind it: to the example plugin, injected
    // only into the upstream itself.
    let origin = Origin::parse(&format!("http://{addr}")).context("development upstream origin")?;
    let provider = Provider { credential, plugins: vec![DEV_PLUGIN.to_owned()], origins: vec![origin] };
    Ok(BTreeMap::from([(DEV_PROVIDER.to_owned(), provider)]))
}

/// The development upstream's address, when it serves the providers.
pub fn dev_upstream_in_use(config: &HostConfig) -> Option<std::net::SocketAddr> {
    if config.providers_file().is_some() { None } else { config.dev_upstream }
}

/// The development client secret: generated once into `.runtime/`, owner-only.
fn dev_secret(runtime_dir: &Path) -> anyhow::Result<Secret> {
    let path = runtime_dir.join(DEV_SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path)
        && !existing.trim().is_empty()
    {
        return Ok(Secret::new(existing.trim().to_owned()));
    }
    let mut random = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut random[..]);
    let secret = hex::encode(random);
    std::fs::create_dir_all(runtime_dir)?;
    write_atomically(&path, secret.as_bytes(), true)?;
    Ok(Secret::new(secret))
}
