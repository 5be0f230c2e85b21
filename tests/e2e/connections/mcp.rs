//! `connection_required` over MCP with the official SDKs: a client that
//! declared URL-mode elicitation is sent the authorization URL, the user
//! connects, and the same `tools/call` completes as them; other clients
//! get the code, provider and URL in `_meta`.

use super::connecting;
use crate::mcp::clients::{self, Sdk};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_url_elicitation_client_connects_and_its_call_completes_as_the_user() {
    let (upstream, _root, server) = connecting().await;
    let alice =
        server.token_for("alice", "public", &["tester"], &["tools.invoke:write", "tools.query:catalog"]);
    let arg = json!({"mode": "url", "login": "alice.ads", "tool": "ads.myCampaigns"});
    let out = clients::run(Sdk::TypeScript, &server.url("/mcp"), Some(&alice), "connect", arg).await;
    assert_eq!(out["version"], "2025-11-25");
    let asked = out["asked"].as_array().unwrap();
    assert_eq!(asked.len(), 1, "{out}");
    assert_eq!(asked[0]["mode"], "url");
    let url = asked[0]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{}/oauth/authorize?", upstream.addr)), "{url}");
    assert_eq!(out["callback_status"], json!([200]), "{out}");
    assert_eq!(out["is_error"], false, "{out}");
    assert_eq!(out["structured"]["user"], "alice.ads", "{out}");
    assert_eq!(upstream.upstream.acting().last().unwrap()["sub"], "alice.ads");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_clients_get_the_code_and_the_url_in_meta() {
    let (upstream, _root, server) = connecting().await;
    let bob = server.token_for("bob", "public", &["tester"], &["tools.invoke:write", "tools.query:catalog"]);
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        let arg = json!({"mode": "form", "login": "bob.ads", "tool": "ads.myCampaigns"});
        let scenario = if sdk == Sdk::TypeScript { "connect" } else { "call" };
        let out = clients::run(sdk, &server.url("/mcp"), Some(&bob), scenario, arg).await;
        assert_eq!(out["is_error"], true, "{sdk:?}: {out}");
        let problem = &out["meta"]["io.fastmcp/problem"];
        assert_eq!(problem["code"], "connection_required", "{sdk:?}: {out}");
        assert_eq!(problem["provider"], "ads-user");
        let url = problem["authorization_url"].as_str().unwrap();
        assert!(url.starts_with(&format!("http://{}/oauth/authorize?", upstream.addr)), "{url}");
        if sdk == Sdk::TypeScript {
            assert_eq!(out["asked"], json!([]), "a form-only client is never sent a URL elicitation");
        }
    }
    server.stop().await;
}
