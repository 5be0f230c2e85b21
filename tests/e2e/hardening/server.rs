//! Finding 6: slow clients cannot hold connections, and a slow response
//! does not lose its audit record.

use crate::harness::{TestRoot, TestServer, audit_records, eventually, problem};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Connect and send a request line and one header, never the blank line.
async fn slowloris(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(addr(server)).await.unwrap();
    stream.write_all(b"POST /tools/util:echo/invoke HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    stream
}

/// A keep-alive connection that carried one authenticated request. (The
/// harness's readiness request leaves an idle connection, which counts
/// among the unauthenticated half until its idle timeout: retry until
/// accepted.)
async fn idle_after_a_request(server: &TestServer) -> TcpStream {
    let request =
        format!("GET /tool-catalog HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", server.token);
    for _ in 0..100 {
        let mut stream = TcpStream::connect(addr(server)).await.unwrap();
        let mut buffer = [0u8; 16384];
        if stream.write_all(request.as_bytes()).await.is_ok()
            && let Ok(n) = stream.read(&mut buffer).await
            && buffer[..n].starts_with(b"HTTP/1.1 200")
        {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no connection accepted within 10 s");
}

/// Whether the server closed `stream` (EOF, reset, or a final response).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.server.header_read_timeout = Duration::from_millis(500);
    let server = TestServer::start_with(config).await;
    let mut stream = slowloris(&server).await;
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await, "still connected after 10 s");

    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buffer = [0u8; 4096];
    let n = idle.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await, "an idle connection stays open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.server.max_connections = 2;
    config.server.header_read_timeout = Duration::from_millis(800);
    let server = TestServer::start_with(config).await;
    // Two authenticated keep-alive connections, idle after one request
    // each. (Connections without an authenticated request may hold only
    // half of the server's: see `fairness.rs`.)
    let _held = (idle_after_a_request(&server).await, idle_after_a_request(&server).await);
    let url = server.url("/health");
    let third = tokio::spawn(async move { reqwest::Client::new().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection is not served while two are held");
    let status =
        tokio::time::timeout(Duration::from_secs(10), third).await.expect("served once a slot frees");
    assert_eq!(status.unwrap().unwrap(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_never_arrives_is_408() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.server.body_read_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(config).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let head = format!(
        "POST /tools/util:echo/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":",
        server.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await.unwrap().unwrap();
    response.extend_from_slice(&buffer[..n]);
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_past_the_request_timeout_is_503_and_the_call_is_still_audited() {
    let root = TestRoot::new();
    let mut config = root.config();
    config.server.request_timeout = Duration::from_millis(150);
    let server = TestServer::start_with(config).await;
    let response = server.post_invoke("misbehave:loop").header("x-correlation-id", "slow-1").json(&json!({}));
    problem(response.send().await.unwrap(), 503, "request_timeout").await;
    // The call ran to its own 500 ms deadline and its record was written.
    let record = eventually("the call's audit record", Duration::from_secs(5), || async {
        audit_records(root.path()).into_iter().find(|r| r["correlation_id"] == "slow-1")
    })
    .await;
    assert_eq!(record["decision"], "tool_timeout", "{record}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_cuts_off_a_slow_client_by_its_flag() {
    let root = TestRoot::new();
    let server =
        crate::harness::ServerProcess::start(&root, "info", &["--header-read-timeout-ms", "500"]).await;
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream.write_all(b"POST /tools/util:echo/invoke HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await, "still connected after 10 s");
}
