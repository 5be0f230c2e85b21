//! Who is calling. Every pipeline step after authentication sees the caller
//! only through a [`Principal`].
//!
//! Authentication (JWT) is not wired yet: until it lands, every request runs
//! as [`Principal::anonymous`], tenant `public`, with no roles or scopes.

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The caller used while the host runs without authentication.
    pub fn anonymous() -> Self {
        Self {
            sub: "anonymous".into(),
            tenant: "public".into(),
            roles: Vec::new(),
            scopes: Vec::new(),
        }
    }
}
