//! Providers: the credential sources the operator configures, never a
//! manifest. A YAML file (`.runtime/providers.yml`, or the path in
//! `FASTMCP_PROVIDERS_FILE`) names each provider and where its secret is
//! read from — a file or an environment variable, never inline:
//!
//! ```yaml
//! providers:
//!   ads-api:
//!     kind: oauth2_client_credentials
//!     token_url: https://auth.example.com/oauth/token
//!     client_id: fastmcp
//!     client_secret: { file: /run/secrets/ads-client-secret }
//!   maps:
//!     kind: static
//!     secret: { env: MAPS_API_KEY }
//! ```
//!
//! Secrets are read once, at startup, into [`Secret`] values whose `Debug`
//! and `Display` never show them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest secret read from a file (a key or client secret, not a document).
const MAX_SECRET_BYTES: u64 = 16 * 1024;

/// A secret value. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A configured provider.
#[derive(Debug, Clone)]
pub enum Provider {
    /// A long-lived API key. It is only ever injected into outbound requests
    /// by the host; `broker.get-token` refuses to hand it to a plugin.
    Static {
        /// The key.
        secret: Secret,
    },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4): short-lived access
    /// tokens, fetched with HTTP Basic client authentication and cached.
    OAuth2ClientCredentials {
        /// The token endpoint.
        token_url: reqwest::Url,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
        /// Refresh a cached token this long before it expires.
        refresh_before: Duration,
    },
}

/// Why the providers file is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct ProvidersError {
    /// The providers file.
    pub file: PathBuf,
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersSpec {
    #[serde(default)]
    providers: BTreeMap<String, ProviderSpec>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ProviderSpec {
    Static {
        secret: SecretSource,
    },
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretSource,
        #[serde(default)]
        refresh_before_s: Option<u64>,
    },
}

/// Where a secret comes from.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum SecretSource {
    /// A file (relative to the providers file's directory unless absolute);
    /// surrounding whitespace is trimmed.
    File(PathBuf),
    /// An environment variable of the host process.
    Env(String),
}

/// Default of `refresh_before_s`.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(30);

/// Read and validate a providers file.
pub fn load(file: &Path) -> Result<BTreeMap<String, Provider>, ProvidersError> {
    let err = |field: &str, reason: String| ProvidersError {
        file: file.to_path_buf(),
        field: field.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err("-", format!("cannot read: {e}")))?;
    let spec: ProvidersSpec = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(&text))
        .map_err(|e| err(&e.path().to_string(), e.inner().to_string()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut providers = BTreeMap::new();
    for (name, spec) in spec.providers {
        let field = |f: &str| format!("providers.{name}.{f}");
        if !is_provider_name(&name) {
            return Err(err(&format!("providers.{name}"), "names are [a-z0-9][a-z0-9._-]{0,63}".into()));
        }
        let provider = match spec {
            ProviderSpec::Static { secret } => Provider::Static {
                secret: read_secret(base, &secret).map_err(|reason| err(&field("secret"), reason))?,
            },
            ProviderSpec::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                refresh_before_s,
            } => {
                let token_url = reqwest::Url::parse(&token_url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        err(&field("token_url"), format!("`{token_url}` is not an http(s) URL"))
                    })?;
                if client_id.is_empty() {
                    return Err(err(&field("client_id"), "must not be empty".into()));
                }
                Provider::OAuth2ClientCredentials {
                    token_url,
                    client_id,
                    client_secret: read_secret(base, &client_secret)
                        .map_err(|reason| err(&field("client_secret"), reason))?,
                    refresh_before: refresh_before_s.map_or(DEFAULT_REFRESH_BEFORE, Duration::from_secs),
                }
            }
        };
        providers.insert(name, provider);
    }
    Ok(providers)
}

fn read_secret(base: &Path, source: &SecretSource) -> Result<Secret, String> {
    let value = match source {
        SecretSource::File(path) => {
            let path = if path.is_absolute() { path.clone() } else { base.join(path) };
            let size =
                std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
            if size > MAX_SECRET_BYTES {
                return Err(format!("{} is larger than {MAX_SECRET_BYTES} bytes", path.display()));
            }
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        SecretSource::Env(name) => {
            std::env::var(name).map_err(|_| format!("the environment variable `{name}` is not set"))?
        }
    };
    let value = value.trim();
    if value.is_empty() {
        return Err("the secret is empty".into());
    }
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err("the secret contains control characters".into());
    }
    Ok(Secret::new(value.to_owned()))
}

fn is_provider_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "  s3cr3t-value\n");
        let file = write(
            dir.path(),
            "providers.yml",
            "providers:\n  ads-api:\n    kind: oauth2_client_credentials\n    token_url: http://127.0.0.1:1/token\n    client_id: c\n    client_secret: { file: secret }\n  maps:\n    kind: static\n    secret: { file: secret }\n",
        );
        let providers = load(&file).unwrap();
        let Provider::OAuth2ClientCredentials { client_secret, .. } = &providers["ads-api"] else { panic!() };
        assert_eq!(client_secret.expose(), "s3cr3t-value");
        let printed = format!("{providers:?} {client_secret}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }

    #[test]
    fn inline_secrets_unknown_kinds_and_missing_sources_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (text, field) in [
            ("providers:\n  a:\n    kind: static\n    secret: inline\n", "providers.a"),
            ("providers:\n  a:\n    kind: magic\n", "providers.a"),
            (
                "providers:\n  a:\n    kind: static\n    secret: { env: FASTMCP_TEST_UNSET_VAR }\n",
                "providers.a.secret",
            ),
            ("providers:\n  a:\n    kind: static\n    secret: { file: missing }\n", "providers.a.secret"),
            (
                "providers:\n  a:\n    kind: oauth2_client_credentials\n    token_url: ftp://x\n    client_id: c\n    client_secret: { file: missing }\n",
                "providers.a.token_url",
            ),
        ] {
            let file = write(dir.path(), "providers.yml", text);
            let e = load(&file).unwrap_err();
            assert!(e.field.starts_with(field), "{text}: {e}");
        }
    }
}
