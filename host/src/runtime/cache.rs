//! On-disk cache of precompiled components, so a restart does not recompile;
//! and an in-memory cache of compiled functions ([`FunctionCache`]), so a
//! changed component recompiles only its changed functions.
//!
//! Entries live in `.runtime/cache/<sha256 of the component>-<engine hash>.cwasm`.
//! The engine hash covers wasmtime's version and every setting that affects
//! compiled code (`Engine::precompile_compatibility_hash`), so a changed engine
//! never loads an incompatible artifact. Files are written to a temporary name
//! and renamed into place: a file that may be mmapped is never rewritten.

use prometheus_client::metrics::counter::Counter;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Counters exposed in `/health` and `/metrics` (shared with the metrics
/// registry, so both always agree).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Components loaded from the cache.
    pub hits: Counter,
    /// Components compiled (and then stored).
    pub misses: Counter,
}

/// The compile cache of one engine.
pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
    /// Hit and miss counters.
    pub stats: CacheStats,
}

/// Feeds `Hash` output into SHA-256, for a hash that is stable across runs.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("finalised through the inner digest")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Self { dir, engine_hash, stats: CacheStats::default() }
    }

    /// The component for `bytes`: from the cache when present and loadable,
    /// otherwise compiled and stored. Blocking: call it off the async threads.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let digest = hex::encode(Sha256::digest(bytes));
        let path = self.dir.join(format!("{digest}-{}.cwasm", self.engine_hash));
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => {
                    self.stats.hits.inc();
                    return Ok(component);
                }
                Err(e) => tracing::warn!(
                    path = %path.display(), error = %e, "discarding unreadable compile-cache entry"
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        self.stats.misses.inc();
        if let Err(e) = self.store(&path, &component) {
            // The cache is an optimisation: a read-only disk must not stop serving.
            tracing::warn!(path = %path.display(), error = %e, "could not write compile cache");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize()?;
        let tmp = self.dir.join(format!(".tmp-{}", uuid::Uuid::now_v7()));
        let mut file = std::fs::File::create(&tmp)?;
        let written = file.write_all(&bytes).and_then(|()| file.sync_all());
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
    }
}

/// Load a precompiled component.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts its input to be wasmtime's own output.
    // Only this module writes the cache directory (under the host's private
    // `.runtime/`), always by write-then-rename of `Component::serialize`
    // output, and entries are keyed by the engine's compatibility hash;
    // wasmtime also checks the header and version before loading.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Cranelift's incremental compilation cache: compiled functions by the hash
/// of their IR, in memory, up to a byte budget (then new functions are simply
/// not kept). A rebuilt Python or JavaScript plugin differs from the last
/// build in a few functions and its data; the interpreter's thousands of
/// functions come from here.
#[derive(Debug)]
pub struct FunctionCache {
    entries: std::sync::Mutex<FunctionEntries>,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct FunctionEntries {
    by_key: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl FunctionCache {
    /// An empty cache holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: usize) -> Self {
        Self { entries: Default::default(), max_bytes }
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let entries = self.entries.lock().expect("the function cache lock is never poisoned");
        entries.by_key.get(key).map(|value| std::borrow::Cow::Owned(value.clone()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut entries = self.entries.lock().expect("the function cache lock is never poisoned");
        let size = key.len() + value.len();
        if entries.bytes + size > self.max_bytes || entries.by_key.contains_key(key) {
            return false;
        }
        entries.bytes += size;
        entries.by_key.insert(key.to_vec(), value);
        true
    }
}
