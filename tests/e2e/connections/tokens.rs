//! Where a connection's tokens live and how long: sealed in the store (the
//! embedded file and Redis hold no token in the clear; replicas share
//! them), refreshed once when near expiry whatever the concurrency,
//! revoked at the provider when forgotten, and ended when the provider no
//! longer honours the refresh token.

use super::{assert_no_token_in, connect, connecting, connections_of, user};
use crate::harness::{RedisServer, TestServer, audit_records, json, problem};
use futures_util::future::join_all;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_store_file_holds_no_token_in_the_clear() {
    let (upstream, root, server) = connecting().await;
    connect(&server, "alice", "alice.ads").await;
    let (status, _) =
        json(server.invoke_as(&user(&server, "alice"), "ads:myCampaigns", json!({})).await).await;
    assert_eq!(status, 200);
    let tokens = upstream.upstream.issued_tokens();
    assert!(tokens.iter().any(|t| t.expose().starts_with("dev_rt_")), "a refresh token was issued");
    let file = std::fs::read(root.path().join(".runtime/state.redb")).unwrap();
    assert!(!file.is_empty());
    assert_no_token_in(&upstream, &file, "the embedded store file");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_redis_share_connections_and_redis_holds_no_token_in_the_clear() {
    let Some(redis) = RedisServer::start() else { return };
    let (upstream, root_a, first) = connecting().await;
    first.stop().await;
    let key_file = root_a.path().join("shared-connections.key");
    std::fs::write(&key_file, "11".repeat(32)).unwrap();
    let mut config = root_a.config();
    config.redis.url = Some(redis.url());
    config.connections.key_file = Some(key_file);
    let a = TestServer::start_with(config.clone()).await;
    let root_b = crate::harness::TestRoot::with_upstream(&upstream);
    for file in ["dev-jwks.json", "dev-private.pem", "action-token.key", "providers.yml"] {
        root_b.write(
            &format!(".runtime/{file}"),
            std::fs::read(root_a.path().join(".runtime").join(file)).unwrap(),
        );
    }
    let b = TestServer::start_with(fastmcp_host::HostConfig { root: root_b.path().to_path_buf(), ..config })
        .await;
    upstream.upstream.code_flow.allow_redirect(&a.url("/connections/ads-user/callback"));

    // Connected through replica A; replica B acts with it.
    connect(&a, "alice", "alice.ads").await;
    let (status, body) = json(b.invoke_as(&user(&b, "alice"), "ads:myCampaigns", json!({})).await).await;
    assert_eq!((status, &body["result"]["user"]), (200, &json!("alice.ads")), "{body}");
    assert_eq!(connections_of(&b, &user(&b, "alice")).await["connections"][0]["provider"], "ads-user");

    // Every value in Redis, read back: no token in the clear.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    let mut everything = Vec::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(&mut conn).await.unwrap();
        if kind == "string" {
            let value: Vec<u8> = redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap();
            everything.extend(value);
        }
        everything.extend(key.as_bytes());
    }
    assert!(keys.iter().any(|k| k.contains("connection:")), "{keys:?}");
    assert_no_token_in(&upstream, &everything, "Redis");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_near_expiry_is_refreshed_once_for_many_calls_and_the_refresh_token_rotates() {
    let (upstream, _root, server) = connecting().await;
    // The connection's first access token lives 2 s; those refreshed after it, a minute.
    upstream.upstream.code_flow.set_access_ttl(Duration::from_secs(2));
    connect(&server, "alice", "alice.ads").await;
    upstream.upstream.code_flow.set_access_ttl(Duration::from_secs(60));
    let refresh_tokens = || {
        upstream
            .upstream
            .issued_tokens()
            .into_iter()
            .filter(|t| t.expose().starts_with("dev_rt_"))
            .collect::<Vec<_>>()
    };
    let first = refresh_tokens();
    assert_eq!(first.len(), 1);
    let alice = user(&server, "alice");
    // Past half its life: refreshed before use, once for sixteen calls.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let calls =
        (0..16).map(|_| async { json(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await).await });
    for (status, body) in join_all(calls).await {
        assert_eq!((status, &body["result"]["user"]), (200, &json!("alice.ads")), "{body}");
    }
    assert_eq!(upstream.stats().await["refresh_grants"], 1, "single-flight");
    // Rotation: the provider issued a new refresh token and retired the
    // first, which it now refuses (and, detecting its reuse, ends the grant).
    assert_eq!(refresh_tokens().len(), 2);
    let reused = reqwest::Client::new()
        .post(format!("http://{}/oauth/token", upstream.addr))
        .basic_auth(fastmcp_dev_upstream::DEV_CLIENT_ID, Some(upstream.secret.expose()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", first[0].expose())])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forgetting_a_connection_revokes_it_at_the_provider() {
    let (upstream, root, server) = connecting().await;
    connect(&server, "alice", "alice.ads").await;
    let alice = user(&server, "alice");
    let response =
        server.client().delete(server.url("/connections/ads-user")).bearer_auth(&alice).send().await.unwrap();
    let (status, body) = json(response).await;
    assert_eq!((status, body), (200, json!({"provider": "ads-user", "revoked": true})));
    assert_eq!(upstream.stats().await["revocations"], 1);
    assert_eq!(connections_of(&server, &alice).await["connections"], json!([]));
    problem(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await, 403, "connection_required").await;
    // The provider no longer honours the grant's refresh token either.
    let refresh =
        upstream.upstream.issued_tokens().into_iter().find(|t| t.expose().starts_with("dev_rt_")).unwrap();
    let refused = reqwest::Client::new()
        .post(format!("http://{}/oauth/token", upstream.addr))
        .basic_auth(fastmcp_dev_upstream::DEV_CLIENT_ID, Some(upstream.secret.expose()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.expose())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let records = audit_records(root.path());
    let forgotten = records.iter().find(|r| r["event"] == "connections.forgotten").unwrap();
    assert_eq!(forgotten["detail"], json!({"provider": "ads-user", "revoked": true}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_the_provider_refuses_ends_the_connection() {
    let (upstream, root, server) = connecting().await;
    upstream.upstream.code_flow.set_access_ttl(Duration::from_secs(1));
    connect(&server, "alice", "alice.ads").await;
    // The user revokes the grant at the provider's side.
    let refresh =
        upstream.upstream.issued_tokens().into_iter().find(|t| t.expose().starts_with("dev_rt_")).unwrap();
    let revoked = reqwest::Client::new()
        .post(format!("http://{}/oauth/revoke", upstream.addr))
        .basic_auth(fastmcp_dev_upstream::DEV_CLIENT_ID, Some(upstream.secret.expose()))
        .form(&[("token", refresh.expose())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let alice = user(&server, "alice");
    let required =
        problem(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await, 403, "connection_required")
            .await;
    assert!(required["authorization_url"].is_string(), "a new flow to connect again: {required}");
    assert_eq!(connections_of(&server, &alice).await["connections"], json!([]));
    let records = audit_records(root.path());
    assert!(records.iter().any(|r| r["event"] == "connections.ended" && r["decision"] == "refresh_refused"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_down_during_a_refresh_is_credential_unavailable() {
    let (upstream, _root, server) = connecting().await;
    upstream.upstream.code_flow.set_access_ttl(Duration::from_secs(1));
    connect(&server, "alice", "alice.ads").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The token endpoint answers 503 to the refresh (the API, too).
    upstream.upstream.fail_token_requests(reqwest::StatusCode::SERVICE_UNAVAILABLE, 1);
    let body = problem(
        server.invoke_as(&user(&server, "alice"), "ads:myCampaigns", json!({})).await,
        502,
        "credential_unavailable",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("ads-user"), "{body}");
    // The connection survives a provider outage; the next call refreshes.
    let (status, body) =
        json(server.invoke_as(&user(&server, "alice"), "ads:myCampaigns", json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}
