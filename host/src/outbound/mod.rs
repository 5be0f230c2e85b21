//! Outbound HTTP for plugins (`wasi:http/outgoing-handler`), on the host's
//! terms (`docs/architecture.md`, Sandbox):
//!
//! - [`origin`]: the manifest's `network.allow` patterns and request origins;
//! - [`address`]: the resolved addresses a request may really connect to;
//! - [`hooks`]: the `WasiHttpHooks` of one call — allowlist, forbidden
//!   headers, credential injection, limits;
//! - [`send`]: the sender, which connects to the checked addresses only;
//! - [`log`]: what a call did on the network and with credentials, for its
//!   audit record.
//!
//! A plugin without `network.allow` has no network: every request is denied
//! before any name is resolved.

pub mod address;
pub mod hooks;
pub mod log;
pub mod origin;
pub mod send;

use crate::broker::{Broker, Grant};
use origin::OriginPattern;
use std::sync::Arc;
use std::time::Duration;

/// Host-wide limits on plugins' outbound requests.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Longest wait for a DNS answer.
    pub dns_timeout: Duration,
    /// Longest wait for a TCP (and TLS) connection; a plugin may ask for less.
    pub connect_timeout: Duration,
    /// Longest wait for the response head; a plugin may ask for less.
    pub first_byte_timeout: Duration,
    /// Longest silence between two chunks of a response body; a plugin may
    /// ask for less.
    pub between_bytes_timeout: Duration,
    /// Largest request body a plugin may send.
    pub max_request_body_bytes: u64,
    /// Largest response body a plugin may receive.
    pub max_response_body_bytes: u64,
    /// Requests one call may make.
    pub max_requests_per_call: u32,
    /// Internal address ranges (loopback, private, link-local, metadata…)
    /// plugins may reach — the operator's choice, never a manifest's. Empty
    /// by default: a manifest can only ever reach public addresses.
    pub allow_internal: Vec<ipnet::IpNet>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            dns_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(10),
            max_request_body_bytes: 1 << 20,
            max_response_body_bytes: 4 << 20,
            max_requests_per_call: 32,
            allow_internal: Vec::new(),
        }
    }
}

/// What one plugin may do on the network, from its manifest.
#[derive(Debug, Default)]
pub struct PluginNetwork {
    /// `network.allow`; empty means no network at all.
    pub allow: Vec<OriginPattern>,
    /// `credentials`.
    pub grants: Vec<Grant>,
    /// Headers the plugin may not set: `authorization` and every header a
    /// grant injects.
    pub forbidden_headers: Vec<http::HeaderName>,
}

impl PluginNetwork {
    /// Build from validated manifest parts.
    pub fn new(allow: Vec<OriginPattern>, grants: Vec<Grant>) -> Self {
        let mut forbidden_headers = vec![http::header::AUTHORIZATION];
        for header in grants.iter().filter_map(|g| g.inject.as_ref()).map(|i| &i.header) {
            if !forbidden_headers.contains(header) {
                forbidden_headers.push(header.clone());
            }
        }
        Self { allow, grants, forbidden_headers }
    }
}

/// Everything a call needs for brokering and outbound HTTP; cheap to clone.
#[derive(Clone)]
pub struct Egress {
    /// The plugin's network rules and grants.
    pub network: Arc<PluginNetwork>,
    /// The broker.
    pub broker: Arc<Broker>,
    /// Host-wide limits.
    pub config: Arc<OutboundConfig>,
    /// This call's record of what it did.
    pub log: log::EgressLog,
}
