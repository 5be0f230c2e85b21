//! Findings 2, 8 and 9: authorization before disclosure, JWT details, and
//! what unauthenticated endpoints say.

use crate::harness::{ALL_SCOPES, TestRoot, TestServer, eventually, json, problem, signed_jwt};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_who_may_not_use_a_tool_learns_nothing_about_it() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let bad_args = json!({"name": 7, "budget": "lots"});

    // No scopes, no roles: the same 403 for a real tool with bad arguments and
    // for a tool that does not exist.
    let nobody = server.token_for("nobody", "public", &[], &[]);
    for tool in ["ads:createCampaign", "ads:noSuchTool", "nope:nothing"] {
        let body =
            problem(server.invoke_as(&nobody, tool, bad_args.clone()).await, 403, "insufficient_scope").await;
        assert!(body.get("errors").is_none(), "{tool}: {body}");
    }

    // The invoke scope, but a role that does not grant `ads:*`.
    let developer = server.token_for("dev", "public", &["developer"], &["tools.invoke:write", "ads.write"]);
    let mut answers = Vec::new();
    for tool in ["ads:createCampaign", "ads:noSuchTool"] {
        let body =
            problem(server.invoke_as(&developer, tool, bad_args.clone()).await, 403, "policy_denied").await;
        assert_eq!(body["rule"], "rbac", "{body}");
        assert!(body.get("errors").is_none(), "no schema detail: {body}");
        answers.push(body["detail"].as_str().unwrap().replace(tool, "TOOL"));
    }
    assert_eq!(answers[0], answers[1], "existing and missing tools read the same");

    // A caller whose role grants the tool gets the schema's messages, and a
    // 404 for a missing tool under a granted pattern.
    let body =
        problem(server.invoke("ads:createCampaign", bad_args.clone()).await, 422, "invalid_arguments").await;
    assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()));
    problem(server.invoke("ads:noSuchTool", bad_args).await, 404, "tool_not_found").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_says_little_without_a_scope_and_metrics_are_not_on_the_api_listener() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let (status, public) = json(server.client().get(server.url("/health")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(public, json!({"status": "ok"}), "liveness and readiness only");

    // Liveness whatever the credentials: no detail without the scope.
    let no_scope = server.token_for("agent", "public", &["tester"], &["tools.invoke:write"]);
    for token in [no_scope.as_str(), "garbage"] {
        let response = server.client().get(server.url("/health")).bearer_auth(token).send().await.unwrap();
        assert_eq!(json(response).await, (200, json!({"status": "ok"})));
    }
    let (_, detail) = json(server.get("/health").await).await;
    assert!(detail["registry"]["tools"].is_number() && detail["audit"]["head"].is_string(), "{detail}");

    problem(server.get("/metrics").await, 404, "not_found").await;
    assert!(server.metrics().await.contains("fastmcp_sandbox_slots"));
    server.stop().await;
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims() -> Value {
    json!({
        "iss": "https://idp.local", "aud": "fastmcp", "sub": "agent-1", "tenant": "public",
        "roles": ["tester"], "scopes": ALL_SCOPES, "iat": now(), "exp": now() + 600,
    })
}

fn dev_key(root: &TestRoot) -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(root.path().join(".runtime/dev-private.pem")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn critical_header_extensions_are_rejected_and_typ_is_enforced_when_configured() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let key = dev_key(&root);
    let plain = signed_jwt(&json!({"alg": "RS256", "kid": "dev-key"}), &claims(), &key, Algorithm::RS256);
    assert_eq!(server.invoke_as(&plain, "util:echo", json!({})).await.status(), 200);
    let crit = signed_jwt(
        &json!({"alg": "RS256", "kid": "dev-key", "crit": ["exp"], "exp": 1}),
        &claims(),
        &key,
        Algorithm::RS256,
    );
    let body = problem(server.invoke_as(&crit, "util:echo", json!({})).await, 401, "unauthenticated").await;
    assert!(body["detail"].as_str().unwrap().contains("critical"), "{body}");
    server.stop().await;

    let mut config = root.config();
    config.auth.required_typ = Some("at+jwt".into());
    let server = TestServer::start_with(config).await;
    problem(server.invoke_as(&plain, "util:echo", json!({})).await, 401, "unauthenticated").await;
    let typed = signed_jwt(
        &json!({"alg": "RS256", "kid": "dev-key", "typ": "at+jwt"}),
        &claims(),
        &key,
        Algorithm::RS256,
    );
    assert_eq!(server.invoke_as(&typed, "util:echo", json!({})).await.status(), 200);
    let media = signed_jwt(
        &json!({"alg": "RS256", "kid": "dev-key", "typ": "application/at+jwt"}),
        &claims(),
        &key,
        Algorithm::RS256,
    );
    assert_eq!(server.invoke_as(&media, "util:echo", json!({})).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_removed_from_a_remote_jwks_stops_verifying_on_the_next_refresh() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwk = json!({
        "kty": "RSA", "kid": "k1",
        "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
    });
    let key = EncodingKey::from_rsa_pem(private.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let document = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [jwk]})));
    let served = document.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let served = served.clone();
            async move { axum::Json(served.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let root = TestRoot::new();
    let mut config = root.config();
    config.auth.jwks_url = Some(url);
    // The shortest refresh an operator may set (`auth.jwks_refresh_interval_s`).
    config.auth.jwks_refresh_interval = Duration::from_secs(1);
    let server = TestServer::start_with(config).await;
    let token = signed_jwt(&json!({"alg": "RS256", "kid": "k1"}), &claims(), &key, Algorithm::RS256);
    assert_eq!(server.invoke_as(&token, "util:echo", json!({})).await.status(), 200);
    assert_eq!(server.invoke_as(&token, "util:echo", json!({})).await.status(), 200, "cached");

    // The identity provider removes the key; no unknown `kid` ever arrives.
    *document.lock().unwrap() = json!({"keys": []});
    eventually("the removed key to stop verifying", Duration::from_secs(10), || async {
        (server.invoke_as(&token, "util:echo", json!({})).await.status() == 401).then_some(())
    })
    .await;
    server.stop().await;
}
