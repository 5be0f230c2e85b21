//! The application state shared by every request: configuration, the
//! sandbox, the current registry snapshot and the metrics.

use crate::config::HostConfig;
use crate::metrics::Metrics;
use crate::registry::RegistrySnapshot;
use crate::runtime::Runtime;
use anyhow::Context;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::SystemTime;

/// Cheap to clone; all clones share one host.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: HostConfig,
    runtime: Runtime,
    registry: ArcSwap<RegistrySnapshot>,
    metrics: Metrics,
    started_at: SystemTime,
}

impl AppState {
    /// Build the sandbox and load every manifest under the root. Fails, naming
    /// the file, field and reason, if any manifest or component is invalid.
    pub async fn start(config: HostConfig) -> anyhow::Result<Self> {
        tokio::task::spawn_blocking(move || Self::start_blocking(config))
            .await
            .context("startup task panicked")?
    }

    fn start_blocking(config: HostConfig) -> anyhow::Result<Self> {
        let runtime = Runtime::new(config.runtime.clone(), config.compile_cache_dir())
            .context("building the WebAssembly runtime")?;
        let registry = RegistrySnapshot::load(&config, &runtime, 1)?;
        tracing::info!(
            root = %config.root.display(),
            plugins = registry.plugins().count(),
            tools = registry.tools().count(),
            pooling = runtime.pooling(),
            compile_cache_hits = runtime.cache_stats().hits.get(),
            compile_cache_misses = runtime.cache_stats().misses.get(),
            "registry loaded"
        );
        let metrics = Metrics::new(&runtime);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                runtime,
                registry: ArcSwap::from_pointee(registry),
                metrics,
                started_at: SystemTime::now(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The sandbox.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The current registry snapshot; keep the `Arc` for the whole call.
    pub fn registry(&self) -> Arc<RegistrySnapshot> {
        self.inner.registry.load_full()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// When the host started.
    pub fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }
}
