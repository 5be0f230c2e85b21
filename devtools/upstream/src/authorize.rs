//! The authorization-code flow at the development upstream (RFC 6749 §4.1
//! with PKCE S256, RFC 7636): a login and consent page, one-use codes,
//! rotating refresh tokens, revocation (RFC 7009).
//!
//! - `GET /oauth/authorize` checks the client and the **registered**
//!   redirect URI (an unregistered one gets an error page, never a
//!   redirect), requires `state` and an S256 `code_challenge`, and shows a
//!   form: user name, password (`dev` for every user: this is a
//!   development server), Allow / Deny.
//! - `POST /oauth/authorize` redirects back with a code (60 s, one use,
//!   bound to the client, redirect URI, challenge, user and scopes) or
//!   `error=access_denied`.
//! - The token endpoint redeems a code once (a second use revokes what the
//!   first issued), and rotates refresh tokens: each refresh answers a new
//!   one and retires the old; a retired one presented again revokes the
//!   whole grant (reuse detection).
//! - `POST /oauth/revoke` ends a refresh token's grant, or one access token.

use super::exchange::User;
use super::{DEV_CLIENT_ID, DevUpstream, KNOWN_SCOPES};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The password of every development user.
pub const DEV_PASSWORD: &str = "dev";
/// How long a code may be redeemed.
const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a code is remembered after it expires (to refuse a replay and
/// revoke what it issued).
const REDEEMED_KEPT: Duration = Duration::from_secs(600);
/// Codes and refresh tokens kept at most.
const MAX_GRANTS: usize = 10_000;

/// The flow's state: registered redirect URIs, codes, refresh tokens.
#[derive(Default)]
pub struct CodeFlow {
    redirect_uris: Mutex<Vec<String>>,
    codes: Mutex<HashMap<[u8; 32], Code>>,
    refresh_tokens: Mutex<HashMap<[u8; 32], Refresh>>,
    next_grant: AtomicU64,
    /// Lifetime of access tokens of this flow (0: the upstream's default).
    access_ttl_ms: AtomicU64,
}

struct Code {
    user: String,
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
    expires_at: Instant,
    /// The grant its redemption started (to revoke on a second use).
    grant: Option<u64>,
}

struct Refresh {
    user: String,
    scopes: Vec<String>,
    grant: u64,
    retired: bool,
}

impl CodeFlow {
    /// Register a redirect URI for the development client.
    pub fn allow_redirect(&self, uri: &str) {
        let mut uris = self.redirect_uris.lock().expect("lock");
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
    }

    /// Issue this flow's access tokens for `ttl` (to test refresh).
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.access_ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn registered(&self, uri: &str) -> bool {
        self.redirect_uris.lock().expect("lock").iter().any(|u| u == uri)
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// An authorization request's parameters (query of the GET, hidden fields
/// of the POST).
#[derive(Deserialize, Default)]
pub(super) struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    decision: String,
}

/// Refusals that must not redirect (the redirect URI is not trusted).
fn error_page(reason: &str) -> Response {
    let body = format!(
        "<!doctype html><title>Error</title><h1 id=\"error\">Authorization error</h1><p>{reason}</p>"
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// Check a request: its scopes, or why it is refused (shown on an error
/// page, never redirected).
fn check(upstream: &DevUpstream, p: &AuthorizeParams) -> Result<Vec<String>, &'static str> {
    if p.client_id != DEV_CLIENT_ID {
        return Err("unknown client_id");
    }
    if !upstream.code_flow.registered(&p.redirect_uri) {
        return Err("redirect_uri is not registered for this client");
    }
    if p.response_type != "code" || p.state.is_empty() || p.state.len() > 512 {
        return Err("response_type=code and a state are required");
    }
    if p.code_challenge_method != "S256" || p.code_challenge.len() != 43 {
        return Err("PKCE with an S256 code_challenge is required");
    }
    let scopes: Vec<String> = p.scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err("unknown scope");
    }
    Ok(scopes)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /oauth/authorize`: the login and consent page.
pub(super) async fn page(
    State(upstream): State<Arc<DevUpstream>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match check(&upstream, &params) {
        Ok(scopes) => login_form(&params, &scopes, None),
        Err(reason) => error_page(reason),
    }
}

fn login_form(p: &AuthorizeParams, scopes: &[String], problem: Option<&str>) -> Response {
    let hidden: String = [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
    ]
    .iter()
    .map(|(name, value)| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(value)))
    .collect();
    let problem = problem.map(|p| format!("<p id=\"problem\">{p}</p>")).unwrap_or_default();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in — Ads (development)</title></head><body>\
         <h1>Sign in to Ads</h1><p><b>{client}</b> asks to act as you with: {scopes}</p>{problem}\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <label>User <input id=\"username\" name=\"username\" autocomplete=\"username\"></label>\
         <label>Password <input id=\"password\" name=\"password\" type=\"password\"></label>\
         <button id=\"allow\" name=\"decision\" value=\"allow\">Allow</button>\
         <button id=\"deny\" name=\"decision\" value=\"deny\">Deny</button></form></body></html>",
        client = escape(&p.client_id),
        scopes = escape(&scopes.join(", ")),
    );
    let status = if problem.is_empty() { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
    (status, Html(body)).into_response()
}

/// `POST /oauth/authorize`: log in and decide.
pub(super) async fn decide(
    State(upstream): State<Arc<DevUpstream>>,
    Form(params): Form<AuthorizeParams>,
) -> Response {
    let scopes = match check(&upstream, &params) {
        Ok(scopes) => scopes,
        Err(reason) => return error_page(reason),
    };
    let mut back = match with_query_separator(&params.redirect_uri) {
        Some(url) => url,
        None => return error_page("redirect_uri is not a URL"),
    };
    if params.decision != "allow" {
        back.push_str(&format!("error=access_denied&state={}", encode(&params.state)));
        return Redirect::to(&back).into_response();
    }
    let user_ok = !params.username.is_empty()
        && params.username.len() <= 64
        && params
            .username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if !user_ok || params.password != DEV_PASSWORD {
        return login_form(&params, &scopes, Some("Wrong user name or password."));
    }
    let code = format!("dev_code_{}", hex::encode(rand::random::<[u8; 24]>()));
    {
        let mut codes = upstream.code_flow.codes.lock().expect("lock");
        let now = Instant::now();
        // Redeemed codes are kept a while to catch their replay.
        codes.retain(|_, c| c.expires_at + REDEEMED_KEPT > now);
        if codes.len() >= MAX_GRANTS {
            return error_page("too many pending codes");
        }
        let entry = Code {
            user: params.username.clone(),
            redirect_uri: params.redirect_uri.clone(),
            challenge: params.code_challenge.clone(),
            scopes,
            expires_at: now + CODE_TTL,
            grant: None,
        };
        codes.insert(digest(&code), entry);
    }
    upstream.stats.codes_issued.fetch_add(1, Ordering::Relaxed);
    back.push_str(&format!("code={}&state={}", encode(&code), encode(&params.state)));
    Redirect::to(&back).into_response()
}

/// The redirect URI ready for query parameters (`?` or `&` appended).
fn with_query_separator(uri: &str) -> Option<String> {
    if !(uri.starts_with("http://") || uri.starts_with("https://")) || uri.contains('#') {
        return None;
    }
    Some(if uri.contains('?') { format!("{uri}&") } else { format!("{uri}?") })
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a code or refresh grant issues: the user, scopes and grant id.
pub(super) struct Granted {
    pub user: User,
    pub scopes: Vec<String>,
    pub grant: u64,
    /// A fresh refresh token of the grant.
    pub refresh_token: String,
    /// Access token lifetime, when this flow sets one.
    pub access_ttl: Option<Duration>,
}

/// Redeem a code (`grant_type=authorization_code`).
pub(super) fn redeem(
    upstream: &DevUpstream,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Granted, &'static str> {
    let flow = &upstream.code_flow;
    let mut codes = flow.codes.lock().expect("lock");
    let Some(entry) = codes.get_mut(&digest(code)) else {
        return Err("invalid_grant");
    };
    if let Some(grant) = entry.grant {
        // A second use: revoke what the first issued (RFC 6749 §4.1.2).
        drop(codes);
        revoke_grant(upstream, grant);
        return Err("invalid_grant");
    }
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if entry.expires_at <= Instant::now()
        || entry.redirect_uri != redirect_uri
        || entry.challenge != challenge
    {
        return Err("invalid_grant");
    }
    let grant = flow.next_grant.fetch_add(1, Ordering::Relaxed) + 1;
    entry.grant = Some(grant);
    let (user, scopes) = (entry.user.clone(), entry.scopes.clone());
    drop(codes);
    upstream.stats.code_grants.fetch_add(1, Ordering::Relaxed);
    new_refresh(upstream, user, scopes, grant)
}

/// Rotate a refresh token (`grant_type=refresh_token`).
pub(super) fn rotate(upstream: &DevUpstream, refresh_token: &str) -> Result<Granted, &'static str> {
    let flow = &upstream.code_flow;
    let mut tokens = flow.refresh_tokens.lock().expect("lock");
    let Some(entry) = tokens.get_mut(&digest(refresh_token)) else {
        return Err("invalid_grant");
    };
    if entry.retired {
        // Reuse of a rotated token: someone else holds it; end the grant.
        let grant = entry.grant;
        drop(tokens);
        revoke_grant(upstream, grant);
        return Err("invalid_grant");
    }
    entry.retired = true;
    let (user, scopes, grant) = (entry.user.clone(), entry.scopes.clone(), entry.grant);
    drop(tokens);
    upstream.stats.refresh_grants.fetch_add(1, Ordering::Relaxed);
    new_refresh(upstream, user, scopes, grant)
}

fn new_refresh(
    upstream: &DevUpstream,
    user: String,
    scopes: Vec<String>,
    grant: u64,
) -> Result<Granted, &'static str> {
    let refresh_token = format!("dev_rt_{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut tokens = upstream.code_flow.refresh_tokens.lock().expect("lock");
    if tokens.len() >= MAX_GRANTS {
        tokens.retain(|_, r| !r.retired);
        if tokens.len() >= MAX_GRANTS {
            return Err("temporarily_unavailable");
        }
    }
    tokens.insert(
        digest(&refresh_token),
        Refresh { user: user.clone(), scopes: scopes.clone(), grant, retired: false },
    );
    drop(tokens);
    upstream.remember_issued(&refresh_token);
    let ttl = upstream.code_flow.access_ttl_ms.load(Ordering::Relaxed);
    Ok(Granted {
        user: User { sub: user, tenant: String::new(), act: None },
        scopes,
        grant,
        refresh_token,
        access_ttl: (ttl > 0).then(|| Duration::from_millis(ttl)),
    })
}

/// End a grant: its refresh tokens and its access tokens.
fn revoke_grant(upstream: &DevUpstream, grant: u64) {
    upstream.code_flow.refresh_tokens.lock().expect("lock").retain(|_, r| r.grant != grant);
    upstream.tokens.lock().expect("lock").retain(|_, t| t.grant != Some(grant));
    upstream.stats.revocations.fetch_add(1, Ordering::Relaxed);
}

#[derive(Deserialize)]
pub(super) struct RevokeRequest {
    token: String,
    #[serde(flatten)]
    client: super::client_auth::AssertionFields,
}

/// `POST /oauth/revoke` (client authentication required; 200 whether or
/// not the token was known, as RFC 7009 says).
pub(super) async fn revoke(
    State(upstream): State<Arc<DevUpstream>>,
    headers: axum::http::HeaderMap,
    Form(request): Form<RevokeRequest>,
) -> StatusCode {
    if !super::client_auth::authenticated(&upstream, &headers, &request.client) {
        return StatusCode::UNAUTHORIZED;
    }
    let grant =
        upstream.code_flow.refresh_tokens.lock().expect("lock").get(&digest(&request.token)).map(|r| r.grant);
    match grant {
        Some(grant) => revoke_grant(&upstream, grant),
        None => {
            if upstream.tokens.lock().expect("lock").remove(&digest(&request.token)).is_some() {
                upstream.stats.revocations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    StatusCode::OK
}
