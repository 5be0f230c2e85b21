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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{AuditEvent, AuditRecord};

    /// A trail of `n` records over two day files.
    fn trail(n: u64) -> (tempfile::TempDir, Vec<AuditRecord>) {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let event = AuditEvent {
                event: "tools.invoke".into(),
                decision: "completed".into(),
                ..Default::default()
            };
            let record =
                AuditRecord::chain(seq, format!("2026-01-0{}T00:00:00.000Z", 1 + seq / 4), event, prev);
            prev = record.hash.clone();
            records.push(record);
        }
        for record in &records {
            let day = &record.ts[..10].replace('-', "");
            let path = dir.path().join(format!("audit-{day}.jsonl"));
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            std::io::Write::write_all(&mut file, &record.to_line()).unwrap();
        }
        (dir, records)
    }

    fn seqs(batch: &Batch) -> Vec<u64> {
        batch.records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
    }

    #[test]
    fn reads_in_batches_across_files_and_never_past_the_head() {
        let (dir, records) = trail(10);
        let mut reader = TrailReader::after(dir.path(), Cursor::start()).unwrap();
        let batch = reader.read(3, 10).unwrap();
        assert_eq!(seqs(&batch), [1, 2, 3]);
        reader.commit(batch);
        let batch = reader.read(100, 8).unwrap();
        assert_eq!(seqs(&batch), [4, 5, 6, 7, 8], "not past the durable head");
        // Not committed (delivery failed): read again from the same place.
        let again = reader.read(100, 10).unwrap();
        assert_eq!(seqs(&again), [4, 5, 6, 7, 8, 9, 10]);
        reader.commit(again);
        assert!(reader.read(100, 10).unwrap().lines.is_empty());
        assert_eq!(reader.cursor(), &Cursor { seq: 10, hash: records[9].hash.clone() });
        // A reader resumed at a cursor goes on from there.
        let cursor = Cursor { seq: 6, hash: records[5].hash.clone() };
        let resumed = TrailReader::after(dir.path(), cursor).unwrap();
        assert_eq!(seqs(&resumed.read(100, 10).unwrap()), [7, 8, 9, 10]);
    }

    #[test]
    fn a_cursor_the_trail_does_not_hold_is_refused() {
        let (dir, _) = trail(5);
        let wrong = Cursor { seq: 3, hash: "f".repeat(64) };
        assert!(TrailReader::after(dir.path(), wrong).unwrap_err().contains("hash differs"));
        let beyond = Cursor { seq: 9, hash: "f".repeat(64) };
        assert!(TrailReader::after(dir.path(), beyond).unwrap_err().contains("ends before"));
    }

    #[test]
    fn an_edited_record_stops_the_reader() {
        let (dir, _) = trail(6);
        let file = trail_files(dir.path()).unwrap()[0].clone();
        let text = std::fs::read_to_string(&file).unwrap().replacen("completed", "c0mpleted", 1);
        std::fs::write(&file, text).unwrap();
        let reader = TrailReader::after(dir.path(), Cursor::start()).unwrap();
        assert!(reader.read(100, 6).unwrap_err().contains("does not continue the chain"));
    }

    #[test]
    fn a_line_still_being_written_is_left_for_later() {
        let (dir, _) = trail(2);
        let file = trail_files(dir.path()).unwrap()[0].clone();
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        std::io::Write::write_all(&mut f, b"{\"seq\":3,").unwrap();
        let reader = TrailReader::after(dir.path(), Cursor::start()).unwrap();
        assert_eq!(seqs(&reader.read(100, u64::MAX).unwrap()), [1, 2]);
    }
}
