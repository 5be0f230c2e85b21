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
//!     plugins: [ads]                          # who may be granted it
//!     origins: ["https://ads.example.com"]    # where it may be injected
//!   crm-api:                                # the caller's own identity upstream
//!     kind: token_exchange                  # RFC 8693
//!     token_url: https://idp.example.com/oauth2/token
//!     client_id: fastmcp
//!     private_key: { file: /run/secrets/fastmcp-client.pem }  # private_key_jwt (RFC 7523)
//!     key_id: fastmcp-2026                  # instead of a client_secret
//!     audience: https://crm.example.com       # and/or resource (RFC 8707)
//!     scopes: [crm.read]
//!     delegation: true                      # send the host's own token as actor_token
//!     plugins: [crm]
//!     origins: ["https://crm.example.com"]
//!   ads-user:                               # each user's own account, connected once
//!     kind: oauth2_authorization_code       # authorization code + PKCE
//!     authorize_url: https://ads.example.com/oauth/authorize
//!     token_url: https://ads.example.com/oauth/token
//!     revoke_url: https://ads.example.com/oauth/revoke     # optional (RFC 7009)
//!     redirect_uri: https://tools.example.com/connections/ads-user/callback  # optional
//!     client_id: fastmcp
//!     client_secret: { file: /run/secrets/ads-oauth-secret }
//!     scopes: [campaigns.read]
//!     plugins: [ads]
//!     origins: ["https://ads.example.com"]
//!   maps:
//!     kind: static
//!     secret: { env: MAPS_API_KEY }
//!     plugins: [maps]
//!     origins: ["https://maps.example.com:8443"]
//! ```
//!
//! The operator, not a manifest, binds each credential: only the plugins
//! named in `plugins` may be granted it, and the host injects it only into
//! requests to exactly the `origins` listed (scheme, host and port). Origins
//! are `https` unless the provider says `allow_http: true`.
//!
//! Secrets are read once, at startup, into [`Secret`] values whose `Debug`
//! and `Display` never show them.

use crate::origin::{Origin, Scheme};
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

/// A configured provider: where its credential comes from, and what the
/// operator binds it to.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The credential.
    pub credential: Credential,
    /// The plugins a manifest may grant it to.
    pub plugins: Vec<String>,
    /// The origins it may be injected into.
    pub origins: Vec<Origin>,
}

impl Provider {
    /// Whether `plugin` may be granted this provider.
    pub fn binds_plugin(&self, plugin: &str) -> bool {
        self.plugins.iter().any(|p| p == plugin)
    }

    /// Whether the credential may be injected into a request to `origin`.
    pub fn binds_origin(&self, origin: &Origin) -> bool {
        self.origins.contains(origin)
    }
}

/// Where a provider's credential comes from.
#[derive(Debug, Clone)]
pub enum Credential {
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
        /// How the host authenticates as that client.
        client_auth: ClientAuth,
        /// Refresh a cached token this long before it expires.
        refresh_before: Duration,
    },
    /// OAuth 2.0 token exchange (RFC 8693): the caller's verified inbound
    /// token is exchanged for an upstream token that names the caller.
    /// Cached per caller token; only ever injected, never handed out.
    TokenExchange {
        /// The token endpoint.
        token_url: reqwest::Url,
        /// The client id.
        client_id: String,
        /// How the host authenticates as that client.
        client_auth: ClientAuth,
        /// `audience` of the exchange.
        audience: Option<String>,
        /// `resource` of the exchange (RFC 8707).
        resource: Option<String>,
        /// Scopes asked for (the grant's scopes are added).
        scopes: Vec<String>,
        /// Send the host's own client-credentials token as `actor_token`.
        delegation: bool,
        /// Refresh a cached token this long before it expires.
        refresh_before: Duration,
    },
    /// OAuth 2.0 authorization code with PKCE (RFC 6749 §4.1, RFC 7636):
    /// each user connects their own account once (`/connections`); the
    /// host keeps their tokens, encrypted, and injects the access token.
    OAuth2AuthorizationCode(Box<AuthorizationCode>),
}

/// A provider users connect their own accounts to.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    /// Where the user's browser is sent to consent.
    pub authorize_url: reqwest::Url,
    /// The token endpoint (code and refresh grants).
    pub token_url: reqwest::Url,
    /// The revocation endpoint (RFC 7009), if the provider has one.
    pub revoke_url: Option<reqwest::Url>,
    /// The callback URL registered with the provider; unset: the host's
    /// public URL (or the request's `Host`) and `/connections/{name}/callback`.
    pub redirect_uri: Option<reqwest::Url>,
    /// The client id.
    pub client_id: String,
    /// How the host authenticates as that client.
    pub client_auth: ClientAuth,
    /// Scopes asked for at consent.
    pub scopes: Vec<String>,
    /// Refresh an access token this long before it expires.
    pub refresh_before: Duration,
}

/// How the host authenticates to a provider's token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the client secret.
    Secret(Secret),
    /// `private_key_jwt` (RFC 7523): a JWT signed with the operator's
    /// private key for each request, so no shared secret exists.
    PrivateKeyJwt(std::sync::Arc<SigningKey>),
}

/// The operator's private key for `private_key_jwt`.
pub struct SigningKey {
    /// The key.
    pub key: jsonwebtoken::EncodingKey,
    /// Its algorithm, from the key's type (RS256 for RSA, ES256 for P-256).
    pub alg: jsonwebtoken::Algorithm,
    /// The `kid` its public half is registered under, if any.
    pub kid: Option<String>,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("ClientAuth::Secret(***)"),
            ClientAuth::PrivateKeyJwt(key) => {
                write!(f, "ClientAuth::PrivateKeyJwt({:?}, kid {:?})", key.alg, key.kid)
            }
        }
    }
}

impl Credential {
    /// `user` when the upstream sees the caller (token exchange, a user's
    /// connection), else `service` (the operator's identity) — what
    /// policies read as `credential.kind`.
    pub fn kind(&self) -> &'static str {
        if self.acts_as_caller() { "user" } else { "service" }
    }

    /// Whether the upstream sees the caller (token exchange, a user's
    /// connection) rather than the operator.
    pub fn acts_as_caller(&self) -> bool {
        match self {
            Credential::TokenExchange { .. } | Credential::OAuth2AuthorizationCode(_) => true,
            Credential::Static { .. } | Credential::OAuth2ClientCredentials { .. } => false,
        }
    }
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
        plugins: Vec<String>,
        #[serde(default)]
        origins: Vec<String>,
        #[serde(default)]
        allow_http: bool,
    },
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials {
        token_url: String,
        client_id: String,
        #[serde(default)]
        client_secret: Option<SecretSource>,
        #[serde(default)]
        private_key: Option<SecretSource>,
        #[serde(default)]
        key_id: Option<String>,
        #[serde(default)]
        refresh_before_s: Option<u64>,
        plugins: Vec<String>,
        #[serde(default)]
        origins: Vec<String>,
        #[serde(default)]
        allow_http: bool,
    },
    TokenExchange {
        token_url: String,
        client_id: String,
        #[serde(default)]
        client_secret: Option<SecretSource>,
        #[serde(default)]
        private_key: Option<SecretSource>,
        #[serde(default)]
        key_id: Option<String>,
        #[serde(default)]
        audience: Option<String>,
        #[serde(default)]
        resource: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        delegation: bool,
        #[serde(default)]
        refresh_before_s: Option<u64>,
        plugins: Vec<String>,
        #[serde(default)]
        origins: Vec<String>,
        #[serde(default)]
        allow_http: bool,
    },
    #[serde(rename = "oauth2_authorization_code")]
    OAuth2AuthorizationCode {
        authorize_url: String,
        token_url: String,
        #[serde(default)]
        revoke_url: Option<String>,
        #[serde(default)]
        redirect_uri: Option<String>,
        client_id: String,
        #[serde(default)]
        client_secret: Option<SecretSource>,
        #[serde(default)]
        private_key: Option<SecretSource>,
        #[serde(default)]
        key_id: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        refresh_before_s: Option<u64>,
        plugins: Vec<String>,
        #[serde(default)]
        origins: Vec<String>,
        #[serde(default)]
        allow_http: bool,
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

/// How a provider's spec authenticates its client: `client_secret`, or
/// `private_key` and an optional `key_id`.
type ClientAuthSpec = (Option<SecretSource>, Option<SecretSource>, Option<String>);

/// Most plugins, and most origins, one provider may be bound to.
const MAX_BINDINGS: usize = 64;

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
        // The token endpoint and client of an OAuth provider, checked.
        let client = |token_url: &str, client_id: &str, auth: ClientAuthSpec| {
            let token_url = token_endpoint(token_url).map_err(|reason| err(&field("token_url"), reason))?;
            if client_id.is_empty() {
                return Err(err(&field("client_id"), "must not be empty".into()));
            }
            let auth = match auth {
                (Some(secret), None, None) => ClientAuth::Secret(
                    read_secret(base, &secret).map_err(|reason| err(&field("client_secret"), reason))?,
                ),
                (None, Some(key), kid) => ClientAuth::PrivateKeyJwt(std::sync::Arc::new(
                    signing_key(base, &key, kid).map_err(|reason| err(&field("private_key"), reason))?,
                )),
                _ => {
                    return Err(err(
                        &field("client_secret"),
                        "give either client_secret, or private_key (and optionally key_id) for private_key_jwt"
                            .into(),
                    ));
                }
            };
            Ok((token_url, auth))
        };
        let refresh_before =
            |seconds: Option<u64>| seconds.map_or(DEFAULT_REFRESH_BEFORE, Duration::from_secs);
        let (credential, plugins, origins, allow_http) = match spec {
            ProviderSpec::Static { secret, plugins, origins, allow_http } => {
                let secret = read_secret(base, &secret).map_err(|reason| err(&field("secret"), reason))?;
                (Credential::Static { secret }, plugins, origins, allow_http)
            }
            ProviderSpec::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                private_key,
                key_id,
                refresh_before_s,
                plugins,
                origins,
                allow_http,
            } => {
                let (token_url, client_auth) =
                    client(&token_url, &client_id, (client_secret, private_key, key_id))?;
                let refresh_before = refresh_before(refresh_before_s);
                let credential =
                    Credential::OAuth2ClientCredentials { token_url, client_id, client_auth, refresh_before };
                (credential, plugins, origins, allow_http)
            }
            ProviderSpec::TokenExchange {
                token_url,
                client_id,
                client_secret,
                private_key,
                key_id,
                audience,
                resource,
                scopes,
                delegation,
                refresh_before_s,
                plugins,
                origins,
                allow_http,
            } => {
                let (token_url, client_auth) =
                    client(&token_url, &client_id, (client_secret, private_key, key_id))?;
                let credential = Credential::TokenExchange {
                    token_url,
                    client_id,
                    client_auth,
                    audience,
                    resource,
                    scopes,
                    delegation,
                    refresh_before: refresh_before(refresh_before_s),
                };
                (credential, plugins, origins, allow_http)
            }
            ProviderSpec::OAuth2AuthorizationCode {
                authorize_url,
                token_url,
                revoke_url,
                redirect_uri,
                client_id,
                client_secret,
                private_key,
                key_id,
                scopes,
                refresh_before_s,
                plugins,
                origins,
                allow_http,
            } => {
                let (token_url, client_auth) =
                    client(&token_url, &client_id, (client_secret, private_key, key_id))?;
                let url =
                    |key: &str, text: &str| token_endpoint(text).map_err(|reason| err(&field(key), reason));
                let authorize_url = url("authorize_url", &authorize_url)?;
                if authorize_url.query_pairs().any(|(k, _)| k == "state" || k == "code_challenge") {
                    return Err(err(
                        &field("authorize_url"),
                        "must not carry `state` or `code_challenge`".into(),
                    ));
                }
                let revoke_url = revoke_url.map(|u| url("revoke_url", &u)).transpose()?;
                let redirect_uri = redirect_uri.map(|u| url("redirect_uri", &u)).transpose()?;
                if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
                    return Err(err(&field("scopes"), format!("`{bad}` is not a scope")));
                }
                let credential = Credential::OAuth2AuthorizationCode(Box::new(AuthorizationCode {
                    authorize_url,
                    token_url,
                    revoke_url,
                    redirect_uri,
                    client_id,
                    client_auth,
                    scopes,
                    refresh_before: refresh_before(refresh_before_s),
                }));
                (credential, plugins, origins, allow_http)
            }
        };
        if plugins.len() > MAX_BINDINGS || origins.len() > MAX_BINDINGS {
            return Err(err(&field("plugins"), format!("at most {MAX_BINDINGS} plugins and origins")));
        }
        let origins = origins
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let origin = Origin::parse(text).ok_or_else(|| {
                    err(&field(&format!("origins[{i}]")), format!("`{text}` is not scheme://host[:port]"))
                })?;
                if origin.scheme == Scheme::Http && !allow_http {
                    return Err(err(
                        &field(&format!("origins[{i}]")),
                        format!(
                            "`{text}` is cleartext http: credentials go over https unless `allow_http: true`"
                        ),
                    ));
                }
                Ok(origin)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let provider = Provider { credential, plugins, origins };
        providers.insert(name, provider);
    }
    Ok(providers)
}

/// An endpoint of a provider: an http(s) URL with a host.
fn token_endpoint(text: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| format!("`{text}` is not an http(s) URL"))
}

/// A PKCS#8 PEM private key (RSA: RS256; P-256: ES256) for `private_key_jwt`.
fn signing_key(base: &Path, source: &SecretSource, kid: Option<String>) -> Result<SigningKey, String> {
    let pem = read_source(base, source)?;
    let parsed = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map(|key| (key, jsonwebtoken::Algorithm::RS256))
        .or_else(|_| {
            jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes())
                .map(|k| (k, jsonwebtoken::Algorithm::ES256))
        });
    // A public key, a certificate or another curve parses too: only a key
    // that signs is one.
    let signs = |(key, alg): &(jsonwebtoken::EncodingKey, jsonwebtoken::Algorithm)| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(*alg), &serde_json::json!({"probe": true}), key)
            .is_ok()
    };
    match parsed {
        Ok(found) if signs(&found) => Ok(SigningKey { key: found.0, alg: found.1, kid }),
        _ => Err("not a PEM private key that signs (RSA, or EC P-256)".into()),
    }
}

/// The text of a secret's file or variable (at most 16 KiB), trimmed.
fn read_source(base: &Path, source: &SecretSource) -> Result<String, String> {
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
    Ok(value.trim().to_owned())
}

fn read_secret(base: &Path, source: &SecretSource) -> Result<Secret, String> {
    let value = read_source(base, source)?;
    if value.is_empty() {
        return Err("the secret is empty".into());
    }
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err("the secret contains control characters".into());
    }
    Ok(Secret::new(value))
}

/// Whether `s` can name a provider: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn is_provider_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// The providers the host brokers: those of the providers file in force
/// ([`HostConfig::providers_file`]), or none.
pub fn load_configured(config: &crate::config::HostConfig) -> anyhow::Result<BTreeMap<String, Provider>> {
    let Some(file) = config.providers_file() else {
        tracing::info!("no providers file: no credentials are brokered");
        return Ok(BTreeMap::new());
    };
    let loaded = load(&file)?;
    tracing::info!(file = %file.display(), providers = ?loaded.keys().collect::<Vec<_>>(), "providers loaded");
    Ok(loaded)
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
            "providers:\n  ads-api:\n    kind: oauth2_client_credentials\n    token_url: http://127.0.0.1:1/token\n    client_id: c\n    client_secret: { file: secret }\n    plugins: [ads]\n  maps:\n    kind: static\n    secret: { file: secret }\n    plugins: [maps]\n    origins: [\"https://maps.example.com\"]\n",
        );
        let providers = load(&file).unwrap();
        let Credential::OAuth2ClientCredentials { client_auth: ClientAuth::Secret(client_secret), .. } =
            &providers["ads-api"].credential
        else {
            panic!()
        };
        assert!(providers["maps"].binds_plugin("maps") && !providers["maps"].binds_plugin("ads"));
        assert_eq!(client_secret.expose(), "s3cr3t-value");
        let printed = format!("{providers:?} {client_secret}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }

    #[test]
    fn token_exchange_providers_act_as_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s3cr3t");
        let file = write(
            dir.path(),
            "providers.yml",
            "providers:\n  crm:\n    kind: token_exchange\n    token_url: https://idp.example.com/token\n    client_id: fastmcp\n    client_secret: { file: secret }\n    audience: https://crm.example.com\n    scopes: [crm.read]\n    delegation: true\n    plugins: [crm]\n    origins: [\"https://crm.example.com\"]\n",
        );
        let providers = load(&file).unwrap();
        let Credential::TokenExchange { audience, scopes, delegation, .. } = &providers["crm"].credential
        else {
            panic!()
        };
        assert_eq!(
            (audience.as_deref(), scopes.as_slice(), *delegation),
            (Some("https://crm.example.com"), &["crm.read".to_owned()][..], true)
        );
        assert_eq!(providers["crm"].credential.kind(), "user");
        let bad = write(
            dir.path(),
            "bad.yml",
            "providers:\n  crm:\n    kind: token_exchange\n    token_url: nope\n    client_id: c\n    client_secret: { file: secret }\n    plugins: [crm]\n",
        );
        assert_eq!(load(&bad).unwrap_err().field, "providers.crm.token_url");
    }

    #[test]
    fn authorization_code_providers_are_the_users_own_accounts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s3cr3t");
        let provider = "providers:\n  ads-user:\n    kind: oauth2_authorization_code\n    authorize_url: https://ads.example.com/oauth/authorize\n    token_url: https://ads.example.com/oauth/token\n    revoke_url: https://ads.example.com/oauth/revoke\n    client_id: fastmcp\n    client_secret: { file: secret }\n    scopes: [campaigns.read]\n    plugins: [ads]\n    origins: [\"https://ads.example.com\"]\n";
        let providers = load(&write(dir.path(), "providers.yml", provider)).unwrap();
        let Credential::OAuth2AuthorizationCode(code) = &providers["ads-user"].credential else { panic!() };
        assert_eq!(code.authorize_url.as_str(), "https://ads.example.com/oauth/authorize");
        assert!(code.revoke_url.is_some() && code.redirect_uri.is_none());
        assert_eq!(providers["ads-user"].credential.kind(), "user");
        assert!(!format!("{providers:?}").contains("s3cr3t"));
        for (from, to, field) in [
            (
                "authorize_url: https://ads.example.com/oauth/authorize",
                "authorize_url: nope",
                "providers.ads-user.authorize_url",
            ),
            (
                "authorize_url: https://ads.example.com/oauth/authorize",
                "authorize_url: https://ads.example.com/oauth/authorize?state=fixed",
                "providers.ads-user.authorize_url",
            ),
            (
                "revoke_url: https://ads.example.com/oauth/revoke",
                "revoke_url: ftp://x",
                "providers.ads-user.revoke_url",
            ),
            ("scopes: [campaigns.read]", "scopes: [\"two words\"]", "providers.ads-user.scopes"),
        ] {
            let bad = write(dir.path(), "bad.yml", &provider.replace(from, to));
            assert_eq!(load(&bad).unwrap_err().field, field, "{to}");
        }
    }

    #[test]
    fn a_client_authenticates_with_a_secret_or_a_private_key() {
        use p256::pkcs8::EncodePrivateKey as _;
        let dir = tempfile::tempdir().unwrap();
        let key = p256::SecretKey::random(&mut rand::thread_rng());
        write(dir.path(), "client.pem", &key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap());
        write(dir.path(), "secret", "s3cr3t");
        use p256::pkcs8::EncodePublicKey as _;
        write(
            dir.path(),
            "public.pem",
            &key.public_key().to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap(),
        );
        write(dir.path(), "garbage.pem", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n");
        let provider = |auth: &str| {
            format!(
                "providers:\n  crm:\n    kind: token_exchange\n    token_url: https://idp.example.com/token\n    client_id: fastmcp\n{auth}    plugins: [crm]\n"
            )
        };
        let file =
            write(dir.path(), "p.yml", &provider("    private_key: { file: client.pem }\n    key_id: k1\n"));
        let providers = load(&file).unwrap();
        let Credential::TokenExchange { client_auth: ClientAuth::PrivateKeyJwt(key), .. } =
            &providers["crm"].credential
        else {
            panic!()
        };
        assert_eq!((key.alg, key.kid.as_deref()), (jsonwebtoken::Algorithm::ES256, Some("k1")));
        assert!(!format!("{providers:?}").contains("PRIVATE"));
        for (auth, field) in [
            ("", "providers.crm.client_secret"),
            (
                "    client_secret: { file: secret }\n    private_key: { file: client.pem }\n",
                "providers.crm.client_secret",
            ),
            ("    private_key: { file: garbage.pem }\n", "providers.crm.private_key"),
            ("    private_key: { file: secret }\n", "providers.crm.private_key"),
            ("    private_key: { file: public.pem }\n", "providers.crm.private_key"),
        ] {
            let file = write(dir.path(), "bad.yml", &provider(auth));
            assert_eq!(load(&file).unwrap_err().field, field, "{auth}");
        }
    }

    #[test]
    fn inline_secrets_unknown_kinds_and_missing_sources_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (text, field) in [
            ("providers:\n  a:\n    kind: static\n    secret: inline\n    plugins: [p]\n", "providers.a"),
            ("providers:\n  a:\n    kind: static\n    secret: { env: HOME }\n", "providers.a"),
            (
                "providers:\n  a:\n    kind: static\n    secret: { env: HOME }\n    plugins: [p]\n    origins: [\"http://api.example.com\"]\n",
                "providers.a.origins[0]",
            ),
            (
                "providers:\n  a:\n    kind: static\n    secret: { env: HOME }\n    plugins: [p]\n    origins: [\"https://api.example.com/path\"]\n",
                "providers.a.origins[0]",
            ),
            ("providers:\n  a:\n    kind: magic\n", "providers.a"),
            (
                "providers:\n  a:\n    kind: static\n    secret: { env: FASTMCP_TEST_UNSET_VAR }\n    plugins: [p]\n",
                "providers.a.secret",
            ),
            (
                "providers:\n  a:\n    kind: static\n    secret: { file: missing }\n    plugins: [p]\n",
                "providers.a.secret",
            ),
            (
                "providers:\n  a:\n    kind: oauth2_client_credentials\n    token_url: ftp://x\n    client_id: c\n    client_secret: { file: missing }\n    plugins: [p]\n",
                "providers.a.token_url",
            ),
        ] {
            let file = write(dir.path(), "providers.yml", text);
            let e = load(&file).unwrap_err();
            assert!(e.field.starts_with(field), "{text}: {e}");
        }
    }
}
