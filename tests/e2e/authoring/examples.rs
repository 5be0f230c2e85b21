//! The example plugins in Python (`report`) and JavaScript (`digest`):
//! each has a tool that uses `config` and `log`, and one that reads the Ads
//! API over `wasi:http` with a credential the host brokers and injects; their
//! tool errors map to the host's codes.

use crate::harness::{
    ALL_SCOPES, ServerProcess, TestRoot, TestServer, TestUpstream, audit_records, json, mint, problem,
};
use serde_json::{Value, json};

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
    // The real binary, so its log lines can be read; config values that are
    // not the plugins' fallbacks, so the answers show they were read.
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    root.add_language_examples(upstream.addr);
    let edit = |file: &str, from: &str, to: &str| {
        let path = root.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} sets `{from}`");
        std::fs::write(path, text.replace(from, to)).unwrap();
    };
    edit("manifests/report.yaml", "greeting: Hello", "greeting: Salut");
    edit("manifests/digest.yaml", "prefix: News", "prefix: Breaking");
    let mut server = ServerProcess::start(&root, "info", &["--no-watch"]).await;
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    let call = |tool: &str, args: Value| {
        let request = client
            .post(format!("http://{}/tools/{tool}/invoke", server.addr))
            .bearer_auth(&token)
            .json(&args);
        async move { json(request.send().await.unwrap()).await }
    };

    let (status, greeted) = call("report:greet", json!({"name": "Ada"})).await;
    assert_eq!(status, 200, "{greeted}");
    assert_eq!(greeted["result"], json!({"message": "Salut, Ada!"}));
    let (status, headline) = call("digest:headline", json!({"title": "  Rates fall "})).await;
    assert_eq!(status, 200, "{headline}");
    assert_eq!(headline["result"], json!({"headline": "Breaking: Rates fall"}));

    // The manifests' schemas guard both, before any plugin code runs.
    let (status, body) = call("report:greet", json!({"name": ""})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_arguments")), "{body}");
    let (status, body) = call("digest:headline", json!({"title": 3})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_arguments")), "{body}");

    // Each plugin's `log` line is in the host's log, tagged with the tool
    // and the call's correlation id.
    server.signal("-TERM");
    server.child.wait().await.unwrap();
    let logs: Vec<Value> =
        server.logs.await.unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for (body, tool, message) in [
        (&greeted, "report:greet", "greeting 3 characters of name"),
        (&headline, "digest:headline", "headline of 13 characters"),
    ] {
        let line = logs.iter().find(|l| {
            l["target"] == "fastmcp::plugin" && l["fields"]["correlation_id"] == body["correlation_id"]
        });
        let line = line.unwrap_or_else(|| panic!("no plugin log line for {tool}"));
        assert_eq!(line["fields"]["tool"], tool, "{line}");
        assert_eq!(line["fields"]["message"], message, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_tool_errors_map_to_the_hosts_codes() {
    // The Ads API answers 503 once per call: each plugin raises (Python) or
    // throws (JavaScript) an `upstream` tool error, which is a 502.
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    root.add_language_examples(upstream.addr);
    let server = TestServer::start(&root).await;
    for tool in ["report:campaignSummary", "digest:latestCampaigns"] {
        upstream.fail_next(503, 1).await;
        let body = problem(server.invoke(tool, json!({})).await, 502, "upstream_error").await;
        assert!(body["detail"].as_str().unwrap().contains("Ads API answered 503"), "{tool}: {body}");
    }
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
