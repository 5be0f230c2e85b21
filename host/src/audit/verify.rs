//! `fastmcp audit verify`: walk the whole trail and its checkpoints.
//!
//! Checks, stopping at the first failure and naming its file and line:
//! - every line is a complete JSON record, byte for byte the canonical
//!   serialisation of what it parses to (a duplicated key, reordered keys or
//!   extra whitespace break it, so what is hashed is what is on disk);
//! - `seq` runs from 1 without gaps (a deleted or reordered line breaks it);
//! - each `prev_hash` is the previous record's hash and each `hash` matches
//!   the line (an edited field, or an edited record with its own hash
//!   recomputed, breaks it);
//! - checkpoints are numbered from 1 without gaps, each names the previous
//!   one's line hash, each is validly signed, and each matches the record at
//!   its `seq`; the trail reaches the last one (a truncated tail does not);
//! - a trail longer than the checkpoint interval has a checkpoints file, and
//!   no more than the interval's records follow the last checkpoint (unless
//!   told otherwise);
//! - with a witness directory, every checkpoint the witness holds is in the
//!   checkpoints file as it is in the witness, and matches the trail: a trail
//!   rolled back behind the witness's newest checkpoint fails.

use super::checkpoint::{CHECKPOINTS_FILE, Checkpoint, line_hash};
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

/// What to require of a trail.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The checkpoint key; with checkpoints present and no key, verification fails.
    pub public_key: Option<&'a VerifyingKey>,
    /// Records the host writes at most between checkpoints (its
    /// `every_records`, 1000 by default).
    pub checkpoint_interval: u64,
    /// Accept a trail longer than the interval without a checkpoints file.
    pub allow_missing_checkpoints: bool,
    /// Accept more than the interval's records after the last checkpoint.
    pub allow_unanchored_tail: bool,
    /// A witness directory holding copies of the checkpoints.
    pub witness: Option<&'a Path>,
}

impl<'a> VerifyOptions<'a> {
    /// The defaults: checkpoints required, interval 1000, no witness.
    pub fn new(public_key: Option<&'a VerifyingKey>) -> Self {
        Self {
            public_key,
            checkpoint_interval: 1000,
            allow_missing_checkpoints: false,
            allow_unanchored_tail: false,
            witness: None,
        }
    }
}

/// Verify the trail in `dir` with the default options.
pub fn verify(dir: &Path, public_key: Option<&VerifyingKey>) -> Result<Summary, Failure> {
    verify_with(dir, &VerifyOptions::new(public_key))
}

/// Verify the trail in `dir`.
pub fn verify_with(dir: &Path, options: &VerifyOptions<'_>) -> Result<Summary, Failure> {
    let fail = |file: &Path, line: usize, reason: String| Failure { file: file.to_path_buf(), line, reason };
    let files = trail_files(dir).map_err(|e| fail(dir, 0, format!("cannot list the trail: {e}")))?;
    let mut expected_seq = 1u64;
    let mut prev_hash = GENESIS.to_owned();
    let mut hashes: RecordIndex = HashMap::new();
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
            if serde_json::to_vec(&record).ok().as_deref() != Some(line) {
                return Err(fail(
                    file,
                    number,
                    "the line is not the canonical form of its record (a duplicated or reordered key, or extra whitespace)".into(),
                ));
            }
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
    let file = checkpoints_path.as_path();
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail(file, 0, format!("cannot read: {e}"))),
    };
    if bytes.is_empty() && records > options.checkpoint_interval && !options.allow_missing_checkpoints {
        return Err(fail(
            file,
            0,
            format!(
                "no checkpoints, but the trail holds {records} records (more than the checkpoint interval of {}): the checkpoints were deleted (--allow-missing-checkpoints to accept)",
                options.checkpoint_interval
            ),
        ));
    }
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(fail(file, line, "torn line: the last checkpoint is incomplete".into()));
    }
    let mut lines: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut last_seq = 0;
    let mut prev = GENESIS.to_owned();
    let mut checkpoints = 0u64;
    for (index, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let number = index + 1;
        let checkpoint = check_checkpoint(line, options.public_key).map_err(|r| fail(file, number, r))?;
        if checkpoint.n != checkpoints + 1 {
            return Err(fail(
                file,
                number,
                format!(
                    "checkpoint {} where {} was expected (one was deleted or moved)",
                    checkpoint.n,
                    checkpoints + 1
                ),
            ));
        }
        if checkpoint.prev != prev {
            return Err(fail(file, number, "`prev` does not name the previous checkpoint".into()));
        }
        if checkpoint.seq <= last_seq {
            return Err(fail(file, number, "checkpoints go backwards".into()));
        }
        last_seq = checkpoint.seq;
        check_covered(&checkpoint, &hashes, records, &last_position, number)?;
        prev = line_hash(line);
        lines.insert(checkpoint.n, line.to_vec());
        checkpoints += 1;
    }
    if records - last_seq > options.checkpoint_interval && !options.allow_unanchored_tail {
        let (last_file, last_line) = &last_position;
        return Err(fail(
            last_file,
            *last_line,
            format!(
                "{} records follow the last checkpoint (seq {last_seq}), more than the checkpoint interval of {}: the checkpoints file was cut back (--allow-unanchored-tail to accept)",
                records - last_seq,
                options.checkpoint_interval
            ),
        ));
    }
    if let Some(witness) = options.witness {
        check_witness(witness, options.public_key, &lines, &hashes, records, &last_position)?;
    }
    Ok(Summary { files: files.len(), records, head: prev_hash, checkpoints: checkpoints as usize })
}

type RecordIndex = HashMap<u64, (PathBuf, usize, String)>;

/// Parse a checkpoint line and check its signature.
fn check_checkpoint(line: &[u8], key: Option<&VerifyingKey>) -> Result<Checkpoint, String> {
    let checkpoint: Checkpoint =
        serde_json::from_slice(line).map_err(|e| format!("not a checkpoint: {e}"))?;
    let key = key.ok_or("no public key to check checkpoint signatures (see --public-key)")?;
    if !checkpoint.verify(key) {
        return Err("bad checkpoint signature".into());
    }
    Ok(checkpoint)
}

/// The trail holds the record a checkpoint covers, unchanged.
fn check_covered(
    checkpoint: &Checkpoint,
    hashes: &RecordIndex,
    records: u64,
    last_position: &(PathBuf, usize),
    number: usize,
) -> Result<(), Failure> {
    match hashes.get(&checkpoint.seq) {
        Some((_, _, hash)) if *hash == checkpoint.hash => Ok(()),
        Some((file, line, _)) => Err(Failure {
            file: file.clone(),
            line: *line,
            reason: format!(
                "record {} differs from checkpoint {} (line {number}): the tail was rewritten",
                checkpoint.seq, checkpoint.n
            ),
        }),
        None => Err(Failure {
            file: last_position.0.clone(),
            line: last_position.1,
            reason: format!(
                "the trail ends at seq {records} but checkpoint {} covers seq {}: the tail was truncated",
                checkpoint.n, checkpoint.seq
            ),
        }),
    }
}

/// Every checkpoint the witness holds is in the checkpoints file as written
/// there, and the trail reaches it.
fn check_witness(
    witness: &Path,
    key: Option<&VerifyingKey>,
    local: &HashMap<u64, Vec<u8>>,
    hashes: &RecordIndex,
    records: u64,
    last_position: &(PathBuf, usize),
) -> Result<(), Failure> {
    let file = witness.join(CHECKPOINTS_FILE);
    let bytes = std::fs::read(&file).map_err(|e| Failure {
        file: file.clone(),
        line: 0,
        reason: format!("cannot read the witness: {e}"),
    })?;
    for (index, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let number = index + 1;
        let fail = |reason: String| Failure { file: file.clone(), line: number, reason };
        let checkpoint = check_checkpoint(line, key).map_err(fail)?;
        match local.get(&checkpoint.n) {
            Some(local_line) if local_line == line => {}
            Some(_) => {
                return Err(fail(format!(
                    "checkpoint {} differs from the trail's checkpoints file",
                    checkpoint.n
                )));
            }
            None => {
                return Err(fail(format!(
                    "the witness holds checkpoint {} (seq {}) that the trail's checkpoints file lacks: the trail was rolled back",
                    checkpoint.n, checkpoint.seq
                )));
            }
        }
        check_covered(&checkpoint, hashes, records, last_position, number)?;
    }
    Ok(())
}
