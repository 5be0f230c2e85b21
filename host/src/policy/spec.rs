//! The policy file format (`policies/policies.yml`) exactly as written.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Format version; only `1` exists.
    pub version: u32,
    /// RBAC: role name → the tools it grants.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSpec>,
    /// ABAC rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Quotas that replace a tool's per-caller `rate_limit` for some callers;
    /// the first matching entry applies.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitOverrideSpec>,
    /// Calls that need approval by others before they run; the first
    /// matching entry applies.
    #[serde(default)]
    pub approvals: Vec<ApprovalSpec>,
}

/// One approval rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// Unique name, shown to requesters and approvers.
    pub name: String,
    /// Tool-id patterns it applies to.
    pub tools: Vec<String>,
    /// CEL condition (the variables of `rules`); absent means always.
    pub when: Option<String>,
    /// Who may approve.
    pub approvers: Approvers,
    /// Distinct approvers needed (default 1).
    #[serde(default = "one")]
    pub quorum: u32,
    /// How long the call waits for them (`90s`, `15m`, `24h`, `7d`).
    pub ttl: String,
    /// Shown to approvers and the requester.
    pub hint: Option<String>,
    /// Approvers of any tenant may decide (default: only the requester's).
    #[serde(default)]
    pub any_tenant: bool,
}

fn one() -> u32 {
    1
}

/// One rate-limit override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverrideSpec {
    /// Tool-id patterns it applies to.
    pub tools: Vec<String>,
    /// Callers with any of these roles (any caller when empty).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Callers of these tenants (any tenant when empty).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Sustained calls per minute, per caller.
    pub per_minute: u32,
    /// Calls allowed at once (default: `per_minute`).
    pub burst: Option<u32>,
}

/// One role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Tool-id patterns (`ads:*`, `*`, `util:echo`).
    pub tools: Vec<String>,
}

/// One rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique id, named in denials and logs.
    pub id: String,
    /// Tool-id patterns the rule applies to.
    pub tools: Vec<String>,
    /// CEL condition; absent means always.
    pub when: Option<String>,
    /// What a match does.
    pub effect: EffectSpec,
    /// Why (shown with denials).
    pub reason: Option<String>,
    /// Shown to the human asked to confirm.
    pub hint: Option<String>,
}

/// A rule's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectSpec {
    /// Refuse the call. Deny wins over everything.
    Deny,
    /// Waive `confirm` rules for matching calls (never a manifest's own
    /// confirmation requirement, and never a deny). Does not grant a tool:
    /// only roles do.
    Allow,
    /// Require human confirmation.
    Confirm,
}

/// Who may approve: any principal with one of the roles, one of the scopes,
/// or one of the subjects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// Roles whose holders may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Scopes whose holders may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Subjects (`sub`) who may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}
