//! Fair share: one caller against all others, against the real binary. An
//! attacker with one ordinary token (role `developer`, catalog scope only)
//! floods sessions, streams, connections and sandbox slots from 127.0.0.1;
//! another user, on 127.0.0.2 (another client address), must still be
//! answered — `initialize`, `tools/call`, `/health` — while the flood holds.
//! Each test prints the host's RSS under its flood (the README's figures).

use crate::harness::{ALL_SCOPES, ServerProcess, TestRoot, audit_records, mint};
use crate::mcp::confirmation::modern_meta;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longer than any normal answer here; today's code never answered in time.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
const VICTIM_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Host {
    process: ServerProcess,
    attacker: String,
    victim: String,
}

impl Host {
    async fn start(root: &TestRoot, args: &[&str]) -> Self {
        let process = ServerProcess::start(root, "info", &[&["--no-watch"], args].concat()).await;
        let runtime = root.path().join(".runtime");
        let attacker = mint(&runtime, "mallory", "public", &["developer"], &["tools.query:catalog"]);
        let victim = mint(&runtime, "alice", "public", &["tester"], ALL_SCOPES);
        Self { process, attacker, victim }
    }

    fn mcp(&self) -> String {
        self.process.url("/mcp")
    }

    /// The other user's client, on another client address.
    fn victim_client(&self) -> Client {
        Client::builder().local_address(VICTIM_ADDRESS).build().unwrap()
    }

    /// The other user gets `initialize`, `tools/call` and `/health` answered.
    async fn victim_is_served(&self) {
        let client = self.victim_client();
        let answered = |what: &'static str, request: reqwest::RequestBuilder| async move {
            tokio::time::timeout(ANSWER_WITHIN, request.send())
                .await
                .unwrap_or_else(|_| panic!("{what}: no answer within {ANSWER_WITHIN:?}"))
                .unwrap_or_else(|e| panic!("{what}: {e}"))
        };
        let initialize = answered("initialize", legacy_initialize(&client, &self.mcp(), &self.victim)).await;
        assert_eq!(initialize.status(), 200, "initialize");
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "util.echo", "arguments": {"msg": "hi"}, "_meta": modern_meta()}});
        let reply = answered("tools/call", modern(&client, &self.mcp(), &self.victim, "tools/call", &call))
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(reply["result"]["structuredContent"], json!({"msg": "hi"}), "{reply}");
        let health = answered("/health", client.get(self.process.url("/health"))).await;
        assert_eq!(health.status(), 200);
    }

    async fn refusals(&self, resource: &str) -> u64 {
        let text = reqwest::get(format!("http://{}/metrics", self.process.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("fastmcp_share_refusals_total{{resource=\"{resource}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |n| n.parse().unwrap())
    }

    async fn stop(mut self) -> Vec<String> {
        self.process.signal("-TERM");
        let _ = tokio::time::timeout(Duration::from_secs(30), self.process.child.wait()).await;
        self.process.logs.await.unwrap()
    }
}

fn legacy_initialize(client: &Client, url: &str, token: &str) -> reqwest::RequestBuilder {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
}

fn modern(client: &Client, url: &str, token: &str, method: &str, body: &Value) -> reqwest::RequestBuilder {
    let mut request = client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(body);
    if method == "tools/call" {
        request = request.header("mcp-name", body["params"]["name"].as_str().unwrap());
    }
    request
}

fn print_rss(process: &ServerProcess, what: &str, before: (u64, u64)) {
    let after = process.rss_kib();
    eprintln!("RSS {what}: {} KiB before, {} KiB under the flood (peak {} KiB)", before.0, after.0, after.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_sessions_leave_room_for_everyone_else() {
    let root = TestRoot::new();
    let host = Host::start(&root, &[]).await;
    let before = host.process.rss_kib();
    let client = Client::new();
    // 32 at a time: more connections than that from one address would be
    // cut at accept (their own share), which is not what this test counts.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let request = legacy_initialize(&client, &host.mcp(), &host.attacker);
        let in_flight = in_flight.clone();
        attempts.spawn(async move {
            let _permit = in_flight.acquire().await.unwrap();
            let response = request.send().await?;
            let status = response.status();
            // Read whole, so that the connection is reused.
            response.bytes().await.map(|_| status)
        });
    }
    let statuses: Vec<StatusCode> = attempts.join_all().await.into_iter().map(Result::unwrap).collect();
    let opened = statuses.iter().filter(|s| **s == 200).count();
    // The default share: 16 sessions of the 256 every caller shares.
    assert_eq!(opened, 16, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert_eq!(host.refusals("sessions").await, 284);
    print_rss(&host.process, "after 300 initializes from one token", before);
    host.victim_is_served().await;
    // The refusals are audited in aggregate, once, at the latest on stop.
    host.stop().await;
    let reports: Vec<Value> =
        audit_records(root.path()).into_iter().filter(|r| r["event"] == "share.refused").collect();
    let refused: u64 = reports.iter().filter_map(|r| r["detail"]["refused"]["sessions"].as_u64()).sum();
    assert_eq!(refused, 284, "{reports:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_streams_leave_room_for_everyone_else() {
    let root = TestRoot::new();
    // 400 connections: the 1,000 streams asked for would take them all.
    let host = Host::start(&root, &["--max-connections", "400"]).await;
    let before = host.process.rss_kib();
    let listen = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}});
    let client = Client::new();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let request = modern(&client, &host.mcp(), &host.attacker, "subscriptions/listen", &listen);
        // A stream is kept open (its response held) until the test ends.
        attempts.spawn(async move { request.send().await });
    }
    let mut open = Vec::new();
    let (mut refused, mut cut) = (0, 0);
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(attempt) = attempts.join_next().await {
            match attempt.unwrap() {
                Ok(response) if response.status() == 200 => open.push(response),
                Ok(response) => {
                    assert_eq!(response.status(), 429);
                    refused += 1;
                }
                // Closed at accept: the address held its share of
                // connections not yet used by an authenticated request.
                Err(_) => cut += 1,
            }
        }
    });
    // (Before fair share, the streams took every connection and the rest
    // of the flood waited for one forever.)
    settled.await.expect("every stream request answered within a minute");
    assert_eq!(open.len(), 8, "the default share of streams ({refused} refused, {cut} cut)");
    assert!(
        open.iter().all(|r| r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"))
    );
    print_rss(&host.process, "with 1,000 stream requests from one token", before);
    host.victim_is_served().await;
    // While the attacker's streams are open, its refusals were counted.
    assert!(host.refusals("streams").await >= 1);
    drop(open);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_id_is_answered_the_same_whoever_owns_it() {
    let root = TestRoot::new();
    let host = Host::start(&root, &[]).await;
    let client = Client::new();
    let response = legacy_initialize(&client, &host.mcp(), &host.victim).send().await.unwrap();
    let live = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let attacker = mint(&root.path().join(".runtime"), "eve", "public", &["tester"], ALL_SCOPES);
    // Everything but the headers that differ per response anyway.
    let answer = |id: String, method: reqwest::Method| {
        let request = client
            .request(method.clone(), host.mcp())
            .bearer_auth(&attacker)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", id);
        let request = if method == reqwest::Method::POST { request.json(&list) } else { request };
        async move {
            let response = request.send().await.unwrap();
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(name, _)| !["date", "x-correlation-id"].contains(&name.as_str()))
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            (response.status(), headers, response.bytes().await.unwrap())
        }
    };
    for method in [reqwest::Method::POST, reqwest::Method::GET, reqwest::Method::DELETE] {
        let theirs = answer(live.clone(), method.clone()).await;
        let random = answer("0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned(), method.clone()).await;
        assert_eq!(theirs, random, "{method}: another caller's live session vs an unknown one");
        assert_eq!(theirs.0, 404, "{method}");
    }
    // The session was not ended by the attacker's DELETE.
    let owner = legacy_initialize(&client, &host.mcp(), &host.victim);
    assert_eq!(owner.send().await.unwrap().status(), 200);
    let still = client
        .post(host.mcp())
        .bearer_auth(&host.victim)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", &live)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn liveness_is_answered_whatever_credentials_are_sent() {
    let root = TestRoot::new();
    let host = Host::start(&root, &[]).await;
    let client = Client::new();
    let no_scope = mint(&root.path().join(".runtime"), "probe", "public", &["developer"], &[]);
    let health = |base: String, token: Option<String>| {
        let mut request = client.get(format!("{base}/health"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let api = format!("http://{}", host.process.addr);
    let metrics = format!("http://{}", host.process.metrics_addr);
    for base in [&api, &metrics] {
        for token in [None, Some(no_scope.clone()), Some("not-a-jwt".to_owned())] {
            let (status, body) = health(base.clone(), token.clone()).await;
            assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})), "{base} {token:?}");
        }
        // The detail still needs the scope.
        let (status, body) = health(base.clone(), Some(host.victim.clone())).await;
        assert_eq!(status, 200);
        assert!(body["registry"]["tools"].as_u64().unwrap() > 0, "{body}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_caller_cannot_hold_every_sandbox_slot() {
    let root = TestRoot::new();
    // The looping tool runs to its deadline: 3 s here, so that all six
    // calls have asked for a slot before the first two end.
    let manifest = std::fs::read_to_string(root.path().join("manifests/misbehave.yaml")).unwrap();
    root.write("manifests/misbehave.yaml", manifest.replace("timeout_ms: 500", "timeout_ms: 3000"));
    let host = Host::start(
        &root,
        &[
            "--max-concurrent-calls",
            "4",
            "--runtime-max-calls-per-principal",
            "2",
            "--queue-timeout-ms",
            "100",
        ],
    )
    .await;
    let runtime = root.path().join(".runtime");
    let hog = mint(&runtime, "hog", "public", &["tester"], ALL_SCOPES);
    let client = Client::new();
    // Six calls that each run to their deadline.
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let request =
            client.post(host.process.url("/tools/misbehave:loop/invoke")).bearer_auth(&hog).json(&json!({}));
        slow.spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile another caller's call runs at once.
    let echo = host.victim_client().post(host.process.url("/tools/util:echo/invoke"));
    let reply = echo.bearer_auth(&host.victim).json(&json!({"msg": "mine"})).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let codes: Vec<String> =
        slow.join_all().await.iter().map(|r| r["code"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(codes.iter().filter(|c| *c == "share_exceeded").count(), 4, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "tool_timeout").count(), 2, "{codes:?}");
    host.stop().await;
}

/// A raw connection from `source`, with one request sent on it.
async fn connect_from(source: IpAddr, addr: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// The status of the next response on `stream`, and whether the server
/// then closed the connection.
async fn response_then_closed(stream: &mut TcpStream) -> (u16, bool) {
    let mut buffer = vec![0u8; 16384];
    let n = tokio::time::timeout(ANSWER_WITHIN, stream.read(&mut buffer)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&buffer[..n]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let closed = head.to_ascii_lowercase().contains("connection: close");
    (status, closed)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_caller_cannot_hold_every_connection() {
    let root = TestRoot::new();
    let host = Host::start(
        &root,
        &[
            "--max-connections",
            "24",
            "--server-max-connections-per-principal",
            "8",
            "--server-max-unauthenticated-connections-per-peer",
            "4",
        ],
    )
    .await;
    let before = host.process.rss_kib();
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // Connections that never send a request: four are held, the rest are
    // closed at once.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(connect_from(local, &host.process.addr).await);
    }
    let mut closed = 0;
    for stream in &mut silent {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 6, "beyond 4 unauthenticated connections from one address");
    drop(silent);
    // Keep-alive connections of one principal: eight are kept, the rest
    // refused (429) and closed.
    let request =
        format!("GET /tool-catalog HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", host.attacker);
    let mut held = Vec::new();
    let mut answers = Vec::new();
    // From another address: the server may not have seen the silent ones
    // close yet.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    for _ in 0..12 {
        let mut stream = connect_from(other, &host.process.addr).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        answers.push(response_then_closed(&mut stream).await);
        held.push(stream);
    }
    assert_eq!(answers.iter().filter(|a| **a == (200, false)).count(), 8, "{answers:?}");
    assert_eq!(answers.iter().filter(|a| **a == (429, true)).count(), 4, "{answers:?}");
    print_rss(&host.process, "with one token's connections held", before);
    host.victim_is_served().await;
    drop(held);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failed_authentication_table_is_bounded() {
    let root = TestRoot::new();
    let host =
        Host::start(&root, &["--auth-failures-per-minute", "1", "--server-auth-failure-peers", "2"]).await;
    for last in 1..=3u8 {
        let client =
            Client::builder().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))).build().unwrap();
        for _ in 0..2 {
            let request = client.post(host.process.url("/tools/util:echo/invoke")).bearer_auth("not-a-jwt");
            assert_eq!(request.json(&json!({})).send().await.unwrap().status(), 401);
        }
    }
    host.stop().await;
    let records = audit_records(root.path());
    let one_by_one = records
        .iter()
        .filter(|r| r["decision"] == "unauthenticated" && r["event"] != "auth.failures_suppressed")
        .count();
    // Two addresses fit the table: one record each; the third got none.
    assert_eq!(one_by_one, 2);
    let report = records.iter().find(|r| r["event"] == "auth.failures_suppressed").expect("aggregate record");
    assert_eq!(report["detail"]["total"], 4, "{report}");
    let peers = report["detail"]["peers"].as_array().unwrap();
    assert!(peers.iter().any(|p| p["peer"] == "127.0.0.3" && p["count"] == 2), "{report}");
}
