//! Finding 1: what reaches the durable trail from unauthenticated or
//! oversized requests is bounded.

use crate::harness::{TestRoot, TestServer, audit_records, problem, trail_bytes};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_requests_grow_the_trail_by_a_bounded_budget() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let long_id = "A".repeat(60_000);
    let before = trail_bytes(root.path());
    let requests = 200;
    for _ in 0..requests {
        let url = server.url(&format!("/tools/{long_id}/invoke"));
        let response = server.client().post(url).json(&json!({})).send().await.unwrap();
        let body = problem(response, 401, "unauthenticated").await;
        assert!(body.to_string().len() < 1024, "the answer does not echo the id: {body}");
    }
    let grown = trail_bytes(root.path()) - before;
    let records = audit_records(root.path());
    let denied: Vec<&Value> = records.iter().filter(|r| r["decision"] == "unauthenticated").collect();
    // The default budget: 30 failures a minute from one address, one by one.
    assert_eq!(denied.len(), 30, "only the budget is audited one by one");
    let largest = records.iter().map(|r| r.to_string().len()).max().unwrap();
    assert!(largest < 1024, "largest record {largest} bytes");
    assert!(grown < 30 * 1024, "{grown} bytes of trail for {requests} requests");
    println!(
        "trail growth: {grown} bytes for {requests} unauthenticated requests with a 60 KB id ({} bytes/request)",
        grown / requests
    );

    // The rest are counted, and recorded once.
    server.state.report_auth_failures().await;
    let records = audit_records(root.path());
    let report =
        records.iter().find(|r| r["event"] == "auth.failures_suppressed").expect("an aggregate record");
    assert_eq!(report["detail"]["total"], requests - 30, "{report}");
    assert_eq!(report["detail"]["peers"][0]["peer"], "127.0.0.1", "{report}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_long_tool_id_is_not_found_and_recorded_cut() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let long_id = format!("util:{}", "A".repeat(60_000));
    let body = problem(server.invoke(&long_id, json!({})).await, 404, "tool_not_found").await;
    assert!(body.to_string().len() < 1024, "{body}");
    let records = audit_records(root.path());
    let record = records.iter().rev().find(|r| r["decision"] == "tool_not_found").unwrap();
    let tool = record["tool"].as_str().unwrap();
    assert!(tool.len() <= 129 + "…".len() && tool.ends_with('…'), "{tool}");
    assert!(record.to_string().len() < 1024);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trail_that_cannot_be_written_fails_calls_closed_and_recovers_by_itself() {
    let root = TestRoot::new();
    let config = root.config();
    let clock = config.clock.clone();
    let server = TestServer::start_with(config).await;
    assert_eq!(server.invoke("util:echo", json!({})).await.status(), 200);

    // Tomorrow's trail file cannot be created (a directory is in its way),
    // as a full or failing disk would refuse it.
    clock.advance(std::time::Duration::from_secs(86_400));
    let tomorrow = chrono::DateTime::from_timestamp_millis(clock.now_unix_ms()).unwrap().format("%Y%m%d");
    let blocker = root.path().join(format!(".audit/audit-{tomorrow}.jsonl"));
    std::fs::create_dir_all(&blocker).unwrap();
    problem(server.invoke("util:echo", json!({})).await, 503, "audit_unavailable").await;
    let (_, health) = crate::harness::json(server.get("/health").await).await;
    assert_eq!(health["status"], "degraded");
    assert!(health["audit"]["failed"].is_string(), "{health}");

    // The disk is back: calls are acknowledged again without a restart.
    std::fs::remove_dir(&blocker).unwrap();
    crate::harness::eventually("the trail to recover", std::time::Duration::from_secs(10), || async {
        (server.invoke("util:echo", json!({})).await.status() == 200).then_some(())
    })
    .await;
    let (_, health) = crate::harness::json(server.get("/health").await).await;
    assert!(health["audit"]["failed"].is_null(), "{health}");
    server.stop().await;
    let key =
        fastmcp_host::audit::checkpoint::read_public_key(&root.path().join(".runtime/audit-checkpoint.pub"))
            .unwrap();
    fastmcp_host::audit::verify::verify(&root.path().join(".audit"), Some(&key)).expect("one intact chain");
}
