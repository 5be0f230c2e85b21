//! `ads`: the example advertising plugin.
//!
//! - `ads:createCampaign` (destructive) creates a campaign and returns its record.
//! - `ads:listCampaigns` (read-only) lists campaigns.
//!
//! Until the brokering work wires this plugin to a real Ads API over
//! `wasi:http`, it has no upstream: `createCampaign` derives a stable id from
//! its input and `listCampaigns` reports the (empty) local list. It already asks
//! the host broker for a credential and logs through the host, so it exercises
//! the whole WIT contract.

wit_bindgen::generate!({ world: "plugin", path: "../../wit" });

use exports::fastmcp::plugin::tools::Guest;
use fastmcp::plugin::broker;
use fastmcp::plugin::log::{Level, log};
use fastmcp::plugin::types::{CallContext, ToolError};
use serde_json::{Value, json};

struct Ads;

impl Guest for Ads {
    fn invoke(ctx: CallContext, tool: String, args_json: String) -> Result<String, ToolError> {
        let args: Value =
            serde_json::from_str(&args_json).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        match tool.as_str() {
            "createCampaign" => create_campaign(&ctx, &args),
            "listCampaigns" => list_campaigns(&args),
            other => Err(ToolError::Internal(format!("unknown tool `{other}`"))),
        }
    }
}

fn create_campaign(ctx: &CallContext, args: &Value) -> Result<String, ToolError> {
    let name = args["name"].as_str().unwrap_or_default();
    let budget = args["budget"].as_f64().unwrap_or_default();
    let start_date = args["startDate"].as_str().unwrap_or_default();
    if !is_iso_date(start_date) {
        return Err(ToolError::InvalidInput(format!("startDate `{start_date}` is not a YYYY-MM-DD date")));
    }
    log(Level::Info, &format!("creating campaign `{name}` for tenant `{}`", ctx.tenant));
    let credential = match broker::get_token("ads-api", &["campaigns.write".to_string()]) {
        Ok(_) => "brokered",
        Err(_) => "none",
    };
    let id = format!("cmp_{:016x}", fnv1a(&[&ctx.tenant, name, start_date]));
    Ok(json!({
        "id": id,
        "name": name,
        "budget": budget,
        "startDate": start_date,
        "status": "scheduled",
        "tenant": ctx.tenant,
        "credential": credential,
    })
    .to_string())
}

fn list_campaigns(args: &Value) -> Result<String, ToolError> {
    let limit = args["limit"].as_u64().unwrap_or(50);
    log(Level::Debug, &format!("listing campaigns (limit {limit})"));
    Ok(json!({ "campaigns": [], "limit": limit, "source": "local" }).to_string())
}

/// `YYYY-MM-DD` with plausible month and day numbers.
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// FNV-1a over the parts, separated, for a stable campaign id.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

export!(Ads);
