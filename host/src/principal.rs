//! Who is calling. Every pipeline step after authentication sees the caller
//! only through a [`Principal`], built by [`crate::auth`] from a verified token.

/// An authenticated caller (serialisable: a call that waits for approvers
/// keeps who asked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    /// Subject (`sub`).
    pub sub: String,
    /// Tenant.
    pub tenant: String,
    /// Roles, for policy.
    pub roles: Vec<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

impl Principal {
    /// A principal with no roles and no scopes (tests and benchmarks).
    pub fn anonymous() -> Self {
        Self { sub: "anonymous".into(), tenant: "public".into(), roles: Vec::new(), scopes: Vec::new() }
    }

    /// Whether the principal holds `scope` (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
