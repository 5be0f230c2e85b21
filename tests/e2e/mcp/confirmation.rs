//! The confirmation gate over MCP: approved through elicitation (MRTR for
//! 2026-07-28, `elicitation/create` for 2025-11-25) it runs once; declined
//! or cancelled it never runs; a client that cannot elicit never runs it
//! and gets the action token for an out-of-band approval.

use super::clients::{self, ALL};
use super::{call_records, correlation_of, mcp_url, problem_code};
use crate::harness::{TestRoot, TestServer, campaign_named, json};
use serde_json::{Value, json};

/// Names of the campaigns the upstream holds (through the REST API).
async fn campaigns(server: &TestServer) -> Vec<String> {
    let (status, body) = json(server.invoke("ads:listCampaigns", json!({"limit": 500})).await).await;
    assert_eq!(status, 200, "{body}");
    body["result"]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn confirm(tool_args: Value, answer: &str) -> Value {
    json!({"tool": "ads.createCampaign", "args": tool_args, "answer": answer})
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_by_elicitation_runs_once() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for sdk in ALL {
        let name = format!("approved-{sdk:?}-{}", uuid_like());
        let out =
            clients::run(sdk, &url, Some(&server.token), "confirm", confirm(campaign_named(&name), "accept"))
                .await;
        assert_eq!(out["version"], sdk.revision());
        assert_eq!(out["is_error"], false, "{sdk:?}: {out}");
        assert_eq!(out["structured"]["name"], name.as_str());
        // The human saw the hint, the tool and the arguments; one boolean asked.
        let asked = out["asked"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{sdk:?}: asked once");
        let message = asked[0]["message"].as_str().unwrap();
        assert!(message.contains("Creates a live campaign that spends budget"), "{message}");
        assert!(message.contains("ads:createCampaign") && message.contains(&name), "{message}");
        let properties = asked[0]["schema"]["properties"].as_object().unwrap();
        assert_eq!(properties.keys().collect::<Vec<_>>(), ["approve"]);
        assert_eq!(campaigns(&server).await.iter().filter(|c| **c == name).count(), 1, "{sdk:?}: ran once");
        let decisions = gate_decisions(root.path(), &out);
        assert_eq!(decisions, ["pending_confirmation", "confirmed"], "{sdk:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_or_cancelled_never_runs() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for sdk in ALL {
        for answer in ["decline", "cancel"] {
            let name = format!("{answer}-{sdk:?}-{}", uuid_like());
            let out = clients::run(
                sdk,
                &url,
                Some(&server.token),
                "confirm",
                confirm(campaign_named(&name), answer),
            )
            .await;
            assert_eq!(problem_code(&out), "confirmation_declined", "{sdk:?} {answer}: {out}");
            assert_eq!(out["asked"].as_array().unwrap().len(), 1);
            assert!(!campaigns(&server).await.contains(&name), "{sdk:?} {answer}: never ran");
            let decisions = gate_decisions(root.path(), &out);
            assert_eq!(decisions, ["pending_confirmation", "confirmation_declined"], "{sdk:?} {answer}");
            let last = call_records(root.path(), &correlation_of(&out)).pop().unwrap();
            let reason = if answer == "decline" { "declined" } else { "cancelled" };
            assert!(last["detail"]["error"].as_str().unwrap().contains(reason), "{last}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_cannot_elicit_never_runs_it() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let url = mcp_url(&server);
    for sdk in ALL {
        let name = format!("no-elicit-{sdk:?}-{}", uuid_like());
        let args = campaign_named(&name);
        let out =
            clients::run(sdk, &url, Some(&server.token), "confirm", confirm(args.clone(), "none")).await;
        assert_eq!(out["is_error"], true, "{sdk:?}: {out}");
        assert!(out["text"][0].as_str().unwrap().starts_with("confirmation_required: "), "{out}");
        assert!(!campaigns(&server).await.contains(&name), "{sdk:?}: never ran");
        // The pending action can be approved out of band, over REST.
        let pending = &out["meta"]["io.fastmcp/pending"];
        assert_eq!(pending["confirm_url"], "/tools/ads:createCampaign/confirm");
        let (status, done) = json(server.confirm(&pending["action_token"], args).await).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(campaigns(&server).await.iter().filter(|c| **c == name).count(), 1);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_or_replayed_request_state_runs_nothing() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    // A 2026-07-28 retry with a made-up requestState and an "approval".
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": "ads.createCampaign",
            "arguments": campaign_named("forged"),
            "requestState": "at1.forged.state",
            "inputResponses": {"confirm": {"action": "accept", "content": {"approve": true}}},
            "_meta": modern_meta(),
        }
    });
    let response = modern_post(&server, &server.token, "tools/call", Some("ads.createCampaign"), &body).await;
    let (status, reply) = json(response).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert_eq!(reply["result"]["_meta"]["io.fastmcp/problem"]["code"], "invalid_action_token");
    assert!(!campaigns(&server).await.contains(&"forged".to_owned()));
    server.stop().await;
}

/// The decisions of the invoke and the confirm (or decline) of the action a
/// result ends, linked by the action token's id: one HTTP request for a
/// 2025-11-25 session, two (the MRTR retry) for 2026-07-28. All over MCP.
fn gate_decisions(root: &std::path::Path, result: &Value) -> Vec<String> {
    let last = call_records(root, &correlation_of(result)).pop().expect("the final record");
    let action_id = last["detail"]["action_id"].clone();
    assert!(action_id.is_string(), "{last}");
    let records: Vec<Value> = crate::harness::audit_records(root)
        .into_iter()
        .filter(|r| r["detail"]["action_id"] == action_id)
        .collect();
    assert!(records.iter().all(|r| r["transport"] == "mcp"), "{records:?}");
    records.iter().map(|r| r["decision"].as_str().unwrap().to_owned()).collect()
}

/// `_meta` of a 2026-07-28 request.
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// POST a 2026-07-28 request with its headers.
pub async fn modern_post(
    server: &TestServer,
    token: &str,
    method: &str,
    name: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    modern_request(server, token, method, name, body).send().await.unwrap()
}

/// A 2026-07-28 request with its headers, to customise.
pub fn modern_request(
    server: &TestServer,
    token: &str,
    method: &str,
    name: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = server
        .client()
        .post(super::mcp_url(server))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(body);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    request
}

/// A short unique suffix.
fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
