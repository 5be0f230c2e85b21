//! `GET /health` and `GET /metrics`.
//!
//! `/health` is liveness and readiness for anyone: `200 {"status": "ok" |
//! "degraded"}` whatever credentials are presented — none, invalid ones, or
//! a token without the scope (probes and generic clients send a bearer on
//! every request). The detail — versions, reload errors and files, the
//! audit head, Redis — is shown only to a token with [`HEALTH_SCOPE`].
//! `/metrics` is served on its own listener ([`crate::serve_metrics`],
//! loopback by default), never on the API's; `/health` is served there too,
//! so that probes are answered even when the API listener is saturated.

use crate::auth::{HEALTH_SCOPE, caller_of};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// `/health` without credentials: liveness and readiness only.
#[derive(Serialize, ToSchema)]
pub struct PublicHealth {
    /// `ok`, or `degraded` when the audit trail or Redis is failing.
    pub status: &'static str,
}

/// Liveness and what is loaded (with [`HEALTH_SCOPE`]).
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
    /// Token verification.
    pub auth: AuthHealth,
    /// The policy in force.
    pub policy: PolicyHealth,
    /// The audit trail.
    pub audit: AuditHealth,
    /// The last registry reload (file change or SIGHUP), if any.
    pub reload: Option<ReloadHealth>,
    /// The shared Redis, when configured.
    pub redis: Option<RedisHealth>,
}

/// Redis part of `/health`.
#[derive(Serialize, ToSchema)]
pub struct RedisHealth {
    /// Whether Redis answered the host's last check (every 2 s).
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// What happens to rate-limited calls while Redis is down.
    pub fail_open: bool,
}

/// Audit part of `/health`.
#[derive(Serialize, ToSchema)]
pub struct AuditHealth {
    /// Last durable record.
    pub seq: u64,
    /// Its hash (the chain head).
    pub head: String,
    /// Why the trail is not accepting records, if it is not (calls then
    /// fail with 503 until a retry succeeds).
    pub failed: Option<String>,
    /// Why the host does not sign checkpoints, if it does not (the trail's
    /// tail did not match the last checkpoint at startup).
    pub checkpoints_refused: Option<String>,
    /// Why the last checkpoint could not be written to the witness, if so.
    pub witness_error: Option<String>,
    /// Each export sink's progress (none configured: empty).
    pub export: Vec<ExportHealth>,
}

/// One audit export sink.
#[derive(Serialize, ToSchema)]
pub struct ExportHealth {
    /// `http` or `otlp`.
    pub sink: &'static str,
    /// The last record it accepted.
    pub delivered_seq: u64,
    /// Durable records it has not accepted yet.
    pub lag: u64,
    /// Why delivery is failing, while it is.
    pub error: Option<String>,
}

/// Authentication part of `/health`.
#[derive(Serialize, ToSchema)]
pub struct AuthHealth {
    /// Whether the generated development keys are in use.
    pub dev_keys: bool,
    /// Tokens in the verified-token cache.
    pub cached_tokens: usize,
}

/// Policy part of `/health`.
#[derive(Serialize, ToSchema)]
pub struct PolicyHealth {
    /// Version of the policy in force (increases on every successful reload).
    pub version: u64,
    /// Roles defined.
    pub roles: usize,
    /// Rules defined.
    pub rules: usize,
    /// The last reload attempt, if any.
    pub last_reload: Option<ReloadHealth>,
}

/// A reload attempt.
#[derive(Serialize, ToSchema)]
pub struct ReloadHealth {
    /// Whether it succeeded.
    pub ok: bool,
    /// When (Unix seconds).
    pub at: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// The changed files that triggered it.
    pub files: Vec<String>,
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
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Liveness; in detail with a token holding `host.health:read`.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Serving: `{status}` for anyone, the detail with the scope", body = HealthResponse),
    )
)]
pub async fn health(State(state): State<AppState>, request: Request) -> Response {
    let audit = state.audit().status();
    let redis_status = state.redis_status();
    let degraded = audit.failed.is_some()
        || audit.checkpoints_refused.is_some()
        || audit.witness_error.is_some()
        || redis_status.as_ref().is_some_and(|r| r.is_err());
    let status = if degraded { "degraded" } else { "ok" };
    let shows_detail = request.headers().contains_key(header::AUTHORIZATION)
        && caller_of(state.auth(), request.extensions(), request.headers())
            .await
            .is_ok_and(|principal| principal.has_scope(HEALTH_SCOPE));
    if !shows_detail {
        return Json(PublicHealth { status }).into_response();
    }
    let registry = state.registry();
    let runtime = state.runtime();
    let policy = state.policy();
    let redis = redis_status.map(|result| RedisHealth {
        ok: result.is_ok(),
        error: result.err(),
        fail_open: state.config().redis.fails_open(),
    });
    Json(HealthResponse {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started_at().elapsed().map(|d| d.as_secs()).unwrap_or(0),
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
        auth: AuthHealth { dev_keys: state.auth().dev_keys, cached_tokens: state.auth().cached_tokens() },
        policy: PolicyHealth {
            version: policy.version,
            roles: policy.policy.role_count(),
            rules: policy.policy.rule_count(),
            last_reload: state.last_policy_reload().map(|r| ReloadHealth {
                ok: r.ok,
                at: unix_seconds(r.at),
                error: r.error,
                files: r.files,
            }),
        },
        audit: AuditHealth {
            seq: audit.seq,
            head: audit.head,
            failed: audit.failed,
            checkpoints_refused: audit.checkpoints_refused,
            witness_error: audit.witness_error,
            export: state
                .audit_export()
                .0
                .iter()
                .map(|sink| ExportHealth {
                    sink: sink.name,
                    delivered_seq: sink.delivered(),
                    lag: audit.seq.saturating_sub(sink.delivered()),
                    error: sink.error(),
                })
                .collect(),
        },
        reload: state.last_reload().map(|r| ReloadHealth {
            ok: r.ok,
            at: unix_seconds(r.at),
            error: r.error,
            files: r.files,
        }),
        redis,
    })
    .into_response()
}

/// Prometheus metrics — served on the metrics listener (`--metrics-listen`,
/// `127.0.0.1:9464` by default), not on the API's.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format (on the metrics listener only)", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics().render(state.runtime());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
