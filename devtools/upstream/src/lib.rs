//! The development upstream: a small, real HTTP service that stands in for a
//! provider's OAuth token endpoint and its Ads API, so the example `ads`
//! plugin works out of the box (the quickstart) and the tests reach a real
//! server on loopback.
//!
//! - `POST /oauth/token` — client credentials (HTTP Basic), scopes
//!   `campaigns.read` and `campaigns.write`, opaque bearer tokens; and token
//!   exchange (RFC 8693, [`exchange`]): a subject token of the host's
//!   development keys becomes a token bound to its `sub` (and `act`, with an
//!   actor token); the authorization-code grant with PKCE and rotating
//!   refresh tokens ([`authorize`]);
//!   Clients authenticate by HTTP Basic or `private_key_jwt`
//!   ([`client_auth`], keys from `--client-jwks`);
//! - `GET|POST /oauth/authorize` — a login and consent page for the code
//!   flow (every user's password is `dev`); `POST /oauth/revoke` (RFC 7009);
//! - `GET|POST /v1/campaigns` — the Ads API ([`ads`]), bearer token required;
//!   `GET /v1/me/campaigns` — the campaigns the token's user created (a
//!   user's token required);
//! - `GET /_dev/acting` — who the last API requests acted for (`sub` and
//!   `act` of user tokens, `client` for service tokens);
//! - `GET /_dev/stats` — counters (token requests, API calls, rejections);
//! - `GET /_dev/echo` — the names of the request's headers, and a
//!   fingerprint (never the value) of each credential header it carried;
//! - `POST /_dev/fail` — `{"status": 503, "count": 2}` makes the next API
//!   calls fail, to exercise upstream errors;
//! - `GET /_dev/traceparents` — the `traceparent` header of the last API
//!   requests (null where none), to follow a trace through the host.
//!
//! It is a development tool, not part of the host: state is in memory and
//! bounded, and it listens on loopback. `./dev serve` starts its binary
//! (`fastmcp-dev-upstream`) beside the host, which brokers it through the
//! providers file `devtools/providers.yml`; tests start one in-process on
//! an ephemeral port.

mod ads;
pub mod authorize;
pub mod client_auth;
pub mod exchange;
mod secret;
pub mod tls;

pub use secret::{Secret, fingerprint};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The client id the development upstream accepts.
pub const DEV_CLIENT_ID: &str = "fastmcp-dev";

/// Scopes the token endpoint issues.
pub(crate) const KNOWN_SCOPES: &[&str] = &["campaigns.read", "campaigns.write"];

/// Issued tokens remembered for [`DevUpstream::issued_tokens`].
const MAX_REMEMBERED: usize = 10_000;

/// Settings of a development upstream.
#[derive(Debug, Clone)]
pub struct DevUpstreamConfig {
    /// The client secret it accepts (with [`DEV_CLIENT_ID`]).
    pub client_secret: Secret,
    /// Lifetime of the tokens it issues.
    pub token_ttl: Duration,
    /// Live tokens held at most; the token endpoint answers 503 beyond.
    pub max_live_tokens: usize,
}

impl DevUpstreamConfig {
    /// Defaults: 300 s tokens, at most 10,000 live.
    pub fn new(client_secret: Secret) -> Self {
        Self { client_secret, token_ttl: Duration::from_secs(300), max_live_tokens: 10_000 }
    }
}

/// Counters, as served by `/_dev/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests to the token endpoint.
    pub token_requests: AtomicU64,
    /// Tokens issued.
    pub tokens_issued: AtomicU64,
    /// API requests with a valid token.
    pub authorized_requests: AtomicU64,
    /// API requests refused for a missing, unknown, expired or
    /// under-scoped token.
    pub rejected_requests: AtomicU64,
    /// TCP connections accepted (to see clients reuse them).
    pub connections: Arc<AtomicU64>,
    /// Authorization codes issued by the consent page.
    pub codes_issued: AtomicU64,
    /// Codes redeemed.
    pub code_grants: AtomicU64,
    /// Refresh tokens rotated.
    pub refresh_grants: AtomicU64,
    /// Grants or tokens revoked.
    pub revocations: AtomicU64,
    /// Token or revocation requests authenticated by a client assertion
    /// (`private_key_jwt`).
    pub assertion_clients: AtomicU64,
}

/// An issued token's scopes, expiry, and the user it acts for (exchanged
/// tokens).
#[derive(Clone)]
pub(crate) struct LiveToken {
    scopes: Vec<String>,
    expires_at: Instant,
    pub(crate) user: Option<exchange::User>,
    /// The code-flow grant it belongs to (revoked with it).
    pub(crate) grant: Option<u64>,
}

/// Who an API request acted for.
#[derive(Clone, Debug)]
pub(crate) struct Acting(pub Option<exchange::User>);

/// API requests whose actor is remembered (`/_dev/acting`).
const MAX_ACTING: usize = 1024;

/// Why an API request is refused.
pub(crate) enum Refusal {
    /// 401 or 403 with an RFC 6750 error code.
    Token(StatusCode, &'static str),
    /// A failure injected with `/_dev/fail`.
    Injected(StatusCode),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Token(status, error) => {
                let challenge = format!(r#"Bearer error="{error}""#);
                (status, [(header::WWW_AUTHENTICATE, challenge)], axum::Json(json!({ "error": error })))
                    .into_response()
            }
            Refusal::Injected(status) => {
                (status, axum::Json(json!({ "error": "injected failure" }))).into_response()
            }
        }
    }
}

/// Shared state of a running upstream.
pub struct DevUpstream {
    config: DevUpstreamConfig,
    /// sha256(token) → (scopes, expiry). Keyed by digest so a lookup's timing
    /// says nothing about the token.
    pub(crate) tokens: Mutex<HashMap<[u8; 32], LiveToken>>,
    issued: Mutex<std::collections::VecDeque<Secret>>,
    campaigns: ads::Campaigns,
    failures: Mutex<Option<(StatusCode, u32)>>,
    /// Failures of the token endpoint to inject ([`Self::fail_token_requests`]).
    token_failures: Mutex<Option<(StatusCode, u32)>>,
    /// The `traceparent` of the last [`MAX_TRACEPARENTS`] API requests.
    traceparents: Mutex<std::collections::VecDeque<Option<String>>>,
    /// Who the last [`MAX_ACTING`] API requests acted for.
    acting: Mutex<std::collections::VecDeque<Value>>,
    /// The keys subject tokens are verified with.
    pub subject_keys: exchange::SubjectKeys,
    /// The keys client assertions (`private_key_jwt`) are verified with.
    pub client_keys: exchange::SubjectKeys,
    /// Client assertions already used.
    seen_assertions: client_auth::SeenAssertions,
    /// The authorization-code flow: registered redirect URIs, codes,
    /// refresh tokens.
    pub code_flow: authorize::CodeFlow,
    /// Counters.
    pub stats: Stats,
}

/// API requests whose `traceparent` is remembered.
const MAX_TRACEPARENTS: usize = 256;

impl DevUpstream {
    /// A new upstream (not yet serving).
    pub fn new(config: DevUpstreamConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            tokens: Mutex::new(HashMap::new()),
            issued: Mutex::new(std::collections::VecDeque::new()),
            campaigns: ads::Campaigns::default(),
            failures: Mutex::new(None),
            token_failures: Mutex::new(None),
            traceparents: Mutex::default(),
            acting: Mutex::default(),
            subject_keys: Default::default(),
            code_flow: Default::default(),
            client_keys: Default::default(),
            seen_assertions: Default::default(),
            stats: Stats::default(),
        })
    }

    /// The `traceparent` of the last API requests (`None` where none).
    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.traceparents.lock().expect("lock").iter().cloned().collect()
    }

    /// Who the last API requests acted for: `{"sub", "tenant", "act"}` for
    /// exchanged tokens, `{"client"}` for service tokens.
    pub fn acting(&self) -> Vec<Value> {
        self.acting.lock().expect("lock").iter().cloned().collect()
    }

    /// The live token `token`, if this upstream issued it.
    pub(crate) fn live_token(&self, token: &str) -> Option<LiveToken> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens
            .lock()
            .expect("lock")
            .get(&digest)
            .filter(|live| live.expires_at > Instant::now())
            .cloned()
    }

    /// Remember an issued token (or refresh token) for [`Self::issued_tokens`].
    pub(crate) fn remember_issued(&self, value: &str) {
        let mut issued = self.issued.lock().expect("lock");
        if issued.len() >= MAX_REMEMBERED {
            issued.pop_front();
        }
        issued.push_back(Secret::new(value.to_owned()));
    }

    /// Every token issued so far (the last [`MAX_REMEMBERED`]); for tests that
    /// prove tokens never leak.
    pub fn issued_tokens(&self) -> Vec<Secret> {
        self.issued.lock().expect("lock").iter().cloned().collect()
    }

    /// Serve plain HTTP/1.1 on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt as _;
        let connections = self.stats.connections.clone();
        let listener = listener.tap_io(move |tcp| {
            let _ = tcp.set_nodelay(true);
            connections.fetch_add(1, Ordering::Relaxed);
        });
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await
    }

    /// Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) on `listener` with `tls`
    /// until `shutdown` resolves.
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = tls::TlsListener::new(listener, tls, self.stats.connections.clone())?;
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/oauth/token", post(token))
            .route("/oauth/authorize", get(authorize::page).post(authorize::decide))
            .route("/oauth/revoke", post(authorize::revoke))
            .route("/v1/campaigns", get(ads::list).post(ads::create))
            .route("/v1/me/campaigns", get(ads::mine))
            .route("/_dev/acting", get(acting))
            .route("/_dev/stats", get(stats))
            .route("/_dev/echo", get(echo))
            .route("/_dev/fail", post(fail))
            .route("/_dev/traceparents", get(traceparents))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(self, remember_traceparent))
    }

    /// Check that `headers` carry a live bearer token with `scope` (or the
    /// response to send instead).
    fn authorize(&self, headers: &HeaderMap, scope: &str) -> Result<Acting, Refusal> {
        let reject = |status: StatusCode, error: &'static str| {
            self.stats.rejected_requests.fetch_add(1, Ordering::Relaxed);
            Err(Refusal::Token(status, error))
        };
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return reject(StatusCode::UNAUTHORIZED, "invalid_request");
        };
        let (scopes, user) = match self.live_token(token) {
            Some(live) => (live.scopes, live.user),
            None => return reject(StatusCode::UNAUTHORIZED, "invalid_token"),
        };
        if !scopes.iter().any(|s| s == scope || (scope == "campaigns.read" && s == "campaigns.write")) {
            return reject(StatusCode::FORBIDDEN, "insufficient_scope");
        }
        if let Some(status) = self.take_failure() {
            return Err(Refusal::Injected(status));
        }
        self.stats.authorized_requests.fetch_add(1, Ordering::Relaxed);
        let seen = match &user {
            Some(u) => json!({ "sub": u.sub, "tenant": u.tenant, "act": u.act }),
            None => json!({ "client": DEV_CLIENT_ID }),
        };
        let mut acting = self.acting.lock().expect("lock");
        if acting.len() == MAX_ACTING {
            acting.pop_front();
        }
        acting.push_back(seen);
        Ok(Acting(user))
    }

    /// Make the next `count` token requests answer `status`.
    pub fn fail_token_requests(&self, status: StatusCode, count: u32) {
        *self.token_failures.lock().expect("lock") = (count > 0).then_some((status, count));
    }

    fn take_failure(&self) -> Option<StatusCode> {
        Self::take(&self.failures)
    }

    fn take(failures: &Mutex<Option<(StatusCode, u32)>>) -> Option<StatusCode> {
        let mut failures = failures.lock().expect("lock");
        let (status, left) = (*failures)?;
        *failures = (left > 1).then_some((status, left - 1));
        Some(status)
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    subject_token: Option<String>,
    #[serde(default)]
    subject_token_type: Option<String>,
    #[serde(default)]
    actor_token: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(flatten)]
    client: client_auth::AssertionFields,
}

async fn token(
    State(upstream): State<Arc<DevUpstream>>,
    headers: HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Response {
    upstream.stats.token_requests.fetch_add(1, Ordering::Relaxed);
    let oauth_error =
        |status: StatusCode, error: &str| (status, axum::Json(json!({ "error": error }))).into_response();
    if let Some(status) = DevUpstream::take(&upstream.token_failures) {
        return oauth_error(status, "temporarily_unavailable");
    }
    if !client_auth::authenticated(&upstream, &headers, &request.client) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut granted = None;
    let user = match request.grant_type.as_str() {
        "client_credentials" => None,
        "authorization_code" | "refresh_token" => {
            let result = match (
                &request.code,
                &request.redirect_uri,
                &request.code_verifier,
                &request.refresh_token,
            ) {
                (Some(code), Some(uri), Some(verifier), None)
                    if request.grant_type == "authorization_code" =>
                {
                    authorize::redeem(&upstream, code, uri, verifier)
                }
                (None, None, None, Some(refresh)) if request.grant_type == "refresh_token" => {
                    authorize::rotate(&upstream, refresh)
                }
                _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
            };
            match result {
                Ok(g) => {
                    let user = g.user.clone();
                    granted = Some(g);
                    Some(user)
                }
                Err(error) => return oauth_error(StatusCode::BAD_REQUEST, error),
            }
        }
        exchange::GRANT_TYPE => {
            let (Some(subject), Some(exchange::ACCESS_TOKEN_TYPE)) =
                (request.subject_token.as_deref(), request.subject_token_type.as_deref())
            else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            };
            let Ok(mut user) = exchange::verify_subject(&upstream, subject) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if let Some(actor) = request.actor_token.as_deref() {
                match exchange::verify_actor(&upstream, actor) {
                    Ok(act) => user.act = Some(act),
                    Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
                }
            }
            Some(user)
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let scopes: Vec<String> = match &granted {
        Some(g) => g.scopes.clone(),
        None => request
            .scope
            .as_deref()
            .unwrap_or("campaigns.read")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    if scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let mut random = [0u8; 24];
    rand::Rng::fill(&mut rand::thread_rng(), &mut random[..]);
    let value = format!("dev_at_{}", hex::encode(random));
    let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
    let ttl = granted.as_ref().and_then(|g| g.access_ttl).unwrap_or(upstream.config.token_ttl);
    let grant = granted.as_ref().map(|g| g.grant);
    {
        let mut tokens = upstream.tokens.lock().expect("lock");
        let now = Instant::now();
        tokens.retain(|_, live| live.expires_at > now);
        if tokens.len() >= upstream.config.max_live_tokens {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        }
        tokens.insert(digest, LiveToken { scopes: scopes.clone(), expires_at: now + ttl, user, grant });
    }
    upstream.remember_issued(&value);
    upstream.stats.tokens_issued.fetch_add(1, Ordering::Relaxed);
    let mut answer = json!({
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scopes.join(" "),
    });
    if let Some(g) = granted {
        answer["refresh_token"] = json!(g.refresh_token);
    }
    axum::Json(answer).into_response()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn stats(State(upstream): State<Arc<DevUpstream>>) -> axum::Json<Value> {
    let s = &upstream.stats;
    axum::Json(json!({
        "token_requests": s.token_requests.load(Ordering::Relaxed),
        "tokens_issued": s.tokens_issued.load(Ordering::Relaxed),
        "authorized_requests": s.authorized_requests.load(Ordering::Relaxed),
        "rejected_requests": s.rejected_requests.load(Ordering::Relaxed),
        "codes_issued": s.codes_issued.load(Ordering::Relaxed),
        "code_grants": s.code_grants.load(Ordering::Relaxed),
        "refresh_grants": s.refresh_grants.load(Ordering::Relaxed),
        "revocations": s.revocations.load(Ordering::Relaxed),
        "assertion_clients": s.assertion_clients.load(Ordering::Relaxed),
        "connections": s.connections.load(Ordering::Relaxed),
    }))
}

/// Remember the `traceparent` of every Ads API request.
async fn remember_traceparent(
    State(upstream): State<Arc<DevUpstream>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path().starts_with("/v1/") {
        let traceparent =
            request.headers().get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut seen = upstream.traceparents.lock().expect("lock");
        if seen.len() == MAX_TRACEPARENTS {
            seen.pop_front();
        }
        seen.push_back(traceparent);
    }
    next.run(request).await
}

async fn acting(State(upstream): State<Arc<DevUpstream>>) -> axum::Json<Value> {
    axum::Json(json!(upstream.acting()))
}

async fn traceparents(State(upstream): State<Arc<DevUpstream>>) -> axum::Json<Value> {
    axum::Json(json!(upstream.traceparents()))
}

/// Headers that carry credentials: reported by fingerprint only.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key"];

async fn echo(headers: HeaderMap) -> axum::Json<Value> {
    let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    let credentials: serde_json::Map<String, Value> = CREDENTIAL_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            let value = value.strip_prefix("Bearer ").unwrap_or(value);
            Some((name.to_string(), json!(fingerprint(value))))
        })
        .collect();
    axum::Json(json!({ "headers": names, "credentials": credentials }))
}

#[derive(Deserialize)]
struct FailRequest {
    status: u16,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

async fn fail(
    State(upstream): State<Arc<DevUpstream>>,
    axum::Json(request): axum::Json<FailRequest>,
) -> StatusCode {
    match StatusCode::from_u16(request.status) {
        Ok(status) if request.count > 0 => {
            *upstream.failures.lock().expect("lock") = Some((status, request.count));
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}
