//! `GET /tool-catalog`: the tools a caller may invoke.

use super::caller::Authenticated;
use crate::auth::{CATALOG_SCOPE, require_scope};
use crate::correlation::CorrelationId;
use crate::error::Problem;
use crate::registry::Tool;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The catalog.
#[derive(Serialize, ToSchema)]
pub struct CatalogResponse {
    /// Registry version the listing comes from.
    pub registry_version: u64,
    /// The tools, ordered by id.
    pub tools: Vec<CatalogEntry>,
}

/// One tool in the catalog.
#[derive(Serialize, ToSchema)]
pub struct CatalogEntry {
    /// `plugin:name`.
    pub id: String,
    /// Name within the plugin.
    pub name: String,
    /// What the tool does.
    pub description: String,
    /// The plugin's version.
    pub version: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of the result, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    /// Behaviour hints.
    pub annotations: Annotations,
    /// Whether calls stop at a human confirmation gate.
    pub requires_confirmation: bool,
}

/// MCP-style behaviour hints.
#[derive(Serialize, ToSchema)]
pub struct Annotations {
    /// Changes nothing.
    pub read_only: bool,
    /// May change external state irreversibly.
    pub destructive: bool,
    /// Repeating a call has no further effect.
    pub idempotent: bool,
    /// Talks to the open world.
    pub open_world: bool,
}

impl From<&Tool> for CatalogEntry {
    fn from(tool: &Tool) -> Self {
        let def = &tool.def;
        let a = def.annotations;
        Self {
            id: def.id.clone(),
            name: def.name.clone(),
            description: def.description.clone(),
            version: tool.plugin.version.clone(),
            input_schema: def.input_schema.clone(),
            output_schema: def.output_schema.clone(),
            annotations: Annotations {
                read_only: a.read_only,
                destructive: a.destructive,
                idempotent: a.idempotent,
                open_world: a.open_world,
            },
            requires_confirmation: def.confirmation.is_some(),
        }
    }
}

/// List the tools a role of the caller grants. Rules that read arguments
/// apply when a tool is called, never to this listing.
#[utoipa::path(
    get, path = "/tool-catalog", tag = "tools",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tools this caller may invoke", body = CatalogResponse),
    )
)]
pub async fn catalog(
    State(state): State<AppState>,
    correlation_id: CorrelationId,
    Authenticated(principal): Authenticated,
) -> Result<Json<CatalogResponse>, Problem> {
    require_scope(&principal, CATALOG_SCOPE).map_err(|e| e.at(&correlation_id))?;
    let registry = state.registry();
    let policy = state.policy();
    let tools = registry
        .tools()
        .filter(|t| policy.policy.grants(&principal, &t.def.id))
        .map(|t| CatalogEntry::from(t.as_ref()))
        .collect();
    Ok(Json(CatalogResponse { registry_version: registry.version, tools }))
}
