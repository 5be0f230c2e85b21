//! The writer: owns the open trail file and the chain head. It appends a
//! batch of events as records, rotating files by UTC day, and makes them
//! durable with one fsync per batch (group commit). It also writes the
//! signed checkpoints. Every method is blocking; [`super::AuditLog`] runs them
//! off the async threads, one batch at a time.

use super::checkpoint::{CHECKPOINTS_FILE, ChainHead, Checkpoint};
use super::record::{AuditEvent, AuditRecord};
use super::witness::Witness;
use crate::clock::Clock;
use ed25519_dalek::SigningKey;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a record landed in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// When records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// One fsync per batch of queued records (the default).
    Group,
    /// One fsync per record (for comparison).
    PerRecord,
    /// No fsync at all: NOT durable; for benchmarks only.
    Never,
}

/// When checkpoints are written.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// After this many records.
    pub every_records: u64,
    /// Or after this long, if any record was written since the last one.
    pub every: Duration,
}

pub(super) struct Writer {
    dir: PathBuf,
    sync: SyncMode,
    clock: Clock,
    /// The open day file: its day, the file, and its length (what has been
    /// written to it, so no batch needs a `stat`).
    open: Option<(String, File, u64)>,
    seq: u64,
    head: String,
    key: SigningKey,
    policy: CheckpointPolicy,
    checkpointed_seq: u64,
    checkpointed_at: Instant,
    /// Files the operation in progress may have changed, with their lengths
    /// before it: what [`Writer::recover`] cuts them back to.
    restore: Vec<(PathBuf, u64)>,
    /// The last checkpoint written.
    chain: ChainHead,
    /// Why this writer must not sign checkpoints (the tail it found does not
    /// match the last checkpoint), if so.
    refuse_checkpoints: Option<String>,
    witness: Witness,
}

/// What the writer continues from.
pub(super) struct Resume {
    /// The last record's seq and hash.
    pub seq: u64,
    /// Its hash.
    pub head: String,
    /// The last checkpoint.
    pub chain: ChainHead,
    /// Set when the trail's tail does not match the last checkpoint.
    pub refuse_checkpoints: Option<String>,
}

/// RFC 3339 time and `YYYYMMDD` day, UTC.
fn timestamp(clock: &Clock) -> (String, String) {
    let now = chrono::DateTime::from_timestamp_millis(clock.now_unix_ms()).unwrap_or_default();
    (now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), now.format("%Y%m%d").to_string())
}

impl Writer {
    pub(super) fn new(
        config: &super::AuditConfig,
        resume: Resume,
        key: SigningKey,
        witness: Witness,
    ) -> Self {
        let Resume { seq, head, chain, refuse_checkpoints } = resume;
        Self {
            dir: config.dir.clone(),
            sync: config.sync,
            clock: config.clock.clone(),
            open: None,
            seq,
            head,
            key,
            policy: config.checkpoints,
            checkpointed_seq: seq,
            checkpointed_at: Instant::now(),
            restore: Vec::new(),
            chain,
            refuse_checkpoints,
            witness,
        }
    }

    /// The chain head: (last seq, last hash).
    pub(super) fn head(&self) -> (u64, &str) {
        (self.seq, &self.head)
    }

    /// Append `events` as consecutive records and fsync. On error nothing is
    /// acknowledged and the caller must stop using this writer.
    pub(super) fn append(&mut self, events: Vec<AuditEvent>) -> std::io::Result<Vec<Receipt>> {
        self.restore.clear();
        if let Some((day, _, len)) = &self.open {
            self.restore.push((self.day_file(day), *len));
        }
        let (mut seq, mut head) = (self.seq, self.head.clone());
        let mut receipts = Vec::with_capacity(events.len());
        let mut pending: Vec<u8> = Vec::new();
        for event in events {
            let (ts, day) = timestamp(&self.clock);
            if self.open.as_ref().is_none_or(|(open_day, _, _)| *open_day != day) {
                self.flush(&mut pending)?;
                self.open_day(day)?;
            }
            seq += 1;
            head = AuditRecord::write_chained(seq, ts, event, head, &mut pending);
            receipts.push(Receipt { seq, hash: head.clone() });
            if self.sync == SyncMode::PerRecord {
                self.flush(&mut pending)?;
            }
        }
        self.flush(&mut pending)?;
        (self.seq, self.head) = (seq, head);
        Ok(receipts)
    }

    /// Write a signed checkpoint if one is due (or `force`d) and there is
    /// something new to cover.
    pub(super) fn checkpoint(&mut self, force: bool) -> std::io::Result<()> {
        let new_records = self.seq - self.checkpointed_seq;
        let due =
            new_records >= self.policy.every_records || self.checkpointed_at.elapsed() >= self.policy.every;
        if new_records == 0 || !(due || force) || self.refuse_checkpoints.is_some() {
            return Ok(());
        }
        let checkpoint =
            Checkpoint::sign(&self.key, &self.chain, self.seq, &self.head, timestamp(&self.clock).0);
        let path = self.dir.join(CHECKPOINTS_FILE);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.restore.push((path, file.metadata()?.len()));
        let line = checkpoint.to_line();
        file.write_all(&line)?;
        file.sync_data()?;
        self.witness.record(&line[..line.len() - 1]);
        self.chain = checkpoint.head();
        (self.checkpointed_seq, self.checkpointed_at) = (self.seq, Instant::now());
        Ok(())
    }

    /// After a failed write: cut every file the failed operation touched
    /// back to its length before it, so the chain continues from the last
    /// acknowledged record. On success the writer may be used again.
    pub(super) fn recover(&mut self) -> std::io::Result<()> {
        self.open = None;
        for (path, len) in &self.restore {
            let file = match OpenOptions::new().write(true).open(path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && *len == 0 => continue,
                Err(e) => return Err(e),
            };
            if file.metadata()?.len() > *len {
                file.set_len(*len)?;
            }
            file.sync_all()?;
        }
        self.restore.clear();
        File::open(&self.dir)?.sync_all()
    }

    fn day_file(&self, day: &str) -> PathBuf {
        self.dir.join(format!("audit-{day}.jsonl"))
    }

    fn open_day(&mut self, day: String) -> std::io::Result<()> {
        let path = self.day_file(&day);
        let created = !path.exists();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        self.restore.push((path, len));
        if created {
            // Make the new directory entry durable too.
            File::open(&self.dir)?.sync_all()?;
        }
        self.open = Some((day, file, len));
        Ok(())
    }

    fn flush(&mut self, pending: &mut Vec<u8>) -> std::io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let (_, file, len) = self.open.as_mut().expect("a file is open when records are pending");
        file.write_all(pending)?;
        *len += pending.len() as u64;
        if self.sync != SyncMode::Never {
            file.sync_data()?;
        }
        pending.clear();
        Ok(())
    }
}
