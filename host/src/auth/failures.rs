//! Failed authentications per client address: the first
//! `auth_failures_per_minute` from an address are audited one by one; beyond
//! that budget they are only counted, and the counts are audited in one
//! aggregate record (`auth.failures_suppressed`) per interval. So an
//! unauthenticated client cannot grow the durable trail by more than its
//! budget of small records a minute, however fast it sends.
//!
//! Addresses are keyed per IPv4 address and per IPv6 /64 (one host usually
//! holds a whole /64). Behind a reverse proxy every client is the proxy.
//!
//! The budget's table holds at most `max_peers` addresses. When it is full
//! (an attacker with many addresses), entries whose budget is back in full
//! are dropped at most once a second; while it is still full, failures get
//! no budget: they are counted for the aggregate record only. Nothing is lost — every failure is in a record
//! or a count — and memory stays bounded.

use crate::share::PeerKey;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses whose suppressed failures are counted one by one; the rest
/// are summed under `other`.
const MAX_COUNTED: usize = 1024;
/// Addresses named in one aggregate record.
const MAX_REPORTED: usize = 32;
/// How often a full table may be swept for addresses back at full budget.
const SWEEP_WHEN_FULL_EVERY: Duration = Duration::from_secs(1);

type Limiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, governor::clock::DefaultClock>;

/// The per-address budget and the suppressed counts.
pub struct AuthFailures {
    limiter: Option<Limiter>,
    max_peers: usize,
    last_sweep: Mutex<Option<Instant>>,
    suppressed: Mutex<Suppressed>,
}

#[derive(Default)]
struct Suppressed {
    by_peer: HashMap<IpAddr, u64>,
    other: u64,
}

impl AuthFailures {
    /// `per_minute` audited failures per address (0: audit none one by one),
    /// for at most `max_peers` addresses at once.
    pub fn new(per_minute: u32, max_peers: usize) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            limiter,
            max_peers,
            last_sweep: Mutex::new(None),
            suppressed: Mutex::new(Suppressed::default()),
        }
    }

    /// Whether `key` may be given (or use) a budget of its own: the table
    /// has room, or can be made some.
    fn has_room(&self, limiter: &Limiter) -> bool {
        if limiter.len() < self.max_peers {
            return true;
        }
        let mut last = self.last_sweep.lock().expect("auth failures lock");
        if last.is_none_or(|at| at.elapsed() >= SWEEP_WHEN_FULL_EVERY) {
            *last = Some(Instant::now());
            limiter.retain_recent();
        }
        limiter.len() < self.max_peers
    }

    /// A failed authentication from `peer`: `true` if it is within the
    /// address's budget and should be audited on its own, `false` if it was
    /// counted for the aggregate record instead.
    pub fn admit(&self, peer: IpAddr) -> bool {
        let key = PeerKey::from(peer).0;
        if self.limiter.as_ref().is_some_and(|l| self.has_room(l) && l.check_key(&key).is_ok()) {
            return true;
        }
        let mut suppressed = self.suppressed.lock().expect("auth failures lock");
        let counted = suppressed.by_peer.len() < MAX_COUNTED || suppressed.by_peer.contains_key(&key);
        if counted {
            *suppressed.by_peer.entry(key).or_default() += 1;
        } else {
            suppressed.other += 1;
        }
        false
    }

    /// The aggregate record's detail for what was suppressed since the last
    /// call (`None` if nothing was); resets the counts and drops idle keys.
    pub fn take_report(&self) -> Option<Value> {
        if let Some(limiter) = &self.limiter {
            // Keys whose budget is back in full carry no state: drop them, so
            // memory follows the addresses seen in the last minute.
            limiter.retain_recent();
        }
        let Suppressed { by_peer, other } =
            std::mem::take(&mut *self.suppressed.lock().expect("auth failures lock"));
        if by_peer.is_empty() && other == 0 {
            return None;
        }
        let total: u64 = by_peer.values().sum::<u64>() + other;
        let mut peers: Vec<(IpAddr, u64)> = by_peer.into_iter().collect();
        peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let unnamed = peers.iter().skip(MAX_REPORTED).map(|(_, n)| n).sum::<u64>() + other;
        peers.truncate(MAX_REPORTED);
        let peers: Vec<Value> = peers
            .into_iter()
            .map(|(peer, count)| json!({ "peer": peer.to_string(), "count": count }))
            .collect();
        Some(json!({ "total": total, "peers": peers, "other": unnamed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_budget_one_by_one_beyond_it_in_aggregate() {
        let failures = AuthFailures::new(3, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert!((0..3).all(|_| failures.admit(a)));
        assert!((0..5).all(|_| !failures.admit(a)));
        assert!(failures.admit(b));
        // Another address in the same /64 shares the budget.
        assert!(failures.admit("2001:db8::2".parse().unwrap()));
        let report = failures.take_report().unwrap();
        assert_eq!(report["total"], 5);
        assert_eq!(report["peers"][0]["peer"], "10.0.0.1");
        assert!(failures.take_report().is_none(), "counts reset");
    }

    #[test]
    fn a_full_table_gives_new_addresses_no_budget_but_counts_them() {
        let failures = AuthFailures::new(3, 2);
        assert!(failures.admit("10.0.0.1".parse().unwrap()));
        assert!(failures.admit("10.0.0.2".parse().unwrap()));
        // Both entries are mid-budget, so a sweep frees nothing.
        assert!(!failures.admit("10.0.0.3".parse().unwrap()));
        assert!(!failures.admit("10.0.0.3".parse().unwrap()));
        let report = failures.take_report().unwrap();
        assert_eq!(report["total"], 2);
        assert_eq!(report["peers"][0]["peer"], "10.0.0.3");
        assert!(failures.limiter.as_ref().unwrap().len() <= 2);
    }
}
