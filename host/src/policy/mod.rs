//! Policies: RBAC roles that grant tools, and ABAC rules whose conditions are
//! CEL expressions, compiled once when the file is loaded.
//!
//! Decision for one call, given a principal, a tool and validated arguments:
//! 1. a role of the principal must grant the tool, else deny (`rbac`);
//! 2. every rule whose `tools` match is evaluated; any `deny` that matches
//!    wins; otherwise a matching `confirm` demands confirmation unless a
//!    matching `allow` waives it.
//!
//! 3. the first `approvals` entry that matches says who else must approve
//!    the call before it runs ([`approvals`]).
//!
//! A rule whose condition cannot be evaluated (a type error, a missing
//! field) fails safe: a `deny` rule denies, a `confirm` rule confirms, an
//! `allow` rule does not waive.

pub mod approvals;
mod cel_values;
mod condition;
mod free_variables;
pub mod spec;

use crate::manifest::ToolDef;
use crate::principal::Principal;
use crate::ratelimit::Limit;
use cel::Env;
use condition::{Condition, Variables};
use serde_json::Value;
use spec::{EffectSpec, PolicySpec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Unreadable or not valid YAML for the format.
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// An approval rule that is invalid.
    #[error("{file}: approvals `{rule}`: {reason}")]
    Approval {
        /// The file.
        file: PathBuf,
        /// The rule's name.
        rule: String,
        /// Why.
        reason: String,
    },
    /// A rule that does not compile or is otherwise invalid.
    #[error("{file}: rule `{rule}`: {reason}")]
    Rule {
        /// The file.
        file: PathBuf,
        /// The rule id.
        rule: String,
        /// Why.
        reason: String,
    },
}

/// A tool-id pattern: `*` matches any run of characters.
#[derive(Debug, Clone)]
struct Pattern(String);

impl Pattern {
    fn matches(&self, id: &str) -> bool {
        glob(self.0.as_bytes(), id.as_bytes())
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

struct Rule {
    id: String,
    tools: Vec<Pattern>,
    when: Option<Condition>,
    effect: EffectSpec,
    reason: String,
    hint: Option<String>,
}

/// A compiled policy file.
pub struct PolicySet {
    /// Where it came from (`None` when no file exists).
    pub file: Option<PathBuf>,
    roles: Vec<(String, Vec<Pattern>)>,
    rules: Vec<Rule>,
    rate_limits: Vec<RateOverride>,
    approvals: Vec<approvals::ApprovalRule>,
    env: Arc<Env>,
}

struct RateOverride {
    tools: Vec<Pattern>,
    roles: Vec<String>,
    tenants: Vec<String>,
    limit: Limit,
}

/// The outcome of evaluating a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Refused.
    Deny {
        /// The rule id (`rbac` when no role grants the tool).
        rule: String,
        /// Why.
        reason: String,
    },
    /// Permitted, possibly only after human confirmation, and possibly
    /// only once others approve.
    Permit {
        /// The `confirm` rule that applies, if any.
        confirm: Option<ConfirmRule>,
        /// The approval rule that applies, if any.
        approval: Option<approvals::Requirement>,
    },
}

/// A matching `confirm` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmRule {
    /// The rule id.
    pub rule: String,
    /// Its hint.
    pub hint: Option<String>,
}

impl PolicySet {
    /// No roles, no rules: every call is denied.
    pub fn deny_all() -> Self {
        Self {
            file: None,
            roles: Vec::new(),
            rules: Vec::new(),
            rate_limits: Vec::new(),
            approvals: Vec::new(),
            env: Arc::new(Env::stdlib()),
        }
    }

    /// Load a policy file; a missing file is the deny-all policy.
    pub fn load(file: &Path) -> Result<Self, PolicyError> {
        match std::fs::read_to_string(file) {
            Ok(text) => Self::parse(file, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::deny_all()),
            Err(e) => Err(PolicyError::File { file: file.into(), reason: format!("cannot read: {e}") }),
        }
    }

    /// Parse and compile policy text; `file` is used in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, PolicyError> {
        let file_error = |reason: String| PolicyError::File { file: file.into(), reason };
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let spec: PolicySpec = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| file_error(format!("{}: {}", e.path(), e.inner())))?;
        if spec.version != 1 {
            return Err(file_error(format!("version: {} is not supported (use 1)", spec.version)));
        }
        let env = Arc::new(Env::stdlib());
        let roles = spec
            .roles
            .into_iter()
            .map(|(name, role)| (name, role.tools.into_iter().map(Pattern).collect()))
            .collect();
        let mut ids = HashSet::new();
        let mut rules = Vec::with_capacity(spec.rules.len());
        for rule in spec.rules {
            let rule_error =
                |reason: String| PolicyError::Rule { file: file.into(), rule: rule.id.clone(), reason };
            if rule.id.trim().is_empty() || !ids.insert(rule.id.clone()) {
                return Err(rule_error("rule ids must be unique and non-empty".into()));
            }
            if rule.tools.is_empty() {
                return Err(rule_error("`tools` must name at least one pattern".into()));
            }
            let when = match &rule.when {
                None => None,
                Some(source) => Some(Condition::compile(&env, source).map_err(rule_error)?),
            };
            rules.push(Rule {
                reason: rule.reason.unwrap_or_else(|| format!("denied by rule `{}`", rule.id)),
                id: rule.id,
                tools: rule.tools.into_iter().map(Pattern).collect(),
                when,
                effect: rule.effect,
                hint: rule.hint,
            });
        }
        let mut rate_limits = Vec::with_capacity(spec.rate_limits.len());
        for (i, entry) in spec.rate_limits.into_iter().enumerate() {
            let limit = Limit::new(entry.per_minute, entry.burst).ok_or_else(|| {
                file_error(format!("rate_limits[{i}]: per_minute and burst must be positive"))
            })?;
            rate_limits.push(RateOverride {
                tools: entry.tools.into_iter().map(Pattern).collect(),
                roles: entry.roles,
                tenants: entry.tenants,
                limit,
            });
        }
        let approvals = approvals::ApprovalRule::compile_all(&env, spec.approvals)
            .map_err(|(rule, reason)| PolicyError::Approval { file: file.into(), rule, reason })?;
        Ok(Self { file: Some(file.into()), roles, rules, rate_limits, approvals, env })
    }

    /// Whether a role of `principal` grants `tool_id` (what the catalog shows).
    pub fn grants(&self, principal: &Principal, tool_id: &str) -> bool {
        self.roles.iter().any(|(role, patterns)| {
            principal.roles.iter().any(|r| r == role) && patterns.iter().any(|p| p.matches(tool_id))
        })
    }

    /// Decide one call whose requests carry no credential
    /// (`credential.kind` is `none`). `now_unix_ms` feeds `request.time`.
    #[cfg(test)]
    pub fn evaluate(
        &self,
        principal: &Principal,
        tool: &ToolDef,
        args: &Value,
        now_unix_ms: i64,
    ) -> Decision {
        self.decide(principal, tool, args, now_unix_ms, "none")
    }

    /// Decide one call. `now_unix_ms` feeds `request.time`;
    /// `credential_kind` (`user`, `service` or `none`) `credential.kind`.
    pub fn decide(
        &self,
        principal: &Principal,
        tool: &ToolDef,
        args: &Value,
        now_unix_ms: i64,
        credential_kind: &str,
    ) -> Decision {
        if !self.grants(principal, &tool.id) {
            return Decision::Deny {
                rule: "rbac".into(),
                reason: format!("no role of the caller grants `{}`", tool.id),
            };
        }
        let matching: Vec<&Rule> =
            self.rules.iter().filter(|r| r.tools.iter().any(|p| p.matches(&tool.id))).collect();
        let approving: Vec<&approvals::ApprovalRule> =
            self.approvals.iter().filter(|r| r.covers(&tool.id)).collect();
        if matching.is_empty() && approving.is_empty() {
            return Decision::Permit { confirm: None, approval: None };
        }
        let reads = matching
            .iter()
            .filter_map(|rule| rule.when.as_ref())
            .chain(approving.iter().filter_map(|rule| rule.condition()))
            .fold(Variables::default(), |reads, condition| reads.union(condition.reads()));
        let call = cel_values::Call { principal, tool, args, now_unix_ms, credential_kind };
        let context = cel_values::context(&self.env, &call, reads);
        let approval = approving.iter().find_map(|rule| rule.applies(&context)).cloned();
        let mut confirm = None;
        let mut waived = false;
        for rule in matching {
            let holds = rule.when.as_ref().map_or(Ok(true), |condition| condition.holds(&context));
            let holds = holds.unwrap_or_else(|error| {
                tracing::warn!(rule = %rule.id, tool = %tool.id, %error, "policy rule could not be evaluated");
                rule.effect != EffectSpec::Allow
            });
            if !holds {
                continue;
            }
            match rule.effect {
                EffectSpec::Deny => {
                    return Decision::Deny { rule: rule.id.clone(), reason: rule.reason.clone() };
                }
                EffectSpec::Allow => waived = true,
                EffectSpec::Confirm if confirm.is_none() => {
                    confirm = Some(ConfirmRule { rule: rule.id.clone(), hint: rule.hint.clone() })
                }
                EffectSpec::Confirm => {}
            }
        }
        Decision::Permit { confirm: if waived { None } else { confirm }, approval }
    }

    /// The per-caller quota an override sets for this caller and tool.
    pub fn rate_limit_for(&self, principal: &Principal, tool_id: &str) -> Option<Limit> {
        self.rate_limits
            .iter()
            .find(|o| {
                o.tools.iter().any(|p| p.matches(tool_id))
                    && (o.roles.is_empty() || o.roles.iter().any(|r| principal.roles.contains(r)))
                    && (o.tenants.is_empty() || o.tenants.contains(&principal.tenant))
            })
            .map(|o| o.limit)
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Number of approval rules.
    pub fn approval_count(&self) -> usize {
        self.approvals.len()
    }

    /// Number of roles.
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
