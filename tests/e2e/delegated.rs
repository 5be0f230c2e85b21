//! Delegated credentials by token exchange (RFC 8693) against the
//! development upstream: each caller's own identity reaches the upstream
//! (with the host as actor), exchanged tokens are cached per caller and
//! never leak, and a failing exchange is one stable code.

use crate::harness::{TestRoot, TestServer, TestUpstream, audit_records, json, problem};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// A host and an upstream that verifies the host's development tokens.
async fn exchanging() -> (TestUpstream, TestRoot, TestServer) {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;
    upstream.upstream.subject_keys.trust(root.path().join(".runtime/dev-jwks.json"));
    (upstream, root, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_caller_reaches_the_upstream_as_themselves_with_the_host_as_actor() {
    let (upstream, root, server) = exchanging().await;
    let token = |sub: &str| server.token_for(sub, "public", &["tester"], &["tools.invoke:write"]);
    let (alice, bob) = (token("alice"), token("bob"));
    // Both at once, interleaved: each answer is its own caller's.
    let server = &server;
    let calls = (0..16).map(|i| {
        let (token, sub) = if i % 2 == 0 { (&alice, "alice") } else { (&bob, "bob") };
        async move {
            let (status, body) = json(server.invoke_as(token, "ads:myCampaigns", json!({})).await).await;
            (sub, status, body)
        }
    });
    for (sub, status, body) in join_all(calls).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["user"], sub, "{sub} got {body}");
    }
    // The upstream saw each user, with the host as the actor.
    let acting = upstream.upstream.acting();
    for sub in ["alice", "bob"] {
        assert!(
            acting.iter().any(|a| a == &json!({"sub": sub, "tenant": "public", "act": "fastmcp-dev"})),
            "{acting:?}"
        );
    }
    // Exchanged once per caller (cached), plus the host's own actor token.
    let stats = upstream.stats().await;
    assert!(stats["tokens_issued"].as_u64().unwrap() <= 3, "{stats}");
    // The trail names who went upstream, never a token.
    let records: Vec<Value> =
        audit_records(root.path()).into_iter().filter(|r| r["tool"] == "ads:myCampaigns").collect();
    assert_eq!(records.len(), 16);
    let identities: Vec<&Value> = records
        .iter()
        .flat_map(|r| r["detail"]["egress"]["events"].as_array().unwrap())
        .filter(|e| e["kind"] == "inject")
        .map(|e| &e["identity"])
        .collect();
    assert!(identities.iter().all(|i| *i == "alice" || *i == "bob"), "{identities:?}");
    let trail = std::fs::read_dir(root.path().join(".audit"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    for issued in upstream.upstream.issued_tokens() {
        assert!(!trail.contains(issued.expose()), "an upstream token reached the trail");
    }
    assert!(!trail.contains(&alice) && !trail.contains(&bob), "a caller's token reached the trail");
    // Other tools keep the operator's identity.
    let (status, _) = json(server.invoke_as(&alice, "ads:listCampaigns", json!({})).await).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.upstream.acting().last().unwrap(), &json!({"client": "fastmcp-dev"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_exchange_is_credential_unavailable_and_leaks_nothing() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;
    // The upstream trusts no subject keys: it refuses every exchange.
    let body =
        problem(server.invoke("ads:myCampaigns", json!({})).await, 502, "credential_unavailable").await;
    assert!(body["detail"].as_str().unwrap().contains("ads-user"), "{body}");
    assert!(!body.to_string().contains(&server.token), "{body}");
    let records: Vec<Value> =
        audit_records(root.path()).into_iter().filter(|r| r["tool"] == "ads:myCampaigns").collect();
    assert_eq!(records[0]["decision"], "credential_unavailable");
    assert!(!records[0].to_string().contains(&server.token));
    // The service identity is unaffected.
    assert_eq!(json(server.invoke("ads:listCampaigns", json!({})).await).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_can_ask_whether_a_call_acts_as_the_user() {
    let (_upstream, root, server) = exchanging().await;
    let policy = std::fs::read_to_string(root.path().join("policies/policies.yml")).unwrap();
    let rule = "rules:\n  - id: no-user-identity-for-acme\n    tools: [\"*\"]\n    when: \"credential.kind == 'user' && principal.tenant == 'acme'\"\n    effect: deny\n    reason: acme calls never act as the user\n";
    root.write("policies/policies.yml", policy.replacen("rules:\n", rule, 1));
    server.state.reload_policies().await.unwrap();
    let acme = server.token_for("carol", "acme", &["tester"], &["tools.invoke:write"]);
    let denied =
        problem(server.invoke_as(&acme, "ads:myCampaigns", json!({})).await, 403, "policy_denied").await;
    assert_eq!(denied["rule"], "no-user-identity-for-acme");
    assert_eq!(
        json(server.invoke_as(&acme, "ads:listCampaigns", json!({})).await).await.0,
        200,
        "service identity"
    );
    let public = server.token_for("dave", "public", &["tester"], &["tools.invoke:write"]);
    assert_eq!(json(server.invoke_as(&public, "ads:myCampaigns", json!({})).await).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refused_before_any_exchange_and_mcp_callers_act_as_themselves() {
    let (upstream, root, server) = exchanging().await;
    let pem = std::fs::read(root.path().join(".runtime/dev-private.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let kid =
        serde_json::from_slice::<Value>(&std::fs::read(root.path().join(".runtime/dev-jwks.json")).unwrap())
            .unwrap()["keys"][0]["kid"]
            .clone();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expired = crate::harness::signed_jwt(
        &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        &json!({"iss": "https://idp.local", "aud": "fastmcp", "sub": "eve", "tenant": "public",
                "roles": ["tester"], "scopes": ["tools.invoke:write"], "iat": now - 7200, "exp": now - 3600}),
        &key,
        jsonwebtoken::Algorithm::RS256,
    );
    problem(server.invoke_as(&expired, "ads:myCampaigns", json!({})).await, 401, "unauthenticated").await;
    assert_eq!(upstream.stats().await["token_requests"], 0, "no exchange was attempted");

    // Over MCP the caller's bearer is exchanged the same way.
    let token = server.token_for("mia", "public", &["tester"], &["tools.invoke:write"]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "ads.myCampaigns", "arguments": {}, "_meta": crate::mcp::confirmation::modern_meta()}});
    let response =
        crate::mcp::confirmation::modern_post(&server, &token, "tools/call", Some("ads.myCampaigns"), &body)
            .await;
    let (status, answer) = json(response).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["structuredContent"]["user"], "mia", "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_call_never_acts_as_its_requester_without_their_token() {
    let (upstream, root, server) = exchanging().await;
    let policy = std::fs::read_to_string(root.path().join("policies/policies.yml")).unwrap();
    // The sample policy's `approvals:` list gains a rule for the delegated tool.
    let rule = "approvals:\n  - { name: mine, tools: [\"ads:myCampaigns\"], approvers: { roles: [approver] }, ttl: 1h }\n";
    root.write("policies/policies.yml", policy.replacen("approvals:\n", rule, 1));
    server.state.reload_policies().await.unwrap();
    let (status, waiting) = json(server.invoke("ads:myCampaigns", json!({})).await).await;
    assert_eq!((status, waiting["status"].as_str()), (202, Some("awaiting_approval")), "{waiting}");
    let id = waiting["call_id"].as_str().unwrap();
    let alice = server.token_for(
        "alice",
        "public",
        &["approver"],
        &["approvals.inbox:read", "approvals.decide:write"],
    );
    let (status, _) = json(
        server
            .client()
            .post(server.url(&format!("/approvals/{id}/approve")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, done) = json(
        server
            .client()
            .get(server.url(&format!("/calls/{id}?wait=30")))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "credential_unavailable");
    assert!(upstream.upstream.acting().is_empty(), "the upstream was never reached as anyone");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_can_authenticate_with_a_private_key_jwt_instead_of_a_secret() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    // `ads-user` authenticates with the host's development RSA key (RFC 7523),
    // whose public half the upstream trusts for this client.
    let file = root.path().join(".runtime/providers.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (service, user) = text.split_at(text.find("  ads-user:").unwrap());
    let user = user.replacen(
        "client_secret: { file: ads-client-secret }",
        "private_key: { file: dev-private.pem }\n    key_id: dev-key",
        1,
    );
    root.write(".runtime/providers.yml", format!("{service}{user}"));
    let server = TestServer::start(&root).await;
    let jwks = root.path().join(".runtime/dev-jwks.json");
    upstream.upstream.subject_keys.trust(jwks.clone());
    upstream.upstream.client_keys.trust(jwks);
    let alice = server.token_for("alice", "public", &["tester"], &["tools.invoke:write"]);
    let (status, body) = json(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await).await;
    assert_eq!((status, &body["result"]["user"]), (200, &json!("alice")), "{body}");
    let stats = upstream.stats().await;
    assert_eq!(stats["assertion_clients"], 2, "the actor token and the exchange: {stats}");
    // The service provider still uses its secret.
    let (status, _) = json(server.invoke_as(&alice, "ads:listCampaigns", json!({})).await).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.stats().await["assertion_clients"], 2);
    // An upstream that no longer trusts the key refuses the client: the
    // documented code, naming the provider.
    upstream.upstream.client_keys.trust(root.path().join("no-such-jwks.json"));
    let bob = server.token_for("bob", "public", &["tester"], &["tools.invoke:write"]);
    let body =
        problem(server.invoke_as(&bob, "ads:myCampaigns", json!({})).await, 502, "credential_unavailable")
            .await;
    assert!(body["detail"].as_str().unwrap().contains("ads-user"), "{body}");
    server.stop().await;
}
