//! Origins: the `scheme://host[:port]` patterns of a manifest's
//! `network.allow`, and the origin of an outgoing request they are matched
//! against.
//!
//! A pattern names a scheme (`http` or `https`), a host and a port. The host is
//! a DNS name (`api.example.com`), a subdomain wildcard (`*.example.com`, which
//! matches `a.example.com` and `a.b.example.com` but not `example.com`), or an
//! IP literal (`127.0.0.1`, `[::1]`). The port is a number, `*` for any port, or
//! absent for the scheme's default. Paths, queries and user info are errors.

use std::fmt;
use std::net::IpAddr;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// The host part of a pattern or an origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercase, without a trailing dot.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl Host {
    /// Parse a host as written in a URL authority (IPv6 in brackets).
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(inner) = s.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            return inner.parse::<std::net::Ipv6Addr>().ok().map(|ip| Self::Ip(IpAddr::V6(ip)));
        }
        if let Ok(ip) = s.parse::<std::net::Ipv4Addr>() {
            return Some(Self::Ip(IpAddr::V4(ip)));
        }
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        is_dns_name(&name).then_some(Self::Name(name))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// Where a request goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The scheme.
    pub scheme: Scheme,
    /// The host.
    pub host: Host,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
}

impl Origin {
    /// The origin of a request URI; `None` if it has no usable scheme or host.
    pub fn of_uri(uri: &http::Uri) -> Option<Self> {
        let scheme = Scheme::parse(uri.scheme_str()?)?;
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = Host::parse(authority.host())?;
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        Some(Self { scheme, host, port })
    }
}

impl Origin {
    /// An exact origin as an operator writes it: `scheme://host[:port]`
    /// (no path beyond `/`, no query, no user info, no wildcard).
    pub fn parse(text: &str) -> Option<Self> {
        let uri: http::Uri = text.parse().ok()?;
        let path_ok = uri.path_and_query().is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/");
        if !path_ok {
            return None;
        }
        Self::of_uri(&uri)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// The host side of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(Host),
    /// `*.suffix`: any name ending in `.suffix`.
    Subdomains(String),
}

/// One `network.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: Scheme,
    host: HostPattern,
    /// `None` = any port.
    port: Option<u16>,
}

impl OriginPattern {
    /// Parse `scheme://host[:port|:*]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("`{text}` is not scheme://host[:port]"))?;
        let scheme =
            Scheme::parse(scheme).ok_or_else(|| format!("`{text}`: the scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{text}`: only scheme, host and port may be given (no path, query or user)"
            ));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| format!("`{text}`: bad host or port"))?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{text}`: the port must be 1..=65535 or `*`"))?,
            ),
        };
        let host = match host.strip_prefix("*.") {
            Some(suffix) => match Host::parse(suffix) {
                Some(Host::Name(name)) if name.contains('.') => HostPattern::Subdomains(name),
                _ => return Err(format!("`{text}`: `*.` must be followed by a domain with a dot")),
            },
            None => HostPattern::Exact(Host::parse(host).ok_or_else(|| format!("`{text}`: bad host"))?),
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether `origin` is allowed by this pattern.
    pub fn matches(&self, origin: &Origin) -> bool {
        let host = match (&self.host, &origin.host) {
            (HostPattern::Exact(pattern), host) => pattern == host,
            (HostPattern::Subdomains(suffix), Host::Name(name)) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            (HostPattern::Subdomains(_), Host::Ip(_)) => false,
        };
        host && self.scheme == origin.scheme && self.port.is_none_or(|p| p == origin.port)
    }

    /// Whether a request to `host` (on `port`, or on any port when `None`)
    /// could match this pattern under some scheme.
    pub fn covers_host(&self, host: &Host, port: Option<u16>) -> bool {
        let port = port.or(self.port).unwrap_or(self.scheme.default_port());
        self.matches(&Origin { scheme: self.scheme, host: host.clone(), port })
    }
}

/// Split `host[:port]`, with IPv6 hosts in brackets.
pub fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            _ => rest.strip_prefix(':').filter(|p| !p.is_empty()).map(|p| (host, Some(p))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.is_empty() && !host.contains(':') => {
            Some((host, Some(port)))
        }
        Some(_) => None,
        None if s.is_empty() => None,
        None => Some((s, None)),
    }
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(uri: &str) -> Origin {
        Origin::of_uri(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn exact_hosts_and_ports() {
        let p = OriginPattern::parse("http://127.0.0.1:8001").unwrap();
        assert!(p.matches(&origin("http://127.0.0.1:8001/v1")));
        assert!(!p.matches(&origin("http://127.0.0.1:8002/")));
        assert!(!p.matches(&origin("https://127.0.0.1:8001/")));
        assert!(!p.matches(&origin("http://localhost:8001/")));
        let any_port = OriginPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(any_port.matches(&origin("http://127.0.0.1:9/")));
        let default_port = OriginPattern::parse("https://API.Example.com").unwrap();
        assert!(default_port.matches(&origin("https://api.example.com/x")));
        assert!(default_port.matches(&origin("https://api.example.com:443/x")));
        assert!(!default_port.matches(&origin("https://api.example.com:8443/x")));
    }

    #[test]
    fn subdomain_wildcards_need_a_label() {
        let p = OriginPattern::parse("https://*.example.com").unwrap();
        assert!(p.matches(&origin("https://a.example.com/")));
        assert!(p.matches(&origin("https://a.b.example.com/")));
        assert!(!p.matches(&origin("https://example.com/")));
        assert!(!p.matches(&origin("https://evilexample.com/")));
        assert!(OriginPattern::parse("https://*.com").is_err());
    }

    #[test]
    fn ipv6_literals() {
        let p = OriginPattern::parse("http://[::1]:8080").unwrap();
        assert!(p.matches(&origin("http://[::1]:8080/")));
        assert!(!p.matches(&origin("http://[::2]:8080/")));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for bad in [
            "127.0.0.1:80",
            "ftp://example.com",
            "http://example.com/path",
            "http://user@example.com",
            "http://example.com:0",
            "http://example.com:99999",
            "http://exa mple.com",
            "http://",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_info_in_a_request_is_not_an_origin() {
        assert!(Origin::of_uri(&"http://a@127.0.0.1/".parse().unwrap()).is_none());
    }
}
