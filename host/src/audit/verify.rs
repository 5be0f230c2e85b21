//! `fastmcp audit verify`: walk the whole trail and its checkpoints.
//!
//! Checks, stopping at the first failure and naming its file and line:
//! every line is a complete JSON record; `seq` runs from 1 without gaps
//! (a deleted or reordered line breaks it); each `prev_hash` is the previous
//! record's hash and each `hash` matches the line (an edited field, or an
//! edited record with its own hash recomputed, breaks it); each checkpoint is
//! validly signed and matches the record at its `seq`; and the trail reaches
//! the last checkpoint (a truncated tail does not).

use super::checkpoint::{CHECKPOINTS_FILE, Checkpoint};
use super::record::{GENESIS, hash_line_value};
use super::recover::trail_files;
use ed25519_dalek::VerifyingKey;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// An intact trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Trail files.
    pub files: usize,
    /// Records.
    pub records: u64,
    /// Hash of the last record.
    pub head: String,
    /// Checkpoints verified.
    pub checkpoints: usize,
}

/// Verify the trail in `dir`. Checkpoint signatures need `public_key`; with
/// checkpoints present and no key, verification fails.
pub fn verify(dir: &Path, public_key: Option<&VerifyingKey>) -> Result<Summary, Failure> {
    let fail = |file: &Path, line: usize, reason: String| Failure { file: file.to_path_buf(), line, reason };
    let files = trail_files(dir).map_err(|e| fail(dir, 0, format!("cannot list the trail: {e}")))?;
    let mut expected_seq = 1u64;
    let mut prev_hash = GENESIS.to_owned();
    let mut hashes: HashMap<u64, (PathBuf, usize, String)> = HashMap::new();
    let mut last_position = (dir.to_path_buf(), 0usize);
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| fail(file, 0, format!("cannot read: {e}")))?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(fail(file, line, "torn line: the last line is incomplete".into()));
        }
        for (index, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let number = index + 1;
            let record: Value = serde_json::from_slice(line)
                .map_err(|e| fail(file, number, format!("not a JSON record: {e}")))?;
            let seq = record["seq"].as_u64().ok_or_else(|| fail(file, number, "no `seq`".into()))?;
            if seq != expected_seq {
                return Err(fail(
                    file,
                    number,
                    format!(
                        "seq {seq} where {expected_seq} was expected (a line was deleted, added or moved)"
                    ),
                ));
            }
            if record["prev_hash"].as_str() != Some(prev_hash.as_str()) {
                return Err(fail(file, number, "prev_hash does not match the previous record's hash".into()));
            }
            let hash = record["hash"].as_str().unwrap_or_default().to_owned();
            if hash_line_value(&prev_hash, &record) != hash {
                return Err(fail(
                    file,
                    number,
                    "hash does not match the record (the record was edited)".into(),
                ));
            }
            hashes.insert(seq, (file.clone(), number, hash.clone()));
            last_position = (file.clone(), number);
            prev_hash = hash;
            expected_seq += 1;
        }
    }
    let records = expected_seq - 1;

    let checkpoints_path = dir.join(CHECKPOINTS_FILE);
    let mut checkpoints = 0;
    if let Ok(bytes) = std::fs::read(&checkpoints_path) {
        let file = checkpoints_path.as_path();
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(fail(file, line, "torn line: the last checkpoint is incomplete".into()));
        }
        let mut last_seq = 0;
        for (index, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let number = index + 1;
            let checkpoint: Checkpoint = serde_json::from_slice(line)
                .map_err(|e| fail(file, number, format!("not a checkpoint: {e}")))?;
            let key = public_key.ok_or_else(|| {
                fail(file, number, "no public key to check checkpoint signatures (see --public-key)".into())
            })?;
            if !checkpoint.verify(key) {
                return Err(fail(file, number, "bad checkpoint signature".into()));
            }
            if checkpoint.seq < last_seq {
                return Err(fail(file, number, "checkpoints go backwards".into()));
            }
            last_seq = checkpoint.seq;
            match hashes.get(&checkpoint.seq) {
                Some((_, _, hash)) if *hash == checkpoint.hash => {}
                Some((record_file, record_line, _)) => {
                    return Err(fail(
                        record_file,
                        *record_line,
                        format!(
                            "record {} differs from checkpoint {number} (the tail was rewritten)",
                            checkpoint.seq
                        ),
                    ));
                }
                None => {
                    let (last_file, last_line) = &last_position;
                    return Err(fail(
                        last_file,
                        *last_line,
                        format!(
                            "the trail ends at seq {records} but checkpoint {number} covers seq {} (the tail was truncated)",
                            checkpoint.seq
                        ),
                    ));
                }
            }
            checkpoints += 1;
        }
    }
    Ok(Summary { files: files.len(), records, head: prev_hash, checkpoints })
}
