//! The approver inbox page in a real browser: Debian's Chromium, headless,
//! driven by Playwright for Python (`tests/browser/approvals_page.py`, in a
//! venv under `target/browser-venv`; Playwright never downloads a browser
//! here). Two approvers sign in and approve a call whose arguments carry
//! markup (shown as text, never run); the requester sees no buttons on
//! their own call; the requester's `GET /calls/{id}` then has the result.

use super::{APPROVER_SCOPES, approver, outcome, request, root};
use crate::harness::{TestServer, workspace};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The system Chromium: `FASTMCP_CHROMIUM`, else Debian's binary.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("FASTMCP_CHROMIUM") {
        return path.into();
    }
    let debian = Path::new("/usr/lib/chromium/chromium");
    assert!(
        debian.exists(),
        "the browser tests need Chromium: apt-get install -y chromium (or set FASTMCP_CHROMIUM)"
    );
    debian.to_path_buf()
}

/// The venv with Playwright (created once per test process; again only
/// when `tests/browser/requirements.txt` changes).
fn playwright_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        crate::mcp::clients::venv_with("target/browser-venv", "tests/browser/requirements.txt")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn approvers_decide_in_the_inbox_page_and_hostile_arguments_stay_text() {
    let root = root(2);
    let server = TestServer::start(&root).await;
    let hostile = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>";
    let id = request(&server, json!({"name": hostile})).await["call_id"].as_str().unwrap().to_owned();
    let own = request(&server, json!({"name": "mine"})).await["call_id"].as_str().unwrap().to_owned();
    let requester = server.token_for("tester", "public", &["tester", "approver"], APPROVER_SCOPES);
    let arg = json!({
        "base": server.base,
        "chromium": chromium(),
        "alice": approver(&server, "alice"),
        "bob": approver(&server, "bob"),
        "requester": requester,
        "hostile_call": id,
        "own_call": own,
    });
    let python = playwright_venv().join("bin/python");
    let script = workspace().join("tests/browser/approvals_page.py");
    let mut command = tokio::process::Command::new(python);
    command.arg(script).arg(arg.to_string()).kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the browser run finishes within 3 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    let csp = seen["csp"].as_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(seen["nosniff"], "nosniff");
    assert_eq!(seen["arguments"], json!({"name": hostile}), "shown exactly, as text");
    assert_eq!(seen["pwned"], serde_json::Value::Null, "the hostile script never ran");
    assert_eq!(seen["dialogs"], json!([]), "no injected handler ran");
    assert_eq!(seen["token_in_session_storage"], true);
    assert_eq!(seen["local_storage_keys"], json!([]), "never in localStorage");
    assert!(!seen["url_after_sign_in"].as_str().unwrap().contains("token"), "never in a URL");
    assert_eq!((seen["requester_inbox"].as_u64(), seen["requester_buttons"].as_u64()), (Some(0), Some(0)));

    // Two approvals in the page completed the quorum: the requester has the result.
    let done = outcome(&server, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], json!({"name": hostile}));
    let comments: Vec<_> =
        done["decisions"].as_array().unwrap().iter().map(|d| d["approver"]["sub"].clone()).collect();
    assert_eq!(comments, [json!("alice"), json!("bob")]);
    server.stop().await;
}
