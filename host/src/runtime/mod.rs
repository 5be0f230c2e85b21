//! The WebAssembly sandbox: one engine, one linker, an `InstancePre` per
//! component, and a fresh `Store` per call with a memory cap and a deadline.
//!
//! - [`engine`] builds the engine (pooling allocator when possible);
//! - [`cache`] keeps precompiled components on disk;
//! - [`state`] is the per-call store data and the host imports;
//! - [`bindings`] is the generated `fastmcp:plugin` world.
//!
//! Deadlines are enforced twice: an epoch callback traps the guest once its
//! deadline passes (and yields to tokio every tick, so a long call never
//! starves the others), and a tokio timeout covers time spent in host calls,
//! which epochs cannot interrupt.

pub mod bindings;
pub mod cache;
pub mod call_data;
pub mod engine;
mod imports;

use crate::config::RuntimeConfig;
use bindings::PluginPre;
use bindings::fastmcp::plugin::types::CallContext;
use cache::CompileCache;
use call_data::{CallData, CallGrants, CallIdentity, call_context};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{ComponentExportIndex, ComponentType, Lift, Linker, WasmStr};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

pub use bindings::fastmcp::plugin::types::ToolError;

/// Extra time the tokio timeout allows past the deadline before it cuts a
/// call that is stuck in a host import.
const HOST_CALL_GRACE: Duration = Duration::from_millis(50);

/// A component that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read component {path}: {cause}")]
    Read {
        /// The component path.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not a valid component, or does not implement the world.
    #[error("{path} is not a valid `fastmcp:plugin/plugin` component: {reason}")]
    Invalid {
        /// The component path.
        path: PathBuf,
        /// Why (wasmtime's message).
        reason: String,
    },
}

/// How one call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No call slot was free within the queue timeout.
    #[error("no free call slot")]
    Overloaded,
    /// The call ran past its deadline.
    #[error("deadline of {0} ms exceeded")]
    Timeout(u64),
    /// The guest tried to grow memory past its cap and then trapped.
    #[error("exceeded its memory limit of {} MiB", .0 >> 20)]
    MemoryLimit(usize),
    /// The guest overflowed its stack.
    #[error("stack overflow")]
    StackOverflow,
    /// The guest trapped (a panic, `unreachable`, a bad access…).
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin returned a typed error.
    #[error("tool error: {0:?}")]
    Tool(ToolError),
    /// The plugin returned something that is not a JSON document.
    #[error("returned an invalid result: {0}")]
    BadResult(String),
}

/// Longest message of a plugin's `tool-error` taken from guest memory.
pub const MAX_TOOL_ERROR_MESSAGE: usize = 1024;

/// The `tools` interface every plugin exports.
const TOOLS_INTERFACE: &str = "fastmcp:plugin/tools@0.1.0";

/// `tool-error` as it lies in guest memory: the messages are measured and
/// cut before they are copied out.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum RawToolError {
    #[component(name = "invalid-input")]
    InvalidInput(WasmStr),
    #[component(name = "denied")]
    Denied(WasmStr),
    #[component(name = "upstream")]
    Upstream(WasmStr),
    #[component(name = "internal")]
    Internal(WasmStr),
}

/// A loaded component, ready to instantiate.
pub struct LoadedComponent {
    pre: PluginPre<CallData>,
    /// The export `tools.invoke`.
    invoke: ComponentExportIndex,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
}

/// Per-call limits, from the manifest.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Linear-memory cap in bytes.
    pub memory_bytes: usize,
    /// Deadline.
    pub timeout: Duration,
}

/// What a successful call produced, with timings.
#[derive(Debug)]
pub struct CallOutput {
    /// The tool's JSON result.
    pub result: serde_json::Value,
    /// Time spent instantiating.
    pub instantiate: Duration,
}

/// The sandbox.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallData>,
    cache: CompileCache,
    slots: Arc<Semaphore>,
    config: RuntimeConfig,
    pooling: bool,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Build the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig, cache_dir: PathBuf) -> anyhow::Result<Self> {
        let built = engine::build(&config)?;
        let mut linker = Linker::<CallData>::new(&built.engine);
        link_imports(&mut linker)?;
        let cache = CompileCache::new(cache_dir, &built.engine);
        let ticker = EpochTicker::start(built.engine.clone(), config.epoch_tick);
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.max_concurrent_calls as usize)),
            engine: built.engine,
            linker,
            cache,
            config,
            pooling: built.pooling,
            _ticker: ticker,
        })
    }

    /// The sandbox configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compile-cache counters.
    pub fn cache_stats(&self) -> &cache::CacheStats {
        &self.cache.stats
    }

    /// Calls running right now.
    pub fn calls_in_flight(&self) -> usize {
        self.config.max_concurrent_calls as usize - self.slots.available_permits()
    }

    /// Load a component from the bytes of the file at `path`: compile (or
    /// take from the cache), link, and check that it implements the world.
    /// Blocking.
    pub fn load_component_bytes(&self, path: &Path, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        let invalid =
            |e: wasmtime::Error| LoadError::Invalid { path: path.to_path_buf(), reason: format!("{e:#}") };
        let component = self.cache.load_or_compile(&self.engine, bytes).map_err(invalid)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = PluginPre::new(instance_pre).map_err(invalid)?;
        let invoke = component
            .get_export_index(None, TOOLS_INTERFACE)
            .and_then(|tools| component.get_export_index(Some(&tools), "invoke"))
            .ok_or_else(|| invalid(wasmtime::format_err!("no export `{TOOLS_INTERFACE}#invoke`")))?;
        Ok(LoadedComponent { pre, invoke, sha256: hex::encode(sha2::Sha256::digest(bytes)) })
    }

    /// Call `tool` in a fresh instance of `component`.
    pub async fn call(
        &self,
        component: &LoadedComponent,
        limits: CallLimits,
        identity: CallIdentity,
        grants: CallGrants,
        tool: &str,
        args_json: String,
    ) -> Result<CallOutput, CallError> {
        let _slot = tokio::time::timeout(self.config.queue_timeout, self.slots.acquire())
            .await
            .map_err(|_| CallError::Overloaded)?
            .expect("the call semaphore is never closed");

        let context = call_context(&identity);
        let mut store = Store::new(
            &self.engine,
            CallData::new(identity, grants, limits.memory_bytes, self.config.max_log_lines_per_call),
        );
        store.limiter(|data| &mut data.memory);
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });

        let timeout_ms = limits.timeout.as_millis() as u64;
        let mut instantiate = Duration::ZERO;
        let max_result = self.config.max_result_bytes;
        let run = async {
            let started = Instant::now();
            let instance = component.pre.instance_pre().instantiate_async(&mut store).await?;
            instantiate = started.elapsed();
            let invoke = instance
                .get_typed_func::<(CallContext, &str, &str), (Result<WasmStr, RawToolError>,)>(
                    &mut store,
                    &component.invoke,
                )?;
            let (returned,) = invoke.call_async(&mut store, (context, tool, &args_json)).await?;
            wasmtime::Result::Ok(copy_out(&store, returned, max_result))
        };
        let outcome = tokio::time::timeout(limits.timeout + HOST_CALL_GRACE, run).await;
        let returned = match outcome {
            Err(_elapsed) => return Err(CallError::Timeout(timeout_ms)),
            Ok(Err(trap)) => return Err(classify_trap(&trap, &store, timeout_ms)),
            Ok(Ok(returned)) => returned?,
        };
        // A token the broker handed to this call never leaves the host, even
        // if the plugin puts it in its result or error.
        let returned = store.data().redact_result(returned);
        let json = returned.map_err(CallError::Tool)?;
        let result =
            serde_json::from_str(&json).map_err(|e| CallError::BadResult(format!("not JSON: {e}")))?;
        Ok(CallOutput { result, instantiate })
    }
}

/// Copy a plugin's answer out of its memory: a result only if it is within
/// `max_result` bytes (measured in place), error messages cut to
/// [`MAX_TOOL_ERROR_MESSAGE`].
fn copy_out(
    store: &Store<CallData>,
    returned: Result<WasmStr, RawToolError>,
    max_result: usize,
) -> Result<Result<String, ToolError>, CallError> {
    let read = |s: &WasmStr| s.to_str(store).map_err(|e| CallError::BadResult(format!("{e:#}")));
    let message = |s: &WasmStr| read(s).map(|m| crate::text::clip(&m, MAX_TOOL_ERROR_MESSAGE).into_owned());
    Ok(match returned {
        Ok(json) => {
            let json = read(&json)?;
            if json.len() > max_result {
                return Err(CallError::BadResult(format!(
                    "result of {} bytes is over the {max_result}-byte limit",
                    json.len()
                )));
            }
            Ok(json.into_owned())
        }
        Err(RawToolError::InvalidInput(m)) => Err(ToolError::InvalidInput(message(&m)?)),
        Err(RawToolError::Denied(m)) => Err(ToolError::Denied(message(&m)?)),
        Err(RawToolError::Upstream(m)) => Err(ToolError::Upstream(message(&m)?)),
        Err(RawToolError::Internal(m)) => Err(ToolError::Internal(message(&m)?)),
    })
}

/// Link everything a plugin may import into `linker`.
pub fn link_imports(linker: &mut Linker<CallData>) -> wasmtime::Result<()> {
    // A guest's `std` imports wasi:cli, wasi:io, wasi:filesystem and friends
    // even when unused; they are linked, but `CallData` grants nothing
    // through them.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    // wasi:http for every plugin; what a request may reach is decided per
    // call by the plugin's own `OutboundHooks` (nothing without `network.allow`).
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    // The plugin's own imports, bounded before anything is copied.
    imports::add_to_linker(linker)
}

/// Turn a wasmtime error from instantiate/call into what the caller sees.
fn classify_trap(error: &wasmtime::Error, store: &Store<CallData>, timeout_ms: u64) -> CallError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout(timeout_ms),
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        _ if store.data().memory.refused => CallError::MemoryLimit(store.data().memory.max_bytes),
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Trap(format!("{error:#}")),
    }
}

/// Increments the engine's epoch every tick on a dedicated OS thread (not a
/// tokio task: a busy runtime must not delay deadlines). Stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("fastmcp-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
