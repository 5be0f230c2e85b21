//! The Redis state store: the same trait, so replicas sharing one Redis share
//! spent action tokens and idempotency records exactly (`SET NX PX` is atomic
//! across every client).

use super::{KeyValueStore, StoreError, StoreFuture};
use anyhow::Context;
use redis::aio::ConnectionManager;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The outcome of the last Redis operation — the store's, the rate
/// limiter's, or the host's periodic PING — for `/health`, which therefore
/// never waits on Redis itself. Clones share one outcome.
#[derive(Clone)]
pub struct RedisHealth(Arc<Mutex<Result<(), String>>>);

impl Default for RedisHealth {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Ok(()))))
    }
}

impl RedisHealth {
    /// Remember how an operation ended.
    pub fn record<T, E: std::fmt::Display>(&self, outcome: &Result<T, E>) {
        *self.0.lock().expect("redis health lock") = outcome.as_ref().map(drop).map_err(|e| e.to_string());
    }

    /// How the last operation ended.
    pub fn last(&self) -> Result<(), String> {
        self.0.lock().expect("redis health lock").clone()
    }
}

/// A store on one Redis, reconnecting on its own after an outage.
pub struct RedisStore {
    connection: ConnectionManager,
    timeout: Duration,
    prefix: String,
    admit_script: redis::Script,
    health: RedisHealth,
}

/// `admit` for a bounded set: a sorted set scored by expiry (Redis's clock,
/// in ms); expired members are dropped first. KEYS[1] set; ARGV member,
/// ttl_ms, max.
const ADMIT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

impl RedisStore {
    /// A store on `connection`; every key is prefixed, and every operation
    /// gives up (and fails closed) after `timeout`.
    pub fn new(connection: ConnectionManager, timeout: Duration, health: RedisHealth) -> Self {
        let admit_script = redis::Script::new(ADMIT_SCRIPT);
        Self { connection, timeout, prefix: "fastmcp:state:".into(), admit_script, health }
    }

    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let outcome = match tokio::time::timeout(self.timeout, command.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError(format!("redis: no answer within {:?}", self.timeout))),
        };
        self.health.record(&outcome);
        outcome
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
            let mut connection = self.connection.clone();
            let mut invocation = self.admit_script.prepare_invoke();
            invocation.key(format!("{}{set}", self.prefix)).arg(member).arg(ttl_ms(ttl)).arg(max);
            let outcome =
                match tokio::time::timeout(self.timeout, invocation.invoke_async::<i64>(&mut connection))
                    .await
                {
                    Ok(Ok(admitted)) => Ok(admitted == 1),
                    Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
                    Err(_) => Err(StoreError(format!("redis: no answer within {:?}", self.timeout))),
                };
            self.health.record(&outcome);
            outcome
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
pub async fn connect(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
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
