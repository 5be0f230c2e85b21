//! Fair share: what every caller shares, counted per owner, so that no one
//! caller can hold all of it.
//!
//! Each long-lived shared resource — MCP sessions, open streams, served
//! connections, sandbox slots (running or waiting) — has a [`Pool`] with a
//! cap per owner (a principal: tenant and subject) beside the resource's
//! global cap, which stays where it was (a semaphore, a session count).
//! Connections that have not yet carried an authenticated request are
//! counted per client address instead ([`PeerKey`]), and together hold at
//! most half of the server's connections. Taking from a pool
//! gives a [`Share`]; dropping it gives it back, so nothing is ever leaked by
//! an early return, a dropped stream or a closed connection, and a pool
//! holds entries only for owners holding something (its memory follows what
//! is held, which the global caps bound).
//!
//! Beyond its cap a caller gets 429 `share_exceeded` naming the resource
//! ([`ApiError::ShareExceeded`]), never the global `overloaded`. Refusals
//! are counted per resource (`fastmcp_share_refusals_total`) and audited
//! in aggregate once a minute ([`Shares::take_report`]), not per request —
//! except refused tool calls, which the pipeline records like every call.
//!
//! These pools are per replica: sessions, streams, connections and slots
//! are all held by one process.

use crate::config::HostConfig;
use crate::error::ApiError;
use crate::principal::Principal;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A resource shared by every caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Resource {
    /// Legacy (2025-11-25) MCP sessions.
    Sessions,
    /// Open MCP streams (`subscriptions/listen`, `GET /mcp`).
    Streams,
    /// Connections whose last request was the owner's.
    Connections,
    /// Sandbox slots, running or waiting for one.
    Calls,
    /// Connections from one client address not yet used by an
    /// authenticated request.
    UnauthenticatedConnections,
}

impl Resource {
    /// The name used in errors, metrics and the trail.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who holds a share: a principal's tenant and subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Tenant.
    pub tenant: String,
    /// Subject.
    pub sub: String,
}

impl From<&Principal> for Owner {
    fn from(principal: &Principal) -> Self {
        Self { tenant: principal.tenant.clone(), sub: principal.sub.clone() }
    }
}

/// A client address as the unauthenticated-connection pool keys it: IPv4
/// as is, IPv6 cut to its /64 (one host usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey(pub IpAddr);

impl From<IpAddr> for PeerKey {
    fn from(peer: IpAddr) -> Self {
        Self(match peer {
            IpAddr::V4(_) => peer,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(segments.into())
                }
            },
        })
    }
}

/// Labels of the refusal counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The resource's name.
    pub resource: &'static str,
}

/// Refusals per resource, as exported.
pub type RefusalCounter = Family<ResourceLabels, Counter>;

/// One resource's holdings per owner.
pub struct Pool<K> {
    resource: Resource,
    per_owner: usize,
    held: Mutex<HashMap<K, usize>>,
    /// Refusals since the last report.
    refused: AtomicU64,
    exported: Counter,
}

impl<K: Clone + Eq + Hash> Pool<K> {
    fn new(resource: Resource, per_owner: usize, refusals: &RefusalCounter) -> Arc<Self> {
        let exported = refusals.get_or_create(&ResourceLabels { resource: resource.as_str() }).clone();
        Arc::new(Self { resource, per_owner, held: Mutex::default(), refused: AtomicU64::new(0), exported })
    }

    /// One unit for `owner`, if it holds fewer than its cap.
    pub fn take(self: &Arc<Self>, owner: K) -> Result<Share<K>, ApiError> {
        let mut held = self.held.lock().expect("share pool lock");
        let count = held.entry(owner.clone()).or_default();
        // Caps are at least 1 (the settings' range), so a refused owner
        // already holds something: no empty entry is left behind.
        if *count >= self.per_owner {
            drop(held);
            self.count_refusal();
            return Err(ApiError::ShareExceeded { resource: self.resource.as_str(), limit: self.per_owner });
        }
        *count += 1;
        Ok(Share { pool: self.clone(), owner })
    }

    fn count_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.exported.inc();
    }

    /// How many units `owner` holds.
    #[cfg(test)]
    fn held_by(&self, owner: &K) -> usize {
        self.held.lock().expect("share pool lock").get(owner).copied().unwrap_or(0)
    }

    /// Owners holding anything.
    #[cfg(test)]
    fn owners(&self) -> usize {
        self.held.lock().expect("share pool lock").len()
    }

    fn give_back(&self, owner: &K) {
        let mut held = self.held.lock().expect("share pool lock");
        if let Some(count) = held.get_mut(owner) {
            *count -= 1;
            if *count == 0 {
                held.remove(owner);
            }
        }
    }
}

/// One unit of a pool, held until dropped.
pub struct Share<K: Clone + Eq + Hash> {
    pool: Arc<Pool<K>>,
    owner: K,
}

impl<K: Clone + Eq + Hash> Share<K> {
    /// Who holds it.
    pub fn owner(&self) -> &K {
        &self.owner
    }
}

impl<K: Clone + Eq + Hash> Drop for Share<K> {
    fn drop(&mut self) {
        self.pool.give_back(&self.owner);
    }
}

impl<K: Clone + Eq + Hash> std::fmt::Debug for Share<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share").field("resource", &self.pool.resource).finish_non_exhaustive()
    }
}

/// What one connection holds: its client address's unauthenticated share
/// until a request on it is authenticated, then the share of the principal
/// whose request came last (keep-alive connections may change hands, e.g.
/// behind a proxy). Released when the connection closes.
pub struct ConnectionShare {
    shares: Arc<Shares>,
    held: Mutex<Held>,
}

enum Held {
    /// The address's share and a place among all unauthenticated
    /// connections; both are released by the first claim.
    Peer(#[allow(dead_code)] (Share<PeerKey>, OwnedSemaphorePermit)),
    Principal(Share<Owner>),
}

impl ConnectionShare {
    /// A new connection from `peer`, if its address holds fewer than its
    /// cap of unauthenticated connections and all of them together hold
    /// less than half of the server's connections (so that clients with
    /// many addresses cannot hold every connection without a token).
    pub fn accept(shares: &Arc<Shares>, peer: IpAddr) -> Result<Self, ApiError> {
        let share = shares.unauthenticated.take(PeerKey::from(peer))?;
        let permit = shares.unauthenticated_total.clone().try_acquire_owned().map_err(|_| {
            shares.unauthenticated.count_refusal();
            ApiError::Overloaded
        })?;
        Ok(Self { shares: shares.clone(), held: Mutex::new(Held::Peer((share, permit))) })
    }

    /// The connection now serves `principal`: it counts against that
    /// principal's connections (and no longer against its address). Beyond
    /// the principal's cap it keeps what it held, and the request is refused.
    pub fn claim(&self, principal: &Principal) -> Result<(), ApiError> {
        let mut held = self.held.lock().expect("connection share lock");
        if let Held::Principal(share) = &*held
            && share.owner().tenant == principal.tenant
            && share.owner().sub == principal.sub
        {
            return Ok(());
        }
        *held = Held::Principal(self.shares.connections.take(Owner::from(principal))?);
        Ok(())
    }
}

/// Every pool of the host.
pub struct Shares {
    /// Legacy MCP sessions per principal.
    pub sessions: Arc<Pool<Owner>>,
    /// Open MCP streams per principal.
    pub streams: Arc<Pool<Owner>>,
    /// Connections per principal (of their last authenticated request).
    pub connections: Arc<Pool<Owner>>,
    /// Sandbox slots (running or waiting) per principal.
    pub calls: Arc<Pool<Owner>>,
    /// Connections per client address before an authenticated request.
    pub unauthenticated: Arc<Pool<PeerKey>>,
    /// All such connections together: half of the server's connections.
    unauthenticated_total: Arc<Semaphore>,
    refusals: RefusalCounter,
}

impl Shares {
    /// The pools with the caps of `config`.
    pub fn new(config: &HostConfig) -> Self {
        let refusals = RefusalCounter::default();
        Self {
            sessions: Pool::new(Resource::Sessions, config.mcp.max_sessions_per_principal, &refusals),
            streams: Pool::new(Resource::Streams, config.mcp.max_streams_per_principal, &refusals),
            connections: Pool::new(
                Resource::Connections,
                config.server.max_connections_per_principal,
                &refusals,
            ),
            calls: Pool::new(Resource::Calls, config.runtime.max_calls_per_principal as usize, &refusals),
            unauthenticated: Pool::new(
                Resource::UnauthenticatedConnections,
                config.server.max_unauthenticated_connections_per_peer,
                &refusals,
            ),
            unauthenticated_total: Arc::new(Semaphore::new((config.server.max_connections / 2).max(1))),
            refusals,
        }
    }

    /// The refusal counters, for `/metrics`.
    pub fn refusal_counter(&self) -> RefusalCounter {
        self.refusals.clone()
    }

    /// Refusals per resource since the last report, for the aggregate audit
    /// record (`None` when there were none); resets the counts.
    pub fn take_report(&self) -> Option<Value> {
        let counts = [
            (Resource::Sessions, &self.sessions.refused),
            (Resource::Streams, &self.streams.refused),
            (Resource::Connections, &self.connections.refused),
            (Resource::Calls, &self.calls.refused),
            (Resource::UnauthenticatedConnections, &self.unauthenticated.refused),
        ];
        let refused: Map<String, Value> = counts
            .into_iter()
            .map(|(resource, count)| (resource.as_str().to_owned(), count.swap(0, Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .map(|(name, count)| (name, count.into()))
            .collect();
        (!refused.is_empty()).then(|| serde_json::json!({ "refused": refused }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(sub: &str) -> Owner {
        Owner { tenant: "t".into(), sub: sub.into() }
    }

    #[test]
    fn each_owner_holds_at_most_its_cap_and_gets_units_back_on_drop() {
        let refusals = RefusalCounter::default();
        let pool = Pool::new(Resource::Streams, 2, &refusals);
        let a1 = pool.take(owner("a")).unwrap();
        let _a2 = pool.take(owner("a")).unwrap();
        let refused = pool.take(owner("a")).unwrap_err();
        assert_eq!(refused.code(), "share_exceeded");
        assert_eq!(refused.status(), 429);
        // Another owner is not affected.
        let _b = pool.take(owner("b")).unwrap();
        drop(a1);
        assert_eq!(pool.held_by(&owner("a")), 1);
        let _a3 = pool.take(owner("a")).unwrap();
        assert_eq!(pool.refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn owners_holding_nothing_leave_no_entry() {
        let refusals = RefusalCounter::default();
        let pool = Pool::new(Resource::Calls, 1, &refusals);
        for i in 0..100 {
            drop(pool.take(owner(&i.to_string())).unwrap());
        }
        assert_eq!(pool.owners(), 0);
    }

    #[test]
    fn ipv6_peers_are_counted_per_64() {
        let a = PeerKey::from("2001:db8::1".parse::<IpAddr>().unwrap());
        let b = PeerKey::from("2001:db8::ffff:2".parse::<IpAddr>().unwrap());
        assert_eq!(a, b);
        let mapped = PeerKey::from("::ffff:10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(mapped, PeerKey("10.0.0.1".parse().unwrap()));
    }
}
