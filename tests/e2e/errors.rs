//! Every error code of the contract, as problem+json.

use crate::harness::{TestRoot, TestServer, json, problem};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn rejects_bad_bodies() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let post = |body: &'static str, content_type: &'static str| {
        server.post_invoke("util:echo").header("content-type", content_type).body(body).send()
    };

    let body = problem(post("{not json", "application/json").await.unwrap(), 400, "bad_request").await;
    assert!(body["detail"].as_str().unwrap().contains("not valid JSON"));
    let body = problem(post("[1, 2]", "application/json").await.unwrap(), 400, "bad_request").await;
    assert!(body["detail"].as_str().unwrap().contains("JSON object"));
    problem(post("{}", "text/plain").await.unwrap(), 415, "unsupported_media_type").await;
    let no_type = server.post_invoke("util:echo").body("{}").send().await.unwrap();
    problem(no_type, 415, "unsupported_media_type").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_oversized_bodies() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat((1 << 20) + 1));
    let response = server
        .post_invoke("util:echo")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    problem(response, 413, "payload_too_large").await;

    // Without a Content-Length the limit still holds while streaming.
    let stream = futures_stream(big.into_bytes());
    let response = server
        .post_invoke("util:echo")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(response, 413, "payload_too_large").await;
    server.stop().await;
}

fn futures_stream(bytes: Vec<u8>) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tools_and_routes() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let body = problem(server.invoke("ads:nope", json!({})).await, 404, "tool_not_found").await;
    assert!(body["detail"].as_str().unwrap().contains("ads:nope"));
    problem(server.get("/nowhere").await, 404, "not_found").await;
    problem(server.get("/tools/util:echo/invoke").await, 405, "method_not_allowed").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_violations_name_each_path() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let args = json!({"name": "", "budget": -5, "startDate": "tomorrow", "extra": true});
    let body = problem(server.invoke("ads:createCampaign", args).await, 422, "invalid_arguments").await;
    let paths: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    for path in ["/name", "/budget", "/startDate", ""] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    let body = problem(server.invoke("ads:createCampaign", json!({})).await, 422, "invalid_arguments").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("required"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_reported_errors() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    // The schema accepts the date shape; the plugin rejects the month.
    let args = json!({"name": "X", "budget": 1, "startDate": "2025-13-01"});
    let (status, pending) = json(server.invoke("ads:createCampaign", args.clone()).await).await;
    assert_eq!(status, 202);
    let body = problem(server.confirm(&pending["action_token"], args).await, 422, "invalid_arguments").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("2025-13-01"));
    let body =
        problem(server.invoke("misbehave:upstreamError", json!({})).await, 502, "upstream_error").await;
    assert!(body["detail"].as_str().unwrap().contains("upstream said 503"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_is_decided_before_anything_the_request_carries() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let bad_key = "has space";
    let anonymous = server
        .client()
        .post(server.url("/tools/util:echo/invoke"))
        .header("idempotency-key", bad_key)
        .header("content-type", "text/plain")
        .body("not json")
        .send();
    problem(anonymous.await.unwrap(), 401, "unauthenticated").await;
    let authenticated = server.post_invoke("util:echo").header("idempotency-key", bad_key).json(&json!({}));
    problem(authenticated.send().await.unwrap(), 400, "bad_request").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_outside_the_declared_output_schema_is_a_tool_failure() {
    let root = TestRoot::new();
    let manifest = std::fs::read_to_string(root.path().join("manifests/util.yaml")).unwrap();
    let declared = manifest.replacen(
        "    input_schema: { type: object }\n",
        "    input_schema: { type: object }\n    output_schema: { type: object, required: [ok] }\n",
        1,
    );
    assert_ne!(declared, manifest);
    root.write("manifests/util.yaml", declared);
    let server = TestServer::start(&root).await;
    let (status, body) = json(server.invoke("util:echo", json!({"ok": true})).await).await;
    assert_eq!((status, &body["result"]), (200, &json!({"ok": true})));
    let body = problem(server.invoke("util:echo", json!({"other": 1})).await, 502, "tool_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("output schema"), "{body}");
    server.stop().await;
}
