//! Prometheus metrics: calls, outcomes and latency per tool, instantiation
//! time, sandbox occupancy, provider token fetches, and fair-share refusals
//! per resource. Rendered in the text
//! exposition format at `GET /metrics`.
//!
//! Tool labels only ever carry ids of tools in the registry, so a client
//! cannot grow the label set by calling made-up ids.

use crate::broker::Broker;
use crate::runtime::Runtime;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Labels of a per-tool call counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Tool id.
    pub tool: String,
    /// Stable outcome: `completed` or an error code.
    pub outcome: String,
}

/// Labels of per-tool histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    /// Tool id.
    pub tool: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~26 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    calls: Family<OutcomeLabels, Counter>,
    call_seconds: HistogramFamily<ToolLabels>,
    instantiate_seconds: Histogram,
    in_flight: Gauge,
    slots: Gauge,
    log_drops: Counter,
    log_drops_source: Option<crate::logging::LogDrops>,
    audit_log: crate::audit::AuditLog,
    audit_export: crate::audit::export::ExportStatus,
    audit_seq: Gauge,
    export_delivered: Family<SinkLabels, Gauge>,
    export_lag: Family<SinkLabels, Gauge>,
    /// The approval webhook's events, by outcome (the webhook counts them).
    pub approval_webhook: crate::approvals::webhook::WebhookCounters,
}

/// Labels of the audit export's gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// `http` or `otlp`.
    pub sink: String,
}

impl Metrics {
    /// Metrics for a host running `runtime` and brokering with `broker`.
    pub fn new(
        runtime: &Runtime,
        broker: &Broker,
        audit_log: &crate::audit::AuditLog,
        audit_export: crate::audit::export::ExportStatus,
        shares: &crate::share::Shares,
        outbound: &crate::outbound::pool::PoolStats,
        log_drops_source: Option<crate::logging::LogDrops>,
    ) -> Self {
        let audit = audit_log.batch_counters();
        let mut registry = Registry::with_prefix("fastmcp");
        let calls = Family::<OutcomeLabels, Counter>::default();
        let call_seconds = HistogramFamily::<ToolLabels>::new_with_constructor(latency_histogram);
        let instantiate_seconds = latency_histogram();
        let in_flight = Gauge::default();
        let slots = Gauge::default();
        registry.register("tool_calls", "Tool calls by tool and outcome", calls.clone());
        registry.register(
            "tool_call_duration_seconds",
            "Whole call-path latency per tool (validation to result)",
            call_seconds.clone(),
        );
        registry.register(
            "instantiate_duration_seconds",
            "Time to instantiate a component for one call",
            instantiate_seconds.clone(),
        );
        registry.register("sandbox_calls_in_flight", "Calls holding a sandbox slot", in_flight.clone());
        registry.register("sandbox_slots", "Sandbox slots (pool capacity)", slots.clone());
        let cache = runtime.cache_stats();
        registry.register("compile_cache_hits", "Components loaded precompiled", cache.hits.clone());
        registry.register("compile_cache_misses", "Components compiled", cache.misses.clone());
        registry.register(
            "provider_token_fetches",
            "Token fetches from providers' OAuth endpoints (cache misses)",
            broker.fetches().clone(),
        );
        registry.register(
            "audit_batches",
            "Audit batches made durable (one fsync each)",
            audit.batches.clone(),
        );
        registry.register("audit_batched_records", "Audit records in those batches", audit.records.clone());
        registry.register(
            "share_refusals",
            "Requests refused because their caller held its fair share of a resource",
            shares.refusal_counter(),
        );
        registry.register(
            "outbound_connections_opened",
            "Connections opened for plugins' outbound requests",
            outbound.opened.clone(),
        );
        registry.register(
            "outbound_connections_reused",
            "Plugins' outbound requests sent on a kept connection",
            outbound.reused.clone(),
        );
        let traces = crate::telemetry::stats();
        registry.register(
            "trace_spans_exported",
            "Spans the OTLP collector accepted",
            traces.exported.clone(),
        );
        registry.register(
            "trace_spans_dropped",
            "Spans dropped: the export queue was full or their export failed",
            traces.dropped.clone(),
        );
        registry.register(
            "trace_exports_failed",
            "Span exports that failed or timed out",
            traces.failed_exports.clone(),
        );
        let log_drops = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the non-blocking writer's buffer was full",
            log_drops.clone(),
        );
        let audit_seq = Gauge::default();
        registry.register("audit_seq", "The last durable audit record", audit_seq.clone());
        let export_delivered = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "audit_export_delivered_seq",
            "The last audit record each export sink accepted",
            export_delivered.clone(),
        );
        let export_lag = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "audit_export_lag_records",
            "Durable audit records each export sink has not accepted yet",
            export_lag.clone(),
        );
        let approval_webhook = crate::approvals::webhook::WebhookCounters::default();
        for (name, help, counter) in [
            ("approval_webhook_delivered", "Approval webhook events accepted", &approval_webhook.delivered),
            (
                "approval_webhook_failed",
                "Approval webhook events given up after every retry",
                &approval_webhook.failed,
            ),
            (
                "approval_webhook_dropped",
                "Approval webhook events dropped (queue full)",
                &approval_webhook.dropped,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        Self {
            approval_webhook,
            audit_log: audit_log.clone(),
            audit_export,
            audit_seq,
            export_delivered,
            export_lag,
            registry,
            calls,
            call_seconds,
            instantiate_seconds,
            in_flight,
            slots,
            log_drops,
            log_drops_source,
        }
    }

    /// Count a call's outcome and its latency.
    pub fn record_call(&self, tool: &str, outcome: &str, elapsed: Duration) {
        self.calls.get_or_create(&OutcomeLabels { tool: tool.to_owned(), outcome: outcome.to_owned() }).inc();
        self.call_seconds.get_or_create(&ToolLabels { tool: tool.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// Record one instantiation.
    pub fn record_instantiate(&self, elapsed: Duration) {
        self.instantiate_seconds.observe(elapsed.as_secs_f64());
    }

    /// Render the text exposition format, sampling the runtime's gauges.
    pub fn render(&self, runtime: &Runtime) -> String {
        self.in_flight.set(runtime.calls_in_flight() as i64);
        self.slots.set(i64::from(runtime.config().max_concurrent_calls));
        if let Some(source) = &self.log_drops_source {
            let (now, seen) = (source.count(), self.log_drops.get());
            if now > seen {
                self.log_drops.inc_by(now - seen);
            }
        }
        let seq = self.audit_log.status().seq;
        self.audit_seq.set(seq as i64);
        for sink in self.audit_export.0.iter() {
            let labels = SinkLabels { sink: sink.name.to_owned() };
            self.export_delivered.get_or_create(&labels).set(sink.delivered() as i64);
            self.export_lag.get_or_create(&labels).set(seq.saturating_sub(sink.delivered()) as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
