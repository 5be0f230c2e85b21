//! The happy paths: catalog, invoke, health, metrics, OpenAPI, correlation ids.

use crate::harness::{TestRoot, TestServer, json};
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread")]
async fn catalog_lists_example_tools_with_schemas() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let (status, body) = json(server.get("/tool-catalog").await).await;
    assert_eq!(status, 200);
    let tools = body["tools"].as_array().unwrap();
    let ids: Vec<&str> = tools.iter().map(|t| t["id"].as_str().unwrap()).collect();
    for id in ["ads:createCampaign", "ads:listCampaigns", "util:echo", "util:sha256"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let create = tools.iter().find(|t| t["id"] == "ads:createCampaign").unwrap();
    assert_eq!(create["name"], "createCampaign");
    assert_eq!(create["version"], "1.1.0");
    assert_eq!(create["input_schema"]["required"], json!(["name", "budget", "startDate"]));
    assert_eq!(create["annotations"]["destructive"], true);
    assert_eq!(create["annotations"]["read_only"], false);
    assert_eq!(create["requires_confirmation"], true);
    let list = tools.iter().find(|t| t["id"] == "ads:listCampaigns").unwrap();
    assert_eq!(list["requires_confirmation"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invokes_example_tools() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;

    let (status, body) = json(server.invoke("ads:listCampaigns", json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["tool"], "ads:listCampaigns");
    assert!(body["result"]["campaigns"].is_array());

    let args = json!({"name": "LaunchX", "budget": 10, "startDate": "2025-10-10"});
    let (status, body) = json(server.invoke("ads:createCampaign", args.clone()).await).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = json(server.confirm(&body["action_token"], args).await).await;
    assert_eq!(status, 200, "{body}");
    let campaign = &body["result"];
    assert!(campaign["id"].as_str().unwrap().starts_with("cmp_"));
    assert_eq!(campaign["name"], "LaunchX");
    assert_eq!(campaign["budget"], 10.0);
    assert_eq!(campaign["tenant"], "public");

    let args = json!({"nested": {"list": [1, 2.5, "three", null, true]}, "unicode": "héllo ✓"});
    let (status, body) = json(server.invoke("util:echo", args.clone()).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], args);

    let (status, body) = json(server.invoke("util:sha256", json!({"text": "fastmcp"})).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["sha256"], hex::encode(Sha256::digest(b"fastmcp")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn correlation_ids_are_echoed_or_generated() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let response = server
        .post_invoke("util:echo")
        .header("x-correlation-id", "trace-123")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-correlation-id"], "trace-123");
    let (_, body) = json(response).await;
    assert_eq!(body["correlation_id"], "trace-123");

    let response = server.get("/health").await;
    let generated = response.headers()["x-correlation-id"].to_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&generated).unwrap().get_version_num(), 7);

    let response = server.invoke("no:such", json!({})).await;
    let header = response.headers()["x-correlation-id"].to_str().unwrap().to_owned();
    let (_, body) = json(response).await;
    assert_eq!(body["correlation_id"], header.as_str());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_registry_and_runtime() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let (status, body) = json(server.get("/health").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["registry"]["plugins"], 3);
    assert_eq!(body["registry"]["tools"], 20);
    assert_eq!(body["runtime"]["max_concurrent_calls"], 128);
    assert!(body["runtime"]["pooling"].is_boolean());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_calls_by_outcome() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.runtime.compile_cache_dir = None; // its own cache, so that every component is compiled here
    let server = TestServer::start_with(config).await;
    assert_eq!(server.invoke("util:echo", json!({"a": 1})).await.status(), 200);
    assert_eq!(server.invoke("util:sha256", json!({})).await.status(), 422);
    assert_eq!(server.invoke("made:up", json!({})).await.status(), 404);
    let text = server.metrics().await;
    assert!(text.contains(r#"fastmcp_tool_calls_total{tool="util:echo",outcome="completed"} 1"#), "{text}");
    assert!(text.contains(r#"fastmcp_tool_calls_total{tool="util:sha256",outcome="invalid_arguments"} 1"#));
    assert!(!text.contains("made:up"), "unknown ids must not become labels");
    assert!(text.contains("fastmcp_instantiate_duration_seconds_count 1"), "{text}");
    assert!(text.contains("fastmcp_sandbox_slots 128"));
    assert!(text.contains("fastmcp_compile_cache_misses_total 3"), "{text}");
    let counter = |name: &str| -> u64 {
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap()
    };
    let (batches, records) =
        (counter("fastmcp_audit_batches_total"), counter("fastmcp_audit_batched_records_total"));
    assert!(batches >= 1 && records >= 4 && records >= batches, "{batches} batches of {records} records");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_an_openapi_31_document() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let (status, doc) = json(server.get("/openapi.json").await).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/health", "/metrics", "/tool-catalog", "/tools/{id}/invoke"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let invoke = &doc["paths"]["/tools/{id}/invoke"]["post"]["responses"];
    for status in ["200", "400", "404", "413", "415", "422", "502", "503", "504"] {
        assert!(invoke.get(status).is_some(), "{status} missing");
    }
    assert!(doc["components"]["schemas"].get("ProblemBody").is_some());
    server.stop().await;
}
