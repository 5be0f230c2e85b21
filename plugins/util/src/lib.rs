//! `util`: small, pure tools used by examples, tests and benchmarks.
//!
//! - `util:echo` returns its arguments unchanged.
//! - `util:sha256` returns the SHA-256 digest of `text` as lowercase hex.

wit_bindgen::generate!({ world: "plugin", path: "../../wit" });

use exports::fastmcp::plugin::tools::Guest;
use fastmcp::plugin::types::{CallContext, ToolDeclaration, ToolError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Util;

impl Guest for Util {
    /// The tools this component implements (the host checks them against the manifest).
    fn declare() -> Vec<ToolDeclaration> {
        ["echo", "sha256"]
            .into_iter()
            .map(|name| ToolDeclaration { name: name.into(), input_schema: None })
            .collect()
    }

    fn invoke(_ctx: CallContext, tool: String, args_json: String) -> Result<String, ToolError> {
        match tool.as_str() {
            // The host has validated the arguments; echo them back byte for byte.
            "echo" => Ok(args_json),
            "sha256" => {
                let args: Value =
                    serde_json::from_str(&args_json).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
                let text = args["text"]
                    .as_str()
                    .ok_or_else(|| ToolError::InvalidInput("`text` must be a string".into()))?;
                let digest = hex(&Sha256::digest(text.as_bytes()));
                Ok(json!({ "sha256": digest }).to_string())
            }
            other => Err(ToolError::Internal(format!("unknown tool `{other}`"))),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

export!(Util);
