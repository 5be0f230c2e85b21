//! The development Ads API: campaigns per tenant (header `x-tenant`), in
//! memory and bounded.

use super::DevUpstream;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Campaigns kept at most, across tenants.
const MAX_CAMPAIGNS: usize = 10_000;

/// Campaigns by tenant.
#[derive(Default)]
pub struct Campaigns {
    by_tenant: Mutex<HashMap<String, Vec<Value>>>,
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewCampaign {
    name: String,
    budget: f64,
    start_date: String,
}

fn tenant(headers: &HeaderMap) -> String {
    headers.get("x-tenant").and_then(|v| v.to_str().ok()).unwrap_or("public").to_owned()
}

pub(super) async fn list(
    State(upstream): State<Arc<DevUpstream>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(refused) = upstream.authorize(&headers, "campaigns.read") {
        return refused.into_response();
    }
    let limit = query.limit.unwrap_or(50).min(500);
    let by_tenant = upstream.campaigns.by_tenant.lock().expect("lock");
    let campaigns: Vec<&Value> =
        by_tenant.get(&tenant(&headers)).map(|c| c.iter().rev().take(limit).collect()).unwrap_or_default();
    axum::Json(json!({ "campaigns": campaigns })).into_response()
}

pub(super) async fn create(
    State(upstream): State<Arc<DevUpstream>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let acting = match upstream.authorize(&headers, "campaigns.write") {
        Ok(acting) => acting,
        Err(refused) => return refused.into_response(),
    };
    let new: NewCampaign = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_campaign", "detail": e.to_string() })),
            )
                .into_response();
        }
    };
    if new.name.is_empty() || !new.budget.is_finite() || new.budget <= 0.0 {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_campaign" }))).into_response();
    }
    let tenant = tenant(&headers);
    let mut by_tenant = upstream.campaigns.by_tenant.lock().expect("lock");
    if by_tenant.values().map(Vec::len).sum::<usize>() >= MAX_CAMPAIGNS {
        return (StatusCode::INSUFFICIENT_STORAGE, axum::Json(json!({ "error": "campaign store full" })))
            .into_response();
    }
    let campaign = json!({
        "id": format!("cmp_{}", uuid::Uuid::now_v7().simple()),
        "name": new.name,
        "budget": new.budget,
        "startDate": new.start_date,
        "status": "scheduled",
        "tenant": tenant,
        "createdBy": acting.0.as_ref().map(|u| u.sub.clone()),
    });
    by_tenant.entry(tenant).or_default().push(campaign.clone());
    (StatusCode::CREATED, axum::Json(campaign)).into_response()
}

/// `GET /v1/me/campaigns`: the campaigns the token's user created, and who
/// the request acted for — a user's (exchanged) token only.
pub(super) async fn mine(State(upstream): State<Arc<DevUpstream>>, headers: HeaderMap) -> Response {
    let user = match upstream.authorize(&headers, "campaigns.read") {
        Ok(super::Acting(Some(user))) => user,
        Ok(super::Acting(None)) => {
            return (StatusCode::FORBIDDEN, axum::Json(json!({ "error": "user_token_required" })))
                .into_response();
        }
        Err(refused) => return refused.into_response(),
    };
    let by_tenant = upstream.campaigns.by_tenant.lock().expect("lock");
    let campaigns: Vec<&Value> = by_tenant
        .get(&tenant(&headers))
        .map(|c| c.iter().filter(|c| c["createdBy"] == user.sub.as_str()).collect())
        .unwrap_or_default();
    axum::Json(json!({ "user": user.sub, "tenant": user.tenant, "actor": user.act, "campaigns": campaigns }))
        .into_response()
}
