//! Identity: bearer tokens, scopes, the JWT attack table, JWKS files and URLs.

use crate::harness::{ALL_SCOPES, TestRoot, TestServer, base64url_json, json, problem, signed_jwt};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Response;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn good_claims() -> Value {
    json!({
        "iss": "https://idp.local", "aud": "fastmcp", "sub": "agent-1", "tenant": "public",
        "roles": ["tester"], "scopes": ALL_SCOPES, "iat": now(), "nbf": now(), "exp": now() + 600,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn rs256(kid: &str) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": kid})
}

struct Keys {
    dev: EncodingKey,
    dev_public_pem: String,
    dev_jwks: Vec<u8>,
    other: EncodingKey,
    other_jwk: Value,
}

fn keys(root: &Path) -> Keys {
    let runtime = root.join(".runtime");
    let pem = std::fs::read(runtime.join("dev-private.pem")).unwrap();
    let private = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(
        std::str::from_utf8(&pem).unwrap(),
    )
    .unwrap();
    let dev_public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let other_jwk = json!({
        "kty": "RSA", "kid": "dev-key", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(other.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(other.e().to_bytes_be()),
    });
    let other_pem = other.to_pkcs8_pem(LineEnding::LF).unwrap();
    Keys {
        dev: EncodingKey::from_rsa_pem(&pem).unwrap(),
        dev_public_pem,
        dev_jwks: std::fs::read(runtime.join("dev-jwks.json")).unwrap(),
        other: EncodingKey::from_rsa_pem(other_pem.as_bytes()).unwrap(),
        other_jwk,
    }
}

async fn catalog_with(server: &TestServer, authorization: &str) -> Response {
    server
        .client()
        .get(server.url("/tool-catalog"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_malformed_tokens_are_all_401() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let k = keys(root.path());
    let good = good_claims();
    let sign = |header: Value, claims: Value| signed_jwt(&header, &claims, &k.dev, Algorithm::RS256);
    let valid = sign(rs256("dev-key"), good.clone());
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let tampered_payload = base64url_json(&with(good.clone(), "roles", json!(["admin", "tester"])));

    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                base64url_json(&json!({"alg": "none", "typ": "JWT", "kid": "dev-key"})),
                payload
            ),
        ),
        (
            "alg none with a signature",
            format!("{}.{payload}.{signature}", base64url_json(&json!({"alg": "none", "kid": "dev-key"}))),
        ),
        (
            "alg None spelled oddly",
            format!("{}.{payload}.", base64url_json(&json!({"alg": "None", "kid": "dev-key"}))),
        ),
        (
            "HS256 keyed with the RSA public key (PEM)",
            signed_jwt(
                &json!({"alg": "HS256", "kid": "dev-key"}),
                &good,
                &EncodingKey::from_secret(k.dev_public_pem.as_bytes()),
                Algorithm::HS256,
            ),
        ),
        (
            "HS256 keyed with the JWKS document",
            signed_jwt(
                &json!({"alg": "HS256", "kid": "dev-key"}),
                &good,
                &EncodingKey::from_secret(&k.dev_jwks),
                Algorithm::HS256,
            ),
        ),
        (
            "RS512 header on an RS256 key",
            signed_jwt(&json!({"alg": "RS512", "kid": "dev-key"}), &good, &k.dev, Algorithm::RS512),
        ),
        (
            "PS256 header on an RS256 key",
            signed_jwt(&json!({"alg": "PS256", "kid": "dev-key"}), &good, &k.dev, Algorithm::PS256),
        ),
        ("expired an hour ago", sign(rs256("dev-key"), with(good.clone(), "exp", json!(now() - 3600)))),
        (
            "expired just beyond the leeway",
            sign(rs256("dev-key"), with(good.clone(), "exp", json!(now() - 40))),
        ),
        ("nbf in the future", sign(rs256("dev-key"), with(good.clone(), "nbf", json!(now() + 3600)))),
        ("iat in the future", sign(rs256("dev-key"), with(good.clone(), "iat", json!(now() + 3600)))),
        ("missing exp", sign(rs256("dev-key"), without(good.clone(), "exp"))),
        ("exp as a string", sign(rs256("dev-key"), with(good.clone(), "exp", json!("tomorrow")))),
        ("wrong iss", sign(rs256("dev-key"), with(good.clone(), "iss", json!("https://evil.example")))),
        ("missing iss", sign(rs256("dev-key"), without(good.clone(), "iss"))),
        ("wrong aud", sign(rs256("dev-key"), with(good.clone(), "aud", json!("other-api")))),
        ("aud array without fastmcp", sign(rs256("dev-key"), with(good.clone(), "aud", json!(["a", "b"])))),
        ("missing sub", sign(rs256("dev-key"), without(good.clone(), "sub"))),
        ("missing tenant", sign(rs256("dev-key"), without(good.clone(), "tenant"))),
        (
            "another RSA key with the same kid",
            signed_jwt(&rs256("dev-key"), &good, &k.other, Algorithm::RS256),
        ),
        (
            "another RSA key without a kid",
            signed_jwt(&json!({"alg": "RS256"}), &good, &k.other, Algorithm::RS256),
        ),
        ("unknown kid", sign(rs256("rotated-away"), good.clone())),
        ("kid path traversal", sign(rs256("../../.runtime/dev-key"), good.clone())),
        ("tampered payload", format!("{head}.{tampered_payload}.{signature}")),
        ("truncated signature", format!("{head}.{payload}.{}", &signature[..signature.len() / 2])),
        ("empty signature", format!("{head}.{payload}.")),
        ("two segments", format!("{head}.{payload}")),
        ("four segments", format!("{valid}.{signature}")),
        ("garbage", "not-a-jwt-at-all".to_owned()),
        ("base64 garbage segments", "e30.e30.e30".to_owned()),
        (
            "payload is not JSON",
            format!("{head}.{}.{signature}", URL_SAFE_NO_PAD.encode(b"\xff\xfenot json")),
        ),
        (
            "a 40 KB header (under the server's 64 KiB header limit, over the token limit)",
            format!(
                "{}.{payload}.{signature}",
                base64url_json(&json!({"alg": "RS256", "kid": "dev-key", "pad": "x".repeat(40_000)}))
            ),
        ),
        (
            "jku header pointing at an attacker's JWKS",
            signed_jwt(
                &json!({"alg": "RS256", "kid": "attacker", "jku": "http://127.0.0.1:1/jwks.json"}),
                &good,
                &k.other,
                Algorithm::RS256,
            ),
        ),
        (
            "jwk header embedding the attacker's key",
            signed_jwt(
                &json!({"alg": "RS256", "kid": "dev-key", "jwk": k.other_jwk}),
                &good,
                &k.other,
                Algorithm::RS256,
            ),
        ),
    ];

    let (status, _) = json(catalog_with(&server, &format!("Bearer {valid}")).await).await;
    assert_eq!(status, 200, "the control token is accepted");
    for (name, token) in &attacks {
        let response = catalog_with(&server, &format!("Bearer {token}")).await;
        let challenge = response.headers().get("www-authenticate").cloned();
        assert_eq!(response.status(), 401, "{name}: {}", response.text().await.unwrap());
        assert_eq!(challenge.unwrap(), r#"Bearer error="invalid_token""#, "{name}");
        problem(catalog_with(&server, &format!("Bearer {token}")).await, 401, "unauthenticated").await;
    }
    for header in ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", &format!("Token {valid}")] {
        problem(catalog_with(&server, header).await, 401, "unauthenticated").await;
    }
    let doubled = server
        .client()
        .get(server.url("/tool-catalog"))
        .header("authorization", format!("Bearer {valid}"))
        .header("authorization", "Bearer forged")
        .send()
        .await
        .unwrap();
    problem(doubled, 401, "unauthenticated").await;
    let missing = server.client().get(server.url("/tool-catalog")).send().await.unwrap();
    let body = problem(missing, 401, "unauthenticated").await;
    assert_eq!(body["detail"], "missing bearer token");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_are_required_and_named() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let no_catalog = server.token_for("a", "public", &["tester"], &["tools.invoke:write"]);
    let response = catalog_with(&server, &format!("Bearer {no_catalog}")).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="tools.query:catalog""#
    );
    let body = problem(response, 403, "insufficient_scope").await;
    assert_eq!(body["scope"], "tools.query:catalog");

    let no_invoke = server.token_for("a", "public", &["tester"], &["tools.query:catalog", "ads.write"]);
    let body =
        problem(server.invoke_as(&no_invoke, "util:echo", json!({})).await, 403, "insufficient_scope").await;
    assert_eq!(body["scope"], "tools.invoke:write");

    // The tool's own manifest scope.
    let no_ads = server.token_for("a", "public", &["tester"], &["tools.invoke:write"]);
    let args = json!({"name": "X", "budget": 5, "startDate": "2025-10-10"});
    let body =
        problem(server.invoke_as(&no_ads, "ads:createCampaign", args).await, 403, "insufficient_scope").await;
    assert_eq!(body["scope"], "ads.write");
    assert!(body["detail"].as_str().unwrap().contains("ads.write"));

    // `scope` as a space-separated string works as well as `scopes`.
    let k = keys(root.path());
    let claims =
        with(without(good_claims(), "scopes"), "scope", json!("tools.invoke:write tools.query:catalog"));
    let token = signed_jwt(&rs256("dev-key"), &claims, &k.dev, Algorithm::RS256);
    assert_eq!(json(server.invoke_as(&token, "util:echo", json!({})).await).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_denials_and_role_filtered_catalogs() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let scopes = ALL_SCOPES;
    let analyst = server.token_for("analyst-7", "public", &["analyst"], scopes);
    let finance = server.token_for("agent-1", "public", &["finance-write"], scopes);
    let nobody = server.token_for("nobody", "public", &[], scopes);

    let ids = |body: &Value| -> Vec<String> {
        body["tools"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    };
    let (_, body) = json(catalog_with(&server, &format!("Bearer {analyst}")).await).await;
    assert_eq!(ids(&body), ["ads:listCampaigns", "util:echo", "util:sha256"]);
    let (_, body) = json(catalog_with(&server, &format!("Bearer {finance}")).await).await;
    assert_eq!(
        ids(&body),
        ["ads:createCampaign", "ads:listCampaigns", "ads:myCampaigns", "util:echo", "util:sha256"]
    );
    let (_, body) = json(catalog_with(&server, &format!("Bearer {nobody}")).await).await;
    assert!(ids(&body).is_empty());

    let args = json!({"name": "LaunchX", "budget": 1200, "startDate": "2025-10-10"});
    let body =
        problem(server.invoke_as(&analyst, "ads:createCampaign", args.clone()).await, 403, "policy_denied")
            .await;
    assert_eq!(body["rule"], "rbac");
    assert!(body["reason"].as_str().unwrap().contains("ads:createCampaign"));

    let big = json!({"name": "Huge", "budget": 90000, "startDate": "2025-10-10"});
    let body =
        problem(server.invoke_as(&finance, "ads:createCampaign", big).await, 403, "policy_denied").await;
    assert_eq!(
        (body["rule"].as_str(), body["reason"].as_str()),
        (Some("budget-cap"), Some("budget above the per-campaign cap of 50000"))
    );

    let globex = server.token_for("agent-9", "globex", &["finance-write"], scopes);
    let body =
        problem(server.invoke_as(&globex, "ads:listCampaigns", json!({})).await, 403, "policy_denied").await;
    assert_eq!(body["rule"], "ads-tenants");
    let (_, catalog) = json(catalog_with(&server, &format!("Bearer {globex}")).await).await;
    assert!(
        ids(&catalog).contains(&"ads:listCampaigns".to_owned()),
        "argument and tenant rules do not hide tools"
    );

    assert_eq!(json(server.invoke_as(&analyst, "ads:listCampaigns", json!({})).await).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_reload_swaps_whole_and_keeps_the_last_good_policy() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.root = root.path().to_path_buf();
    let state = fastmcp_host::AppState::start(config).await.unwrap();
    let tools = |state: &fastmcp_host::AppState| state.policy().version;
    assert_eq!(tools(&state), 1);

    root.write("policies/policies.yml", "version: 1\nroles:\n  analyst: { tools: [\"util:*\"] }\n");
    assert_eq!(state.reload_policies().await.unwrap(), 2);
    let analyst = fastmcp_host::Principal {
        sub: "a".into(),
        tenant: "public".into(),
        roles: vec!["analyst".into()],
        scopes: vec![],
    };
    assert!(!state.policy().policy.grants(&analyst, "ads:listCampaigns"));
    assert!(state.policy().policy.grants(&analyst, "util:echo"));

    root.write(
        "policies/policies.yml",
        "version: 1\nrules: [{ id: broken, tools: ['*'], when: 'args.x >', effect: deny }]\n",
    );
    let error = state.reload_policies().await.unwrap_err().to_string();
    assert!(error.contains("rule `broken`"), "{error}");
    assert_eq!(state.policy().version, 2, "the previous policy stays in force");
    assert!(state.policy().policy.grants(&analyst, "util:echo"));
    let last = state.last_policy_reload().unwrap();
    assert!(!last.ok && last.error.unwrap().contains("broken"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_from_a_jwks_file_with_es256() {
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePrivateKey as _;
    let signing = SigningKey::random(&mut rand::thread_rng());
    let point = signing.verifying_key().to_encoded_point(false);
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    }]});
    let root = TestRoot::new();
    root.write("idp/jwks.json", serde_json::to_vec(&jwks).unwrap());
    let mut config = root.config();
    config.auth.jwks_file = Some(root.path().join("idp/jwks.json"));
    let server = TestServer::start_with(config).await;
    assert!(!root.path().join(".runtime/dev-private.pem").exists(), "no development keys with a JWKS");

    let pem = signing.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let token = signed_jwt(&json!({"alg": "ES256", "kid": "ec-1"}), &good_claims(), &key, Algorithm::ES256);
    assert_eq!(json(server.invoke_as(&token, "util:echo", json!({})).await).await.0, 200);
    // The configured JWKS replaces the development keys.
    problem(server.invoke("util:echo", json!({})).await, 401, "unauthenticated").await;
    // ES256 header, but HS256-signed with the public point as secret.
    let forged = signed_jwt(
        &json!({"alg": "HS256", "kid": "ec-1"}),
        &good_claims(),
        &EncodingKey::from_secret(point.as_bytes()),
        Algorithm::HS256,
    );
    problem(server.invoke_as(&forged, "util:echo", json!({})).await, 401, "unauthenticated").await;
    server.stop().await;
}

/// A JWKS endpoint on loopback whose document can be swapped, counting fetches.
struct JwksServer {
    url: String,
    document: std::sync::Arc<std::sync::Mutex<Value>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    async fn start(document: Value) -> Self {
        use std::sync::atomic::Ordering;
        let document = std::sync::Arc::new(std::sync::Mutex::new(document));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (doc, count) = (doc.clone(), count.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    axum::Json(doc.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, document, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn rsa_key(kid: &str) -> (EncodingKey, Value) {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwk = json!({
        "kty": "RSA", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    });
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    (EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), jwk)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwks_url_is_refetched_when_keys_rotate() {
    let (key_a, jwk_a) = rsa_key("a");
    let (key_b, jwk_b) = rsa_key("b");
    let jwks = JwksServer::start(json!({"keys": [jwk_a]})).await;
    let root = TestRoot::new();
    let mut config = root.config();
    config.auth.jwks_url = Some(jwks.url.clone());
    config.auth.jwks_refetch_interval = std::time::Duration::ZERO;
    let server = TestServer::start_with(config).await;
    assert_eq!(jwks.fetches(), 1, "fetched at startup");

    let token_a = signed_jwt(&rs256("a"), &good_claims(), &key_a, Algorithm::RS256);
    let token_b = signed_jwt(&rs256("b"), &good_claims(), &key_b, Algorithm::RS256);
    assert_eq!(json(server.invoke_as(&token_a, "util:echo", json!({})).await).await.0, 200);
    problem(server.invoke_as(&token_b, "util:echo", json!({})).await, 401, "unauthenticated").await;
    assert_eq!(jwks.fetches(), 2, "an unknown kid triggers a refetch");

    *jwks.document.lock().unwrap() = json!({"keys": [jwk_b]});
    assert_eq!(json(server.invoke_as(&token_b, "util:echo", json!({})).await).await.0, 200);
    assert_eq!(jwks.fetches(), 3);
    assert_eq!(json(server.invoke_as(&token_b, "util:echo", json!({})).await).await.0, 200);
    assert_eq!(jwks.fetches(), 3, "a verified token is cached");
    // Key `a` is gone from the set: its cached verification must not survive.
    problem(server.invoke_as(&token_a, "util:echo", json!({})).await, 401, "unauthenticated").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kids_cannot_hammer_the_jwks_endpoint() {
    let (_, jwk_a) = rsa_key("a");
    let (key_x, _) = rsa_key("x");
    let jwks = JwksServer::start(json!({"keys": [jwk_a]})).await;
    let root = TestRoot::new();
    let mut config = root.config();
    config.auth.jwks_url = Some(jwks.url.clone());
    let server = TestServer::start_with(config).await;
    for i in 0..20 {
        let token = signed_jwt(&rs256(&format!("x{i}")), &good_claims(), &key_x, Algorithm::RS256);
        problem(server.invoke_as(&token, "util:echo", json!({})).await, 401, "unauthenticated").await;
    }
    assert_eq!(jwks.fetches(), 1, "refetches are rate-limited (default: one per 5 s)");
    server.stop().await;
}
