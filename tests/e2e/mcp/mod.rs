//! The MCP endpoint end to end, driven by the official Python and
//! TypeScript SDKs (and the Inspector CLI) against the real server: listing
//! by role, calls, errors, authentication, the confirmation gate by
//! elicitation, idempotency, hot reload and concurrency — and the audit
//! records they leave, which match REST's.

mod calls;
pub mod clients;
pub mod confirmation;
mod protocol;

use crate::harness::{TestServer, audit_records};
use serde_json::Value;
use std::path::Path;

/// The MCP endpoint's URL.
fn mcp_url(server: &TestServer) -> String {
    server.url("/mcp")
}

/// The audit records of calls (not host events), by correlation id.
fn call_records(root: &Path, correlation_id: &str) -> Vec<Value> {
    audit_records(root).into_iter().filter(|r| r["correlation_id"] == correlation_id).collect()
}

/// The correlation id an MCP result names in its `_meta`.
fn correlation_of(result: &Value) -> String {
    result["meta"]["io.fastmcp/correlation-id"]
        .as_str()
        .expect("results name their correlation id")
        .to_owned()
}

/// The stable code of an `isError` result.
fn problem_code(result: &Value) -> &str {
    assert_eq!(result["is_error"], true, "{result}");
    result["meta"]["io.fastmcp/problem"]["code"].as_str().unwrap_or_default()
}
