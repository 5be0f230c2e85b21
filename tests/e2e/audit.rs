//! The audit trail end to end: what is recorded, that it verifies, that every
//! kind of tampering is caught with file and line, and crash recovery.

use crate::harness::{TestRoot, TestServer, audit_records as records, json, write_lines};
use fastmcp_host::audit::checkpoint::{PUBLIC_KEY_FILE, read_public_key};
use fastmcp_host::audit::recover::trail_files;
use fastmcp_host::audit::verify::verify;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn check(root: &Path) -> Result<fastmcp_host::audit::verify::Summary, fastmcp_host::audit::verify::Failure> {
    let key = read_public_key(&root.join(".runtime").join(PUBLIC_KEY_FILE)).unwrap();
    verify(&root.join(".audit"), Some(&key))
}

/// A root whose trail has a confirmation flow, a denial, an auth failure and
/// a tool failure, with the server stopped (final checkpoint written).
async fn populated() -> (TestRoot, Vec<String>) {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let args = json!({"name": "LaunchX", "budget": 1200, "startDate": "2025-10-10"});
    let response =
        server.post_invoke("ads:createCampaign").header("x-correlation-id", "audit-flow").json(&args);
    let (status, pending) = json(response.send().await.unwrap()).await;
    assert_eq!(status, 202);
    assert_eq!(json(server.confirm(&pending["action_token"], args).await).await.0, 200);
    let huge = json!({"name": "Huge", "budget": 90000, "startDate": "2025-10-10"});
    assert_eq!(server.invoke("ads:createCampaign", huge).await.status(), 403);
    let anonymous = server.client().post(server.url("/tools/util:echo/invoke")).json(&json!({})).send();
    assert_eq!(anonymous.await.unwrap().status(), 401);
    assert_eq!(server.invoke("misbehave:trap", json!({})).await.status(), 502);
    let secrets = vec![server.token.clone(), pending["action_token"].as_str().unwrap().to_owned()];
    server.stop().await;
    (root, secrets)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stop_is_recorded_and_the_trail_verifies() {
    let (root, secrets) = populated().await;
    let records = records(root.path());
    let events: Vec<(&str, &str)> =
        records.iter().map(|r| (r["event"].as_str().unwrap(), r["decision"].as_str().unwrap())).collect();
    assert_eq!(
        events,
        [
            ("host.start", "started"),
            ("tools.invoke", "pending_confirmation"),
            ("tools.confirm", "confirmed"),
            ("tools.denied", "policy_denied"),
            ("tools.denied", "unauthenticated"),
            ("tools.failed", "tool_failed"),
            ("host.stop", "stopped"),
        ]
    );
    assert_eq!(records[0]["prev_hash"], "0".repeat(64));
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i as u64 + 1);
    }
    let (invoke, confirm) = (&records[1], &records[2]);
    assert_eq!(invoke["correlation_id"], "audit-flow");
    assert_eq!(invoke["status"], 202);
    assert_eq!(invoke["principal"], json!({"sub": "tester", "tenant": "public"}));
    assert_eq!(invoke["tool"], "ads:createCampaign");
    assert_eq!(invoke["args_sha256"].as_str().unwrap().len(), 64);
    assert!(invoke.get("args").is_none(), "arguments are stored as a digest only");
    assert_eq!(confirm["detail"]["action_id"], invoke["detail"]["action_id"]);
    assert_eq!(confirm["detail"]["invoke"], json!({"seq": invoke["seq"], "hash": invoke["hash"]}));
    assert_eq!(confirm["args_sha256"], invoke["args_sha256"]);
    assert_eq!(records[3]["detail"]["rule"], "budget-cap");
    assert_eq!(records[4]["principal"], Value::Null);

    let summary = check(root.path()).unwrap();
    assert_eq!(summary.records, 7);
    assert!(summary.checkpoints >= 1, "a checkpoint is written at shutdown");

    let everything: String = std::fs::read_dir(root.path().join(".audit"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a token leaked into the audit trail");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chain_continues_across_restarts() {
    let (root, _) = populated().await;
    let server = TestServer::start(&root).await;
    assert_eq!(server.invoke("util:echo", json!({})).await.status(), 200);
    server.stop().await;
    let records = records(root.path());
    assert_eq!(records[7]["event"], "host.start");
    assert_eq!(records[7]["prev_hash"], records[6]["hash"]);
    assert_eq!(check(root.path()).unwrap().records, 10);
}

/// The single trail file of a root, and its lines.
fn trail(root: &Path) -> (PathBuf, Vec<String>) {
    let file = trail_files(&root.join(".audit")).unwrap().pop().unwrap();
    let lines = std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
    (file, lines)
}

fn rehash(line: &str) -> String {
    let mut record: Value = serde_json::from_str(line).unwrap();
    let hash = fastmcp_host::audit::record::hash_line_value(record["prev_hash"].as_str().unwrap(), &record);
    record["hash"] = json!(hash);
    serde_json::to_string(&record).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tampering_is_caught_with_file_and_line() {
    let (root, _) = populated().await;
    let (file, original) = trail(root.path());
    assert!(check(root.path()).is_ok());
    let expect = |lines: &[String], line: usize, reason: &str| {
        write_lines(&file, lines);
        let failure = check(root.path()).unwrap_err();
        assert_eq!((failure.file.as_path(), failure.line), (file.as_path(), line), "{failure}");
        assert!(failure.reason.contains(reason), "{failure}");
    };

    let mut edited = original.clone();
    edited[3] = edited[3].replace("policy_denied", "completed");
    expect(&edited, 4, "hash does not match");

    let mut added_field = original.clone();
    added_field[2] = added_field[2].replacen('{', r#"{"note":"x","#, 1);
    expect(&added_field, 3, "not the canonical form");
    // In canonical position (keys sorted), an added field breaks the hash.
    let mut added_sorted = original.clone();
    added_sorted[2] = added_sorted[2].replacen(r#","prev_hash""#, r#","note":"x","prev_hash""#, 1);
    expect(&added_sorted, 3, "hash does not match");

    let mut rehashed = original.clone();
    rehashed[3] = rehash(&rehashed[3].replace("policy_denied", "completed"));
    expect(&rehashed, 5, "prev_hash");

    let mut deleted = original.clone();
    deleted.remove(2);
    expect(&deleted, 3, "seq 4 where 3 was expected");

    let mut reordered = original.clone();
    reordered.swap(2, 3);
    expect(&reordered, 3, "seq 4 where 3 was expected");

    // The last record rewritten with its hash recomputed: only the checkpoint knows.
    let mut last_rewritten = original.clone();
    let last = last_rewritten.len() - 1;
    last_rewritten[last] = rehash(&last_rewritten[last].replace("stopped", "still running"));
    expect(&last_rewritten, last + 1, "differs from checkpoint");

    let truncated = original[..original.len() - 2].to_vec();
    expect(&truncated, original.len() - 2, "the tail was truncated");

    let mut torn = original.iter().map(|l| format!("{l}\n")).collect::<String>();
    torn.push_str(r#"{"seq":8,"ts":"#);
    std::fs::write(&file, torn).unwrap();
    let failure = check(root.path()).unwrap_err();
    assert_eq!(failure.line, original.len() + 1);
    assert!(failure.reason.contains("torn line"), "{failure}");

    write_lines(&file, &original);
    let checkpoints = root.path().join(".audit/checkpoints.jsonl");
    let good = std::fs::read_to_string(&checkpoints).unwrap();
    let first: Value = serde_json::from_str(good.lines().next().unwrap()).unwrap();
    let forged = good.replacen(first["ts"].as_str().unwrap(), "2000-01-01T00:00:00.000Z", 1);
    std::fs::write(&checkpoints, forged).unwrap();
    let failure = check(root.path()).unwrap_err();
    assert_eq!((failure.file.as_path(), failure.line), (checkpoints.as_path(), 1));
    assert!(failure.reason.contains("bad checkpoint signature"), "{failure}");
    std::fs::write(&checkpoints, good).unwrap();
    assert!(check(root.path()).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_verifies_and_fails_non_zero() {
    let (root, _) = populated().await;
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fastmcp"))
            .args(["audit", "verify", "--root"])
            .arg(root.path())
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: 7 records in 1 files"));
    let (file, mut lines) = trail(root.path());
    lines[1] = lines[1].replace("pending_confirmation", "completed");
    write_lines(&file, &lines);
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains(&format!("{}:2: hash does not match", file.display())), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_tail_is_moved_aside_and_recorded() {
    let (root, _) = populated().await;
    let (file, lines) = trail(root.path());
    let mut crashed = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    crashed.push_str(r#"{"seq":8,"event":"tools.inv"#);
    std::fs::write(&file, &crashed).unwrap();

    let server = TestServer::start(&root).await;
    server.stop().await;
    let records = records(root.path());
    let recovered = &records[7];
    assert_eq!(recovered["event"], "audit.recovered");
    assert_eq!(recovered["detail"]["bytes"], 27);
    let aside = root.path().join(".audit").join(recovered["detail"]["preserved_as"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(aside).unwrap(), r#"{"seq":8,"event":"tools.inv"#);
    assert_eq!(records[8]["event"], "host.start");
    check(root.path()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_may_opt_a_tool_in_to_recording_arguments() {
    let root = TestRoot::new();
    let manifest = std::fs::read_to_string(root.path().join("manifests/util.yaml")).unwrap();
    let opted_in = manifest.replacen(
        "    annotations: { read_only: true, idempotent: true }\n",
        "    annotations: { read_only: true, idempotent: true }\n    audit: { record_args: true }\n",
        1,
    );
    assert_ne!(opted_in, manifest);
    root.write("manifests/util.yaml", opted_in);
    let server = TestServer::start(&root).await;
    assert_eq!(server.invoke("util:echo", json!({"order": 42})).await.status(), 200);
    assert_eq!(server.invoke("util:sha256", json!({"text": "private"})).await.status(), 200);
    server.stop().await;
    let records = records(root.path());
    let echo = records.iter().find(|r| r["tool"] == "util:echo").unwrap();
    assert_eq!(echo["args"], json!({"order": 42}));
    let sha = records.iter().find(|r| r["tool"] == "util:sha256").unwrap();
    assert!(sha.get("args").is_none());
    check(root.path()).unwrap();
}
