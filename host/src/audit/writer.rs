//! The writer: owns the open trail file and the chain head. It appends a
//! batch of events as records, rotating files by UTC day, and makes them
//! durable with one fsync per batch (group commit). It also writes the
//! signed checkpoints. Every method is blocking; [`super::AuditLog`] runs them
//! off the async threads, one batch at a time.

use super::checkpoint::{CHECKPOINTS_FILE, Checkpoint};
use super::record::{AuditEvent, AuditRecord};
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
    open: Option<(String, File)>,
    seq: u64,
    head: String,
    key: SigningKey,
    policy: CheckpointPolicy,
    checkpointed_seq: u64,
    checkpointed_at: Instant,
}

/// RFC 3339 time and `YYYYMMDD` day, UTC.
fn timestamp(clock: &Clock) -> (String, String) {
    let now = chrono::DateTime::from_timestamp_millis(clock.now_unix_ms()).unwrap_or_default();
    (now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), now.format("%Y%m%d").to_string())
}

impl Writer {
    pub(super) fn new(config: &super::AuditConfig, seq: u64, head: String, key: SigningKey) -> Self {
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
        }
    }

    /// The chain head: (last seq, last hash).
    pub(super) fn head(&self) -> (u64, &str) {
        (self.seq, &self.head)
    }

    /// Append `events` as consecutive records and fsync. On error nothing is
    /// acknowledged and the caller must stop using this writer.
    pub(super) fn append(&mut self, events: Vec<AuditEvent>) -> std::io::Result<Vec<Receipt>> {
        let (mut seq, mut head) = (self.seq, self.head.clone());
        let mut receipts = Vec::with_capacity(events.len());
        let mut pending: Vec<u8> = Vec::new();
        for event in events {
            let (ts, day) = timestamp(&self.clock);
            if self.open.as_ref().is_none_or(|(open_day, _)| *open_day != day) {
                self.flush(&mut pending)?;
                self.open_day(day)?;
            }
            seq += 1;
            let record = AuditRecord::chain(seq, ts, event, head);
            head = record.hash.clone();
            pending.extend_from_slice(&record.to_line());
            receipts.push(Receipt { seq, hash: record.hash });
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
        if new_records == 0 || !(due || force) {
            return Ok(());
        }
        let checkpoint = Checkpoint::sign(&self.key, self.seq, &self.head, timestamp(&self.clock).0);
        let mut file = OpenOptions::new().create(true).append(true).open(self.dir.join(CHECKPOINTS_FILE))?;
        file.write_all(&checkpoint.to_line())?;
        file.sync_data()?;
        (self.checkpointed_seq, self.checkpointed_at) = (self.seq, Instant::now());
        Ok(())
    }

    fn open_day(&mut self, day: String) -> std::io::Result<()> {
        let path = self.dir.join(format!("audit-{day}.jsonl"));
        let created = !path.exists();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if created {
            // Make the new directory entry durable too.
            File::open(&self.dir)?.sync_all()?;
        }
        self.open = Some((day, file));
        Ok(())
    }

    fn flush(&mut self, pending: &mut Vec<u8>) -> std::io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let (_, file) = self.open.as_mut().expect("a file is open when records are pending");
        file.write_all(pending)?;
        if self.sync != SyncMode::Never {
            file.sync_data()?;
        }
        pending.clear();
        Ok(())
    }
}
