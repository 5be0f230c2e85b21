//! The transport around the tools: authentication and its metadata, scope
//! step-up, origins, legacy sessions, change notifications, and the
//! Inspector CLI.

use super::clients::{self, Sdk};
use super::confirmation::{modern_meta, modern_post, modern_request};
use super::mcp_url;
use crate::harness::{TestRoot, TestServer, audit_records, eventually, json, problem};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_is_401_with_resource_metadata() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "util.echo", "arguments": {}, "_meta": modern_meta()}});
    let response = server
        .client()
        .post(mcp_url(&server))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "util.echo")
        .header("x-correlation-id", "mcp-anon")
        .json(&body)
        .send()
        .await
        .unwrap();
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    problem(response, 401, "unauthenticated").await;
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
    assert_eq!(challenge, format!(r#"Bearer resource_metadata="{metadata_url}""#));
    // Recorded like an unauthenticated REST call.
    let record = audit_records(root.path()).into_iter().find(|r| r["correlation_id"] == "mcp-anon").unwrap();
    assert_eq!((&record["decision"], &record["transport"]), (&json!("unauthenticated"), &json!("mcp")));

    // RFC 9728: the resource is the endpoint; scopes and bearer method.
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let (status, document) = json(server.client().get(server.url(path)).send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(document["resource"], mcp_url(&server));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
        let scopes = document["scopes_supported"].as_array().unwrap();
        assert!(
            scopes.contains(&json!("tools.invoke:write")) && scopes.contains(&json!("tools.query:catalog"))
        );
    }
    // A bad token: the same, with error="invalid_token".
    let response =
        server.client().post(mcp_url(&server)).bearer_auth("not-a-jwt").json(&body).send().await.unwrap();
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with(r#"Bearer error="invalid_token", resource_metadata=""#), "{challenge}");
    // The SDKs see the refusal too.
    for sdk in [Sdk::Python, Sdk::TypeScript] {
        let out = clients::run(sdk, &mcp_url(&server), None, "unauthenticated", json!({})).await;
        if sdk == Sdk::TypeScript {
            assert!(out["error"].as_str().unwrap().contains("401"), "{out}");
        }
        // (The Python SDK reports a generic error; the TypeScript SDK names the 401.)
        assert_eq!(out["connected"], false, "{sdk:?}: {out}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_scopes_are_403_for_step_up() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}});
    // A token that can do nothing on MCP.
    let health_only = server.token_for("h-1", "public", &["tester"], &["host.health:read"]);
    let response = modern_post(&server, &health_only, "tools/list", None, &list).await;
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    problem(response, 403, "insufficient_scope").await;
    assert!(challenge.starts_with(r#"Bearer error="insufficient_scope""#), "{challenge}");
    // Invoke only: listing needs the catalog scope.
    let invoke_only = server.token_for("i-1", "public", &["tester"], &["tools.invoke:write"]);
    let response = modern_post(&server, &invoke_only, "tools/list", None, &list).await;
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let body = problem(response, 403, "insufficient_scope").await;
    assert_eq!(body["scope"], "tools.query:catalog");
    assert!(challenge.contains(r#"scope="tools.query:catalog""#), "{challenge}");
    // Catalog only: a call is refused in the result (and recorded).
    let catalog_only = server.token_for("c-1", "public", &["tester"], &["tools.query:catalog"]);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "util.echo", "arguments": {}, "_meta": modern_meta()}});
    let (status, reply) =
        json(modern_post(&server, &catalog_only, "tools/call", Some("util.echo"), &call).await).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["_meta"]["io.fastmcp/problem"]["code"], "insufficient_scope", "{reply}");
    assert_eq!(reply["result"]["resultType"], "complete");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_origins_are_refused() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.mcp.allowed_origins = vec!["https://app.example.com".into()];
    let server = TestServer::start_with(config).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}});
    let post = |origin: &'static str| {
        modern_request(&server, &server.token, "tools/list", None, &list).header("origin", origin).send()
    };
    assert_eq!(post("https://evil.example").await.unwrap().status(), 403);
    let (status, reply) = json(post("https://app.example.com").await.unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{reply}");
    assert_eq!(reply["result"]["cacheScope"], "private");
    assert!(reply["result"]["ttlMs"].is_u64());
    server.stop().await;
}

/// A 2025-11-25 `initialize` as `token`.
async fn initialize(server: &TestServer, token: &str) -> reqwest::Response {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let request = server.client().post(mcp_url(server)).bearer_auth(token);
    request.header("accept", "application/json, text/event-stream").json(&initialize).send().await.unwrap()
}

/// Open a legacy session as `token`; its id.
async fn open_session(server: &TestServer, token: &str) -> String {
    let response = initialize(server, token).await;
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

async fn legacy_post(server: &TestServer, token: &str, session: &str, body: &Value) -> reqwest::Response {
    server
        .client()
        .post(mcp_url(server))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_belong_to_who_opened_them_and_are_bounded() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.mcp.max_sessions = 3;
    let server = TestServer::start_with(config).await;
    let session = open_session(&server, &server.token).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(legacy_post(&server, &server.token, &session, &initialized).await.status(), 202);
    // Another caller naming this session: as if it did not exist.
    let other =
        server.token_for("intruder", "public", &["tester"], &["tools.invoke:write", "tools.query:catalog"]);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(legacy_post(&server, &other, &session, &list).await.status(), 404);
    assert_eq!(legacy_post(&server, &other, "no-such-session", &list).await.status(), 404);
    assert_eq!(legacy_post(&server, &server.token, &session, &list).await.status(), 200);
    // At most three sessions at once: the fourth is refused.
    open_session(&server, &server.token).await;
    open_session(&server, &server.token).await;
    let response = initialize(&server, &server.token).await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 503, "overloaded").await;
    // Ending one (DELETE) makes room.
    let delete = server
        .client()
        .delete(mcp_url(&server))
        .bearer_auth(&server.token)
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    open_session(&server, &server.token).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stateless_get_is_405() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let response = server
        .client()
        .get(mcp_url(&server))
        .bearer_auth(&server.token)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_reaches_listening_clients() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for (n, sdk) in [Sdk::Python, Sdk::TypeScript].into_iter().enumerate() {
        let done = clients::start_waiting(sdk, &url, &server.token, "watch").await;
        // A new plugin (the util component under another name) appears.
        let plugin = format!("extra{n}");
        let manifest = std::fs::read_to_string(root.path().join("manifests/util.yaml"))
            .unwrap()
            .replace("plugin: util", &format!("plugin: {plugin}"));
        root.write(&format!("manifests/{plugin}.yaml"), manifest);
        let out = done.await;
        let listed = |key: &str| out[key].as_array().unwrap().iter().any(|t| *t == format!("{plugin}.echo"));
        assert!(!listed("before") && listed("after"), "{sdk:?}: {out}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inspector_cli_lists_and_calls() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let dir = clients::clients_dir();
    clients::node_modules();
    let inspector = |extra: &[&str]| {
        let mut command = tokio::process::Command::new("npx");
        command
            .current_dir(&dir)
            .args(["--no-install", "mcp-inspector", "--cli"])
            .arg(mcp_url(&server))
            .args(extra)
            .arg("--header")
            .arg(format!("Authorization: Bearer {}", server.token))
            .env("MCP_CATALOG_PATH", root.path().join("inspector-catalog.json"))
            .kill_on_drop(true);
        command
    };
    let run = |mut command: tokio::process::Command| async move {
        let output = tokio::time::timeout(Duration::from_secs(120), command.output()).await.unwrap().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
    };
    let listing = run(inspector(&["--method", "tools/list"])).await;
    assert!(listing["tools"].as_array().unwrap().iter().any(|t| t["name"] == "util.echo"), "{listing}");
    let called =
        run(inspector(&["--method", "tools/call", "--tool-name", "util.echo", "--tool-arg", "msg=hi"])).await;
    assert_eq!(called["structuredContent"], json!({"msg": "hi"}), "{called}");
    eventually("the Inspector's call is audited", Duration::from_secs(5), || async {
        audit_records(root.path())
            .iter()
            .any(|r| r["transport"] == "mcp" && r["decision"] == "completed")
            .then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_stream_stops_the_tool_and_records_cancelled() {
    let root = TestRoot::new();
    // The looping tool runs until its deadline: 10 s here.
    let manifest = std::fs::read_to_string(root.path().join("manifests/misbehave.yaml")).unwrap();
    root.write("manifests/misbehave.yaml", manifest.replace("timeout_ms: 500", "timeout_ms: 10000"));
    let server = TestServer::start(&root).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "misbehave.loop", "arguments": {}, "_meta": modern_meta()}});
    let started = std::time::Instant::now();
    let request = modern_request(&server, &server.token, "tools/call", Some("misbehave.loop"), &call)
        .header("x-correlation-id", "mcp-cancel")
        .send();
    // The client gives up after 300 ms: the connection closes.
    assert!(tokio::time::timeout(Duration::from_millis(300), request).await.is_err());
    let record = eventually("the cancelled call's record", Duration::from_secs(5), || async {
        audit_records(root.path()).into_iter().find(|r| r["correlation_id"] == "mcp-cancel")
    })
    .await;
    assert_eq!((&record["decision"], &record["status"]), (&json!("cancelled"), &json!(499)), "{record}");
    assert!(started.elapsed() < Duration::from_secs(9), "stopped, not run to its deadline");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_pages_in_order() {
    let root = TestRoot::new();
    // `misbehave` implements fastmcp:plugin@0.1.0, whose tools are not
    // checked against the manifest: 150 made-up names load.
    let mut manifest =
        String::from("plugin: many\nversion: 1.0.0\ncomponent: plugins/misbehave/misbehave.wasm\ntools:\n");
    for n in 0..150 {
        manifest.push_str(&format!(
            "  - {{ name: t{n:03}, description: tool {n}, input_schema: {{ type: object }} }}\n"
        ));
    }
    root.write("manifests/many.yaml", manifest);
    let server = TestServer::start(&root).await;
    let mut names: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"_meta": modern_meta()});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let list = json!({"jsonrpc": "2.0", "id": pages, "method": "tools/list", "params": params});
        let (status, reply) =
            json(modern_post(&server, &server.token, "tools/list", None, &list).await).await;
        assert_eq!(status, 200, "{reply}");
        let page = reply["result"]["tools"].as_array().unwrap();
        assert!(page.len() <= 100);
        names.extend(page.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match reply["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let (_, catalog) = json(server.get("/tool-catalog").await).await;
    assert_eq!(names.len(), catalog["tools"].as_array().unwrap().len(), "every tool once");
    assert!(names.len() > 150);
    assert!(pages >= 2);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by name across pages");
    server.stop().await;
}
