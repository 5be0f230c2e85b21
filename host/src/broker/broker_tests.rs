//! The broker against a real token endpoint (the development upstream on a
//! loopback port): grants, caching until shortly before expiry, single-flight
//! refreshes, failure back-off, static keys.

use super::providers::{Credential, Provider, Secret};
use super::*;
use fastmcp_dev_upstream::{DEV_CLIENT_ID, DevUpstream, DevUpstreamConfig};
use std::sync::atomic::Ordering;

const SECRET: &str = "unit-test-client-secret";

async fn upstream(token_ttl: Duration) -> (Arc<DevUpstream>, std::net::SocketAddr) {
    let upstream = DevUpstream::new(DevUpstreamConfig {
        token_ttl,
        ..DevUpstreamConfig::new(fastmcp_dev_upstream::Secret::new(SECRET.into()))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(upstream.clone().serve(listener, std::future::pending()));
    (upstream, addr)
}

fn oauth(addr: std::net::SocketAddr, secret: &str) -> Provider {
    bound(Credential::OAuth2ClientCredentials {
        token_url: reqwest::Url::parse(&format!("http://{addr}/oauth/token")).unwrap(),
        client_id: DEV_CLIENT_ID.into(),
        client_auth: providers::ClientAuth::Secret(Secret::new(secret.into())),
        refresh_before: Duration::from_secs(30),
    })
}

fn bound(credential: Credential) -> Provider {
    Provider { credential, plugins: vec!["p".into()], origins: Vec::new() }
}

fn broker(providers: Vec<(&str, Provider)>, clock: &Clock) -> Broker {
    let providers = providers.into_iter().map(|(n, p)| (n.to_owned(), p)).collect();
    Broker::new(providers, BrokerConfig::default(), clock.clone())
}

fn grant(provider: &str, scopes: &[&str]) -> Grant {
    Grant { provider: provider.into(), scopes: scopes.iter().map(|s| s.to_string()).collect(), inject: None }
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn tokens_are_cached_until_shortly_before_they_expire() {
    let (upstream, addr) = upstream(Duration::from_secs(300)).await;
    let clock = Clock::default();
    let broker = broker(vec![("ads-api", oauth(addr, SECRET))], &clock);
    let grants = [grant("ads-api", &["campaigns.read", "campaigns.write"])];
    let read = scopes(&["campaigns.read"]);

    let first = broker.token_for_plugin(&grants, "ads-api", &read).await.unwrap();
    let again = broker.token_for_plugin(&grants, "ads-api", &read).await.unwrap();
    assert_eq!(first.value, again.value);
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 1);
    // 300 s tokens are served for 270 s (30 s refresh margin).
    assert!(first.expires_in.unwrap() <= Duration::from_secs(270));

    clock.advance(Duration::from_secs(269));
    broker.token_for_plugin(&grants, "ads-api", &read).await.unwrap();
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 1, "still inside the margin");
    clock.advance(Duration::from_secs(2));
    let refreshed = broker.token_for_plugin(&grants, "ads-api", &read).await.unwrap();
    assert_ne!(refreshed.value, first.value);
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 2);

    // Another scope set is another token.
    broker.token_for_plugin(&grants, "ads-api", &scopes(&["campaigns.write"])).await.unwrap();
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_fetch() {
    let (upstream, addr) = upstream(Duration::from_secs(300)).await;
    let broker = Arc::new(broker(vec![("ads-api", oauth(addr, SECRET))], &Clock::default()));
    let grant = grant("ads-api", &["campaigns.read"]);
    let calls = (0..32).map(|_| {
        let (broker, grant) = (broker.clone(), grant.clone());
        tokio::spawn(async move { broker.credential(&grant, None).await.unwrap().fingerprint })
    });
    let mut fingerprints = Vec::new();
    for call in calls {
        fingerprints.push(call.await.unwrap());
    }
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 1);
    assert_eq!(broker.fetches().get(), 1);
}

#[tokio::test]
async fn a_failing_provider_is_not_hammered() {
    let (upstream, addr) = upstream(Duration::from_secs(300)).await;
    let clock = Clock::default();
    let broker = broker(vec![("ads-api", oauth(addr, "wrong-secret"))], &clock);
    let grant = grant("ads-api", &["campaigns.read"]);
    for _ in 0..5 {
        let error = broker.credential(&grant, None).await.err().unwrap();
        assert!(matches!(&error, BrokerError::Unavailable(m) if m.contains("401")), "{error}");
        assert!(!error.to_string().contains("wrong-secret"));
    }
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 1, "one fetch per back-off window");
    clock.advance(Duration::from_secs(2));
    broker.credential(&grant, None).await.err().unwrap();
    assert_eq!(upstream.stats.token_requests.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn grants_bound_every_answer() {
    let clock = Clock::default();
    let key = Secret::new("static-api-key".into());
    let broker = broker(vec![("maps", bound(Credential::Static { secret: key.clone() }))], &clock);
    let grants = [grant("maps", &["read"])];

    let refused = |e: BrokerError| matches!(e, BrokerError::NotGranted(_));
    assert!(refused(broker.token_for_plugin(&[], "maps", &[]).await.err().unwrap()), "no grant");
    let extra = broker.token_for_plugin(&grants, "maps", &scopes(&["write"])).await.err().unwrap();
    assert!(matches!(&extra, BrokerError::NotGranted(m) if m.contains("`write`")), "{extra}");
    // A static key is injected, never handed to a plugin.
    let handed = broker.token_for_plugin(&grants, "maps", &scopes(&["read"])).await.err().unwrap();
    assert!(matches!(&handed, BrokerError::NotGranted(m) if m.contains("static key")), "{handed}");
    let injected = broker.credential(&grants[0], None).await.unwrap();
    assert_eq!(injected.value, key);
    assert_eq!(injected.fingerprint, fingerprint(&key));
    assert!(injected.fingerprint.starts_with("sha256:") && injected.fingerprint.len() == 19);
}
