//! Finding 7: someone who can write `.audit/` while the host is down cannot
//! roll the trail back or rewrite it without `audit verify` (or the host at
//! its next start) noticing.

use crate::harness::{TestRoot, TestServer, audit_records, json, write_lines};
use fastmcp_host::audit::checkpoint::{PUBLIC_KEY_FILE, read_public_key};
use fastmcp_host::audit::verify::{Failure, Summary, VerifyOptions, verify_with};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Three runs of the host (three checkpoints, one per shutdown), with a
/// witness directory outside `.audit/`.
async fn three_runs(root: &TestRoot) -> PathBuf {
    let witness = root.path().join("witness");
    for run in 0..3 {
        let mut config = root.config();
        config.audit.witness_dir = Some(witness.clone());
        let server = TestServer::start_with(config).await;
        assert_eq!(server.invoke("util:echo", json!({ "run": run })).await.status(), 200);
        server.stop().await;
    }
    witness
}

fn verify(root: &Path, witness: Option<&Path>) -> Result<Summary, Failure> {
    let key = read_public_key(&root.join(".runtime").join(PUBLIC_KEY_FILE)).unwrap();
    verify_with(&root.join(".audit"), &VerifyOptions { witness, ..VerifyOptions::new(Some(&key)) })
}

fn trail_file(root: &Path) -> PathBuf {
    let files = fastmcp_host::audit::recover::trail_files(&root.join(".audit")).unwrap();
    assert_eq!(files.len(), 1);
    files[0].clone()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicated_key_is_caught() {
    let root = TestRoot::new();
    three_runs(&root).await;
    let file = trail_file(root.path());
    let mut trail = lines(&file);
    trail[1] = trail[1].replacen('{', r#"{"decision":"forged","#, 1);
    write_lines(&file, &trail);
    let failure = verify(root.path(), None).unwrap_err();
    assert_eq!(failure.line, 2, "{failure}");
    assert!(failure.reason.contains("canonical"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_are_numbered_and_chained() {
    let root = TestRoot::new();
    three_runs(&root).await;
    assert_eq!(verify(root.path(), None).unwrap().checkpoints, 3);
    let checkpoints = root.path().join(".audit/checkpoints.jsonl");
    let all = lines(&checkpoints);
    // Dropping a checkpoint from the middle breaks the numbering.
    write_lines(&checkpoints, &[all[0].clone(), all[2].clone()]);
    let failure = verify(root.path(), None).unwrap_err();
    assert!(failure.reason.contains("checkpoint 3 where 2 was expected"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trail_rolled_back_behind_its_witness_fails_verification() {
    let root = TestRoot::new();
    let witness = three_runs(&root).await;
    assert!(verify(root.path(), Some(&witness)).is_ok());
    let file = trail_file(root.path());
    let trail = lines(&file);
    let checkpoints_file = root.path().join(".audit/checkpoints.jsonl");
    let checkpoints = lines(&checkpoints_file);

    // Keep only the first checkpoint, and cut the trail back to it: a
    // consistent-looking shorter history.
    let first: serde_json::Value = serde_json::from_str(&checkpoints[0]).unwrap();
    let seq = first["seq"].as_u64().unwrap() as usize;
    write_lines(&file, &trail[..seq]);
    write_lines(&checkpoints_file, &checkpoints[..1]);
    assert!(verify(root.path(), None).is_ok(), "without a witness this rollback is invisible");
    let failure = verify(root.path(), Some(&witness)).unwrap_err();
    assert!(failure.reason.contains("witness holds checkpoint 2"), "{failure}");

    // Deleting the checkpoints file and cutting the trail: the same.
    std::fs::remove_file(&checkpoints_file).unwrap();
    write_lines(&file, &trail[..2]);
    let failure = verify(root.path(), Some(&witness)).unwrap_err();
    assert!(failure.reason.contains("lacks"), "{failure}");
    // A trail longer than the checkpoint interval must have checkpoints.
    write_lines(&file, &trail);
    let key = read_public_key(&root.path().join(".runtime").join(PUBLIC_KEY_FILE)).unwrap();
    let strict = VerifyOptions { checkpoint_interval: 2, ..VerifyOptions::new(Some(&key)) };
    let failure = verify_with(&root.path().join(".audit"), &strict).unwrap_err();
    assert!(failure.reason.contains("no checkpoints"), "{failure}");

    // The binary says the same, and exits non-zero.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(["audit", "verify", "--root"])
        .arg(root.path())
        .arg("--witness")
        .arg(&witness)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lacks"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_refuses_to_sign_over_a_tail_that_does_not_match_its_checkpoint() {
    let root = TestRoot::new();
    three_runs(&root).await;
    let file = trail_file(root.path());
    let trail = lines(&file);
    write_lines(&file, &trail[..trail.len() - 3]); // cut behind the last checkpoint
    let checkpoints_file = root.path().join(".audit/checkpoints.jsonl");
    let checkpoints_before = std::fs::read(&checkpoints_file).unwrap();

    let server = TestServer::start(&root).await;
    let (_, health) = json(server.get("/health").await).await;
    assert_eq!(health["status"], "degraded");
    let refused = health["audit"]["checkpoints_refused"].as_str().unwrap();
    assert!(refused.contains("truncated"), "{refused}");
    assert_eq!(server.invoke("util:echo", json!({})).await.status(), 200, "calls are still recorded");
    server.stop().await;

    assert_eq!(std::fs::read(&checkpoints_file).unwrap(), checkpoints_before, "no checkpoint was signed");
    let records = audit_records(root.path());
    assert!(records.iter().any(|r| r["event"] == "audit.checkpoint_mismatch"), "the refusal is audited");
    assert!(verify(root.path(), None).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_checkpoint_is_posted_to_an_http_witness() {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/witness",
        axum::routing::post(move |axum::Json(checkpoint): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move { sink.lock().unwrap().push(checkpoint) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/witness", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let root = TestRoot::new();
    for _ in 0..2 {
        let mut config = root.config();
        config.audit.witness_url = Some(url.clone());
        let server = TestServer::start_with(config).await;
        assert_eq!(server.invoke("util:echo", json!({})).await.status(), 200);
        server.stop().await;
    }
    let witnessed =
        crate::harness::eventually("two witnessed checkpoints", std::time::Duration::from_secs(10), || {
            let received = received.clone();
            async move {
                let received = received.lock().unwrap();
                (received.len() == 2).then(|| received.clone())
            }
        })
        .await;
    let local = lines(&root.path().join(".audit/checkpoints.jsonl"));
    for (sent, line) in witnessed.iter().zip(&local) {
        assert_eq!(sent, &serde_json::from_str::<serde_json::Value>(line).unwrap());
    }
    assert_eq!((witnessed[0]["n"].as_u64(), witnessed[1]["n"].as_u64()), (Some(1), Some(2)));
}
