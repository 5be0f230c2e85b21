//! The hardening findings, each tried as an attacker would against the real
//! server: what an unauthenticated client, a low-privilege caller, a hostile
//! plugin or someone with write access to `.audit/` can make the host do.

mod access;
mod credentials;
mod fairness;
mod idempotency;
mod plugins;
mod rollback;
mod server;
mod trail;
