//! The host's background tasks, each stopping once the host is dropped or
//! shuts down: idle rate-limit keys are swept, Redis is PINGed for
//! `/health`, a remote JWKS is refreshed on schedule, and authentication
//! failures over their budget and fair-share refusals are audited in
//! aggregate, and approval calls past their expiry are ended.

use super::AppState;
use std::sync::Arc;
use std::time::Duration;

/// How often suppressed authentication failures and fair-share refusals are
/// audited in aggregate.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How often idle rate-limit keys are evicted.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Start every background task of `state`.
pub(super) fn spawn_all(state: &AppState) {
    every(state, SWEEP_EVERY, |state| async move { state.rate_limits().sweep() });
    every(state, REPORT_EVERY, |state| async move { state.report_auth_failures().await });
    every(state, REPORT_EVERY, |state| async move { state.report_share_refusals().await });
    every(state, state.config().approvals.sweep_interval, |state| async move {
        if let Err(e) = state.approvals().sweep().await {
            tracing::warn!(error = %e, "approvals sweep failed");
        }
    });
    if state.redis().is_some() {
        let period = state.config().redis.health_check_interval;
        every(state, period, |state| async move { ping_redis(&state).await });
    }
    if state.config().auth.jwks_file.is_none() && state.config().auth.jwks_url.is_some() {
        let state = state.clone();
        tokio::spawn(async move {
            let stop = state.shutdown_signal();
            state.auth().refresh_keys_until(stop).await;
        });
    }
}

/// Run `task` every `period` (first after one period) while the host lives.
fn every<F, Fut>(state: &AppState, period: Duration, task: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(&state.inner);
    let mut stopping = state.shutdown_signal();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopping.changed() => return,
            }
            let Some(inner) = weak.upgrade() else { return };
            task(AppState { inner }).await;
        }
    });
}

/// PING Redis and record how it went.
async fn ping_redis(state: &AppState) {
    if let Some(redis) = state.redis() {
        redis.ping().await;
    }
}
