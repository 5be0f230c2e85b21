//! The `fastmcp` binary itself: serves, and on SIGTERM stops accepting but
//! lets in-flight calls finish before exiting cleanly.

use crate::harness::TestRoot;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn serves_and_drains_on_sigterm() {
    let root = TestRoot::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--root"])
        .arg(root.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let log: Value = serde_json::from_str(&line).expect("log lines are JSON");
            if log["fields"]["message"] == "listening" {
                return log["fields"]["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens within a minute");
    // Keep draining logs so the child never blocks on a full pipe.
    let drain = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // A call that takes the fixture's whole 500 ms deadline is in flight when
    // SIGTERM arrives; it must still get its answer.
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("http://{addr}/tools/misbehave:loop/invoke");
        async move {
            client
                .post(url)
                .json(&json!({}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    assert_eq!(
        in_flight
            .await
            .unwrap()
            .expect("the in-flight call is answered"),
        504
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let logs = drain.await.unwrap();
    assert!(
        logs.iter().any(|l| l.contains("finishing in-flight calls")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("tool call") && l.contains("misbehave:loop"))
    );
}
