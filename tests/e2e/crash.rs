//! SIGKILL under load: every call that was acknowledged with a 2xx is in the
//! trail, the restarted host recovers and verifies clean, and neither the
//! logs nor the trail ever held a bearer or action token.

use crate::harness::{ALL_SCOPES, ServerProcess, TestRoot, TestServer, mint};
use fastmcp_host::audit::checkpoint::{PUBLIC_KEY_FILE, read_public_key};
use fastmcp_host::audit::recover::trail_files;
use fastmcp_host::audit::verify::verify;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_no_acknowledged_call() {
    let root = TestRoot::new();
    let mut server = ServerProcess::start(&root, "debug", &[]).await;
    let addr = server.addr.clone();
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();

    // A confirmation flow first, so there is an action token to look for.
    let args = json!({"name": "LaunchX", "budget": 1200, "startDate": "2025-10-10"});
    let pending: Value = client
        .post(format!("http://{addr}/tools/ads:createCampaign/invoke"))
        .bearer_auth(&token)
        .json(&args)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let action_token = pending["action_token"].as_str().unwrap().to_owned();
    let mut confirm = args.clone();
    confirm["action_token"] = json!(action_token);
    let confirmed = client
        .post(format!("http://{addr}/tools/ads:createCampaign/confirm"))
        .bearer_auth(&token)
        .json(&confirm)
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);

    // Load: 16 callers in a loop, each call with its own correlation id.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let callers: Vec<_> = (0..16)
        .map(|caller| {
            let (client, token, addr, acknowledged) =
                (client.clone(), token.clone(), addr.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("load-{caller}-{i}");
                    let sent = client
                        .post(format!("http://{addr}/tools/util:echo/invoke"))
                        .bearer_auth(&token)
                        .header("x-correlation-id", &id)
                        .json(&json!({"i": i}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => {
                            acknowledged.lock().unwrap().insert(id);
                        }
                        Ok(_) => {}
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.signal("-KILL");
    server.child.wait().await.unwrap();
    for caller in callers {
        caller.await.unwrap();
    }
    let logs = server.logs.await.unwrap().join("\n");

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20, "the load ran: {} calls", acknowledged.len());
    let mut recorded = HashSet::new();
    let mut trail_text = String::new();
    for file in trail_files(&root.path().join(".audit")).unwrap() {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<Value>(line)
                && let Some(id) = record["correlation_id"].as_str()
            {
                recorded.insert(id.to_owned());
            }
        }
        trail_text.push_str(&text);
    }
    let missing: Vec<_> = acknowledged.difference(&recorded).collect();
    assert!(missing.is_empty(), "acknowledged but not audited: {missing:?}");

    // Restart: recover whatever the kill left, then verify the whole trail.
    let server = TestServer::start(&root).await;
    server.stop().await;
    let key = read_public_key(&root.path().join(".runtime").join(PUBLIC_KEY_FILE)).unwrap();
    let summary = verify(&root.path().join(".audit"), Some(&key)).unwrap();
    assert!(summary.records as usize >= acknowledged.len() + 4);

    assert!(logs.contains("tool call"), "logs were captured");
    for secret in [token.as_str(), action_token.as_str()] {
        assert!(!logs.contains(secret), "a token leaked into the logs");
        assert!(!trail_text.contains(secret), "a token leaked into the audit trail");
    }
}
