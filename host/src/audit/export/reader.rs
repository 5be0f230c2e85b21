//! Reading the trail from a position, for export: whole lines only, never
//! past the last durable record, and checking the chain as it goes (a record
//! that does not follow its predecessor stops the export instead of shipping
//! an edited trail).

use crate::audit::record::{GENESIS, hash_line_value};
use crate::audit::recover::trail_files;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The last record a sink has (`seq` 0: none yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl Cursor {
    /// Before the first record.
    pub fn start() -> Self {
        Self { seq: 0, hash: GENESIS.to_owned() }
    }
}

/// Where the next unread line starts.
#[derive(Debug, Clone)]
struct Position {
    file: Option<PathBuf>,
    offset: u64,
    cursor: Cursor,
}

/// Records read but not yet delivered.
#[derive(Debug, Default)]
pub struct Batch {
    /// The lines as on disk (without `\n`).
    pub lines: Vec<Vec<u8>>,
    /// The same, parsed.
    pub records: Vec<Value>,
    end: Option<Position>,
}

impl Batch {
    /// The cursor once this batch is delivered.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.end.as_ref().map(|p| &p.cursor)
    }
}

/// Reads a trail directory after a cursor.
#[derive(Debug)]
pub struct TrailReader {
    dir: PathBuf,
    at: Position,
}

impl TrailReader {
    /// A reader positioned after `cursor`, which must be a record of the
    /// trail (its hash matching) — else the error says why.
    pub fn after(dir: &Path, cursor: Cursor) -> Result<Self, String> {
        let mut reader =
            Self { dir: dir.to_path_buf(), at: Position { file: None, offset: 0, cursor: Cursor::start() } };
        let wanted = cursor.clone();
        while reader.at.cursor.seq < wanted.seq {
            let batch = reader.read(4096, wanted.seq)?;
            if batch.lines.is_empty() {
                return Err(format!("the trail ends before record {} (the export cursor)", wanted.seq));
            }
            reader.commit(batch);
        }
        if reader.at.cursor != wanted {
            return Err(format!(
                "record {} is not the one the export cursor names (its hash differs)",
                wanted.seq
            ));
        }
        Ok(reader)
    }

    /// The last record read and committed.
    pub fn cursor(&self) -> &Cursor {
        &self.at.cursor
    }

    /// Up to `max` records after the position, none after `head`.
    pub fn read(&self, max: usize, head: u64) -> Result<Batch, String> {
        let mut batch = Batch::default();
        let mut at = self.at.clone();
        let files = trail_files(&self.dir).map_err(|e| format!("listing the trail: {e}"))?;
        let mut index = match &at.file {
            Some(file) => files.iter().position(|f| f == file).ok_or("a trail file went away")?,
            None => 0,
        };
        while batch.lines.len() < max && at.cursor.seq < head {
            let Some(file) = files.get(index) else { break };
            if at.file.as_ref() != Some(file) {
                at = Position { file: Some(file.clone()), offset: 0, cursor: at.cursor };
            }
            let read = read_lines(file, &mut at, max - batch.lines.len(), head, &mut batch)?;
            if read == 0 {
                // This file has nothing more (yet): the next one, if any.
                if index + 1 >= files.len() {
                    break;
                }
                index += 1;
            }
        }
        batch.end = Some(at);
        Ok(batch)
    }

    /// Move past a delivered batch.
    pub fn commit(&mut self, batch: Batch) {
        if let Some(end) = batch.end {
            self.at = end;
        }
    }
}

/// Append up to `max` whole lines of `file` from `at` to `batch`, checking
/// the chain; the number read.
fn read_lines(
    file: &Path,
    at: &mut Position,
    max: usize,
    head: u64,
    batch: &mut Batch,
) -> Result<usize, String> {
    let mut reader = std::fs::File::open(file)
        .and_then(|mut f| f.seek(SeekFrom::Start(at.offset)).map(|_| BufReader::new(f)))
        .map_err(|e| format!("reading {}: {e}", file.display()))?;
    let mut read = 0;
    let mut line = Vec::new();
    while read < max && at.cursor.seq < head {
        line.clear();
        let n =
            reader.read_until(b'\n', &mut line).map_err(|e| format!("reading {}: {e}", file.display()))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // the end, or a line still being written
        }
        line.pop();
        let value: Value = serde_json::from_slice(&line)
            .map_err(|_| format!("{}: record {} is not JSON", file.display(), at.cursor.seq + 1))?;
        let seq = value["seq"].as_u64().unwrap_or(0);
        let (prev, hash) = (value["prev_hash"].as_str().unwrap_or(""), value["hash"].as_str().unwrap_or(""));
        if seq != at.cursor.seq + 1 || prev != at.cursor.hash || hash_line_value(prev, &value) != hash {
            return Err(format!(
                "{}: the record after {} does not continue the chain; export stopped",
                file.display(),
                at.cursor.seq
            ));
        }
        at.offset += n as u64;
        at.cursor = Cursor { seq, hash: hash.to_owned() };
        batch.lines.push(line.clone());
        batch.records.push(value);
        read += 1;
    }
    Ok(read)
}
