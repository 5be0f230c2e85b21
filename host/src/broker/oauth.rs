//! Token requests to a provider's token endpoint: the OAuth 2.0
//! client-credentials grant (RFC 6749 §4.4) and token exchange (RFC 8693) —
//! HTTP Basic client authentication, a form body, a bounded JSON answer, no
//! redirects, no proxies from the environment.

use super::providers::Secret;
use serde::Deserialize;
use std::time::Duration;

/// Largest token response read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Lifetime assumed when the endpoint gives no `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60);

/// An access token as the endpoint issued it.
pub struct AccessToken {
    /// The token.
    pub value: Secret,
    /// Its lifetime from now.
    pub expires_in: Duration,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
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
pub async fn fetch(
    client: &reqwest::Client,
    token_url: &reqwest::Url,
    client_id: &str,
    client_secret: &Secret,
    scopes: &[String],
) -> Result<AccessToken, String> {
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    request(client, token_url, client_id, client_secret, &form).await
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
pub async fn exchange(
    client: &reqwest::Client,
    token_url: &reqwest::Url,
    client_id: &str,
    client_secret: &Secret,
    exchange: &Exchange<'_>,
) -> Result<AccessToken, String> {
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
    request(client, token_url, client_id, client_secret, &form).await
}

async fn request(
    client: &reqwest::Client,
    token_url: &reqwest::Url,
    client_id: &str,
    client_secret: &Secret,
    form: &[(&str, String)],
) -> Result<AccessToken, String> {
    let host = token_url.host_str().unwrap_or("-");
    let response = client
        .post(token_url.clone())
        .basic_auth(client_id, Some(client_secret.expose()))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| format!("token endpoint at {host} unreachable: {}", describe(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("token endpoint at {host} answered {status}"));
    }
    let body = read_bounded(response).await.map_err(|e| format!("token endpoint at {host}: {e}"))?;
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| format!("token endpoint at {host} sent no valid token response"))?;
    if parsed.access_token.is_empty()
        || parsed.access_token.bytes().any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(format!("token endpoint at {host} sent an unusable access token"));
    }
    if parsed.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
        return Err(format!("token endpoint at {host} sent a token that is not a bearer token"));
    }
    Ok(AccessToken {
        value: Secret::new(parsed.access_token),
        expires_in: parsed.expires_in.map_or(DEFAULT_EXPIRES_IN, Duration::from_secs),
    })
}

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
