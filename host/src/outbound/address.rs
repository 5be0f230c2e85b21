//! Address checks: where a request may really connect once its host name is
//! resolved, so that DNS cannot carry a request into a range the allowlist
//! did not name.
//!
//! - Public addresses may be reached (as IP literals the allowlist names, or
//!   as what a named host resolves to).
//! - Internal addresses — loopback, private, link-local (cloud metadata),
//!   shared, unique-local, multicast, documentation and other special
//!   ranges — only when the **operator** allows their range
//!   (`--outbound-allow-internal`), whether written as an IP literal or
//!   reached through a name: a manifest alone never reaches them, so neither
//!   `http://169.254.169.254` in `network.allow` nor a rebinding answer of
//!   `127.0.0.1` gets a connection.
//! - `localhost` may reach loopback addresses only.
//!
//! The sender connects to exactly the addresses returned here: a name is
//! resolved once per request and never again behind the check's back.

use crate::origin::{Host, Origin};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Why no address may be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The name did not resolve (or took too long).
    #[error("cannot resolve `{0}`")]
    Unresolved(String),
    /// Every address is in a range the allowlist did not name.
    #[error("`{host}` leads only to internal addresses the operator does not allow ({addrs})")]
    Prohibited {
        /// The host name.
        host: String,
        /// The refused addresses.
        addrs: String,
    },
}

/// The addresses `origin` may connect to, resolved by `resolver` (cached
/// within TTLs) and checked on every call.
pub async fn permitted_addresses(
    resolver: &super::resolve::Resolver,
    origin: &Origin,
    timeout: Duration,
    allow_internal: &[ipnet::IpNet],
) -> Result<Vec<SocketAddr>, AddressError> {
    let name = match &origin.host {
        Host::Ip(ip) => {
            let addr = SocketAddr::new(*ip, origin.port);
            return permitted_for_name(&ip.to_string(), &[addr], allow_internal);
        }
        Host::Name(name) => name,
    };
    let Some(resolved) = resolver.lookup(name, origin.port, timeout).await else {
        return Err(AddressError::Unresolved(name.clone()));
    };
    permitted_for_name(name, &resolved, allow_internal)
}

/// Of the addresses `name` resolved to, those it may reach: public ones, and
/// internal ones in a range the operator allows.
pub fn permitted_for_name(
    name: &str,
    resolved: &[SocketAddr],
    allow_internal: &[ipnet::IpNet],
) -> Result<Vec<SocketAddr>, AddressError> {
    if resolved.is_empty() {
        return Err(AddressError::Unresolved(name.to_owned()));
    }
    let reachable = |ip: IpAddr| !is_internal(ip) || allow_internal.iter().any(|net| net.contains(&ip));
    let allowed: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|a| (name != "localhost" || a.ip().is_loopback()) && reachable(a.ip()))
        .collect();
    if allowed.is_empty() {
        let addrs = resolved.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
        return Err(AddressError::Prohibited { host: name.to_owned(), addrs });
    }
    Ok(allowed)
}

/// Whether `ip` is in a range a host *name* may not lead to.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 (embeds IPv4)
        || ip.to_ipv4().is_some_and(|v4| is_internal_v4(v4) && !v4.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::6810:84e5"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    fn addrs(ips: &[&str]) -> Vec<SocketAddr> {
        ips.iter().map(|ip| SocketAddr::new(ip.parse().unwrap(), 443)).collect()
    }

    #[test]
    fn nothing_leads_into_an_internal_range_the_operator_does_not_allow() {
        // A rebinding answer: an allowed name that resolves to loopback.
        let refused = permitted_for_name("api.example.com", &addrs(&["127.0.0.1"]), &[]).unwrap_err();
        assert_eq!(
            refused,
            AddressError::Prohibited { host: "api.example.com".into(), addrs: "127.0.0.1".into() }
        );
        assert!(permitted_for_name("api.example.com", &addrs(&["169.254.169.254", "::1"]), &[]).is_err());
        // IP literals are held to the same rule.
        assert!(permitted_for_name("169.254.169.254", &addrs(&["169.254.169.254"]), &[]).is_err());
        assert!(permitted_for_name("10.0.0.5", &addrs(&["10.0.0.5"]), &[]).is_err());
        // Mixed answers keep only the public addresses.
        let mixed =
            permitted_for_name("api.example.com", &addrs(&["10.0.0.5", "93.184.216.34"]), &[]).unwrap();
        assert_eq!(mixed, addrs(&["93.184.216.34"]));
        // The operator may open a range, and only that range.
        let loopback: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(permitted_for_name("127.0.0.1", &addrs(&["127.0.0.1"]), &loopback).is_ok());
        assert!(permitted_for_name("10.0.0.5", &addrs(&["10.0.0.5"]), &loopback).is_err());
        // `localhost` reaches loopback only, and only when allowed.
        assert_eq!(
            permitted_for_name("localhost", &addrs(&["127.0.0.1", "10.0.0.5"]), &loopback).unwrap(),
            addrs(&["127.0.0.1"])
        );
        assert!(permitted_for_name("localhost", &addrs(&["127.0.0.1"]), &[]).is_err());
    }

    #[tokio::test]
    async fn unresolvable_names_fail_and_localhost_stays_on_loopback() {
        let origin = Origin {
            scheme: crate::origin::Scheme::Http,
            host: Host::Name("localtest.invalid".into()),
            port: 80,
        };
        let resolver =
            super::super::resolve::Resolver::new(&crate::config::HostConfig::for_root(".").outbound);
        assert!(permitted_addresses(&resolver, &origin, Duration::from_secs(2), &[]).await.is_err());
        let localhost = Origin { host: Host::Name("localhost".into()), ..origin.clone() };
        let loopback: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let addrs =
            permitted_addresses(&resolver, &localhost, Duration::from_secs(2), &loopback).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
