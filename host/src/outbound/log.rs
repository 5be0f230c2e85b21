//! [`EgressLog`]: what one call did with credentials and on the network —
//! tokens handed out (by fingerprint), credentials injected, requests sent,
//! requests denied. It becomes the `egress` part of the call's audit record.
//! Bounded: after [`MAX_EVENTS`] events only a count of the rest is kept.

use serde::Serialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Events kept per call.
pub const MAX_EVENTS: usize = 64;

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

#[derive(Debug, Default)]
struct Entries {
    events: Vec<EgressEvent>,
    dropped: usize,
}

/// A call's egress events; clones share one list.
#[derive(Debug, Clone, Default)]
pub struct EgressLog(Arc<Mutex<Entries>>);

impl EgressLog {
    /// Record an event (or count it, once the list is full).
    pub fn push(&self, event: EgressEvent) {
        let mut entries = self.0.lock().expect("the egress log lock is never poisoned");
        if entries.events.len() < MAX_EVENTS {
            entries.events.push(event);
        } else {
            entries.dropped += 1;
        }
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
