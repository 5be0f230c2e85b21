//! Hot reload by file watching: `manifests/`, `policies/` and the directory
//! of every component a manifest names.
//!
//! Events are debounced (editors save by writing a temporary file and
//! renaming it, often several times in a row), and a component file that is
//! still growing is waited for until its size and modification time hold
//! still. Then the registry and/or the policy are rebuilt aside and swapped
//! in whole ([`AppState::reload_registry`], [`AppState::reload_policies`]);
//! a broken input keeps what is serving. Calls in flight keep the snapshot
//! they started with.

use crate::state::AppState;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Quiet time after the last event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(40);
/// Longest a burst of events may postpone a reload.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// How long to wait for a component file still being written.
const STABLE_TIMEOUT: Duration = Duration::from_secs(5);
const STABLE_PROBE: Duration = Duration::from_millis(25);

/// Start watching; the watcher stops when the host shuts down.
pub fn spawn(state: AppState) -> notify::Result<()> {
    let (events, mut receiver) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        // Reads (our own reloads read every file) and metadata changes are
        // not changes of content.
        Ok(event) if changes_content(&event.kind) => event.paths.into_iter().for_each(|path| {
            let _ = events.send(path);
        }),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "file watcher error"),
    })?;
    let config = state.config().clone();
    for dir in [config.manifests_dir(), config.root.join("policies")] {
        std::fs::create_dir_all(&dir).ok();
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    }
    let mut component_dirs = BTreeSet::new();
    update_component_dirs(&state, &mut watcher, &mut component_dirs);
    let mut shutdown = state.shutdown_signal();
    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                path = receiver.recv() => match path { Some(path) => path, None => return },
                _ = shutdown.changed() => return,
            };
            let mut changed = BTreeSet::from([first]);
            let started = Instant::now();
            while started.elapsed() < MAX_DELAY {
                match tokio::time::timeout(DEBOUNCE, receiver.recv()).await {
                    Ok(Some(path)) => {
                        changed.insert(path);
                    }
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            reload(&state, &changed).await;
            // A component may have appeared in a directory we only start
            // watching now; if the last reload failed, try once more.
            if update_component_dirs(&state, &mut watcher, &mut component_dirs)
                && state.last_reload().is_some_and(|r| !r.ok)
            {
                let _ = state.reload_registry(Vec::new()).await;
                update_component_dirs(&state, &mut watcher, &mut component_dirs);
            }
        }
    });
    Ok(())
}

/// Reload what the changed paths affect.
async fn reload(state: &AppState, changed: &BTreeSet<PathBuf>) {
    let config = state.config();
    let policy_dir = config.root.join("policies");
    let manifests_dir = config.manifests_dir();
    let registry = state.registry();
    let components: BTreeSet<PathBuf> = registry.plugins().map(|p| p.component_path.clone()).collect();
    let is_manifest = |p: &Path| {
        p.parent() == Some(manifests_dir.as_path())
            && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
    };
    let policy_changed = changed.iter().any(|p| {
        p.parent() == Some(policy_dir.as_path()) && p.file_name() == config.policy_file().file_name()
    });
    let registry_files: Vec<&PathBuf> =
        changed.iter().filter(|p| is_manifest(p) || components.contains(*p) || is_wasm(p)).collect();
    if !registry_files.is_empty() {
        for file in registry_files.iter().filter(|p| is_wasm(p)) {
            wait_until_stable(file).await;
        }
        let names = registry_files.iter().map(|p| relative(&config.root, p)).collect();
        let _ = state.reload_registry(names).await;
    }
    if policy_changed {
        let _ = state.reload_policies().await;
    }
}

fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}

fn is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Wait until `path`'s size and modification time stop changing (or it is
/// gone, or the timeout passes).
async fn wait_until_stable(path: &Path) {
    let probe = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()));
    let deadline = Instant::now() + STABLE_TIMEOUT;
    let mut last = probe(path);
    while Instant::now() < deadline {
        tokio::time::sleep(STABLE_PROBE).await;
        let now = probe(path);
        if now == last {
            return;
        }
        last = now;
    }
    tracing::warn!(path = %path.display(), "component file still changing; reloading anyway");
}

/// Watch the directory of every component the current registry names, and
/// of every component a manifest on disk names (so a manifest written before
/// its component is built still picks the component up when it appears).
/// Returns whether a directory was added.
fn update_component_dirs(
    state: &AppState,
    watcher: &mut RecommendedWatcher,
    watched: &mut BTreeSet<PathBuf>,
) -> bool {
    let mut wanted: BTreeSet<PathBuf> =
        state.registry().plugins().filter_map(|p| p.component_path.parent().map(Path::to_path_buf)).collect();
    wanted.extend(
        components_named_on_disk(state).into_iter().filter_map(|p| p.parent().map(Path::to_path_buf)),
    );
    wanted.retain(|dir| dir.is_dir());
    for dir in wanted.difference(watched) {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a component directory");
        }
    }
    for dir in watched.difference(&wanted) {
        let _ = watcher.unwatch(dir);
    }
    let added = wanted.difference(watched).next().is_some();
    *watched = wanted;
    added
}

/// `component:` of every manifest file, read loosely (a manifest that fails
/// validation may still name its component).
fn components_named_on_disk(state: &AppState) -> Vec<PathBuf> {
    let config = state.config();
    let Ok(entries) = std::fs::read_dir(config.manifests_dir()) else { return Vec::new() };
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .filter_map(|text| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text).ok())
        .filter_map(|manifest| manifest.get("component")?.as_str().map(|c| config.resolve(Path::new(c))))
        .collect()
}
