//! Per-request overhead of brokering and the allowlist:
//!
//! - `broker_credential/cached`: a credential from the token cache (the
//!   injection path of every outbound request after the first);
//! - `broker_credential/fetch`: a fresh OAuth client-credentials fetch from
//!   the development upstream on loopback (what the cache saves);
//! - `allowlist_match`: matching a request origin against a four-entry
//!   `network.allow`.

use criterion::{Criterion, criterion_group, criterion_main};
use fastmcp_dev_upstream::{DEV_CLIENT_ID, DevUpstream, DevUpstreamConfig};
use fastmcp_host::broker::providers::{Credential, Provider, Secret};
use fastmcp_host::broker::{Broker, BrokerConfig, Grant};
use fastmcp_host::clock::Clock;
use fastmcp_host::internals::{Origin, OriginPattern};
use std::collections::BTreeMap;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let secret = Secret::new("bench-client-secret".into());
    let upstream = DevUpstream::new(DevUpstreamConfig {
        token_ttl: Duration::from_secs(1),
        max_live_tokens: usize::MAX,
        ..DevUpstreamConfig::new(fastmcp_dev_upstream::Secret::new(secret.expose().to_owned()))
    });
    let listener = tokio.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio.spawn(upstream.serve(listener, std::future::pending()));
    let credential = Credential::OAuth2ClientCredentials {
        token_url: reqwest::Url::parse(&format!("http://{addr}/oauth/token")).unwrap(),
        client_id: DEV_CLIENT_ID.into(),
        client_auth: fastmcp_host::broker::providers::ClientAuth::Secret(secret),
        refresh_before: Duration::from_secs(30),
    };
    let provider = Provider { credential, plugins: vec!["ads".into()], origins: Vec::new() };
    let providers = BTreeMap::from([("ads-api".to_owned(), provider)]);
    let clock = Clock::default();
    let broker = Broker::new(providers, BrokerConfig::default(), clock.clone());
    let grant = Grant { provider: "ads-api".into(), scopes: vec!["campaigns.read".into()], inject: None };

    tokio.block_on(broker.credential(&grant, None)).unwrap();
    c.bench_function("broker_credential/cached", |b| {
        b.to_async(&tokio).iter(|| async { broker.credential(&grant, None).await.unwrap() })
    });
    c.bench_function("broker_credential/fetch", |b| {
        b.to_async(&tokio).iter(|| async {
            // Past the refresh margin: every iteration fetches.
            clock.advance(Duration::from_secs(3600));
            broker.credential(&grant, None).await.unwrap()
        })
    });

    let allow: Vec<OriginPattern> = [
        "https://api.example.com",
        "https://*.googleapis.com",
        "http://127.0.0.1:8001",
        "https://ads.example.com",
    ]
    .iter()
    .map(|p| OriginPattern::parse(p).unwrap())
    .collect();
    let origin = Origin::of_uri(&"https://ads.example.com/v1/campaigns?limit=10".parse().unwrap()).unwrap();
    c.bench_function("allowlist_match", |b| {
        b.iter(|| allow.iter().any(|p| p.matches(std::hint::black_box(&origin))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
