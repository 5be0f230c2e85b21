//! Startup: find where the chain ends, deal with a torn tail, and check the
//! tail against the newest checkpoint ([`resume`]).
//!
//! A crash can leave a partial last line (or a complete line that is not a
//! record). Such bytes are never silently dropped: they are copied to
//! `torn-<file>-<unix ms>.jsonl` beside the trail, the file is cut back to
//! its last complete record, and the writer then appends an
//! `audit.recovered` record saying what was found and where it went.

use super::checkpoint::{self, CHECKPOINTS_FILE, ChainHead, Checkpoint};
use super::record::{AuditRecord, GENESIS};
use super::writer::Resume;
use crate::files::write_atomically;
use anyhow::Context;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the chain ends after recovery.
#[derive(Debug)]
pub struct Tail {
    /// The last record's `seq` (0 for an empty trail).
    pub seq: u64,
    /// The last record's hash ([`GENESIS`] for an empty trail).
    pub head: String,
    /// One detail object per torn tail found, for `audit.recovered` records.
    pub recovered: Vec<Value>,
}

/// `audit-YYYYMMDD.jsonl` files in `dir`, oldest first.
pub fn trail_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Recover the trail in `dir` (created if missing).
pub fn recover(dir: &Path) -> anyhow::Result<Tail> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut recovered = Vec::new();
    let checkpoints = dir.join(CHECKPOINTS_FILE);
    if checkpoints.exists() {
        cut_torn_tail(&checkpoints, |_| true, &mut recovered)?;
    }
    for file in trail_files(dir)?.iter().rev() {
        let last =
            cut_torn_tail(file, |line| serde_json::from_slice::<AuditRecord>(line).is_ok(), &mut recovered)?;
        if let Some(line) = last {
            let record: AuditRecord = serde_json::from_slice(&line).expect("checked by cut_torn_tail");
            if record.compute_hash() != record.hash {
                tracing::error!(file = %file.display(), seq = record.seq, "the last audit record does not match its hash; run `fastmcp audit verify`");
            }
            return Ok(Tail { seq: record.seq, head: record.hash, recovered });
        }
    }
    Ok(Tail { seq: 0, head: GENESIS.to_owned(), recovered })
}

/// Cut `file` back to its last complete line that `is_valid`, preserving what
/// is cut. Returns that last line, if any.
fn cut_torn_tail(
    file: &Path,
    is_valid: impl Fn(&[u8]) -> bool,
    recovered: &mut Vec<Value>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut keep = bytes.len();
    let last = loop {
        let complete = if bytes[..keep].ends_with(b"\n") {
            keep
        } else {
            bytes[..keep].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        if complete < keep {
            keep = complete; // a partial line: cut it
            continue;
        }
        if keep == 0 {
            break None;
        }
        let start = bytes[..keep - 1].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = &bytes[start..keep - 1];
        if is_valid(line) {
            break Some(line.to_vec());
        }
        keep = start; // a complete line that is not a record: cut it too
    };
    if keep < bytes.len() {
        let torn = &bytes[keep..];
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let aside = file.with_file_name(format!("torn-{stem}-{now}.jsonl"));
        write_atomically(&aside, torn, false)?;
        let handle = OpenOptions::new().write(true).open(file)?;
        handle.set_len(keep as u64)?;
        handle.sync_all()?;
        tracing::warn!(file = %file.display(), bytes = torn.len(), preserved_as = %aside.display(), "torn audit tail moved aside");
        recovered.push(json!({
            "file": file.file_name().and_then(|n| n.to_str()),
            "offset": keep,
            "bytes": torn.len(),
            "preserved_as": aside.file_name().and_then(|n| n.to_str()),
        }));
    }
    Ok(last)
}

/// Where the writer continues, after comparing the recovered tail with the
/// newest checkpoint — the local one, or the witness's when it knows a newer
/// one. A tail that does not reach that checkpoint, or differs from it, or a
/// checkpoints file behind its witness, means the trail was rolled back or
/// rewritten while the host was down: the host then keeps appending records
/// but refuses to sign a checkpoint over them (`audit.checkpoint_mismatch`,
/// and `/health` says why).
pub(super) fn resume(
    dir: &Path,
    tail: &Tail,
    witness_dir: Option<&Path>,
    key: &ed25519_dalek::VerifyingKey,
) -> anyhow::Result<Resume> {
    let local = checkpoint::read_all(&dir.join(CHECKPOINTS_FILE))?;
    let witnessed = match witness_dir {
        Some(witness) => checkpoint::read_all(&witness.join(CHECKPOINTS_FILE))?,
        None => Vec::new(),
    };
    let chain = local
        .last()
        .map(|(c, line)| ChainHead { n: c.n, line_hash: checkpoint::line_hash(line) })
        .unwrap_or_default();
    let problem = mismatch(dir, tail, &local, &witnessed, key)?;
    if let Some(problem) = &problem {
        tracing::error!(%problem, "the audit trail does not match its last checkpoint: no checkpoint will be signed; run `fastmcp audit verify`");
    }
    Ok(Resume { seq: tail.seq, head: tail.head.clone(), chain, refuse_checkpoints: problem })
}

fn mismatch(
    dir: &Path,
    tail: &Tail,
    local: &[(Checkpoint, Vec<u8>)],
    witnessed: &[(Checkpoint, Vec<u8>)],
    key: &ed25519_dalek::VerifyingKey,
) -> anyhow::Result<Option<String>> {
    if let Some((bad, _)) = local.iter().chain(witnessed).find(|(c, _)| !c.verify(key)) {
        return Ok(Some(format!("checkpoint {} has a bad signature", bad.n)));
    }
    if let Some((newest, line)) = witnessed.last() {
        match local.iter().find(|(c, _)| c.n == newest.n) {
            None => {
                return Ok(Some(format!(
                    "the witness holds checkpoint {} (seq {}) but the checkpoints file ends at checkpoint {}",
                    newest.n,
                    newest.seq,
                    local.last().map_or(0, |(c, _)| c.n)
                )));
            }
            Some((_, local_line)) if local_line != line => {
                return Ok(Some(format!("checkpoint {} differs from the witness's copy", newest.n)));
            }
            Some(_) => {}
        }
    }
    let Some((newest, _)) = local.iter().chain(witnessed).max_by_key(|(c, _)| c.n) else {
        return Ok(None);
    };
    if newest.seq > tail.seq {
        return Ok(Some(format!(
            "the trail ends at seq {} but checkpoint {} covers seq {} (the tail was truncated)",
            tail.seq, newest.n, newest.seq
        )));
    }
    // After a clean stop the newest checkpoint covers the last record,
    // which recovery has already read.
    let hash =
        if newest.seq == tail.seq { Some(tail.head.clone()) } else { record_hash_at(dir, newest.seq)? };
    match hash {
        Some(hash) if hash == newest.hash => Ok(None),
        _ => Ok(Some(format!(
            "record {} differs from checkpoint {} (the trail was rewritten)",
            newest.seq, newest.n
        ))),
    }
}

/// The hash of the record with this `seq`: files newest first, lines from
/// the end of each, so only what follows the checkpoint (at most the
/// checkpoint interval, after a crash) is parsed.
fn record_hash_at(dir: &Path, seq: u64) -> anyhow::Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct SeqHash {
        seq: u64,
        hash: String,
    }
    for file in trail_files(dir)?.iter().rev() {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        for line in bytes.split(|&b| b == b'\n').rev().filter(|l| !l.is_empty()) {
            let Ok(record) = serde_json::from_slice::<SeqHash>(line) else { continue };
            if record.seq == seq {
                return Ok(Some(record.hash));
            }
            if record.seq < seq {
                return Ok(None);
            }
        }
    }
    Ok(None)
}
