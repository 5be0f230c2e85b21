//! From nothing to a served tool, per language, as the README's "Writing a
//! plugin" says: `fastmcp plugin new` → `fastmcp plugin build` → the running
//! host serves the new tool once the printed grant is in the policy. The
//! wall time of each path is printed (toolchain installs excluded, as they
//! happen once per checkout); benchmarks, not this test, judge it.

use super::{fastmcp, grant, text};
use crate::harness::{TestRoot, TestServer, eventually, json, workspace};
use serde_json::json;
use std::time::{Duration, Instant};

/// The commands the README gives, in its order, for plugin `NAME`.
const README_STEPS: [&str; 3] = [
    "fastmcp plugin new NAME --lang LANG",
    "fastmcp plugin build NAME",
    "fastmcp plugin check manifests/NAME.yaml",
];

async fn new_build_serve(lang: &str, name: &str) {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    for step in README_STEPS {
        let step = step.replace("NAME", "hello").replace("LANG", lang);
        assert!(readme.contains(&step), "the README's Writing a plugin shows `{step}`");
    }
    let root = TestRoot::empty();
    root.write("policies/policies.yml", "version: 1\nroles:\n");
    let server = TestServer::start(&root).await;
    let started = Instant::now();

    let new = fastmcp(root.path(), &["plugin", "new", name, "--lang", lang]);
    assert!(new.status.success());
    let printed = text(&new);
    assert!(printed.contains(&format!("fastmcp plugin build {name}")), "{printed}");
    if lang == "rust" {
        let lockfile =
            std::fs::read_to_string(root.path().join(format!("plugins/{name}/Cargo.lock"))).unwrap();
        assert!(lockfile.contains(&format!("name = \"{name}\"")), "a lockfile for the new crate: {lockfile}");
    }
    grant(root.path(), &printed);

    let build = fastmcp(root.path(), &["plugin", "build", name]);
    assert!(build.status.success(), "{}", text(&build));
    let check = fastmcp(root.path(), &["plugin", "check", &format!("manifests/{name}.yaml")]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("fastmcp:plugin@0.2.0"), "{}", text(&check));

    let token = server.token_for("author", "public", &[&format!("{name}-user")], &["tools.invoke:write"]);
    let tool = format!("{name}:hello");
    let body = eventually("the new tool answers", Duration::from_secs(240), || async {
        let (status, body) = json(server.invoke_as(&token, &tool, json!({"name": "Ada"})).await).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(body["result"], json!({"message": "Hello, Ada!"}));
    eprintln!("{lang}: new → build → serving in {:.1} s", started.elapsed().as_secs_f64());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_python_plugin_builds_and_serves() {
    new_build_serve("python", "hello").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_javascript_plugin_builds_and_serves() {
    new_build_serve("js", "hello").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_rust_plugin_builds_outside_the_workspace_and_serves() {
    new_build_serve("rust", "hello").await;
}
