//! The connect flow in a real browser: the authorization URL from
//! `POST /connections/ads-user` opened in headless Chromium
//! (`tests/browser/connect_flow.py`), sign-in and consent on the
//! development upstream's page, the host's callback page naming whose
//! identity the account joins, "Connect"; the next tool call acts as that
//! account.

use super::{connecting, start, user};
use crate::harness::json;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_connects_in_the_browser_and_the_next_call_acts_as_them() {
    let (upstream, _root, server) = connecting().await;
    let alice = user(&server, "alice");
    let authorization_url = start(&server, &alice).await;
    let arg = json!({
        "chromium": crate::browser::chromium(),
        "authorization_url": authorization_url,
        "login": "alice.ads",
        "callback_prefix": server.url("/connections/ads-user/callback"),
    });
    let seen = crate::browser::run("connect_flow.py", &arg).await;
    assert!(seen["consent_text"].as_str().unwrap().contains("campaigns.read"), "{seen}");
    assert!(seen["after_wrong_password"].as_str().unwrap().contains("/oauth/authorize"), "{seen}");
    assert_eq!(seen["callback_status"], 200);
    let asked = seen["confirm_message"].as_str().unwrap();
    assert!(asked.contains("FastMCP user alice (tenant public)"), "{asked}");
    assert_eq!(seen["scripts_on_page"], 0);
    assert_eq!(seen["callback_headers"]["referrer-policy"], "no-referrer");
    assert_eq!(seen["callback_headers"]["x-frame-options"], "DENY");
    let csp = seen["callback_headers"]["content-security-policy"].as_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    assert_eq!((seen["connect_status"].as_u64(), seen["title"].as_str()), (Some(200), Some("Connected")));
    let message = seen["message"].as_str().unwrap();
    assert!(
        message.contains("ads-user") && message.contains("alice") && message.contains("close this tab"),
        "{message}"
    );
    assert_eq!(
        (seen["replay_status"].as_u64(), seen["replay_code"].as_str()),
        (Some(400), Some("connection_flow_invalid"))
    );

    let (status, body) = json(server.invoke_as(&alice, "ads:myCampaigns", json!({})).await).await;
    assert_eq!((status, &body["result"]["user"]), (200, &json!("alice.ads")), "{body}");
    assert_eq!(upstream.upstream.acting().last().unwrap()["sub"], "alice.ads");
    let stats = upstream.stats().await;
    assert_eq!(
        (&stats["code_grants"], &stats["refresh_grants"]),
        (&json!(1), &json!(0)),
        "a fresh token is used as is"
    );
    server.stop().await;
}
