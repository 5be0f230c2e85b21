//! `fastmcp plugin check`: load manifests and their components with the
//! host's own loader ([`RegistrySnapshot::check_file`]) and report, per
//! manifest, what a (re)load would say: loaded, with the contract version
//! and tools, or rejected naming the file, the field and the mismatch.
//!
//! The compile cache is the project's (`.runtime/cache`), so a component
//! checked here is already compiled when the host serving the same root
//! reloads it.

use crate::broker::Broker;
use crate::config::HostConfig;
use crate::registry::RegistrySnapshot;
use crate::runtime::Runtime;
use std::path::{Path, PathBuf};

/// What a load would say about one manifest.
#[derive(Debug)]
pub struct Verdict {
    /// The manifest.
    pub manifest: PathBuf,
    /// Loaded (what it serves) or rejected (why).
    pub outcome: Result<Loaded, String>,
}

/// A manifest that loads.
#[derive(Debug)]
pub struct Loaded {
    /// The plugin's name.
    pub plugin: String,
    /// The contract version the component implements.
    pub contract: &'static str,
    /// The manifest's tools, in id order.
    pub tools: Vec<String>,
    /// Tools the component implements that the manifest does not describe
    /// (not served).
    pub unexposed: Vec<String>,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(loaded) => {
                let checked = if loaded.contract == "0.1.0" {
                    " (a 0.1.0 component cannot declare its tools: not checked; see docs/plugins.md)"
                } else {
                    ", each implemented by the component"
                };
                write!(
                    f,
                    "loaded: {}: plugin `{}` (fastmcp:plugin@{}), tools [{}]{checked}",
                    self.manifest.display(),
                    loaded.plugin,
                    loaded.contract,
                    loaded.tools.join(", ")
                )?;
                if !loaded.unexposed.is_empty() {
                    write!(
                        f,
                        "; not exposed (the component implements them, the manifest does not describe them): [{}]",
                        loaded.unexposed.join(", ")
                    )?;
                }
                Ok(())
            }
            Err(reason) => write!(f, "rejected: {reason}"),
        }
    }
}

/// The host's loader, set up once for a project.
pub struct Checker {
    config: HostConfig,
    runtime: Runtime,
    broker: Broker,
}

impl Checker {
    /// A loader with the host's configuration: its limits, its providers
    /// file, its compile cache.
    pub fn new(config: HostConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let runtime = Runtime::new(config.runtime.clone(), config.compile_cache_dir())?;
        let providers = crate::broker::providers::load_configured(&config)?;
        let broker = Broker::new(providers, config.broker.clone(), config.clock.clone());
        Ok(Self { config, runtime, broker })
    }

    /// The file where a host serving this configuration writes what
    /// `plugin` says ([`crate::plugin_log`]).
    pub fn plugin_log_file(&self, plugin: &str) -> PathBuf {
        crate::plugin_log::file_of(&self.config.runtime_dir().join(crate::plugin_log::DIR), plugin)
    }

    /// Load `manifest` as the host would. Blocking.
    pub fn check(&self, manifest: &Path) -> Verdict {
        self.check_with(manifest, None)
    }

    /// Load `manifest` as the host would, with `component` in place of the
    /// one it names. Blocking.
    pub fn check_with(&self, manifest: &Path, component: Option<&Path>) -> Verdict {
        let outcome =
            RegistrySnapshot::check_file(&self.config, &self.runtime, &self.broker, manifest, component)
                .map(|(plugin, tools)| Loaded {
                    plugin: plugin.name.clone(),
                    contract: plugin.component.contract.version(),
                    unexposed: plugin.unexposed.clone(),
                    tools,
                })
                .map_err(|e| e.to_string());
        Verdict { manifest: manifest.to_path_buf(), outcome }
    }
}
