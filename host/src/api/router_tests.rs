//! Handlers through the router in process (`Router::oneshot`): no socket,
//! no plugin build — the quick checks of routing and rendering.

use super::router;
use crate::{AppState, HostConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

async fn app() -> (axum::Router, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("manifests")).unwrap();
    let mut config = HostConfig::for_root(root.path());
    config.reload.watch = false;
    let state = AppState::start(config).await.unwrap();
    (router(state), root)
}

async fn send(app: &axum::Router, method: &str, uri: &str) -> (StatusCode, Option<String>, Value) {
    let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert!(response.headers().contains_key("x-correlation-id"), "{uri}");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn routes_render_the_contract() {
    let (app, _root) = app().await;
    let (status, _, body) = send(&app, "GET", "/health").await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({"status": "ok"})));
    let (status, _, body) = send(&app, "GET", "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["openapi"].as_str().unwrap().starts_with("3.1"));
    for (method, uri, status, code) in [
        ("GET", "/nope", StatusCode::NOT_FOUND, "not_found"),
        ("GET", "/metrics", StatusCode::NOT_FOUND, "not_found"),
        ("DELETE", "/health", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("POST", "/tools/util:echo/invoke", StatusCode::UNAUTHORIZED, "unauthenticated"),
        ("GET", "/tool-catalog", StatusCode::UNAUTHORIZED, "unauthenticated"),
    ] {
        let (got, content_type, body) = send(&app, method, uri).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{method} {uri}: {body}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{method} {uri}");
    }
}
