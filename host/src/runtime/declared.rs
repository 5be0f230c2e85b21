//! The tools a `fastmcp:plugin@0.2.0` component declares (`tools.declare`):
//! checked against bounds, then matched against the manifest's tools so a
//! mismatch is named before any call.

use super::bindings::fastmcp::plugin::types::ToolDeclaration;
use crate::manifest::ToolDef;

/// Most tools one component may declare.
pub const MAX_DECLARED_TOOLS: usize = 1024;
/// Longest declared tool name (manifest names are shorter still).
pub const MAX_DECLARED_NAME: usize = 128;
/// Largest declared input schema.
pub const MAX_DECLARED_SCHEMA: usize = 64 * 1024;

/// A tool as the component declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredTool {
    /// Its name within the plugin.
    pub name: String,
    /// Its input schema, if declared.
    pub input_schema: Option<serde_json::Value>,
}

/// Check what `declare` returned against the bounds and parse the schemas.
/// (Copied out whole first, like a call's answer: see `bound_answer`.)
pub(super) fn read(list: Vec<ToolDeclaration>) -> Result<Vec<DeclaredTool>, String> {
    if list.len() > MAX_DECLARED_TOOLS {
        return Err(format!("`declare` returned {} tools; at most {MAX_DECLARED_TOOLS}", list.len()));
    }
    let mut tools: Vec<DeclaredTool> = Vec::with_capacity(list.len());
    for declaration in list {
        let name = declaration.name;
        if name.len() > MAX_DECLARED_NAME {
            return Err(format!(
                "`declare` returned a tool name of {} bytes; at most {MAX_DECLARED_NAME}",
                name.len()
            ));
        }
        let input_schema = match declaration.input_schema {
            None => None,
            Some(text) if text.len() > MAX_DECLARED_SCHEMA => {
                return Err(format!(
                    "the input schema declared for `{name}` is {} bytes; at most {MAX_DECLARED_SCHEMA}",
                    text.len()
                ));
            }
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| format!("the input schema declared for `{name}` is not JSON: {e}"))?,
            ),
        };
        if tools.iter().any(|t| t.name == name) {
            return Err(format!("`declare` names the tool `{name}` twice"));
        }
        tools.push(DeclaredTool { name, input_schema });
    }
    Ok(tools)
}

/// A difference between the manifest's tools and the component's.
#[derive(Debug, PartialEq)]
pub struct Mismatch {
    /// The manifest field it concerns, e.g. `tools[1].name`.
    pub field: String,
    /// What differs.
    pub reason: String,
}

/// Every manifest tool must be declared, every declared tool described,
/// and a declared schema must equal the manifest's. The first difference
/// (in manifest order, then declaration order) is returned.
pub fn compare(manifest: &[ToolDef], declared: &[DeclaredTool]) -> Result<(), Mismatch> {
    let names = || declared.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ");
    for (index, tool) in manifest.iter().enumerate() {
        let Some(found) = declared.iter().find(|d| d.name == tool.name) else {
            return Err(Mismatch {
                field: format!("tools[{index}].name"),
                reason: format!(
                    "the component does not implement `{}` (it declares: [{}])",
                    tool.name,
                    names()
                ),
            });
        };
        if let Some(schema) = &found.input_schema
            && *schema != tool.input_schema
        {
            return Err(Mismatch {
                field: format!("tools[{index}].input_schema"),
                reason: format!(
                    "differs from the schema the component declares for `{}`: {}",
                    tool.name,
                    crate::text::clip(&schema.to_string(), 512)
                ),
            });
        }
    }
    if let Some(extra) = declared.iter().find(|d| !manifest.iter().any(|t| t.name == d.name)) {
        return Err(Mismatch {
            field: "tools".into(),
            reason: format!(
                "the component implements `{}`, which the manifest does not describe (describe it under \
                 `tools`, or stop declaring it)",
                extra.name
            ),
        });
    }
    Ok(())
}
