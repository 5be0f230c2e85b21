//! The sandbox: each misbehaving plugin fails only its own call, with the
//! right error, while good calls running at the same time all succeed.

use crate::harness::{TestRoot, TestServer, eventually, json, problem};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};

/// Good calls run alongside each misbehaving one.
const GOOD_CALLS: usize = 24;

/// The fixture plugin's deadline (tests/fixtures/misbehave.yaml).
const FIXTURE_TIMEOUT: Duration = Duration::from_millis(500);

/// Run `bad` while `GOOD_CALLS` echo calls run; every good call must succeed.
async fn alongside_good_calls<T>(server: &TestServer, bad: impl Future<Output = T>) -> T {
    let good = join_all((0..GOOD_CALLS).map(|i| async move {
        let args = json!({"i": i});
        let (status, body) = json(server.invoke("util:echo", args.clone()).await).await;
        assert_eq!((status, &body["result"]), (200, &args), "a good call failed: {body}");
    }));
    let (result, _) = tokio::join!(bad, good);
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_is_stopped_at_its_deadline() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let started = Instant::now();
    let response = alongside_good_calls(&server, server.invoke("misbehave:loop", json!({}))).await;
    let elapsed = started.elapsed();
    let body = problem(response, 504, "tool_timeout").await;
    assert!(body["detail"].as_str().unwrap().contains("500 ms"));
    assert!(elapsed >= FIXTURE_TIMEOUT, "stopped early: {elapsed:?}");
    assert!(elapsed < FIXTURE_TIMEOUT + Duration::from_millis(200), "stopped late: {elapsed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hog_hits_its_cap() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let response = alongside_good_calls(&server, server.invoke("misbehave:memory", json!({}))).await;
    let body = problem(response, 502, "tool_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("memory limit of 64 MiB"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_recursion_overflows_its_own_stack() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let response = alongside_good_calls(&server, server.invoke("misbehave:recurse", json!({}))).await;
    let body = problem(response, 502, "tool_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("stack overflow"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_fails_one_call_and_the_next_call_gets_a_fresh_instance() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let response = alongside_good_calls(&server, server.invoke("misbehave:trap", json!({}))).await;
    let body = problem(response, 502, "tool_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("trapped"), "{body}");
    let (status, _) = json(server.invoke("misbehave:readEnv", json!({})).await).await;
    assert_eq!(status, 200, "the plugin must work again after a trap");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_files_are_invisible() {
    let root = TestRoot::new();
    root.write("secret.txt", "do not read");
    let server = TestServer::start(&root).await;
    for path in
        [root.path().join("secret.txt").display().to_string(), "/etc/passwd".into(), "secret.txt".into()]
    {
        let bad = server.invoke("misbehave:readFile", json!({ "path": path }));
        let (status, body) = json(alongside_good_calls(&server, bad).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["read"], false, "read {path}: {body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_environment_is_invisible() {
    assert!(std::env::var_os("PATH").is_some(), "the host process has an environment");
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let bad = server.invoke("misbehave:readEnv", json!({}));
    let (status, body) = json(alongside_good_calls(&server, bad).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["count"], 0, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sockets_are_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let bad = server.invoke("misbehave:openSocket", json!({ "addr": addr }));
    let (status, body) = json(alongside_good_calls(&server, bad).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["connected"], false, "{body}");
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin reached a host socket: {accepted:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_host_answers_overloaded() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.runtime.max_concurrent_calls = 1;
    config.runtime.queue_timeout = Duration::ZERO;
    let server = TestServer::start_with(config).await;
    let (slow, busy) = tokio::join!(server.invoke("misbehave:loop", json!({})), async {
        eventually("the slow call to hold the only slot", Duration::from_secs(10), || async {
            (server.state.runtime().calls_in_flight() == 1).then_some(())
        })
        .await;
        server.invoke("util:echo", json!({})).await
    });
    assert_eq!(busy.headers()["retry-after"], "1");
    problem(busy, 503, "overloaded").await;
    problem(slow, 504, "tool_timeout").await;
    let (status, _): (u16, Value) = json(server.invoke("util:echo", json!({})).await).await;
    assert_eq!(status, 200, "the slot is free again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_never_sees_what_an_earlier_call_left_in_memory() {
    // Slots are reused and reset in place (keep-resident memset): the next
    // call must still start from a clean memory, pooling or not.
    for keep_resident in [4 << 20, 0] {
        let root = TestRoot::new();
        let mut config = root.config();
        config.runtime.memory_keep_resident_bytes = keep_resident;
        config.runtime.max_concurrent_calls = 2; // few slots: reuse is certain
        let server = TestServer::start_with(config).await;
        let (_, planted) = json(server.invoke("misbehave:peek", json!({"plant": true})).await).await;
        assert_eq!(planted["result"]["found"], true, "the probe finds a secret in its own memory: {planted}");
        let (status, left) = json(server.invoke("misbehave:leave", json!({})).await).await;
        assert_eq!(status, 200, "{left}");
        for _ in 0..6 {
            let (status, peek) = json(server.invoke("misbehave:peek", json!({})).await).await;
            assert_eq!(status, 200, "{peek}");
            assert!(peek["result"]["memory_bytes"].as_u64() >= left["result"]["memory_bytes"].as_u64());
            assert_eq!(peek["result"]["found"], false, "keep_resident {keep_resident}: {peek}");
        }
        server.stop().await;
    }
}
