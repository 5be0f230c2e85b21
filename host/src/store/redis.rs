//! The Redis state store: the same trait, so replicas sharing one Redis share
//! spent action tokens and idempotency records exactly (`SET NX PX` is atomic
//! across every client).

use super::{StateStore, StoreError, StoreFuture};
use redis::aio::ConnectionManager;
use std::time::Duration;

/// A store on one Redis, reconnecting on its own after an outage.
pub struct RedisStore {
    connection: ConnectionManager,
    timeout: Duration,
    prefix: String,
}

impl RedisStore {
    /// A store on `connection`; every key is prefixed, and every operation
    /// gives up (and fails closed) after `timeout`.
    pub fn new(connection: ConnectionManager, timeout: Duration) -> Self {
        Self { connection, timeout, prefix: "fastmcp:state:".into() }
    }

    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, command.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError(format!("redis: no answer within {:?}", self.timeout))),
        }
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl StateStore for RedisStore {
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

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("DEL");
            command.arg(format!("{}{key}", self.prefix));
            let _: i64 = self.run(command).await?;
            Ok(())
        })
    }
}
