//! Rate limits: GCRA buckets keyed per (tenant, subject, tool), with each
//! tool's quota from its manifest (`rate_limit: {per_minute, burst}`).
//!
//! [`Limiter`] is either in memory ([`RateLimits`], `governor`; one keyed
//! limiter per distinct quota, idle keys evicted by a periodic sweep, running
//! on the host [`Clock`] so tests move time instead of sleeping) or in Redis
//! ([`RedisBuckets`]; the same GCRA as one atomic Lua script on Redis's own
//! clock, so replicas share buckets exactly).

use crate::clock::Clock;
use crate::store::redis::Redis;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::Digest as _;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl governor::clock::Clock for Clock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.now_unix_ms().max(0) as u64 * 1_000_000)
    }
}

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, Clock, StateInformationMiddleware>;

/// A tool's quota per caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Sustained calls per minute.
    pub per_minute: NonZeroU32,
    /// Calls allowed at once.
    pub burst: NonZeroU32,
}

impl Limit {
    /// A quota of `per_minute` with `burst` (default `per_minute`), if both
    /// are positive.
    pub fn new(per_minute: u32, burst: Option<u32>) -> Option<Self> {
        Some(Self {
            per_minute: NonZeroU32::new(per_minute)?,
            burst: NonZeroU32::new(burst.unwrap_or(per_minute))?,
        })
    }
}

/// The outcome of taking one call from a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within quota.
    Allowed {
        /// The quota.
        limit: Limit,
        /// Calls left right now.
        remaining: u32,
        /// Seconds until the bucket is full again.
        reset_s: u64,
    },
    /// Over quota.
    Limited {
        /// The quota.
        limit: Limit,
        /// Seconds until a call would be allowed (at least 1).
        retry_after_s: u64,
    },
}

impl Verdict {
    /// `RateLimit-Policy` (IETF httpapi draft): quota and window.
    pub fn policy_header(&self) -> String {
        let (Verdict::Allowed { limit, .. } | Verdict::Limited { limit, .. }) = self;
        format!("\"caller\";q={};w=60", limit.per_minute)
    }

    /// `RateLimit` (IETF httpapi draft): remaining calls and reset time.
    pub fn state_header(&self) -> String {
        match self {
            Verdict::Allowed { remaining, reset_s, .. } => format!("\"caller\";r={remaining};t={reset_s}"),
            Verdict::Limited { retry_after_s, .. } => format!("\"caller\";r=0;t={retry_after_s}"),
        }
    }
}

/// Every bucket of the host.
pub struct RateLimits {
    limiters: Mutex<HashMap<Limit, Arc<KeyedLimiter>>>,
    clock: Clock,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimits {
    /// Buckets running on `clock`.
    pub fn new(clock: Clock) -> Self {
        Self { limiters: Mutex::new(HashMap::new()), clock }
    }

    /// Take one call from bucket `key` under `limit`.
    pub fn check(&self, limit: Limit, key: &str) -> Verdict {
        let limiter = {
            let mut limiters = self.limiters.lock().expect("rate limiter lock");
            limiters
                .entry(limit)
                .or_insert_with(|| {
                    let quota = Quota::per_minute(limit.per_minute).allow_burst(limit.burst);
                    let store = DefaultKeyedStateStore::default();
                    Arc::new(KeyedLimiter::new(quota, store, self.clock.clone()))
                })
                .clone()
        };
        let interval = Duration::from_secs(60) / limit.per_minute.get();
        match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = limit.burst.get() - remaining;
                Verdict::Allowed { limit, remaining, reset_s: ceil_secs(interval * used) }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
                Verdict::Limited { limit, retry_after_s: ceil_secs(wait).max(1) }
            }
        }
    }

    /// Forget buckets that are full again (idle keys).
    pub fn sweep(&self) {
        let limiters: Vec<Arc<KeyedLimiter>> =
            self.limiters.lock().expect("rate limiter lock").values().cloned().collect();
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The bucket of one caller of one tool.
pub fn caller_key(tenant: &str, sub: &str, tool: &str) -> String {
    format!("caller\0{tenant}\0{sub}\0{tool}")
}

/// The bucket of a tool across all its callers.
pub fn tool_key(tool: &str) -> String {
    format!("tool\0{tool}")
}

/// The limiter a host uses.
pub enum Limiter {
    /// In this process.
    Memory(RateLimits),
    /// Shared through Redis.
    Redis(RedisBuckets),
}

/// The limiter could not decide (Redis unreachable or slow).
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimiterError(pub String);

impl Limiter {
    /// Take one call from bucket `key` (see [`caller_key`], [`tool_key`]).
    pub async fn check(&self, limit: Limit, key: &str) -> Result<Verdict, LimiterError> {
        match self {
            Limiter::Memory(buckets) => Ok(buckets.check(limit, key)),
            Limiter::Redis(buckets) => buckets.check(limit, key).await,
        }
    }

    /// Evict idle in-memory keys (Redis expires its own).
    pub fn sweep(&self) {
        if let Limiter::Memory(buckets) = self {
            buckets.sweep();
        }
    }
}

/// GCRA in Redis. The theoretical arrival time of a key is stored with an
/// expiry equal to the time until its bucket is full again.
const GCRA_SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((now - allow_at) / interval), new_tat - now}
";

/// Buckets in Redis.
pub struct RedisBuckets {
    redis: Redis,
    script: redis::Script,
}

impl RedisBuckets {
    /// Buckets on `redis`; a check gives up after the handle's timeout.
    pub fn new(redis: Redis) -> Self {
        Self { redis, script: redis::Script::new(GCRA_SCRIPT) }
    }

    async fn check(&self, limit: Limit, key: &str) -> Result<Verdict, LimiterError> {
        let key = format!("fastmcp:rl:{}", hex::encode(sha2::Sha256::digest(key)));
        let interval_ms = (60_000 / u64::from(limit.per_minute.get())).max(1);
        let mut invocation = self.script.key(key);
        invocation.arg(interval_ms).arg(limit.burst.get());
        let reply: Vec<i64> = self.redis.invoke(&invocation).await.map_err(LimiterError)?;
        let ms_to_s = |ms: i64| (ms.max(0) as u64).div_ceil(1000);
        match reply.as_slice() {
            [1, remaining, reset_ms] => Ok(Verdict::Allowed {
                limit,
                remaining: (*remaining).max(0) as u32,
                reset_s: ms_to_s(*reset_ms),
            }),
            [0, wait_ms] => Ok(Verdict::Limited { limit, retry_after_s: ms_to_s(*wait_ms).max(1) }),
            other => Err(LimiterError(format!("unexpected reply from the GCRA script: {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_minute: u32, burst: u32) -> Limit {
        Limit { per_minute: NonZeroU32::new(per_minute).unwrap(), burst: NonZeroU32::new(burst).unwrap() }
    }

    #[test]
    fn bursts_then_refills_on_the_clock() {
        let clock = Clock::default();
        let limits = RateLimits::new(clock.clone());
        let l = limit(60, 3);
        for expected_remaining in [2, 1, 0] {
            assert!(
                matches!(limits.check(l, &caller_key("t", "s", "x")), Verdict::Allowed { remaining, .. } if remaining == expected_remaining)
            );
        }
        let Verdict::Limited { retry_after_s, .. } = limits.check(l, &caller_key("t", "s", "x")) else {
            panic!("over quota")
        };
        assert_eq!(retry_after_s, 1);
        clock.advance(Duration::from_secs(retry_after_s));
        assert!(matches!(limits.check(l, &caller_key("t", "s", "x")), Verdict::Allowed { .. }));
    }

    #[test]
    fn keys_are_independent() {
        let limits = RateLimits::new(Clock::default());
        let l = limit(1, 1);
        assert!(matches!(limits.check(l, &caller_key("t1", "s", "x")), Verdict::Allowed { .. }));
        assert!(matches!(limits.check(l, &caller_key("t1", "s", "x")), Verdict::Limited { .. }));
        assert!(
            matches!(limits.check(l, &caller_key("t2", "s", "x")), Verdict::Allowed { .. }),
            "another tenant"
        );
        assert!(
            matches!(limits.check(l, &caller_key("t1", "s2", "x")), Verdict::Allowed { .. }),
            "another subject"
        );
        assert!(
            matches!(limits.check(l, &caller_key("t1", "s", "y")), Verdict::Allowed { .. }),
            "another tool"
        );
    }

    #[test]
    fn headers_follow_the_draft() {
        let limits = RateLimits::new(Clock::default());
        let verdict = limits.check(limit(50, 10), &caller_key("t", "s", "x"));
        assert_eq!(verdict.policy_header(), "\"caller\";q=50;w=60");
        assert_eq!(verdict.state_header(), "\"caller\";r=9;t=2");
    }
}
