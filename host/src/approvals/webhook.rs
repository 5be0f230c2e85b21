//! The approver notification webhook: one signed JSON event per request and
//! decision, sent from a bounded queue by a background task, retried with
//! backoff — never waited on by a call or a decision.
//!
//! Each event is a POST of `application/json` with
//! `X-FastMCP-Signature: sha256=<hex HMAC-SHA256 of the body>` (the key from
//! `approvals.webhook_key_file`) and `X-FastMCP-Event: <event>`. Events carry
//! who, what tool and which rule — never the arguments (approvers read them
//! through the API, authenticated).

use super::ledger::{PendingCall, Vote, Who};
use crate::audit::export::sinks::{SIGNATURE_HEADER, signature};
use crate::config::ApprovalsConfig;
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// Attempts per event before it is given up (and counted as failed).
const ATTEMPTS: u32 = 6;
/// First wait between attempts; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What happened to the events (shared with `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct WebhookCounters {
    /// Accepted by the endpoint (2xx).
    pub delivered: Counter,
    /// Given up after every attempt failed.
    pub failed: Counter,
    /// Dropped because the queue was full.
    pub dropped: Counter,
}

/// One event, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `approval.requested`, `approval.approved`, `approval.denied`,
    /// `approval.expired`, `approval.withdrawn`, `approval.completed`,
    /// `approval.failed`.
    pub event: String,
    /// The call.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// Who asked.
    pub requester: super::ledger::Who,
    /// The approval rule.
    pub rule: String,
    /// Approvals needed.
    pub quorum: u32,
    /// Who decided (decisions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approver: Option<super::ledger::Who>,
    /// Where approvers see the call (`GET`, authenticated).
    pub approval_url: String,
    /// When (RFC 3339).
    pub at: String,
}

impl Event {
    /// The event `event` about `call`, by the approver of `vote` if any.
    pub fn of(event: &str, call: &PendingCall, vote: Option<&Vote>, now_ms: i64) -> Self {
        Self {
            event: event.into(),
            call_id: call.id.clone(),
            tool: call.tool.clone(),
            requester: Who::of(&call.requester),
            rule: call.requirement.rule.clone(),
            quorum: call.requirement.quorum,
            approver: vote.map(|v| v.approver.clone()),
            approval_url: format!("/approvals/{}", call.id),
            at: super::views::rfc3339(now_ms),
        }
    }
}

/// The queue in front of the sender task.
pub struct Webhook {
    queue: mpsc::Sender<Event>,
    counters: WebhookCounters,
}

impl Webhook {
    /// Start the sender when `approvals.webhook_url` is set (the key file
    /// is read now: a missing or short key fails startup).
    pub fn start(config: &ApprovalsConfig, counters: WebhookCounters) -> anyhow::Result<Option<Self>> {
        use anyhow::Context as _;
        let (Some(url), Some(key_file)) = (&config.webhook_url, &config.webhook_key_file) else {
            return Ok(None);
        };
        let key = std::fs::read(key_file)
            .with_context(|| format!("approvals.webhook_key_file: cannot read {}", key_file.display()))?;
        let key = key.trim_ascii().to_vec();
        if key.len() < 16 {
            anyhow::bail!("approvals.webhook_key_file: the key must be at least 16 bytes");
        }
        let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        let (queue, events) = mpsc::channel(config.webhook_queue);
        tokio::spawn(send_all(events, client, url.clone(), key, counters.clone()));
        Ok(Some(Self { queue, counters }))
    }

    /// Queue `event`; a full queue drops it (counted).
    pub fn notify(&self, event: Event) {
        if self.queue.try_send(event).is_err() {
            self.counters.dropped.inc();
            tracing::warn!("approval webhook queue full: event dropped");
        }
    }
}

async fn send_all(
    mut events: mpsc::Receiver<Event>,
    client: reqwest::Client,
    url: String,
    key: Vec<u8>,
    counters: WebhookCounters,
) {
    while let Some(event) = events.recv().await {
        let body = serde_json::to_vec(&event).expect("events serialise");
        let mut backoff = FIRST_BACKOFF;
        let mut delivered = false;
        for attempt in 1..=ATTEMPTS {
            let sent = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature(&key, &body))
                .header("x-fastmcp-event", &event.event)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    delivered = true;
                    break;
                }
                // The URL may carry a token: only the status or the error's kind is logged.
                Ok(response) => {
                    tracing::debug!(attempt, status = response.status().as_u16(), "approval webhook refused")
                }
                Err(e) => tracing::debug!(
                    attempt,
                    timeout = e.is_timeout(),
                    connect = e.is_connect(),
                    "approval webhook unreachable"
                ),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        if delivered {
            counters.delivered.inc();
        } else {
            counters.failed.inc();
            tracing::warn!(event = %event.event, call_id = %event.call_id, "approval webhook: event given up after {ATTEMPTS} attempts");
        }
    }
}
