//! Approvals over MCP: a client that declared the Tasks extension gets a
//! task (raw 2026-07-28 HTTP, and the official Python SDK through its
//! extension interface); any other client (raw, and the TypeScript SDK,
//! which speaks 2025-11-25 only) gets `approval_pending` with the call id
//! and the status URL.

use super::{approver, decide, get_as, outcome, root};
use crate::harness::{TestServer, json};
use crate::mcp::clients::{self, Sdk};
use crate::mcp::confirmation::{modern_meta, modern_post};
use serde_json::{Value, json};

/// `_meta` of a 2026-07-28 request whose client declared the Tasks extension.
fn tasks_meta() -> Value {
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] =
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    meta
}

fn call(meta: Value, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "util.echo", "arguments": {"message": message}, "_meta": meta}})
}

fn task_request(method: &str, id: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": {"taskId": id, "_meta": tasks_meta()}})
}

/// POST a JSON-RPC request; its `result` (or the whole answer when it failed).
async fn rpc(server: &TestServer, token: &str, method: &str, name: &str, body: &Value) -> Value {
    let (status, answer) = json(modern_post(server, token, method, Some(name), body).await).await;
    assert_eq!(status, 200, "{answer}");
    answer.get("result").cloned().unwrap_or(answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_tasks_is_told_the_call_waits_and_where_to_follow_it() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let result = rpc(&server, &server.token, "tools/call", "util.echo", &call(modern_meta(), "raw")).await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(result["content"][0]["text"].as_str().unwrap().starts_with("approval_pending:"), "{result}");
    let pending = &result["_meta"]["io.fastmcp/approval"];
    assert_eq!(pending["code"], "approval_pending");
    let id = pending["call_id"].as_str().unwrap();
    assert_eq!(pending["status_url"], format!("/calls/{id}"));
    decide(&server, &approver(&server, "alice"), id, "approve", None).await;
    assert_eq!(outcome(&server, id).await["result"], json!({"message": "raw"}));

    // The TypeScript SDK (2025-11-25, no tasks): the same answer.
    let url = server.url("/mcp");
    let out = clients::run(
        Sdk::TypeScript,
        &url,
        Some(&server.token),
        "call",
        json!({"tool": "util.echo", "args": {"message": "ts"}}),
    )
    .await;
    assert_eq!(out["is_error"], true, "{out}");
    assert_eq!(out["meta"]["io.fastmcp/approval"]["code"], "approval_pending", "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_tasks_follows_the_call_as_a_task() {
    let root = root(2);
    let server = TestServer::start(&root).await;
    let created = rpc(&server, &server.token, "tools/call", "util.echo", &call(tasks_meta(), "tasked")).await;
    assert_eq!(
        (created["resultType"].as_str(), created["status"].as_str()),
        (Some("task"), Some("working")),
        "{created}"
    );
    let id = created["taskId"].as_str().unwrap().to_owned();
    assert!(created["statusMessage"].as_str().unwrap().contains("0 of 2 approvals"), "{created}");
    let get = || task_request("tasks/get", &id);

    // Only the requester sees the task.
    let other = server.token_for("mallory", "public", &["tester"], &["tools.invoke:write"]);
    let foreign = rpc(&server, &other, "tasks/get", &id, &get()).await;
    assert!(foreign["error"]["message"].as_str().unwrap().contains("call_not_found"), "{foreign}");
    let cancel = rpc(&server, &other, "tasks/cancel", &id, &task_request("tasks/cancel", &id)).await;
    assert!(cancel.get("error").is_some(), "another's task cannot be cancelled: {cancel}");

    decide(&server, &approver(&server, "alice"), &id, "approve", None).await;
    let working = rpc(&server, &server.token, "tasks/get", &id, &get()).await;
    assert_eq!(working["status"], "working");
    assert!(working["statusMessage"].as_str().unwrap().contains("1 of 2 approvals"), "{working}");
    decide(&server, &approver(&server, "bob"), &id, "approve", None).await;
    outcome(&server, &id).await;
    let done = rpc(&server, &server.token, "tasks/get", &id, &get()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["structuredContent"], json!({"message": "tasked"}));

    // tasks/cancel withdraws a waiting call.
    let created =
        rpc(&server, &server.token, "tools/call", "util.echo", &call(tasks_meta(), "withdrawn")).await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let cancelled =
        rpc(&server, &server.token, "tasks/cancel", &id, &task_request("tasks/cancel", &id)).await;
    assert!(cancelled.get("error").is_none(), "{cancelled}");
    let after = rpc(&server, &server.token, "tasks/get", &id, &task_request("tasks/get", &id)).await;
    assert_eq!(after["status"], "cancelled", "{after}");
    assert_eq!(get_as(&server, &server.token, &format!("/calls/{id}")).await.1["status"], "withdrawn");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_follows_an_approval_task_to_its_result() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let url = server.url("/mcp");
    let finished = clients::start_waiting(Sdk::Python, &url, &server.token, "approval_task").await;
    // The client holds a task; an approver decides it in the inbox.
    let alice = approver(&server, "alice");
    let (_, inbox) = get_as(&server, &alice, "/approvals").await;
    let id = inbox["approvals"][0]["call_id"].as_str().expect("the task's call is in the inbox").to_owned();
    assert_eq!(inbox["approvals"][0]["arguments"], json!({"message": "from python"}));
    decide(&server, &alice, &id, "approve", None).await;
    let out = finished.await;
    assert_eq!(out["version"], "2026-07-28", "{out}");
    assert_eq!(out["is_error"], false, "{out}");
    assert_eq!(out["structured"], json!({"message": "from python"}));
    let seen = out["seen"].as_array().unwrap();
    assert_eq!(seen[0]["task_id"], id.as_str());
    assert_eq!(seen[0]["status"], "working");
    assert_eq!(seen.last().unwrap()["status"], "completed");

    let cancelled = clients::run(Sdk::Python, &url, Some(&server.token), "approval_cancel", json!({})).await;
    assert_eq!(cancelled["created"]["resultType"], "task", "{cancelled}");
    assert_eq!(cancelled["after"]["status"], "cancelled", "{cancelled}");
    server.stop().await;
}
