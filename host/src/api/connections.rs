//! The connection routes: a user connects their own account at an
//! `oauth2_authorization_code` provider (`POST /connections/{provider}`:
//! the authorization URL to open), lists (`GET /connections`, never a
//! token) and forgets (`DELETE /connections/{provider}`, revoked at the
//! provider when it can) their connections. The provider sends the
//! browser back to `GET /connections/{provider}/callback`, which answers a
//! small HTML page — no script, nothing loaded, never cached, never sent
//! on as a referrer (the URL carries the code).

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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the callback page may do: nothing but show itself.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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
    responses((status = 201, description = "A flow started for the caller", body = Started))
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
    let broker = state.broker();
    let base = state.public_base(&headers);
    let started = state.connections(&broker).start(&caller, &provider, Some(&base)).await;
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
    let broker = state.broker();
    state.connections(&broker).list(&caller).await.map(Json).map_err(|e| e.at(&correlation_id))
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
        return Err(
            ApiError::ConnectionNotFound(crate::text::clip(&provider, 64).into_owned()).at(&correlation_id)
        );
    }
    let broker = state.broker();
    state.connections(&broker).forget(&caller, &provider).await.map(Json).map_err(|e| e.at(&correlation_id))
}

/// Where the provider sends the user's browser back.
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let oversized = |q: &CallbackQuery| {
        [&q.state, &q.code, &q.error].into_iter().flatten().any(|v| v.len() > MAX_CALLBACK_PARAM)
    };
    let outcome = match query {
        Ok(Query(query)) if !oversized(&query) && crate::broker::providers::is_provider_name(&provider) => {
            let broker = state.broker();
            state.connections(&broker).complete(&provider, &query).await
        }
        _ => Err(CallbackError::NoFlow),
    };
    match outcome {
        Ok(connected) => page(StatusCode::OK, "Connected", &connected_text(&connected), None),
        Err(e) => {
            tracing::info!(code = e.code(), provider = %crate::text::clip(&provider, 64), "a connect callback was refused");
            page(e.status(), "Not connected", &e.to_string(), Some(e.code()))
        }
    }
}

fn connected_text(connected: &Connected) -> String {
    format!(
        "Your account at {} is now connected for {} (tenant {}). You can close this tab.",
        connected.provider, connected.sub, connected.tenant
    )
}

/// The callback's page: a title, a sentence, and the code of a refusal.
fn page(status: StatusCode, title: &str, text: &str, code: Option<&str>) -> Response {
    let code = code.map(|c| format!("<p>Code: <code id=\"code\">{c}</code></p>")).unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — FastMCP</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body><h1 id=\"title\">{title}</h1><p id=\"message\">{}</p>{code}</body></html>\n",
        escape(text)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
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
