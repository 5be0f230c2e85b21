//! Startup: the compile cache survives a restart, and bad manifests or
//! components stop the host with an error naming file, field and reason.

use crate::harness::{TestRoot, TestServer, json, plugin_bytes};
use fastmcp_host::AppState;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_components_from_the_compile_cache() {
    let root = TestRoot::new();
    let first = TestServer::start_with(private_cache(&root)).await;
    let (_, health) = json(first.get("/health").await).await;
    assert_eq!(health["runtime"]["compile_cache_misses"], 3);
    assert_eq!(health["runtime"]["compile_cache_hits"], 0);
    first.stop().await;

    let cached = std::fs::read_dir(root.path().join(".runtime/cache")).unwrap().count();
    assert_eq!(cached, 3, "one precompiled file per component, no temporaries left");

    let second = TestServer::start_with(private_cache(&root)).await;
    let (_, health) = json(second.get("/health").await).await;
    assert_eq!(health["runtime"]["compile_cache_hits"], 3);
    assert_eq!(health["runtime"]["compile_cache_misses"], 0);
    let (status, _) = json(second.invoke("util:echo", json!({"x": 1})).await).await;
    assert_eq!(status, 200, "a cached component runs");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_cache_entry_is_recompiled() {
    let root = TestRoot::new();
    TestServer::start_with(private_cache(&root)).await.stop().await;
    for entry in std::fs::read_dir(root.path().join(".runtime/cache")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let server = TestServer::start_with(private_cache(&root)).await;
    let (_, health) = json(server.get("/health").await).await;
    assert_eq!(health["runtime"]["compile_cache_misses"], 3);
    assert_eq!(json(server.invoke("util:echo", json!({})).await).await.0, 200);
    server.stop().await;
}

/// The root's configuration with its own compile cache (`.runtime/cache`),
/// not the one the test hosts share.
fn private_cache(root: &TestRoot) -> fastmcp_host::HostConfig {
    let mut config = root.config();
    config.runtime.compile_cache_dir = None;
    config
}

/// Start a host on `root` and return its startup error.
async fn startup_error(root: &TestRoot) -> String {
    match AppState::start(root.config()).await {
        Ok(_) => panic!("the host started with a bad root"),
        Err(e) => format!("{e:#}"),
    }
}

const UTIL_MANIFEST: &str = "plugin: util\nversion: 1.0.0\ncomponent: plugins/util/util.wasm\ntools:\n  - name: echo\n    input_schema: { type: object }\n  - name: sha256\n    input_schema: { type: object }\n";

#[tokio::test(flavor = "multi_thread")]
async fn bad_manifests_are_rejected_with_file_and_field() {
    let cases = [
        (
            UTIL_MANIFEST.replace("tools:", "colour: blue\ntools:"),
            "util.yaml: colour: unknown field `colour`",
        ),
        (
            UTIL_MANIFEST.replace("{ type: object }", "{ type: object, minProperties: -1 }"),
            "util.yaml: tools[0].input_schema/minProperties: invalid JSON Schema",
        ),
        (
            UTIL_MANIFEST.replace("plugins/util/util.wasm", "plugins/util/missing.wasm"),
            "util.yaml: component: cannot read component",
        ),
        (
            UTIL_MANIFEST.replace("version: 1.0.0\n", "version: 1.0.0\nlimits: { memory_mb: 99999 }\n"),
            "util.yaml: limits.memory_mb: 99999",
        ),
    ];
    for (manifest, expected) in cases {
        let root = TestRoot::empty();
        root.write("plugins/util/util.wasm", plugin_bytes("util"));
        root.write("manifests/util.yaml", manifest);
        let error = startup_error(&root).await;
        assert!(error.contains(expected), "expected `{expected}` in `{error}`");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_plugins_are_rejected() {
    let root = TestRoot::empty();
    root.write("plugins/util/util.wasm", plugin_bytes("util"));
    root.write("manifests/a.yaml", UTIL_MANIFEST);
    root.write("manifests/b.yml", UTIL_MANIFEST);
    let error = startup_error(&root).await;
    assert!(error.contains("b.yml: plugin: `util` is already declared by"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn components_must_be_valid_and_implement_the_world() {
    let not_wasm = b"definitely not wasm".to_vec();
    let core_module = wat::parse_str("(module)").unwrap();
    let other_world = wat::parse_str("(component)").unwrap();
    let wrong_import =
        wat::parse_str(r#"(component (import "acme:secret/vault@1.0.0" (instance (export "get" (func)))))"#)
            .unwrap();
    for (bytes, reason) in [
        (not_wasm, "not a valid WebAssembly component"),
        (core_module, "not a valid WebAssembly component"),
        (
            other_world,
            "does not implement the `fastmcp:plugin` world: it does not export `fastmcp:plugin/tools`",
        ),
        (wrong_import, "it imports `acme:secret/vault@1.0.0`, which the host does not provide"),
    ] {
        let root = TestRoot::empty();
        root.write("plugins/util/util.wasm", bytes);
        root.write("manifests/util.yaml", UTIL_MANIFEST);
        let error = startup_error(&root).await;
        assert!(error.contains("util.yaml: component:"), "{error}");
        assert!(error.contains(reason), "expected `{reason}` in `{error}`");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_root_serves_an_empty_catalog() {
    let root = TestRoot::empty();
    let server = TestServer::start(&root).await;
    let (status, body) = json(server.get("/tool-catalog").await).await;
    assert_eq!((status, body["tools"].as_array().unwrap().len()), (200, 0));
    server.stop().await;
}
