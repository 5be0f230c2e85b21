//! `{{name}}`: a FastMCP plugin (`fastmcp:plugin@0.2.0`, see wit/plugin.wit).
//!
//! - `{{name}}:hello` greets someone with the manifest's `config: greeting`
//!   and writes a log line tagged with the call's correlation id.

wit_bindgen::generate!({ world: "plugin", path: "wit" });

use exports::fastmcp::plugin::tools::Guest;
use fastmcp::plugin::config;
use fastmcp::plugin::log::{Level, log};
use fastmcp::plugin::types::{CallContext, ToolDeclaration, ToolError};
use serde_json::{Value, json};

struct Plugin;

impl Guest for Plugin {
    /// The tools this component implements; the host checks them against
    /// the manifest when it loads the component.
    fn declare() -> Vec<ToolDeclaration> {
        vec![ToolDeclaration { name: "hello".into(), input_schema: None }]
    }

    /// One tool call. `args_json` has passed the manifest's input schema.
    fn invoke(_ctx: CallContext, tool: String, args_json: String) -> Result<String, ToolError> {
        let args: Value =
            serde_json::from_str(&args_json).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        match tool.as_str() {
            "hello" => {
                let greeting = config::get("greeting").unwrap_or_else(|| "Hello".into());
                let name = args["name"].as_str().unwrap_or("world");
                log(Level::Info, "saying hello");
                Ok(json!({ "message": format!("{greeting}, {name}!") }).to_string())
            }
            other => Err(ToolError::Internal(format!("unknown tool `{other}`"))),
        }
    }
}

export!(Plugin);
