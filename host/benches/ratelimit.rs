//! Per-call overhead of the rate limiter: in memory (`governor`) against
//! Redis (one Lua GCRA script per check, on a local `redis-server` started
//! here; skipped when the binary is absent).

use criterion::{Criterion, criterion_group, criterion_main};
use fastmcp_host::clock::Clock;
use fastmcp_host::internals::{Limit, Limiter, RateLimits, Redis, RedisBuckets, caller_key};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    // A quota large enough that every check is allowed (the common path).
    let limit = Limit::new(1_000_000_000, Some(1_000_000_000)).unwrap();
    let key = caller_key("public", "agent-1", "util:echo");
    let memory = Limiter::Memory(RateLimits::new(Clock::default()));
    c.bench_function("ratelimit_check/memory", |b| {
        b.to_async(&tokio).iter(|| async { memory.check(limit, &key).await.unwrap() })
    });

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Ok(mut redis) = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        eprintln!("SKIPPED ratelimit_check/redis: redis-server is not installed");
        return;
    };
    std::thread::sleep(Duration::from_millis(300));
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let connection = tokio.block_on(redis::aio::ConnectionManager::new(client)).unwrap();
    let shared = Limiter::Redis(RedisBuckets::new(Redis::new(connection, Duration::from_secs(1))));
    c.bench_function("ratelimit_check/redis", |b| {
        b.to_async(&tokio).iter(|| async { shared.check(limit, &key).await.unwrap() })
    });
    let _ = redis.kill();
    let _ = redis.wait();
}

criterion_group!(benches, bench);
criterion_main!(benches);
