//! Hot reload: manifests, components and policies change what is served
//! within a second; broken inputs change nothing but `/health` and the audit
//! trail; no call fails because of a reload.

use crate::harness::{TestRoot, TestServer, json, plugin_bytes};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The harness's polling helper for a yes/no condition, within 5 s.
async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    crate::harness::eventually(what, Duration::from_secs(5), || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await
}

async fn tool_ids(server: &TestServer) -> Vec<String> {
    let (_, body) = json(server.get("/tool-catalog").await).await;
    body["tools"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

async fn health(server: &TestServer) -> Value {
    json(server.get("/health").await).await.1
}

const EXTRA: &str = "plugin: extra\nversion: 1.0.0\ncomponent: plugins/util/util.wasm\ntools:\n  - name: echo\n    input_schema: { type: object }\n  - name: sha256\n    input_schema: { type: object }\n";

#[tokio::test(flavor = "multi_thread")]
async fn manifests_are_added_broken_fixed_and_removed() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let has = |id: &'static str| {
        let server = &server;
        move || async move { tool_ids(server).await.contains(&id.to_owned()) }
    };

    root.write("manifests/extra.yaml", EXTRA);
    eventually("extra:echo appears", has("extra:echo")).await;
    assert_eq!(json(server.invoke("extra:echo", json!({"a": 1})).await).await.0, 200);

    // Broken: the previous registry keeps serving; /health says why.
    root.write("manifests/extra.yaml", EXTRA.replace("tools:", "colour: red\ntools:"));
    eventually("the broken reload is reported", || async { health(&server).await["reload"]["ok"] == false })
        .await;
    let report = health(&server).await["reload"].clone();
    assert!(report["error"].as_str().unwrap().contains("extra.yaml: colour: unknown field"), "{report}");
    assert_eq!(report["files"], json!(["manifests/extra.yaml"]));
    assert_eq!(json(server.invoke("extra:echo", json!({})).await).await.0, 200, "still serving");

    // Fixed, with a tool described anew.
    let fixed = EXTRA.replace("  - name: sha256\n", "  - name: sha256\n    description: digest of a text\n");
    root.write("manifests/extra.yaml", fixed);
    eventually("the new description serves", || async {
        let (_, catalog) = json(server.get("/tool-catalog").await).await;
        catalog["tools"].as_array().unwrap().iter().any(|t| t["description"] == "digest of a text")
    })
    .await;
    assert_eq!(health(&server).await["reload"]["ok"], true);

    std::fs::remove_file(root.path().join("manifests/extra.yaml")).unwrap();
    eventually("extra tools disappear", || async {
        !tool_ids(&server).await.iter().any(|t| t.starts_with("extra:"))
    })
    .await;
    let body =
        crate::harness::problem(server.invoke("extra:echo", json!({})).await, 404, "tool_not_found").await;
    assert!(body["detail"].as_str().unwrap().contains("extra:echo"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn components_are_replaced_in_place() {
    let root = TestRoot::new();
    // A plugin whose component starts as `netprobe` (which has no `readEnv`;
    // a 0.1.0 component, so its tools are not checked at load).
    root.write("plugins/swap/swap.wasm", plugin_bytes("netprobe"));
    root.write(
        "manifests/swap.yaml",
        "plugin: swap\nversion: 1.0.0\ncomponent: plugins/swap/swap.wasm\ntools:\n  - name: readEnv\n    input_schema: { type: object }\n",
    );
    let server = TestServer::start(&root).await;
    assert_eq!(json(server.invoke("swap:readEnv", json!({})).await).await.0, 502);

    // Garbage: the old component keeps serving.
    root.write("plugins/swap/swap.wasm", b"not a component at all");
    eventually("the garbage is rejected", || async { health(&server).await["reload"]["ok"] == false }).await;
    let error = health(&server).await["reload"]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("swap.yaml: component:") && error.contains("not a valid"), "{error}");
    assert_eq!(json(server.invoke("swap:readEnv", json!({})).await).await.0, 502, "old code serves");

    // A new valid version, written by rename like a build tool: new behaviour.
    root.write("plugins/swap/.swap.wasm.tmp", plugin_bytes("misbehave"));
    std::fs::rename(
        root.path().join("plugins/swap/.swap.wasm.tmp"),
        root.path().join("plugins/swap/swap.wasm"),
    )
    .unwrap();
    eventually("the new component serves", || async {
        json(server.invoke("swap:readEnv", json!({})).await).await.0 == 200
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_reload_on_change_and_keep_the_last_good() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let analyst =
        server.token_for("a", "public", &["analyst"], &["tools.query:catalog", "tools.invoke:write"]);
    let analyst_tools = || async {
        let response =
            server.client().get(server.url("/tool-catalog")).bearer_auth(&analyst).send().await.unwrap();
        json(response).await.1["tools"].as_array().unwrap().len()
    };
    assert_eq!(analyst_tools().await, 3);
    let policy = std::fs::read_to_string(root.path().join("policies/policies.yml")).unwrap();
    root.write(
        "policies/policies.yml",
        policy.replace(
            r#"analyst:       { tools: ["ads:listCampaigns", "util:*"] }"#,
            r#"analyst:       { tools: ["util:echo"] }"#,
        ),
    );
    eventually("the analyst's catalog shrinks", || async { analyst_tools().await == 1 }).await;

    root.write("policies/policies.yml", "version: 1\nroles: [broken\n");
    eventually("the broken policy is reported", || async {
        health(&server).await["policy"]["last_reload"]["ok"] == false
    })
    .await;
    assert_eq!(analyst_tools().await, 1, "the previous policy stays in force");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_call_fails_during_fifty_reloads() {
    let root = TestRoot::new();
    let server = Arc::new(TestServer::start(&root).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop, calls, failures) =
                (server.clone(), stop.clone(), calls.clone(), failures.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = json(server.invoke("util:echo", json!({"x": 1})).await).await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    if status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed call during reloads: {status} {body}");
                    }
                }
            })
        })
        .collect();

    let util = std::fs::read_to_string(root.path().join("manifests/util.yaml")).unwrap();
    let mut reloads = 0;
    for i in 0..60 {
        let text = if i % 5 == 4 {
            util.replace("tools:", "bogus: true\ntools:") // broken: keeps the last good
        } else {
            util.replace("version: 1.0.0", &format!("version: 1.0.{i}"))
        };
        root.write("manifests/util.yaml", text);
        // Wait for this edit to be picked up before the next one.
        let expected_ok = i % 5 != 4;
        eventually("the edit is reloaded", || async {
            let h = health(&server).await;
            h["reload"]["ok"] == expected_ok
                && (!expected_ok || h["registry"]["version"].as_u64().unwrap() > reloads as u64)
        })
        .await;
        if expected_ok {
            reloads += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (calls, failures) = (calls.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
    assert!(reloads >= 48, "{reloads} good reloads");
    assert!(calls > 100, "the load ran: {calls} calls");
    assert_eq!(failures, 0, "{failures} of {calls} calls failed during reloads");
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("the load tasks are done"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_after_its_manifest_is_picked_up() {
    let root = TestRoot::new();
    std::fs::create_dir_all(root.path().join("plugins/late")).unwrap();
    let server = TestServer::start(&root).await;
    root.write(
        "manifests/late.yaml",
        EXTRA
            .replace("plugin: extra", "plugin: late")
            .replace("plugins/util/util.wasm", "plugins/late/late.wasm"),
    );
    eventually("the missing component is reported", || async {
        health(&server).await["reload"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("late.yaml: component: cannot read"))
    })
    .await;
    root.write("plugins/late/late.wasm", plugin_bytes("util"));
    eventually("late:echo appears once built", || async {
        tool_ids(&server).await.contains(&"late:echo".to_owned())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_broken_plugin_never_holds_back_the_others() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    let has = |id: &'static str| {
        let server = &server;
        move || async move { tool_ids(server).await.contains(&id.to_owned()) }
    };
    // `util` breaks on disk: its last good version keeps serving.
    let util = std::fs::read_to_string(root.path().join("manifests/util.yaml")).unwrap();
    root.write("manifests/util.yaml", util.replace("tools:", "colour: red\ntools:"));
    eventually("the broken plugin is reported", || async { health(&server).await["reload"]["ok"] == false })
        .await;
    // A new plugin added meanwhile is served at once; so is a new one whose
    // component is not built yet — absent, with its reason.
    root.write("manifests/extra.yaml", EXTRA);
    root.write(
        "manifests/later.yaml",
        EXTRA
            .replace("plugin: extra", "plugin: later")
            .replace("plugins/util/util.wasm", "plugins/later/later.wasm"),
    );
    eventually("extra:echo appears beside the broken util", has("extra:echo")).await;
    assert_eq!(json(server.invoke("extra:echo", json!({"a": 1})).await).await.0, 200);
    assert_eq!(json(server.invoke("util:echo", json!({"a": 1})).await).await.0, 200, "last good util serves");
    let report = health(&server).await["reload"].clone();
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("util.yaml: colour: unknown field"), "{report}");
    assert!(error.contains("plugin `util` keeps serving its last good version"), "{report}");
    assert!(
        error.contains("later.yaml: component: cannot read") && error.contains("(not served)"),
        "{report}"
    );
    assert!(!tool_ids(&server).await.iter().any(|t| t.starts_with("later:")));
    // The trail says the reload was partial.
    let partial = crate::harness::audit_records(root.path())
        .into_iter()
        .any(|r| r["event"] == "registry.reload" && r["decision"] == "partial");
    assert!(partial);
    // Fixed and built: everything serves and the reload is clean.
    root.write("manifests/util.yaml", util);
    root.write("plugins/later/later.wasm", plugin_bytes("util"));
    eventually("later:echo appears once built", has("later:echo")).await;
    eventually("the reload is clean again", || async { health(&server).await["reload"]["ok"] == true }).await;
    server.stop().await;
}
