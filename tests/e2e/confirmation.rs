//! The confirmation gate and Idempotency-Key: invoke → 202 → confirm → 200,
//! every way a confirmation can be refused, and exactly-once execution.

use crate::harness::{ALL_SCOPES, TestRoot, TestServer, campaign, json, problem};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

async fn pending(server: &TestServer, args: Value) -> Value {
    let (status, body) = json(server.invoke("ads:createCampaign", args).await).await;
    assert_eq!(status, 202, "{body}");
    body["action_token"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_202_then_confirm_200() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let (status, catalog) = json(server.get("/tool-catalog").await).await;
    assert_eq!(status, 200);
    let create =
        catalog["tools"].as_array().unwrap().iter().find(|t| t["id"] == "ads:createCampaign").unwrap();
    assert_eq!(create["requires_confirmation"], true);

    let response =
        server.post_invoke("ads:createCampaign").header("x-correlation-id", "flow-1").json(&campaign());
    let (status, body) = json(response.send().await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending_confirmation");
    assert_eq!(body["tool"], "ads:createCampaign");
    assert_eq!(body["confirm_url"], "/tools/ads:createCampaign/confirm");
    assert_eq!(body["hint"], "Creates a live campaign that spends budget");
    assert_eq!(body["correlation_id"], "flow-1");
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires_at.timestamp() - chrono::Utc::now().timestamp();
    assert!((295..=301).contains(&ttl), "manifest ttl_s is 300, got {ttl}");

    let (status, done) = json(server.confirm(&body["action_token"], campaign()).await).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["tool"], "ads:createCampaign");
    assert_eq!(done["result"]["name"], "LaunchX");
    assert!(done["result"]["id"].as_str().unwrap().starts_with("cmp_"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_confirmations() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let token = pending(&server, campaign()).await;
    let text = token.as_str().unwrap();

    let garbage = json!("at1.garbage.garbage");
    let body = problem(server.confirm(&garbage, campaign()).await, 403, "invalid_action_token").await;
    assert!(body["detail"].as_str().unwrap().contains("action token"), "{body}");
    problem(server.confirm(&json!("not-a-token"), campaign()).await, 403, "invalid_action_token").await;
    problem(server.confirm(&json!(""), campaign()).await, 403, "invalid_action_token").await;

    // Flip one character of the claims.
    let mut chars: Vec<char> = text.chars().collect();
    let i = text.find('.').unwrap() + 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered = json!(chars.into_iter().collect::<String>());
    problem(server.confirm(&tampered, campaign()).await, 403, "invalid_action_token").await;

    let other_args = json!({"name": "LaunchX", "budget": 1300, "startDate": "2025-10-10"});
    let body = problem(server.confirm(&token, other_args).await, 403, "invalid_action_token").await;
    assert!(body["detail"].as_str().unwrap().contains("arguments differ"));

    let someone_else = server.token_for("agent-2", "public", &["tester"], ALL_SCOPES);
    let body = problem(
        server.confirm_as(&someone_else, "ads:createCampaign", &token, campaign()).await,
        403,
        "invalid_action_token",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("another principal"));
    let other_tenant = server.token_for("tester", "acme", &["tester"], ALL_SCOPES);
    problem(
        server.confirm_as(&other_tenant, "ads:createCampaign", &token, campaign()).await,
        403,
        "invalid_action_token",
    )
    .await;

    let body = problem(
        server.confirm_as(&server.token, "util:echo", &token, campaign()).await,
        403,
        "invalid_action_token",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("another tool"));

    let url = server.url("/tools/ads:createCampaign/confirm");
    let missing =
        server.client().post(url).bearer_auth(&server.token).json(&campaign()).send().await.unwrap();
    problem(missing, 400, "bad_request").await;

    // Same arguments, other key order and spacing: still the same action.
    let reordered = format!(
        r#"{{ "startDate" : "2025-10-10", "action_token": "{text}",   "budget": 1200, "name": "LaunchX" }}"#
    );
    let response = server
        .client()
        .post(server.url("/tools/ads:createCampaign/confirm"))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(json(response).await.0, 200);

    // Single use.
    problem(server.confirm(&token, campaign()).await, 409, "action_token_used").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_tokens_are_gone() {
    let root = TestRoot::new();
    let config = root.config();
    let clock = config.clock.clone();
    let server = TestServer::start_with(config).await;
    let token = pending(&server, campaign()).await;
    clock.advance(Duration::from_secs(299));
    let fresh = pending(&server, json!({"name": "B", "budget": 1, "startDate": "2025-10-10"})).await;
    clock.advance(Duration::from_secs(2));
    problem(server.confirm(&token, campaign()).await, 410, "action_token_expired").await;
    let args = json!({"name": "B", "budget": 1, "startDate": "2025-10-10"});
    assert_eq!(json(server.confirm(&fresh, args).await).await.0, 200, "a token issued later is still valid");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_change_between_invoke_and_confirm_applies() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let token = pending(&server, campaign()).await;
    let policy = std::fs::read_to_string(root.path().join("policies/policies.yml")).unwrap();
    root.write("policies/policies.yml", policy.replace("args.budget > 50000", "args.budget > 1000"));
    server.state.reload_policies().await.unwrap();
    let body = problem(server.confirm(&token, campaign()).await, 403, "policy_denied").await;
    assert_eq!(body["rule"], "budget-cap");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_token_stays_spent_across_a_restart() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let token = pending(&server, campaign()).await;
    assert_eq!(json(server.confirm(&token, campaign()).await).await.0, 200);
    server.stop().await;

    let server = TestServer::start(&root).await;
    problem(server.confirm(&token, campaign()).await, 409, "action_token_used").await;
    server.stop().await;
}

async fn instantiations(server: &TestServer) -> u64 {
    let text = server.metrics().await;
    let line = text.lines().find(|l| l.starts_with("fastmcp_instantiate_duration_seconds_count")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_replay_and_refuse_conflicts() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let invoke = |key: &str, args: Value| {
        server.post_invoke("ads:createCampaign").header("idempotency-key", key).json(&args).send()
    };

    let first = invoke("order-1", campaign()).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (status, first) = json(first).await;
    assert_eq!(status, 202);
    let again = invoke("order-1", campaign()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (status, again) = json(again).await;
    assert_eq!((status, &again), (202, &first), "the same action token comes back");

    let other = json!({"name": "Other", "budget": 5, "startDate": "2025-10-10"});
    problem(invoke("order-1", other).await.unwrap(), 422, "idempotency_key_reused").await;
    problem(invoke(&"k".repeat(256), campaign()).await.unwrap(), 400, "bad_request").await;

    // Keys are per principal: the same key from someone else is a new request.
    let someone_else = server.token_for("agent-2", "public", &["tester"], ALL_SCOPES);
    let response = server
        .client()
        .post(server.url("/tools/ads:createCampaign/invoke"))
        .bearer_auth(&someone_else)
        .header("idempotency-key", "order-1")
        .json(&campaign())
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(response.status(), 202);

    // A confirm with a key replays its result instead of "token used".
    let confirm = |key: &'static str| {
        let mut args = campaign();
        args["action_token"] = first["action_token"].clone();
        server
            .client()
            .post(server.url("/tools/ads:createCampaign/confirm"))
            .bearer_auth(&server.token)
            .header("idempotency-key", key)
            .json(&args)
            .send()
    };
    let (status, done) = json(confirm("confirm-1").await.unwrap()).await;
    assert_eq!(status, 200);
    let replay = confirm("confirm-1").await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json(replay).await, (200, done));
    problem(confirm("confirm-2").await.unwrap(), 409, "action_token_used").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_duplicates_execute_once() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let before = instantiations(&server).await;
    let sends = (0..32).map(|_| {
        server
            .post_invoke("util:sha256")
            .header("idempotency-key", "same")
            .json(&json!({"text": "once"}))
            .send()
    });
    let mut statuses = HashSet::new();
    for response in join_all(sends).await {
        statuses.insert(response.unwrap().status().as_u16());
    }
    assert!(statuses.is_subset(&HashSet::from([200, 409])), "{statuses:?}");
    assert_eq!(instantiations(&server).await - before, 1, "exactly one execution");

    let sends = (0..32).map(|_| {
        server.post_invoke("ads:createCampaign").header("idempotency-key", "launch").json(&campaign()).send()
    });
    let mut tokens = HashSet::new();
    for response in join_all(sends).await {
        let (status, body) = json(response.unwrap()).await;
        match status {
            202 => {
                tokens.insert(body["action_token"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(body["code"], "idempotency_in_progress"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(tokens.len(), 1, "one action token for one key");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_outcomes_survive_a_restart() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let send = |server: &TestServer| {
        server
            .post_invoke("util:sha256")
            .header("idempotency-key", "durable")
            .json(&json!({"text": "x"}))
            .send()
    };
    let (status, first) = json(send(&server).await.unwrap()).await;
    assert_eq!(status, 200);
    server.stop().await;
    let server = TestServer::start(&root).await;
    let replay = send(&server).await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json(replay).await, (200, first));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_action_never_runs() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let token = pending(&server, campaign()).await;
    let mut body = campaign();
    body["action_token"] = token.clone();
    let decline =
        server.client().post(server.url("/tools/ads:createCampaign/decline")).bearer_auth(&server.token);
    let response = decline.json(&body).send().await.unwrap();
    problem(response, 409, "confirmation_declined").await;
    // The token is spent: it can no longer confirm.
    problem(server.confirm(&token, campaign()).await, 409, "action_token_used").await;
    let decisions: Vec<Value> =
        crate::harness::audit_records(root.path()).into_iter().map(|r| r["decision"].clone()).collect();
    assert!(decisions.contains(&json!("confirmation_declined")), "{decisions:?}");
    assert!(!decisions.contains(&json!("confirmed")), "{decisions:?}");
    server.stop().await;
}
