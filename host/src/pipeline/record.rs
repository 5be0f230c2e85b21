//! [`CallRecord`]: one call as it moves through the pipeline — the carrier
//! every step reads and fills in. At the end it becomes the call's audit
//! record — written durably *before* the transport answers — its log line
//! and its metrics, denials included.

use super::{Endpoint, Reply, ReplyBody, Transport};
use crate::audit::Receipt;
use crate::audit::record::{AuditEvent, AuditPrincipal};
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::outbound::log::EgressLog;
use crate::principal::Principal;
use crate::ratelimit::Verdict;
use crate::state::AppState;
use crate::store::keys;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the link from an action token to its invoke record is kept
/// beyond the token's own lifetime.
const LINK_GRACE: Duration = Duration::from_secs(60);

/// What is recorded of a call: filled in as the steps learn it.
pub struct CallRecord {
    /// The request's correlation id.
    pub correlation_id: CorrelationId,
    /// Over which transport.
    pub transport: Transport,
    /// Invoke, confirm or decline.
    pub endpoint: Endpoint,
    /// The requested tool id (as given, even if unknown; cut to the longest
    /// id a manifest can declare).
    pub tool: String,
    /// The client's address, when served over TCP.
    pub peer: Option<std::net::IpAddr>,
    /// The caller, once authenticated.
    pub(super) principal: Option<Arc<Principal>>,
    /// Whether the tool exists (only known tools become metric labels).
    pub(super) tool_known: bool,
    /// SHA-256 of the canonical (key-sorted) arguments, once parsed.
    pub(super) args_sha256: Option<String>,
    /// The arguments, only when the tool's manifest opts in to recording them.
    pub(super) args: Option<Value>,
    /// Credentials used and requests made by the plugin (fingerprints only).
    pub(super) egress: EgressLog,
    /// The caller's rate-limit bucket after this call.
    pub(super) rate: Option<Verdict>,
    /// The call's span and the caller's trace context.
    pub(super) trace: crate::telemetry::CallTrace,
    /// For an approved run: the approval it carries out.
    pub(super) approved: Option<Value>,
    /// The request's headers a step may read (never recorded).
    pub(super) headers: super::RequestHeaders,
    /// The access token of the caller's connection the tool acts with, read
    /// for this call (never recorded).
    pub(super) connection: Option<crate::broker::providers::Secret>,
    started: Instant,
}

impl CallRecord {
    /// A record for a request that has just arrived.
    pub fn new(
        correlation_id: &CorrelationId,
        transport: Transport,
        endpoint: Endpoint,
        tool: &str,
        peer: Option<std::net::IpAddr>,
        trace: crate::telemetry::CallTrace,
    ) -> Self {
        Self {
            correlation_id: correlation_id.clone(),
            transport,
            endpoint,
            tool: crate::text::clip(tool, super::MAX_TOOL_ID_LEN).into_owned(),
            peer,
            principal: None,
            tool_known: false,
            args_sha256: None,
            args: None,
            egress: EgressLog::default(),
            rate: None,
            trace,
            approved: None,
            headers: Default::default(),
            connection: None,
            started: Instant::now(),
        }
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
        let span = self.trace.step("audit");
        let appended = tracing::Instrument::instrument(state.audit().append(event), span.clone()).await;
        let outcome = match appended {
            Ok(receipt) => {
                if let Ok(reply) = &outcome {
                    self.link_pending(state, reply, &receipt).await;
                }
                outcome
            }
            Err(e) => {
                tracing::error!(correlation_id = %self.correlation_id, error = %e, "call not acknowledged: no audit record");
                if let Ok(Reply { body: ReplyBody::AwaitingApproval(body), .. }) = &outcome {
                    // Unrecorded, it must not wait for approvers either.
                    state.approvals().abandon(&body.call_id).await;
                }
                crate::telemetry::context::fail(&span, ApiError::AuditUnavailable.code());
                Err(ApiError::AuditUnavailable)
            }
        };
        drop(span);
        self.log(state, &outcome);
        outcome
    }

    async fn audit_event(&self, state: &AppState, outcome: &Result<Reply, ApiError>) -> AuditEvent {
        let (event, decision, status, detail) = match outcome {
            Ok(reply) => {
                let event = match (self.endpoint, &reply.body) {
                    (_, ReplyBody::AwaitingApproval(_)) => "approval.requested",
                    (Endpoint::Invoke | Endpoint::Approved, _) => "tools.invoke",
                    (Endpoint::Confirm | Endpoint::Decline(_), _) => "tools.confirm",
                };
                let detail = match (&reply.action_id, self.endpoint) {
                    _ if self.approved.is_some() => Some(json!({ "approval": self.approved })),
                    (Some(id), Endpoint::Invoke) => Some(json!({ "action_id": id })),
                    (Some(id), Endpoint::Confirm | Endpoint::Decline(_) | Endpoint::Approved) => {
                        let invoke = match state.store().get(&keys::audit_link(id)).await {
                            Ok(Some(bytes)) => serde_json::from_slice::<Value>(&bytes).ok(),
                            _ => None,
                        };
                        Some(json!({ "action_id": id, "invoke": invoke }))
                    }
                    (None, _) => None,
                };
                let detail = match (&reply.body, detail) {
                    (ReplyBody::AwaitingApproval(body), detail) => {
                        let mut fields = json!({
                            "call_id": body.call_id,
                            "rule": body.approval.rule,
                            "quorum": body.approval.quorum,
                            "expires_at": body.approval.expires_at,
                        });
                        if let Some(Value::Object(more)) = detail {
                            fields.as_object_mut().expect("an object").extend(more);
                        }
                        Some(fields)
                    }
                    (_, detail) => detail,
                };
                (event, reply.decision, reply.status(), detail)
            }
            Err(e) => {
                let class = e.class();
                let mut detail = json!({ "error": e.to_string() });
                if let Some(approved) = &self.approved {
                    detail["approval"] = approved.clone();
                }
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
            trace_id: self.trace.trace_id(),
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
        self.trace.finish(decision, outcome.as_ref().err().map(ApiError::code));
        let trace_id = self.trace.trace_id();
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
            trace_id = trace_id.as_deref(),
            "tool call"
        );
    }
}
