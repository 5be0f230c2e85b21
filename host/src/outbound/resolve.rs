//! Name resolution for plugins' requests: hickory's resolver with the
//! system's configuration (`/etc/resolv.conf`, the hosts file) and its
//! cache, which keeps each answer no longer than its TTL (capped by
//! `outbound.dns_max_ttl`) and holds at most `outbound.dns_cache_entries`
//! names (`outbound.dns_server` names one server to ask instead). A cached
//! answer is only a list of addresses: the address check
//! ([`super::address::permitted_for_name`]) runs on it for every request,
//! as on a fresh one, and a connection is reused only for an address the
//! check returned. Where the system configuration cannot be read, names
//! are resolved by the system resolver (`getaddrinfo`) on every request.

use crate::config::OutboundConfig;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use std::net::SocketAddr;
use std::time::Duration;

/// The resolver.
pub struct Resolver {
    cached: Option<TokioResolver>,
}

impl Resolver {
    /// A resolver with `config`'s cache bounds.
    pub fn new(config: &OutboundConfig) -> Self {
        if config.dns_cache_entries == 0 {
            return Self { cached: None };
        }
        let builder = match config.dns_server {
            Some(server) => {
                let servers = NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
                let system = ResolverConfig::from_parts(None, Vec::new(), servers);
                Ok(TokioResolver::builder_with_config(system, TokioConnectionProvider::default()))
            }
            None => TokioResolver::builder_tokio(),
        };
        let cached = match builder {
            Ok(mut builder) => {
                let options = builder.options_mut();
                options.cache_size = config.dns_cache_entries;
                options.positive_max_ttl = Some(config.dns_max_ttl);
                options.negative_max_ttl = Some(Duration::from_secs(1));
                options.use_hosts_file =
                    if config.dns_server.is_some() { ResolveHosts::Never } else { ResolveHosts::Always };
                options.timeout = config.dns_timeout;
                Some(builder.build())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the system's resolver configuration; plugins' names are resolved without a cache");
                None
            }
        };
        Self { cached }
    }

    /// The addresses of `name` at `port`, within `timeout`; `None` when it
    /// does not resolve.
    pub async fn lookup(&self, name: &str, port: u16, timeout: Duration) -> Option<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = match &self.cached {
            Some(resolver) => {
                let found = tokio::time::timeout(timeout, resolver.lookup_ip(name)).await.ok()?.ok()?;
                found.iter().map(|ip| SocketAddr::new(ip, port)).collect()
            }
            None => tokio::time::timeout(timeout, tokio::net::lookup_host((name, port)))
                .await
                .ok()?
                .ok()?
                .collect(),
        };
        (!addrs.is_empty()).then_some(addrs)
    }
}
