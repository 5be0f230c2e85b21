//! Finding 4: a hostile plugin cannot make the host store, log or hold
//! unbounded data. Run against the real binary, whose memory is its own.

use crate::harness::{ALL_SCOPES, ServerProcess, TestRoot, audit_records, mint};
use serde_json::{Value, json};

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_plugin_cannot_grow_the_trail_the_log_or_the_host() {
    let root = TestRoot::new();
    let mut server = ServerProcess::start(&root, "info", &["--no-watch", "--no-pooling"]).await;
    let pid = server.child.id().unwrap();
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    let call = |tool: &str, args: Value| {
        let request = client
            .post(format!("http://{}/tools/misbehave:{tool}/invoke", server.addr))
            .bearer_auth(&token)
            .json(&args);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Warm up: the component is loaded, a sandbox has run.
    assert_eq!(call("upstreamError", json!({})).await.0, 502);
    let (rss_before, peak_before) = memory_kib(pid);

    // 64 × get-token with a 1 MiB provider name and 32 scopes of 4 KiB.
    let (status, body) = call("brokerFlood", json!({"bytes": 1 << 20, "times": 64, "scopes": 32})).await;
    assert_eq!((status, &body["result"]["refused"]), (200, &json!(64)), "{body}");
    // 1000 log lines of 1 MiB (the budget is 256 lines of at most 4 KiB).
    let (status, body) = call("logFlood", json!({"bytes": 1 << 20, "times": 1000})).await;
    assert_eq!(status, 200, "{body}");
    // A result over the 4 MiB cap, and a 1 MiB error message.
    let (status, body) = call("bigResult", json!({"bytes": 8 << 20})).await;
    assert_eq!((status, body["code"].as_str()), (502, Some("tool_failed")), "{body}");
    let (status, body) = call("bigError", json!({"bytes": 1 << 20})).await;
    assert_eq!(status, 502);
    assert!(body.to_string().len() < 4096, "the error message is cut: {} bytes", body.to_string().len());
    let (rss_after, peak_after) = memory_kib(pid);

    server.signal("-TERM");
    server.child.wait().await.unwrap();
    let logs = server.logs.await.unwrap();
    let log_bytes: usize = logs.iter().map(String::len).sum();
    let longest_log = logs.iter().map(String::len).max().unwrap();
    let records = audit_records(root.path());
    let largest_record = records.iter().map(|r| r.to_string().len()).max().unwrap();
    let trail_bytes: usize = records.iter().map(|r| r.to_string().len()).sum();
    println!(
        "hostile plugin: largest audit record {largest_record} B, trail {trail_bytes} B, log {log_bytes} B (longest line {longest_log} B), host RSS {rss_before} -> {rss_after} KiB, peak {peak_before} -> {peak_after} KiB"
    );
    let flood = records.iter().find(|r| r["tool"] == "misbehave:brokerFlood").unwrap();
    let events = flood["detail"]["egress"]["events"].as_array().unwrap();
    let dropped = flood["detail"]["egress"]["dropped"].as_u64().unwrap_or(0);
    assert_eq!(events.len() as u64 + dropped, 64, "each refusal is recorded or counted");
    assert!(events[0]["provider"].as_str().unwrap().len() <= 64 + 3, "{}", events[0]);
    assert!(largest_record < 64 * 1024, "largest audit record {largest_record} bytes");
    assert!(longest_log < 8 * 1024, "longest log line {longest_log} bytes");
    assert!(log_bytes < 4 << 20, "{log_bytes} bytes of log");
    let refusals = logs.iter().filter(|l| l.contains("broker refused a token")).count();
    assert_eq!(refusals, 64);
    let plugin_lines =
        logs.iter().filter(|l| l.contains("fastmcp::plugin") && l.contains("misbehave:logFlood")).count();
    assert!(plugin_lines <= 256, "{plugin_lines} plugin log lines");
    // The plugin's own memory is capped at 64 MiB; the host may not add more
    // than a small bounded amount on top of what the sandbox itself maps.
    let peak_growth_mib = (peak_after.saturating_sub(peak_before)) / 1024;
    assert!(peak_growth_mib < 64 + 32, "host peak RSS grew by {peak_growth_mib} MiB");
}
