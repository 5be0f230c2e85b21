//! Per-call store data: the sandbox's (empty) WASI context — whose standard
//! output and error are captured ([`super::guest_output`]) — the `wasi:http`
//! context with this call's [`OutboundHooks`], the memory cap, and the
//! host side of the `broker`, `config` and `log` imports.
//!
//! A `CallData` lives exactly as long as one call's `Store`; nothing in it is
//! shared with any other call, caller or tenant.

use super::bindings::fastmcp::plugin::{broker, log, types};
use super::guest_output::{self, Capture, GuestOutput, Stream};
use crate::broker::BrokerError;
use crate::outbound::Egress;
use crate::outbound::hooks::OutboundHooks;
use crate::outbound::log::EgressEvent;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest plugin log message kept; the rest is cut.
pub const MAX_LOG_MESSAGE: usize = 4096;

/// Most bytes (in memory) of the headers of one outgoing request or response.
const MAX_HEADER_FIELDS_BYTES: usize = 64 * 1024;

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

/// What a plugin is given besides its arguments: its manifest `config:`
/// values, and brokering and outbound HTTP within its grants.
#[derive(Clone)]
pub struct CallGrants {
    /// The manifest's `config:` map.
    pub config: Arc<BTreeMap<String, String>>,
    /// Broker, network rules and this call's egress log.
    pub egress: Egress,
}

/// The data of one call's `Store`.
pub struct CallData {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    table: ResourceTable,
    pub(super) memory: MemoryCap,
    identity: CallIdentity,
    /// The manifest's `config:` map (the egress half of the grants lives in
    /// `hooks`).
    config: Arc<BTreeMap<String, String>>,
    /// Tokens `broker.get-token` gave this call: redacted from its log lines,
    /// result and errors.
    issued: Vec<crate::broker::providers::Secret>,
    log_lines_left: u32,
    /// What the guest wrote to its standard output and error.
    output: Capture,
}

/// How much a call may write to the host's log.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    /// Lines, through the `log` import and from stdout and stderr together.
    pub log_lines: u32,
    /// Bytes of stdout and stderr kept (together).
    pub output_bytes: usize,
}

/// What replaces a brokered token that a plugin tried to pass on.
pub const REDACTED: &str = "[redacted credential]";

impl CallData {
    /// Fresh state: WASI with no files, no environment, no sockets, no
    /// stdin, and stdout and stderr captured up to `limits.output_bytes`;
    /// outbound HTTP only as the plugin's grants allow.
    pub fn new(
        identity: CallIdentity,
        grants: CallGrants,
        memory_bytes: usize,
        limits: OutputLimits,
    ) -> Self {
        let output = guest_output::capture(limits.output_bytes);
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stdout(GuestOutput::new(&output, Stream::Stdout))
            .stderr(GuestOutput::new(&output, Stream::Stderr))
            .build();
        Self {
            wasi,
            http: {
                let mut http = WasiHttpCtx::new();
                http.set_field_size_limit(MAX_HEADER_FIELDS_BYTES);
                http
            },
            hooks: OutboundHooks::new(
                grants.egress,
                identity.correlation_id.clone(),
                identity.tool_id.clone(),
            ),
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            identity,
            config: grants.config,
            issued: Vec::new(),
            log_lines_left: limits.log_lines,
            output,
        }
    }

    /// Write what the guest printed to the log, line by line, within the
    /// call's line budget (tokens it was issued redacted); called once the
    /// call has ended, however it ended.
    pub(super) fn flush_output(&mut self) {
        let captured = std::mem::take(&mut *self.output.lock().expect("guest output lock"));
        for (stream, bytes) in [(Stream::Stdout, &captured.stdout), (Stream::Stderr, &captured.stderr)] {
            for line in guest_output::lines(bytes) {
                if !self.take_log_line() {
                    return;
                }
                let line = crate::text::clip(&line, MAX_LOG_MESSAGE).into_owned();
                let line = self.redact(&line);
                let CallIdentity { correlation_id, tool_id, .. } = &self.identity;
                let stream = stream.as_str();
                match stream {
                    "stdout" => {
                        tracing::info!(target: "fastmcp::plugin", correlation_id, tool = tool_id, stream, "{line}")
                    }
                    _ => {
                        tracing::warn!(target: "fastmcp::plugin", correlation_id, tool = tool_id, stream, "{line}")
                    }
                }
            }
        }
        if captured.dropped > 0 && self.take_log_line() {
            let CallIdentity { correlation_id, tool_id, .. } = &self.identity;
            tracing::warn!(
                target: "fastmcp::plugin",
                correlation_id,
                tool = tool_id,
                dropped_bytes = captured.dropped,
                "plugin output over the call's budget was dropped"
            );
        }
    }

    /// `text` with every token issued to this call replaced by [`REDACTED`].
    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for token in &self.issued {
            if text.contains(token.expose()) {
                text = std::borrow::Cow::Owned(text.replace(token.expose(), REDACTED));
            }
        }
        text
    }

    /// A call's return value with issued tokens redacted.
    pub fn redact_result(
        &self,
        returned: Result<String, types::ToolError>,
    ) -> Result<String, types::ToolError> {
        use types::ToolError::*;
        if self.issued.is_empty() {
            return returned;
        }
        let redact = |s: String| self.redact(&s).into_owned();
        match returned {
            Ok(json) => Ok(redact(json)),
            Err(InvalidInput(m)) => Err(InvalidInput(redact(m))),
            Err(Denied(m)) => Err(Denied(redact(m))),
            Err(Upstream(m)) => Err(Upstream(redact(m))),
            Err(Internal(m)) => Err(Internal(redact(m))),
        }
    }
}

impl WasiView for CallData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CallData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// `StoreLimits` that remembers whether it refused memory, so a trap that
/// follows (an allocator aborting) is reported as "memory limit exceeded".
pub struct MemoryCap {
    limits: StoreLimits,
    /// Bytes allowed per linear memory.
    pub max_bytes: usize,
    /// A growth request was refused.
    pub refused: bool,
}

impl MemoryCap {
    fn new(max_bytes: usize) -> Self {
        let limits = StoreLimitsBuilder::new().memory_size(max_bytes).build();
        Self { limits, max_bytes, refused: false }
    }
}

impl ResourceLimiter for MemoryCap {
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

impl CallData {
    /// `broker.get-token`, with the plugin's strings already bounded by the
    /// caller ([`super::imports`]): a token within the plugin's grants; every
    /// answer is recorded (by fingerprint) in the call's egress log.
    pub(super) async fn get_token(
        &mut self,
        provider: String,
        scopes: Vec<String>,
    ) -> Result<broker::Token, broker::BrokerError> {
        let egress = self.hooks.egress().clone();
        match egress.broker.token_for_plugin(&egress.network.grants, &provider, &scopes).await {
            Ok(issued) => {
                egress.log.push(EgressEvent::Token { provider, scopes, fingerprint: issued.fingerprint });
                if !self.issued.contains(&issued.value) {
                    self.issued.push(issued.value.clone());
                }
                let expires_in_s =
                    issued.expires_in.map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32);
                Ok(broker::Token { value: issued.value.expose().to_owned(), expires_in_s })
            }
            Err(e) => {
                self.refuse_token(provider, scopes, e.to_string());
                Err(match e {
                    BrokerError::NotGranted(reason) => broker::BrokerError::NotGranted(reason),
                    BrokerError::Unavailable(reason) => broker::BrokerError::Unavailable(reason),
                })
            }
        }
    }

    /// Record a refused token request: in the egress log (bounded there) and
    /// in a log line that counts against the call's log budget.
    pub(super) fn refuse_token(&mut self, provider: String, scopes: Vec<String>, reason: String) {
        if self.take_log_line() {
            tracing::warn!(
                correlation_id = %self.identity.correlation_id,
                tool = %self.identity.tool_id,
                provider = %crate::text::clip(&provider, 64),
                reason = %crate::text::clip(&reason, 256),
                "broker refused a token"
            );
        }
        self.hooks.egress().log.push(EgressEvent::TokenRefused { provider, scopes, reason });
    }

    /// `config.get`.
    pub(super) fn config_value(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    /// `log.log`, with the message already cut to [`MAX_LOG_MESSAGE`].
    pub(super) fn log(&mut self, level: log::Level, message: &str) {
        if !self.take_log_line() {
            return;
        }
        let message = self.redact(message);
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
    }

    /// Spend one line of the call's log budget (the plugin's own lines and
    /// those the host writes on its behalf); `false` once it is spent.
    fn take_log_line(&mut self) -> bool {
        if self.log_lines_left == 0 {
            return false;
        }
        self.log_lines_left -= 1;
        if self.log_lines_left == 0 {
            let CallIdentity { correlation_id, tool_id, .. } = &self.identity;
            tracing::warn!(
                correlation_id,
                tool = tool_id,
                "plugin log limit reached; dropping further lines"
            );
        }
        true
    }
}

/// The WIT call context for an identity.
pub fn call_context(identity: &CallIdentity) -> types::CallContext {
    types::CallContext {
        correlation_id: identity.correlation_id.clone(),
        tenant: identity.tenant.clone(),
        subject: identity.subject.clone(),
    }
}
