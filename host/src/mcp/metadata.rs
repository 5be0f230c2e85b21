//! OAuth 2.0 Protected Resource Metadata (RFC 9728): FastMCP is an OAuth
//! 2.1 resource server, and MCP clients find the authorization server from
//! this document (`/.well-known/oauth-protected-resource`, and its
//! path-suffixed form `/.well-known/oauth-protected-resource/mcp`).

use crate::auth::{CATALOG_SCOPE, INVOKE_SCOPE};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

/// Where the document is served (its path-suffixed form adds `/mcp`).
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The metadata document.
#[derive(Debug, Serialize)]
pub struct ResourceMetadata {
    /// The protected resource: the MCP endpoint's URL.
    pub resource: String,
    /// Authorization servers that issue tokens for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource understands.
    pub scopes_supported: Vec<&'static str>,
    /// Tokens travel in the `Authorization` header only.
    pub bearer_methods_supported: Vec<&'static str>,
    /// A human-readable name.
    pub resource_name: &'static str,
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn document(State(state): State<AppState>, headers: HeaderMap) -> Json<ResourceMetadata> {
    let config = &state.config().mcp;
    let mut authorization_servers = config.authorization_servers.clone();
    let issuer = &state.config().auth.issuer;
    if authorization_servers.is_empty() && (issuer.starts_with("https://") || issuer.starts_with("http://")) {
        authorization_servers.push(issuer.clone());
    }
    Json(ResourceMetadata {
        resource: format!("{}/mcp", state.public_base(&headers)),
        authorization_servers,
        scopes_supported: vec![INVOKE_SCOPE, CATALOG_SCOPE],
        bearer_methods_supported: vec!["header"],
        resource_name: "FastMCP",
    })
}

/// The document's URL, for `WWW-Authenticate: Bearer resource_metadata=…`.
pub fn document_url(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}{WELL_KNOWN_PATH}/mcp", state.public_base(headers))
}
