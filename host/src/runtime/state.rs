//! Per-call store data: the sandbox's (empty) WASI context, the memory
//! limiter, and the host side of the `broker` and `log` imports.
//!
//! A `CallState` lives exactly as long as one call's `Store`; nothing in it is
//! shared with any other call, caller or tenant.

use super::bindings::fastmcp::plugin::{broker, log, types};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Longest plugin log message kept; the rest is cut.
const MAX_LOG_MESSAGE: usize = 4096;

/// Who a call is for, as the plugin and the logs see it.
#[derive(Debug, Clone)]
pub struct CallIdentity {
    /// The request's correlation id.
    pub correlation_id: String,
    /// The caller's tenant.
    pub tenant: String,
    /// The caller's subject.
    pub subject: String,
    /// The tool id being called.
    pub tool_id: String,
}

/// The data of one call's `Store`.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    identity: CallIdentity,
    log_lines_left: u32,
}

impl CallState {
    /// Fresh state: WASI with no files, no environment, no sockets, no stdio.
    pub fn new(identity: CallIdentity, memory_bytes: usize, max_log_lines: u32) -> Self {
        let wasi =
            WasiCtxBuilder::new().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            identity,
            log_lines_left: max_log_lines,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// `StoreLimits` that remembers whether it refused memory, so a trap that
/// follows (an allocator aborting) is reported as "memory limit exceeded".
pub struct MemoryLimiter {
    limits: StoreLimits,
    /// Bytes allowed per linear memory.
    pub max_bytes: usize,
    /// A growth request was refused.
    pub refused: bool,
}

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        let limits = StoreLimitsBuilder::new().memory_size(max_bytes).build();
        Self { limits, max_bytes, refused: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

impl types::Host for CallState {}

impl broker::Host for CallState {
    /// No provider is granted until token brokering is configured.
    async fn get_token(
        &mut self,
        provider: String,
        _scopes: Vec<String>,
    ) -> Result<broker::Token, broker::BrokerError> {
        Err(broker::BrokerError::NotGranted(format!("provider `{provider}` is not granted to this plugin")))
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let message = truncate(&message, MAX_LOG_MESSAGE);
        let CallIdentity { correlation_id, tool_id, .. } = &self.identity;
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(target: "fastmcp::plugin", correlation_id, tool = tool_id, "{message}")
            };
        }
        match level {
            log::Level::Trace => emit!(trace),
            log::Level::Debug => emit!(debug),
            log::Level::Info => emit!(info),
            log::Level::Warn => emit!(warn),
            log::Level::Error => emit!(error),
        }
        if self.log_lines_left == 0 {
            tracing::warn!(
                correlation_id,
                tool = tool_id,
                "plugin log limit reached; dropping further lines"
            );
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The WIT call context for an identity.
pub fn call_context(identity: &CallIdentity) -> types::CallContext {
    types::CallContext {
        correlation_id: identity.correlation_id.clone(),
        tenant: identity.tenant.clone(),
        subject: identity.subject.clone(),
    }
}
