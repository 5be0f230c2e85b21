//! Which credential providers the host brokers: those of the operator's
//! providers file, or none.

use crate::broker::providers::{self, Provider};
use crate::config::HostConfig;
use std::collections::BTreeMap;

/// Load the providers file in force, if any.
pub fn load(config: &HostConfig) -> anyhow::Result<BTreeMap<String, Provider>> {
    let Some(file) = config.providers_file() else {
        tracing::info!("no providers file: no credentials are brokered");
        return Ok(BTreeMap::new());
    };
    let loaded = providers::load(&file)?;
    tracing::info!(file = %file.display(), providers = ?loaded.keys().collect::<Vec<_>>(), "providers loaded");
    Ok(loaded)
}
