//! In-memory rate limits: exact accounting under concurrency, per-tenant
//! isolation, the draft `RateLimit*` headers, `Retry-After` honoured, and
//! every 429 audited.

use crate::harness::{ALL_SCOPES, TestRoot, TestServer, json, one_caller_may_use_all, problem};
use fastmcp_host::audit::recover::trail_files;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

/// A root whose `util:echo` allows 50 calls per minute, all at once.
pub fn limited_root() -> TestRoot {
    let root = TestRoot::new();
    let manifest = std::fs::read_to_string(root.path().join("manifests/util.yaml")).unwrap();
    let limited = manifest.replacen(
        "    annotations: { read_only: true, idempotent: true }\n",
        "    annotations: { read_only: true, idempotent: true }\n    rate_limit: { per_minute: 50, burst: 50 }\n",
        1,
    );
    assert_ne!(limited, manifest);
    root.write("manifests/util.yaml", limited);
    root
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_the_quota_passes_under_concurrency() {
    let root = limited_root();
    let mut config = root.config();
    one_caller_may_use_all(&mut config);
    let clock = config.clock.clone();
    let server = TestServer::start_with(config).await;
    let responses = join_all((0..200).map(|i| server.invoke("util:echo", json!({"i": i})))).await;
    let (mut ok, mut limited, mut retry_after) = (0, 0, 0);
    for response in responses {
        match response.status().as_u16() {
            200 => {
                ok += 1;
                assert_eq!(response.headers()["ratelimit-policy"], "\"caller\";q=50;w=60");
                assert!(response.headers()["ratelimit"].to_str().unwrap().starts_with("\"caller\";r="));
            }
            429 => {
                limited += 1;
                let headers = response.headers().clone();
                retry_after = headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
                assert!(retry_after >= 1);
                assert_eq!(headers["ratelimit"], format!("\"caller\";r=0;t={retry_after}").as_str());
                problem(response, 429, "rate_limited").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (50, 150));

    // Another tenant has its own bucket.
    let acme = server.token_for("tester", "acme", &["tester"], ALL_SCOPES);
    assert_eq!(json(server.invoke_as(&acme, "util:echo", json!({})).await).await.0, 200);
    // Unlimited tools are not affected.
    assert_eq!(json(server.invoke("util:sha256", json!({"text": "x"})).await).await.0, 200);

    // After Retry-After the caller may call again.
    problem(server.invoke("util:echo", json!({})).await, 429, "rate_limited").await;
    clock.advance(Duration::from_secs(retry_after));
    assert_eq!(json(server.invoke("util:echo", json!({})).await).await.0, 200);
    server.stop().await;

    let limited_records = trail_files(&root.path().join(".audit"))
        .unwrap()
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| serde_json::from_str::<Value>(line).unwrap()["event"] == "tools.rate_limited")
        .count();
    assert_eq!(limited_records, 151, "every 429 is audited");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_wide_quota_and_policy_overrides() {
    let root = TestRoot::new();
    let manifest = std::fs::read_to_string(root.path().join("manifests/util.yaml")).unwrap();
    root.write(
        "manifests/util.yaml",
        manifest.replacen(
            "    annotations: { read_only: true, idempotent: true }\n",
            "    annotations: { read_only: true, idempotent: true }\n    rate_limit: { per_minute: 2, burst: 2, total: { per_minute: 5, burst: 5 } }\n",
            1,
        ),
    );
    let policy = std::fs::read_to_string(root.path().join("policies/policies.yml")).unwrap();
    root.write(
        "policies/policies.yml",
        format!("{policy}\nrate_limits:\n  - tools: [\"util:echo\"]\n    roles: [bulk]\n    per_minute: 4\n    burst: 4\n"),
    );
    let server = TestServer::start(&root).await;
    let server = &server;
    let call = |token: String| async move {
        server.invoke_as(&token, "util:echo", json!({})).await.status().as_u16()
    };

    // A `bulk` caller gets the policy's 4 instead of the manifest's 2.
    let bulk = server.token_for("bulk-1", "t1", &["tester", "bulk"], ALL_SCOPES);
    for _ in 0..4 {
        assert_eq!(call(bulk.clone()).await, 200);
    }
    // One more from another caller fills the tool-wide 5 …
    assert_eq!(call(server.token_for("a", "t2", &["tester"], ALL_SCOPES)).await, 200);
    // … so a fresh caller with a full bucket of its own is refused by the tool's.
    let fresh = server.token_for("b", "t3", &["tester"], ALL_SCOPES);
    let body = problem(server.invoke_as(&fresh, "util:echo", json!({})).await, 429, "rate_limited").await;
    assert!(body["retry_after_s"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn replays_carry_the_callers_rate_limit_headers_too() {
    let root = limited_root();
    let server = TestServer::start(&root).await;
    let send =
        || server.post_invoke("util:echo").header("idempotency-key", "r-1").json(&json!({"n": 1})).send();
    let first = send().await.unwrap();
    assert_eq!(first.headers()["ratelimit-policy"], "\"caller\";q=50;w=60");
    let replay = send().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert!(replay.headers().contains_key("ratelimit"), "{:?}", replay.headers());
    server.stop().await;
}
