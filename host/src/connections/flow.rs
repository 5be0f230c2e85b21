//! Connecting an account: the authorization-code flow with PKCE (RFC 6749
//! §4.1, RFC 7636 S256).
//!
//! `start` makes a flow for the authenticated caller: a random `state`
//! (256 bits) and PKCE verifier, kept host-side — sealed in the store under
//! the SHA-256 of the state, bound to the caller's tenant and subject, the
//! provider and the redirect URI, for `connections.flow_ttl` — and answers
//! the provider's authorization URL (a caller's pending flow is answered
//! again while it has a minute left, so repeated calls do not pile flows
//! up). The provider sends the user's browser back to
//! `/connections/{provider}/callback`, which shows whose host identity the
//! account is about to be connected to (`preview`) and asks; only the
//! user's "Connect" (a POST) `complete`s it: the flow is taken once (a
//! claim in the store: a replay finds it used), must be this provider's,
//! and the code is redeemed with the verifier and the same redirect URI;
//! the tokens are stored as the flow starter's. A code the provider issued
//! for another flow fails PKCE there.

use super::{Connections, store_error};
use crate::broker::oauth;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::store::keys;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest callback parameter read (`state`, `code`, `error`).
pub const MAX_CALLBACK_PARAM: usize = 2048;

/// A pending flow is answered again only while it has this long left.
const REUSE_MARGIN_MS: i64 = 60_000;

/// A started flow, as the caller receives it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Started {
    /// The provider.
    pub provider: String,
    /// Open this in the user's browser: the provider's consent page.
    pub authorization_url: String,
    /// Until when the flow can complete (RFC 3339).
    pub expires_at: String,
}

/// What a started flow keeps, sealed.
#[derive(Serialize, Deserialize)]
struct Flow {
    tenant: String,
    sub: String,
    provider: String,
    verifier: String,
    redirect_uri: String,
}

/// A caller's pending flow, sealed: its URL and expiry.
#[derive(Serialize, Deserialize)]
struct Pending {
    authorization_url: String,
    expires_ms: i64,
}

/// The callback's parameters, as the provider sends them in the query
/// (other parameters, such as `iss` or `scope`, are ignored) and as the
/// confirmation page posts them back.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    /// The flow's state.
    #[serde(default)]
    pub state: Option<String>,
    /// The authorization code.
    #[serde(default)]
    pub code: Option<String>,
    /// The provider's error (`access_denied`…), instead of a code.
    #[serde(default)]
    pub error: Option<String>,
}

/// Whose flow a callback belongs to.
#[derive(Debug)]
pub struct Connected {
    /// The provider.
    pub provider: String,
    /// The host identity that started the flow (and gets the connection).
    pub sub: String,
    /// Their tenant.
    pub tenant: String,
}

/// Why a callback connected nothing. Nothing is stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// No pending flow for this state and provider: expired, used, never
    /// issued, or another provider's.
    #[error("this link is not a pending connection: it expired, was already used, or was never issued")]
    NoFlow,
    /// The user (or the provider) declined.
    #[error("not connected: `{0}`")]
    Declined(String),
    /// The provider refused the code, or could not be reached.
    #[error("the provider did not accept the authorization: {0}")]
    Refused(String),
    /// The store could not answer.
    #[error("the host's state store is unavailable; try again")]
    Store,
}

impl CallbackError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::NoFlow => "connection_flow_invalid",
            CallbackError::Declined(_) => "connection_declined",
            CallbackError::Refused(_) => "connection_refused",
            CallbackError::Store => "state_unavailable",
        }
    }

    /// The HTTP status of the callback page.
    pub fn status(&self) -> http::StatusCode {
        match self {
            CallbackError::NoFlow | CallbackError::Declined(_) => http::StatusCode::BAD_REQUEST,
            CallbackError::Refused(_) => http::StatusCode::BAD_GATEWAY,
            CallbackError::Store => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

fn flow_aad(state_digest: &str) -> Vec<u8> {
    format!("connection-flow\0{state_digest}").into_bytes()
}

fn pending_aad(user: &Principal, provider: &str) -> Vec<u8> {
    format!("connection-pending\0{}\0{}\0{provider}", user.tenant, user.sub).into_bytes()
}

/// A random 256-bit value, base64url.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn digest(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Whether `base` (`http://host[:port]`) names this machine.
fn is_loopback(base: &str) -> bool {
    let Some(url) = reqwest::Url::parse(base).ok() else {
        return false;
    };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Connections {
    /// The redirect URI of `name`: the provider's, else the host's public
    /// URL + the callback path (`base`, the URL the caller reached: the
    /// configured `mcp.public_url`, or — on loopback only — the `Host`).
    fn redirect_uri(&self, name: &str, base: Option<&str>) -> Option<String> {
        let provider = self.provider(name)?;
        if let Some(uri) = &provider.redirect_uri {
            return Some(uri.to_string());
        }
        let configured = self.public_url.as_deref();
        let base = configured.or(base.filter(|b| is_loopback(b)))?;
        Some(format!("{}/connections/{name}/callback", base.trim_end_matches('/')))
    }

    /// Start connecting `user` to `name` (or answer their pending flow).
    pub async fn start(&self, user: &Principal, name: &str, base: Option<&str>) -> Result<Started, ApiError> {
        let provider = self.provider(name).ok_or_else(|| ApiError::ProviderNotFound(name.to_owned()))?;
        let Some(redirect_uri) = self.redirect_uri(name, base) else {
            tracing::error!(
                provider = name,
                "cannot tell the callback URL: set the provider's redirect_uri, or mcp.public_url"
            );
            return Err(ApiError::Internal);
        };
        let config = &self.vault().config;
        let pending_key = keys::connection_pending(&user.tenant, &user.sub, name);
        if let Some(pending) = self.pending(user, name, &pending_key).await? {
            return Ok(pending);
        }
        let (state, verifier) = (random_token(), random_token());
        let state_digest = digest(&state);
        let flows = keys::connection_flows_of(&user.tenant, &user.sub);
        let limit = config.max_pending_flows_per_caller;
        let admitted =
            self.store().admit(&flows, &state_digest, config.flow_ttl, limit).await.map_err(store_error)?;
        if !admitted {
            tracing::info!(provider = name, limit, "a caller's connect flows are at their quota");
            return Err(ApiError::ConnectionQuotaExceeded { limit });
        }
        let flow = Flow {
            tenant: user.tenant.clone(),
            sub: user.sub.clone(),
            provider: name.to_owned(),
            verifier: verifier.clone(),
            redirect_uri: redirect_uri.clone(),
        };
        let keys_ring = &self.vault().keys;
        let sealed = keys_ring.seal(&flow_aad(&state_digest), &serde_json::to_vec(&flow).expect("a flow"));
        let key = keys::connection_flow(&state_digest);
        self.store().put(&key, &sealed, config.flow_ttl).await.map_err(store_error)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = provider.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &provider.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let pending = Pending {
            authorization_url: url.to_string(),
            expires_ms: self.now() + config.flow_ttl.as_millis() as i64,
        };
        let sealed =
            keys_ring.seal(&pending_aad(user, name), &serde_json::to_vec(&pending).expect("pending"));
        self.store().put(&pending_key, &sealed, config.flow_ttl).await.map_err(store_error)?;
        Ok(self.started(name, pending))
    }

    fn started(&self, name: &str, pending: Pending) -> Started {
        Started {
            provider: name.to_owned(),
            authorization_url: pending.authorization_url,
            expires_at: crate::approvals::views::rfc3339(pending.expires_ms),
        }
    }

    /// The caller's pending flow at `name`, if it has time left.
    async fn pending(&self, user: &Principal, name: &str, key: &str) -> Result<Option<Started>, ApiError> {
        let Some(stored) = self.store().get(key).await.map_err(store_error)? else {
            return Ok(None);
        };
        let pending = self
            .vault()
            .keys
            .open(&pending_aad(user, name), &stored)
            .ok()
            .and_then(|opened| serde_json::from_slice::<Pending>(&opened).ok())
            .filter(|p| p.expires_ms - self.now() > REUSE_MARGIN_MS);
        Ok(pending.map(|p| self.started(name, p)))
    }

    /// The flow a callback names, opened (not taken).
    async fn flow(&self, name: &str, state: Option<&str>) -> Result<(String, Flow), CallbackError> {
        let state = state.filter(|s| !s.is_empty()).ok_or(CallbackError::NoFlow)?;
        let state_digest = digest(state);
        let stored = self
            .store()
            .get(&keys::connection_flow(&state_digest))
            .await
            .map_err(|_| CallbackError::Store)?;
        let flow: Flow = stored
            .and_then(|stored| self.vault().keys.open(&flow_aad(&state_digest), &stored).ok())
            .and_then(|opened| serde_json::from_slice(&opened).ok())
            .ok_or(CallbackError::NoFlow)?;
        if flow.provider != name || self.provider(name).is_none() {
            return Err(CallbackError::NoFlow);
        }
        Ok((state_digest, flow))
    }

    /// Whose host identity a callback's flow would connect (nothing taken).
    pub async fn preview(&self, name: &str, query: &CallbackQuery) -> Result<Connected, CallbackError> {
        let (_, flow) = self.flow(name, query.state.as_deref()).await?;
        Ok(Connected { provider: name.to_owned(), sub: flow.sub, tenant: flow.tenant })
    }

    /// Take the flow once; `NoFlow` if another request took it first.
    async fn take(&self, name: &str, state: Option<&str>) -> Result<(Flow, Principal), CallbackError> {
        let (state_digest, flow) = self.flow(name, state).await?;
        let used = keys::connection_flow_used(&state_digest);
        let ttl = self.vault().config.flow_ttl;
        if !self.store().insert_if_absent(&used, b"1", ttl).await.map_err(|_| CallbackError::Store)? {
            return Err(CallbackError::NoFlow);
        }
        let _ = self.store().delete(&keys::connection_flow(&state_digest)).await;
        let _ = self.store().forget(&keys::connection_flows_of(&flow.tenant, &flow.sub), &state_digest).await;
        let user = Principal {
            sub: flow.sub.clone(),
            tenant: flow.tenant.clone(),
            roles: Vec::new(),
            scopes: Vec::new(),
        };
        let _ = self.store().delete(&keys::connection_pending(&user.tenant, &user.sub, name)).await;
        Ok((flow, user))
    }

    /// The flow ends without a connection: the provider's `error`, or the
    /// user's "Cancel" on the confirmation page.
    pub async fn decline(&self, name: &str, query: &CallbackQuery, why: &str) -> CallbackError {
        match self.take(name, query.state.as_deref()).await {
            Ok((_, user)) => {
                let why = crate::text::clip(why, 64).into_owned();
                let detail = serde_json::json!({ "provider": name, "error": why });
                self.record(&user, "connections.refused", "declined", detail).await;
                CallbackError::Declined(why)
            }
            Err(e) => e,
        }
    }

    /// The user confirmed: take the flow, redeem the code, store the tokens.
    pub async fn complete(&self, name: &str, query: &CallbackQuery) -> Result<Connected, CallbackError> {
        let code = query.code.as_deref().filter(|c| !c.is_empty()).ok_or(CallbackError::NoFlow)?;
        let (flow, user) = self.take(name, query.state.as_deref()).await?;
        let provider = self.provider(name).ok_or(CallbackError::NoFlow)?;
        let refused = |reason: String| async {
            let detail = serde_json::json!({ "provider": name, "reason": reason });
            self.record(&user, "connections.refused", "refused", detail).await;
            CallbackError::Refused(reason)
        };
        let issued = match oauth::redeem_code(
            &self.client(provider),
            code,
            &flow.verifier,
            &flow.redirect_uri,
        )
        .await
        {
            Ok(issued) => issued,
            Err(e) => return Err(refused(e.message).await),
        };
        let Ok(tokens) = self.tokens_of(provider, issued, None, None) else {
            let max = self.vault().config.max_token_bytes;
            return Err(refused(format!("a token larger than {max} bytes")).await);
        };
        self.save(&user, name, &tokens).await.map_err(|_| CallbackError::Store)?;
        let detail = serde_json::json!({ "provider": name, "refreshable": tokens.refresh_token.is_some() });
        self.record(&user, "connections.connected", "connected", detail).await;
        Ok(Connected { provider: name.to_owned(), sub: flow.sub, tenant: flow.tenant })
    }
}
