//! Tool names on MCP. MCP names may not contain `:` (`[A-Za-z0-9_.-]`, 1–128
//! characters), so the tool `ads:createCampaign` is `ads.createCampaign`.
//! Plugin names never contain a dot, so the first dot separates the plugin
//! from the tool's own name (which may contain dots) without ambiguity.

/// Longest tool name MCP allows.
pub const MAX_MCP_NAME_LEN: usize = 128;

/// The MCP name of a tool id (`plugin:name` → `plugin.name`), or `None` when
/// the id is longer than MCP allows (a 64 + 64 byte id; not listed).
pub fn to_mcp(tool_id: &str) -> Option<String> {
    (tool_id.len() <= MAX_MCP_NAME_LEN).then(|| tool_id.replacen(':', ".", 1))
}

/// The tool id of an MCP name (`plugin.name` → `plugin:name`). A name
/// without a dot becomes an id no manifest can declare, which the pipeline
/// answers like any unknown id.
pub fn to_tool_id(mcp_name: &str) -> String {
    mcp_name.replacen('.', ":", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_with_dots_in_the_tool_name() {
        for id in ["ads:createCampaign", "util:echo", "misbehave:v1.slow-call"] {
            let name = to_mcp(id).unwrap();
            assert!(!name.contains(':'), "{name}");
            assert_eq!(to_tool_id(&name), id);
        }
        assert_eq!(to_mcp("misbehave:v1.slow").unwrap(), "misbehave.v1.slow");
    }

    #[test]
    fn ids_longer_than_mcp_allows_are_not_exposed() {
        let id = format!("{}:{}", "p".repeat(64), "t".repeat(64));
        assert_eq!(to_mcp(&id), None);
        assert!(to_mcp(&id[..MAX_MCP_NAME_LEN]).is_some());
    }

    #[test]
    fn a_name_without_a_dot_is_no_tool_id() {
        assert_eq!(to_tool_id("echo"), "echo");
    }
}
