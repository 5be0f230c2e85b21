//! Validation of a manifest's `network`, `credentials` and `config`
//! sections. Errors are `(field, reason)` pairs; the caller adds the file.

use super::spec::{CredentialGrantSpec, NetworkSpec};
use crate::broker::{Grant, Injection};
use crate::origin::{Host, OriginPattern, split_host_port};
use std::collections::{BTreeMap, HashSet};

/// Most entries in `network.allow`.
const MAX_ALLOW: usize = 64;
/// Most scopes in one grant.
const MAX_SCOPES: usize = 32;
/// Most `config:` entries, and the longest value.
const MAX_CONFIG_ENTRIES: usize = 64;
const MAX_CONFIG_VALUE: usize = 4096;

type FieldResult<T> = Result<T, (String, String)>;

/// `network.allow` as patterns.
pub fn allowlist(spec: &NetworkSpec) -> FieldResult<Vec<OriginPattern>> {
    if spec.allow.len() > MAX_ALLOW {
        return Err(("network.allow".into(), format!("at most {MAX_ALLOW} entries")));
    }
    spec.allow
        .iter()
        .enumerate()
        .map(|(i, text)| OriginPattern::parse(text).map_err(|reason| (format!("network.allow[{i}]"), reason)))
        .collect()
}

/// `credentials` as grants. An `inject.host` must be reachable under
/// `network.allow`, or the grant could never be used.
pub fn grants(specs: Vec<CredentialGrantSpec>, allow: &[OriginPattern]) -> FieldResult<Vec<Grant>> {
    let mut providers = HashSet::new();
    let mut grants = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let field = |name: &str| format!("credentials[{i}].{name}");
        if spec.provider.trim().is_empty() {
            return Err((field("provider"), "must not be empty".into()));
        }
        if !providers.insert(spec.provider.clone()) {
            return Err((field("provider"), format!("`{}` is granted twice", spec.provider)));
        }
        if spec.scopes.len() > MAX_SCOPES {
            return Err((field("scopes"), format!("at most {MAX_SCOPES} scopes")));
        }
        if let Some(bad) = spec.scopes.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err((field("scopes"), format!("`{bad}` is not a scope (empty or has spaces)")));
        }
        let mut scopes = spec.scopes;
        scopes.sort();
        scopes.dedup();
        let inject = match spec.inject {
            None => None,
            Some(inject) => {
                let (host, port) = split_host_port(&inject.host)
                    .ok_or_else(|| (field("inject.host"), format!("`{}` is not host[:port]", inject.host)))?;
                let host = Host::parse(host)
                    .ok_or_else(|| (field("inject.host"), format!("`{host}` is not a host")))?;
                let port = match port {
                    None => None,
                    Some(p) => Some(
                        p.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| (field("inject.host"), format!("`{p}` is not a port")))?,
                    ),
                };
                if !allow.iter().any(|pattern| pattern.covers_host(&host, port)) {
                    return Err((
                        field("inject.host"),
                        format!("`{}` is not reachable under network.allow", inject.host),
                    ));
                }
                let header = http::HeaderName::try_from(inject.header.as_str()).map_err(|_| {
                    (field("inject.header"), format!("`{}` is not a header name", inject.header))
                })?;
                if wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(&header)
                    || header == http::header::CONTENT_LENGTH
                    || header == http::header::CONTENT_TYPE
                    || header == http::header::COOKIE
                {
                    return Err((field("inject.header"), format!("`{header}` cannot carry a credential")));
                }
                Some(Injection { host, port, header })
            }
        };
        grants.push(Grant { provider: spec.provider, scopes, inject });
    }
    Ok(grants)
}

/// `config:` keys are short identifiers and values are bounded.
pub fn check_config(config: &BTreeMap<String, String>) -> FieldResult<()> {
    if config.len() > MAX_CONFIG_ENTRIES {
        return Err(("config".into(), format!("at most {MAX_CONFIG_ENTRIES} entries")));
    }
    for (key, value) in config {
        let good_key = !key.is_empty()
            && key.len() <= 64
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !good_key {
            return Err((format!("config.{key}"), "keys are [A-Za-z0-9_.-]{1,64}".into()));
        }
        if value.len() > MAX_CONFIG_VALUE {
            return Err((format!("config.{key}"), format!("values are at most {MAX_CONFIG_VALUE} bytes")));
        }
    }
    Ok(())
}
