//! The embedded durable store: one `redb` file in `.runtime/state.redb`.
//!
//! Every write is its own fsynced transaction, so a consumed action token or
//! an idempotency record survives a crash the moment the call that wrote it
//! returns. Values carry their expiry in front (8 bytes, Unix milliseconds);
//! expired entries read as absent and a background sweep deletes them.

use super::{KeyValueStore, StoreError, StoreFuture};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");

/// How often expired entries are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The store. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// `expires_at_ms || value`.
fn encode(value: &[u8], ttl: Duration) -> Vec<u8> {
    let expires_at = now_ms().saturating_add(ttl.as_millis() as u64);
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value, if the stored entry is still live.
fn live(stored: &[u8], now: u64) -> Option<&[u8]> {
    let (expiry, value) = stored.split_at_checked(8)?;
    let expires_at = u64::from_be_bytes(expiry.try_into().ok()?);
    (expires_at > now).then_some(value)
}

impl EmbeddedStore {
    /// Open (or create) the store at `path` and start its sweeper, which
    /// stops when the store is dropped.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let db = Database::create(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        let write = db.begin_write().map_err(error)?;
        write.open_table(ENTRIES).map_err(error)?;
        write.commit().map_err(error)?;
        let store = Arc::new(Self { db: Arc::new(db) });
        spawn_sweeper(Arc::downgrade(&store));
        Ok(store)
    }

    /// Delete expired entries; returns how many.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let write = self.db.begin_write().map_err(error)?;
        let removed = {
            let mut table = write.open_table(ENTRIES).map_err(error)?;
            let before = table.len().map_err(error)?;
            table.retain(|_, stored| live(stored, now).is_some()).map_err(error)?;
            before - table.len().map_err(error)?
        };
        write.commit().map_err(error)?;
        Ok(removed as usize)
    }

    /// Run a blocking database operation off the async threads.
    fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || op(&db)).await.map_err(|e| StoreError(e.to_string()))?
        })
    }
}

fn spawn_sweeper(store: Weak<EmbeddedStore>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let Some(store) = store.upgrade() else { return };
            let swept = tokio::task::spawn_blocking(move || store.sweep()).await;
            match swept {
                Ok(Ok(n)) if n > 0 => tracing::debug!(removed = n, "swept expired state entries"),
                Ok(Err(e)) => tracing::warn!(error = %e, "state sweep failed"),
                _ => {}
            }
        }
    });
}

impl KeyValueStore for EmbeddedStore {
    fn insert_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        let (key, stored) = (key.to_owned(), encode(value, ttl));
        self.blocking(move |db| {
            let write = db.begin_write().map_err(error)?;
            let inserted = {
                let mut table = write.open_table(ENTRIES).map_err(error)?;
                let exists = table
                    .get(key.as_str())
                    .map_err(error)?
                    .is_some_and(|v| live(v.value(), now_ms()).is_some());
                if !exists {
                    table.insert(key.as_str(), stored.as_slice()).map_err(error)?;
                }
                !exists
            };
            write.commit().map_err(error)?;
            Ok(inserted)
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        let (key, stored) = (key.to_owned(), encode(value, ttl));
        self.blocking(move |db| {
            let write = db.begin_write().map_err(error)?;
            write
                .open_table(ENTRIES)
                .map_err(error)?
                .insert(key.as_str(), stored.as_slice())
                .map_err(error)?;
            write.commit().map_err(error)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let read = db.begin_read().map_err(error)?;
            let table = read.open_table(ENTRIES).map_err(error)?;
            let value = table.get(key.as_str()).map_err(error)?;
            Ok(value.and_then(|v| live(v.value(), now_ms()).map(<[u8]>::to_vec)))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let write = db.begin_write().map_err(error)?;
            write.open_table(ENTRIES).map_err(error)?.remove(key.as_str()).map_err(error)?;
            write.commit().map_err(error)
        })
    }

    fn admit<'a>(&'a self, set: &'a str, member: &'a str, ttl: Duration, max: u64) -> StoreFuture<'a, bool> {
        let (first, end) = (format!("{set}\u{0}"), format!("{set}\u{1}"));
        let (key, stored) = (super::member_key(set, member), encode(&[], ttl));
        self.blocking(move |db| {
            let now = now_ms();
            let write = db.begin_write().map_err(error)?;
            let admitted = {
                let mut table = write.open_table(ENTRIES).map_err(error)?;
                let mut live_members = 0u64;
                let mut present = false;
                let mut expired = Vec::new();
                for entry in table.range(first.as_str()..end.as_str()).map_err(error)? {
                    let (k, v) = entry.map_err(error)?;
                    if live(v.value(), now).is_some() {
                        live_members += 1;
                        present |= k.value() == key;
                    } else {
                        expired.push(k.value().to_owned());
                    }
                }
                for k in &expired {
                    table.remove(k.as_str()).map_err(error)?;
                }
                let admitted = present || live_members < max;
                if admitted && !present {
                    table.insert(key.as_str(), stored.as_slice()).map_err(error)?;
                }
                admitted
            };
            write.commit().map_err(error)?;
            Ok(admitted)
        })
    }

    fn members<'a>(&'a self, set: &'a str) -> StoreFuture<'a, Vec<String>> {
        let (first, end) = (format!("{set}\u{0}"), format!("{set}\u{1}"));
        self.blocking(move |db| {
            let now = now_ms();
            let read = db.begin_read().map_err(error)?;
            let table = read.open_table(ENTRIES).map_err(error)?;
            let mut members = Vec::new();
            for entry in table.range(first.as_str()..end.as_str()).map_err(error)? {
                let (k, v) = entry.map_err(error)?;
                if live(v.value(), now).is_some() {
                    members.push(k.value()[first.len()..].to_owned());
                }
            }
            Ok(members)
        })
    }

    fn forget<'a>(&'a self, set: &'a str, member: &'a str) -> StoreFuture<'a, ()> {
        let key = super::member_key(set, member);
        self.blocking(move |db| {
            let write = db.begin_write().map_err(error)?;
            write.open_table(ENTRIES).map_err(error)?.remove(key.as_str()).map_err(error)?;
            write.commit().map_err(error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn insert_if_absent_put_get_delete_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let hour = Duration::from_secs(3600);
        assert!(store.insert_if_absent("k", b"one", hour).await.unwrap());
        assert!(!store.insert_if_absent("k", b"two", hour).await.unwrap());
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
        store.put("k", b"three", hour).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"three"[..]));
        store.delete("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);

        // An expired entry is absent, can be inserted over, and is swept.
        store.put("old", b"x", Duration::ZERO).await.unwrap();
        assert_eq!(store.get("old").await.unwrap(), None);
        store.put("gone", b"x", Duration::ZERO).await.unwrap();
        assert!(store.insert_if_absent("old", b"new", hour).await.unwrap());
        assert_eq!(store.sweep().unwrap(), 1);
    }

    #[tokio::test]
    async fn bounded_sets_admit_up_to_max_live_members() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let hour = Duration::from_secs(3600);
        assert!(store.admit("caller", "a", hour, 2).await.unwrap());
        assert!(store.admit("caller", "b", hour, 2).await.unwrap());
        assert!(store.admit("caller", "a", hour, 2).await.unwrap(), "a member already present is admitted");
        assert!(!store.admit("caller", "c", hour, 2).await.unwrap(), "the set is full");
        assert!(store.admit("other", "c", hour, 2).await.unwrap(), "sets are separate");
        store.forget("caller", "b").await.unwrap();
        assert!(store.admit("caller", "c", hour, 2).await.unwrap());
        let mut members = store.members("caller").await.unwrap();
        members.sort();
        assert_eq!(members, ["a", "c"]);
        // Expired members free their place, and are not listed.
        assert!(store.admit("short", "x", Duration::ZERO, 1).await.unwrap());
        assert!(store.admit("short", "y", hour, 1).await.unwrap());
        assert_eq!(store.members("short").await.unwrap(), ["y"]);
        assert!(store.members("none").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = EmbeddedStore::open(&path).unwrap();
        store.put("durable", b"yes", Duration::from_secs(60)).await.unwrap();
        drop(store);
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.get("durable").await.unwrap().as_deref(), Some(&b"yes"[..]));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn exactly_one_concurrent_insert_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let attempts = (0..32).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_if_absent("race", format!("{i}").as_bytes(), Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        });
        let wins = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(wins, 1);
    }
}
