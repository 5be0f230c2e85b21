//! Redis: [`Redis`], the one handle every Redis user of the host goes
//! through (connection, timeout, health), and the Redis state store — the
//! same trait as the embedded one, so replicas sharing one Redis share spent
//! action tokens and idempotency records exactly (`SET NX PX` is atomic
//! across every client).

use super::{KeyValueStore, StoreError, StoreFuture};
use anyhow::Context;
use redis::aio::ConnectionManager;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The shared Redis: one reconnecting connection, the longest wait for any
/// operation, and how the last operation ended. Cheap to clone; clones
/// share all three.
#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    timeout: Duration,
    health: RedisHealth,
}

impl Redis {
    /// Connect to `url` (and check it answers) within a few seconds; every
    /// later operation gives up after `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self::new(connect(url).await?, timeout))
    }

    /// A handle on an open connection.
    pub fn new(connection: ConnectionManager, timeout: Duration) -> Self {
        Self { connection, timeout, health: RedisHealth::default() }
    }

    /// Run one command.
    pub async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        let mut connection = self.connection.clone();
        self.within(command.query_async(&mut connection)).await
    }

    /// Run one script.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let mut connection = self.connection.clone();
        self.within(invocation.invoke_async(&mut connection)).await
    }

    /// PING, recording how it went.
    pub async fn ping(&self) {
        let _: Result<String, String> = self.query(&redis::cmd("PING")).await;
    }

    /// How the last operation ended.
    pub fn health(&self) -> Result<(), String> {
        self.health.last()
    }

    /// `operation` within the timeout; its outcome is the health.
    async fn within<T>(&self, operation: impl Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
        let outcome = match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Err(_) => Err(format!("redis: no answer within {:?}", self.timeout)),
        };
        self.health.record(&outcome);
        outcome
    }
}

/// The outcome of the last Redis operation — the store's, the rate
/// limiter's, or the host's periodic PING — for `/health`, which therefore
/// never waits on Redis itself. Clones share one outcome.
#[derive(Clone)]
struct RedisHealth(Arc<Mutex<Result<(), String>>>);

impl Default for RedisHealth {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Ok(()))))
    }
}

impl RedisHealth {
    /// Remember how an operation ended.
    fn record<T, E: std::fmt::Display>(&self, outcome: &Result<T, E>) {
        *self.0.lock().expect("redis health lock") = outcome.as_ref().map(drop).map_err(|e| e.to_string());
    }

    /// How the last operation ended.
    fn last(&self) -> Result<(), String> {
        self.0.lock().expect("redis health lock").clone()
    }
}

/// A store on one Redis, reconnecting on its own after an outage.
pub struct RedisStore {
    redis: Redis,
    prefix: String,
    admit_script: redis::Script,
    members_script: redis::Script,
}

/// `admit` for a bounded set: a sorted set scored by expiry (Redis's clock,
/// in ms); expired members are dropped first. The key lives as long as its
/// longest-lived member (a short-lived member never shortens it). KEYS[1] set; ARGV member,
/// ttl_ms, max.
const ADMIT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// `members` of a bounded set: those whose expiry (Redis's clock) is ahead.
/// KEYS[1] set.
const MEMBERS_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
";

impl RedisStore {
    /// A store on `redis`; every key is prefixed, and every operation
    /// gives up (and fails closed) after the handle's timeout.
    pub fn new(redis: Redis) -> Self {
        let admit_script = redis::Script::new(ADMIT_SCRIPT);
        let members_script = redis::Script::new(MEMBERS_SCRIPT);
        Self { redis, prefix: "fastmcp:state:".into(), admit_script, members_script }
    }

    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        self.redis.query(&command).await.map_err(StoreError)
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl KeyValueStore for RedisStore {
    fn insert_if_absent<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut command = redis::cmd("SET");
            command.arg(format!("{}{key}", self.prefix)).arg(value).arg("NX").arg("PX").arg(ttl_ms(ttl));
            let reply: Option<String> = self.run(command).await?;
            Ok(reply.is_some())
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("SET");
            command.arg(format!("{}{key}", self.prefix)).arg(value).arg("PX").arg(ttl_ms(ttl));
            let _: String = self.run(command).await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut command = redis::cmd("GET");
            command.arg(format!("{}{key}", self.prefix));
            self.run(command).await
        })
    }

    fn admit<'a>(&'a self, set: &'a str, member: &'a str, ttl: Duration, max: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.admit_script.prepare_invoke();
            invocation.key(format!("{}{set}", self.prefix)).arg(member).arg(ttl_ms(ttl)).arg(max);
            let admitted: i64 = self.redis.invoke(&invocation).await.map_err(StoreError)?;
            Ok(admitted == 1)
        })
    }

    fn forget<'a>(&'a self, set: &'a str, member: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("ZREM");
            command.arg(format!("{}{set}", self.prefix)).arg(member);
            let _: i64 = self.run(command).await?;
            Ok(())
        })
    }

    fn members<'a>(&'a self, set: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut invocation = self.members_script.prepare_invoke();
            invocation.key(format!("{}{set}", self.prefix));
            self.redis.invoke(&invocation).await.map_err(StoreError)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("DEL");
            command.arg(format!("{}{key}", self.prefix));
            let _: i64 = self.run(command).await?;
            Ok(())
        })
    }
}

/// Connect to Redis at `url` (and check it answers) within a few seconds.
async fn connect(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)
        .with_context(|| format!("REDIS_URL {} is not a Redis URL", redacted(url)))?;
    let connecting = redis::aio::ConnectionManager::new(client);
    tokio::time::timeout(std::time::Duration::from_secs(5), connecting)
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {} did not answer within 5 s", redacted(url)))?
        .with_context(|| format!("connecting to Redis at {}", redacted(url)))
}

/// A Redis URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}
