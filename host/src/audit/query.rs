//! `fastmcp audit tail` and `fastmcp audit query`: the trail read directly,
//! filtered, printed as JSON lines or a table. Everything printed was read
//! through the chain check of [`super::export::reader`] from the first
//! record, so a printed record is one the chain vouches for; the signed
//! checkpoints are `fastmcp audit verify`'s.

use super::export::reader::{Cursor, TrailReader};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Which records to print.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At or after this time (RFC 3339, UTC).
    pub since: Option<String>,
    /// Before this time.
    pub until: Option<String>,
    /// The tool id.
    pub tool: Option<String>,
    /// The caller's subject.
    pub sub: Option<String>,
    /// The decision (`completed`, `pending_confirmation`, …, or an error code).
    pub decision: Option<String>,
    /// The event (`tools.invoke`, `tools.denied`, …).
    pub event: Option<String>,
    /// The trace id.
    pub trace_id: Option<String>,
}

impl Filter {
    fn matches(&self, record: &Value) -> bool {
        let field = |name: &str| record[name].as_str();
        let ts = field("ts").unwrap_or("");
        let equal = |wanted: &Option<String>, actual: Option<&str>| {
            wanted.as_deref().is_none_or(|w| Some(w) == actual)
        };
        self.since.as_deref().is_none_or(|s| ts >= s)
            && self.until.as_deref().is_none_or(|u| ts < u)
            && equal(&self.tool, field("tool"))
            && equal(&self.sub, record["principal"]["sub"].as_str())
            && equal(&self.decision, field("decision"))
            && equal(&self.event, field("event"))
            && equal(&self.trace_id, field("trace_id"))
    }
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON record per line, as in the trail.
    Json,
    /// Aligned columns.
    Table,
}

/// `t` as the trail writes times: RFC 3339, UTC, milliseconds; also
/// accepts a duration back from now (`15m`, `2h`, `1d`).
pub fn parse_time(raw: &str) -> Result<String, String> {
    let time = match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(time) => time.with_timezone(&chrono::Utc),
        Err(_) => {
            let ago = crate::auth::devkeys::parse_ttl(raw)
                .map_err(|_| format!("`{raw}` is neither an RFC 3339 time nor a duration like 15m"))?;
            chrono::Utc::now() - chrono::Duration::from_std(ago).map_err(|e| e.to_string())?
        }
    };
    Ok(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// Print the matching records (the last `last` of them, if given); with
/// `follow`, keep printing new ones as they are written.
pub fn run(
    dir: &Path,
    filter: &Filter,
    format: Format,
    last: Option<usize>,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    let mut reader = TrailReader::after(dir, Cursor::start())?;
    let mut kept = VecDeque::new();
    loop {
        let batch = reader.read(4096, u64::MAX)?;
        if batch.lines.is_empty() {
            break;
        }
        for (line, record) in batch.lines.iter().zip(&batch.records) {
            if filter.matches(record) {
                kept.push_back((line.clone(), record.clone()));
                if last.is_some_and(|n| kept.len() > n) {
                    kept.pop_front();
                }
            }
        }
        reader.commit(batch);
    }
    if format == Format::Table {
        writeln!(out, "{}", table_row(&HEADER.map(str::to_owned))).map_err(|e| e.to_string())?;
    }
    for (line, record) in &kept {
        print(out, format, line, record)?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        out.flush().map_err(|e| e.to_string())?;
        let batch = reader.read(4096, u64::MAX)?;
        if batch.lines.is_empty() {
            std::thread::sleep(Duration::from_millis(250));
            continue;
        }
        for (line, record) in batch.lines.iter().zip(&batch.records) {
            if filter.matches(record) {
                print(out, format, line, record)?;
            }
        }
        reader.commit(batch);
    }
}

const HEADER: [&str; 8] = ["TIME", "SEQ", "EVENT", "SUB", "TOOL", "DECISION", "STATUS", "TRACE"];

fn print(out: &mut dyn Write, format: Format, line: &[u8], record: &Value) -> Result<(), String> {
    let written = match format {
        Format::Json => out.write_all(line).and_then(|()| out.write_all(b"\n")),
        Format::Table => {
            let text = |v: &Value| match v {
                Value::Null => "-".to_owned(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let row = [
                text(&record["ts"]),
                text(&record["seq"]),
                text(&record["event"]),
                text(&record["principal"]["sub"]),
                text(&record["tool"]),
                text(&record["decision"]),
                text(&record["status"]),
                text(&record["trace_id"]),
            ];
            writeln!(out, "{}", table_row(&row))
        }
    };
    written.map_err(|e| e.to_string())
}

/// Columns padded to fixed widths; control characters escaped (a
/// record's strings came from callers).
fn table_row(cells: &[String; 8]) -> String {
    const WIDTHS: [usize; 8] = [24, 6, 16, 16, 24, 24, 6, 32];
    cells
        .iter()
        .zip(WIDTHS)
        .map(|(cell, width)| {
            let cell: String = cell.chars().flat_map(char::escape_debug).collect();
            format!("{cell:<width$}")
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end()
        .to_owned()
}
