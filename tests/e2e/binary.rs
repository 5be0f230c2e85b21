//! The `fastmcp` binary itself: serves, and on SIGTERM stops accepting but
//! lets in-flight calls finish before exiting cleanly.

use crate::harness::{ALL_SCOPES, ServerProcess, TestRoot, eventually, mint};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn serves_and_drains_on_sigterm() {
    let root = TestRoot::new();
    // Without the file watcher, so that it is SIGHUP that reloads.
    let mut server = ServerProcess::start(&root, "info", &["--no-watch"]).await;
    let addr = server.addr.clone();

    let client = reqwest::Client::new();
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let health = client.get(format!("http://{addr}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // SIGHUP reloads the policy; a broken file changes nothing.
    let signal = |name: &str| server.signal(name);
    let catalog_size = || async {
        let response = client.get(format!("http://{addr}/tool-catalog")).bearer_auth(&token).send().await;
        let body: Value = response.unwrap().json().await.unwrap();
        body["tools"].as_array().unwrap().len()
    };
    let health = || async {
        let response = client.get(format!("http://{addr}/health")).bearer_auth(&token).send().await.unwrap();
        response.json::<Value>().await.unwrap()
    };
    assert_eq!(catalog_size().await, 20);
    root.write("policies/policies.yml", "version: 1\nroles: { tester: { tools: [\"ads:*\"\n");
    signal("-HUP");
    // Generous waits: this test runs while other tests install the MCP SDK
    // clients (pip, npm ci) on the same two cores, and SIGHUP reloads
    // providers, registry and policy in turn.
    eventually("the broken reload to be reported in /health", Duration::from_secs(30), || async {
        (health().await["policy"]["last_reload"]["ok"] == false).then_some(())
    })
    .await;
    assert_eq!(health().await["policy"]["version"], 1);
    assert_eq!(catalog_size().await, 20, "the previous policy stays in force");
    root.write(
        "policies/policies.yml",
        "version: 1\nroles: { tester: { tools: [\"util:*\", \"misbehave:*\"] } }\n",
    );
    signal("-HUP");
    eventually("policy version 2", Duration::from_secs(30), || async {
        (health().await["policy"]["version"] == 2).then_some(())
    })
    .await;
    assert_eq!(catalog_size().await, 17);

    // A call that takes the fixture's whole 500 ms deadline is in flight when
    // SIGTERM arrives; it must still get its answer.
    let in_flight = tokio::spawn({
        let request = client.post(format!("http://{addr}/tools/misbehave:loop/invoke")).bearer_auth(&token);
        async move { request.json(&json!({})).send().await.map(|r| r.status().as_u16()) }
    });
    eventually("the call to be running", Duration::from_secs(10), || async {
        (health().await["runtime"]["calls_in_flight"] == 1).then_some(())
    })
    .await;
    signal("-TERM");

    assert_eq!(in_flight.await.unwrap().expect("the in-flight call is answered"), 504);
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status}");
    let logs = server.logs.await.unwrap();
    assert!(logs.iter().any(|l| l.contains("finishing in-flight calls")), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("tool call") && l.contains("misbehave:loop")));
}
