//! Pending calls in the state store (embedded or Redis, so every replica
//! sees the same ones): the stored record, the approvers' votes, the
//! settle-once claim, and the two indexes (all open calls; each
//! requester's, bounded).
//!
//! Writers never race on the record: it is written when the call is
//! requested, and afterwards only by whoever won the settle claim
//! (`insert_if_absent`, atomic in both stores). Votes are separate keys,
//! each written once per approver.

use crate::error::{ApiError, ProblemBody};
use crate::policy::approvals::Requirement;
use crate::principal::Principal;
use crate::store::{KeyValueStore, keys};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Most decisions one call keeps (quorums are at most
/// [`crate::policy::approvals::MAX_QUORUM`]; one denial settles a call).
const MAX_VOTES: u64 = 64;
/// How long the store keeps an entry past the call's own expiry and
/// retention (the host's clock decides expiry; the store's TTL only
/// reclaims space).
const STORE_SLACK: Duration = Duration::from_secs(86_400);

/// A principal as records name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Who {
    /// Subject.
    pub sub: String,
    /// Tenant.
    pub tenant: String,
}

impl Who {
    /// The subject and tenant of `principal`.
    pub fn of(principal: &Principal) -> Self {
        Self { sub: principal.sub.clone(), tenant: principal.tenant.clone() }
    }

    /// Whether `principal` is this one.
    pub fn is(&self, principal: &Principal) -> bool {
        self.sub == principal.sub && self.tenant == principal.tenant
    }
}

/// Where a call stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CallState {
    /// Waiting for its approvers.
    AwaitingApproval,
    /// Approved; running (since, Unix ms).
    Running {
        /// When it started.
        since_ms: i64,
    },
    /// Ran to completion.
    Completed {
        /// The tool's result, unless it was over the size cap.
        result: Option<Value>,
        /// The result was over `approvals.max_result_bytes` and not kept.
        result_omitted: bool,
        /// When.
        at_ms: i64,
    },
    /// An approver denied it.
    Denied {
        /// Who.
        by: Who,
        /// Their comment.
        reason: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// Nobody decided in time.
    Expired {
        /// When it was ended.
        at_ms: i64,
    },
    /// The requester withdrew it.
    Withdrawn {
        /// When.
        at_ms: i64,
    },
    /// Approved, but it did not complete: refused when re-checked, or the
    /// tool failed (the problem it answered with).
    Failed {
        /// The problem.
        problem: Box<ProblemBody>,
        /// When.
        at_ms: i64,
    },
}

impl CallState {
    /// `awaiting_approval`, `running`, `completed`, `denied`, `expired`,
    /// `withdrawn` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            CallState::AwaitingApproval => "awaiting_approval",
            CallState::Running { .. } => "running",
            CallState::Completed { .. } => "completed",
            CallState::Denied { .. } => "denied",
            CallState::Expired { .. } => "expired",
            CallState::Withdrawn { .. } => "withdrawn",
            CallState::Failed { .. } => "failed",
        }
    }

    /// Nothing more will happen to the call.
    pub fn is_final(&self) -> bool {
        !matches!(self, CallState::AwaitingApproval | CallState::Running { .. })
    }
}

/// A call that needed approval, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingCall {
    /// Its id (a UUIDv7 the host chose).
    pub id: String,
    /// The tool.
    pub tool: String,
    /// The validated arguments.
    pub args: Value,
    /// SHA-256 of their canonical form.
    pub args_sha256: String,
    /// Who asked, as authenticated then (sub, tenant, roles, scopes): the
    /// call runs as this principal.
    pub requester: Principal,
    /// `rest` or `mcp`.
    pub transport: String,
    /// The approval rule's terms when it was asked.
    pub requirement: Requirement,
    /// The correlation id of the invoke.
    pub correlation_id: String,
    /// When it was asked (Unix ms, host clock).
    pub requested_at_ms: i64,
    /// When it expires unless decided (Unix ms, host clock).
    pub expires_at_ms: i64,
    /// Where it stands.
    pub state: CallState,
}

/// One approver's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vote {
    /// Who decided.
    pub approver: Who,
    /// Approved (or denied).
    pub approve: bool,
    /// Their comment.
    pub comment: Option<String>,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// What settled a call (the value of its settle claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The quorum was reached: it runs.
    Run,
    /// An approver denied it.
    Deny,
    /// Its time ran out.
    Expire,
    /// Its requester withdrew it.
    Withdraw,
}

impl Settlement {
    fn name(self) -> &'static str {
        match self {
            Settlement::Run => "run",
            Settlement::Deny => "deny",
            Settlement::Expire => "expire",
            Settlement::Withdraw => "withdraw",
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "approvals: state store unavailable");
    ApiError::StateUnavailable
}

/// The pending calls in one store.
pub struct Ledger<'a> {
    store: &'a dyn KeyValueStore,
}

impl<'a> Ledger<'a> {
    /// The ledger kept in `store`.
    pub fn new(store: &'a dyn KeyValueStore) -> Self {
        Self { store }
    }

    /// Store a new call, within the requester's and the host's bounds.
    pub async fn open(
        &self,
        call: &PendingCall,
        per_caller: u64,
        total: u64,
        keep: Duration,
    ) -> Result<(), ApiError> {
        let (requester, keep) = (&call.requester, keep + STORE_SLACK);
        let own = keys::approvals_of(&requester.tenant, &requester.sub);
        if !self.store.admit(&own, &call.id, keep, per_caller).await.map_err(unavailable)? {
            return Err(ApiError::ApprovalQuotaExceeded { limit: per_caller, whose: "this caller" });
        }
        if !self.store.admit(keys::APPROVALS_OPEN, &call.id, keep, total).await.map_err(unavailable)? {
            let _ = self.store.forget(&own, &call.id).await;
            return Err(ApiError::ApprovalQuotaExceeded { limit: total, whose: "the host" });
        }
        let saved = self.save(call, keep).await;
        if saved.is_err() {
            self.close(call).await;
        }
        saved
    }

    /// Write the record (only its creator and the settle claim's winner do).
    pub async fn save(&self, call: &PendingCall, keep: Duration) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(call).map_err(unavailable)?;
        self.store.put(&keys::approval(&call.id), &bytes, keep + STORE_SLACK).await.map_err(unavailable)
    }

    /// The call, if it exists (and is still kept).
    pub async fn load(&self, id: &str) -> Result<Option<PendingCall>, ApiError> {
        // Ids are the host's UUIDs; anything else is unknown without a lookup.
        if uuid::Uuid::parse_str(id).is_err() {
            return Ok(None);
        }
        match self.store.get(&keys::approval(id)).await.map_err(unavailable)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(unavailable),
        }
    }

    /// Every unfinished call's id (the host's bound keeps this short).
    pub async fn open_ids(&self) -> Result<Vec<String>, ApiError> {
        self.store.members(keys::APPROVALS_OPEN).await.map_err(unavailable)
    }

    /// Record `vote`; `false` if this approver already decided the call.
    pub async fn vote(&self, call: &PendingCall, vote: &Vote, keep: Duration) -> Result<bool, ApiError> {
        let approver = keys::principal_digest(&vote.approver.tenant, &vote.approver.sub);
        let bytes = serde_json::to_vec(vote).map_err(unavailable)?;
        let keep = keep + STORE_SLACK;
        let key = keys::approval_vote(&call.id, &approver);
        if !self.store.insert_if_absent(&key, &bytes, keep).await.map_err(unavailable)? {
            return Ok(false);
        }
        let voters = keys::approval_voters(&call.id);
        if !self.store.admit(&voters, &approver, keep, MAX_VOTES).await.map_err(unavailable)? {
            let _ = self.store.delete(&key).await;
            return Err(ApiError::ApprovalClosed("at its limit of decisions".into()));
        }
        Ok(true)
    }

    /// Take back a vote whose audit record could not be written.
    pub async fn retract(&self, call: &PendingCall, approver: &Who) {
        let digest = keys::principal_digest(&approver.tenant, &approver.sub);
        let _ = self.store.forget(&keys::approval_voters(&call.id), &digest).await;
        let _ = self.store.delete(&keys::approval_vote(&call.id, &digest)).await;
    }

    /// Every decision on the call, oldest first.
    pub async fn votes(&self, call_id: &str) -> Result<Vec<Vote>, ApiError> {
        let voters = self.store.members(&keys::approval_voters(call_id)).await.map_err(unavailable)?;
        let mut votes = Vec::with_capacity(voters.len());
        for voter in voters {
            if let Some(bytes) =
                self.store.get(&keys::approval_vote(call_id, &voter)).await.map_err(unavailable)?
                && let Ok(vote) = serde_json::from_slice::<Vote>(&bytes)
            {
                votes.push(vote);
            }
        }
        votes.sort_by_key(|v| v.at_ms);
        Ok(votes)
    }

    /// Claim the right to settle the call (at `now_ms`); exactly one claim
    /// ever wins.
    pub async fn settle(
        &self,
        call: &PendingCall,
        how: Settlement,
        now_ms: i64,
        keep: Duration,
    ) -> Result<bool, ApiError> {
        let key = keys::approval_settled(&call.id);
        let claim = format!("{}:{now_ms}", how.name());
        self.store.insert_if_absent(&key, claim.as_bytes(), keep + STORE_SLACK).await.map_err(unavailable)
    }

    /// The settle claim on the call, if one was won: how, and when.
    pub async fn claim_of(&self, call_id: &str) -> Result<Option<(Settlement, i64)>, ApiError> {
        let Some(bytes) = self.store.get(&keys::approval_settled(call_id)).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let (how, at) = text.split_once(':').unwrap_or((&text, "0"));
        let how = match how {
            "run" => Settlement::Run,
            "deny" => Settlement::Deny,
            "expire" => Settlement::Expire,
            _ => Settlement::Withdraw,
        };
        Ok(Some((how, at.parse().unwrap_or(0))))
    }

    /// Claim the right to write a run's end (the run itself, or the sweep
    /// that finds it interrupted); exactly one claim ever wins.
    pub async fn end(&self, call: &PendingCall, keep: Duration) -> Result<bool, ApiError> {
        let key = keys::approval_ended(&call.id);
        self.store.insert_if_absent(&key, b"1", keep + STORE_SLACK).await.map_err(unavailable)
    }

    /// Take a finished (or running) call out of the open indexes.
    pub async fn close(&self, call: &PendingCall) {
        let own = keys::approvals_of(&call.requester.tenant, &call.requester.sub);
        for set in [own.as_str(), keys::APPROVALS_OPEN] {
            if let Err(e) = self.store.forget(set, &call.id).await {
                tracing::warn!(call_id = %call.id, error = %e, "approvals: could not update an index");
            }
        }
    }

    /// Drop an id whose record is gone from the open index.
    pub async fn forget_open(&self, id: &str) {
        let _ = self.store.forget(keys::APPROVALS_OPEN, id).await;
    }
}
