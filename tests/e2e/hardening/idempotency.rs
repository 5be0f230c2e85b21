//! Finding 5: the idempotency store has a per-caller quota and a reply cap.

use crate::harness::{TestRoot, TestServer, audit_records, json, problem};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn each_caller_holds_a_bounded_number_of_keys() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.idempotency.max_keys_per_caller = 3;
    let server = TestServer::start_with(config).await;
    let call = |token: &str, key: &str| {
        server
            .client()
            .post(server.url("/tools/util:echo/invoke"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({"n": 1}))
            .send()
    };
    for key in ["k1", "k2", "k3"] {
        assert_eq!(call(&server.token, key).await.unwrap().status(), 200);
    }
    let body = problem(call(&server.token, "k4").await.unwrap(), 429, "idempotency_quota_exceeded").await;
    assert!(body["detail"].as_str().unwrap().contains('3'), "{body}");
    // A key already held still replays; another caller has its own quota.
    let replay = call(&server.token, "k2").await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let other = server.token_for("other", "public", &["tester"], crate::harness::ALL_SCOPES);
    assert_eq!(call(&other, "k4").await.unwrap().status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_over_the_cap_is_answered_once_and_never_rerun() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.idempotency.max_reply_bytes = 4096;
    let server = TestServer::start_with(config).await;
    let big = json!({"text": "x".repeat(512 * 1024)});
    let state_file = root.path().join(".runtime/state.redb");
    let before = std::fs::metadata(&state_file).unwrap().len();
    for i in 0..8 {
        let key = format!("big-{i}");
        let send = || server.post_invoke("util:echo").header("idempotency-key", &key).json(&big).send();
        let (status, body) = json(send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(body["result"]["text"].as_str().unwrap().len(), 512 * 1024, "the first answer is whole");
        let retry = send().await.unwrap();
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        let body = problem(retry, 409, "idempotency_reply_too_large").await;
        assert!(body["detail"].as_str().unwrap().contains("already ran"), "{body}");
    }
    let grown = std::fs::metadata(&state_file).unwrap().len().saturating_sub(before);
    assert!(grown < 1 << 20, "the store grew by {grown} bytes for 8 replies of 512 KiB");
    let ran = audit_records(root.path())
        .iter()
        .filter(|r| r["tool"] == "util:echo" && r["decision"] == "completed")
        .count();
    assert_eq!(ran, 8, "each key ran once");
    server.stop().await;
}
