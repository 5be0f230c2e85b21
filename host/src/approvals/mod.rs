//! Approvals: calls that run only once others agree (four eyes).
//!
//! The policy's `approvals:` rules ([`crate::policy::approvals`]) decide
//! which calls wait. A waiting call is stored with its requester, validated
//! arguments and the rule's terms ([`ledger`]); approvers list and decide
//! what they may decide; when the quorum is reached the pipeline runs the
//! call once, as the requester, re-checked under the rules in force
//! ([`crate::pipeline`]'s `approved` step). A denial, an expiry or the
//! requester's withdrawal settles it without running anything. Every
//! request and decision is audited in the hash chain and, when configured,
//! announced to a signed webhook ([`webhook`]).
//!
//! This module never runs a call: [`Approvals::decide`] says when one is
//! due ([`Decided::run`]), and its caller runs it.

pub mod ledger;
pub mod views;
pub mod webhook;

use crate::audit::AuditLog;
use crate::audit::record::{AuditEvent, AuditPrincipal};
use crate::clock::Clock;
use crate::config::ApprovalsConfig;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::store::KeyValueStore;
use ledger::{CallState, Ledger, PendingCall, Settlement, Vote, Who};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use views::{ApprovalList, ApprovalView, CallStatusBody};
use webhook::Webhook;

/// Longest approver comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Most calls one `GET /approvals` lists.
pub const MAX_LISTED: usize = 200;
/// How often a long-poll re-reads the call (any replica may change it).
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long past its longest possible run a `running` call may stay so
/// before the sweep ends it as `failed` (its host stopped while it ran); and
/// how long a won settle claim may go unwritten.
const RUN_GRACE: Duration = Duration::from_secs(60);
/// Attempts of an approved run: one refused by a momentary condition before
/// the tool started (no sandbox slot, the requester's share in use, the
/// state store or the shared rate limiter unreachable) is retried, so an
/// approval is not lost to a busy second.
pub const RUN_ATTEMPTS: u32 = 5;

/// The approvals of one host: its store, trail, clock, settings and webhook.
pub struct Approvals<'a> {
    ledger: Ledger<'a>,
    audit: &'a AuditLog,
    clock: &'a Clock,
    config: &'a ApprovalsConfig,
    webhook: Option<&'a Webhook>,
    max_timeout: Duration,
    queue_timeout: Duration,
}

/// The outcome of a decision, and the call to run if it completed the quorum.
pub struct Decided {
    /// The call as the approver now sees it.
    pub view: ApprovalView,
    /// Run this call now: the quorum was reached and this decision won the
    /// right to run it.
    pub run: Option<PendingCall>,
}

impl<'a> Approvals<'a> {
    /// The approvals kept in `store`, recorded in `audit`.
    pub fn new(
        store: &'a dyn KeyValueStore,
        audit: &'a AuditLog,
        clock: &'a Clock,
        config: &'a ApprovalsConfig,
        webhook: Option<&'a Webhook>,
        (max_timeout, queue_timeout): (Duration, Duration),
    ) -> Self {
        Self { ledger: Ledger::new(store), audit, clock, config, webhook, max_timeout, queue_timeout }
    }

    fn now(&self) -> i64 {
        self.clock.now_unix_ms()
    }

    /// How long the store keeps a call: until it expires, then its retention.
    fn keep(&self, call: &PendingCall) -> Duration {
        let left = (call.expires_at_ms - self.now()).max(0) as u64;
        Duration::from_millis(left) + self.config.result_retention
    }

    /// Store a call that now waits for approvers (the pipeline's gate).
    pub async fn open(&self, call: &PendingCall) -> Result<(), ApiError> {
        let (per_caller, total) = (self.config.max_pending_per_caller, self.config.max_pending);
        self.ledger.open(call, per_caller, total, self.keep(call)).await?;
        self.announce("approval.requested", call, None);
        Ok(())
    }

    /// The call, for its requester: `?wait` long-polls until it is no
    /// longer waiting or running, or `wait` passes (bounded by
    /// `approvals.max_wait`). Anyone else: 404, as for a call that does not
    /// exist.
    pub async fn status(
        &self,
        requester: &Principal,
        id: &str,
        wait: Duration,
    ) -> Result<CallStatusBody, ApiError> {
        let deadline = tokio::time::Instant::now() + wait.min(self.config.max_wait);
        loop {
            let call = self.load_current(id).await?.filter(|c| Who::of(&c.requester).is(requester));
            let call = call.ok_or_else(|| ApiError::CallNotFound(id.to_owned()))?;
            if call.state.is_final() || tokio::time::Instant::now() >= deadline {
                let votes = self.ledger.votes(&call.id).await?;
                return Ok(CallStatusBody::of(&call, &votes));
            }
            tokio::time::sleep(POLL_EVERY.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    /// The requester withdraws a call still waiting: it never runs.
    pub async fn withdraw(&self, requester: &Principal, id: &str) -> Result<CallStatusBody, ApiError> {
        let call = self.load_current(id).await?.filter(|c| Who::of(&c.requester).is(requester));
        let mut call = call.ok_or_else(|| ApiError::CallNotFound(id.to_owned()))?;
        if !matches!(call.state, CallState::AwaitingApproval)
            || !self.ledger.settle(&call, Settlement::Withdraw, self.now(), self.keep(&call)).await?
        {
            let current = self.load_current(id).await?.map_or("settled", |c| c.state.name());
            return Err(ApiError::ApprovalClosed(current.into()));
        }
        call.state = CallState::Withdrawn { at_ms: self.now() };
        self.finish(&call, "approval.withdrawn", "withdrawn", Some(requester), None).await?;
        let votes = self.ledger.votes(&call.id).await?;
        Ok(CallStatusBody::of(&call, &votes))
    }

    /// The open calls `approver` may decide now (not yet decided by them),
    /// oldest first.
    pub async fn inbox(&self, approver: &Principal) -> Result<ApprovalList, ApiError> {
        let mut approvals = Vec::new();
        for id in self.ledger.open_ids().await? {
            let Some(call) = self.load_current(&id).await? else {
                self.ledger.forget_open(&id).await;
                continue;
            };
            if !matches!(call.state, CallState::AwaitingApproval) || !self.may_decide(&call, approver) {
                continue;
            }
            let votes = self.ledger.votes(&call.id).await?;
            if votes.iter().any(|v| v.approver.is(approver)) {
                continue;
            }
            approvals.push(ApprovalView::of(&call, &votes, true));
        }
        approvals.sort_by(|a, b| (&a.requested_at, &a.call_id).cmp(&(&b.requested_at, &b.call_id)));
        let truncated = approvals.len() > MAX_LISTED;
        approvals.truncate(MAX_LISTED);
        Ok(ApprovalList { approvals, truncated })
    }

    /// One call, for someone who may decide it or its requester; anyone
    /// else: 404.
    pub async fn view(&self, viewer: &Principal, id: &str) -> Result<ApprovalView, ApiError> {
        let call = self.load_current(id).await?;
        let call = call.filter(|c| Who::of(&c.requester).is(viewer) || self.may_decide(c, viewer));
        let call = call.ok_or_else(|| ApiError::ApprovalNotFound(id.to_owned()))?;
        let votes = self.ledger.votes(&call.id).await?;
        let can_decide = matches!(call.state, CallState::AwaitingApproval)
            && self.may_decide(&call, viewer)
            && !votes.iter().any(|v| v.approver.is(viewer));
        Ok(ApprovalView::of(&call, &votes, can_decide))
    }

    /// Approve or deny. A denial settles the call; the approval that
    /// completes the quorum returns the call to run.
    pub async fn decide(
        &self,
        approver: &Principal,
        id: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Decided, ApiError> {
        if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
            return Err(ApiError::BadRequest(format!("comment: at most {MAX_COMMENT_CHARS} characters")));
        }
        let call = self.load_current(id).await?;
        let call = call.filter(|c| Who::of(&c.requester).is(approver) || self.may_decide(c, approver));
        let mut call = call.ok_or_else(|| ApiError::ApprovalNotFound(id.to_owned()))?;
        if Who::of(&call.requester).is(approver) {
            return Err(ApiError::SelfApproval);
        }
        if !matches!(call.state, CallState::AwaitingApproval) {
            return Err(ApiError::ApprovalClosed(call.state.name().into()));
        }
        let vote = Vote { approver: Who::of(approver), approve, comment, at_ms: self.now() };
        if !self.ledger.vote(&call, &vote, self.keep(&call)).await? {
            return Err(ApiError::AlreadyDecided);
        }
        let votes = self.ledger.votes(&call.id).await?;
        let approvals = votes.iter().filter(|v| v.approve).count() as u32;
        let decision = if approve { "approved" } else { "denied" };
        let detail = json!({
            "call_id": call.id,
            "rule": call.requirement.rule,
            "requester": Who::of(&call.requester),
            "approvals": approvals,
            "quorum": call.requirement.quorum,
            "comment_sha256": vote.comment.as_ref().map(|c| hex::encode(Sha256::digest(c.as_bytes()))),
        });
        let event = Self::event(&format!("approval.{decision}"), decision, &call, Some(approver), detail);
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(call_id = %call.id, error = %e, "approval decision not recorded: taken back");
            self.ledger.retract(&call, &vote.approver).await;
            return Err(ApiError::AuditUnavailable);
        }
        self.announce(&format!("approval.{decision}"), &call, Some(&vote));
        let keep = self.keep(&call);
        let mut run = None;
        if !approve && self.ledger.settle(&call, Settlement::Deny, self.now(), keep).await? {
            call.state = CallState::Denied {
                by: vote.approver.clone(),
                reason: vote.comment.clone(),
                at_ms: vote.at_ms,
            };
            self.ledger.save(&call, self.config.result_retention).await?;
            self.ledger.close(&call).await;
        } else if approve
            && approvals >= call.requirement.quorum
            // One denial settles a call: a denial on record (its settle may
            // still be on its way) is never outrun by the last approval.
            && !votes.iter().any(|v| !v.approve)
            && self.ledger.settle(&call, Settlement::Run, self.now(), keep).await?
        {
            call.state = CallState::Running { since_ms: self.now() };
            self.ledger.save(&call, self.keep(&call)).await?;
            run = Some(call.clone());
        }
        let can_decide = false;
        Ok(Decided { view: ApprovalView::of(&call, &votes, can_decide), run })
    }

    /// Record how an approved call ended; it leaves the open indexes. Only
    /// the first end is written (the run's, or the sweep's that found it
    /// interrupted).
    pub async fn ran(&self, mut call: PendingCall, state: CallState) {
        match self.ledger.end(&call, self.config.result_retention).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(call_id = %call.id, "an approved run's end was already written (found interrupted)");
                return;
            }
            Err(e) => {
                tracing::error!(call_id = %call.id, error = ?e, "approved run's end claim failed; writing it")
            }
        }
        call.state = state;
        if let Err(e) = self.ledger.save(&call, self.config.result_retention).await {
            tracing::error!(call_id = %call.id, error = ?e, "approved call's outcome not stored");
        }
        self.ledger.close(&call).await;
        self.announce(&format!("approval.{}", call.state.name()), &call, None);
    }

    /// Cap a result to `approvals.max_result_bytes`: the state to store.
    pub fn completed(&self, result: serde_json::Value) -> CallState {
        let size = serde_json::to_vec(&result).map_or(usize::MAX, |b| b.len());
        let kept = size <= self.config.max_result_bytes;
        CallState::Completed { result: kept.then_some(result), result_omitted: !kept, at_ms: self.now() }
    }

    /// The state of a run that answered `error`.
    pub fn failed(&self, error: &ApiError, correlation_id: &crate::correlation::CorrelationId) -> CallState {
        CallState::Failed { problem: Box::new(error.problem_body(correlation_id)), at_ms: self.now() }
    }

    /// Who approved the call (for the run's record).
    pub async fn approvers_of(&self, id: &str) -> Vec<Who> {
        match self.ledger.votes(id).await {
            Ok(votes) => votes.into_iter().filter(|v| v.approve).map(|v| v.approver).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// End every open call past its expiry, and every run whose host
    /// stopped while it ran (the background sweep; reading a call ends it
    /// too).
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        let mut ended = 0;
        for id in self.ledger.open_ids().await? {
            match self.load_current(&id).await? {
                None => self.ledger.forget_open(&id).await,
                Some(call) if matches!(call.state, CallState::Expired { .. }) => ended += 1,
                Some(call) => {
                    let stale = self.longest_run().as_millis() as i64;
                    match call.state {
                        CallState::Running { since_ms } if self.now() - since_ms > stale => {
                            self.interrupted(call).await;
                            ended += 1;
                        }
                        CallState::AwaitingApproval => ended += self.settle_orphan(call).await? as usize,
                        _ => {}
                    }
                }
            }
        }
        Ok(ended)
    }

    /// The longest an approved run may take, every retry included, before
    /// the sweep may call it interrupted.
    fn longest_run(&self) -> Duration {
        let attempt = self.queue_timeout + self.max_timeout;
        attempt * RUN_ATTEMPTS + Duration::from_secs(31) + RUN_GRACE
    }

    /// A call whose settle claim was won (longer than [`RUN_GRACE`] ago) but
    /// whose record was never updated — its host stopped in between: end it
    /// as the claim said (a run that never started ends `failed`).
    async fn settle_orphan(&self, mut call: PendingCall) -> Result<bool, ApiError> {
        let Some((how, at_ms)) = self.ledger.claim_of(&call.id).await? else { return Ok(false) };
        if self.now() - at_ms <= RUN_GRACE.as_millis() as i64 {
            return Ok(false);
        }
        let (event, decision) = match how {
            Settlement::Run => {
                call.state = CallState::Running { since_ms: at_ms };
                self.interrupted(call).await;
                return Ok(true);
            }
            Settlement::Deny => {
                let votes = self.ledger.votes(&call.id).await?;
                let denial = votes.iter().find(|v| !v.approve);
                call.state = CallState::Denied {
                    by: denial
                        .map_or_else(|| Who { sub: "-".into(), tenant: "-".into() }, |v| v.approver.clone()),
                    reason: denial.and_then(|v| v.comment.clone()),
                    at_ms,
                };
                // The denial itself was audited when it was made.
                self.ledger.save(&call, self.config.result_retention).await?;
                self.ledger.close(&call).await;
                return Ok(true);
            }
            Settlement::Expire => {
                call.state = CallState::Expired { at_ms };
                ("approval.expired", "expired")
            }
            Settlement::Withdraw => {
                call.state = CallState::Withdrawn { at_ms };
                ("approval.withdrawn", "withdrawn")
            }
        };
        self.finish(&call, event, decision, None, None).await?;
        Ok(true)
    }

    /// Take back a call whose request could not be recorded: it never
    /// waits, runs or counts against the requester.
    pub async fn abandon(&self, id: &str) {
        let Ok(Some(mut call)) = self.ledger.load(id).await else { return };
        let keep = self.config.result_retention;
        if matches!(self.ledger.settle(&call, Settlement::Withdraw, self.now(), keep).await, Ok(true)) {
            call.state = CallState::Withdrawn { at_ms: self.now() };
            let _ = self.ledger.save(&call, keep).await;
            self.ledger.close(&call).await;
        }
    }

    /// A run whose host stopped meanwhile: it ends `failed`, saying that
    /// whether it took effect is unknown.
    async fn interrupted(&self, call: PendingCall) {
        if !matches!(self.ledger.end(&call, self.config.result_retention).await, Ok(true)) {
            return;
        }
        let error = ApiError::ToolFailed(
            "the host stopped while the approved call ran; whether it took effect is unknown (see the audit trail)"
                .into(),
        );
        let problem = error.problem_body(&crate::correlation::CorrelationId::generate());
        let detail = json!({ "call_id": call.id, "rule": call.requirement.rule, "error": problem.detail });
        let record = Self::event("approval.failed", "interrupted", &call, None, detail);
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(call_id = %call.id, error = %e, "interrupted approved call not recorded");
        }
        let mut call = call;
        call.state = CallState::Failed { problem: Box::new(problem), at_ms: self.now() };
        if let Err(e) = self.ledger.save(&call, self.config.result_retention).await {
            tracing::error!(call_id = %call.id, error = ?e, "interrupted approved call not stored");
        }
        self.ledger.close(&call).await;
        self.announce("approval.failed", &call, None);
    }

    /// The call, with an expiry that has passed applied first.
    async fn load_current(&self, id: &str) -> Result<Option<PendingCall>, ApiError> {
        let Some(mut call) = self.ledger.load(id).await? else { return Ok(None) };
        if matches!(call.state, CallState::AwaitingApproval)
            && self.now() >= call.expires_at_ms
            && self.ledger.settle(&call, Settlement::Expire, self.now(), self.config.result_retention).await?
        {
            call.state = CallState::Expired { at_ms: self.now() };
            self.finish(&call, "approval.expired", "expired", None, None).await?;
        } else if matches!(call.state, CallState::AwaitingApproval) && self.now() >= call.expires_at_ms {
            // Another decision settled it a moment ago: read what it wrote.
            if let Some(settled) = self.ledger.load(id).await? {
                call = settled;
            }
        }
        Ok(Some(call))
    }

    /// Store a call's final state, audit it, take it out of the indexes.
    async fn finish(
        &self,
        call: &PendingCall,
        event: &str,
        decision: &str,
        actor: Option<&Principal>,
        detail: Option<serde_json::Value>,
    ) -> Result<(), ApiError> {
        self.ledger.save(call, self.config.result_retention).await?;
        self.ledger.close(call).await;
        let detail = detail.unwrap_or_else(|| json!({ "call_id": call.id, "rule": call.requirement.rule }));
        let record = Self::event(event, decision, call, actor, detail);
        if let Err(e) = self.audit.append(record).await {
            tracing::error!(call_id = %call.id, error = %e, "approval outcome not recorded");
            return Err(ApiError::AuditUnavailable);
        }
        self.announce(event, call, None);
        Ok(())
    }

    fn may_decide(&self, call: &PendingCall, approver: &Principal) -> bool {
        let requester = (call.requester.sub.as_str(), call.requester.tenant.as_str());
        call.requirement.may_decide(approver, requester)
    }

    /// An audit record about `call`; `actor` is who acted (the requester
    /// when none is given).
    fn event(
        event: &str,
        decision: &str,
        call: &PendingCall,
        actor: Option<&Principal>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        let principal = match actor {
            Some(p) => AuditPrincipal { sub: p.sub.clone(), tenant: p.tenant.clone() },
            None => AuditPrincipal { sub: call.requester.sub.clone(), tenant: call.requester.tenant.clone() },
        };
        AuditEvent {
            event: event.into(),
            principal: Some(principal),
            tool: Some(call.tool.clone()),
            decision: decision.into(),
            args_sha256: Some(call.args_sha256.clone()),
            detail: Some(detail),
            ..Default::default()
        }
    }

    /// Tell the webhook, if there is one (never waits).
    fn announce(&self, event: &str, call: &PendingCall, vote: Option<&Vote>) {
        if let Some(webhook) = self.webhook {
            webhook.notify(webhook::Event::of(event, call, vote, self.now()));
        }
    }
}

#[cfg(test)]
#[path = "approvals_tests.rs"]
mod tests;
