//! Approval rules (the policy file's `approvals:` section): which calls need
//! a second person, who may decide them, how many must approve, and for how
//! long a call may wait.
//!
//! The first rule (in file order) whose `tools` match and whose `when` holds
//! applies; a `when` that cannot be evaluated fails safe (the rule applies).
//! A rule's requirement is copied into the pending call when it is
//! requested, so a call is decided under the rule it was asked under; the
//! call's own policy is checked again when it runs.

use super::Pattern;
use super::condition::Condition;
use super::spec::ApprovalSpec;
pub use super::spec::Approvers;
use crate::principal::Principal;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

/// Most distinct approvers a rule may require.
pub const MAX_QUORUM: u32 = 10;
/// Shortest and longest time a call may wait for its approvers.
const TTL_RANGE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(30 * 86_400));
/// Longest rule name.
const MAX_NAME_LEN: usize = 64;

impl Approvers {
    /// Whether `principal` is one of them (its tenant is checked elsewhere).
    pub fn admit(&self, principal: &Principal) -> bool {
        self.roles.iter().any(|r| principal.roles.contains(r))
            || self.scopes.iter().any(|s| principal.has_scope(s))
            || self.subjects.contains(&principal.sub)
    }

    fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.scopes.is_empty() && self.subjects.is_empty()
    }
}

/// What a call needs before it runs: the rule's terms, as requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// The rule's name.
    pub rule: String,
    /// Who may approve.
    pub approvers: Approvers,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// How long the call may wait, in seconds.
    pub ttl_s: u64,
    /// Shown to approvers and the requester.
    pub hint: Option<String>,
    /// Approvers of any tenant may decide (otherwise only the requester's).
    pub any_tenant: bool,
}

impl Requirement {
    /// Whether `approver` may decide a call of `requester` under this rule:
    /// one of the approvers, of the requester's tenant unless the rule says
    /// otherwise, and never the requester.
    pub fn may_decide(&self, approver: &Principal, requester: (&str, &str)) -> bool {
        let (sub, tenant) = requester;
        let own = approver.sub == sub && approver.tenant == tenant;
        !own && (self.any_tenant || approver.tenant == tenant) && self.approvers.admit(approver)
    }
}

/// One compiled rule.
pub(super) struct ApprovalRule {
    tools: Vec<Pattern>,
    when: Option<Condition>,
    requirement: Requirement,
}

impl ApprovalRule {
    /// Compile the rules of the file, checking every field.
    pub(super) fn compile_all(
        env: &cel::Env,
        specs: Vec<ApprovalSpec>,
    ) -> Result<Vec<Self>, (String, String)> {
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let name = spec.name.clone();
            let fail = |reason: String| (name.clone(), reason);
            let well_formed = !name.is_empty()
                && name.len() <= MAX_NAME_LEN
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(fail(format!("name: letters, digits, `-` and `_`, 1 to {MAX_NAME_LEN} of them")));
            }
            if !names.insert(name.clone()) {
                return Err(fail("name: approval rule names must be unique".into()));
            }
            if spec.tools.is_empty() {
                return Err(fail("tools: must name at least one pattern".into()));
            }
            if spec.approvers.is_empty() {
                return Err(fail("approvers: name at least one role, scope or subject".into()));
            }
            if !(1..=MAX_QUORUM).contains(&spec.quorum) {
                return Err(fail(format!("quorum: must be 1 to {MAX_QUORUM}")));
            }
            let ttl = crate::auth::devkeys::parse_ttl(&spec.ttl).map_err(|e| fail(format!("ttl: {e}")))?;
            if ttl < TTL_RANGE.0 || ttl > TTL_RANGE.1 {
                return Err(fail("ttl: must be between 1m and 30d".into()));
            }
            let when = match &spec.when {
                None => None,
                Some(source) => {
                    Some(Condition::compile(env, source).map_err(|e| fail(format!("when: {e}")))?)
                }
            };
            rules.push(Self {
                tools: spec.tools.into_iter().map(Pattern).collect(),
                when,
                requirement: Requirement {
                    rule: name,
                    approvers: spec.approvers,
                    quorum: spec.quorum,
                    ttl_s: ttl.as_secs(),
                    hint: spec.hint,
                    any_tenant: spec.any_tenant,
                },
            });
        }
        Ok(rules)
    }

    /// Whether the rule's tools include `tool_id`.
    pub(super) fn covers(&self, tool_id: &str) -> bool {
        self.tools.iter().any(|p| p.matches(tool_id))
    }

    /// The rule's condition, if it has one.
    pub(super) fn condition(&self) -> Option<&Condition> {
        self.when.as_ref()
    }

    /// The requirement, if the condition holds in `context` (a condition
    /// that cannot be evaluated holds: approval is the safe side).
    pub(super) fn applies(&self, context: &cel::Context) -> Option<&Requirement> {
        let holds = match self.when.as_ref().map(|condition| condition.holds(context)) {
            None => true,
            Some(Ok(holds)) => holds,
            Some(Err(error)) => {
                tracing::warn!(rule = %self.requirement.rule, %error, "approval condition could not be evaluated; approval required");
                true
            }
        };
        holds.then_some(&self.requirement)
    }
}
