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

/// Every manifest tool must be declared, and a declared schema must equal
/// the manifest's; the first difference (in manifest order) is returned.
/// The manifest may describe a subset of the component's tools (the
/// operator exposes less than the author wrote): the others, returned in
/// declaration order, are not served.
pub fn compare(manifest: &[ToolDef], declared: &[DeclaredTool]) -> Result<Vec<String>, Mismatch> {
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
    Ok(declared
        .iter()
        .filter(|d| !manifest.iter().any(|t| t.name == d.name))
        .map(|d| d.name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, ManifestBounds};
    use serde_json::json;

    fn manifest_tools() -> Vec<ToolDef> {
        let text = "plugin: p\nversion: 1.0.0\ncomponent: p.wasm\ntools:\n  - name: a\n    input_schema: { type: object }\n  - name: b\n    input_schema: { type: object, required: [x] }\n";
        let bounds = ManifestBounds { max_memory_mb: 64, max_timeout_ms: 5000 };
        Manifest::parse(std::path::Path::new("p.yaml"), text, bounds).unwrap().tools
    }

    fn declared(names: &[&str]) -> Vec<DeclaredTool> {
        names.iter().map(|n| DeclaredTool { name: (*n).into(), input_schema: None }).collect()
    }

    #[test]
    fn the_manifests_tools_must_be_declared() {
        let tools = manifest_tools();
        assert_eq!(compare(&tools, &declared(&["b", "a"])), Ok(vec![]));
        let missing = compare(&tools, &declared(&["a"])).unwrap_err();
        assert_eq!(missing.field, "tools[1].name");
        assert!(missing.reason.contains("does not implement `b` (it declares: [`a`])"), "{missing:?}");
        // A subset is fine: what the manifest does not describe is not served.
        assert_eq!(compare(&tools, &declared(&["a", "c", "b", "d"])), Ok(vec!["c".into(), "d".into()]));
    }

    #[test]
    fn a_declared_schema_must_equal_the_manifests() {
        let tools = manifest_tools();
        let mut same = declared(&["a", "b"]);
        same[1].input_schema = Some(json!({"required": ["x"], "type": "object"}));
        assert_eq!(compare(&tools, &same), Ok(vec![]), "key order does not matter");
        let mut different = declared(&["a", "b"]);
        different[1].input_schema = Some(json!({"type": "object"}));
        let mismatch = compare(&tools, &different).unwrap_err();
        assert_eq!(mismatch.field, "tools[1].input_schema");
        assert!(mismatch.reason.contains("for `b`"), "{mismatch:?}");
    }

    #[test]
    fn declarations_are_bounded_and_unique() {
        let decl = |name: &str, schema: Option<&str>| ToolDeclaration {
            name: name.into(),
            input_schema: schema.map(str::to_owned),
        };
        assert!(read(vec![decl("a", None), decl("a", None)]).unwrap_err().contains("twice"));
        assert!(read(vec![decl(&"n".repeat(MAX_DECLARED_NAME + 1), None)]).unwrap_err().contains("at most"));
        assert!(read(vec![decl("a", Some("{not json"))]).unwrap_err().contains("not JSON"));
        let many: Vec<_> = (0..=MAX_DECLARED_TOOLS).map(|i| decl(&format!("t{i}"), None)).collect();
        assert!(read(many).unwrap_err().contains("at most"));
        let big = format!("\"{}\"", "s".repeat(MAX_DECLARED_SCHEMA));
        assert!(read(vec![decl("a", Some(&big))]).unwrap_err().contains("at most"));
        assert_eq!(
            read(vec![decl("a", Some("{\"type\":\"object\"}"))]).unwrap()[0].input_schema,
            Some(json!({"type": "object"}))
        );
    }
}
