//! Logging off the request path: JSON lines (`tracing`) go through a
//! non-blocking writer — a background thread owns stdout — with a bounded
//! buffer. A request never waits on a slow or blocked stdout: when the buffer
//! is full, lines are dropped and counted ([`LogDrops`], exported as the
//! metric `fastmcp_log_lines_dropped_total`).

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// The target of the spans exported as traces ([`crate::telemetry`]);
/// they are never log lines.
pub const TRACE_TARGET: &str = "fastmcp::trace";

/// Lines the writer buffers before it drops.
pub const BUFFERED_LINES: usize = 65_536;

/// Bytes the writer gathers before writing to stdout (it also writes
/// whenever it has nothing more to take).
const STDOUT_BUFFER_BYTES: usize = 64 * 1024;

/// How many log lines were dropped because the buffer was full.
#[derive(Clone, Debug)]
pub struct LogDrops(ErrorCounter);

impl LogDrops {
    /// Lines dropped so far.
    pub fn count(&self) -> u64 {
        self.0.dropped_lines() as u64
    }
}

/// Levels for dependencies that say too much at `info`: rmcp writes three
/// lines (and opens spans) for every stateless MCP request. Applied unless
/// `RUST_LOG` names the dependency itself.
const QUIET_DEPENDENCIES: &[(&str, &str)] = &[("rmcp", "rmcp=warn")];

/// `RUST_LOG` (default `info`) with [`QUIET_DEPENDENCIES`] added; the
/// spans exported as traces ([`TRACE_TARGET`]) are not lines.
fn filter() -> EnvFilter {
    let mut spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    spec = format!("{spec},{TRACE_TARGET}=off");
    for (name, directive) in QUIET_DEPENDENCIES {
        if !spec.contains(name) {
            spec = format!("{spec},{directive}");
        }
    }
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"))
}

/// Logging for the tool authors' commands: human-readable lines on stderr,
/// warnings and errors only unless `RUST_LOG` says otherwise.
pub fn init_for_terminal() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).compact().init();
}

/// Install the JSON subscriber on a non-blocking stdout writer (`RUST_LOG`
/// sets levels, `info` by default), and beside it the plugins' own files
/// ([`crate::plugin_log`], every level of its target whatever `RUST_LOG`
/// says; written once `serve` starts them). Keep the guard until the
/// process ends: dropping it flushes what is buffered. With a `tracer`,
/// the spans of [`TRACE_TARGET`] are exported through it.
pub fn init(tracer: Option<opentelemetry_sdk::trace::Tracer>) -> (WorkerGuard, LogDrops) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter::Targets};
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        // The worker writes what it has drained and then flushes: one
        // write to stdout per batch of lines, not one per line.
        .finish(std::io::BufWriter::with_capacity(STDOUT_BUFFER_BYTES, std::io::stdout()));
    let drops = LogDrops(writer.error_counter());
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_current_span(false)
        // Lines name their correlation id themselves; rendering every
        // line's span list was a large part of each line's cost.
        .with_span_list(false)
        .with_filter(filter());
    let plugin_files = crate::plugin_log::PluginLogLayer
        .with_filter(Targets::new().with_target(crate::plugin_log::TARGET, tracing::Level::TRACE));
    let base = tracing_subscriber::registry().with(json).with(plugin_files);
    // Two shapes rather than an `Option` layer: an absent layer in the stack
    // would declare interest in every callsite, and tracing off must cost
    // nothing.
    match tracer {
        Some(tracer) => {
            let traces = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_level(false)
                .with_target(false)
                .with_filter(Targets::new().with_target(TRACE_TARGET, tracing::Level::TRACE));
            base.with(traces).init();
        }
        None => base.init(),
    }
    (guard, drops)
}
