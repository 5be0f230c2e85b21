//! Approvals end to end: the policy's `approvals:` rules, REST (`/calls`,
//! `/approvals`), MCP tasks with the official SDKs and raw HTTP, the
//! webhook, and the inbox page in a real browser.

mod browser;
mod mcp;
mod rest;

use crate::harness::{TestRoot, TestServer, json};
use serde_json::{Value, json};

/// The policy of these tests: `tester` may use every tool; `util:echo`
/// needs `quorum` approvals by holders of the `approver` role (of the
/// requester's tenant).
pub fn policy(quorum: u32) -> String {
    format!(
        r#"version: 1
roles:
  tester: {{ tools: ["*"] }}
approvals:
  - name: echo-needs-approval
    tools: ["util:echo"]
    when: "!('free' in args)"
    approvers: {{ roles: [approver] }}
    quorum: {quorum}
    ttl: 1h
    hint: "Echo needs a second person"
"#
    )
}

/// A root with the test policy.
pub fn root(quorum: u32) -> TestRoot {
    let root = TestRoot::new();
    root.write("policies/policies.yml", policy(quorum));
    root
}

/// Scopes an approver holds.
pub const APPROVER_SCOPES: &[&str] = &["approvals.inbox:read", "approvals.decide:write"];

/// A token of an approver `sub` of tenant `public`.
pub fn approver(server: &TestServer, sub: &str) -> String {
    server.token_for(sub, "public", &["approver"], APPROVER_SCOPES)
}

/// Invoke `util:echo` with `args` as the default tester; the `202` body.
pub async fn request(server: &TestServer, args: Value) -> Value {
    let (status, body) = json(server.invoke("util:echo", args).await).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "awaiting_approval", "{body}");
    body
}

/// `POST /approvals/{id}/{verdict}` as `token`; status and body.
pub async fn decide(
    server: &TestServer,
    token: &str,
    id: &str,
    verdict: &str,
    comment: Option<&str>,
) -> (u16, Value) {
    let mut request =
        server.client().post(server.url(&format!("/approvals/{id}/{verdict}"))).bearer_auth(token);
    if let Some(comment) = comment {
        request = request.json(&json!({ "comment": comment }));
    }
    json(request.send().await.unwrap()).await
}

/// `GET path` as `token`; status and body.
pub async fn get_as(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    json(server.client().get(server.url(path)).bearer_auth(token).send().await.unwrap()).await
}

/// The requester's view once the call is no longer waiting or running.
pub async fn outcome(server: &TestServer, id: &str) -> Value {
    let (status, body) = get_as(server, &server.token, &format!("/calls/{id}?wait=30")).await;
    assert_eq!(status, 200, "{body}");
    body
}
