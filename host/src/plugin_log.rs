//! Each plugin's own log, for its author: every line the host logs about a
//! plugin's calls (target `fastmcp::plugin`: its standard output and error,
//! its `log` lines, a trap or failure and its cause, an outbound request the
//! host refused and why) also goes to `.runtime/plugin-output/NAME.log`,
//! one readable line each with the time, level, tool and correlation id.
//! `fastmcp plugin dev` follows its plugin's file and prints it live.
//!
//! Off the request path and bounded: lines go through a bounded channel to
//! one writer thread, which drains it every 50 ms (a full channel drops the
//! line and counts it; no call ever wakes the writer); a file
//! beyond `runtime.plugin_log_bytes` is renamed to `NAME.log.1` (replacing
//! the previous one) and started afresh, so a plugin keeps at most twice
//! that on disk. Guest text is written with control characters escaped, so
//! following the file never lets a plugin drive the author's terminal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// The target every plugin line is logged under.
pub const TARGET: &str = "fastmcp::plugin";

/// The directory under `.runtime/` that holds the files.
pub const DIR: &str = "plugin-output";

/// Lines waiting for the writer before new ones are dropped (what calls may
/// log in one [`DRAIN_EVERY`]).
const QUEUED_LINES: usize = 8192;

/// How often the writer takes what is queued.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Bytes of one line at most (longer ones are cut).
const MAX_LINE: usize = 8 * 1024;

/// Open files the writer keeps (closed all at once beyond).
const OPEN_FILES: usize = 256;

/// The file of `plugin` in `dir`.
pub fn file_of(dir: &Path, plugin: &str) -> PathBuf {
    dir.join(format!("{plugin}.log"))
}

/// The writer's inbox, once [`start`] has run.
static SINK: OnceLock<SyncSender<(String, String)>> = OnceLock::new();

/// Lines dropped because the writer fell behind.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped so far because the writer fell behind.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Start writing plugin files into `dir`, each kept under `max_bytes`
/// (0: never start). Once per process; later calls do nothing.
pub fn start(dir: PathBuf, max_bytes: u64) {
    if max_bytes == 0 || SINK.get().is_some() {
        return;
    }
    let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUED_LINES);
    if SINK.set(sender).is_ok() {
        let spawned = std::thread::Builder::new()
            .name("plugin-log".into())
            .spawn(move || Writer { dir, max_bytes, open: HashMap::new() }.run(receiver));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the plugin log writer; plugin files are off");
        }
    }
}

/// The tracing layer that feeds the writer (install it filtered to [`TARGET`]).
pub struct PluginLogLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PluginLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let Some(sink) = SINK.get() else { return };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(plugin) = fields.tool.as_deref().and_then(|t| t.split(':').next()).map(str::to_owned) else {
            return;
        };
        let line = fields.line(event.metadata().level());
        if let Err(TrySendError::Full(_)) = sink.try_send((plugin, line)) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An event's fields, as the file shows them.
#[derive(Default)]
struct Fields {
    tool: Option<String>,
    correlation_id: Option<String>,
    stream: Option<String>,
    message: String,
    rest: String,
}

impl Fields {
    fn line(&self, level: &tracing::Level) -> String {
        let mut line = format!(
            "{} {level:<5} {} {}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.tool.as_deref().unwrap_or("-"),
            self.correlation_id.as_deref().unwrap_or("-"),
        );
        if let Some(stream) = &self.stream {
            let _ = write!(line, " {stream}:");
        }
        let _ = write!(line, " {}{}", escaped(&self.message), escaped(&self.rest));
        let mut line = crate::text::clip(&line, MAX_LINE).into_owned();
        line.push('\n');
        line
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "tool" => self.tool = Some(value.to_owned()),
            "correlation_id" => self.correlation_id = Some(value.to_owned()),
            "stream" => self.stream = Some(value.to_owned()),
            "message" => self.message = value.to_owned(),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields and the formatted message arrive here.
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

/// `text` with control characters (escape sequences, carriage returns,
/// newlines) written as `\u{..}`, tabs kept.
fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
            .collect(),
    )
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    max_bytes: u64,
    /// Open files (buffered; flushed after each drain) and their sizes.
    open: HashMap<String, (std::io::BufWriter<std::fs::File>, u64)>,
}

impl Writer {
    /// Drain the queue every [`DRAIN_EVERY`] rather than wait on it: a
    /// waiting receiver would make every call that logs wake this thread
    /// (a futex syscall and a context switch per line, measured at a few
    /// percent of a busy host's CPU).
    fn run(mut self, lines: Receiver<(String, String)>) {
        use std::sync::mpsc::TryRecvError;
        let mut warned = false;
        loop {
            std::thread::sleep(DRAIN_EVERY);
            loop {
                let (plugin, line) = match lines.try_recv() {
                    Ok(entry) => entry,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                };
                if let Err(e) = self.append(&plugin, line.as_bytes()) {
                    self.open.remove(&plugin);
                    if !warned {
                        warned = true;
                        tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write a plugin log file");
                    }
                }
            }
            self.flush();
        }
    }

    /// Write out what is buffered.
    fn flush(&mut self) {
        for (file, _) in self.open.values_mut() {
            let _ = file.flush();
        }
    }

    fn append(&mut self, plugin: &str, line: &[u8]) -> std::io::Result<()> {
        let path = file_of(&self.dir, plugin);
        let size = line.len() as u64;
        if self.open.get(plugin).is_some_and(|(_, written)| written + size > self.max_bytes) {
            self.open.remove(plugin);
            std::fs::rename(&path, path.with_extension("log.1"))?;
        }
        if !self.open.contains_key(plugin) {
            if self.open.len() >= OPEN_FILES {
                self.open.clear();
            }
            std::fs::create_dir_all(&self.dir)?;
            let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            let written = file.metadata()?.len();
            self.open.insert(plugin.to_owned(), (std::io::BufWriter::new(file), written));
            if written + size > self.max_bytes && written > 0 {
                // Full from an earlier run: rotate before writing.
                self.open.remove(plugin);
                std::fs::rename(&path, path.with_extension("log.1"))?;
                let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                self.open.insert(plugin.to_owned(), (std::io::BufWriter::new(file), 0));
            }
        }
        let (file, written) = self.open.get_mut(plugin).expect("opened above");
        file.write_all(line)?;
        *written += size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_so_a_plugin_cannot_drive_a_terminal() {
        assert_eq!(escaped("plain\ttext"), "plain\ttext");
        assert_eq!(escaped("\u{1b}[2Jgone\r"), "\\u{1b}[2Jgone\\u{d}");
    }

    #[test]
    fn a_file_beyond_its_cap_is_rotated_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer { dir: dir.path().to_path_buf(), max_bytes: 10, open: HashMap::new() };
        for line in ["aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n"] {
            writer.append("p", line.as_bytes()).unwrap();
        }
        writer.flush();
        let current = std::fs::read_to_string(dir.path().join("p.log")).unwrap();
        let previous = std::fs::read_to_string(dir.path().join("p.log.1")).unwrap();
        assert_eq!(current, "eeee\n");
        assert_eq!(previous, "cccc\ndddd\n");
        let mut reopened = Writer { dir: dir.path().to_path_buf(), max_bytes: 10, open: HashMap::new() };
        reopened.append("p", b"ffff\ngggg\n").unwrap();
        reopened.flush();
        assert_eq!(std::fs::read_to_string(dir.path().join("p.log")).unwrap(), "ffff\ngggg\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("p.log.1")).unwrap(), "eeee\n");
    }
}
