//! [`CallRecord`]: one call as it moves through the pipeline. Each step fills
//! in what it learns; at the end the record becomes the call's log line and
//! metrics (and, with the audit trail, its audit record) — denials included.

use super::{Endpoint, Reply};
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Instant;

/// What the pipeline knows about a call.
#[derive(Debug)]
pub struct CallRecord {
    /// The request's correlation id.
    pub correlation_id: CorrelationId,
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
    started: Instant,
}

impl CallRecord {
    /// A record for a request that has just arrived.
    pub fn new(correlation_id: &CorrelationId, endpoint: Endpoint, tool: &str) -> Self {
        Self {
            correlation_id: correlation_id.clone(),
            endpoint,
            principal: None,
            tool: tool.to_owned(),
            tool_known: false,
            args_sha256: None,
            started: Instant::now(),
        }
    }

    /// Close the record: one log line, and metrics for known tools.
    pub fn finish(self, state: &AppState, outcome: &Result<Reply, ApiError>) {
        let elapsed = self.started.elapsed();
        let (status, decision) = match outcome {
            Ok(reply) => (reply.status.as_u16(), reply.decision),
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
            endpoint = self.endpoint.name(),
            sub,
            tenant,
            tool = %self.tool,
            args_sha256 = self.args_sha256.as_deref().unwrap_or("-"),
            decision,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "tool call"
        );
    }
}
