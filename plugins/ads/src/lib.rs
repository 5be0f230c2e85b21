//! `ads`: the example advertising plugin, a client of an Ads API.
//!
//! - `ads:createCampaign` (destructive) — `POST {api_url}/v1/campaigns`;
//! - `ads:listCampaigns` (read-only) — `GET {api_url}/v1/campaigns?limit=N`.
//! - `ads:myCampaigns` (read-only) — `GET {api_url}/v1/me/campaigns`, as the
//!   caller (a delegated credential: token exchange).
//!
//! `api_url` comes from the manifest's `config:`. The plugin holds no
//! credential: the host injects the `ads-api` bearer token into requests to
//! the granted host (manifest `credentials[].inject`), so the token never
//! enters this sandbox. Upstream failures (unreachable, 5xx, a refused
//! credential) are reported as `upstream` errors; a request the host's
//! allowlist refuses is a configuration fault (`internal`) naming the target.

wit_bindgen::generate!({ world: "plugin", path: "../../wit" });

use exports::fastmcp::plugin::tools::Guest;
use fastmcp::plugin::config;
use fastmcp::plugin::log::{Level, log};
use fastmcp::plugin::types::{CallContext, ToolDeclaration, ToolError};
use guest_http::{FetchError, Request, fetch};
use serde_json::{Value, json};

struct Ads;

impl Guest for Ads {
    /// The tools this component implements (the host checks them against the manifest).
    fn declare() -> Vec<ToolDeclaration> {
        ["createCampaign", "listCampaigns", "myCampaigns"]
            .into_iter()
            .map(|name| ToolDeclaration { name: name.into(), input_schema: None })
            .collect()
    }

    fn invoke(ctx: CallContext, tool: String, args_json: String) -> Result<String, ToolError> {
        let args: Value =
            serde_json::from_str(&args_json).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        match tool.as_str() {
            "createCampaign" => create_campaign(&ctx, &args),
            "listCampaigns" => list_campaigns(&ctx, &args),
            "myCampaigns" => my_campaigns(&ctx),
            other => Err(ToolError::Internal(format!("unknown tool `{other}`"))),
        }
    }
}

fn create_campaign(ctx: &CallContext, args: &Value) -> Result<String, ToolError> {
    let name = args["name"].as_str().unwrap_or_default();
    let start_date = args["startDate"].as_str().unwrap_or_default();
    if !is_iso_date(start_date) {
        return Err(ToolError::InvalidInput(format!("startDate `{start_date}` is not a YYYY-MM-DD date")));
    }
    log(Level::Info, &format!("creating campaign `{name}` for tenant `{}`", ctx.tenant));
    let body = json!({ "name": name, "budget": args["budget"], "startDate": start_date }).to_string();
    let created = call(ctx, "POST", "/v1/campaigns", Some(body.as_bytes()))?;
    Ok(created.to_string())
}

fn list_campaigns(ctx: &CallContext, args: &Value) -> Result<String, ToolError> {
    let limit = args["limit"].as_u64().unwrap_or(50);
    log(Level::Debug, &format!("listing campaigns (limit {limit})"));
    let listed = call(ctx, "GET", &format!("/v1/campaigns?limit={limit}"), None)?;
    let campaigns = listed.get("campaigns").cloned().unwrap_or_else(|| json!([]));
    Ok(json!({ "campaigns": campaigns, "limit": limit }).to_string())
}

/// The caller's own campaigns: the host injects a token exchanged from the
/// caller's (the `ads-user` provider), so the API sees the caller.
fn my_campaigns(ctx: &CallContext) -> Result<String, ToolError> {
    let mine = call(ctx, "GET", "/v1/me/campaigns", None)?;
    Ok(json!({ "user": mine["user"], "campaigns": mine.get("campaigns").cloned().unwrap_or_else(|| json!([])) })
        .to_string())
}

/// One Ads API call; the JSON answer, or the tool error it amounts to.
fn call(ctx: &CallContext, method: &str, path: &str, body: Option<&[u8]>) -> Result<Value, ToolError> {
    let base = config::get("api_url")
        .ok_or_else(|| ToolError::Internal("the manifest sets no `config.api_url`".into()))?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("x-tenant", ctx.tenant.as_str()),
        ("x-correlation-id", ctx.correlation_id.as_str()),
    ];
    let response = fetch(&Request { method, url: &url, headers: &headers, body }).map_err(|e| match e {
        FetchError::Denied { .. } | FetchError::BadUrl(_) | FetchError::Header(_) => {
            ToolError::Internal(format!("Ads API: {e}"))
        }
        FetchError::Transport(_) => ToolError::Upstream(format!("Ads API unreachable: {e}")),
    })?;
    let status = response.status;
    match status {
        200..=299 => serde_json::from_slice(&response.body).map_err(|_| {
            ToolError::Upstream(format!("Ads API answered {status} with a body that is not JSON"))
        }),
        400 | 422 => Err(ToolError::InvalidInput(format!(
            "Ads API rejected the request ({status}): {}",
            snippet(&response.body)
        ))),
        401 | 403 => Err(ToolError::Upstream(format!("Ads API refused the brokered credential ({status})"))),
        _ => Err(ToolError::Upstream(format!("Ads API answered {status}"))),
    }
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
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

export!(Ads);
