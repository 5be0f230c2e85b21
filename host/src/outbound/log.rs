//! [`EgressLog`]: what one call did with credentials and on the network —
//! tokens handed out (by fingerprint), credentials injected, requests sent,
//! requests denied. It becomes the `egress` part of the call's audit record.
//! Bounded: each event's strings are cut to [`MAX_FIELD`] bytes, and after
//! [`MAX_EVENTS`] events or [`MAX_BYTES`] of them only a count of the rest
//! is kept.

use serde::Serialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Events kept per call.
pub const MAX_EVENTS: usize = 64;
/// Bytes of events (as JSON) kept per call, so the audit record stays well
/// under its cap.
pub const MAX_BYTES: usize = 8 * 1024;
/// Longest string kept in an event (provider, scope, origin, reason…).
pub const MAX_FIELD: usize = 256;
/// Most scopes kept in an event.
pub const MAX_SCOPES: usize = 32;

/// One thing a call did. Never holds a credential, only its fingerprint.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EgressEvent {
    /// `broker.get-token` gave a token.
    Token {
        /// Provider.
        provider: String,
        /// Scopes asked for.
        scopes: Vec<String>,
        /// The token's fingerprint.
        fingerprint: String,
    },
    /// `broker.get-token` refused.
    TokenRefused {
        /// Provider.
        provider: String,
        /// Scopes asked for.
        scopes: Vec<String>,
        /// Why.
        reason: String,
    },
    /// The host added a credential to an outbound request.
    Inject {
        /// Provider.
        provider: String,
        /// Scopes of the grant.
        scopes: Vec<String>,
        /// Where the request went.
        origin: String,
        /// The credential's fingerprint.
        fingerprint: String,
        /// Who the upstream sees: the caller's `sub` (delegated), the
        /// client id, or `static key`.
        identity: String,
    },
    /// An outbound request was sent (status, or the transport error).
    Request {
        /// HTTP method.
        method: String,
        /// `scheme://host:port`.
        origin: String,
        /// The response status, when one came.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// The failure, when none came.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An outbound request was refused before it left the host.
    Denied {
        /// What it tried to reach.
        target: String,
        /// Why.
        reason: String,
    },
}

impl EgressEvent {
    /// Every string cut to [`MAX_FIELD`] bytes and every scope list to
    /// [`MAX_SCOPES`] entries: what a plugin passes in never grows a record.
    fn bounded(mut self) -> Self {
        let clip = |s: &mut String| {
            if s.len() > MAX_FIELD {
                *s = crate::text::clip(s, MAX_FIELD).into_owned();
            }
        };
        let clip_scopes = |scopes: &mut Vec<String>| {
            scopes.truncate(MAX_SCOPES);
            scopes.iter_mut().for_each(clip);
        };
        match &mut self {
            EgressEvent::Token { provider, scopes, fingerprint } => {
                clip(provider);
                clip_scopes(scopes);
                clip(fingerprint);
            }
            EgressEvent::TokenRefused { provider, scopes, reason } => {
                clip(provider);
                clip_scopes(scopes);
                clip(reason);
            }
            EgressEvent::Inject { provider, scopes, origin, fingerprint, identity } => {
                clip(provider);
                clip_scopes(scopes);
                clip(origin);
                clip(fingerprint);
                clip(identity);
            }
            EgressEvent::Request { method, origin, error, .. } => {
                clip(method);
                clip(origin);
                error.iter_mut().for_each(clip);
            }
            EgressEvent::Denied { target, reason } => {
                clip(target);
                clip(reason);
            }
        }
        self
    }
}

#[derive(Debug, Default)]
struct Entries {
    events: Vec<EgressEvent>,
    bytes: usize,
    dropped: usize,
    /// The first provider whose credential could not be had.
    unavailable: Option<String>,
}

/// A call's egress events; clones share one list.
#[derive(Debug, Clone, Default)]
pub struct EgressLog(Arc<Mutex<Entries>>);

impl EgressLog {
    /// Record an event (or count it, once the list is full).
    pub fn push(&self, event: EgressEvent) {
        let mut entries = self.0.lock().expect("the egress log lock is never poisoned");
        let event = event.bounded();
        let size = serde_json::to_vec(&event).map_or(usize::MAX, |json| json.len());
        if entries.events.len() < MAX_EVENTS && entries.bytes + size <= MAX_BYTES {
            entries.bytes += size;
            entries.events.push(event);
        } else {
            entries.dropped += 1;
        }
    }

    /// Note that `provider`'s credential could not be had for a request
    /// (the call then answers `credential_unavailable` unless the tool
    /// completed anyway).
    pub fn credential_unavailable(&self, provider: &str) {
        let mut entries = self.0.lock().expect("the egress log lock is never poisoned");
        entries.unavailable.get_or_insert_with(|| crate::text::clip(provider, MAX_FIELD).into_owned());
    }

    /// The first provider whose credential could not be had, if any.
    pub fn unavailable_credential(&self) -> Option<String> {
        self.0.lock().expect("the egress log lock is never poisoned").unavailable.clone()
    }

    /// The audit form: `None` when the call did nothing on the network.
    pub fn to_audit(&self) -> Option<Value> {
        let entries = self.0.lock().expect("the egress log lock is never poisoned");
        if entries.events.is_empty() {
            return None;
        }
        let mut value = json!({ "events": entries.events });
        if entries.dropped > 0 {
            value["dropped"] = json!(entries.dropped);
        }
        Some(value)
    }
}
