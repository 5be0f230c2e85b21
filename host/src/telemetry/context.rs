//! Trace context in and out, and the spans of a call.
//!
//! In: the W3C `traceparent`/`tracestate` of a request's headers, or of an
//! MCP request's `params._meta` (which wins for the MCP call's span). Out:
//! every request a plugin sends carries the host's context — the client
//! span's when export is on, the caller's own when it is off — and never one
//! the plugin set: the host removes the plugin's `traceparent` and
//! `tracestate` first.
//!
//! Span fields follow the OpenTelemetry semantic conventions (HTTP, MCP,
//! GenAI); the host's own are under `fastmcp.`. No span ever carries a
//! credential, a header value or a query string.

use super::{TARGET, on};
use crate::origin::Origin;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::{Map, Value};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C headers (and `_meta` keys).
const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The trace context of `headers`, when they carry a valid one.
pub fn from_headers(headers: &http::HeaderMap) -> Option<SpanContext> {
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// The trace context of an MCP request's `_meta`, when it carries a valid one.
pub fn from_meta(meta: &Map<String, Value>) -> Option<SpanContext> {
    if !meta.contains_key(TRACEPARENT) {
        return None;
    }
    extract(&MetaExtractor(meta))
}

fn extract(carrier: &dyn Extractor) -> Option<SpanContext> {
    let context = TraceContextPropagator::new().extract(carrier);
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

struct MetaExtractor<'a>(&'a Map<String, Value>);

impl Extractor for MetaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        [TRACEPARENT, TRACESTATE].into_iter().filter(|k| self.0.contains_key(*k)).collect()
    }
}

/// The server span of one HTTP request (closed when the request ends).
pub fn request_span(method: &http::Method, path: &str, correlation_id: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "request",
        fastmcp.correlation_id = %correlation_id,
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = path,
        http.route = Empty,
        http.response.status_code = Empty,
    )
}

/// Name a request span after the route it matched (`POST /tools/{id}/invoke`).
pub fn name_route(span: &Span, method: &http::Method, route: &str) {
    if !span.is_disabled() && span.metadata().is_some_and(|m| m.target() == TARGET && m.name() == "request") {
        span.record("http.route", route);
        // The span may already be started (its context was read): rename
        // the OpenTelemetry span itself.
        span.context().span().update_name(format!("{method} {route}"));
    }
}

/// Close a request span with its status (server errors are span errors).
pub fn end_request(span: &Span, status: u16) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// The trace of one call: its span (the request's, or the MCP call's) and
/// the context the caller sent, if any.
#[derive(Debug, Clone, Default)]
pub struct CallTrace {
    span: Option<Span>,
    remote: Option<SpanContext>,
}

impl CallTrace {
    /// A call whose span is `span` (the request's), continuing `remote`.
    pub fn new(span: Span, remote: Option<SpanContext>) -> Self {
        if on()
            && let Some(remote) = &remote
        {
            let parent = opentelemetry::Context::new().with_remote_span_context(remote.clone());
            let _ = span.set_parent(parent);
        }
        Self { span: Some(span), remote }
    }

    /// A call the host runs itself once its approvers agreed: a new trace
    /// whose root span names the approved call.
    pub fn approved(tool: &str, call_id: &str) -> Self {
        if !on() {
            return Self::default();
        }
        let span = tracing::info_span!(
            target: TARGET,
            parent: None,
            "approved",
            otel.name = format!("approved call {tool}"),
            otel.kind = "internal",
            otel.status_code = Empty,
            gen_ai.tool.name = tool,
            fastmcp.call_id = call_id,
            fastmcp.decision = Empty,
            error.type = Empty,
        );
        Self { span: Some(span), remote: None }
    }

    /// An MCP `tools/call`: its own server span, continuing `_meta`'s
    /// context if given, else the HTTP request's.
    pub fn mcp_call(
        request: &CallTrace,
        meta: Option<&Map<String, Value>>,
        tool: &str,
        session: Option<&str>,
        request_id: &str,
    ) -> Self {
        let from_meta = meta.and_then(from_meta);
        if !on() {
            return Self { span: None, remote: from_meta.or_else(|| request.remote.clone()) };
        }
        let parent = request.span.clone().unwrap_or_else(Span::none);
        let span = tracing::info_span!(
            target: TARGET,
            parent: &parent,
            "mcp",
            otel.name = format!("tools/call {tool}"),
            otel.kind = "server",
            otel.status_code = Empty,
            mcp.method.name = "tools/call",
            mcp.session.id = session,
            jsonrpc.request.id = request_id,
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = tool,
            fastmcp.decision = Empty,
            error.type = Empty,
        );
        match from_meta {
            Some(remote) => Self::new(span, Some(remote)),
            None => Self { span: Some(span), remote: request.remote.clone() },
        }
    }

    /// A child span for one pipeline step (none when export is off).
    pub fn step(&self, name: &'static str) -> Span {
        match &self.span {
            Some(parent) if on() => tracing::info_span!(
                target: TARGET,
                parent: parent,
                "step",
                otel.name = name,
                otel.status_code = Empty,
                error.type = Empty,
            ),
            _ => Span::none(),
        }
    }

    /// The span of the sandbox run: plugin, tool and limits; its outcome is
    /// recorded by [`sandbox_outcome`].
    /// Its parent is the current span (the gate's) when there is one.
    pub fn execute_span(&self, plugin: &str, tool: &str, memory_bytes: usize, timeout_ms: u128) -> Span {
        let current = Span::current();
        let parent = if current.is_disabled() { self.span.as_ref() } else { Some(&current) };
        match parent {
            Some(parent) if on() => tracing::info_span!(
                target: TARGET,
                parent: parent,
                "execute",
                otel.name = "execute",
                otel.status_code = Empty,
                error.type = Empty,
                fastmcp.plugin = plugin,
                gen_ai.tool.name = tool,
                fastmcp.sandbox.memory_limit_bytes = memory_bytes as u64,
                fastmcp.sandbox.timeout_ms = timeout_ms as u64,
                fastmcp.sandbox.outcome = Empty,
            ),
            _ => Span::none(),
        }
    }

    /// The call's trace id (hex): its span's when export is on, else the
    /// caller's, else none.
    pub fn trace_id(&self) -> Option<String> {
        if on()
            && let Some(span) = &self.span
        {
            let context = span.context();
            let ids = context.span().span_context().clone();
            if ids.is_valid() {
                return Some(ids.trace_id().to_string());
            }
        }
        self.remote.as_ref().map(|r| r.trace_id().to_string())
    }

    /// Record how the call ended on its span.
    pub fn finish(&self, decision: &str, error: Option<&str>) {
        let Some(span) = self.span.as_ref().filter(|s| !s.is_disabled()) else { return };
        span.record("fastmcp.decision", decision);
        if let Some(code) = error {
            span.record("error.type", code);
            span.record("otel.status_code", "ERROR");
        }
    }

    /// What a plugin's requests during this call continue from: `step`
    /// (the execute span) when export is on.
    pub fn outbound(&self, step: &Span) -> OutboundTrace {
        OutboundTrace { parent: on().then(|| step.clone()), remote: self.remote.clone() }
    }
}

/// How the sandbox run ended (`completed`, `timeout` — the epoch deadline —,
/// `memory_limit`, `trap`, `tool_error`, `cancelled`, …).
pub fn sandbox_outcome(span: &Span, outcome: &str) {
    if !span.is_disabled() {
        span.record("fastmcp.sandbox.outcome", outcome);
    }
}

/// Mark a step's span failed with the error's stable code.
pub fn fail(span: &Span, code: &str) {
    if !span.is_disabled() {
        span.record("error.type", code);
        span.record("otel.status_code", "ERROR");
    }
}

/// The trace context a plugin's outbound requests carry.
#[derive(Debug, Clone, Default)]
pub struct OutboundTrace {
    parent: Option<Span>,
    remote: Option<SpanContext>,
}

impl OutboundTrace {
    /// Open the client span of one request to `origin` and set the request's
    /// `traceparent`/`tracestate` (removing the plugin's own).
    pub fn start(
        &self,
        method: &str,
        origin: &Origin,
        provider: Option<&str>,
        headers: &mut http::HeaderMap,
    ) -> Span {
        headers.remove(TRACEPARENT);
        headers.remove(TRACESTATE);
        let (span, context) = match (&self.parent, &self.remote) {
            (Some(parent), _) => {
                let span = tracing::info_span!(
                    target: TARGET,
                    parent: parent,
                    "outbound",
                    otel.name = method,
                    otel.kind = "client",
                    otel.status_code = Empty,
                    http.request.method = method,
                    url.scheme = origin.scheme.as_str(),
                    server.address = %origin.host,
                    server.port = origin.port,
                    fastmcp.provider = provider,
                    http.response.status_code = Empty,
                    http.response.body.size = Empty,
                    error.type = Empty,
                );
                let context = span.context();
                (span, context)
            }
            (None, Some(remote)) => {
                (Span::none(), opentelemetry::Context::new().with_remote_span_context(remote.clone()))
            }
            (None, None) => return Span::none(),
        };
        TraceContextPropagator::new()
            .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
        span
    }
}

/// The span of fetching a brokered credential for the request of `client`
/// (none when that request is not traced). Names the provider only.
pub fn credential_span(client: &Span, provider: &str) -> Span {
    if client.is_disabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        parent: client,
        "credential",
        otel.name = "credential",
        fastmcp.provider = provider,
        otel.status_code = Empty,
        error.type = Empty,
    )
}

/// Close an outbound request's span: its status and body size, or its error.
pub fn end_outbound(span: &Span, status: Option<u16>, body_bytes: Option<u64>, error: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(status) = status {
        span.record("http.response.status_code", status);
        if status >= 400 {
            span.record("error.type", status.to_string());
            span.record("otel.status_code", "ERROR");
        }
    }
    if let Some(bytes) = body_bytes {
        span.record("http.response.body.size", bytes);
    }
    if let Some(error) = error {
        span.record("error.type", error);
        span.record("otel.status_code", "ERROR");
    }
}
