//! The registry: every plugin and tool the host serves, as one immutable
//! snapshot built from `manifests/` and the components they name.
//!
//! A snapshot is built completely off the request path and then swapped in
//! whole (see [`crate::state::AppState::registry`]); a call loads the snapshot
//! once and keeps that `Arc` to its end.

use crate::broker::Broker;
use crate::config::HostConfig;
use crate::manifest::{Manifest, ManifestBounds, ManifestError, ToolDef};
use crate::outbound::log::EgressLog;
use crate::outbound::{Egress, PluginNetwork};
use crate::runtime::call_data::{CallGrants, CallIdentity};
use crate::runtime::declared;
use crate::runtime::{CallLimits, LoadError, LoadedComponent, Runtime};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why a registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The manifests directory could not be listed.
    #[error("cannot read manifests directory {path}: {cause}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A manifest's component cannot be loaded.
    #[error("{file}: component: {cause}")]
    Component {
        /// The manifest naming the component.
        file: PathBuf,
        /// Why it cannot be loaded.
        cause: LoadError,
    },
    /// A manifest grants a provider the operator has not configured.
    #[error(
        "{file}: credentials[{index}].provider: no provider `{provider}` is configured (configured: {configured})"
    )]
    UnknownProvider {
        /// The manifest.
        file: PathBuf,
        /// Index of the grant.
        index: usize,
        /// The provider named.
        provider: String,
        /// The providers that exist.
        configured: String,
    },
    /// A manifest grants a provider beyond what the operator bound it to.
    #[error("{file}: credentials[{index}]: provider `{provider}` {reason}")]
    ProviderNotBound {
        /// The manifest.
        file: PathBuf,
        /// Index of the grant.
        index: usize,
        /// The provider named.
        provider: String,
        /// What the providers file does not allow (naming the plugin or origin).
        reason: String,
    },
    /// The manifest's tools and the tools the component declares differ, or
    /// the component could not say which tools it implements.
    #[error("{file}: {field}: {reason}")]
    Tools {
        /// The manifest.
        file: PathBuf,
        /// The manifest field concerned (`tools[1].name`, `tools`, `component`).
        field: String,
        /// What differs, naming the tool.
        reason: String,
    },
    /// Two manifests declare the same plugin.
    #[error("{file}: plugin: `{plugin}` is already declared by {other}")]
    DuplicatePlugin {
        /// The second manifest.
        file: PathBuf,
        /// The plugin name.
        plugin: String,
        /// The first manifest.
        other: PathBuf,
    },
}

/// One loaded plugin.
pub struct LoadedPlugin {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The manifest file.
    pub manifest_file: PathBuf,
    /// The component, ready to instantiate (shared with later snapshots
    /// while the file is unchanged).
    pub component: Arc<LoadedComponent>,
    /// Where the component file is.
    pub component_path: PathBuf,
    /// Per-call limits.
    pub limits: CallLimits,
    /// Outbound HTTP rules and credential grants.
    pub network: Arc<PluginNetwork>,
    /// The manifest's `config:` values.
    pub config: Arc<BTreeMap<String, String>>,
    /// Tools the component implements that the manifest does not describe,
    /// so not served.
    pub unexposed: Vec<String>,
}

/// One tool: its definition and the plugin that runs it.
pub struct Tool {
    /// The validated definition.
    pub def: ToolDef,
    /// The plugin exporting it.
    pub plugin: Arc<LoadedPlugin>,
}

/// An immutable view of everything served.
pub struct RegistrySnapshot {
    /// Increases with every successful (re)load.
    pub version: u64,
    /// When this snapshot was built.
    pub loaded_at: SystemTime,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    tools: BTreeMap<String, Arc<Tool>>,
    /// Manifests that did not load in this (re)load, each with why and
    /// whether its plugin's last good version is still served.
    pub failures: Vec<PluginFailure>,
}

/// A manifest that did not load.
#[derive(Debug, Clone)]
pub struct PluginFailure {
    /// The manifest file.
    pub file: PathBuf,
    /// Why, naming file and field.
    pub error: String,
    /// The plugin whose last good version is still served, if any.
    pub kept: Option<String>,
}

impl RegistrySnapshot {
    /// An empty registry.
    pub fn empty() -> Self {
        Self {
            version: 0,
            loaded_at: SystemTime::now(),
            plugins: BTreeMap::new(),
            tools: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// Build a snapshot from every `*.yaml`/`*.yml` in the manifests directory.
    /// Components whose bytes are unchanged since `previous` are reused as they
    /// are. Blocking (reads files, compiles components): run it off the async
    /// threads.
    ///
    /// With `per_plugin` (a reload of manifests and components), each
    /// plugin loads or fails on its own: a manifest that does not load is
    /// recorded in [`RegistrySnapshot::failures`], its plugin's version from
    /// `previous` keeps serving (or it is absent if it never loaded), and
    /// the others load as usual. Without (startup, or new providers, which
    /// are adopted only with a registry that validates against them whole),
    /// every manifest must load.
    pub fn load(
        config: &HostConfig,
        runtime: &Runtime,
        broker: &Broker,
        version: u64,
        previous: Option<&RegistrySnapshot>,
        per_plugin: bool,
    ) -> Result<Self, RegistryError> {
        let reusable: HashMap<&str, &Arc<LoadedComponent>> = previous
            .map(|p| {
                p.plugins().map(|plugin| (plugin.component.sha256.as_str(), &plugin.component)).collect()
            })
            .unwrap_or_default();
        let dir = config.manifests_dir();
        let files = manifest_files(&dir).map_err(|cause| RegistryError::ReadDir { path: dir, cause })?;
        let bounds = ManifestBounds {
            max_memory_mb: runtime.config().max_memory_mb,
            max_timeout_ms: runtime.config().max_timeout_ms,
        };
        let mut snapshot = Self { version, ..Self::empty() };
        let mut failed = Vec::new();
        for file in files {
            let loaded = Manifest::load(&file, bounds).map_err(RegistryError::from).and_then(|manifest| {
                check_providers(config, &manifest, broker)?;
                snapshot.add(config, runtime, manifest, &reusable)
            });
            match loaded {
                Ok(()) => {}
                Err(e) if per_plugin => failed.push((file, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        for (file, error) in failed {
            let last_good = previous.and_then(|p| {
                p.plugins().find(|plugin| plugin.manifest_file == file).map(|plugin| (p, plugin))
            });
            let kept = match last_good {
                Some((previous, plugin)) if !snapshot.plugins.contains_key(&plugin.name) => {
                    snapshot.keep(plugin, previous);
                    Some(plugin.name.clone())
                }
                _ => None,
            };
            tracing::warn!(manifest = %file.display(), %error, kept = ?kept, "plugin not loaded");
            snapshot.failures.push(PluginFailure { file, error, kept });
        }
        Ok(snapshot)
    }

    /// Serve `plugin` and its tools as `previous` served them.
    fn keep(&mut self, plugin: &Arc<LoadedPlugin>, previous: &RegistrySnapshot) {
        for tool in previous.tools().filter(|t| Arc::ptr_eq(&t.plugin, plugin)) {
            self.tools.entry(tool.def.id.clone()).or_insert_with(|| tool.clone());
        }
        self.plugins.insert(plugin.name.clone(), plugin.clone());
    }

    /// Load one manifest and its component exactly as a (re)load would,
    /// without serving it: what `fastmcp plugin check` reports. With
    /// `component`, that file stands in for the one the manifest names (a
    /// build not yet moved into place). Blocking.
    pub fn check_file(
        config: &HostConfig,
        runtime: &Runtime,
        broker: &Broker,
        file: &std::path::Path,
        component: Option<&std::path::Path>,
    ) -> Result<(Arc<LoadedPlugin>, Vec<String>), RegistryError> {
        let bounds = ManifestBounds {
            max_memory_mb: runtime.config().max_memory_mb,
            max_timeout_ms: runtime.config().max_timeout_ms,
        };
        let mut manifest = Manifest::load(file, bounds)?;
        if let Some(component) = component {
            manifest.component = component.to_path_buf();
        }
        check_providers(config, &manifest, broker)?;
        let mut snapshot = Self::empty();
        snapshot.add(config, runtime, manifest, &HashMap::new())?;
        let tools = snapshot.tools.values().map(|t| t.def.name.clone()).collect();
        Ok((snapshot.plugins.into_values().next().expect("one plugin was added"), tools))
    }

    fn add(
        &mut self,
        config: &HostConfig,
        runtime: &Runtime,
        manifest: Manifest,
        reusable: &HashMap<&str, &Arc<LoadedComponent>>,
    ) -> Result<(), RegistryError> {
        if let Some(other) = self.plugins.get(&manifest.plugin) {
            return Err(RegistryError::DuplicatePlugin {
                file: manifest.file,
                plugin: manifest.plugin,
                other: other.manifest_file.clone(),
            });
        }
        let component_path = config.resolve(&manifest.component);
        let component_error = |cause| RegistryError::Component { file: manifest.file.clone(), cause };
        let bytes = std::fs::read(&component_path)
            .map_err(|cause| component_error(LoadError::Read { path: component_path.clone(), cause }))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component = match reusable.get(sha256.as_str()) {
            Some(&loaded) => loaded.clone(),
            None => Arc::new(runtime.load_component_bytes(&component_path, &bytes).map_err(component_error)?),
        };
        let limits = CallLimits {
            memory_bytes: manifest.memory_bytes,
            timeout: Duration::from_millis(manifest.timeout_ms),
        };
        let unexposed = check_declared_tools(config, runtime, &manifest, &component, limits)?;
        let plugin = Arc::new(LoadedPlugin {
            name: manifest.plugin.clone(),
            version: manifest.version,
            manifest_file: manifest.file,
            component,
            component_path,
            limits,
            network: Arc::new(PluginNetwork::new(manifest.allow, manifest.grants)),
            config: Arc::new(manifest.config),
            unexposed,
        });
        for def in manifest.tools {
            let tool = Arc::new(Tool { def, plugin: plugin.clone() });
            self.tools.insert(tool.def.id.clone(), tool);
        }
        self.plugins.insert(manifest.plugin, plugin);
        Ok(())
    }

    /// The tool with this id.
    pub fn tool(&self, id: &str) -> Option<&Arc<Tool>> {
        self.tools.get(id)
    }

    /// Every tool, ordered by id.
    pub fn tools(&self) -> impl Iterator<Item = &Arc<Tool>> {
        self.tools.values()
    }

    /// Every plugin, ordered by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }
}

/// A 0.2.0 component must implement every tool of the manifest (and the
/// schemas it declares must be the manifest's); the tools it implements
/// beyond those are returned (not served). The first time a component
/// is loaded it is asked in a sandbox under the manifest's limits, with its
/// `config:` values and no grants; reloads reuse the answer. 0.1.0
/// components cannot say; they load as before, with a warning.
fn check_declared_tools(
    config: &HostConfig,
    runtime: &Runtime,
    manifest: &Manifest,
    component: &LoadedComponent,
    limits: CallLimits,
) -> Result<Vec<String>, RegistryError> {
    let mismatch = |field: &str, reason: String| RegistryError::Tools {
        file: manifest.file.clone(),
        field: field.into(),
        reason,
    };
    let sandbox = || {
        let identity = CallIdentity {
            correlation_id: "load".into(),
            tenant: String::new(),
            subject: String::new(),
            tool_id: format!("{}:declare", manifest.plugin),
        };
        // No network and no grants: the broker is never asked for anything.
        let grants = CallGrants {
            config: Arc::new(manifest.config.clone()),
            egress: Egress {
                network: Arc::new(PluginNetwork::new(Vec::new(), Vec::new())),
                broker: Arc::new(Broker::new(BTreeMap::new(), config.broker.clone(), config.clock.clone())),
                config: Arc::new(config.clone()),
                log: EgressLog::default(),
                client: crate::outbound::client::OutboundClient::unused(),
                trace: Default::default(),
                on_behalf: None,
                credential: None,
            },
        };
        (identity, grants)
    };
    // The registry is built on a blocking thread of the host's runtime
    // (`spawn_blocking`), where waiting on the sandbox is allowed.
    let declared = tokio::runtime::Handle::current()
        .block_on(runtime.declare(component, limits, sandbox))
        .map_err(|e| mismatch("component", format!("`declare` failed: {e}")))?;
    let Some(declared) = declared else {
        tracing::warn!(
            manifest = %manifest.file.display(),
            "the component implements fastmcp:plugin@0.1.0, which cannot declare its tools: \
             the manifest's tools are not checked against it (docs/plugins.md, migrating to 0.2.0)"
        );
        return Ok(Vec::new());
    };
    declared::compare(&manifest.tools, declared).map_err(|m| mismatch(&m.field, m.reason))
}

/// Every granted provider must be configured by the operator and bound by
/// the operator to this plugin; an injection must name a host (and port) of
/// one of the origins the operator bound the provider to.
fn check_providers(config: &HostConfig, manifest: &Manifest, broker: &Broker) -> Result<(), RegistryError> {
    for (index, grant) in manifest.grants.iter().enumerate() {
        let Some(provider) = broker.provider(&grant.provider) else {
            let configured: Vec<&str> = broker.provider_names().collect();
            let configured = if configured.is_empty() { "none".to_owned() } else { configured.join(", ") };
            // Say which file was read: a development host and `plugin
            // check` may be looking at different ones.
            let source = match config.providers_file() {
                Some(file) => format!("from {}", file.display()),
                None => format!(
                    "no providers file: {} is absent; set `broker.providers_file` (`--providers`)",
                    config.runtime_dir().join("providers.yml").display()
                ),
            };
            return Err(RegistryError::UnknownProvider {
                file: manifest.file.clone(),
                index,
                provider: grant.provider.clone(),
                configured: format!("{configured}; {source}"),
            });
        };
        let not_bound = |reason: String| RegistryError::ProviderNotBound {
            file: manifest.file.clone(),
            index,
            provider: grant.provider.clone(),
            reason,
        };
        if !provider.binds_plugin(&manifest.plugin) {
            return Err(not_bound(format!(
                "is not bound to plugin `{}` in the providers file (its `plugins`: [{}])",
                manifest.plugin,
                provider.plugins.join(", ")
            )));
        }
        if let Some(inject) = &grant.inject {
            let reachable = provider
                .origins
                .iter()
                .any(|o| o.host == inject.host && inject.port.is_none_or(|port| port == o.port));
            if !reachable {
                let origins: Vec<String> = provider.origins.iter().map(|o| o.to_string()).collect();
                let port = inject.port.map(|p| format!(":{p}")).unwrap_or_default();
                return Err(not_bound(format!(
                    "may not be injected into `{}{port}`: the providers file binds it to [{}]",
                    inject.host,
                    origins.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// The `*.yaml`/`*.yml` files of a manifests directory, sorted; none if the
/// directory does not exist.
pub fn manifest_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_manifest_file(p))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    files.sort();
    Ok(files)
}

fn is_manifest_file(path: &std::path::Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}
