//! Traces: OpenTelemetry spans from the client's request through every
//! pipeline step and the sandbox to the plugin's upstream requests, exported
//! over OTLP (HTTP/protobuf or gRPC) when an endpoint is configured.
//!
//! - [`settings`]: the `telemetry` settings and their `OTEL_*` variables;
//! - [`queue`]: the bounded, non-blocking span processor;
//! - [`context`]: W3C trace context in (headers, MCP `_meta`) and out (a
//!   plugin's requests), and the spans a call opens;
//! - [`http_client`]: the OTLP/HTTP exporters' client.
//!
//! Our `tracing` spans become OpenTelemetry spans through
//! `tracing-opentelemetry`; only spans of [`TARGET`] are exported. With
//! export off (no endpoint) the layer is not installed and the call path
//! opens no span beyond the request's own: tracing off costs nothing.

pub(crate) mod context;
pub mod http_client;
pub mod queue;
pub mod settings;

pub(crate) use context::{CallTrace, OutboundTrace};
pub use queue::TraceStats;
pub use settings::{Protocol, TraceSettings};

use crate::config::TelemetryConfig;
use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The target of every span that is exported (the log lines leave it out).
pub use crate::logging::TRACE_TARGET as TARGET;

static ON: AtomicBool = AtomicBool::new(false);
static STATS: OnceLock<TraceStats> = OnceLock::new();

/// Whether spans are exported (the call path opens its spans only then).
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The export counters (for the metrics), whether or not export is on.
pub fn stats() -> &'static TraceStats {
    STATS.get_or_init(TraceStats::default)
}

/// The running exporter: flush it before the process ends.
pub struct Tracing {
    provider: SdkTracerProvider,
    flush: queue::Flusher,
    shutdown_timeout: Duration,
    /// Where spans go (no user info or query), for the log.
    pub endpoint: String,
}

impl Tracing {
    /// Start exporting as `config` says, or `None` when export is off. Call
    /// on the Tokio runtime; the returned tracer goes to the logging layer.
    pub fn start(
        config: &TelemetryConfig,
    ) -> anyhow::Result<Option<(Self, opentelemetry_sdk::trace::Tracer)>> {
        let settings = TraceSettings::resolve(config)?;
        let Some(url) = settings.traces_url.clone() else { return Ok(None) };
        let resource = resource(&settings);
        let mut exporter = span_exporter(&settings, &url, config.export_timeout)?;
        opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
        let limits = queue::QueueLimits {
            queue: config.queue_spans,
            batch: config.batch_spans,
            interval: config.export_interval,
            timeout: config.export_timeout,
        };
        let (processor, flush) = queue::QueueProcessor::start(exporter, limits, stats().clone());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(settings.sampler())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("fastmcp");
        ON.store(true, Ordering::Relaxed);
        let endpoint = redact(&url);
        Ok(Some((Self { provider, flush, shutdown_timeout: config.shutdown_timeout, endpoint }, tracer)))
    }

    /// Send what is queued, waiting at most the shutdown timeout.
    pub async fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        self.flush.flush(self.shutdown_timeout).await;
        drop(self.provider);
    }
}

/// The resource: `service.name`, `service.version`, `service.instance.id`
/// and the configured attributes.
fn resource(settings: &TraceSettings) -> Resource {
    Resource::builder_empty()
        .with_attributes(settings.resource.clone())
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_attribute(KeyValue::new("service.instance.id", instance_id().to_owned()))
        .build()
}

/// This process's id among replicas (a fresh UUID per start).
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::now_v7().to_string())
}

fn span_exporter(
    settings: &TraceSettings,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match settings.protocol {
        Protocol::HttpProtobuf => builder
            .with_http()
            .with_endpoint(url)
            .with_timeout(timeout)
            .with_headers(settings.headers.clone())
            .with_http_client(http_client::ReqwestClient::new(timeout)?)
            .build(),
        Protocol::Grpc => builder
            .with_tonic()
            .with_channel(grpc_channel(url, timeout)?)
            .with_metadata(grpc_metadata(settings)?)
            .with_timeout(timeout)
            .build(),
    };
    exporter.context("building the OTLP span exporter")
}

/// A lazily connecting gRPC channel (TLS with the public roots for `https`).
pub(crate) fn grpc_channel(url: &str, timeout: Duration) -> anyhow::Result<tonic::transport::Channel> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .context("telemetry.endpoint: not a gRPC URL")?
        .timeout(timeout)
        .connect_timeout(timeout);
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots())
            .context("telemetry.endpoint: TLS")?;
    }
    Ok(endpoint.connect_lazy())
}

/// The export headers as gRPC metadata.
pub(crate) fn grpc_metadata(settings: &TraceSettings) -> anyhow::Result<tonic::metadata::MetadataMap> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &settings.headers {
        let name = http::HeaderName::try_from(name.to_ascii_lowercase())
            .with_context(|| format!("telemetry.headers: `{name}` is not a header name"))?;
        let value = http::HeaderValue::try_from(value.as_str())
            .with_context(|| format!("telemetry.headers: the value of `{name}` is not a header value"))?;
        headers.insert(name, value);
    }
    Ok(tonic::metadata::MetadataMap::from_headers(headers))
}

/// The rules between the telemetry and audit-export settings (the
/// configuration's own `validate` checks each setting's bounds).
pub fn check(config: &crate::config::HostConfig) -> anyhow::Result<()> {
    let traces = TraceSettings::resolve(&config.telemetry)?;
    if config.audit.export_otlp && traces.logs_endpoint().is_none() {
        anyhow::bail!("audit.export_otlp: needs telemetry.endpoint (the collector to send the records to)");
    }
    Ok(())
}

/// A URL without what may be a secret (user info, query), for logs.
pub(crate) fn redact(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("http"),
            uri.host().unwrap_or(""),
            uri.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}
