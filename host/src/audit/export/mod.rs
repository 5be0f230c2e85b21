//! Audit export: every record of the trail, delivered to the operator's
//! sinks — an HTTP endpoint taking signed batches of JSON lines, and/or the
//! OTLP collector as log records ([`sinks`]) — at least once and in order.
//!
//! Each sink has a task of its own that reads the trail from its **durable
//! cursor** (`.audit/export/NAME.cursor`: the last delivered record's `seq`
//! and `hash`, written atomically after each accepted batch), never past the
//! last durable record, checking the chain as it reads ([`reader`]). A sink
//! that is down is retried with a doubling wait (250 ms up to
//! `audit.export_max_backoff`); a host restarted meanwhile resumes at the
//! cursor. Receivers de-duplicate by `seq` (a batch delivered just before a
//! crash, whose cursor was not yet written, is sent again). Export never
//! touches the call path: it only reads files the writer has made durable.
//!
//! Someone who can write `.audit/` can move a cursor: records are then sent
//! again (back) or the export stops with an error naming the mismatch (a
//! cursor whose hash is not the trail's); it cannot make a sink skip records
//! silently unless it names a real record further on — which `/health`
//! shows as lag that jumped.

pub mod reader;
pub mod sinks;

use super::AuditLog;
use reader::{Cursor, TrailReader};
use sinks::Sink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a caught-up sink looks for new records.
const POLL: Duration = Duration::from_millis(200);
/// The first retry wait after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// One sink's progress, for `/health` and the metrics.
#[derive(Debug)]
pub struct SinkStatus {
    /// `http` or `otlp`.
    pub name: &'static str,
    delivered: AtomicU64,
    error: Mutex<Option<String>>,
}

impl SinkStatus {
    /// The last record the sink accepted.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Why the last attempt failed, while it is failing.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("not poisoned").clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.error.lock().expect("not poisoned") = error;
    }
}

/// The configured sinks' progress.
#[derive(Debug, Clone, Default)]
pub struct ExportStatus(pub Arc<Vec<Arc<SinkStatus>>>);

/// How the export runs.
pub struct ExportOptions {
    /// Records per batch.
    pub batch: usize,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

/// Start one task per sink; their progress is in the returned status.
pub fn start(audit: &AuditLog, dir: &Path, sinks: Vec<Sink>, options: ExportOptions) -> ExportStatus {
    let options = Arc::new(options);
    let statuses = sinks
        .into_iter()
        .map(|sink| {
            let status = Arc::new(SinkStatus {
                name: sink.name(),
                delivered: AtomicU64::new(0),
                error: Mutex::default(),
            });
            tokio::spawn(run(sink, audit.clone(), dir.to_path_buf(), options.clone(), status.clone()));
            status
        })
        .collect();
    ExportStatus(Arc::new(statuses))
}

fn cursor_file(dir: &Path, sink: &str) -> PathBuf {
    dir.join("export").join(format!("{sink}.cursor"))
}

fn load_cursor(file: &Path) -> Result<Cursor, String> {
    match std::fs::read(file) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|_| format!("{} is not a cursor", file.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cursor::start()),
        Err(e) => Err(format!("reading {}: {e}", file.display())),
    }
}

async fn run(
    sink: Sink,
    audit: AuditLog,
    dir: PathBuf,
    options: Arc<ExportOptions>,
    status: Arc<SinkStatus>,
) {
    let file = cursor_file(&dir, sink.name());
    let mut backoff = FIRST_BACKOFF;
    // Position the reader at the cursor (retrying: the trail may be
    // unreadable for a while, e.g. a disk being replaced).
    let mut reader = loop {
        let (dir, file) = (dir.clone(), file.clone());
        let opened = tokio::task::spawn_blocking(move || TrailReader::after(&dir, load_cursor(&file)?))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match opened {
            Ok(reader) => break reader,
            Err(e) => {
                fail(&status, sink.name(), e, &mut backoff, options.max_backoff).await;
            }
        }
    };
    status.delivered.store(reader.cursor().seq, Ordering::Relaxed);
    backoff = FIRST_BACKOFF;
    loop {
        let head = audit.status().seq;
        if reader.cursor().seq >= head {
            tokio::time::sleep(POLL).await;
            continue;
        }
        let batch = match reader.read(options.batch, head) {
            Ok(batch) if batch.lines.is_empty() => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Ok(batch) => batch,
            Err(e) => {
                fail(&status, sink.name(), e, &mut backoff, options.max_backoff).await;
                continue;
            }
        };
        if let Err(e) = sink.deliver(&batch).await {
            fail(&status, sink.name(), format!("delivery failed: {e}"), &mut backoff, options.max_backoff)
                .await;
            continue;
        }
        let cursor = batch.cursor().cloned().expect("a read batch has an end");
        let json = serde_json::to_vec(&cursor).expect("cursors serialise");
        let written = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(file.parent().expect("the cursor is in a directory"))?;
                crate::files::write_atomically(&file, &json, false)
            })
            .await
        };
        if let Err(e) = written.map_err(anyhow::Error::from).and_then(|r| r) {
            // Delivered but not remembered: sent again after a restart.
            tracing::warn!(sink = sink.name(), error = %e, "audit export: cannot write the cursor");
        }
        reader.commit(batch);
        status.delivered.store(cursor.seq, Ordering::Relaxed);
        if status.error().is_some() {
            tracing::info!(sink = sink.name(), seq = cursor.seq, "audit export: delivering again");
            status.set_error(None);
        }
        backoff = FIRST_BACKOFF;
    }
}

/// Record a failure, warn on its first occurrence, wait, double the wait.
async fn fail(status: &SinkStatus, sink: &str, error: String, backoff: &mut Duration, max: Duration) {
    if status.error().is_none() {
        tracing::warn!(sink, %error, "audit export failing; retrying with backoff");
    }
    status.set_error(Some(error));
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(max);
}

/// The sinks the configuration names, started; none configured: nothing runs.
pub fn start_configured(
    config: &crate::config::HostConfig,
    audit: &AuditLog,
) -> anyhow::Result<ExportStatus> {
    use anyhow::Context as _;
    let options = &config.audit;
    let timeout = config.telemetry.export_timeout;
    let mut sinks = Vec::new();
    if let Some(url) = &options.export_url {
        let file =
            config.resolve(options.export_key_file.as_ref().context("audit.export_key_file is required")?);
        let key = std::fs::read(&file)
            .with_context(|| format!("audit.export_key_file: reading {}", file.display()))?;
        let key = String::from_utf8_lossy(&key).trim().as_bytes().to_vec();
        anyhow::ensure!(key.len() >= 16, "audit.export_key_file: the key must be at least 16 bytes");
        sinks.push(Sink::http(url.clone(), key, timeout)?);
    }
    if options.export_otlp {
        let settings = crate::telemetry::TraceSettings::resolve(&config.telemetry)?;
        sinks.push(Sink::otlp(&settings, timeout)?);
    }
    if sinks.is_empty() {
        return Ok(ExportStatus::default());
    }
    let export = ExportOptions { batch: options.export_batch, max_backoff: options.export_max_backoff };
    Ok(start(audit, &config.audit_dir(), sinks, export))
}
