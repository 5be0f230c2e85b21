//! The approvals' state machine against a real embedded store and trail:
//! a denial on record is never outrun by the last approval, a won claim
//! whose host stopped before writing is ended by the sweep, an unrecorded
//! request is taken back, and a run's end is written once.

use super::ledger::{CallState, PendingCall};
use super::*;
use crate::config::ApprovalsConfig;
use crate::policy::approvals::{Approvers, Requirement};
use crate::store::embedded::EmbeddedStore;
use std::sync::Arc;

struct Host {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    audit: AuditLog,
    clock: Clock,
    config: ApprovalsConfig,
}

impl Host {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("state.redb")).unwrap();
        let clock = Clock::default();
        let audit_config =
            crate::audit::AuditConfig::new(dir.path().join("audit"), dir.path().join("keys"), clock.clone());
        let audit = AuditLog::start(audit_config).await.unwrap();
        Self { _dir: dir, store, audit, clock, config: ApprovalsConfig::default() }
    }

    fn approvals(&self) -> Approvals<'_> {
        let timeouts = (Duration::from_secs(1), Duration::from_millis(250));
        Approvals::new(self.store.as_ref(), &self.audit, &self.clock, &self.config, None, timeouts)
    }

    async fn request(&self, quorum: u32) -> PendingCall {
        let now = self.clock.now_unix_ms();
        let call = PendingCall {
            id: uuid::Uuid::now_v7().to_string(),
            tool: "util:echo".into(),
            args: serde_json::json!({"m": 1}),
            args_sha256: "0".repeat(64),
            requester: requester(),
            transport: "rest".into(),
            requirement: Requirement {
                rule: "r".into(),
                approvers: Approvers { roles: vec!["approver".into()], ..Default::default() },
                quorum,
                ttl_s: 3600,
                hint: None,
                any_tenant: false,
            },
            correlation_id: "c".into(),
            requested_at_ms: now,
            expires_at_ms: now + 3_600_000,
            state: CallState::AwaitingApproval,
        };
        self.approvals().open(&call).await.unwrap();
        call
    }
}

fn approver(sub: &str) -> Principal {
    Principal { sub: sub.into(), tenant: "t".into(), roles: vec!["approver".into()], scopes: vec![] }
}

fn requester() -> Principal {
    Principal { sub: "ann".into(), tenant: "t".into(), roles: vec![], scopes: vec![] }
}

#[tokio::test]
async fn a_denial_on_record_is_never_outrun_by_the_last_approval() {
    let host = Host::new().await;
    let call = host.request(1).await;
    // The denial's vote is written but its settle has not happened yet (as
    // when it is still being audited): the approval must not run the call.
    let denial =
        super::ledger::Vote { approver: Who::of(&approver("dan")), approve: false, comment: None, at_ms: 0 };
    assert!(host.approvals().ledger.vote(&call, &denial, Duration::from_secs(60)).await.unwrap());
    let decided = host.approvals().decide(&approver("amy"), &call.id, true, None).await.unwrap();
    assert!(decided.run.is_none(), "a denial on record wins");
}

#[tokio::test]
async fn a_won_claim_left_unwritten_is_ended_by_the_sweep() {
    let host = Host::new().await;
    let call = host.request(1).await;
    // A host won the run claim, then stopped before writing `running`.
    let ledger = &host.approvals().ledger;
    assert!(
        ledger
            .settle(&call, Settlement::Run, host.clock.now_unix_ms(), Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(host.approvals().sweep().await.unwrap(), 0, "within the grace, it may still be written");
    host.clock.advance(RUN_GRACE + Duration::from_secs(1));
    assert_eq!(host.approvals().sweep().await.unwrap(), 1);
    let status = host.approvals().status(&requester(), &call.id, Duration::ZERO).await.unwrap();
    assert_eq!(status.status, "failed");
    assert!(status.error.unwrap().detail.contains("whether it took effect is unknown"));
    assert!(host.approvals().inbox(&approver("amy")).await.unwrap().approvals.is_empty());
    // A run that comes back late does not overwrite the recorded end.
    let late = host.approvals().completed(serde_json::json!({"m": 1}));
    host.approvals().ran(call.clone(), late).await;
    let status = host.approvals().status(&requester(), &call.id, Duration::ZERO).await.unwrap();
    assert_eq!(status.status, "failed", "the first end stands");
}

#[tokio::test]
async fn an_unrecorded_request_is_taken_back() {
    let host = Host::new().await;
    let call = host.request(1).await;
    host.approvals().abandon(&call.id).await;
    assert!(host.approvals().inbox(&approver("amy")).await.unwrap().approvals.is_empty());
    let refused = host.approvals().decide(&approver("amy"), &call.id, true, None).await.err().unwrap();
    assert_eq!(refused.code(), "approval_closed");
}
