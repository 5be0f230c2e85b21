//! `connection_required` over MCP: a tool acts with the caller's own
//! account at a provider they have not connected. A 2025-11-25 client that
//! declared URL-mode elicitation is sent `elicitation/create` with
//! `mode: "url"` and the authorization URL of the flow the pipeline started
//! for the caller; when the user accepts, the call waits (up to
//! `connections.elicitation_wait`) for the connection to appear — the
//! user consents in their browser, the provider redirects to the host's
//! callback — and then runs once more. Every other client (2026-07-28,
//! no URL mode, a decline, no connection in time) gets the `isError`
//! result whose `_meta["io.fastmcp/problem"]` carries the code, the
//! provider and the authorization URL.

use super::runner::Runner;
use crate::error::ApiError;
use crate::pipeline::{CallOutcome, Endpoint};
use crate::principal::Principal;
use rmcp::model::{ElicitationAction, ProtocolVersion};
use rmcp::service::{ElicitationMode, RequestContext, RoleServer};
use std::time::Duration;

/// How often a waiting call looks for the user's new connection.
const POLL: Duration = Duration::from_millis(250);

/// The call's outcome — or, when it needs a connection the client can
/// help make, the outcome of running it again once connected.
pub(super) async fn connecting(
    run: &Runner<'_>,
    outcome: CallOutcome,
    context: &RequestContext<RoleServer>,
) -> CallOutcome {
    let Err(ApiError::ConnectionRequired { provider, authorization_url: Some(url) }) = &outcome.result else {
        return outcome;
    };
    let wait = run.state.config().connections.elicitation_wait;
    let stateless =
        context.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if wait.is_zero()
        || stateless
        || !context.peer.supported_elicitation_modes().contains(&ElicitationMode::Url)
    {
        return outcome;
    }
    let Ok(url) = reqwest::Url::parse(url) else {
        return outcome;
    };
    let message = format!(
        "`{}` acts with your own account at `{provider}`. Open this page to sign in there and allow it; the call continues once you are connected.",
        run.tool
    );
    // One bound for the whole wait: the user's answer, then the connection.
    let deadline = tokio::time::Instant::now() + wait;
    let id = uuid::Uuid::now_v7().to_string();
    match context.peer.elicit_url_with_timeout(message, url, id, Some(wait)).await {
        Ok(ElicitationAction::Accept) => {}
        Ok(action) => {
            tracing::info!(?action, provider, "the user did not open the connect page");
            return outcome;
        }
        Err(e) => {
            tracing::info!(error = %e, provider, "URL elicitation got no answer");
            return outcome;
        }
    }
    if connected_before(run, &run.caller.principal, provider, deadline).await {
        run.call(Endpoint::Invoke, None).await
    } else {
        outcome
    }
}

/// Whether `user`'s connection to `provider` appears before `deadline` (or
/// the client gives up first).
async fn connected_before(
    run: &Runner<'_>,
    user: &Principal,
    provider: &str,
    deadline: tokio::time::Instant,
) -> bool {
    let connections = run.state.connections(run.state.broker());
    while tokio::time::Instant::now() < deadline && !run.cancel.is_cancelled() {
        if connections.connected(user, provider).await {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = run.cancel.cancelled() => return false,
        }
    }
    false
}
