//! Token requests to a provider's token endpoint: the OAuth 2.0
//! client-credentials grant (RFC 6749 §4.4), token exchange (RFC 8693), the
//! authorization-code grant with PKCE (§4.1, RFC 7636), refresh (§6) and
//! revocation (RFC 7009) — client authentication by HTTP Basic or
//! `private_key_jwt` (RFC 7523: a fresh one-minute assertion per request,
//! signed with the operator's key, `alg` from the key), a form body, a
//! bounded JSON answer, no redirects, no proxies from the environment.

use super::providers::{ClientAuth, Secret};
use serde::Deserialize;
use std::time::Duration;

/// Largest token response read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Lifetime assumed when the endpoint gives no `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60);

/// Longest lifetime believed (a bigger `expires_in` is cut to it).
const MAX_EXPIRES_IN_S: u64 = 366 * 86_400;

/// An access token as the endpoint issued it.
pub struct AccessToken {
    /// The token.
    pub value: Secret,
    /// Its lifetime from now.
    pub expires_in: Duration,
    /// A refresh token, when the endpoint issued one (code and refresh
    /// grants).
    pub refresh: Option<Secret>,
}

/// Why a token request failed. The message is safe to log and to show: it
/// never holds a token, a secret or the response body.
#[derive(Debug)]
pub struct TokenError {
    /// What happened.
    pub message: String,
    /// The endpoint refused the grant itself (`invalid_grant`: a code or
    /// refresh token it no longer honours), rather than being unreachable.
    pub grant_refused: bool,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// An OAuth error response's `error` (RFC 6749 §5.2).
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// An HTTP client for token endpoints, trusting `roots` (the public roots
/// and the operator's bundle, or the bundle only).
pub fn client(timeout: Duration, roots: &crate::outbound::trust::Roots) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tls_built_in_root_certs(!roots.only);
    for certificate in &roots.extra {
        // Parsed and checked already (`Roots::load`).
        if let Ok(certificate) = reqwest::Certificate::from_der(certificate) {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().expect("a TLS backend is compiled in")
}

/// Fetch a token. Errors are safe to log and to show to a plugin: they never
/// contain the secret or the response body.
pub async fn fetch(client: &Client<'_>, scopes: &[String]) -> Result<AccessToken, String> {
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    client.request(&form).await.map_err(|e| e.message)
}

/// RFC 8693's token type of an access token.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What a token exchange asks for.
pub struct Exchange<'a> {
    /// The caller's verified inbound token.
    pub subject: &'a Secret,
    /// The host's own token, for delegation (the upstream token's `act`).
    pub actor: Option<&'a Secret>,
    /// `audience`, when the provider names one.
    pub audience: Option<&'a str>,
    /// `resource` (RFC 8707), when the provider names one.
    pub resource: Option<&'a str>,
    /// Scopes asked for.
    pub scopes: &'a [String],
}

/// Exchange the caller's token for an upstream one (RFC 8693). Errors are
/// as [`fetch`]'s: never a token, a secret or the response body.
pub async fn exchange(client: &Client<'_>, exchange: &Exchange<'_>) -> Result<AccessToken, String> {
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_owned()),
        ("subject_token", exchange.subject.expose().to_owned()),
        ("subject_token_type", ACCESS_TOKEN_TYPE.to_owned()),
        ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
    ];
    if let Some(actor) = exchange.actor {
        form.push(("actor_token", actor.expose().to_owned()));
        form.push(("actor_token_type", ACCESS_TOKEN_TYPE.to_owned()));
    }
    if let Some(audience) = exchange.audience {
        form.push(("audience", audience.to_owned()));
    }
    if let Some(resource) = exchange.resource {
        form.push(("resource", resource.to_owned()));
    }
    if !exchange.scopes.is_empty() {
        form.push(("scope", exchange.scopes.join(" ")));
    }
    client.request(&form).await.map_err(|e| e.message)
}

/// A provider's token endpoint and client.
pub struct Client<'a> {
    /// The HTTP client.
    pub http: &'a reqwest::Client,
    /// The token endpoint.
    pub token_url: &'a reqwest::Url,
    /// The client id.
    pub client_id: &'a str,
    /// How the host authenticates as the client.
    pub auth: &'a ClientAuth,
}

/// Redeem an authorization code (RFC 6749 §4.1.3) with its PKCE verifier
/// and the redirect URI the authorization request named.
pub async fn redeem_code(
    client: &Client<'_>,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<AccessToken, TokenError> {
    let form = [
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("code_verifier", verifier.to_owned()),
        ("client_id", client.client_id.to_owned()),
    ];
    client.request(&form).await
}

/// A fresh access token for a refresh token (RFC 6749 §6); the endpoint may
/// rotate the refresh token too.
pub async fn refresh(client: &Client<'_>, refresh_token: &Secret) -> Result<AccessToken, TokenError> {
    let form =
        [("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.expose().to_owned())];
    client.request(&form).await
}

/// Revoke a token at `revoke_url` (RFC 7009): `true` when the endpoint
/// answered 200.
pub async fn revoke(client: &Client<'_>, revoke_url: &reqwest::Url, token: &Secret, hint: &str) -> bool {
    let form = [("token", token.expose().to_owned()), ("token_type_hint", hint.to_owned())];
    let post = client.http.post(revoke_url.clone());
    // An assertion's audience is the token endpoint, for revocation too.
    let Ok(post) = authenticated(post, client, &form) else {
        return false;
    };
    let sent = post.send().await;
    match sent {
        Ok(response) => response.status() == reqwest::StatusCode::OK,
        Err(e) => {
            let host = revoke_url.host_str().unwrap_or("-");
            tracing::warn!(%host, error = %describe(e), "token revocation failed");
            false
        }
    }
}

impl Client<'_> {
    /// POST `form` to the token endpoint, authenticated as the client.
    async fn request(&self, form: &[(&str, String)]) -> Result<AccessToken, TokenError> {
        let host = self.token_url.host_str().unwrap_or("-");
        let failed = |message: String| TokenError { message, grant_refused: false };
        let post = self.http.post(self.token_url.clone()).header(reqwest::header::ACCEPT, "application/json");
        let response = authenticated(post, self, form)
            .map_err(|e| failed(format!("token endpoint at {host}: {e}")))?
            .send()
            .await
            .map_err(|e| failed(format!("token endpoint at {host} unreachable: {}", describe(e))))?;
        let status = response.status();
        if !status.is_success() {
            // The registered error code is safe to show; anything else in the
            // body is not read.
            let error = read_bounded(response)
                .await
                .ok()
                .and_then(|body| serde_json::from_slice::<ErrorResponse>(&body).ok())
                .map(|e| e.error)
                .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            let grant_refused =
                status == reqwest::StatusCode::BAD_REQUEST && error.as_deref() == Some("invalid_grant");
            let named = error.map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(TokenError {
                message: format!("token endpoint at {host} answered {status}{named}"),
                grant_refused,
            });
        }
        let body =
            read_bounded(response).await.map_err(|e| failed(format!("token endpoint at {host}: {e}")))?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| failed(format!("token endpoint at {host} sent no valid token response")))?;
        let usable =
            |token: &str| !token.is_empty() && !token.bytes().any(|b| b.is_ascii_control() || b == b' ');
        if !usable(&parsed.access_token) || parsed.refresh_token.as_deref().is_some_and(|t| !usable(t)) {
            return Err(failed(format!("token endpoint at {host} sent an unusable token")));
        }
        if parsed.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(failed(format!("token endpoint at {host} sent a token that is not a bearer token")));
        }
        Ok(AccessToken {
            value: Secret::new(parsed.access_token),
            expires_in: parsed
                .expires_in
                .map_or(DEFAULT_EXPIRES_IN, |s| Duration::from_secs(s.clamp(1, MAX_EXPIRES_IN_S))),
            refresh: parsed.refresh_token.map(Secret::new),
        })
    }
}

/// `post` with the client's authentication and `form`: HTTP Basic, or the
/// `client_assertion` of `private_key_jwt` (and `client_id`) in the form,
/// whose audience is the provider's `token_url`.
fn authenticated(
    post: reqwest::RequestBuilder,
    client: &Client<'_>,
    form: &[(&str, String)],
) -> Result<reqwest::RequestBuilder, String> {
    let (token_url, client_id) = (client.token_url, client.client_id);
    match client.auth {
        ClientAuth::Secret(secret) => Ok(post.basic_auth(client_id, Some(secret.expose())).form(form)),
        ClientAuth::PrivateKeyJwt(key) => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let claims = serde_json::json!({
                "iss": client_id,
                "sub": client_id,
                "aud": token_url.as_str(),
                "jti": uuid::Uuid::now_v7().to_string(),
                "iat": now,
                "exp": now + ASSERTION_LIFETIME_S,
            });
            let mut header = jsonwebtoken::Header::new(key.alg);
            header.kid = key.kid.clone();
            let assertion = jsonwebtoken::encode(&header, &claims, &key.key)
                .map_err(|_| "the private key cannot sign a client assertion".to_owned())?;
            let mut form = form.to_vec();
            if !form.iter().any(|(k, _)| *k == "client_id") {
                form.push(("client_id", client_id.to_owned()));
            }
            form.push(("client_assertion_type", ASSERTION_TYPE.to_owned()));
            form.push(("client_assertion", assertion));
            Ok(post.form(&form))
        }
    }
}

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion.
const ASSERTION_LIFETIME_S: u64 = 60;

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error without its URL (which could carry a query secret).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        error.without_url().to_string()
    }
}
