//! Per-user OAuth connections against the development upstream's
//! authorization server: the connect flow (REST, a real browser, MCP), the
//! tokens sealed at rest, refresh, revocation and the callback's attack
//! cases.

mod browser;
mod flow;
mod mcp;
mod tokens;

use crate::harness::{TestRoot, TestServer, TestUpstream, json};
use serde_json::Value;

/// A host whose `ads-user` provider is the development upstream's code flow
/// (with revocation), and that upstream, which accepts the host's callback.
pub async fn connecting() -> (TestUpstream, TestRoot, TestServer) {
    connecting_with(|_, _| {}).await
}

/// [`connecting`], with the root and configuration prepared by `prepare`
/// before the host starts.
pub async fn connecting_with(
    prepare: impl FnOnce(&TestRoot, &mut fastmcp_host::HostConfig),
) -> (TestUpstream, TestRoot, TestServer) {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let addr = upstream.addr;
    root.write(
        ".runtime/providers.yml",
        format!(
            "providers:\n  ads-api:\n    kind: oauth2_client_credentials\n    token_url: http://{addr}/oauth/token\n    client_id: {id}\n    client_secret: {{ file: ads-client-secret }}\n    plugins: [ads]\n    origins: [\"http://{addr}\"]\n    allow_http: true\n  ads-user:\n    kind: oauth2_authorization_code\n    authorize_url: http://{addr}/oauth/authorize\n    token_url: http://{addr}/oauth/token\n    revoke_url: http://{addr}/oauth/revoke\n    client_id: {id}\n    client_secret: {{ file: ads-client-secret }}\n    scopes: [campaigns.read]\n    plugins: [ads]\n    origins: [\"http://{addr}\"]\n    allow_http: true\n",
            id = fastmcp_dev_upstream::DEV_CLIENT_ID
        ),
    );
    let mut config = root.config();
    prepare(&root, &mut config);
    let server = TestServer::start_with(config).await;
    upstream.upstream.code_flow.allow_redirect(&server.url("/connections/ads-user/callback"));
    (upstream, root, server)
}

/// A token of `sub` (tenant `public`) that may call every tool.
pub fn user(server: &TestServer, sub: &str) -> String {
    server.token_for(sub, "public", &["tester"], &["tools.invoke:write"])
}

/// `POST /connections/ads-user` as `token`: the authorization URL.
pub async fn start(server: &TestServer, token: &str) -> String {
    let response =
        server.client().post(server.url("/connections/ads-user")).bearer_auth(token).send().await.unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    body["authorization_url"].as_str().unwrap().to_owned()
}

/// A client that never follows redirects (to see each hop).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Sign in as `login` on the upstream's consent page of `authorization_url`
/// and allow: the callback URL the upstream redirects to (not followed).
pub async fn consent(authorization_url: &str, login: &str) -> String {
    let client = no_redirects();
    let page = client.get(authorization_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the consent page");
    let url = reqwest::Url::parse(authorization_url).unwrap();
    let mut form: Vec<(String, String)> =
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    form.extend(
        [("username", login), ("password", "dev"), ("decision", "allow")].map(|(k, v)| (k.into(), v.into())),
    );
    let mut action = url.clone();
    action.set_query(None);
    let response = client.post(action).form(&form).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Open a callback URL on the host as a browser would: status and page.
pub async fn callback_page(url: &str) -> (u16, String) {
    let response = no_redirects().get(url).send().await.unwrap();
    checked_page(response).await
}

async fn checked_page(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
    assert!(csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.text().await.unwrap())
}

/// The user's answer on the confirmation page of callback `url`
/// (`connect` or `cancel`), posted as its form does: status and page.
pub async fn answer(url: &str, decision: &str) -> (u16, String) {
    let parsed = reqwest::Url::parse(url).unwrap();
    let param = |name: &str| parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let mut form = vec![("decision".to_owned(), decision.to_owned())];
    for name in ["state", "code"] {
        if let Some(value) = param(name) {
            form.push((name.to_owned(), value));
        }
    }
    let mut action = parsed.clone();
    action.set_query(None);
    checked_page(no_redirects().post(action).form(&form).send().await.unwrap()).await
}

/// Follow a callback URL as the user who confirms: the confirmation page,
/// then "Connect" (or the refusal the page shows instead).
pub async fn callback(url: &str) -> (u16, String) {
    let (status, page) = callback_page(url).await;
    if status != 200 || !page.contains("id=\"connect\"") {
        return (status, page);
    }
    answer(url, "connect").await
}

/// Connect `sub` as `login` end to end without a browser.
pub async fn connect(server: &TestServer, sub: &str, login: &str) {
    let url = start(server, &user(server, sub)).await;
    let (status, page) = callback(&consent(&url, login).await).await;
    assert_eq!(status, 200, "{page}");
}

/// `GET /connections` as `token`.
pub async fn connections_of(server: &TestServer, token: &str) -> Value {
    let response = server.client().get(server.url("/connections")).bearer_auth(token).send().await.unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Every token, refresh token and code the upstream issued, found nowhere
/// in `bytes`.
pub fn assert_no_token_in(upstream: &TestUpstream, bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    for token in upstream.upstream.issued_tokens() {
        assert!(!text.contains(token.expose()), "an issued token is readable in {what}");
    }
}
