//! The inner loop: `fastmcp plugin dev` rebuilds on every save, shows the
//! build's errors and the host's verdict, moves only a component that loads
//! into place, and the running host serves the new version (and keeps the
//! last good one through a broken build and a rejected component).

use super::{command, fastmcp, grant, lines_of_child, text, wait_for};
use crate::harness::{TestRoot, TestServer, eventually, json};
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn plugin_dev_rebuilds_reports_and_the_host_serves_each_good_version() {
    let root = TestRoot::empty();
    root.write("policies/policies.yml", "version: 1\nroles:\n");
    let server = TestServer::start(&root).await;
    let new = fastmcp(root.path(), &["plugin", "new", "loop", "--lang", "python"]);
    assert!(new.status.success(), "{}", text(&new));
    grant(root.path(), &text(&new));
    let token = server.token_for("author", "public", &["loop-user"], &["tools.invoke:write"]);
    let answer = || async {
        let (status, body) = json(server.invoke_as(&token, "loop:hello", json!({"name": "Ada"})).await).await;
        (status == 200).then(|| body["result"]["message"].as_str().unwrap_or_default().to_owned())
    };

    let mut dev = command(root.path(), &["plugin", "dev", "loop", "--rounds", "4"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of_child(dev.stderr.take().unwrap());

    // Round 1: the first build loads and serves.
    wait_for(&lines, "loaded: ");
    let first = eventually("the first version serves", Duration::from_secs(240), answer).await;
    assert_eq!(first, "Hello, Ada!");

    // Round 2: a syntax error. The build's error is shown; nothing replaces
    // what is serving.
    let app = root.path().join("plugins/loop/app.py");
    let source = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, source.replace("def invoke(self", "def invoke(self,,")).unwrap();
    wait_for(&lines, "build failed");
    assert_eq!(answer().await.as_deref(), Some("Hello, Ada!"));

    // Round 3: a good edit is built, checked, put in place, and served.
    std::fs::write(&app, source.replace("{greeting}, {args['name']}!", "{greeting}, {args['name']}! (v2)"))
        .unwrap();
    wait_for(&lines, "loaded: ");
    let placed = Instant::now();
    let second = eventually("the new version serves", Duration::from_secs(240), || async {
        answer().await.filter(|m| m.ends_with("(v2)"))
    })
    .await;
    assert_eq!(second, "Hello, Ada! (v2)");
    eprintln!("in place → serving: {} ms", placed.elapsed().as_millis());

    // Round 4: a component the host would reject (it no longer implements
    // the manifest's `hello`) is reported and never put in place.
    let v2 = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, v2.replace("ToolDeclaration(\"hello\", None)", "ToolDeclaration(\"hola\", None)"))
        .unwrap();
    let rejected = wait_for(&lines, "rejected: ");
    assert!(rejected.contains("tools[0].name: the component does not implement `hello`"), "{rejected}");
    assert_eq!(answer().await.as_deref(), Some("Hello, Ada! (v2)"), "the last good version serves");
    assert!(dev.wait().unwrap().success(), "plugin dev stops after --rounds");
    server.stop().await;
}
