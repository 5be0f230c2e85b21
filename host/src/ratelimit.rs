//! Rate limits: GCRA buckets (`governor`) keyed per (tenant, subject, tool),
//! with each tool's quota from its manifest (`rate_limit: {per_minute, burst}`).
//!
//! One keyed limiter exists per distinct quota; idle keys are evicted by a
//! periodic sweep, so memory follows recent activity, not history. The
//! buckets run on the host [`Clock`], so tests move time instead of sleeping.

use crate::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
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

    /// Take one call for (tenant, subject, tool) under `limit`.
    pub fn check(&self, limit: Limit, tenant: &str, sub: &str, tool: &str) -> Verdict {
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
        let key = format!("{tenant}\0{sub}\0{tool}");
        let interval = Duration::from_secs(60) / limit.per_minute.get();
        match limiter.check_key(&key) {
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
                matches!(limits.check(l, "t", "s", "x"), Verdict::Allowed { remaining, .. } if remaining == expected_remaining)
            );
        }
        let Verdict::Limited { retry_after_s, .. } = limits.check(l, "t", "s", "x") else {
            panic!("over quota")
        };
        assert_eq!(retry_after_s, 1);
        clock.advance(Duration::from_secs(retry_after_s));
        assert!(matches!(limits.check(l, "t", "s", "x"), Verdict::Allowed { .. }));
    }

    #[test]
    fn keys_are_independent() {
        let limits = RateLimits::new(Clock::default());
        let l = limit(1, 1);
        assert!(matches!(limits.check(l, "t1", "s", "x"), Verdict::Allowed { .. }));
        assert!(matches!(limits.check(l, "t1", "s", "x"), Verdict::Limited { .. }));
        assert!(matches!(limits.check(l, "t2", "s", "x"), Verdict::Allowed { .. }), "another tenant");
        assert!(matches!(limits.check(l, "t1", "s2", "x"), Verdict::Allowed { .. }), "another subject");
        assert!(matches!(limits.check(l, "t1", "s", "y"), Verdict::Allowed { .. }), "another tool");
    }

    #[test]
    fn headers_follow_the_draft() {
        let limits = RateLimits::new(Clock::default());
        let verdict = limits.check(limit(50, 10), "t", "s", "x");
        assert_eq!(verdict.policy_header(), "\"caller\";q=50;w=60");
        assert_eq!(verdict.state_header(), "\"caller\";r=9;t=2");
    }
}
