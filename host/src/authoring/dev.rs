//! `fastmcp plugin dev`: the inner loop. Watch a plugin's sources and its
//! manifest; on every change rebuild into a temporary file, load it with
//! the host's own loader, and only if it loads move it into place, where
//! the running host (watching `plugins/`) hot-reloads it from the compile
//! cache the check just filled. A build that fails or a component the host
//! would reject never replaces the one being served.
//!
//! The terminal shows each tool's build errors as it prints them, then the
//! verdict: `loaded: …` with the tools, or `rejected: …` naming the file,
//! the field and the mismatch; and, live, what the plugin says while a host
//! on the same root serves it (its output, log lines, failures, refused
//! requests: [`crate::plugin_log`]'s file, followed, each line prefixed
//! `plugin: `).

use super::check::Checker;
use super::{PluginSource, Project, build, temporary_beside};
use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the loop waits for a burst of writes (an editor's save) to end.
const SETTLE: Duration = Duration::from_millis(150);

/// What one round of the loop did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// Built, loaded and moved into place.
    Serving,
    /// The build failed (its errors are on the terminal).
    BuildFailed,
    /// Built, but the host would reject it.
    Rejected,
}

/// Watch and rebuild until interrupted (or, with `rounds`, after that many).
pub fn run(
    project: &Project,
    plugin: &PluginSource,
    checker: &Checker,
    rounds: Option<usize>,
) -> anyhow::Result<()> {
    let (changed, changes) = mpsc::channel();
    let manifest = plugin.manifest.clone();
    let dir = plugin.dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event.kind.is_modify() | event.kind.is_create() | event.kind.is_remove()
            && event.paths.iter().any(|p| p == &manifest || p.strip_prefix(&dir).is_ok_and(is_source))
        {
            let _ = changed.send(());
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(&plugin.dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", plugin.dir.display()))?;
    if let Some(dir) = plugin.manifest.parent() {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))?;
    }
    follow(checker.plugin_log_file(&plugin.name));
    eprintln!(
        "fastmcp: watching {} and {} ({}); Ctrl-C to stop",
        plugin.dir.display(),
        plugin.manifest.display(),
        plugin.lang.name()
    );
    let mut done = 0;
    loop {
        round(project, plugin, checker);
        done += 1;
        if rounds.is_some_and(|n| done >= n) {
            return Ok(());
        }
        changes.recv().context("the file watcher stopped")?;
        // Let the burst settle, then drop what it queued.
        std::thread::sleep(SETTLE);
        while changes.try_recv().is_ok() {}
    }
}

/// Build, check, and move into place if it loads.
pub fn round(project: &Project, plugin: &PluginSource, checker: &Checker) -> Round {
    let started = Instant::now();
    eprintln!("fastmcp: building {} ({})…", plugin.name, plugin.lang.name());
    let tmp = temporary_beside(&plugin.component);
    let built = match build::build_into(project, plugin, &tmp) {
        Ok(built) => built,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("build failed: {e:#}; the host keeps serving the previous component");
            return Round::BuildFailed;
        }
    };
    eprintln!("fastmcp: built in {:.1} s ({} KiB); checking…", built.took.as_secs_f64(), built.bytes / 1024);
    let verdict = checker.check_with(&plugin.manifest, Some(&tmp));
    if verdict.outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("{verdict}; the host keeps serving the previous component");
        return Round::Rejected;
    }
    if let Err(e) = std::fs::rename(&tmp, &plugin.component) {
        eprintln!("cannot move the component into place: {e}");
        return Round::BuildFailed;
    }
    eprintln!("{verdict}; in place after {:.1} s, the host reloads it now", started.elapsed().as_secs_f64());
    Round::Serving
}

/// How often the plugin's log file is read for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Print the lines added to `file` from now on (from the start of a file
/// that is rotated or created later), on a thread of its own.
fn follow(file: std::path::PathBuf) {
    use std::io::{BufRead, Seek};
    eprintln!("fastmcp: printing what the plugin says as a host serves it (from {})", file.display());
    let start = std::fs::metadata(&file).map_or(0, |m| m.len());
    let path = file.clone();
    let spawned = std::thread::Builder::new().name("plugin-log".into()).spawn(move || {
        let mut offset = start;
        let mut partial = String::new();
        loop {
            std::thread::sleep(FOLLOW_EVERY);
            let Ok(len) = std::fs::metadata(&file).map(|m| m.len()) else { continue };
            if len < offset {
                // Rotated: the new file holds only lines not yet printed.
                offset = 0;
                partial.clear();
            }
            if len == offset {
                continue;
            }
            let Ok(mut reader) = std::fs::File::open(&file).map(std::io::BufReader::new) else { continue };
            if reader.seek(std::io::SeekFrom::Start(offset)).is_err() {
                continue;
            }
            let mut bytes = Vec::new();
            while let Ok(n) = reader.read_until(b'\n', &mut bytes) {
                if n == 0 {
                    break;
                }
                offset += n as u64;
                partial.push_str(&String::from_utf8_lossy(&bytes));
                bytes.clear();
                if partial.ends_with('\n') {
                    eprint!("plugin: {partial}");
                    partial.clear();
                }
            }
        }
    });
    if let Err(e) = spawned {
        eprintln!("fastmcp: cannot follow {}: {e}", path.display());
    }
}

/// A change the loop rebuilds for (`path` relative to the sources): not
/// build output, dependencies, caches or editor droppings.
fn is_source(path: &Path) -> bool {
    let ignored_dir = path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("target" | "node_modules" | "__pycache__" | ".fastmcp" | ".git")
        )
    });
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ignored_file = name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".wasm")
        || name.ends_with(".tmp")
        || name.ends_with(".swp");
    !ignored_dir && !ignored_file
}

#[cfg(test)]
mod tests {
    use super::is_source;
    use std::path::Path;

    #[test]
    fn build_output_and_editor_files_are_not_sources() {
        assert!(is_source(Path::new("app.py")));
        assert!(is_source(Path::new("src/lib.rs")));
        for ignored in
            ["x.wasm", ".x.wasm.tmp", "target/debug/a.rs", "node_modules/a.js", ".app.py.swp", "app.py~"]
        {
            assert!(!is_source(Path::new(ignored)), "{ignored}");
        }
    }
}
