//! The approver inbox page in a real browser: Debian's Chromium, headless,
//! driven by Playwright for Python (`tests/browser/approvals_page.py`, in a
//! venv under `target/browser-venv`; Playwright never downloads a browser
//! here). Two approvers sign in and approve a call whose arguments carry
//! markup (shown as text, never run); the requester sees no buttons on
//! their own call; the requester's `GET /calls/{id}` then has the result.

use super::{APPROVER_SCOPES, approver, outcome, request, root};
use crate::harness::TestServer;
use serde_json::json;

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
        "chromium": crate::browser::chromium(),
        "alice": approver(&server, "alice"),
        "bob": approver(&server, "bob"),
        "requester": requester,
        "hostile_call": id,
        "own_call": own,
    });
    let seen = crate::browser::run("approvals_page.py", &arg).await;

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
