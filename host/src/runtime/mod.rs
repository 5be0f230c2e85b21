//! The WebAssembly sandbox: one engine, one linker, an `InstancePre` per
//! component, and a fresh `Store` per call with a memory cap and a deadline.
//!
//! - [`engine`] builds the engine (pooling allocator when possible);
//! - [`cache`] keeps precompiled components on disk, and compiled functions
//!   in memory;
//! - [`call_data`] is the per-call store data; `imports` the host side of
//!   `broker`, `config` and `log`; [`guest_output`] captures the guest's
//!   stdout and stderr for the log;
//! - [`bindings`] is the generated `fastmcp:plugin` world;
//! - [`contract`] tells which contract version a component implements, or
//!   what differs;
//! - [`declared`] reads and checks the tools a 0.2.0 component declares.
//!
//! Deadlines are enforced twice: an epoch callback traps the guest once its
//! deadline passes (and yields to tokio every tick, so a long call never
//! starves the others), and a tokio timeout covers time spent in host calls,
//! which epochs cannot interrupt.

pub mod bindings;
pub mod cache;
pub mod call_data;
pub mod contract;
pub mod declared;
pub mod engine;
mod guest_output;
mod imports;

use crate::config::RuntimeConfig;
use bindings::fastmcp::plugin::types::{CallContext, ToolDeclaration};
use cache::CompileCache;
use call_data::{CallData, CallGrants, CallIdentity, OutputLimits, call_context};
use contract::Contract;
use declared::DeclaredTool;
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{ComponentExportIndex, InstancePre, Linker};
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
    /// The file is not a valid component.
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Invalid {
        /// The component path.
        path: PathBuf,
        /// Why (wasmtime's message).
        reason: String,
    },
    /// The component does not implement a supported `fastmcp:plugin` world.
    #[error("{path} does not implement the `fastmcp:plugin` world: {reason}")]
    Contract {
        /// The component path.
        path: PathBuf,
        /// What differs.
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

/// Longest message of a plugin's `tool-error` kept (the rest is cut).
pub const MAX_TOOL_ERROR_MESSAGE: usize = 1024;

/// A loaded component, ready to instantiate.
pub struct LoadedComponent {
    pre: InstancePre<CallData>,
    /// The contract version it implements.
    pub contract: Contract,
    /// The export `tools.invoke`.
    invoke: ComponentExportIndex,
    /// The export `tools.declare` (0.2.0 and later).
    declare: Option<ComponentExportIndex>,
    /// What `declare` returned, once asked (a component is asked once, not
    /// at every reload that reuses it).
    declared: std::sync::OnceLock<Vec<DeclaredTool>>,
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

    /// Load a component from the bytes of the file at `path`: check the
    /// names it imports and exports (no compile for a component built for
    /// another world), compile (or take from the cache), check the contract
    /// version's functions and link it. Blocking.
    pub fn load_component_bytes(&self, path: &Path, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        let invalid =
            |e: wasmtime::Error| LoadError::Invalid { path: path.to_path_buf(), reason: format!("{e:#}") };
        let mismatch = |reason: String| LoadError::Contract { path: path.to_path_buf(), reason };
        contract::precheck(bytes).map_err(|refused| match refused {
            contract::Precheck::Unreadable(reason) => LoadError::Invalid { path: path.to_path_buf(), reason },
            contract::Precheck::Mismatch(reason) => mismatch(reason),
        })?;
        let component = self.cache.load_or_compile(&self.engine, bytes).map_err(invalid)?;
        let contract = contract::inspect(&self.engine, &component).map_err(mismatch)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            mismatch(format!("one of its imports does not match what the host provides: {e:#}"))
        })?;
        let tools = component.get_export_index(None, contract.tools_interface());
        let function = |name: &str| component.get_export_index(tools.as_ref(), name);
        let invoke = function("invoke").ok_or_else(|| mismatch("no `invoke` export".into()))?;
        let declare = match contract {
            Contract::V0_1 => None,
            Contract::V0_2 => {
                Some(function("declare").ok_or_else(|| mismatch("no `declare` export".into()))?)
            }
        };
        Ok(LoadedComponent {
            pre,
            contract,
            invoke,
            declare,
            declared: Default::default(),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        })
    }

    /// A fresh store for one call, with its memory cap and deadline.
    fn store(&self, identity: CallIdentity, grants: CallGrants, limits: CallLimits) -> Store<CallData> {
        let mut store = Store::new(
            &self.engine,
            CallData::new(
                identity,
                grants,
                limits.memory_bytes,
                OutputLimits {
                    log_lines: self.config.max_log_lines_per_call,
                    output_bytes: self.config.max_output_bytes_per_call,
                },
            ),
        );
        store.limiter(|data| &mut data.memory);
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });
        store
    }

    /// Ask a 0.2.0 component which tools it implements, once per loaded
    /// component (later asks return the first answer without running
    /// anything), in a fresh instance under `limits` set up by `sandbox`, and
    /// check that `invoke` has the contract's type. `None` for 0.1.0
    /// components, which cannot say.
    pub async fn declare<'c>(
        &self,
        component: &'c LoadedComponent,
        limits: CallLimits,
        sandbox: impl FnOnce() -> (CallIdentity, CallGrants),
    ) -> Result<Option<&'c [DeclaredTool]>, CallError> {
        let Some(declare) = &component.declare else { return Ok(None) };
        if let Some(declared) = component.declared.get() {
            return Ok(Some(declared));
        }
        let _slot = tokio::time::timeout(self.config.queue_timeout, self.slots.acquire())
            .await
            .map_err(|_| CallError::Overloaded)?
            .expect("the call semaphore is never closed");
        let (identity, grants) = sandbox();
        let mut store = self.store(identity, grants, limits);
        let timeout_ms = limits.timeout.as_millis() as u64;
        let run = async {
            let instance = component.pre.instantiate_async(&mut store).await?;
            instance.get_typed_func::<(CallContext, &str, &str), (Result<String, ToolError>,)>(
                &mut store,
                &component.invoke,
            )?;
            let declare = instance.get_typed_func::<(), (Vec<ToolDeclaration>,)>(&mut store, declare)?;
            let (list,) = declare.call_async(&mut store, ()).await?;
            wasmtime::Result::Ok(declared::read(list))
        };
        let outcome = tokio::time::timeout(limits.timeout + HOST_CALL_GRACE, run).await;
        store.data_mut().flush_output();
        let declared = match outcome {
            Err(_elapsed) => return Err(CallError::Timeout(timeout_ms)),
            Ok(Err(trap)) => return Err(classify_trap(&trap, &store, timeout_ms)),
            Ok(Ok(declared)) => declared.map_err(CallError::BadResult)?,
        };
        Ok(Some(component.declared.get_or_init(|| declared)))
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
        let mut store = self.store(identity, grants, limits);

        let timeout_ms = limits.timeout.as_millis() as u64;
        let mut instantiate = Duration::ZERO;
        let max_result = self.config.max_result_bytes;
        let run = async {
            let started = Instant::now();
            let instance = component.pre.instantiate_async(&mut store).await?;
            instantiate = started.elapsed();
            let invoke = instance.get_typed_func::<(CallContext, &str, &str), (Result<String, ToolError>,)>(
                &mut store,
                &component.invoke,
            )?;
            let (returned,) = invoke.call_async(&mut store, (context, tool, &args_json)).await?;
            wasmtime::Result::Ok(bound_answer(returned, max_result))
        };
        let outcome = tokio::time::timeout(limits.timeout + HOST_CALL_GRACE, run).await;
        // What the guest printed (a panic message, a traceback) is logged
        // however the call ended, before the trap's own line.
        store.data_mut().flush_output();
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

/// A plugin's answer within bounds: a result only if it is within
/// `max_result` bytes, error messages cut to [`MAX_TOOL_ERROR_MESSAGE`].
///
/// The answer is copied out of guest memory whole (so at most the plugin's
/// memory cap) before the bounds apply: wasmtime's typed calls run the
/// guest's `post-return` (which frees the answer) before they return, so a
/// result cannot be measured in place, only afterwards.
fn bound_answer(
    returned: Result<String, ToolError>,
    max_result: usize,
) -> Result<Result<String, ToolError>, CallError> {
    let clip = |m: String| {
        if m.len() <= MAX_TOOL_ERROR_MESSAGE {
            m
        } else {
            crate::text::clip(&m, MAX_TOOL_ERROR_MESSAGE).into_owned()
        }
    };
    Ok(match returned {
        Ok(json) if json.len() > max_result => {
            return Err(CallError::BadResult(format!(
                "result of {} bytes is over the {max_result}-byte limit",
                json.len()
            )));
        }
        Ok(json) => Ok(json),
        Err(ToolError::InvalidInput(m)) => Err(ToolError::InvalidInput(clip(m))),
        Err(ToolError::Denied(m)) => Err(ToolError::Denied(clip(m))),
        Err(ToolError::Upstream(m)) => Err(ToolError::Upstream(clip(m))),
        Err(ToolError::Internal(m)) => Err(ToolError::Internal(clip(m))),
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
