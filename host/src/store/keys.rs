//! Every key the host writes into the state store, in one place: what each
//! prefix holds, and how caller-controlled parts are hashed so that no
//! caller can choose or collide with another's key.

use sha2::{Digest, Sha256};

/// An action token spent by a confirm (`spent:<jti>`).
pub fn spent_action_token(jti: &str) -> String {
    format!("spent:{jti}")
}

/// The audit record an action token was issued in (`audit-link:<jti>`), so
/// the confirm's record can name it.
pub fn audit_link(jti: &str) -> String {
    format!("audit-link:{jti}")
}

/// An Idempotency-Key's record, scoped to endpoint, tenant, subject and tool
/// (`idem:<sha256>`).
pub fn idempotency(endpoint: &str, tenant: &str, sub: &str, tool: &str, key: &str) -> String {
    format!("idem:{}", digest(&[endpoint, tenant, sub, tool, key]))
}

/// The set of a caller's live Idempotency-Keys (`idem-keys:<sha256>`).
pub fn idempotency_keys_of(tenant: &str, sub: &str) -> String {
    format!("idem-keys:{}", digest(&[tenant, sub]))
}

/// A call awaiting (or past) approval, by its host-chosen id (`approval:<id>`).
pub fn approval(call_id: &str) -> String {
    format!("approval:{call_id}")
}

/// Which of approve/deny/expire/withdraw settled a call: written once
/// (`approval-settled:<id>`), so exactly one of them acts, on any replica.
pub fn approval_settled(call_id: &str) -> String {
    format!("approval-settled:{call_id}")
}

/// Whether an approved call's end was written (`approval-ended:<id>`): by
/// its run, or by the sweep that finds it interrupted — once.
pub fn approval_ended(call_id: &str) -> String {
    format!("approval-ended:{call_id}")
}

/// One approver's decision on a call (`approval-vote:<id>:<sha256>`).
pub fn approval_vote(call_id: &str, approver: &str) -> String {
    format!("approval-vote:{call_id}:{approver}")
}

/// The set of approvers who decided a call (`approval-votes:<id>`).
pub fn approval_voters(call_id: &str) -> String {
    format!("approval-votes:{call_id}")
}

/// The set of every unfinished approval call, all requesters
/// (`approvals-open`): the inbox and the expiry sweep read it.
pub const APPROVALS_OPEN: &str = "approvals-open";

/// The set of one requester's unfinished approval calls (`approvals-of:<sha256>`).
pub fn approvals_of(tenant: &str, sub: &str) -> String {
    format!("approvals-of:{}", digest(&[tenant, sub]))
}

/// A user's sealed tokens at a provider (`connection:<sha256>` of tenant,
/// subject and provider).
pub fn connection(tenant: &str, sub: &str, provider: &str) -> String {
    format!("connection:{}", digest(&[tenant, sub, provider]))
}

/// A user's pending connect flow at a provider, reused while it has time
/// left (`connection-pending:<sha256>`): its authorization URL, sealed.
pub fn connection_pending(tenant: &str, sub: &str, provider: &str) -> String {
    format!("connection-pending:{}", digest(&[tenant, sub, provider]))
}

/// A refresh of a user's connection in progress on some replica
/// (`connection-refresh:<sha256>`): one refresh at a time across replicas.
pub fn connection_refresh(tenant: &str, sub: &str, provider: &str) -> String {
    format!("connection-refresh:{}", digest(&[tenant, sub, provider]))
}

/// A started connect flow, by the SHA-256 of its `state`
/// (`connection-flow:<hex>`): the state itself is never stored.
pub fn connection_flow(state_digest: &str) -> String {
    format!("connection-flow:{state_digest}")
}

/// A connect flow's callback, claimed once (`connection-flow-used:<hex>`).
pub fn connection_flow_used(state_digest: &str) -> String {
    format!("connection-flow-used:{state_digest}")
}

/// The set of a user's pending connect flows (`connection-flows-of:<sha256>`).
pub fn connection_flows_of(tenant: &str, sub: &str) -> String {
    format!("connection-flows-of:{}", digest(&[tenant, sub]))
}

/// A principal as a set member or key part (`<sha256>` of tenant and subject).
pub fn principal_digest(tenant: &str, sub: &str) -> String {
    digest(&[tenant, sub])
}

/// SHA-256 of the parts, each terminated by a NUL so that no two part lists
/// hash alike.
fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_do_not_collide() {
        let a = idempotency("invoke", "t", "s", "x:y", "k");
        assert_ne!(a, idempotency("confirm", "t", "s", "x:y", "k"));
        assert_ne!(a, idempotency("invoke", "t2", "s", "x:y", "k"));
        assert_ne!(idempotency("invoke", "a", "bc", "t", "k"), idempotency("invoke", "ab", "c", "t", "k"));
        assert_ne!(idempotency_keys_of("a", "bc"), idempotency_keys_of("ab", "c"));
    }
}
