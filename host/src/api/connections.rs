//! The connection routes: a user connects their own account at an
//! `oauth2_authorization_code` provider (`POST /connections/{provider}`:
//! the authorization URL to open), lists (`GET /connections`, never a
//! token) and forgets (`DELETE /connections/{provider}`, revoked at the
//! provider when it can) their connections. The provider sends the
//! browser back to `GET /connections/{provider}/callback`, which shows
//! whose host identity the account would be connected to and asks; the
//! page's "Connect" posts back to the same path and completes it
//! ("Cancel" ends the flow). Small HTML pages — no script, nothing loaded,
//! no form but the post to this host, never framed, never cached, never
//! sent on as a referrer (the URL carries the code).

use super::caller::Authenticated;
use crate::auth::{INVOKE_SCOPE, require_scope};
use crate::connections::flow::{CallbackError, CallbackQuery, Connected, MAX_CALLBACK_PARAM, Started};
use crate::connections::{ConnectionList, Forgotten};
use crate::correlation::CorrelationId;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the callback pages may do: show themselves, and post their one
/// form to this host.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The caller, holding the invoke scope (connections serve tool calls).
fn caller_of(
    caller: Result<Authenticated, Problem>,
    id: &CorrelationId,
) -> Result<std::sync::Arc<crate::principal::Principal>, Problem> {
    let Authenticated(caller) = caller?;
    require_scope(&caller, INVOKE_SCOPE).map_err(|e| e.at(id))?;
    Ok(caller)
}

/// A provider name as given in a path (an impossible one is simply unknown).
fn provider_name(name: &str, id: &CorrelationId) -> Result<(), Problem> {
    match crate::broker::providers::is_provider_name(name) {
        true => Ok(()),
        false => Err(ApiError::ProviderNotFound(crate::text::clip(name, 64).into_owned()).at(id)),
    }
}

/// Start connecting the caller's account at `provider`: open
/// `authorization_url` in their browser before `expires_at`.
#[utoipa::path(
    post, path = "/connections/{provider}", tag = "connections",
    params(("provider" = String, Path, description = "An `oauth2_authorization_code` provider")),
    security(("bearer" = [])),
    responses((status = 201, description = "A flow started for the caller (or their pending one)", body = Started))
)]
pub async fn start(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(provider): Path<String>,
    headers: HeaderMap,
    caller: Result<Authenticated, Problem>,
) -> Result<(StatusCode, Json<Started>), Problem> {
    let caller = caller_of(caller, &correlation_id)?;
    provider_name(&provider, &correlation_id)?;
    let base = state.public_base(&headers);
    let started = state.connections(state.broker()).start(&caller, &provider, Some(&base)).await;
    started.map(|s| (StatusCode::CREATED, Json(s))).map_err(|e| e.at(&correlation_id))
}

/// The caller's connections (never a token).
#[utoipa::path(
    get, path = "/connections", tag = "connections",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's connections", body = ConnectionList))
)]
pub async fn list(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    caller: Result<Authenticated, Problem>,
) -> Result<Json<ConnectionList>, Problem> {
    let caller = caller_of(caller, &correlation_id)?;
    state.connections(state.broker()).list(&caller).await.map(Json).map_err(|e| e.at(&correlation_id))
}

/// Forget the caller's connection to `provider` (revoking it there when the
/// provider has a `revoke_url`).
#[utoipa::path(
    delete, path = "/connections/{provider}", tag = "connections",
    params(("provider" = String, Path, description = "The provider")),
    security(("bearer" = [])),
    responses((status = 200, description = "Forgotten", body = Forgotten))
)]
pub async fn forget(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Path(provider): Path<String>,
    caller: Result<Authenticated, Problem>,
) -> Result<Json<Forgotten>, Problem> {
    let caller = caller_of(caller, &correlation_id)?;
    if !crate::broker::providers::is_provider_name(&provider) {
        let shown = crate::text::clip(&provider, 64).into_owned();
        return Err(ApiError::ConnectionNotFound(shown).at(&correlation_id));
    }
    let forgotten = state.connections(state.broker()).forget(&caller, &provider).await;
    forgotten.map(Json).map_err(|e| e.at(&correlation_id))
}

/// Callback parameters within their bounds, for a provider name that can exist.
fn usable(provider: &str, query: Option<CallbackQuery>) -> Result<CallbackQuery, CallbackError> {
    let query = query.ok_or(CallbackError::NoFlow)?;
    let oversized =
        [&query.state, &query.code, &query.error].into_iter().flatten().any(|v| v.len() > MAX_CALLBACK_PARAM);
    match !oversized && crate::broker::providers::is_provider_name(provider) {
        true => Ok(query),
        false => Err(CallbackError::NoFlow),
    }
}

/// Where the provider sends the user's browser back: the provider's error
/// ends the flow; a code is shown for confirmation (nothing is taken yet).
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let query = match usable(&provider, query.ok().map(|Query(q)| q)) {
        Ok(query) => query,
        Err(e) => return refused(&provider, e),
    };
    let connections = state.connections(state.broker());
    if let Some(error) = &query.error {
        return refused(&provider, connections.decline(&provider, &query, error).await);
    }
    match connections.preview(&provider, &query).await {
        Ok(whose) => confirm_page(&whose, &query),
        Err(e) => refused(&provider, e),
    }
}

/// The confirmation page's form.
#[derive(Debug, serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decision: String,
}

/// The confirmation page's post: "Connect" completes the flow, "Cancel"
/// ends it.
pub async fn confirm(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    form: Result<axum::Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return refused(&provider, CallbackError::NoFlow);
    };
    let query = CallbackQuery { state: form.state, code: form.code, error: None };
    let query = match usable(&provider, Some(query)) {
        Ok(query) => query,
        Err(e) => return refused(&provider, e),
    };
    let connections = state.connections(state.broker());
    if form.decision != "connect" {
        return refused(&provider, connections.decline(&provider, &query, "cancelled").await);
    }
    match connections.complete(&provider, &query).await {
        Ok(connected) => page(StatusCode::OK, "Connected", &connected_text(&connected), None, ""),
        Err(e) => refused(&provider, e),
    }
}

fn refused(provider: &str, e: CallbackError) -> Response {
    tracing::info!(code = e.code(), provider = %crate::text::clip(provider, 64), "a connect callback was refused");
    page(e.status(), "Not connected", &e.to_string(), Some(e.code()), "")
}

/// "Connect your account at P to the FastMCP user S (tenant T)?"
fn confirm_page(whose: &Connected, query: &CallbackQuery) -> Response {
    let text = format!(
        "Connect your account at {} to the FastMCP user {} (tenant {})? Tools will act with your account there when {} calls them. Connect only if that is you.",
        whose.provider, whose.sub, whose.tenant, whose.sub
    );
    let hidden = |name: &str, value: &Option<String>| {
        let value = escape(value.as_deref().unwrap_or_default());
        format!("<input type=\"hidden\" name=\"{name}\" value=\"{value}\">")
    };
    let form = format!(
        "<form method=\"post\" action=\"/connections/{}/callback\">{}{}\
         <button id=\"connect\" name=\"decision\" value=\"connect\">Connect</button> \
         <button id=\"cancel\" name=\"decision\" value=\"cancel\">Cancel</button></form>",
        escape(&whose.provider),
        hidden("state", &query.state),
        hidden("code", &query.code),
    );
    page(StatusCode::OK, "Connect your account?", &text, None, &form)
}

fn connected_text(connected: &Connected) -> String {
    format!(
        "Your account at {} is now connected for {} (tenant {}). You can close this tab.",
        connected.provider, connected.sub, connected.tenant
    )
}

/// A callback page: a title, a sentence, the code of a refusal, and
/// (already escaped) markup of a form.
fn page(status: StatusCode, title: &str, text: &str, code: Option<&str>, form: &str) -> Response {
    let code = code.map(|c| format!("<p>Code: <code id=\"code\">{c}</code></p>")).unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — FastMCP</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body><h1 id=\"title\">{title}</h1><p id=\"message\">{}</p>{code}{form}</body></html>\n",
        escape(text)
    );
    super::console::guarded((status, body).into_response(), "text/html; charset=utf-8", PAGE_POLICY)
}

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_text_is_escaped() {
        assert_eq!(
            super::escape("<script>'x'&\"y\"</script>"),
            "&lt;script&gt;&#39;x&#39;&amp;&quot;y&quot;&lt;/script&gt;"
        );
    }
}
