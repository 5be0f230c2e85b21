//! [`CallRecord`]: one call as it moves through the pipeline — the carrier
//! every step reads and fills in. At the end it becomes the call's audit
//! record — written durably *before* the transport answers — its log line
//! and its metrics, denials included.

use super::{Endpoint, Reply, Transport};
use crate::audit::Receipt;
use crate::audit::record::{AuditEvent, AuditPrincipal};
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::manifest::ToolDef;
use crate::outbound::log::EgressLog;
use crate::policy::ConfirmRule;
use crate::principal::Principal;
use crate::ratelimit::Verdict;
use crate::registry::Tool;
use crate::state::{AppState, PolicySnapshot};
use crate::store::keys;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the link from an action token to its invoke record is kept
/// beyond the token's own lifetime.
const LINK_GRACE: Duration = Duration::from_secs(60);

/// What the pipeline knows about a call.
pub struct CallRecord {
    /// The request's correlation id.
    pub correlation_id: CorrelationId,
    /// Over which transport.
    pub transport: Transport,
    /// Invoke or confirm.
    pub endpoint: Endpoint,
    /// The caller, once authenticated.
    pub principal: Option<Arc<Principal>>,
    /// The requested tool id (as given, even if unknown).
    pub tool: String,
    /// Whether the tool exists (only known tools become metric labels).
    pub tool_known: bool,
    /// SHA-256 of the canonical (key-sorted) arguments, once parsed.
    pub args_sha256: Option<String>,
    /// The arguments, only when the tool's manifest opts in to recording them.
    pub args: Option<Value>,
    /// Credentials used and requests made by the plugin (fingerprints only).
    pub egress: EgressLog,
    /// The client's address, when served over TCP.
    pub peer: Option<std::net::IpAddr>,
    /// Fires when the client gave up on the call (MCP: it closed the
    /// request's stream); the sandbox is torn down and the call recorded
    /// `cancelled`. REST never cancels: a call that started finishes.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// The policy snapshot the whole call is decided by (once authorized).
    pub policy: Option<Arc<PolicySnapshot>>,
    /// The tool (once resolved).
    pub resolved: Option<Arc<Tool>>,
    /// The validated arguments.
    pub arguments: Value,
    /// The idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// The action token, on confirm.
    pub action_token: Option<String>,
    /// The `confirm` rule that applies, if any.
    pub confirm_rule: Option<ConfirmRule>,
    /// The caller's rate-limit bucket after this call.
    pub rate: Option<Verdict>,
    started: Instant,
}

impl CallRecord {
    /// A record for a request that has just arrived.
    pub fn new(correlation_id: &CorrelationId, transport: Transport, endpoint: Endpoint, tool: &str) -> Self {
        Self {
            correlation_id: correlation_id.clone(),
            transport,
            endpoint,
            principal: None,
            tool: crate::text::clip(tool, super::MAX_TOOL_ID_LEN).into_owned(),
            tool_known: false,
            args_sha256: None,
            args: None,
            egress: EgressLog::default(),
            peer: None,
            cancel: None,
            policy: None,
            resolved: None,
            arguments: Value::Null,
            idempotency_key: None,
            action_token: None,
            confirm_rule: None,
            rate: None,
            started: Instant::now(),
        }
    }

    /// The authenticated caller (every step after authentication).
    pub fn principal(&self) -> &Arc<Principal> {
        self.principal.as_ref().expect("authenticated before this step")
    }

    /// The resolved tool's definition (every step after resolution).
    pub fn tool_def(&self) -> &ToolDef {
        &self.resolved.as_ref().expect("resolved before this step").def
    }

    /// Close the record: write the audit record (durably), then the log
    /// line and metrics. If the audit trail cannot take the record, the call
    /// fails closed with 503 `audit_unavailable`.
    pub async fn commit(self, state: &AppState, outcome: Result<Reply, ApiError>) -> Result<Reply, ApiError> {
        if let (Err(ApiError::Unauthenticated(_)), Some(peer)) = (&outcome, self.peer)
            && !state.auth_failures().admit(peer)
        {
            // Over the address's budget: counted for the aggregate record.
            tracing::debug!(correlation_id = %self.correlation_id, %peer, "authentication failure over budget: not audited one by one");
            return outcome;
        }
        let event = self.audit_event(state, &outcome).await;
        let outcome = match state.audit().append(event).await {
            Ok(receipt) => {
                if let Ok(reply) = &outcome {
                    self.link_pending(state, reply, &receipt).await;
                }
                outcome
            }
            Err(e) => {
                tracing::error!(correlation_id = %self.correlation_id, error = %e, "call not acknowledged: no audit record");
                Err(ApiError::AuditUnavailable)
            }
        };
        self.log(state, &outcome);
        outcome
    }

    async fn audit_event(&self, state: &AppState, outcome: &Result<Reply, ApiError>) -> AuditEvent {
        let (event, decision, status, detail) = match outcome {
            Ok(reply) => {
                let event = match self.endpoint {
                    Endpoint::Invoke => "tools.invoke",
                    Endpoint::Confirm | Endpoint::Decline(_) => "tools.confirm",
                };
                let detail = match (&reply.action_id, self.endpoint) {
                    (Some(id), Endpoint::Invoke) => Some(json!({ "action_id": id })),
                    (Some(id), Endpoint::Confirm | Endpoint::Decline(_)) => {
                        let invoke = match state.store().get(&keys::audit_link(id)).await {
                            Ok(Some(bytes)) => serde_json::from_slice::<Value>(&bytes).ok(),
                            _ => None,
                        };
                        Some(json!({ "action_id": id, "invoke": invoke }))
                    }
                    (None, _) => None,
                };
                (event, reply.decision, reply.status(), detail)
            }
            Err(e) => {
                let class = e.class();
                let mut detail = json!({ "error": e.to_string() });
                if let ApiError::PolicyDenied { rule, .. } = e {
                    detail["rule"] = json!(rule);
                }
                if let ApiError::ConfirmationDeclined { action_id, .. } = e {
                    detail["action_id"] = json!(action_id);
                }
                (class.audit.event(), class.code, class.status.as_u16(), Some(detail))
            }
        };
        let detail = match (detail, self.egress.to_audit()) {
            (detail, None) => detail,
            (Some(Value::Object(mut fields)), Some(egress)) => {
                fields.insert("egress".into(), egress);
                Some(Value::Object(fields))
            }
            (_, Some(egress)) => Some(json!({ "egress": egress })),
        };
        AuditEvent {
            event: event.into(),
            correlation_id: Some(self.correlation_id.to_string()),
            principal: self
                .principal
                .as_ref()
                .map(|p| AuditPrincipal { sub: p.sub.clone(), tenant: p.tenant.clone() }),
            tool: Some(self.tool.clone()),
            transport: Some(self.transport.name().into()),
            decision: decision.into(),
            status: Some(status),
            args_sha256: self.args_sha256.clone(),
            args: self.args.clone(),
            detail,
        }
    }

    /// After a 202, remember which record the action token came from, so the
    /// confirm record can name it.
    async fn link_pending(&self, state: &AppState, reply: &Reply, receipt: &Receipt) {
        let (Endpoint::Invoke, Some(id), Some(ttl)) = (self.endpoint, &reply.action_id, reply.action_ttl)
        else {
            return;
        };
        let link =
            serde_json::to_vec(&json!({ "seq": receipt.seq, "hash": receipt.hash })).expect("serialises");
        if let Err(e) = state.store().put(&keys::audit_link(id), &link, ttl + LINK_GRACE).await {
            tracing::warn!(error = %e, "could not link an action token to its audit record");
        }
    }

    /// One log line, and metrics for known tools.
    fn log(&self, state: &AppState, outcome: &Result<Reply, ApiError>) {
        let elapsed = self.started.elapsed();
        let (status, decision) = match outcome {
            Ok(reply) => (reply.status(), reply.decision),
            Err(e) => (e.status().as_u16(), e.code()),
        };
        if self.tool_known {
            state.metrics().record_call(&self.tool, decision, elapsed);
        }
        let (sub, tenant) = match &self.principal {
            Some(p) => (p.sub.as_str(), p.tenant.as_str()),
            None => ("-", "-"),
        };
        tracing::info!(
            target: "fastmcp::call",
            correlation_id = %self.correlation_id,
            transport = self.transport.name(),
            endpoint = self.endpoint.name(),
            sub,
            tenant,
            tool = %self.tool,
            args_sha256 = self.args_sha256.as_deref().unwrap_or("-"),
            decision,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            peer = self.peer.map(tracing::field::display),
            "tool call"
        );
    }
}
