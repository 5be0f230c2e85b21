//! What a plugin printed, and why it crashed, reaches its author: the real
//! binary's log carries the guest's stdout and stderr line by line under the
//! call's correlation id, within the call's budget — a Rust panic message,
//! a Python traceback (componentize-py prints it, then traps), a JavaScript
//! error with its stack (componentize-js prints it, then aborts) — and the
//! caller learns none of it. The same lines, and an outbound request the
//! host refused with its reason, go to the plugin's own file under
//! `.runtime/plugin-output/`, which `fastmcp plugin dev` prints live.

use super::{command, fastmcp, grant, lines_of_child, text, wait_for};
use crate::harness::{ALL_SCOPES, ServerProcess, TestRoot, mint};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

/// Stop `server` and return its log lines as JSON.
async fn logs_of(mut server: ServerProcess) -> Vec<Value> {
    server.signal("-TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await;
    server.logs.await.unwrap().iter().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn lines_of<'a>(logs: &'a [Value], correlation_id: &str) -> Vec<&'a Value> {
    logs.iter().filter(|l| l["fields"]["correlation_id"] == correlation_id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_message_and_printed_lines_reach_the_log_with_the_correlation_id() {
    let root = TestRoot::new();
    let server =
        ServerProcess::start(&root, "info", &["--no-watch", "--runtime-max-output-bytes-per-call", "200"])
            .await;
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    let call = |tool: &str, id: &str, args: Value| {
        client
            .post(server.url(&format!("/tools/misbehave:{tool}/invoke")))
            .bearer_auth(&token)
            .header("x-correlation-id", id)
            .json(&args)
            .send()
    };
    let trapped: Value = call("trap", "out-trap", json!({})).await.unwrap().json().await.unwrap();
    assert_eq!(trapped["code"], "tool_failed");
    assert!(
        !trapped.to_string().contains("on purpose"),
        "the caller never sees the panic message: {trapped}"
    );
    let shouted = call("shout", "out-shout", json!({"times": 3})).await.unwrap();
    assert_eq!(shouted.status(), 200);
    // 10,000 lines: far over the 200-byte budget; the call still succeeds.
    let flooded = call("shout", "out-flood", json!({"times": 10000})).await.unwrap();
    assert_eq!(flooded.status(), 200);

    let logs = logs_of(server).await;
    let trap = lines_of(&logs, "out-trap");
    // Rust's panic hook: "thread '<unnamed>' panicked at src/lib.rs:…:",
    // then the message.
    let stderr: Vec<&Value> = trap.iter().copied().filter(|l| l["fields"]["stream"] == "stderr").collect();
    assert!(
        stderr.iter().any(|l| l["fields"]["message"] == "misbehave:trap panics on purpose"),
        "the panic message, under the call's correlation id: {trap:?}"
    );
    assert!(stderr.iter().all(|l| l["fields"]["tool"] == "misbehave:trap"));
    assert!(trap.iter().any(|l| l["fields"]["message"] == "plugin trapped"), "{trap:?}");

    let shout = lines_of(&logs, "out-shout");
    let printed: Vec<(&str, &str)> = shout
        .iter()
        .filter_map(|l| Some((l["fields"]["stream"].as_str()?, l["fields"]["message"].as_str()?)))
        .collect();
    assert_eq!(
        printed,
        [
            ("stdout", "shout 0 to stdout"),
            ("stdout", "shout 1 to stdout"),
            ("stdout", "shout 2 to stdout"),
            ("stderr", "shout to stderr")
        ]
    );
    assert!(shout.iter().any(|l| l["level"] == "WARN" && l["fields"]["stream"] == "stderr"));

    let flood = lines_of(&logs, "out-flood");
    let kept = flood.iter().filter(|l| l["fields"]["stream"] == "stdout").count();
    assert!((1..=12).contains(&kept), "200 bytes hold about ten lines, kept {kept}");
    let dropped = flood.iter().find_map(|l| l["fields"]["dropped_bytes"].as_u64()).expect("a dropped line");
    assert!(dropped > 100_000, "{dropped}");
}

/// `fastmcp plugin new NAME --lang LANG`, edited so that `{"name": "boom"}`
/// prints a line and then fails the way the language fails, and built.
fn broken_plugin(root: &std::path::Path, lang: &str, name: &str) {
    let new = fastmcp(root, &["plugin", "new", name, "--lang", lang]);
    assert!(new.status.success(), "{}", text(&new));
    grant(root, &text(&new));
    let (file, anchor, inserted) = match lang {
        "python" => (
            "app.py",
            "        if tool == \"hello\":",
            "        print(\"printed from python\", \"bücher.example\".encode(\"idna\"))\n        if args.get(\"name\") == \"boom\":\n            raise ValueError(\"boom from python\")\n",
        ),
        _ => (
            "app.js",
            "    if (tool === \"hello\") {",
            "    console.log(\"printed from js\");\n    if (args.name === \"boom\") {\n      await fetch(\"http://denied.example/x\").catch((e) => console.log(`fetch: ${e}`));\n      throw new TypeError(\"boom from js\");\n    }\n",
        ),
    };
    let source = root.join("plugins").join(name).join(file);
    let text_before = std::fs::read_to_string(&source).unwrap();
    assert!(text_before.contains(anchor), "{file} has `{anchor}`");
    // `fetch` is asynchronous: the JavaScript `invoke` becomes `async`.
    let edited = text_before.replacen(anchor, &format!("{inserted}{anchor}"), 1).replacen(
        "  invoke(ctx, tool, argsJson) {",
        "  async invoke(ctx, tool, argsJson) {",
        1,
    );
    std::fs::write(&source, edited).unwrap();
    let build = fastmcp(root, &["plugin", "build", name]);
    assert!(build.status.success(), "{}", text(&build));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_traceback_and_a_javascript_error_reach_the_log() {
    let root = TestRoot::empty();
    root.write("policies/policies.yml", "version: 1\nroles:\n");
    broken_plugin(root.path(), "python", "pyboom");
    broken_plugin(root.path(), "js", "jsboom");
    let server = ServerProcess::start(&root, "info", &["--no-watch"]).await;
    // `plugin dev` follows what the plugin says while the host serves it.
    let mut dev = command(root.path(), &["plugin", "dev", "jsboom"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dev_lines = lines_of_child(dev.stderr.take().unwrap());
    wait_for(&dev_lines, "printing what the plugin says");
    let client = reqwest::Client::new();
    for name in ["pyboom", "jsboom"] {
        let token = mint(
            &root.path().join(".runtime"),
            "author",
            "public",
            &[&format!("{name}-user")],
            &["tools.invoke:write"],
        );
        let response = client
            .post(server.url(&format!("/tools/{name}:hello/invoke")))
            .bearer_auth(&token)
            .header("x-correlation-id", format!("out-{name}"))
            .json(&json!({"name": "boom"}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "tool_failed", "{body}");
        assert!(!body.to_string().contains("boom from"), "the caller never sees it: {body}");
    }
    let live = wait_for(&dev_lines, "TypeError: boom from js");
    assert!(live.starts_with("plugin: ") && live.contains("jsboom:hello out-jsboom"), "{live}");
    let _ = dev.kill();
    let _ = dev.wait();
    let logs = logs_of(server).await;
    for (name, printed, error) in [
        ("pyboom", "printed from python", "ValueError: boom from python"),
        ("jsboom", "printed from js", "TypeError: boom from js"),
    ] {
        let lines = lines_of(&logs, &format!("out-{name}"));
        let said = |stream: &str, text: &str| {
            lines.iter().any(|l| {
                l["fields"]["stream"] == stream
                    && l["fields"]["message"].as_str().unwrap_or("").contains(text)
            })
        };
        assert!(said("stdout", printed), "{name}: {lines:?}");
        assert!(said("stderr", error), "{name}: {lines:?}");
        // The plugin's own file: the same lines, under the correlation id.
        let file = root.path().join(format!(".runtime/plugin-output/{name}.log"));
        let own = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            own.lines().any(|l| l.contains(&format!("{name}:hello out-{name} stderr:")) && l.contains(error)),
            "{own}"
        );
    }
    // Python's `idna` codec (looked up by name at run time) is bundled.
    let python = lines_of(&logs, "out-pyboom");
    assert!(
        python.iter().any(|l| l["fields"]["message"] == "printed from python b'xn--bcher-kva.example'"),
        "{python:?}"
    );
    // JavaScript's fetch says only `NetworkError`; the host's reason is in
    // the plugin's file (and the log) under the call's correlation id.
    let js = std::fs::read_to_string(root.path().join(".runtime/plugin-output/jsboom.log")).unwrap();
    assert!(js.contains("fetch: TypeError: NetworkError"), "{js}");
    let denied = js.lines().find(|l| l.contains("outbound request denied")).expect("the refusal");
    assert!(
        denied.contains("out-jsboom")
            && denied.contains("target=http://denied.example:80")
            && denied.contains("the plugin's manifest allows no network"),
        "{denied}"
    );
}
