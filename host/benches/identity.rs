//! Identity and policy costs per call:
//!
//! - `jwt_verify_uncached`: RS256 signature and claims check (cache disabled);
//! - `jwt_verify_cached`: the same token served from the verified-token cache;
//! - `policy_evaluate_*`: the sample policy deciding `ads:createCampaign`
//!   (RBAC plus three CEL rules) and `util:echo` (RBAC only).

use axum::http::HeaderValue;
use criterion::{Criterion, criterion_group, criterion_main};
use fastmcp_host::Principal;
use fastmcp_host::auth::Authenticator;
use fastmcp_host::auth::devkeys::{DevKeyFiles, dev_claims};
use fastmcp_host::config::AuthConfig;
use fastmcp_host::internals::PolicySet;
use fastmcp_host::internals::{Manifest, ManifestBounds};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = DevKeyFiles::in_dir(dir.path());
    files.ensure().unwrap();
    let claims = dev_claims(
        "https://idp.local",
        "fastmcp",
        "agent-1",
        "public",
        vec!["finance-write".into()],
        vec!["tools.invoke:write".into(), "ads.write".into()],
        Duration::from_secs(3600),
    );
    let header = HeaderValue::from_str(&format!("Bearer {}", files.mint(&claims).unwrap())).unwrap();

    for (name, cache_size) in [("jwt_verify_uncached", 0), ("jwt_verify_cached", 1000)] {
        let config = AuthConfig { token_cache_size: cache_size, ..AuthConfig::default() };
        let auth: Authenticator = tokio.block_on(Authenticator::start(config, dir.path())).unwrap();
        c.bench_function(name, |b| {
            b.to_async(&tokio).iter(|| async { auth.authenticate(Some(&header)).await.unwrap() })
        });
    }

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let policy = PolicySet::load(&workspace.join("policies/policies.yml")).unwrap();
    let bounds = ManifestBounds { max_memory_mb: 1024, max_timeout_ms: 60_000 };
    let ads = Manifest::load(&workspace.join("manifests/ads.yaml"), bounds).unwrap();
    let util = Manifest::load(&workspace.join("manifests/util.yaml"), bounds).unwrap();
    let create = ads.tools.iter().find(|t| t.name == "createCampaign").unwrap();
    let echo = util.tools.iter().find(|t| t.name == "echo").unwrap();
    let principal = Principal {
        sub: "agent-1".into(),
        tenant: "public".into(),
        roles: vec!["finance-write".into()],
        scopes: vec!["tools.invoke:write".into(), "ads.write".into()],
    };
    let args = json!({"name": "LaunchX", "budget": 1200, "startDate": "2025-10-10"});
    c.bench_function("policy_evaluate_create_campaign", |b| {
        b.iter(|| policy.decide(&principal, create, &args, 1_800_000_000_000, "service"))
    });
    c.bench_function("policy_evaluate_echo", |b| {
        b.iter(|| policy.decide(&principal, echo, &json!({}), 1_800_000_000_000, "none"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
