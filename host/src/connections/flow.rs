//! Connecting an account: the authorization-code flow with PKCE (RFC 6749
//! §4.1, RFC 7636 S256).
//!
//! `start` makes a flow for the authenticated caller: a random `state`
//! (256 bits) and PKCE verifier, kept host-side — sealed in the store under
//! the SHA-256 of the state, bound to the caller's tenant and subject, the
//! provider and the redirect URI, for `connections.flow_ttl` — and answers
//! the provider's authorization URL. The provider sends the user's browser
//! back to `/connections/{provider}/callback`; `complete` takes the flow
//! once (a claim in the store: a replayed callback finds it used), checks
//! it belongs to this provider, redeems the code with the verifier and the
//! same redirect URI, and stores the tokens as the flow's caller's. Whoever
//! presents the callback, the tokens go to the user who started the flow;
//! a code the provider issued for another flow fails PKCE there.

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

/// The callback's query, as the provider sends it (other parameters, such
/// as `iss` or `scope`, are ignored).
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

/// A completed connection.
#[derive(Debug)]
pub struct Connected {
    /// The provider.
    pub provider: String,
    /// Whose it is now.
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
    #[error("the provider answered `{0}`; nothing was connected")]
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

/// A random 256-bit value, base64url.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn digest(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

impl Connections<'_> {
    /// Start connecting `user` to `name`. `base` is the host's public base
    /// URL as the caller reached it (for the default redirect URI).
    pub async fn start(&self, user: &Principal, name: &str, base: Option<&str>) -> Result<Started, ApiError> {
        let provider = self.provider(name).ok_or_else(|| ApiError::ProviderNotFound(name.to_owned()))?;
        let redirect_uri = match (&provider.redirect_uri, base) {
            (Some(uri), _) => uri.to_string(),
            (None, Some(base)) => format!("{}/connections/{name}/callback", base.trim_end_matches('/')),
            (None, None) => {
                tracing::warn!(provider = name, "no redirect_uri: set it on the provider, or mcp.public_url");
                return Err(ApiError::ProviderNotFound(name.to_owned()));
            }
        };
        let (state, verifier) = (random_token(), random_token());
        let state_digest = digest(&state);
        let config = &self.vault.config;
        let flows = keys::connection_flows_of(&user.tenant, &user.sub);
        let admitted = self
            .store
            .admit(&flows, &state_digest, config.flow_ttl, config.max_pending_flows_per_caller)
            .await
            .map_err(store_error)?;
        if !admitted {
            return Err(ApiError::ConnectionQuotaExceeded { limit: config.max_pending_flows_per_caller });
        }
        let flow = Flow {
            tenant: user.tenant.clone(),
            sub: user.sub.clone(),
            provider: name.to_owned(),
            verifier: verifier.clone(),
            redirect_uri: redirect_uri.clone(),
        };
        let sealed =
            self.vault.keys.seal(&flow_aad(&state_digest), &serde_json::to_vec(&flow).expect("a flow"));
        let key = keys::connection_flow(&state_digest);
        self.store.put(&key, &sealed, config.flow_ttl).await.map_err(store_error)?;
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
        let expires_ms = self.clock.now_unix_ms() + config.flow_ttl.as_millis() as i64;
        Ok(Started {
            provider: name.to_owned(),
            authorization_url: url.to_string(),
            expires_at: crate::approvals::views::rfc3339(expires_ms),
        })
    }

    /// The provider's redirect back to `/connections/{name}/callback`.
    pub async fn complete(&self, name: &str, query: &CallbackQuery) -> Result<Connected, CallbackError> {
        let state = query.state.as_deref().filter(|s| !s.is_empty()).ok_or(CallbackError::NoFlow)?;
        let state_digest = digest(state);
        let flow_key = keys::connection_flow(&state_digest);
        let stored = self.store.get(&flow_key).await.map_err(|_| CallbackError::Store)?;
        let stored = stored.ok_or(CallbackError::NoFlow)?;
        // Once: a replayed callback (or a race of two) finds it claimed.
        let used = keys::connection_flow_used(&state_digest);
        let ttl = self.vault.config.flow_ttl;
        if !self.store.insert_if_absent(&used, b"1", ttl).await.map_err(|_| CallbackError::Store)? {
            return Err(CallbackError::NoFlow);
        }
        let flow: Flow = self
            .vault
            .keys
            .open(&flow_aad(&state_digest), &stored)
            .ok()
            .and_then(|opened| serde_json::from_slice(&opened.plaintext).ok())
            .ok_or(CallbackError::NoFlow)?;
        let _ = self.store.delete(&flow_key).await;
        let _ = self.store.forget(&keys::connection_flows_of(&flow.tenant, &flow.sub), &state_digest).await;
        let user = Principal {
            sub: flow.sub.clone(),
            tenant: flow.tenant.clone(),
            roles: Vec::new(),
            scopes: Vec::new(),
        };
        if flow.provider != name {
            return Err(CallbackError::NoFlow);
        }
        let provider = self.provider(name).ok_or(CallbackError::NoFlow)?;
        if let Some(error) = &query.error {
            let error = crate::text::clip(error, 64).into_owned();
            let detail = serde_json::json!({ "provider": name, "error": error });
            self.record(&user, "connections.refused", "declined", detail).await;
            return Err(CallbackError::Declined(error));
        }
        let code = query.code.as_deref().filter(|c| !c.is_empty()).ok_or(CallbackError::NoFlow)?;
        let client = oauth::Client {
            http: &self.vault.http,
            token_url: &provider.token_url,
            client_id: &provider.client_id,
            client_secret: &provider.client_secret,
        };
        let refused = |reason: String| async {
            let detail = serde_json::json!({ "provider": name, "reason": reason });
            self.record(&user, "connections.refused", "refused", detail).await;
            CallbackError::Refused(reason)
        };
        let issued = match oauth::redeem_code(&client, code, &flow.verifier, &flow.redirect_uri).await {
            Ok(issued) => issued,
            Err(e) => return Err(refused(e.message).await),
        };
        let Ok(tokens) = self.tokens_of(provider, issued, None, 0) else {
            return Err(
                refused(format!("a token larger than {} bytes", self.vault.config.max_token_bytes)).await
            );
        };
        self.save(&user, name, &tokens).await.map_err(|_| CallbackError::Store)?;
        let detail = serde_json::json!({ "provider": name, "refreshable": tokens.refresh_token.is_some() });
        self.record(&user, "connections.connected", "connected", detail).await;
        Ok(Connected { provider: name.to_owned(), sub: flow.sub, tenant: flow.tenant })
    }
}
