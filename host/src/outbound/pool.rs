//! Idle outbound connections, kept for reuse under the host's rules.
//!
//! A connection is filed under the **exact** origin (scheme, host, port) and
//! the **checked address** it was opened to, and is only handed out for a
//! request whose own address check (run on every request) returned that
//! address for that origin: a changed DNS answer never reaches an old
//! connection, and one origin's connection never serves another. A
//! connection carries no credential (they are headers of each request).
//!
//! HTTP/1.1 connections are lent to one request at a time and come back
//! when its response body has been read to the end (a body dropped early
//! closes its connection). An HTTP/2 connection (ALPN) is shared: each
//! request opens a stream on it. Bounded: at most `pool_idle_per_origin`
//! idle per key and `pool_idle_total` in all; a connection idle for
//! `pool_idle_timeout` or older than `pool_max_lifetime` is closed (on the
//! next look, and by a sweep on a background task).
//!
//! Hand-written rather than hyper-util's: its legacy `Client` pools by
//! scheme and authority and resolves inside its connector, so it cannot
//! key on the checked address; its composable `client::pool` (0.1.21) has
//! arbitrary keys but no idle timeout, lifetime or bounds yet. This keeps
//! hyper's own connection handles (`SendRequest`) and only decides which
//! one a request may use.

use crate::origin::Origin;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::{http1, http2};
use prometheus_client::metrics::counter::Counter;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::Error;

/// The body of a request on the wire.
pub type RequestBody = UnsyncBoxBody<Bytes, Error>;

/// Which connections a request may use: its origin and checked address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The request's origin.
    pub origin: Origin,
    /// The address the connection goes to, as checked for that origin.
    pub addr: SocketAddr,
}

/// hyper's handle on one connection.
pub enum Sender {
    /// HTTP/1.1: one request at a time.
    Http1(http1::SendRequest<RequestBody>),
    /// HTTP/2: shared, one stream per request.
    Http2(http2::SendRequest<RequestBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }
}

/// A connection and its age.
pub struct Connection {
    /// Its handle.
    pub sender: Sender,
    /// When it was opened.
    pub opened: Instant,
}

/// An idle connection (or, for HTTP/2, a shared one).
struct Idle {
    connection: Connection,
    since: Instant,
}

/// Limits of the pool (from `outbound.pool_*`).
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Idle connections kept per key; 0 keeps none (no reuse).
    pub idle_per_origin: usize,
    /// Idle connections kept in all.
    pub idle_total: usize,
    /// Close a connection idle this long.
    pub idle_timeout: Duration,
    /// Close a connection this old.
    pub max_lifetime: Duration,
}

/// Counters for `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct PoolStats {
    /// Connections opened.
    pub opened: Counter,
    /// Requests sent on a connection that served an earlier one.
    pub reused: Counter,
}

/// The pool.
pub struct Pool {
    limits: PoolLimits,
    idle: Mutex<Connections>,
    /// Its counters.
    pub stats: PoolStats,
}

#[derive(Default)]
struct Connections {
    by_key: HashMap<Key, VecDeque<Idle>>,
    /// Entries over all keys.
    total: usize,
}

/// What a request got from the pool.
pub enum Lent {
    /// An HTTP/1.1 connection, the request's alone until it gives it back.
    Exclusive(Connection),
    /// A clone of a shared HTTP/2 connection's handle.
    Shared(http2::SendRequest<RequestBody>),
}

impl Pool {
    /// An empty pool.
    pub fn new(limits: PoolLimits) -> Self {
        Self { limits, idle: Mutex::new(Connections::default()), stats: PoolStats::default() }
    }

    fn usable(&self, idle: &Idle, now: Instant) -> bool {
        !idle.connection.sender.is_closed()
            && now.duration_since(idle.since) < self.limits.idle_timeout
            && now.duration_since(idle.connection.opened) < self.limits.max_lifetime
    }

    /// A connection for `key`, if one is kept and still usable.
    pub fn take(&self, key: &Key) -> Option<Lent> {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("the pool lock is never poisoned");
        let Connections { by_key, total } = &mut *idle;
        let entries = by_key.get_mut(key)?;
        let lent = loop {
            let Some(entry) = entries.pop_back() else { break None };
            *total -= 1;
            if !self.usable(&entry, now) {
                continue;
            }
            match entry.connection.sender {
                Sender::Http1(_) => break Some(Lent::Exclusive(entry.connection)),
                Sender::Http2(ref shared) => {
                    let lent = shared.clone();
                    // In use, so not idle: it stays kept while requests come.
                    let entry = Idle { since: now, ..entry };
                    entries.push_back(entry);
                    *total += 1;
                    break Some(Lent::Shared(lent));
                }
            }
        };
        if entries.is_empty() {
            by_key.remove(key);
        }
        if lent.is_some() {
            self.stats.reused.inc();
        }
        lent
    }

    /// Keep `connection` for `key` if it is usable and there is room
    /// (otherwise it is dropped, which closes it).
    pub fn put(&self, key: Key, connection: Connection) {
        let now = Instant::now();
        let entry = Idle { connection, since: now };
        if !self.usable(&entry, now) {
            return;
        }
        let mut idle = self.idle.lock().expect("the pool lock is never poisoned");
        let Connections { by_key, total } = &mut *idle;
        if *total >= self.limits.idle_total || self.limits.idle_per_origin == 0 {
            return;
        }
        let entries = by_key.entry(key).or_default();
        if entries.len() < self.limits.idle_per_origin {
            entries.push_back(entry);
            *total += 1;
        }
    }

    /// Close what is no longer usable.
    fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("the pool lock is never poisoned");
        let Connections { by_key, total } = &mut *idle;
        by_key.retain(|_, entries| {
            entries.retain(|entry| self.usable(entry, now));
            !entries.is_empty()
        });
        *total = by_key.values().map(VecDeque::len).sum();
    }

    /// Idle (and shared) connections kept right now.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().expect("the pool lock is never poisoned").total
    }

    /// Sweep every half idle timeout (at least every second) on the current
    /// tokio runtime, until the pool is dropped.
    pub fn sweep_in_background(self: &Arc<Self>) {
        let pool: Weak<Self> = Arc::downgrade(self);
        let every = (self.limits.idle_timeout / 2).max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                pool.sweep();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PoolLimits {
        PoolLimits {
            idle_per_origin: 2,
            idle_total: 3,
            idle_timeout: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(300),
        }
    }

    /// An HTTP/1.1 handle on one end of an in-memory pipe (kept open by the
    /// returned task's connection future).
    async fn connection() -> (Connection, tokio::task::JoinHandle<()>) {
        let (client, _server) = tokio::io::duplex(1024);
        let (sender, driver) =
            http1::handshake::<_, RequestBody>(hyper_util::rt::TokioIo::new(client)).await.unwrap();
        let task = tokio::spawn(async move {
            let _server = _server;
            let _ = driver.await;
        });
        (Connection { sender: Sender::Http1(sender), opened: Instant::now() }, task)
    }

    fn key(host: &str, addr: &str) -> Key {
        Key { origin: Origin::parse(&format!("http://{host}")).unwrap(), addr: addr.parse().unwrap() }
    }

    #[tokio::test]
    async fn a_connection_serves_only_its_origin_and_address() {
        let pool = Pool::new(limits());
        let (conn, _task) = connection().await;
        pool.put(key("a.test", "192.0.2.1:80"), conn);
        assert!(pool.take(&key("b.test", "192.0.2.1:80")).is_none(), "another origin");
        assert!(pool.take(&key("a.test", "192.0.2.2:80")).is_none(), "another address");
        assert!(pool.take(&key("a.test", "192.0.2.1:80")).is_some());
        assert!(pool.take(&key("a.test", "192.0.2.1:80")).is_none(), "lent to one request at a time");
        assert_eq!(pool.stats.reused.get(), 1);
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_per_origin_and_in_all() {
        let pool = Pool::new(limits());
        let mut tasks = Vec::new();
        for (host, addr) in [("a.test", "192.0.2.1:80"); 3].into_iter().chain([("b.test", "192.0.2.2:80"); 2])
        {
            let (conn, task) = connection().await;
            tasks.push(task);
            pool.put(key(host, addr), conn);
        }
        assert_eq!(pool.idle_count(), 3, "two for a.test (its cap), one for b.test (the total's)");
    }

    #[tokio::test]
    async fn expired_and_closed_connections_are_not_lent() {
        let pool = Pool::new(PoolLimits { idle_timeout: Duration::from_millis(20), ..limits() });
        let (conn, _task) = connection().await;
        pool.put(key("a.test", "192.0.2.1:80"), conn);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(pool.take(&key("a.test", "192.0.2.1:80")).is_none(), "idle too long");
        let (conn, task) = connection().await;
        pool.put(key("a.test", "192.0.2.1:80"), conn);
        task.abort();
        let _ = task.await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(pool.take(&key("a.test", "192.0.2.1:80")).is_none(), "closed");
        pool.sweep();
        assert_eq!(pool.idle_count(), 0);
    }
}
