//! The example plugins in Python (`report`) and JavaScript (`digest`):
//! each has a tool that uses `config` and `log`, and one that reads the Ads
//! API over `wasi:http` with a credential the host brokers and injects.

use crate::harness::{TestRoot, TestServer, TestUpstream, audit_records, json};
use serde_json::json;

/// A root with the examples, on a fresh upstream holding two campaigns.
async fn root_with_campaigns(upstream: &TestUpstream) -> (TestRoot, TestServer) {
    let root = TestRoot::with_upstream(upstream);
    root.add_language_examples(upstream.addr);
    let server = TestServer::start(&root).await;
    for (name, budget) in [("Spring", 1200), ("Summer", 800)] {
        let args = json!({"name": name, "budget": budget, "startDate": "2026-03-01"});
        let (status, pending) = json(server.invoke("ads:createCampaign", args.clone()).await).await;
        assert_eq!(status, 202, "{pending}");
        let (status, done) = json(server.confirm(&pending["action_token"], args).await).await;
        assert_eq!(status, 200, "{done}");
    }
    (root, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_and_javascript_examples_use_config_and_log() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    root.add_language_examples(upstream.addr);
    let server = TestServer::start(&root).await;

    let (status, body) = json(server.invoke("report:greet", json!({"name": "Ada"})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!({"message": "Hello, Ada!"}));
    let (status, body) =
        json(server.invoke("digest:headline", json!({"title": "  Rates fall "})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!({"headline": "News: Rates fall"}));

    // The manifests' schemas guard both, before any plugin code runs.
    let (status, body) = json(server.invoke("report:greet", json!({"name": ""})).await).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_arguments")), "{body}");
    let (status, body) = json(server.invoke("digest:headline", json!({"title": 3})).await).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_arguments")), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_and_javascript_examples_reach_the_ads_api_with_a_brokered_credential() {
    let upstream = TestUpstream::start().await;
    let (root, server) = root_with_campaigns(&upstream).await;
    let before = upstream.stats().await["authorized_requests"].as_u64().unwrap();

    let (status, summary) = json(server.invoke("report:campaignSummary", json!({})).await).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["result"]["count"], 2);
    assert_eq!(summary["result"]["totalBudget"].as_f64(), Some(2000.0));
    let (status, latest) = json(server.invoke("digest:latestCampaigns", json!({"limit": 1})).await).await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["result"]["campaigns"], json!([{"name": "Summer", "budget": 800}]));

    // Both requests carried the token the host injected (the upstream
    // refuses any other), and the trail names the injection, never the token.
    assert_eq!(upstream.stats().await["authorized_requests"].as_u64().unwrap(), before + 2);
    for body in [&summary, &latest] {
        let id = body["correlation_id"].as_str().unwrap();
        let record = audit_records(root.path()).into_iter().rfind(|r| r["correlation_id"] == id).unwrap();
        let events = record["detail"]["egress"]["events"].as_array().cloned().unwrap_or_default();
        assert!(
            events.iter().any(|e| e["kind"] == "inject" && e["provider"] == "ads-api"),
            "the egress record names the injected provider: {record}"
        );
        assert!(!record.to_string().to_lowercase().contains("bearer "), "{record}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_get_no_credential_beyond_their_grant() {
    // Without the operator binding `ads-api` to them, the manifests are
    // refused at load, naming the provider and the plugin.
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let providers = std::fs::read_to_string(root.path().join(".runtime/providers.yml")).unwrap();
    root.write(".runtime/providers.yml", providers.replace(", report, digest]", "]"));
    root.add_language_examples(upstream.addr);
    let error = fastmcp_host::AppState::start(root.config()).await.err().expect("refused").to_string();
    assert!(error.contains("credentials[0]: provider `ads-api` is not bound to plugin"), "{error}");
}
