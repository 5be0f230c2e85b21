//! Pooled outbound connections, still under the host's rules: the upstream
//! sees far fewer connections than requests; a kept connection serves only
//! the origin and address it was opened for; credentials stay per request
//! (two plugins with different providers on one origin, over shared
//! connections, each send only their own); `outbound.ca_file` trusts its CA
//! and nothing more; a DNS answer is cached within its TTL and, once it
//! changes to an address the operator did not allow, refused although a
//! connection to the old address is kept — all against the development
//! upstream (and a DNS server) on loopback, over HTTP/1.1 and over HTTPS
//! with HTTP/2 (ALPN).

use crate::harness::{TestRoot, TestServer, TestUpstream, json};
use fastmcp_dev_upstream::tls::DevCa;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// A `netprobe` plugin named `name` that may reach `allow` (no credentials).
fn probe(name: &str, allow: &[String]) -> String {
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "plugin: {name}\nversion: 0.1.0\ncomponent: plugins/netprobe/netprobe.wasm\nlimits: {{ memory_mb: 32, timeout_ms: 5000 }}\nnetwork: {{ allow: [{}] }}\ntools:\n  - name: fetch\n    input_schema: {{ type: object }}\n",
        allow.join(", ")
    )
}

/// `plugin:fetch` of `url`: the upstream's answer (`/_dev/echo`'s JSON).
async fn fetch(server: &TestServer, plugin: &str, url: &str) -> Value {
    let (status, body) = json(server.invoke(&format!("{plugin}:fetch"), json!({ "url": url })).await).await;
    assert_eq!((status, &body["result"]["status"]), (200, &json!(200)), "{url}: {body}");
    serde_json::from_str(body["result"]["body"].as_str().unwrap()).unwrap()
}

fn connections(upstream: &TestUpstream) -> u64 {
    upstream.upstream.stats.connections.load(Ordering::Relaxed)
}

/// A root whose `probe` plugin may reach `target` by address and as `localhost`.
fn probe_root(target: SocketAddr) -> TestRoot {
    let root = TestRoot::new();
    root.write(
        "manifests/probe.yaml",
        probe("probe", &[format!("http://{target}"), format!("http://localhost:{}", target.port())]),
    );
    root
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_sees_far_fewer_connections_than_requests() {
    let target = TestUpstream::start().await;
    let server = TestServer::start(&probe_root(target.addr)).await;
    let url = format!("http://{}/_dev/echo", target.addr);
    for _ in 0..20 {
        fetch(&server, "probe", &url).await;
    }
    assert_eq!(connections(&target), 1, "20 sequential requests over one kept connection");
    server.stop().await;

    // The same with pooling off: a connection per request.
    let target = TestUpstream::start().await;
    let root = probe_root(target.addr);
    let mut config = root.config();
    config.outbound.pool_idle_per_origin = 0;
    let server = TestServer::start_with(config).await;
    let url = format!("http://{}/_dev/echo", target.addr);
    for _ in 0..5 {
        fetch(&server, "probe", &url).await;
    }
    assert_eq!(connections(&target), 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_connection_serves_only_its_own_origin() {
    // `127.0.0.1:P` and `localhost:P` reach the same address: two origins,
    // so two connections, each reused only for its own.
    let target = TestUpstream::start().await;
    let server = TestServer::start(&probe_root(target.addr)).await;
    let by_address = format!("http://{}/_dev/echo", target.addr);
    let by_name = format!("http://localhost:{}/_dev/echo", target.addr.port());
    for _ in 0..5 {
        fetch(&server, "probe", &by_address).await;
        fetch(&server, "probe", &by_name).await;
    }
    assert_eq!(connections(&target), 2, "one connection per origin, whatever the order of calls");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_stay_per_request_on_shared_connections() {
    // Two plugins, two providers, one origin: the OAuth token of `ads-api`
    // for `netprobe`, a static key of `maps` for `keyprobe`, both injected
    // into requests to `localhost:P`.
    let upstream = TestUpstream::start().await;
    let port = upstream.addr.port();
    let root = TestRoot::with_upstream(&upstream);
    root.write(
        "manifests/netprobe.yaml",
        format!(
            "plugin: netprobe\nversion: 0.1.0\ncomponent: plugins/netprobe/netprobe.wasm\nlimits: {{ memory_mb: 32, timeout_ms: 5000 }}\nnetwork: {{ allow: [\"http://localhost:{port}\"] }}\ncredentials:\n  - provider: ads-api\n    scopes: [campaigns.read]\n    inject: {{ host: localhost, header: authorization }}\ntools:\n  - name: fetch\n    input_schema: {{ type: object }}\n"
        ),
    );
    root.add_fixture("keyprobe", upstream.addr);
    root.write(".runtime/maps-key", "static-maps-key-0123456789");
    let providers = std::fs::read_to_string(root.path().join(".runtime/providers.yml")).unwrap();
    let providers = providers.replacen("origins: [", &format!("origins: [\"http://localhost:{port}\", "), 1);
    root.write(
        ".runtime/providers.yml",
        format!(
            "{providers}  maps:\n    kind: static\n    secret: {{ file: maps-key }}\n    plugins: [keyprobe]\n    origins: [\"http://localhost:{port}\"]\n    allow_http: true\n"
        ),
    );
    let server = TestServer::start(&root).await;
    let key = fastmcp_host::broker::providers::Secret::new("static-maps-key-0123456789".into());
    let url = format!("http://localhost:{port}/_dev/echo");
    let mut tokens = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let oauth = fetch(&server, "netprobe", &url).await;
        assert!(oauth["credentials"].get("x-api-key").is_none(), "{oauth}");
        tokens.insert(oauth["credentials"]["authorization"].as_str().expect("its token").to_owned());
        let keyed = fetch(&server, "keyprobe", &url).await;
        assert_eq!(
            keyed["credentials"],
            json!({ "x-api-key": fastmcp_host::broker::fingerprint(&key) }),
            "{keyed}"
        );
    }
    assert_eq!(tokens.len(), 1, "the cached token, on every netprobe request");
    let opened = connections(&upstream);
    assert!(opened <= 3, "token endpoint and API over a few kept connections, not {opened}");
    server.stop().await;
}

/// A development upstream serving HTTPS with a certificate from a CA of
/// its own; that CA's certificate, PEM.
async fn tls_upstream() -> (TestUpstream, String) {
    let ca = DevCa::generate(&["localhost", "127.0.0.1"]).unwrap();
    let upstream = TestUpstream::start_tls(ca.server.clone()).await;
    (upstream, ca.ca_pem)
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_file_trusts_its_own_ca_and_nothing_more() {
    let (trusted, ca_pem) = tls_upstream().await;
    let (stranger, _) = tls_upstream().await;
    let root = TestRoot::new();
    root.write(".runtime/private-ca.pem", ca_pem);
    root.write("manifests/probe.yaml", probe("probe", &["https://localhost:*".to_owned()]));
    let mut config = root.config();
    config.outbound.ca_file = Some(".runtime/private-ca.pem".into());
    let server = TestServer::start_with(config).await;

    let url = format!("https://localhost:{}/_dev/echo", trusted.addr.port());
    for _ in 0..5 {
        fetch(&server, "probe", &url).await;
    }
    assert_eq!(connections(&trusted), 1, "one HTTP/2 connection (ALPN), shared by every request");

    let url = format!("https://localhost:{}/_dev/echo", stranger.addr.port());
    let (_, body) = json(server.invoke("probe:fetch", json!({ "url": url })).await).await;
    let error = body["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("TlsCertificateError"), "another CA's certificate is refused: {body}");
    server.stop().await;

    // The bundle is added to the public roots unless `ca_file_only`; either
    // way a file that is not a PEM bundle stops the host at start.
    let root = TestRoot::new();
    root.write(".runtime/not-a-bundle.pem", "hello");
    let mut config = root.config();
    config.outbound.ca_file = Some(".runtime/not-a-bundle.pem".into());
    let error = match fastmcp_host::AppState::start(config).await {
        Ok(_) => panic!("the host started with a CA file that holds no certificate"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("outbound.ca_file") && error.contains("not-a-bundle.pem"), "{error}");
}

/// A DNS server on loopback that answers every `A` question with the
/// address it currently holds (TTL 1 s) and counts the `A` questions.
struct StubDns {
    addr: SocketAddr,
    answer: std::sync::Arc<std::sync::Mutex<std::net::Ipv4Addr>>,
    questions: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StubDns {
    async fn start(answer: std::net::Ipv4Addr) -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let answer = std::sync::Arc::new(std::sync::Mutex::new(answer));
        let questions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (current, asked) = (answer.clone(), questions.clone());
        tokio::spawn(async move {
            let mut query = [0u8; 512];
            while let Ok((len, peer)) = socket.recv_from(&mut query).await {
                // Header (12 bytes), then one question: labels, 0, type, class.
                let mut end = 12;
                while end < len && query[end] != 0 {
                    end += 1 + query[end] as usize;
                }
                let question_end = end + 5;
                if question_end > len {
                    continue;
                }
                let is_a = query[end + 1..end + 3] == [0, 1];
                let mut reply = Vec::with_capacity(64);
                reply.extend_from_slice(&query[..2]); // id
                reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
                reply.extend_from_slice(&query[12..question_end]);
                if is_a {
                    asked.fetch_add(1, Ordering::SeqCst);
                    let ip = *current.lock().unwrap();
                    // The name by pointer to the question, A, IN, TTL 1, 4 bytes.
                    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]);
                    reply.extend_from_slice(&ip.octets());
                }
                let _ = socket.send_to(&reply, peer).await;
            }
        });
        Self { addr, answer, questions }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_dns_answer_is_checked_again_and_never_reaches_a_kept_connection() {
    let target = TestUpstream::start().await;
    let dns = StubDns::start("127.0.0.1".parse().unwrap()).await;
    let root = TestRoot::new();
    let name = format!("api.rebind.test:{}", target.addr.port());
    root.write("manifests/probe.yaml", probe("probe", &[format!("http://{name}")]));
    let mut config = root.config();
    config.outbound.dns_server = Some(dns.addr);
    // The operator allows 127.0.0.1 only.
    config.outbound.allow_internal = vec!["127.0.0.1/32".parse().unwrap()];
    let server = TestServer::start_with(config).await;
    let url = format!("http://{name}/_dev/echo");
    for _ in 0..5 {
        fetch(&server, "probe", &url).await;
    }
    assert_eq!(dns.questions.load(Ordering::SeqCst), 1, "answered from the cache within its TTL");
    assert_eq!(connections(&target), 1);

    // The name now leads to 127.0.0.2, which the operator did not allow;
    // once the answer's TTL has passed, the request is refused, although a
    // connection to 127.0.0.1 for this very origin is kept.
    *dns.answer.lock().unwrap() = "127.0.0.2".parse().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = json(server.invoke("probe:fetch", json!({ "url": url })).await).await;
    assert_eq!((status, &body["result"]["denied"]), (200, &json!(true)), "{body}");
    let error = body["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("DestinationIpProhibited"), "refused by the address check: {body}");
    assert_eq!(dns.questions.load(Ordering::SeqCst), 2, "asked again after the TTL");
    assert_eq!(connections(&target), 1, "the kept connection was not used");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_brokers_token_requests_trust_ca_file_too() {
    // Token endpoint and API both behind the private CA.
    let (upstream, ca_pem) = tls_upstream().await;
    let port = upstream.addr.port();
    let root = TestRoot::new();
    root.write(".runtime/private-ca.pem", ca_pem);
    root.write(".runtime/ads-client-secret", upstream.secret.expose());
    root.write(
        ".runtime/providers.yml",
        format!(
            "providers:\n  ads-api:\n    kind: oauth2_client_credentials\n    token_url: https://localhost:{port}/oauth/token\n    client_id: {}\n    client_secret: {{ file: ads-client-secret }}\n    plugins: [ads, netprobe]\n    origins: [\"https://localhost:{port}\"]\n",
            fastmcp_dev_upstream::DEV_CLIENT_ID
        ),
    );
    std::fs::remove_file(root.path().join("manifests/ads.yaml")).unwrap();
    root.write(
        "manifests/netprobe.yaml",
        format!(
            "plugin: netprobe\nversion: 0.1.0\ncomponent: plugins/netprobe/netprobe.wasm\nlimits: {{ memory_mb: 32, timeout_ms: 5000 }}\nnetwork: {{ allow: [\"https://localhost:{port}\"] }}\ncredentials:\n  - provider: ads-api\n    scopes: [campaigns.read]\n    inject: {{ host: \"localhost:{port}\", header: authorization }}\ntools:\n  - name: fetch\n    input_schema: {{ type: object }}\n"
        ),
    );
    let mut config = root.config();
    config.outbound.ca_file = Some(".runtime/private-ca.pem".into());
    let server = TestServer::start_with(config).await;
    let echoed = fetch(&server, "netprobe", &format!("https://localhost:{port}/_dev/echo")).await;
    let token = upstream.upstream.issued_tokens().pop().expect("a token fetched over https");
    assert_eq!(
        echoed["credentials"]["authorization"],
        fastmcp_host::broker::fingerprint(&fastmcp_host::broker::providers::Secret::new(
            token.expose().to_owned()
        )),
        "{echoed}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_closes_every_connection_gets_one_attempt_per_request() {
    // Accepts, then closes at once: a new connection is never retried, so
    // the request fails instead of looping.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let root = TestRoot::new();
    root.write("manifests/probe.yaml", probe("probe", &[format!("http://{addr}")]));
    let server = TestServer::start(&root).await;
    let (status, body) =
        json(server.invoke("probe:fetch", json!({ "url": format!("http://{addr}/") })).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["result"]["error"].as_str().unwrap_or_default().is_empty(), "the request failed: {body}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, no retry loop");
    server.stop().await;
}
