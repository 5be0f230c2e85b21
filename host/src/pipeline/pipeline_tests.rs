//! The pipeline in process, on an `AppState` built in memory (no socket, no
//! plugin build): the order of the steps before a tool is looked up, and
//! that each refusal is recorded. Feedback in seconds for pipeline changes;
//! the end-to-end tests cover the steps that need a running plugin.

use super::*;
use crate::{AppState, HostConfig};
use std::sync::atomic::{AtomicBool, Ordering};

async fn host() -> (AppState, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("manifests")).unwrap();
    std::fs::create_dir_all(root.path().join("policies")).unwrap();
    std::fs::write(
        root.path().join("policies/policies.yml"),
        "version: 1\nroles:\n  user: { tools: [\"util:*\"] }\n",
    )
    .unwrap();
    let mut config = HostConfig::for_root(root.path());
    config.reload.watch = false;
    (AppState::start(config).await.unwrap(), root)
}

fn caller(roles: &[&str], scopes: &[&str]) -> Result<Arc<Principal>, ApiError> {
    Ok(Arc::new(Principal {
        sub: "agent-1".into(),
        tenant: "public".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }))
}

/// A call of `tool` whose arguments say whether they were asked for.
fn request(tool: &str, caller: Result<Arc<Principal>, ApiError>, asked: &Arc<AtomicBool>) -> CallRequest {
    let asked = asked.clone();
    CallRequest {
        correlation_id: CorrelationId::generate(),
        transport: Transport::Rest,
        endpoint: Endpoint::Invoke,
        caller,
        peer: None,
        tool: tool.into(),
        args: Box::pin(async move {
            asked.store(true, Ordering::SeqCst);
            Ok(CallArgs::default())
        }),
        cancel: None,
        trace: Default::default(),
        approved: None,
        headers: Default::default(),
    }
}

#[tokio::test]
async fn refusals_come_in_order_and_arguments_are_read_only_after_authorization() {
    let (state, _root) = host().await;
    let invoke = crate::auth::INVOKE_SCOPE;
    // (tool id, caller, status, code, whether the arguments are read)
    type Case = (&'static str, Result<Arc<Principal>, ApiError>, u16, &'static str, bool);
    let cases: Vec<Case> = vec![
        ("util:echo", Err(ApiError::Unauthenticated("no token".into())), 401, "unauthenticated", false),
        ("no such tool!", caller(&["user"], &[invoke]), 404, "tool_not_found", false),
        ("util:echo", caller(&["user"], &[]), 403, "insufficient_scope", false),
        ("ads:listCampaigns", caller(&["user"], &[invoke]), 403, "policy_denied", false),
        // A role grants the id, so the arguments are read; no plugin has it.
        ("util:echo", caller(&["user"], &[invoke]), 404, "tool_not_found", true),
    ];
    for (tool, caller, status, code, reads_args) in cases {
        let asked = Arc::new(AtomicBool::new(false));
        let before = state.audit().status().seq;
        let outcome = call(&state, request(tool, caller, &asked)).await;
        let error = outcome.result.expect_err(tool);
        assert_eq!((error.status().as_u16(), error.code()), (status, code), "{tool}");
        assert_eq!(asked.load(Ordering::SeqCst), reads_args, "{tool}: arguments asked for");
        assert_eq!(state.audit().status().seq, before + 1, "{tool}: the refusal is recorded");
        assert!(outcome.rate_limit.is_none(), "{tool}: refused before the rate limit");
    }
}

#[tokio::test]
async fn a_failure_to_read_arguments_is_the_callers_answer() {
    let (state, _root) = host().await;
    let mut request = request("util:echo", caller(&["user"], &[crate::auth::INVOKE_SCOPE]), &Arc::default());
    request.args = Box::pin(async { Err(ApiError::PayloadTooLarge { limit: 1 }) });
    let error = call(&state, request).await.result.unwrap_err();
    assert_eq!(error.code(), "payload_too_large");
}
