//! The audit trail: append-only, hash-chained, durable, verifiable.
//!
//! - [`record`]: the record format and the chain hash;
//! - [`writer`]: files by UTC day, group commit, checkpoints;
//! - [`recover`]: resuming the chain at startup, torn tails;
//! - [`checkpoint`]: Ed25519-signed, numbered and chained checkpoints;
//! - [`witness`]: copies of every checkpoint kept elsewhere;
//! - [`verify`]: `fastmcp audit verify`;
//! - [`export`]: delivering every record to the operator's sinks;
//! - [`query`]: `fastmcp audit tail` and `fastmcp audit query`.
//!
//! [`AuditLog::append`] returns only once the record is on disk. One writer
//! task takes whatever is queued, writes it and fsyncs once, so concurrent
//! calls share the cost of a sync. If a write fails, that batch and every
//! append while the trail is failed are refused — callers fail closed (503),
//! and nothing is ever acknowledged without its record — and the writer cuts
//! the files back to the last acknowledged record and tries again with the
//! next batch (or tick), so the trail recovers when the disk does.
//! Every record is cut to [`AuditConfig::max_record_bytes`] first.

pub mod checkpoint;
pub mod export;
pub mod query;
pub mod record;
pub mod recover;
pub mod verify;
pub mod witness;
pub mod writer;

use crate::clock::Clock;
use record::AuditEvent;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use writer::Writer;
pub use writer::{CheckpointPolicy, Receipt, SyncMode};

/// Records taken into one write.
const MAX_BATCH: usize = 1024;

/// Where the trail lives and how it is written.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The trail directory (`.audit/` under the root).
    pub dir: PathBuf,
    /// Where the checkpoint key lives (`.runtime/`).
    pub key_dir: PathBuf,
    /// Checkpoint cadence.
    pub checkpoints: CheckpointPolicy,
    /// Records that may wait for the writer; appends beyond wait for room.
    pub queue: usize,
    /// When records reach the disk.
    pub sync: SyncMode,
    /// Record timestamps and file days (tests advance it).
    pub clock: Clock,
    /// Largest record; bigger events are cut ([`AuditEvent::bounded`]).
    pub max_record_bytes: usize,
    /// A directory receiving a copy of every checkpoint.
    pub witness_dir: Option<PathBuf>,
    /// An HTTP endpoint receiving every checkpoint.
    pub witness_url: Option<String>,
}

impl AuditConfig {
    /// The defaults for a trail in `dir` with its key in `key_dir`: group
    /// commit, a checkpoint every 1000 records or 10 s.
    pub fn new(dir: PathBuf, key_dir: PathBuf, clock: Clock) -> Self {
        Self {
            dir,
            key_dir,
            checkpoints: CheckpointPolicy { every_records: 1000, every: Duration::from_secs(10) },
            queue: 8192,
            sync: SyncMode::Group,
            clock,
            max_record_bytes: crate::config::AuditOptions::default().max_record_bytes,
            witness_dir: None,
            witness_url: None,
        }
    }
}

/// The trail cannot take records.
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit trail unavailable: {0}")]
pub struct AuditError(pub String);

/// The chain head and health, for `/health`.
#[derive(Debug, Clone)]
pub struct AuditStatus {
    /// Last durable record.
    pub seq: u64,
    /// Its hash.
    pub head: String,
    /// Why the trail is not accepting records, if it is not.
    pub failed: Option<String>,
    /// Why no checkpoints are signed, if they are not (the tail did not
    /// match the last checkpoint at startup).
    pub checkpoints_refused: Option<String>,
    /// Why the last checkpoint could not be witnessed, if it could not.
    pub witness_error: Option<String>,
}

enum Command {
    Append(AuditEvent, oneshot::Sender<Result<Receipt, AuditError>>),
    Close(AuditEvent, oneshot::Sender<()>),
}

/// Handle to the trail. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    commands: mpsc::Sender<Command>,
    status: Arc<Mutex<AuditStatus>>,
    max_event_bytes: usize,
    witness: witness::Witness,
    batches: BatchCounters,
}

/// How group commit is going: batches written and records in them (their
/// ratio is the mean batch size).
#[derive(Clone, Default)]
pub struct BatchCounters {
    /// Batches made durable (one fsync each).
    pub batches: prometheus_client::metrics::counter::Counter,
    /// Records in them.
    pub records: prometheus_client::metrics::counter::Counter,
}

/// Bytes a record adds to its event (`seq`, `ts`, `prev_hash`, `hash`).
const RECORD_OVERHEAD: usize = 256;

impl AuditLog {
    /// Recover the trail, start the writer task, and record any recovery.
    pub async fn start(config: AuditConfig) -> anyhow::Result<Self> {
        let (dir, key_dir) = (config.dir.clone(), config.key_dir.clone());
        let witness_dir = config.witness_dir.clone();
        let (tail, key, resume) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let tail = recover::recover(&dir)?;
            let key = checkpoint::load_or_create_key(&key_dir)?;
            let resume = recover::resume(&dir, &tail, witness_dir.as_deref(), &key.verifying_key())?;
            Ok((tail, key, resume))
        })
        .await??;
        let refused = resume.refuse_checkpoints.clone();
        let status = Arc::new(Mutex::new(AuditStatus {
            seq: tail.seq,
            head: tail.head.clone(),
            failed: None,
            checkpoints_refused: refused.clone(),
            witness_error: None,
        }));
        let witness = witness::Witness::new(config.witness_dir.clone(), config.witness_url.clone())?;
        let (commands, receiver) = mpsc::channel(config.queue.max(1));
        let writer = Writer::new(&config, resume, key, witness.clone());
        let batches = BatchCounters::default();
        tokio::spawn(run(writer, receiver, status.clone(), config.checkpoints.every, batches.clone()));
        let max_event_bytes = config.max_record_bytes.saturating_sub(RECORD_OVERHEAD).max(1024);
        let log = Self { commands, status, max_event_bytes, witness, batches };
        for detail in tail.recovered {
            log.append(AuditEvent::host("audit.recovered", "torn_tail_moved_aside", detail)).await?;
        }
        if let Some(reason) = refused {
            let detail = serde_json::json!({ "reason": reason });
            log.append(AuditEvent::host("audit.checkpoint_mismatch", "checkpoints_refused", detail)).await?;
        }
        Ok(log)
    }

    /// Append a record; resolves once it is durable.
    pub async fn append(&self, event: AuditEvent) -> Result<Receipt, AuditError> {
        let (reply, receipt) = oneshot::channel();
        let closed = || AuditError("the audit writer has stopped".into());
        let event = event.bounded(self.max_event_bytes);
        self.commands.send(Command::Append(event, reply)).await.map_err(|_| closed())?;
        receipt.await.map_err(|_| closed())?
    }

    /// Write `host.stop` and a final checkpoint, then stop the writer.
    pub async fn close(&self, detail: Value) {
        let (reply, done) = oneshot::channel();
        let event = AuditEvent::host("host.stop", "stopped", detail);
        if self.commands.send(Command::Close(event, reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Group-commit counters, for the metrics.
    pub fn batch_counters(&self) -> &BatchCounters {
        &self.batches
    }

    /// Head and health.
    pub fn status(&self) -> AuditStatus {
        let mut status = self.status.lock().expect("audit status lock").clone();
        status.witness_error = self.witness.error();
        status
    }
}

/// The writer task: batch, write off-thread, acknowledge.
async fn run(
    mut writer: Writer,
    mut commands: mpsc::Receiver<Command>,
    status: Arc<Mutex<AuditStatus>>,
    tick: Duration,
    counters: BatchCounters,
) {
    let mut failed: Option<String> = None;
    loop {
        let next = tokio::time::timeout(tick.min(RETRY_EVERY), commands.recv()).await;
        if failed.is_some() {
            writer = retry(writer, &mut failed, &status).await;
        }
        let first = match next {
            Ok(Some(command)) => command,
            Ok(None) => return,
            Err(_idle) => {
                if failed.is_none() {
                    writer =
                        blocking(writer, |w| w.checkpoint(false).map(|()| Vec::new()), &mut failed, &status)
                            .await
                            .0;
                }
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut close = None;
        for command in batch {
            match command {
                Command::Append(event, reply) => {
                    events.push(event);
                    replies.push(reply);
                }
                Command::Close(event, done) => {
                    events.push(event);
                    close = Some(done);
                    break;
                }
            }
        }
        if let Some(reason) = &failed {
            for reply in replies {
                let _ = reply.send(Err(AuditError(reason.clone())));
            }
        } else {
            let force = close.is_some();
            let (returned, receipts) = blocking(
                writer,
                move |w| {
                    let receipts = w.append(events)?;
                    w.checkpoint(force)?;
                    Ok(receipts)
                },
                &mut failed,
                &status,
            )
            .await;
            writer = returned;
            match receipts {
                Some(receipts) => {
                    counters.batches.inc();
                    counters.records.inc_by(receipts.len() as u64);
                    for (reply, receipt) in replies.into_iter().zip(receipts) {
                        let _ = reply.send(Ok(receipt));
                    }
                }
                None => {
                    let reason = failed.clone().unwrap_or_default();
                    for reply in replies {
                        let _ = reply.send(Err(AuditError(reason.clone())));
                    }
                }
            }
        }
        if let Some(done) = close {
            let _ = done.send(());
            return;
        }
    }
}

/// How often a failed trail retries while idle.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A failed trail: cut the files back to the last acknowledged record and,
/// if that works, take records again.
async fn retry(writer: Writer, failed: &mut Option<String>, status: &Mutex<AuditStatus>) -> Writer {
    let (writer, result) = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let result = writer.recover();
        (writer, result)
    })
    .await
    .expect("the audit writer does not panic");
    match result {
        Ok(()) => {
            tracing::warn!(after = ?failed, "the audit trail recovered and takes records again");
            *failed = None;
            status.lock().expect("audit status lock").failed = None;
        }
        Err(e) => tracing::debug!(error = %e, "the audit trail is still failing"),
    }
    writer
}

/// Run a writer operation on the blocking pool; on error, mark the trail failed.
async fn blocking(
    mut writer: Writer,
    op: impl FnOnce(&mut Writer) -> std::io::Result<Vec<Receipt>> + Send + 'static,
    failed: &mut Option<String>,
    status: &Mutex<AuditStatus>,
) -> (Writer, Option<Vec<Receipt>>) {
    let (writer, result) = tokio::task::spawn_blocking(move || {
        let result = op(&mut writer);
        (writer, result)
    })
    .await
    .expect("the audit writer does not panic");
    let mut status = status.lock().expect("audit status lock");
    let (seq, head) = writer.head();
    (status.seq, status.head) = (seq, head.to_owned());
    match result {
        Ok(receipts) => (writer, Some(receipts)),
        Err(e) => {
            tracing::error!(error = %e, "audit write failed: calls fail closed until a retry succeeds");
            *failed = Some(e.to_string());
            status.failed = Some(e.to_string());
            (writer, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> AuditConfig {
        AuditConfig {
            checkpoints: CheckpointPolicy { every_records: 50, every: Duration::from_secs(3600) },
            queue: 64,
            ..AuditConfig::new(dir.join(".audit"), dir.join(".runtime"), Clock::default())
        }
    }

    fn event(i: usize) -> AuditEvent {
        AuditEvent { event: "tools.invoke".into(), decision: format!("n{i}"), ..Default::default() }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_appends_form_one_gapless_verified_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::start(config(dir.path())).await.unwrap();
        let appends = (0..300).map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(event(i)).await.unwrap() })
        });
        let mut seqs: Vec<u64> =
            futures_util::future::join_all(appends).await.into_iter().map(|r| r.unwrap().seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
        log.close(Value::Null).await;
        let key = checkpoint::read_public_key(&dir.path().join(".runtime").join(checkpoint::PUBLIC_KEY_FILE))
            .unwrap();
        let summary = verify::verify(&dir.path().join(".audit"), Some(&key)).unwrap();
        assert_eq!(summary.records, 301);
        assert!(summary.checkpoints >= 2, "after 50+ records and at close: {summary:?}");
        assert!(log.append(event(0)).await.is_err(), "a closed log takes nothing");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_write_failure_fails_appends_closed_until_the_disk_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let today = chrono::Utc::now().format("%Y%m%d");
        // A directory where today's trail file should be: opening it fails.
        let blocker = dir.path().join(format!(".audit/audit-{today}.jsonl"));
        std::fs::create_dir_all(&blocker).unwrap();
        let log = AuditLog::start(config(dir.path())).await.unwrap();
        assert!(log.append(event(1)).await.is_err());
        assert!(log.status().failed.is_some());
        assert!(log.append(event(2)).await.is_err(), "the trail stays failed while the fault lasts");
        assert_eq!(log.status().seq, 0, "nothing was acknowledged");

        // The fault goes away: the next append is taken, continuing the chain.
        std::fs::remove_dir(&blocker).unwrap();
        tokio::time::sleep(RETRY_EVERY + Duration::from_millis(200)).await;
        assert_eq!(log.append(event(3)).await.unwrap().seq, 1);
        assert!(log.status().failed.is_none());
        log.close(Value::Null).await;
        let key = checkpoint::read_public_key(&dir.path().join(".runtime").join(checkpoint::PUBLIC_KEY_FILE))
            .unwrap();
        assert_eq!(verify::verify(&dir.path().join(".audit"), Some(&key)).unwrap().records, 2);
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn files_rotate_by_utc_day_and_the_chain_continues() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let config = AuditConfig::new(dir.path().join(".audit"), dir.path().join(".runtime"), clock.clone());
        let log = AuditLog::start(config.clone()).await.unwrap();
        let event =
            |d: &str| AuditEvent { event: "tools.invoke".into(), decision: d.into(), ..Default::default() };
        log.append(event("today")).await.unwrap();
        clock.advance(Duration::from_secs(86_400));
        log.append(event("tomorrow")).await.unwrap();
        clock.advance(Duration::from_secs(86_400));
        log.append(event("the day after")).await.unwrap();
        log.close(Value::Null).await;
        let files = recover::trail_files(&config.dir).unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        let key = checkpoint::read_public_key(&config.key_dir.join(checkpoint::PUBLIC_KEY_FILE)).unwrap();
        let summary = verify::verify(&config.dir, Some(&key)).unwrap();
        assert_eq!((summary.files, summary.records), (3, 4));

        // Restarting resumes from the newest file.
        let log = AuditLog::start(config.clone()).await.unwrap();
        assert_eq!(log.append(event("again")).await.unwrap().seq, 5);
        log.close(Value::Null).await;
        assert_eq!(verify::verify(&config.dir, Some(&key)).unwrap().records, 6);
    }
}
