//! Several hosts sharing one real Redis: exact rate-limit accounting across
//! two host processes, confirm on one replica of a 202 from the other,
//! idempotency across replicas, and fail-closed while Redis is down.

use crate::harness::{
    ALL_SCOPES, ONE_CALLER_MAY_USE_ALL, RedisServer, ServerProcess, TestRoot, TestServer, eventually, json,
    mint, problem,
};
use crate::ratelimit::limited_root;
use futures_util::future::join_all;
use serde_json::json;
use std::time::Duration;

/// A second root that shares the first one's signing keys (JWT dev key,
/// action-token key), as replicas behind one load balancer would.
fn replica_of(first: &TestRoot) -> TestRoot {
    let second = limited_root();
    for key in ["dev-jwks.json", "dev-private.pem", "action-token.key"] {
        let bytes = std::fs::read(first.path().join(".runtime").join(key)).unwrap();
        second.write(&format!(".runtime/{key}"), bytes);
    }
    second
}

#[tokio::test(flavor = "multi_thread")]
async fn two_host_processes_share_buckets_exactly() {
    let Some(redis) = RedisServer::start() else { return };
    let (root_a, url) = (limited_root(), redis.url());
    let args = [&["--redis-url", url.as_str()], ONE_CALLER_MAY_USE_ALL].concat();
    let a = ServerProcess::start(&root_a, "info", &args).await;
    let root_b = replica_of(&root_a);
    let b = ServerProcess::start(&root_b, "info", &args).await;
    assert_ne!(a.addr, b.addr);
    let token = mint(&root_a.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    let sends = (0..200).map(|i| {
        let addr = if i % 2 == 0 { &a.addr } else { &b.addr };
        client
            .post(format!("http://{addr}/tools/util:echo/invoke"))
            .bearer_auth(&token)
            .json(&json!({"i": i}))
            .send()
    });
    let mut counts = (0, 0);
    for response in join_all(sends).await {
        match response.unwrap().status().as_u16() {
            200 => counts.0 += 1,
            429 => counts.1 += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(counts, (50, 150), "one bucket across both hosts");
    // Another tenant is not limited by this one's burst.
    let acme = mint(&root_a.path().join(".runtime"), "tester", "acme", &["tester"], ALL_SCOPES);
    let response =
        client.post(format!("http://{}/tools/util:echo/invoke", b.addr)).bearer_auth(&acme).json(&json!({}));
    assert_eq!(response.send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_action_tokens_and_idempotency_keys() {
    let Some(redis) = RedisServer::start() else { return };
    let root_a = limited_root();
    let mut config = root_a.config();
    config.redis.url = Some(redis.url());
    config.redis.timeout = Duration::from_millis(500);
    let a = TestServer::start_with(config.clone()).await;
    let root_b = replica_of(&root_a);
    let b = TestServer::start_with(fastmcp_host::HostConfig { root: root_b.path().to_path_buf(), ..config })
        .await;

    let args = json!({"name": "LaunchX", "budget": 1200, "startDate": "2025-10-10"});
    let (status, pending) = json(a.invoke("ads:createCampaign", args.clone()).await).await;
    assert_eq!(status, 202);
    assert_eq!(json(b.confirm(&pending["action_token"], args.clone()).await).await.0, 200, "confirmed on B");
    problem(a.confirm(&pending["action_token"], args).await, 409, "action_token_used").await;

    let send = |server: &TestServer| {
        server
            .post_invoke("util:sha256")
            .header("idempotency-key", "shared-key")
            .json(&json!({"text": "once"}))
            .send()
    };
    let responses = join_all((0..16).map(|i| send(if i % 2 == 0 { &a } else { &b }))).await;
    let mut executed = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 if response.headers().get("idempotent-replayed").is_none() => executed += 1,
            200 | 409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(executed, 1, "one execution for one key across replicas");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_fails_closed_and_recovers() {
    let Some(mut redis) = RedisServer::start() else { return };
    let root = limited_root();
    let mut config = root.config();
    config.redis.url = Some(redis.url());
    config.redis.timeout = Duration::from_millis(250);
    let server = TestServer::start_with(config).await;
    assert_eq!(json(server.invoke("util:echo", json!({})).await).await.0, 200);
    assert_eq!(json(server.get("/health").await).await.1["redis"]["ok"], true);

    redis.kill();
    problem(server.invoke("util:echo", json!({})).await, 503, "rate_limit_unavailable").await;
    let key = server.post_invoke("util:sha256").header("idempotency-key", "k1").json(&json!({"text": "x"}));
    problem(key.send().await.unwrap(), 503, "state_unavailable").await;
    let (_, health) = json(server.get("/health").await).await;
    assert_eq!((health["status"].as_str(), health["redis"]["ok"].as_bool()), (Some("degraded"), Some(false)));
    // Tools without a quota and without idempotency keys do not need Redis.
    assert_eq!(json(server.invoke("util:sha256", json!({"text": "x"})).await).await.0, 200);

    redis.restart();
    eventually("service to resume when Redis returns", Duration::from_secs(5), || async {
        (server.invoke("util:echo", json!({})).await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(json(server.get("/health").await).await.1["redis"]["ok"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_each_callers_idempotency_key_quota() {
    let Some(redis) = RedisServer::start() else { return };
    let replica = |root: &TestRoot| {
        let mut config = root.config();
        config.redis.url = Some(redis.url());
        config.redis.timeout = Duration::from_millis(500);
        config.idempotency.max_keys_per_caller = 2;
        TestServer::start_with(config)
    };
    let root_a = limited_root();
    let a = replica(&root_a).await;
    let b = replica(&replica_of(&root_a)).await;
    let call = |server: &TestServer, key: &str| {
        server.post_invoke("util:sha256").header("idempotency-key", key).json(&json!({"text": key})).send()
    };
    assert_eq!(call(&a, "q1").await.unwrap().status(), 200);
    assert_eq!(call(&b, "q2").await.unwrap().status(), 200);
    problem(call(&a, "q3").await.unwrap(), 429, "idempotency_quota_exceeded").await;
    let replay = call(&a, "q2").await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true", "a key held on the other replica replays");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_approvals_and_run_each_call_once() {
    let Some(redis) = RedisServer::start() else { return };
    let root_a = limited_root();
    root_a.write("policies/policies.yml", crate::approvals::policy(1));
    let mut config = root_a.config();
    config.redis.url = Some(redis.url());
    let a = TestServer::start_with(config.clone()).await;
    let root_b = replica_of(&root_a);
    root_b.write("policies/policies.yml", crate::approvals::policy(1));
    let b = TestServer::start_with(fastmcp_host::HostConfig { root: root_b.path().to_path_buf(), ..config })
        .await;

    // Requested on A; every replica's inbox lists it.
    let id = crate::approvals::request(&a, json!({"message": "shared"})).await["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, inbox) = crate::approvals::get_as(&b, &crate::approvals::approver(&b, "zoe"), "/approvals").await;
    assert_eq!(inbox["approvals"][0]["call_id"], id.as_str());
    // Six approvers at once, on both replicas: one of them completes the
    // quorum, and the call runs exactly once.
    let decisions = (0..6).map(|i| {
        let (server, id) = (if i % 2 == 0 { &a } else { &b }, id.clone());
        async move {
            let token = crate::approvals::approver(server, &format!("approver-{i}"));
            crate::approvals::decide(server, &token, &id, "approve", None).await.0
        }
    });
    let statuses = join_all(decisions).await;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    let done = crate::approvals::outcome(&b, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let runs: usize = [&root_a, &root_b]
        .iter()
        .map(|root| {
            crate::harness::audit_records(root.path())
                .into_iter()
                .filter(|r| r["event"] == "tools.invoke" && r["detail"]["approval"]["call_id"] == id.as_str())
                .count()
        })
        .sum();
    assert_eq!(runs, 1, "exactly once across replicas");
    let (_, inbox) = crate::approvals::get_as(&a, &crate::approvals::approver(&a, "zoe"), "/approvals").await;
    assert_eq!(inbox["approvals"], json!([]));
}
