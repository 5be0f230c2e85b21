//! Approvals over REST: quorum, who may see and decide what, denial,
//! expiry, withdrawal, a grant revoked before the run, idempotent invokes,
//! bounds, restarts, the trail and the webhook.

use super::{APPROVER_SCOPES, approver, decide, get_as, outcome, request, root};
use crate::harness::{TestServer, audit_records, json, problem};
use serde_json::{Value, json};
use std::time::Duration;

/// The trail's records of `event` naming call `id`.
fn records_of(server_root: &std::path::Path, event: &str, id: &str) -> Vec<Value> {
    audit_records(server_root)
        .into_iter()
        .filter(|r| r["event"] == event)
        .filter(|r| r["detail"]["call_id"] == id || r["detail"]["approval"]["call_id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_distinct_approvers_run_the_call_once_as_its_requester() {
    let root = root(2);
    let server = TestServer::start(&root).await;
    let response = server.invoke("util:echo", json!({"message": "hi"})).await;
    assert_eq!(response.headers()["location"].to_str().unwrap().len(), "/calls/".len() + 36);
    let (status, body) = json(response).await;
    assert_eq!(status, 202, "{body}");
    let id = body["call_id"].as_str().unwrap().to_owned();
    assert_eq!(body["status_url"], format!("/calls/{id}"));
    assert_eq!(body["approval"]["rule"], "echo-needs-approval");
    assert_eq!(body["approval"]["quorum"], 2);
    assert_eq!(body["approval"]["approvers"], json!({"roles": ["approver"]}));
    assert_eq!(body["approval"]["hint"], "Echo needs a second person");

    // The requester follows it; nobody else can see it.
    let (status, waiting) = get_as(&server, &server.token, &format!("/calls/{id}")).await;
    assert_eq!((status, waiting["status"].as_str()), (200, Some("awaiting_approval")), "{waiting}");
    let other = server.token_for("mallory", "public", &["tester"], &["tools.invoke:write"]);
    problem(
        server.client().get(server.url(&format!("/calls/{id}"))).bearer_auth(&other).send().await.unwrap(),
        404,
        "call_not_found",
    )
    .await;

    // Approvers see it with its arguments; others (another tenant, no role) do not.
    let (alice, bob, carol) =
        (approver(&server, "alice"), approver(&server, "bob"), approver(&server, "carol"));
    let (status, inbox) = get_as(&server, &alice, "/approvals").await;
    assert_eq!(status, 200, "{inbox}");
    let listed = &inbox["approvals"][0];
    assert_eq!(
        (listed["call_id"].as_str(), listed["arguments"].clone()),
        (Some(id.as_str()), json!({"message": "hi"}))
    );
    assert_eq!(listed["requester"], json!({"sub": "tester", "tenant": "public"}));
    assert_eq!(listed["can_decide"], true);
    let foreign = server.token_for("eve", "acme", &["approver"], APPROVER_SCOPES);
    let no_role = server.token_for("dave", "public", &["tester"], APPROVER_SCOPES);
    for token in [&foreign, &no_role] {
        let (_, inbox) = get_as(&server, token, "/approvals").await;
        assert_eq!(inbox["approvals"], json!([]), "no oracle for others");
        let (status, body) = get_as(&server, token, &format!("/approvals/{id}")).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("approval_not_found")));
        let (status, body) = decide(&server, token, &id, "approve", None).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("approval_not_found")));
    }
    // Scopes: reading needs approvals.inbox:read, deciding approvals.decide:write.
    let reader = server.token_for("rita", "public", &["approver"], &["approvals.inbox:read"]);
    let (status, body) = decide(&server, &reader, &id, "approve", None).await;
    assert_eq!((status, body["scope"].as_str()), (403, Some("approvals.decide:write")));
    let (status, _) = get_as(&server, &server.token, "/approvals").await;
    assert_eq!(status, 403);

    // The requester cannot approve their own call, whatever roles they hold.
    let requester_approver = server.token_for(
        "tester",
        "public",
        &["tester", "approver"],
        &["approvals.inbox:read", "approvals.decide:write"],
    );
    let (status, body) = decide(&server, &requester_approver, &id, "approve", None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("self_approval")), "{body}");
    let (_, seen) = get_as(&server, &requester_approver, &format!("/approvals/{id}")).await;
    assert_eq!(seen["can_decide"], false, "the requester sees it, without the right to decide");

    // One approval; the same approver again counts once.
    let (status, first) = decide(&server, &alice, &id, "approve", Some("fine by me")).await;
    assert_eq!(
        (status, first["status"].as_str(), first["approvals"].as_u64()),
        (200, Some("awaiting_approval"), Some(1)),
        "{first}"
    );
    let (status, again) = decide(&server, &alice, &id, "approve", None).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("already_decided")));
    let (_, inbox) = get_as(&server, &alice, "/approvals").await;
    assert_eq!(inbox["approvals"], json!([]), "decided calls leave the approver's inbox");
    let (_, waiting) = get_as(&server, &server.token, &format!("/calls/{id}")).await;
    assert_eq!(waiting["decisions"][0]["approver"]["sub"], "alice");
    assert_eq!(waiting["decisions"][0]["comment"], "fine by me");

    // The second distinct approval completes the quorum: it runs.
    let (status, second) = decide(&server, &bob, &id, "approve", None).await;
    assert_eq!((status, second["approvals"].as_u64()), (200, Some(2)), "{second}");
    assert!(["running", "completed"].contains(&second["status"].as_str().unwrap()), "{second}");
    let done = outcome(&server, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], json!({"message": "hi"}));
    let (status, late) = decide(&server, &carol, &id, "approve", None).await;
    assert_eq!((status, late["code"].as_str()), (409, Some("approval_closed")));

    // The trail: requested, two approvals, one run as the requester naming both.
    assert_eq!(records_of(root.path(), "approval.requested", &id).len(), 1);
    let approvals = records_of(root.path(), "approval.approved", &id);
    let approvers: Vec<_> = approvals.iter().map(|r| r["principal"]["sub"].clone()).collect();
    assert_eq!(approvers, [json!("alice"), json!("bob")]);
    assert!(approvals[0]["detail"]["comment_sha256"].is_string(), "{:?}", approvals[0]);
    assert!(!approvals[0].to_string().contains("fine by me"), "the trail keeps the comment's digest only");
    let runs = records_of(root.path(), "tools.invoke", &id);
    assert_eq!(runs.len(), 1, "run exactly once: {runs:?}");
    assert_eq!(runs[0]["principal"]["sub"], "tester");
    assert_eq!(runs[0]["decision"], "approved");
    let named: Vec<_> = runs[0]["detail"]["approval"]["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sub"].clone())
        .collect();
    assert_eq!(named, [json!("alice"), json!("bob")]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denial_ends_the_call_and_nothing_runs() {
    let root = root(2);
    let server = TestServer::start(&root).await;
    let id = request(&server, json!({"message": "no"})).await["call_id"].as_str().unwrap().to_owned();
    let (status, denied) = decide(&server, &approver(&server, "alice"), &id, "deny", Some("not today")).await;
    assert_eq!((status, denied["status"].as_str()), (200, Some("denied")), "{denied}");
    let done = outcome(&server, &id).await;
    assert_eq!(done["status"], "denied");
    assert_eq!(done["decisions"][0]["decision"], "denied");
    assert_eq!(done["decisions"][0]["comment"], "not today");
    assert!(done.get("result").is_none());
    let (status, late) = decide(&server, &approver(&server, "bob"), &id, "approve", None).await;
    assert_eq!((status, late["code"].as_str()), (409, Some("approval_closed")));
    assert_eq!(records_of(root.path(), "approval.denied", &id).len(), 1);
    assert!(records_of(root.path(), "tools.invoke", &id).is_empty(), "a denied call never runs");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_nobody_decides_expires_by_the_host_clock_and_never_runs() {
    let root = root(1);
    let config = root.config();
    let clock = config.clock.clone();
    let server = TestServer::start_with(config).await;
    let id = request(&server, json!({"message": "late"})).await["call_id"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(3601));
    let (status, expired) = get_as(&server, &server.token, &format!("/calls/{id}")).await;
    assert_eq!((status, expired["status"].as_str()), (200, Some("expired")), "{expired}");
    let alice = approver(&server, "alice");
    let (status, late) = decide(&server, &alice, &id, "approve", None).await;
    assert_eq!((status, late["code"].as_str()), (409, Some("approval_closed")));
    assert_eq!(get_as(&server, &alice, "/approvals").await.1["approvals"], json!([]));
    assert_eq!(records_of(root.path(), "approval.expired", &id).len(), 1);
    assert!(records_of(root.path(), "tools.invoke", &id).is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_requester_withdraws_a_waiting_call() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let id = request(&server, json!({"message": "oops"})).await["call_id"].as_str().unwrap().to_owned();
    let url = server.url(&format!("/calls/{id}/withdraw"));
    let other = server.token_for("mallory", "public", &["tester"], &["tools.invoke:write"]);
    problem(server.client().post(&url).bearer_auth(&other).send().await.unwrap(), 404, "call_not_found")
        .await;
    let (status, body) =
        json(server.client().post(&url).bearer_auth(&server.token).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("withdrawn")), "{body}");
    let (status, late) = decide(&server, &approver(&server, "alice"), &id, "approve", None).await;
    assert_eq!((status, late["code"].as_str()), (409, Some("approval_closed")));
    problem(
        server.client().post(&url).bearer_auth(&server.token).send().await.unwrap(),
        409,
        "approval_closed",
    )
    .await;
    assert_eq!(records_of(root.path(), "approval.withdrawn", &id).len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_revoked_before_the_last_approval_stops_the_run() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let id = request(&server, json!({"message": "revoked"})).await["call_id"].as_str().unwrap().to_owned();
    // The operator takes `util:*` away from the requester's role meanwhile.
    root.write(
        "policies/policies.yml",
        super::policy(1).replace(r#"tester: { tools: ["*"] }"#, r#"tester: { tools: ["ads:*"] }"#),
    );
    server.state.reload_policies().await.unwrap();
    let (status, _) = decide(&server, &approver(&server, "alice"), &id, "approve", None).await;
    assert_eq!(status, 200);
    let done = outcome(&server, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "policy_denied");
    assert_eq!(done["error"]["rule"], "rbac");
    let runs = records_of(root.path(), "tools.denied", &id);
    assert_eq!(runs.len(), 1, "the re-check is audited: {runs:?}");
    assert!(records_of(root.path(), "tools.invoke", &id).is_empty(), "not run");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotent_invoke_returns_the_same_call() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let send = || {
        server
            .post_invoke("util:echo")
            .header("idempotency-key", "approve-me-once")
            .json(&json!({"message": "once"}))
            .send()
    };
    let (status, first) = json(send().await.unwrap()).await;
    assert_eq!(status, 202);
    let retry = send().await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let (status, second) = json(retry).await;
    assert_eq!((status, &second["call_id"]), (202, &first["call_id"]), "{second}");
    let (_, inbox) = get_as(&server, &approver(&server, "alice"), "/approvals").await;
    assert_eq!(inbox["approvals"].as_array().unwrap().len(), 1, "one call, not two");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_requester_has_a_bounded_number_of_waiting_calls() {
    let root = root(1);
    let mut config = root.config();
    config.approvals.max_pending_per_caller = 2;
    let server = TestServer::start_with(config).await;
    let first = request(&server, json!({"n": 1})).await;
    request(&server, json!({"n": 2})).await;
    let refused =
        problem(server.invoke("util:echo", json!({"n": 3})).await, 429, "approval_quota_exceeded").await;
    assert!(refused["detail"].as_str().unwrap().contains("this caller"), "{refused}");
    // Another requester is not affected; a settled call frees a place.
    let other = server.token_for("olga", "public", &["tester"], &["tools.invoke:write"]);
    assert_eq!(json(server.invoke_as(&other, "util:echo", json!({"n": 4})).await).await.0, 202);
    let id = first["call_id"].as_str().unwrap();
    decide(&server, &approver(&server, "alice"), id, "deny", None).await;
    assert_eq!(json(server.invoke("util:echo", json!({"n": 5})).await).await.0, 202);
    // Calls no rule covers run at once.
    assert_eq!(json(server.invoke("util:echo", json!({"free": true})).await).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_calls_survive_a_restart() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let id = request(&server, json!({"message": "durable"})).await["call_id"].as_str().unwrap().to_owned();
    server.stop().await;
    let server = TestServer::start(&root).await;
    let (_, waiting) = get_as(&server, &server.token, &format!("/calls/{id}")).await;
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    let (status, _) = decide(&server, &approver(&server, "alice"), &id, "approve", None).await;
    assert_eq!(status, 200);
    assert_eq!(outcome(&server, &id).await["result"], json!({"message": "durable"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_stable_codes() {
    let root = root(1);
    let server = TestServer::start(&root).await;
    let id = request(&server, json!({"message": "x"})).await["call_id"].as_str().unwrap().to_owned();
    let alice = approver(&server, "alice");
    let long = "x".repeat(1001);
    let (status, body) = decide(&server, &alice, &id, "approve", Some(&long)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    let response = server
        .client()
        .post(server.url(&format!("/approvals/{id}/approve")))
        .bearer_auth(&alice)
        .json(&json!({"comment": "ok", "extra": 1}))
        .send()
        .await
        .unwrap();
    problem(response, 400, "bad_request").await;
    for path in ["/calls/not-a-uuid", "/calls/0190a1b2-0000-7000-8000-000000000000"] {
        problem(
            server.client().get(server.url(path)).bearer_auth(&server.token).send().await.unwrap(),
            404,
            "call_not_found",
        )
        .await;
    }
    problem(
        server
            .client()
            .get(server.url(&format!("/calls/{id}?wait=soon")))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    problem(server.client().get(server.url("/approvals")).send().await.unwrap(), 401, "unauthenticated")
        .await;
    // A long-poll that sees no change answers the call as it stands.
    let (status, waiting) = get_as(&server, &server.token, &format!("/calls/{id}?wait=1")).await;
    assert_eq!((status, waiting["status"].as_str()), (200, Some("awaiting_approval")));
    server.stop().await;
}

/// What a webhook receiver got: (event header, signature header, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A webhook endpoint on loopback that refuses its first delivery (so the
/// host must retry) and records the rest.
async fn webhook_receiver() -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let received: Received = Default::default();
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (kept, once) = (received.clone(), refused.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (kept, once) = (kept.clone(), once.clone());
            async move {
                if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let header = |name: &str| {
                    headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
                };
                kept.lock().unwrap().push((
                    header("x-fastmcp-event"),
                    header("x-fastmcp-signature"),
                    body.to_vec(),
                ));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn approvers_are_notified_by_a_signed_webhook() {
    use hmac::{Hmac, Mac};
    let root = root(1);
    let key = "webhook-key-of-the-operator-0123";
    root.write(".runtime/webhook.key", key);
    let (url, received) = webhook_receiver().await;
    let mut config = root.config();
    config.approvals.webhook_url = Some(url);
    config.approvals.webhook_key_file = Some(root.path().join(".runtime/webhook.key"));
    let server = TestServer::start_with(config).await;
    let id =
        request(&server, json!({"message": "secret-argument"})).await["call_id"].as_str().unwrap().to_owned();
    decide(&server, &approver(&server, "alice"), &id, "approve", None).await;
    assert_eq!(outcome(&server, &id).await["status"], "completed");
    let events = crate::harness::eventually("three webhook events", Duration::from_secs(30), || {
        let received = received.clone();
        async move {
            let got = received.lock().unwrap().clone();
            (got.len() >= 3).then_some(got)
        }
    })
    .await;
    let names: Vec<_> = events.iter().map(|(event, _, _)| event.as_str()).collect();
    assert_eq!(
        names,
        ["approval.requested", "approval.approved", "approval.completed"],
        "the first was retried"
    );
    for (event, signature, body) in &events {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body);
        assert_eq!(signature, &format!("sha256={}", hex::encode(mac.finalize().into_bytes())), "{event}");
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (body["event"].as_str(), body["call_id"].as_str()),
            (Some(event.as_str()), Some(id.as_str()))
        );
        assert_eq!(body["approval_url"], format!("/approvals/{id}"));
        assert!(!body.to_string().contains("secret-argument"), "events never carry the arguments");
    }
    assert_eq!(serde_json::from_slice::<Value>(&events[1].2).unwrap()["approver"]["sub"], "alice");
    let metrics = server.metrics().await;
    assert!(metrics.contains("fastmcp_approval_webhook_delivered_total 3"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_flow_confirm_then_two_finance_approvers_with_the_sample_policy() {
    // The sample policy (plus the harness's `tester` role): a campaign over
    // 10k is confirmed by its requester, then waits for two finance approvers.
    let root = crate::harness::TestRoot::new();
    let server = TestServer::start(&root).await;
    let args = json!({"name": "Big", "budget": 20000, "startDate": "2026-12-24"});
    let (status, pending) = json(server.invoke("ads:createCampaign", args.clone()).await).await;
    assert_eq!((status, pending["status"].as_str()), (202, Some("pending_confirmation")), "{pending}");
    let (status, waiting) = json(server.confirm(&pending["action_token"], args).await).await;
    assert_eq!((status, waiting["status"].as_str()), (202, Some("awaiting_approval")), "{waiting}");
    assert_eq!(waiting["approval"]["rule"], "large-budget");
    let id = waiting["call_id"].as_str().unwrap();
    for who in ["fin-1", "fin-2"] {
        let token = server.token_for(who, "public", &["finance-approver"], APPROVER_SCOPES);
        assert_eq!(decide(&server, &token, id, "approve", None).await.0, 200);
    }
    let done = outcome(&server, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["name"], "Big", "{done}");
    // The confirm's record says it now waits; the run is the requester's.
    let requested = records_of(root.path(), "approval.requested", id);
    assert_eq!(requested[0]["event"], "approval.requested");
    assert!(requested[0]["detail"]["action_id"].is_string(), "the confirm's token is named: {requested:?}");
    assert_eq!(records_of(root.path(), "tools.invoke", id)[0]["principal"]["sub"], "tester");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_run_waits_out_a_busy_moment_instead_of_failing() {
    let root = root(1);
    let mut config = root.config();
    // The requester may hold one sandbox slot; a loop of theirs holds it.
    config.runtime.max_calls_per_principal = 1;
    let server = TestServer::start_with(config).await;
    let id = request(&server, json!({"message": "patient"})).await["call_id"].as_str().unwrap().to_owned();
    let (client, url, token) =
        (server.client().clone(), server.url("/tools/misbehave:loop/invoke"), server.token.clone());
    let busy = tokio::spawn(async move {
        for _ in 0..2 {
            client.post(&url).bearer_auth(&token).json(&json!({})).send().await.unwrap();
        }
    });
    crate::harness::eventually("the loop holds the slot", Duration::from_secs(30), || async {
        server.metrics().await.contains("fastmcp_sandbox_calls_in_flight 1").then_some(())
    })
    .await;
    assert_eq!(decide(&server, &approver(&server, "alice"), &id, "approve", None).await.0, 200);
    let done = outcome(&server, &id).await;
    busy.await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    let refused = records_of(root.path(), "tools.rate_limited", &id);
    assert!(!refused.is_empty(), "the first attempt met the held slot and was retried");
    assert!(refused.iter().all(|r| r["decision"] == "share_exceeded"), "{refused:?}");
    assert_eq!(records_of(root.path(), "tools.invoke", &id).len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_arguments_of_a_waiting_call_are_bounded() {
    let root = root(1);
    let mut config = root.config();
    config.approvals.max_args_bytes = 1024;
    let server = TestServer::start_with(config).await;
    let big = "x".repeat(2000);
    problem(server.invoke("util:echo", json!({"message": big})).await, 413, "payload_too_large").await;
    assert_eq!(get_as(&server, &approver(&server, "alice"), "/approvals").await.1["approvals"], json!([]));
    request(&server, json!({"message": "small"})).await;
    server.stop().await;
}
