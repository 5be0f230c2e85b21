//! Token brokering and outbound HTTP: a real development
//! upstream (OAuth token endpoint + Ads API) on loopback, the real server,
//! real sandboxes.

use crate::harness::{TestRoot, TestServer, TestUpstream, audit_records, campaign, json, problem};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A root on `upstream` with the netprobe and offline fixtures.
fn probe_root(upstream: &TestUpstream) -> TestRoot {
    let root = TestRoot::with_upstream(upstream);
    root.add_fixture("netprobe", upstream.addr);
    root.add_fixture("offline", upstream.addr);
    root
}

/// The `egress` events of the last audit record for `correlation_id`.
fn egress_events(root: &TestRoot, correlation_id: &str) -> Vec<Value> {
    audit_records(root.path())
        .into_iter()
        .filter(|r| r["correlation_id"] == correlation_id)
        .filter_map(|r| r["detail"]["egress"]["events"].as_array().cloned())
        .next_back()
        .unwrap_or_default()
}

/// What the development upstream's `/_dev/echo` saw, from a `fetch` result.
fn echo_of(body: &Value) -> Value {
    serde_json::from_str(body["result"]["body"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_walkthrough_reaches_the_ads_api_with_a_credential_the_plugin_never_saw() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;

    let (status, pending) = json(server.invoke("ads:createCampaign", campaign()).await).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(upstream.stats().await["authorized_requests"], 0, "nothing is created before confirmation");
    let (status, done) = json(server.confirm(&pending["action_token"], campaign()).await).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["result"]["name"], "LaunchX");
    assert_eq!(done["result"]["status"], "scheduled");
    assert!(done["result"]["id"].as_str().unwrap().starts_with("cmp_"), "{done}");

    // The upstream accepted the injected bearer token, and lists the campaign.
    assert_eq!(upstream.stats().await["authorized_requests"], 1);
    let (status, listed) = json(server.invoke("ads:listCampaigns", json!({"limit": 5})).await).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["result"]["campaigns"][0]["id"], done["result"]["id"]);

    // The confirm record names the injection by fingerprint only.
    let events = egress_events(&root, done["correlation_id"].as_str().unwrap());
    let inject = events.iter().find(|e| e["kind"] == "inject").expect("an inject event");
    assert_eq!(inject["provider"], "ads-api");
    assert_eq!(inject["origin"], format!("http://{}", upstream.addr));
    let token = upstream.upstream.issued_tokens().pop().unwrap();
    assert_eq!(
        inject["fingerprint"],
        fastmcp_host::broker::fingerprint(&fastmcp_host::broker::providers::Secret::new(
            token.expose().to_owned()
        ))
    );
    assert!(events.iter().any(|e| e["kind"] == "request" && e["status"] == 201), "{events:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_token_answers_only_within_the_grant() {
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    let server = TestServer::start(&root).await;

    let granted = json!({"provider": "ads-api", "scopes": ["campaigns.read"]});
    let (status, body) = json(server.invoke("netprobe:token", granted).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["granted"], true, "{body}");
    assert!(body["result"]["expires_in_s"].as_u64().unwrap() > 0);
    let token = upstream.upstream.issued_tokens().pop().unwrap();
    assert_eq!(
        body["result"]["fingerprint"],
        fastmcp_host::broker::fingerprint(&fastmcp_host::broker::providers::Secret::new(
            token.expose().to_owned()
        ))
    );
    let events = egress_events(&root, body["correlation_id"].as_str().unwrap());
    assert_eq!(events[0]["kind"], "token");
    assert_eq!(events[0]["fingerprint"], body["result"]["fingerprint"]);

    for (ask, why) in [
        (
            json!({"provider": "ads-api", "scopes": ["campaigns.write"]}),
            "scope `campaigns.write` is not granted",
        ),
        (json!({"provider": "payments", "scopes": []}), "provider `payments` is not granted"),
    ] {
        let (status, body) = json(server.invoke("netprobe:token", ask).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["error"], "not-granted", "{body}");
        assert!(body["result"]["reason"].as_str().unwrap().contains(why), "{body}");
        let events = egress_events(&root, body["correlation_id"].as_str().unwrap());
        assert_eq!(events[0]["kind"], "token_refused", "{events:?}");
    }
    // A plugin without grants gets nothing, even for a configured provider.
    let ask = json!({"provider": "ads-api", "scopes": ["campaigns.read"]});
    let (_, body) = json(server.invoke("offline:token", ask).await).await;
    assert_eq!(body["result"]["error"], "not-granted", "{body}");
    assert_eq!(upstream.stats().await["token_requests"], 1, "refusals never reach the provider");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_injects_the_credential_and_the_plugin_cannot_set_it() {
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    let server = TestServer::start(&root).await;
    let url = format!("http://{}/v1/campaigns", upstream.addr);

    // Injected by the host: the upstream accepts the request.
    let (_, body) = json(server.invoke("netprobe:fetch", json!({ "url": url })).await).await;
    assert_eq!(body["result"]["status"], 200, "{body}");
    assert!(!body["result"]["body"].as_str().unwrap().contains("dev_at_"), "{body}");
    // The upstream received exactly the brokered token.
    let echo = json!({ "url": format!("http://{}/_dev/echo", upstream.addr) });
    let (_, body) = json(server.invoke("netprobe:fetch", echo).await).await;
    let echoed = echo_of(&body);
    let token = upstream.upstream.issued_tokens().pop().unwrap();
    assert_eq!(
        echoed["credentials"]["authorization"],
        fastmcp_host::broker::fingerprint(&fastmcp_host::broker::providers::Secret::new(
            token.expose().to_owned()
        )),
        "{echoed}"
    );

    // Set by the plugin: refused inside the sandbox before any request.
    let before = upstream.stats().await;
    for header in ["authorization", "Authorization"] {
        let forged = json!({ "url": url, "headers": { header: "Bearer forged" } });
        let (_, body) = json(server.invoke("netprobe:fetch", forged).await).await;
        let error = body["result"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("header refused") && error.contains("Forbidden"), "{body}");
    }
    assert_eq!(upstream.stats().await, before, "no forged request reached the upstream");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_outside_the_allowlist_are_denied() {
    let upstream = TestUpstream::start().await;
    let other = TestUpstream::start().await;
    let root = probe_root(&upstream);
    let server = TestServer::start(&root).await;

    for url in [
        format!("http://{}/v1/campaigns", other.addr), // another port on the same host
        format!("http://localhost:{}/v1/campaigns", upstream.addr.port()), // the same server by name
        format!("https://{}/v1/campaigns", upstream.addr), // another scheme
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://example.com/".to_owned(),
    ] {
        let (_, body) = json(server.invoke("netprobe:fetch", json!({ "url": url })).await).await;
        assert_eq!(body["result"]["denied"], true, "{url}: {body}");
        let events = egress_events(&root, body["correlation_id"].as_str().unwrap());
        assert_eq!(events[0]["kind"], "denied", "{url}: {events:?}");
        assert!(events[0]["reason"].as_str().unwrap().contains("network.allow"), "{events:?}");
    }
    let stats = other.stats().await;
    assert_eq!(
        (stats["authorized_requests"].as_u64(), stats["rejected_requests"].as_u64()),
        (Some(0), Some(0))
    );

    // As a tool error, the message names the denied host.
    let strict = json!({ "url": format!("http://{}/x", other.addr), "strict": true });
    let body = problem(server.invoke("netprobe:fetch", strict).await, 502, "tool_failed").await;
    assert!(body["detail"].as_str().unwrap().contains(&other.addr.to_string()), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_without_network_allow_has_no_network() {
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    let server = TestServer::start(&root).await;
    let url = format!("http://{}/v1/campaigns", upstream.addr);
    let (_, body) = json(server.invoke("offline:fetch", json!({ "url": url })).await).await;
    assert_eq!(body["result"]["denied"], true, "{body}");
    let events = egress_events(&root, body["correlation_id"].as_str().unwrap());
    assert!(events[0]["reason"].as_str().unwrap().contains("allows no network"), "{events:?}");
    let stats = upstream.stats().await;
    assert_eq!(
        (stats["authorized_requests"].as_u64(), stats["rejected_requests"].as_u64()),
        (Some(0), Some(0))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_token_fetch_serves_many_concurrent_calls() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;
    let calls = join_all((0..16).map(|_| server.invoke("ads:listCampaigns", json!({}))));
    for response in calls.await {
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "{body}");
    }
    let stats = upstream.stats().await;
    assert_eq!(stats["token_requests"], 1, "{stats}");
    assert_eq!(stats["authorized_requests"], 16, "{stats}");
    let metrics = server.metrics().await;
    assert!(metrics.contains("fastmcp_provider_token_fetches_total 1"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_down_or_upstream_5xx_is_an_upstream_error() {
    // Token endpoint unreachable: nothing listens on this port.
    let closed: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let root = TestRoot::with_provider_at(closed, "irrelevant-secret");
    let server = TestServer::start(&root).await;
    let body = problem(server.invoke("ads:listCampaigns", json!({})).await, 502, "upstream_error").await;
    assert!(body["detail"].as_str().unwrap().contains("Ads API"), "{body}");
    server.stop().await;

    // The API answers 503.
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;
    upstream.fail_next(503, 1).await;
    let body = problem(server.invoke("ads:listCampaigns", json!({})).await, 502, "upstream_error").await;
    assert!(body["detail"].as_str().unwrap().contains("503"), "{body}");
    let (status, _) = json(server.invoke("ads:listCampaigns", json!({})).await).await;
    assert_eq!(status, 200, "the next call succeeds");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_secrets_appear_nowhere_in_logs_or_audit() {
    use crate::harness::{ALL_SCOPES, ServerProcess, mint};
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    // Debug logs: the most the host ever writes about a call.
    let mut server = ServerProcess::start(&root, "debug", &["--no-watch"]).await;
    let base = format!("http://{}", server.addr);
    let bearer = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client.post(format!("{base}{path}")).bearer_auth(&bearer).json(&body).send()
    };

    let pending: Value =
        post("/tools/ads:createCampaign/invoke", campaign()).await.unwrap().json().await.unwrap();
    let mut confirm = campaign();
    confirm["action_token"] = pending["action_token"].clone();
    let done = post("/tools/ads:createCampaign/confirm", confirm).await.unwrap();
    assert_eq!(done.status(), 200);
    let token = json!({"provider": "ads-api", "scopes": ["campaigns.read"]});
    let probed: Value = post("/tools/netprobe:token/invoke", token).await.unwrap().json().await.unwrap();
    assert_eq!(probed["result"]["granted"], true, "{probed}");
    // A plugin that logs and returns its token: the host redacts both.
    let leak = json!({"provider": "ads-api", "scopes": ["campaigns.read"]});
    let leaked: Value = post("/tools/netprobe:leak/invoke", leak).await.unwrap().json().await.unwrap();
    assert_eq!(leaked["result"]["token"], "[redacted credential]", "{leaked}");
    let forged = json!({"url": format!("http://{}/v1/campaigns", upstream.addr), "headers": {"authorization": "Bearer forged-by-plugin"}});
    assert_eq!(post("/tools/netprobe:fetch/invoke", forged).await.unwrap().status(), 200);

    server.signal("-TERM");
    let status = server.child.wait().await.unwrap();
    assert!(status.success());
    let logs = server.logs.await.unwrap().join("\n");
    let mut audit = String::new();
    for entry in std::fs::read_dir(root.path().join(".audit")).unwrap() {
        audit.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(
        logs.contains("fetched a provider token") && audit.contains("\"inject\""),
        "the calls were logged and audited"
    );
    assert!(
        logs.contains("leaking the token [redacted credential]"),
        "the plugin's log line is kept, redacted"
    );

    let tokens = upstream.upstream.issued_tokens();
    assert_eq!(tokens.len(), 2, "one token for the injection scopes, one for get-token");
    let mut secrets: Vec<String> = tokens.iter().map(|t| t.expose().to_owned()).collect();
    secrets.push(upstream.secret.expose().to_owned());
    secrets.push(bearer.clone());
    secrets.push(bearer.split('.').nth(2).unwrap().to_owned()); // the JWT signature alone
    secrets.push(pending["action_token"].as_str().unwrap().to_owned());
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        assert!(!audit.contains(secret.as_str()), "a secret is in the audit trail");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_key_is_injected_into_its_header_and_never_handed_out() {
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    root.add_fixture("keyprobe", upstream.addr);
    root.write(".runtime/maps-key", "static-maps-key-0123456789");
    let providers = std::fs::read_to_string(root.path().join(".runtime/providers.yml")).unwrap();
    root.write(
        ".runtime/providers.yml",
        format!(
            "{providers}  maps:\n    kind: static\n    secret: {{ file: maps-key }}\n    plugins: [keyprobe]\n    origins: [\"http://localhost:{}\"]\n    allow_http: true\n",
            upstream.addr.port()
        ),
    );
    let server = TestServer::start(&root).await;
    let key = fastmcp_host::broker::providers::Secret::new("static-maps-key-0123456789".into());

    // To the inject host (`localhost`), the host adds `x-api-key`.
    let url = format!("http://localhost:{}/_dev/echo", upstream.addr.port());
    let (_, body) = json(server.invoke("keyprobe:fetch", json!({ "url": url })).await).await;
    assert_eq!(body["result"]["status"], 200, "{body}");
    let echoed = echo_of(&body);
    assert_eq!(echoed["credentials"]["x-api-key"], fastmcp_host::broker::fingerprint(&key), "{echoed}");
    assert!(echoed["credentials"].get("authorization").is_none(), "{echoed}");

    // To another allowed host, nothing is added; and the plugin cannot set it.
    let url = format!("http://{}/_dev/echo", upstream.addr);
    let (_, body) = json(server.invoke("keyprobe:fetch", json!({ "url": url })).await).await;
    let echoed = echo_of(&body);
    assert_eq!(echoed["credentials"], json!({}), "{echoed}");
    let forged = json!({ "url": url, "headers": { "x-api-key": "forged" } });
    let (_, body) = json(server.invoke("keyprobe:fetch", forged).await).await;
    assert!(body["result"]["error"].as_str().unwrap().contains("Forbidden"), "{body}");

    // get-token never hands a static key to the plugin.
    let (_, body) =
        json(server.invoke("keyprobe:token", json!({"provider": "maps", "scopes": []})).await).await;
    assert_eq!(body["result"]["error"], "not-granted", "{body}");
    assert!(body["result"]["reason"].as_str().unwrap().contains("static key"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_providers_file_and_keeps_the_last_good() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;
    let list = || async { json(server.invoke("ads:listCampaigns", json!({})).await).await.0 };
    assert_eq!(list().await, 200);
    let providers = std::fs::read_to_string(root.path().join(".runtime/providers.yml")).unwrap();

    // A broken file, and one that drops a provider a manifest grants: both
    // rejected, the current providers (and their cached token) stay.
    root.write(".runtime/providers.yml", "providers:\n  ads-api:\n    kind: static\n    secret: inline\n");
    server.state.reload_all().await;
    root.write(".runtime/providers.yml", "providers: {}\n");
    server.state.reload_all().await;
    let error = server.state.last_reload().unwrap().error.unwrap();
    assert!(error.contains("no provider `ads-api` is configured"), "{error}");
    // It names the file it read.
    assert!(
        error.contains("(configured: none; from ") && error.contains(".runtime/providers.yml)"),
        "{error}"
    );
    assert_eq!(list().await, 200);
    assert_eq!(upstream.stats().await["token_requests"], 1);

    // A rotated (here: wrong) client secret takes effect at once: new broker,
    // empty token cache, and the provider refuses it.
    root.write(".runtime/ads-client-secret", "rotated-but-wrong");
    root.write(".runtime/providers.yml", &providers);
    server.state.reload_all().await;
    assert_eq!(list().await, 502);
    root.write(".runtime/ads-client-secret", upstream.secret.expose());
    server.state.reload_all().await;
    assert_eq!(list().await, 200);

    let records = audit_records(root.path());
    let reloads: Vec<&Value> = records.iter().filter(|r| r["event"] == "providers.reload").collect();
    let decisions: Vec<&str> = reloads.iter().map(|r| r["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["rejected", "loaded", "loaded", "loaded"]);
    let audit = serde_json::to_string(&records).unwrap();
    assert!(!audit.contains(upstream.secret.expose()) && !audit.contains("rotated-but-wrong"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_response_bodies_are_capped() {
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    let mut config = root.config();
    config.outbound.max_response_body_bytes = 32;
    config.outbound.max_request_body_bytes = 64;
    let server = TestServer::start_with(config).await;
    let stats = format!("http://{}/_dev/stats", upstream.addr);
    assert!(upstream.stats().await.to_string().len() > 32, "the stats document is over the cap");

    let (_, body) = json(server.invoke("netprobe:fetch", json!({ "url": stats })).await).await;
    let error = body["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("response body size exceeds limit: 32 bytes"), "{body}");

    let big = json!({ "url": format!("http://{}/v1/campaigns", upstream.addr), "method": "POST", "body": "x".repeat(1000) });
    let (_, body) = json(server.invoke("netprobe:fetch", big).await).await;
    let error = body["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("HttpRequestBodySize(Some(64))"), "{body}");
    assert_eq!(upstream.stats().await["authorized_requests"], 0, "the oversized request never completed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_certificates_are_verified() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A TLS server with a self-signed certificate for `localhost`: no
    // webpki root vouches for it, so the host must refuse the connection.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (connections, handshakes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    tokio::spawn({
        let (connections, handshakes) = (connections.clone(), handshakes.clone());
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                if acceptor.accept(stream).await.is_ok() {
                    handshakes.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });

    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    root.write(
        "manifests/tlsprobe.yaml",
        "plugin: tlsprobe\nversion: 0.1.0\ncomponent: plugins/netprobe/netprobe.wasm\nnetwork: { allow: [\"https://localhost:*\"] }\ntools:\n  - name: fetch\n    input_schema: { type: object }\n",
    );
    let server = TestServer::start(&root).await;
    let url = format!("https://localhost:{port}/");
    let (_, body) = json(server.invoke("tlsprobe:fetch", json!({ "url": url })).await).await;
    let error = body["result"]["error"].as_str().unwrap_or_default();
    assert_eq!(body["result"]["denied"], false, "allowed, then refused by TLS: {body}");
    assert!(error.contains("TlsCertificateError"), "{body}");
    assert!(connections.load(Ordering::SeqCst) >= 1, "the host did connect");
    assert_eq!(handshakes.load(Ordering::SeqCst), 0, "no TLS session with an unverified certificate");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_that_stalls_mid_body_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Sends the head and 10 of 100 promised bytes, then goes silent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalling = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789").await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            });
        }
    });
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    root.add_fixture("netprobe", stalling);
    root.bind_origin(stalling);
    let mut config = root.config();
    config.outbound.between_bytes_timeout = std::time::Duration::from_millis(300);
    let server = TestServer::start_with(config).await;

    let url = format!("http://{stalling}/");
    let (status, body) = json(server.invoke("netprobe:fetch", json!({ "url": url })).await).await;
    assert_eq!(status, 200, "the plugin gets the error well before its 3 s deadline: {body}");
    let error = body["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("read timeout"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ads_plugin_reports_a_denied_host_by_name() {
    let upstream = TestUpstream::start().await;
    let elsewhere = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    // The API URL points somewhere the manifest's allowlist does not name.
    let manifest = std::fs::read_to_string(root.path().join("manifests/ads.yaml")).unwrap();
    let moved = manifest.replace(
        &format!("api_url: http://{}", upstream.addr),
        &format!("api_url: http://{}", elsewhere.addr),
    );
    assert_ne!(manifest, moved);
    root.write("manifests/ads.yaml", moved);
    let server = TestServer::start(&root).await;
    let body = problem(server.invoke("ads:listCampaigns", json!({})).await, 502, "tool_failed").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("http://{}", elsewhere.addr)) && detail.contains("denied"), "{body}");
    let stats = elsewhere.stats().await;
    assert_eq!(
        (stats["authorized_requests"].as_u64(), stats["rejected_requests"].as_u64()),
        (Some(0), Some(0))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn granting_network_in_a_manifest_takes_effect_on_reload() {
    let upstream = TestUpstream::start().await;
    let root = probe_root(&upstream);
    let server = TestServer::start(&root).await;
    let url = format!("http://{}/_dev/echo", upstream.addr);
    let fetch = || async { json(server.invoke("offline:fetch", json!({ "url": url })).await).await.1 };
    assert_eq!(fetch().await["result"]["denied"], true);

    // The tool author adds the upstream to `network.allow`, with a grant.
    let manifest = std::fs::read_to_string(root.path().join("manifests/offline.yaml")).unwrap();
    let granted = manifest.replace(
        "tools:\n",
        &format!(
            "network: {{ allow: [\"http://{0}\"] }}\ncredentials:\n  - provider: ads-api\n    scopes: [campaigns.read]\n    inject: {{ host: \"{0}\", header: authorization }}\ntools:\n",
            upstream.addr
        ),
    );
    root.write("manifests/offline.yaml", granted);
    let body = crate::harness::eventually(
        "the reloaded manifest to grant the network",
        std::time::Duration::from_secs(5),
        || async { Some(fetch().await).filter(|body| body["result"]["status"] == 200) },
    )
    .await;
    let echoed = echo_of(&body);
    assert!(echoed["credentials"]["authorization"].as_str().unwrap().starts_with("sha256:"), "{echoed}");
    server.stop().await;
}
