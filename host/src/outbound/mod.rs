//! Outbound HTTP for plugins (`wasi:http/outgoing-handler`), on the host's
//! terms (`docs/architecture.md`, Sandbox):
//!
//! - [`address`]: the resolved addresses a request may really connect to;
//! - [`hooks`]: the `WasiHttpHooks` of one call — allowlist, forbidden
//!   headers, credential injection, limits;
//! - [`send`]: the sender: one request over a connection to a checked address;
//! - [`client`]: the host's one outbound client, which opens connections
//!   (TCP, TLS, HTTP/1.1 or HTTP/2) and keeps them in the [`pool`], filed
//!   under origin and checked address;
//! - [`trust`]: the TLS trust roots (webpki, and the operator's `ca_file`);
//! - [`resolve`]: host names to addresses, cached within their TTLs;
//! - [`log`]: what a call did on the network and with credentials, for its
//!   audit record.
//!
//! A plugin without `network.allow` has no network: every request is denied
//! before any name is resolved.

pub mod address;
pub mod client;
pub mod hooks;
pub mod log;
pub mod pool;
pub mod resolve;
pub mod send;
pub mod trust;

use crate::broker::{Broker, Grant};
use crate::origin::OriginPattern;
use std::sync::Arc;

pub use crate::config::OutboundConfig;

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
    /// The host's configuration (its `outbound` limits).
    pub config: Arc<crate::config::HostConfig>,
    /// This call's record of what it did.
    pub log: log::EgressLog,
    /// The host's outbound client (connections, pool, trust roots).
    pub client: Arc<client::OutboundClient>,
    /// The trace context every request carries (and the parent of its span).
    pub trace: crate::telemetry::OutboundTrace,
    /// Who the call acts for (what delegated credentials carry upstream).
    pub on_behalf: Option<Arc<crate::broker::OnBehalf>>,
    /// The provider the tool names (`credential:` in its manifest): the only
    /// one whose credential is injected where several could be. Delegated
    /// providers are injected only for tools that name them.
    pub credential: Option<String>,
}
