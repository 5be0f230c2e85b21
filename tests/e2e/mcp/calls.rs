//! `tools/list` and `tools/call` with both SDKs: what each role sees, results,
//! errors, idempotency, concurrency, and the audit records they leave.

use super::clients::{self, ALL, Sdk};
use super::{call_records, correlation_of, mcp_url, problem_code};
use crate::harness::{TestRoot, TestServer, audit_records, json};
use serde_json::{Value, json};

fn names(listing: &Value) -> Vec<&str> {
    listing["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_shows_what_the_role_grants_in_order() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    let scopes = ["tools.invoke:write", "tools.query:catalog"];
    let analyst = server.token_for("a-1", "public", &["analyst"], &scopes);
    let finance = server.token_for("f-1", "public", &["finance-write"], &scopes);
    for sdk in ALL {
        let listing = clients::run(sdk, &url, Some(&finance), "list", json!({})).await;
        assert_eq!(listing["version"], sdk.revision(), "{sdk:?}");
        assert_eq!(
            names(&listing),
            ["ads.createCampaign", "ads.listCampaigns", "ads.myCampaigns", "util.echo", "util.sha256"],
            "{sdk:?}"
        );
        let create = &listing["tools"][0];
        assert_eq!(create["title"], "ads:createCampaign");
        assert_eq!(create["has_output_schema"], true);
        let hints = &create["annotations"];
        assert_eq!(
            (
                &hints["destructiveHint"],
                &hints["readOnlyHint"],
                &hints["idempotentHint"],
                &hints["openWorldHint"]
            ),
            (&json!(true), &json!(false), &json!(false), &json!(true)),
            "{sdk:?}: {create}"
        );
        let listing = clients::run(sdk, &url, Some(&analyst), "list", json!({})).await;
        assert_eq!(names(&listing), ["ads.listCampaigns", "util.echo", "util.sha256"], "{sdk:?}");
    }
    // The same tools as the REST catalog, for the same caller.
    let catalog =
        server.client().get(server.url("/tool-catalog")).bearer_auth(&analyst).send().await.unwrap();
    let (_, catalog) = json(catalog).await;
    let ids: Vec<String> = catalog["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().replacen(':', ".", 1))
        .collect();
    assert_eq!(ids, ["ads.listCampaigns", "util.echo", "util.sha256"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_answer_structured_results_audited_like_rest() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for sdk in ALL {
        let args = json!({"greeting": "hello", "sdk": format!("{sdk:?}")});
        let result =
            clients::run(sdk, &url, Some(&server.token), "call", json!({"tool": "util.echo", "args": args}))
                .await;
        assert_eq!(result["is_error"], false, "{sdk:?}: {result}");
        assert_eq!(result["structured"], args, "{sdk:?}");
        let text: Value = serde_json::from_str(result["text"][0].as_str().unwrap()).unwrap();
        assert_eq!(text, args, "the text block carries the same JSON");
        let records = call_records(root.path(), &correlation_of(&result));
        assert_eq!(records.len(), 1, "{records:?}");
        let record = &records[0];
        assert_eq!(
            (&record["event"], &record["decision"], &record["status"], &record["transport"], &record["tool"]),
            (&json!("tools.invoke"), &json!("completed"), &json!(200), &json!("mcp"), &json!("util:echo")),
            "{record}"
        );
    }
    // A REST call of the same tool leaves a record of the same shape.
    let response =
        server.post_invoke("util:echo").header("x-correlation-id", "rest-1").json(&json!({"a": 1}));
    assert_eq!(response.send().await.unwrap().status(), 200);
    let rest = &call_records(root.path(), "rest-1")[0];
    let mcp = audit_records(root.path()).into_iter().find(|r| r["transport"] == "mcp").unwrap();
    let keys = |r: &Value| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(rest), keys(&mcp), "MCP and REST records have the same fields");
    assert_eq!(rest["transport"], "rest");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_error_results_naming_the_code() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    let scopes = ["tools.invoke:write", "tools.query:catalog", "ads.write"];
    let analyst = server.token_for("a-2", "public", &["analyst"], &scopes);
    for sdk in ALL {
        let call = |token: String, tool: &'static str, args: Value| {
            let url = url.clone();
            async move { clients::run(sdk, &url, Some(&token), "call", json!({"tool": tool, "args": args})).await }
        };
        // Invalid arguments: the schema's violations, as on REST.
        let result = call(server.token.clone(), "util.sha256", json!({"text": 5})).await;
        assert_eq!(problem_code(&result), "invalid_arguments", "{sdk:?}");
        let errors = &result["meta"]["io.fastmcp/problem"]["errors"];
        assert!(errors.as_array().is_some_and(|e| !e.is_empty()), "{result}");
        let text = result["text"][0].as_str().unwrap();
        assert!(text.starts_with("invalid_arguments: "), "{result}");
        // The text itself names the argument and why (a model reads the
        // text, not `_meta`).
        assert!(text.contains("\n- /text: 5 is not of type \"string\""), "{sdk:?}: {text}");
        // A policy rule denies (budget cap).
        let campaign = json!({"name": "Huge", "budget": 90000, "startDate": "2026-01-01"});
        let result = call(server.token.clone(), "ads.createCampaign", campaign).await;
        assert_eq!(problem_code(&result), "policy_denied", "{sdk:?}");
        assert_eq!(result["meta"]["io.fastmcp/problem"]["rule"], "budget-cap");
        // No role grants it: the same answer whether or not the tool exists.
        let granted_not = call(analyst.clone(), "ads.createCampaign", json!({})).await;
        let missing = call(analyst.clone(), "ads.noSuchTool", json!({})).await;
        assert_eq!(problem_code(&granted_not), "policy_denied", "{sdk:?}");
        assert_eq!(problem_code(&missing), "policy_denied", "{sdk:?}");
        assert_eq!(granted_not["meta"]["io.fastmcp/problem"]["rule"], "rbac");
        assert_eq!(missing["meta"]["io.fastmcp/problem"]["rule"], "rbac");
        // An unknown tool for a caller who could use it: MCP's protocol error.
        let result = call(server.token.clone(), "ads.noSuchTool", json!({})).await;
        assert_eq!(result["error"]["code"], -32602, "{sdk:?}: {result}");
        assert_eq!(result["error"]["data"]["code"], "tool_not_found", "{sdk:?}");
    }
    let denied = audit_records(root.path())
        .into_iter()
        .filter(|r| r["transport"] == "mcp" && r["event"] == "tools.denied")
        .count();
    assert_eq!(denied, ALL.len() * 5, "every refusal is recorded");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_in_meta_replays() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for sdk in ALL {
        let key = format!("mcp-key-{sdk:?}");
        let arg = json!({"tool": "util.echo", "args": {"once": true}, "key": key});
        let out = clients::run(sdk, &url, Some(&server.token), "idempotent", arg).await;
        let (first, second) = (&out["first"], &out["second"]);
        assert_eq!(first["is_error"], false, "{sdk:?}: {out}");
        assert_eq!(second["structured"], first["structured"], "{sdk:?}");
        assert_eq!(second["meta"]["io.fastmcp/replayed"], true, "{sdk:?}: {out}");
        assert_eq!(correlation_of(second), correlation_of(first), "the replay names the call that ran");
    }
    let decisions: Vec<String> = audit_records(root.path())
        .into_iter()
        .filter(|r| r["transport"] == "mcp")
        .map(|r| r["decision"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(decisions, ["completed", "replayed"].repeat(ALL.len()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_calls() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for sdk in [Sdk::Python, Sdk::TypeScript] {
        let out = clients::run(
            sdk,
            &url,
            Some(&server.token),
            "concurrent",
            json!({"tool": "util.echo", "count": 50}),
        )
        .await;
        let results = out["results"].as_array().unwrap();
        assert_eq!(results.len(), 50);
        let mut seen: Vec<u64> = results
            .iter()
            .map(|r| {
                assert_eq!(r["is_error"], false, "{sdk:?}: {r}");
                r["structured"]["n"].as_u64().unwrap()
            })
            .collect();
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>(), "{sdk:?}: each call got its own answer");
    }
    let completed = audit_records(root.path())
        .into_iter()
        .filter(|r| r["transport"] == "mcp" && r["decision"] == "completed")
        .count();
    assert_eq!(completed, 100);
    server.stop().await;
}
