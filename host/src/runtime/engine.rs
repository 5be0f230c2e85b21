//! The one wasmtime `Engine`: component model, epoch interruption, stack
//! limits, Cranelift's incremental cache, and the pooling allocator when this
//! machine can reserve its address space (probed once, with a fallback to
//! on-demand allocation).

use super::cache::FunctionCache;
use crate::config::RuntimeConfig;
use std::sync::Arc;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Stack available to wasm: below the async fiber stack, so a runaway
/// recursion traps with a stack overflow instead of hitting the guard page.
const MAX_WASM_STACK: usize = 1 << 20;
const ASYNC_STACK: usize = 2 << 20;

/// Core instances, tables and memories a Rust `wasm32-wasip2` component uses
/// per instantiation, with headroom (the component adapters add a few).
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 16;

/// The engine and how it allocates instances.
pub struct BuiltEngine {
    /// The engine.
    pub engine: Engine,
    /// Whether the pooling allocator is in use.
    pub pooling: bool,
}

/// Build the engine, preferring the pooling allocator.
pub fn build(config: &RuntimeConfig) -> wasmtime::Result<BuiltEngine> {
    if config.pooling {
        match Engine::new(base_config(config)?.allocation_strategy(pooling(config))) {
            Ok(engine) => {
                return Ok(BuiltEngine { engine, pooling: true });
            }
            Err(e) => tracing::warn!(
                error = %e,
                "pooling allocator unavailable on this machine; using on-demand allocation"
            ),
        }
    }
    let engine = Engine::new(&base_config(config)?)?;
    Ok(BuiltEngine { engine, pooling: false })
}

fn base_config(runtime: &RuntimeConfig) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    if runtime.function_cache_bytes > 0 {
        config.enable_incremental_compilation(Arc::new(FunctionCache::new(runtime.function_cache_bytes)))?;
    }
    Ok(config)
}

fn pooling(config: &RuntimeConfig) -> InstanceAllocationStrategy {
    let slots = config.max_concurrent_calls;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots * MEMORIES_PER_COMPONENT)
        .total_tables(slots * TABLES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size((config.max_memory_mb as usize) << 20)
        // Reset slots with memset up to these sizes instead of madvise: a
        // fresh, clean memory per call without a syscall per call.
        .linear_memory_keep_resident(config.memory_keep_resident_bytes)
        .table_keep_resident(config.table_keep_resident_bytes)
        // Where the kernel offers PAGEMAP_SCAN (Linux 6.7+), reset only the
        // pages a call touched.
        .pagemap_scan(wasmtime::Enabled::Auto);
    InstanceAllocationStrategy::Pooling(pool)
}
