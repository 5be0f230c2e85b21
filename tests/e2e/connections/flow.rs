//! The connect flow over REST: `connection_required` names a flow to open;
//! after consent the next call acts as the account connected; every
//! callback that is not the one a flow expects is refused and stores
//! nothing.

use super::{callback, connect, connecting, connections_of, consent, start, user};
use crate::harness::{audit_records, json, problem};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn connection_required_then_connect_then_the_call_acts_as_that_account() {
    let (upstream, root, server) = connecting().await;
    let alice = user(&server, "alice");
    let required =
        problem(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await, 403, "connection_required")
            .await;
    assert_eq!(required["provider"], "ads-user");
    let url = required["authorization_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{}/oauth/authorize?", upstream.addr)), "{url}");
    for part in ["code_challenge_method=S256", "state=", "response_type=code", "redirect_uri="] {
        assert!(url.contains(part), "{url}");
    }
    // Nothing reached the Ads API.
    assert_eq!(upstream.upstream.acting(), Vec::<serde_json::Value>::new());

    let back = consent(url, "alice.ads").await;
    let (status, page) = super::callback_page(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("to the FastMCP user alice (tenant public)?"), "the page names whose: {page}");
    let (status, page) = super::answer(&back, "connect").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("now connected for alice") && page.contains("close this tab"), "{page}");

    let (status, body) = json(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await).await;
    assert_eq!((status, &body["result"]["user"]), (200, &json!("alice.ads")), "{body}");
    assert_eq!(upstream.upstream.acting().last().unwrap()["sub"], "alice.ads");
    // Bob has not connected: his call still needs his own connection.
    let bob = user(&server, "bob");
    problem(server.invoke_as(&bob, "ads:myCampaigns", json!({})).await, 403, "connection_required").await;
    // Tools that act as the service are unaffected.
    let (status, _) = json(server.invoke_as(&bob, "ads:listCampaigns", json!({})).await).await;
    assert_eq!(status, 200);

    // Alice's list names the provider, never a token.
    let listed = connections_of(&server, &alice).await;
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["connections"][0]["provider"], "ads-user");
    assert_eq!(listed["connections"][0]["refreshable"], true);
    super::assert_no_token_in(&upstream, listed.to_string().as_bytes(), "GET /connections");
    assert_eq!(connections_of(&server, &bob).await["connections"], json!([]));

    // The trail records the connection and who went upstream, never a token.
    let records = audit_records(root.path());
    assert!(
        records.iter().any(|r| r["event"] == "connections.connected" && r["principal"]["sub"] == "alice")
    );
    let call = records.iter().rfind(|r| r["tool"] == "ads:myCampaigns" && r["status"] == 200).unwrap();
    let inject = call["detail"]["egress"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "inject")
        .unwrap();
    assert_eq!(inject["identity"], "alice");
    for file in std::fs::read_dir(root.path().join(".audit")).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            super::assert_no_token_in(&upstream, &std::fs::read(&path).unwrap(), "the audit trail");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_that_no_flow_expects_are_refused_and_store_nothing() {
    let (upstream, _root, server) = connecting().await;
    let (alice, bob) = (user(&server, "alice"), user(&server, "bob"));
    let callback_url = server.url("/connections/ads-user/callback");

    // A callback without a pending flow.
    let (status, page) = callback(&format!("{callback_url}?state=made-up&code=made-up")).await;
    assert_eq!(status, 400);
    assert!(page.contains("connection_flow_invalid"), "{page}");
    let (status, _) = callback(&callback_url).await;
    assert_eq!(status, 400);

    // A state from another user's flow, with this user's code: the code was
    // issued for another PKCE challenge, so the provider refuses it.
    let url_alice = start(&server, &alice).await;
    let url_bob = start(&server, &bob).await;
    let bob_back = consent(&url_bob, "bob.ads").await;
    let state_of = |url: &str| {
        reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned()
    };
    let code_of = |url: &str| {
        reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
    };
    let crossed = format!("{callback_url}?state={}&code={}", state_of(&url_alice), code_of(&bob_back));
    let (status, page) = callback(&crossed).await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("connection_refused") && page.contains("invalid_grant"), "{page}");
    assert_eq!(connections_of(&server, &alice).await["connections"], json!([]), "nothing stored for alice");
    // Alice's flow was used up by that attempt.
    let (status, _) = callback(&crossed).await;
    assert_eq!(status, 400);

    // Bob's own callback still works; replaying it is refused and changes nothing.
    let (status, page) = callback(&bob_back).await;
    assert_eq!(status, 200, "{page}");
    let before = connections_of(&server, &bob).await;
    let grants = upstream.stats().await["code_grants"].clone();
    let (status, page) = callback(&bob_back).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("connection_flow_invalid"), "{page}");
    assert_eq!(connections_of(&server, &bob).await, before, "the replay changed nothing");
    assert_eq!(upstream.stats().await["code_grants"], grants, "the code never reached the provider again");

    // A link someone else started: the page names them; cancelling ends it.
    let url = start(&server, &alice).await;
    let back = consent(&url, "bob.ads").await;
    let (status, page) = super::callback_page(&back).await;
    assert!(status == 200 && page.contains("FastMCP user alice"), "{page}");
    let (status, page) = super::answer(&back, "cancel").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("connection_declined"), "{page}");
    assert_eq!(callback(&back).await.0, 400, "the flow is over");
    assert_eq!(connections_of(&server, &alice).await["connections"], json!([]));

    // A flow of this provider presented on another provider's callback.
    let url = start(&server, &alice).await;
    let (status, _) =
        callback(&server.url(&format!("/connections/ads-api/callback?state={}&code=x", state_of(&url))))
            .await;
    assert_eq!(status, 400);

    // A redirect URI other than the registered one: the provider shows an
    // error and never redirects, so no code is issued.
    let url = start(&server, &alice).await;
    let evil = url.replace(
        &format!("redirect_uri={}", urlencoding(&callback_url)),
        &format!("redirect_uri={}", urlencoding("http://evil.example/cb")),
    );
    assert_ne!(evil, url);
    let codes = upstream.stats().await["codes_issued"].clone();
    let response = super::no_redirects().get(&evil).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let mut form: Vec<(String, String)> = reqwest::Url::parse(&evil)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.extend(
        [("username", "alice.ads"), ("password", "dev"), ("decision", "allow")]
            .map(|(k, v)| (k.into(), v.into())),
    );
    let posted = super::no_redirects()
        .post(format!("http://{}/oauth/authorize", upstream.addr))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 400, "never redirected");
    assert_eq!(upstream.stats().await["codes_issued"], codes);
    assert_eq!(connections_of(&server, &alice).await["connections"], json!([]));
    server.stop().await;
}

/// `application/x-www-form-urlencoded` encoding, as the host builds the URL.
fn urlencoding(value: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", [("v", value)]).unwrap().query().unwrap()[2..].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_routes_need_a_caller_a_known_provider_and_stay_within_the_flow_quota() {
    // Flows of one minute are never answered again: each start is a new one.
    let (_upstream, root, server) =
        super::connecting_with(|_, config| config.connections.flow_ttl = std::time::Duration::from_secs(60))
            .await;
    let client = server.client();
    let unauthenticated = client.post(server.url("/connections/ads-user")).send().await.unwrap();
    problem(unauthenticated, 401, "unauthenticated").await;
    let alice = user(&server, "alice");
    for name in ["nope", "ads-api", "BAD%20NAME"] {
        let response = client
            .post(server.url(&format!("/connections/{name}")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        problem(response, 404, "provider_not_found").await;
    }
    let forget = client.delete(server.url("/connections/ads-user")).bearer_auth(&alice).send().await.unwrap();
    problem(forget, 404, "connection_not_found").await;
    // Five pending flows at most (the default); the sixth is refused.
    for _ in 0..5 {
        start(&server, &alice).await;
    }
    let sixth = client.post(server.url("/connections/ads-user")).bearer_auth(&alice).send().await.unwrap();
    problem(sixth, 429, "connection_quota_exceeded").await;
    // connection_required still answers, without a new flow.
    let required =
        problem(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await, 403, "connection_required")
            .await;
    assert!(required.get("authorization_url").is_none(), "{required}");
    // Another user is not affected by alice's quota.
    start(&server, &user(&server, "bob")).await;
    connect(&server, "carol", "carol.ads").await;
    drop(root);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_call_runs_with_its_requesters_connection() {
    let policy =
        crate::approvals::policy(1).replace("tools: [\"util:echo\"]", "tools: [\"ads:myCampaigns\"]");
    let (upstream, _root, server) =
        super::connecting_with(|root, _| root.write("policies/policies.yml", policy)).await;
    connect(&server, "alice", "alice.ads").await;
    let alice = user(&server, "alice");
    let (status, body) = json(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await).await;
    assert_eq!((status, &body["status"]), (202, &json!("awaiting_approval")), "{body}");
    let id = body["call_id"].as_str().unwrap();
    let (status, _) =
        crate::approvals::decide(&server, &crate::approvals::approver(&server, "zoe"), id, "approve", None)
            .await;
    assert_eq!(status, 200);
    let (status, done) = crate::approvals::get_as(&server, &alice, &format!("/calls/{id}?wait=30")).await;
    assert_eq!((status, &done["status"]), (200, &json!("completed")), "{done}");
    assert_eq!(done["result"]["user"], "alice.ads", "{done}");
    assert_eq!(upstream.upstream.acting().last().unwrap()["sub"], "alice.ads");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_flow_is_answered_again_until_it_is_used() {
    let (_upstream, _root, server) = connecting().await;
    let alice = user(&server, "alice");
    let first = start(&server, &alice).await;
    assert_eq!(start(&server, &alice).await, first, "POST /connections answers the pending flow");
    let required =
        problem(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await, 403, "connection_required")
            .await;
    assert_eq!(required["authorization_url"], first.as_str(), "and so does connection_required");
    assert_ne!(start(&server, &user(&server, "bob")).await, first, "never another caller's");
    let (status, _) = callback(&consent(&first, "alice.ads").await).await;
    assert_eq!(status, 200);
    assert_ne!(start(&server, &alice).await, first, "a used flow is never answered again");
    server.stop().await;
}
