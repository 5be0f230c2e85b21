//! The span processor: finished spans go into a bounded queue that a
//! background task drains in batches to the OTLP exporter. A call never waits
//! on the collector: when the queue is full the span is dropped and counted,
//! and a collector that is down, slow or refusing only makes exports fail
//! (counted, and warned about at most once a minute).
//!
//! The SDK's own batch processor runs its exports on a thread of its own
//! without a Tokio runtime (so neither the gRPC exporter nor an async HTTP
//! client works under it) and does not expose its drop count; this one runs
//! on the host's runtime and feeds the metrics.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use prometheus_client::metrics::counter::Counter;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Counts the metrics show (`fastmcp_trace_spans_*`).
#[derive(Debug, Clone, Default)]
pub struct TraceStats {
    /// Spans the collector accepted.
    pub exported: Counter,
    /// Spans dropped: the queue was full, or their export failed.
    pub dropped: Counter,
    /// Exports that failed or timed out.
    pub failed_exports: Counter,
}

/// How the queue drains.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Spans waiting at most.
    pub queue: usize,
    /// Spans per export.
    pub batch: usize,
    /// Longest wait before a partial batch is sent.
    pub interval: Duration,
    /// Longest one export may take.
    pub timeout: Duration,
}

/// A flush request: answered once everything queued before it was exported
/// (or given up on).
type Flush = oneshot::Sender<()>;

/// The processor the tracer provider calls.
#[derive(Debug)]
pub struct QueueProcessor {
    spans: mpsc::Sender<SpanData>,
    flushes: mpsc::UnboundedSender<Flush>,
    stats: TraceStats,
}

impl QueueProcessor {
    /// Start the draining task on the current Tokio runtime; the
    /// [`Flusher`] waits for what is queued to be sent.
    pub fn start<E: SpanExporter + 'static>(
        exporter: E,
        limits: QueueLimits,
        stats: TraceStats,
    ) -> (Self, Flusher) {
        let (spans, queue) = mpsc::channel(limits.queue.max(1));
        let (flushes, flush_requests) = mpsc::unbounded_channel();
        tokio::spawn(drain(exporter, queue, flush_requests, limits, stats.clone()));
        (Self { spans, flushes: flushes.clone(), stats }, Flusher(flushes))
    }
}

/// Flushes a [`QueueProcessor`] from outside the tracer provider.
#[derive(Debug, Clone)]
pub struct Flusher(mpsc::UnboundedSender<Flush>);

impl Flusher {
    /// Export everything queued so far; resolves when done or after `bound`.
    pub async fn flush(&self, bound: Duration) {
        let (done, exported) = oneshot::channel();
        if self.0.send(done).is_ok() {
            let _ = tokio::time::timeout(bound, exported).await;
        }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            self.stats.dropped.inc();
        }
    }

    /// Asks for a flush without waiting (the provider calls this on a
    /// runtime thread); [`QueueProcessor::flush`] is the one that waits.
    fn force_flush(&self) -> OTelSdkResult {
        let (done, _) = oneshot::channel();
        let _ = self.flushes.send(done);
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }
}

/// The background task: batches by size or interval, one export at a time.
async fn drain<E: SpanExporter>(
    exporter: E,
    mut queue: mpsc::Receiver<SpanData>,
    mut flushes: mpsc::UnboundedReceiver<Flush>,
    limits: QueueLimits,
    stats: TraceStats,
) {
    let warnings = Mutex::new(None::<Instant>);
    let mut batch = Vec::with_capacity(limits.batch);
    let mut tick = tokio::time::interval(limits.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            span = queue.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= limits.batch {
                        export(&exporter, &mut batch, limits.timeout, &stats, &warnings).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => export(&exporter, &mut batch, limits.timeout, &stats, &warnings).await,
            Some(done) = flushes.recv() => {
                while let Ok(span) = queue.try_recv() {
                    batch.push(span);
                    if batch.len() >= limits.batch {
                        export(&exporter, &mut batch, limits.timeout, &stats, &warnings).await;
                    }
                }
                export(&exporter, &mut batch, limits.timeout, &stats, &warnings).await;
                let _ = done.send(());
            }
        }
    }
    export(&exporter, &mut batch, limits.timeout, &stats, &warnings).await;
}

/// Send `batch` (emptying it); failures are counted, warned about at most
/// once a minute.
async fn export<E: SpanExporter>(
    exporter: &E,
    batch: &mut Vec<SpanData>,
    timeout: Duration,
    stats: &TraceStats,
    last_warning: &Mutex<Option<Instant>>,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len() as u64;
    let error = match tokio::time::timeout(timeout, exporter.export(spans)).await {
        Ok(Ok(())) => {
            stats.exported.inc_by(count);
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", timeout.as_millis()),
    };
    stats.failed_exports.inc();
    stats.dropped.inc_by(count);
    let mut last = last_warning.lock().expect("the warning clock is never poisoned");
    if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *last = Some(Instant::now());
        tracing::warn!(%error, spans = count, "trace export failed; spans dropped (warned at most once a minute)");
    }
}
