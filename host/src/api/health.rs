//! `GET /health` and `GET /metrics`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// Liveness and what is loaded.
#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` while serving.
    pub status: &'static str,
    /// Host version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_s: u64,
    /// The registry snapshot being served.
    pub registry: RegistryHealth,
    /// The sandbox.
    pub runtime: RuntimeHealth,
}

/// Registry part of `/health`.
#[derive(Serialize, ToSchema)]
pub struct RegistryHealth {
    /// Snapshot version.
    pub version: u64,
    /// When it was loaded (Unix seconds).
    pub loaded_at: u64,
    /// Plugins loaded.
    pub plugins: usize,
    /// Tools served.
    pub tools: usize,
}

/// Sandbox part of `/health`.
#[derive(Serialize, ToSchema)]
pub struct RuntimeHealth {
    /// Whether the pooling allocator is in use.
    pub pooling: bool,
    /// Calls that may run at once.
    pub max_concurrent_calls: u32,
    /// Calls running now.
    pub calls_in_flight: usize,
    /// Components loaded precompiled from `.runtime/cache`.
    pub compile_cache_hits: u64,
    /// Components compiled.
    pub compile_cache_misses: u64,
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Liveness.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses((status = 200, description = "Serving", body = HealthResponse))
)]
pub async fn health(State(state): State<AppState>) -> Json<HealthResponse> {
    let registry = state.registry();
    let runtime = state.runtime();
    Json(HealthResponse {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state
            .started_at()
            .elapsed()
            .map(|d| d.as_secs())
            .unwrap_or(0),
        registry: RegistryHealth {
            version: registry.version,
            loaded_at: unix_seconds(registry.loaded_at),
            plugins: registry.plugins().count(),
            tools: registry.tools().count(),
        },
        runtime: RuntimeHealth {
            pooling: runtime.pooling(),
            max_concurrent_calls: runtime.config().max_concurrent_calls,
            calls_in_flight: runtime.calls_in_flight(),
            compile_cache_hits: runtime.cache_stats().hits.get(),
            compile_cache_misses: runtime.cache_stats().misses.get(),
        },
    })
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics().render(state.runtime());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
