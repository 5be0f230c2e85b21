//! What is wrong with a plugin is named before any call, with file and
//! field, by `fastmcp plugin check` and identically by the host at load and
//! reload: a manifest tool the component does not implement (a component
//! tool the manifest does not describe is only not served), a component
//! built against another
//! contract version, one that lacks a function, or imports the host does
//! not provide.

use super::{fastmcp, text};
use crate::harness::{TestRoot, TestServer, eventually, json, plugin_bytes};
use std::time::Duration;

const UTIL: &str = "plugin: util\nversion: 1.0.0\ncomponent: plugins/util/util.wasm\ntools:\n";

fn tool(name: &str) -> String {
    format!("  - name: {name}\n    input_schema: {{ type: object }}\n")
}

/// `fastmcp plugin check` on the root's `manifests/util.yaml`: must be
/// rejected with each of `expected` in the message.
fn rejected_by_check(root: &TestRoot, expected: &[&str]) {
    let output = fastmcp(root.path(), &["plugin", "check", "manifests/util.yaml"]);
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("rejected: "), "{printed}");
    for part in expected {
        assert!(printed.contains(part), "expected `{part}` in {printed}");
    }
}

fn util_root(manifest: String, component: Vec<u8>) -> TestRoot {
    let root = TestRoot::empty();
    root.write("plugins/util/util.wasm", component);
    root.write("manifests/util.yaml", manifest);
    root
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_the_component_does_not_implement_is_named() {
    let manifest = format!("{UTIL}{}{}{}", tool("echo"), tool("sha256"), tool("shout"));
    let expected = "util.yaml: tools[2].name: the component does not implement `shout` (it declares: [`echo`, `sha256`])";
    let root = util_root(manifest, plugin_bytes("util"));
    rejected_by_check(&root, &[expected]);
    let error = fastmcp_host::AppState::start(root.config()).await.err().expect("refused").to_string();
    assert!(error.contains(expected), "the host says the same at load: {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_may_expose_fewer_tools_than_the_component_implements() {
    let root = util_root(format!("{UTIL}{}{}", tool("echo"), tool("sha256")), plugin_bytes("util"));
    root.write("policies/policies.yml", "version: 1\nroles:\n  tester: { tools: [\"util:*\"] }\n");
    let server = TestServer::start(&root).await;
    assert_eq!(server.invoke("util:sha256", serde_json::json!({"text": "a"})).await.status(), 200);
    // The operator withdraws `sha256`: the manifest no longer describes it.
    root.write("manifests/util.yaml", format!("{UTIL}{}", tool("echo")));
    eventually("sha256 is withdrawn", Duration::from_secs(30), || async {
        (server.invoke("util:sha256", serde_json::json!({"text": "a"})).await.status() == 404).then_some(())
    })
    .await;
    let (status, _) = json(server.invoke("util:echo", serde_json::json!({"msg": "still"})).await).await;
    assert_eq!(status, 200);
    // `check` loads it and says what is not exposed.
    let output = fastmcp(root.path(), &["plugin", "check", "manifests/util.yaml"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(
            "not exposed (the component implements them, the manifest does not describe them): [sha256]"
        ),
        "{}",
        text(&output)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn components_for_another_contract_are_named_by_what_differs() {
    let component = |wat: &str| wat::parse_str(wat).unwrap();
    let cases = [
        (
            component(r#"(component (instance $t) (export "fastmcp:plugin/tools@0.3.0" (instance $t)))"#),
            "it exports `fastmcp:plugin/tools@0.3.0`: it was built against `fastmcp:plugin@0.3.0`, and this host implements 0.1.0 and 0.2.0",
        ),
        (
            component(r#"(component (instance $t) (export "fastmcp:plugin/tools@0.2.0" (instance $t)))"#),
            "its export `fastmcp:plugin/tools@0.2.0` lacks the function `declare` (it has: [])",
        ),
        (
            component(r#"(component (instance $t) (export "acme:tools/run@1.0.0" (instance $t)))"#),
            "it does not export `fastmcp:plugin/tools` (its exports: [acme:tools/run@1.0.0])",
        ),
        (
            component(r#"(component (import "acme:secret/vault@1.0.0" (instance (export "get" (func)))))"#),
            "it imports `acme:secret/vault@1.0.0`, which the host does not provide",
        ),
    ];
    for (bytes, expected) in cases {
        let root = util_root(format!("{UTIL}{}", tool("echo")), bytes);
        rejected_by_check(
            &root,
            &["util.yaml: component: ", "does not implement the `fastmcp:plugin` world: ", expected],
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_reports_the_mismatch_and_keeps_serving() {
    let root = util_root(format!("{UTIL}{}{}", tool("echo"), tool("sha256")), plugin_bytes("util"));
    root.write("policies/policies.yml", "version: 1\nroles:\n  tester: { tools: [\"*\"] }\n");
    let server = TestServer::start(&root).await;
    root.write("manifests/util.yaml", format!("{UTIL}{}{}{}", tool("echo"), tool("sha256"), tool("shout")));
    let error = eventually("the reload is rejected", Duration::from_secs(30), || async {
        let (_, health) = json(server.get("/health").await).await;
        health["reload"]["error"].as_str().map(str::to_owned)
    })
    .await;
    assert!(error.contains("tools[2].name: the component does not implement `shout`"), "{error}");
    let (status, body) = json(server.invoke("util:echo", serde_json::json!({"a": 1})).await).await;
    assert_eq!(status, 200, "the previous registry keeps serving: {body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declare_that_never_returns_is_stopped_at_the_manifests_deadline() {
    let root = TestRoot::empty();
    let new = fastmcp(root.path(), &["plugin", "new", "stuck", "--lang", "python"]);
    assert!(new.status.success(), "{}", text(&new));
    let app = root.path().join("plugins/stuck/app.py");
    let source = std::fs::read_to_string(&app).unwrap();
    let looping =
        source.replace("return [ToolDeclaration(\"hello\", None)]", "while True:\n            pass");
    assert_ne!(looping, source, "the template's declare was found");
    std::fs::write(&app, looping).unwrap();
    let manifest = root.path().join("manifests/stuck.yaml");
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text_of.replace("timeout_ms: 5000", "timeout_ms: 300")).unwrap();
    assert!(fastmcp(root.path(), &["plugin", "build", "stuck"]).status.success());

    let output = fastmcp(root.path(), &["plugin", "check", "manifests/stuck.yaml"]);
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(
        printed.contains("stuck.yaml: component: `declare` failed: deadline of 300 ms exceeded"),
        "{printed}"
    );
}

#[test]
fn a_javascript_syntax_error_is_named_by_file_line_and_column() {
    let root = TestRoot::empty();
    let new = fastmcp(root.path(), &["plugin", "new", "broken", "--lang", "js"]);
    assert!(new.status.success(), "{}", text(&new));
    let app = root.path().join("plugins/broken/app.js");
    let source = std::fs::read_to_string(&app).unwrap();
    let line = source.lines().position(|l| l.contains("const args = JSON.parse(argsJson);")).unwrap() + 1;
    std::fs::write(
        &app,
        source.replace("const args = JSON.parse(argsJson);", "const args = JSON.parse(argsJson;"),
    )
    .unwrap();
    let build = fastmcp(root.path(), &["plugin", "build", "broken"]);
    let printed = text(&build);
    assert!(!build.status.success(), "{printed}");
    let expected = format!("{}:{line}:", app.display());
    assert!(printed.contains(&expected), "`{expected}` in {printed}");
    assert!(printed.contains("has syntax errors"), "{printed}");
    assert!(!root.path().join("plugins/broken/broken.wasm").exists(), "nothing was put in place");
}
