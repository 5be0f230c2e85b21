//! Traces and the audit export, end to end: the real binary exporting to a
//! recording OTLP receiver (built on the official protobuf definitions) over
//! HTTP/protobuf and gRPC, the development upstream recording the
//! `traceparent` it receives, and the audit sinks through outages and a
//! restart.

use crate::harness::{
    ALL_SCOPES, ServerProcess, TestRoot, TestServer, TestUpstream, audit_records, eventually, json, mint,
};
use fastmcp_otlp_receiver::{ReceivedSpan, Receiver};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const AUDIT_KEY: &str = "observability-test-signing-key";

async fn start_receiver() -> Receiver {
    let any = "127.0.0.1:0".parse().unwrap();
    Receiver::start(any, any, AUDIT_KEY.as_bytes()).await.unwrap()
}

/// A W3C trace id and parent span id made up by the "client".
fn client_context() -> (String, String) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    (format!("{nanos:032x}"), format!("{:016x}", nanos as u64 | 1))
}

async fn spans_of(
    receiver: &Receiver,
    trace_id: &str,
    until: impl Fn(&[ReceivedSpan]) -> bool,
) -> Vec<ReceivedSpan> {
    eventually("the trace's spans arrive", Duration::from_secs(20), || async {
        let spans: Vec<ReceivedSpan> =
            receiver.spans().into_iter().filter(|s| s.trace_id == trace_id).collect();
        until(&spans).then_some(spans)
    })
    .await
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span `{name}` in {spans:#?}"))
}

/// Whether `span` descends from `ancestor` within `spans`.
fn descends(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let by_id: BTreeMap<&str, &ReceivedSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut at = span;
    while let Some(parent) = by_id.get(at.parent_span_id.as_str()) {
        if parent.span_id == ancestor.span_id {
            return true;
        }
        at = parent;
    }
    false
}

fn everything_exported(spans: &[ReceivedSpan]) -> String {
    serde_json::to_string(spans).unwrap()
}

/// The server span of a REST invoke: method and route.
const REST_INVOKE: &str = "POST /tools/{id}/invoke";

const STEPS: [&str; 11] = [
    "authenticate",
    "authorize",
    "arguments",
    "resolve",
    "validate",
    "rules",
    "rate_limit",
    "idempotency",
    "gate",
    "execute",
    "audit",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_call_is_one_trace_from_the_caller_through_the_sandbox_to_the_upstream() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let receiver = start_receiver().await;
    let endpoint = format!("http://{}", receiver.http);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", "fastmcp-test"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
    ];
    let server = ServerProcess::start_with_env(&root, "info", &[], &env).await;
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    let (trace_id, parent) = client_context();
    let response = client
        .post(server.url("/tools/ads:listCampaigns/invoke"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");

    let spans = spans_of(&receiver, &trace_id, |s| {
        s.iter().any(|s| s.name == REST_INVOKE) && s.iter().any(|s| s.name == "GET")
    })
    .await;
    let request = named(&spans, REST_INVOKE);
    assert_eq!(request.parent_span_id, parent, "the server span continues the caller's");
    assert_eq!(request.kind, 2, "server");
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.attributes["http.route"], "/tools/{id}/invoke");
    assert_eq!(request.attributes["http.response.status_code"], "200");
    assert_eq!(request.resource["service.name"], "fastmcp-test");
    assert_eq!(request.resource["deployment.environment"], "test");
    assert!(request.resource.contains_key("service.instance.id"));
    assert!(request.resource.contains_key("service.version"));
    let names: BTreeSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    for step in STEPS {
        assert!(names.contains(step), "no `{step}` step in {names:?}");
        assert!(descends(&spans, named(&spans, step), request), "`{step}` is not under the request");
    }
    let execute = named(&spans, "execute");
    assert_eq!(execute.attributes["fastmcp.plugin"], "ads");
    assert_eq!(execute.attributes["gen_ai.tool.name"], "ads:listCampaigns");
    assert_eq!(execute.attributes["fastmcp.sandbox.outcome"], "completed");
    assert!(execute.attributes["fastmcp.sandbox.memory_limit_bytes"].parse::<u64>().unwrap() > 0);
    assert!(descends(&spans, execute, named(&spans, "gate")), "the sandbox runs behind the gate");
    let outbound = named(&spans, "GET");
    assert_eq!(outbound.kind, 3, "client");
    assert_eq!(outbound.parent_span_id, execute.span_id);
    assert_eq!(outbound.attributes["server.address"], "127.0.0.1");
    assert_eq!(outbound.attributes["server.port"], upstream.addr.port().to_string());
    assert_eq!(outbound.attributes["fastmcp.provider"], "ads-api");
    assert_eq!(outbound.attributes["http.response.status_code"], "200");
    let credential = named(&spans, "credential");
    assert_eq!(credential.parent_span_id, outbound.span_id);
    assert_eq!(credential.attributes["fastmcp.provider"], "ads-api");

    // The upstream saw the client span's context, injected by the host.
    let expected = format!("00-{trace_id}-{}-01", outbound.span_id);
    assert!(upstream.upstream.traceparents().contains(&Some(expected.clone())), "{expected}");
    // No credential anywhere in what was exported.
    let exported = everything_exported(&receiver.spans());
    let tokens = upstream.upstream.issued_tokens();
    assert!(!tokens.is_empty());
    for credential in tokens {
        assert!(!exported.contains(credential.expose()), "a brokered token was exported");
    }
    assert!(!exported.contains(&token), "the caller's bearer token was exported");
    assert!(!exported.contains(upstream.secret.expose()), "the client secret was exported");
    // The audit record names the trace.
    let record = audit_records(root.path())
        .into_iter()
        .find(|r| r["tool"] == "ads:listCampaigns" && r["event"] == "tools.invoke")
        .expect("the call's record");
    assert_eq!(record["trace_id"], trace_id.as_str());

    // A denied call's span carries the error code.
    let (denied_trace, denied_parent) = client_context();
    let nobody = mint(&root.path().join(".runtime"), "nobody", "public", &[], ALL_SCOPES);
    let response = client
        .post(server.url("/tools/ads:createCampaign/invoke"))
        .bearer_auth(&nobody)
        .header("traceparent", format!("00-{denied_trace}-{denied_parent}-01"))
        .json(&json!({"name": "x", "budget": 1}))
        .send()
        .await
        .unwrap();
    let (status, problem) = json(response).await;
    assert_eq!(status, 403, "{problem}");
    let code = problem["code"].as_str().unwrap().to_owned();
    let spans = spans_of(&receiver, &denied_trace, |s| s.iter().any(|s| s.name == "authorize")).await;
    let authorize = named(&spans, "authorize");
    assert_eq!(authorize.status, 2, "error status");
    assert_eq!(authorize.attributes["error.type"], code);
    assert!(!spans.iter().any(|s| s.name == "execute"), "nothing ran");

    // The trace id finds the record from the command line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(["audit", "query", "--trace-id", &trace_id, "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["tool"], "ads:listCampaigns");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_call_continues_the_meta_traceparent_over_grpc() {
    let root = TestRoot::new();
    let receiver = start_receiver().await;
    let endpoint = format!("http://{}", receiver.grpc);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let server = ServerProcess::start_with_env(&root, "info", &[], &env).await;
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let (trace_id, parent) = client_context();
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": "util.echo",
            "arguments": {"message": "traced"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
                "traceparent": format!("00-{trace_id}-{parent}-01"),
            },
        }
    });
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "util.echo")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, reply) = json(response).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["isError"], false, "{reply}");

    // The MCP call's span ends last (after its audit step): once it has
    // arrived, every span of the call has (export keeps their order).
    let spans = spans_of(&receiver, &trace_id, |s| s.iter().any(|s| s.name == "tools/call util:echo")).await;
    assert!(spans.iter().all(|s| s.transport == "grpc"));
    let call = named(&spans, "tools/call util:echo");
    assert_eq!(call.parent_span_id, parent, "the MCP span continues `_meta.traceparent`");
    assert_eq!(call.kind, 2);
    assert_eq!(call.attributes["mcp.method.name"], "tools/call");
    assert_eq!(call.attributes["gen_ai.tool.name"], "util:echo");
    assert_eq!(call.attributes["jsonrpc.request.id"], "7");
    assert_eq!(call.attributes["fastmcp.decision"], "completed");
    for step in STEPS {
        assert!(descends(&spans, named(&spans, step), call), "`{step}` is not under the MCP call");
    }
    let record = audit_records(root.path())
        .into_iter()
        .find(|r| r["tool"] == "util:echo" && r["transport"] == "mcp")
        .expect("the call's record");
    assert_eq!(record["trace_id"], trace_id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_collector_or_sampler_off_costs_calls_nothing() {
    let root = TestRoot::new();
    let receiver = start_receiver().await;
    receiver.refuse(true);
    let endpoint = format!("http://{}", receiver.http);
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "50")];
    let server = ServerProcess::start_with_env(&root, "info", &[], &env).await;
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let response = client
            .post(server.url("/tools/util:echo/invoke"))
            .bearer_auth(&token)
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let metrics_url = format!("http://{}/metrics", server.metrics_addr);
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0)
    };
    eventually("failed exports are counted", Duration::from_secs(20), || async {
        let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        (metric(&text, "fastmcp_trace_exports_failed_total") > 0.0
            && metric(&text, "fastmcp_trace_spans_dropped_total") > 0.0)
            .then_some(())
    })
    .await;
    assert!(receiver.spans().is_empty());
    // The collector comes back: spans flow again.
    receiver.refuse(false);
    let response = client
        .post(server.url("/tools/util:echo/invoke"))
        .bearer_auth(&token)
        .json(&json!({"message": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    eventually("spans arrive once the collector accepts", Duration::from_secs(20), || async {
        (!receiver.spans().is_empty()).then_some(())
    })
    .await;
    drop(server);

    // Sampler off: calls succeed, nothing is exported.
    let quiet = start_receiver().await;
    let endpoint = format!("http://{}", quiet.http);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_TRACES_SAMPLER", "always_off"),
    ];
    let root = TestRoot::new();
    let server = ServerProcess::start_with_env(&root, "info", &[], &env).await;
    let token = mint(&root.path().join(".runtime"), "tester", "public", &["tester"], ALL_SCOPES);
    for _ in 0..5 {
        let response = client
            .post(server.url("/tools/util:echo/invoke"))
            .bearer_auth(&token)
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    server.signal("-TERM");
    let mut server = server;
    let _ = tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await;
    assert!(quiet.spans().is_empty(), "{:?}", quiet.spans());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tracing_off_the_callers_context_still_reaches_the_upstream_and_the_trail() {
    let upstream = TestUpstream::start().await;
    let root = TestRoot::with_upstream(&upstream);
    let server = TestServer::start(&root).await;
    let (trace_id, parent) = client_context();
    let response = server
        .post_invoke("ads:listCampaigns")
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(upstream.upstream.traceparents().contains(&Some(format!("00-{trace_id}-{parent}-01"))));
    // Without one, none is forwarded (and a plugin cannot add its own).
    assert_eq!(server.invoke("ads:listCampaigns", json!({})).await.status(), 200);
    assert_eq!(upstream.upstream.traceparents().last(), Some(&None));
    let record = audit_records(root.path())
        .into_iter()
        .find(|r| r["tool"] == "ads:listCampaigns" && r["event"] == "tools.invoke")
        .unwrap();
    assert_eq!(record["trace_id"], trace_id.as_str());
    server.stop().await;
}

/// Every record's `seq` and `hash`, in trail order.
fn trail(root: &std::path::Path) -> Vec<(u64, String)> {
    audit_records(root)
        .iter()
        .map(|r| (r["seq"].as_u64().unwrap(), r["hash"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_reaches_both_sinks_in_order_through_an_outage_and_a_restart() {
    let receiver = start_receiver().await;
    let root = TestRoot::new();
    root.write(".runtime/audit-export.key", AUDIT_KEY);
    let config = || {
        let mut config = root.config();
        config.audit.export_url = Some(format!("http://{}/audit", receiver.http));
        config.audit.export_key_file = Some(".runtime/audit-export.key".into());
        config.audit.export_otlp = true;
        config.telemetry.endpoint = Some(format!("http://{}", receiver.http));
        config.audit.export_batch = 7;
        config.audit.export_max_backoff = Duration::from_millis(300);
        config
    };
    let delivered = |r: &Receiver| -> Vec<(u64, String)> {
        r.audit_batches()
            .iter()
            .flat_map(|b| b.records.iter())
            .map(|r| (r["seq"].as_u64().unwrap(), r["hash"].as_str().unwrap().to_owned()))
            .collect()
    };
    let server = TestServer::start_with(config()).await;
    for i in 0..10 {
        assert_eq!(server.invoke("util:echo", json!({"message": format!("m{i}")})).await.status(), 200);
    }
    eventually("the first records are delivered", Duration::from_secs(20), || async {
        (delivered(&receiver).len() >= 11).then_some(())
    })
    .await;
    // The sinks go down; calls go on; then the host restarts meanwhile.
    receiver.refuse(true);
    for i in 0..10 {
        assert_eq!(server.invoke("util:echo", json!({"message": format!("n{i}")})).await.status(), 200);
    }
    let health_token = server.token_for("ops", "public", &[], &["host.health:read"]);
    let health = eventually("health shows the lag", Duration::from_secs(20), || async {
        let response =
            server.client().get(server.url("/health")).bearer_auth(&health_token).send().await.unwrap();
        let (_, health) = json(response).await;
        let export = health["audit"]["export"].as_array().cloned().unwrap_or_default();
        (export.len() == 2 && export.iter().all(|s| s["lag"].as_u64() > Some(0) && s["error"].is_string()))
            .then_some(health)
    })
    .await;
    assert!(health["audit"]["export"].to_string().contains("HTTP 503"), "{health}");
    server.stop().await;
    let server = TestServer::start_with(config()).await;
    for i in 0..5 {
        assert_eq!(server.invoke("util:echo", json!({"message": format!("o{i}")})).await.status(), 200);
    }
    receiver.refuse(false);
    let expected = trail(root.path());
    eventually("every record is delivered", Duration::from_secs(30), || async {
        let got = delivered(&receiver);
        let last = got.last().map(|(seq, _)| *seq);
        let logged =
            receiver.logs().iter().filter_map(|l| l.attributes["fastmcp.audit.seq"].parse().ok()).max();
        let head = expected.last().map(|(seq, _)| *seq);
        (last == head && logged == head).then_some(())
    })
    .await;
    // At least once, in order: without repeats, exactly the trail.
    let mut got = delivered(&receiver);
    got.dedup_by_key(|(seq, _)| *seq);
    let mut seen = BTreeSet::new();
    got.retain(|(seq, _)| seen.insert(*seq));
    assert_eq!(got, expected, "every record, in order, none missing");
    // The OTLP sink too: the record as the body, seq and hash as attributes.
    let logs = receiver.logs();
    let mut seqs: Vec<u64> =
        logs.iter().map(|l| l.attributes["fastmcp.audit.seq"].parse().unwrap()).collect();
    seqs.dedup();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), expected.len());
    for log in &logs {
        let body: Value = serde_json::from_str(&log.body).unwrap();
        assert_eq!(body["hash"].as_str().unwrap(), log.attributes["fastmcp.audit.hash"]);
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains("fastmcp_audit_export_lag_records{sink=\"http\"}"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_uses_only_metrics_the_host_serves() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::harness::workspace().join("devtools/grafana/fastmcp.json")).unwrap(),
    )
    .unwrap();
    let mut expressions = Vec::new();
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                map.values().for_each(|v| collect(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dashboard, &mut expressions);
    assert!(expressions.len() >= 6, "{expressions:?}");
    // With an export sink, so that its gauges have samples too.
    let receiver = start_receiver().await;
    let root = TestRoot::new();
    root.write(".runtime/audit-export.key", AUDIT_KEY);
    let mut config = root.config();
    config.audit.export_url = Some(format!("http://{}/audit", receiver.http));
    config.audit.export_key_file = Some(".runtime/audit-export.key".into());
    let server = TestServer::start_with(config).await;
    assert_eq!(server.invoke("util:echo", json!({"message": "m"})).await.status(), 200);
    let metrics = server.metrics().await;
    // Every sample's name, and every declared family's (a family with no
    // samples yet, such as the export lag without sinks, is still served).
    let mut served: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    for family in metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let mut parts = family.split_whitespace();
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        served.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    let mut used = BTreeSet::new();
    for expr in &expressions {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("fastmcp_") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            used.insert(name);
        }
    }
    for name in &used {
        assert!(served.contains(name), "the dashboard uses `{name}`, which /metrics does not serve");
    }
    server.stop().await;
}

fn fastmcp(args: &[&str], root: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_tail_and_query_print_what_the_chain_vouches_for() {
    let root = TestRoot::new();
    let server = TestServer::start(&root).await;
    for i in 0..3 {
        assert_eq!(server.invoke("util:echo", json!({"message": format!("m{i}")})).await.status(), 200);
    }
    let nobody = server.token_for("nobody", "public", &[], ALL_SCOPES);
    assert_eq!(server.invoke_as(&nobody, "util:echo", json!({"message": "x"})).await.status(), 403);
    server.stop().await;
    let records = audit_records(root.path());

    let out = fastmcp(&["audit", "tail", "-n", "2"], root.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, records[records.len() - 2..], "the last two records, as in the trail");

    let out = fastmcp(
        &["audit", "query", "--sub", "tester", "--tool", "util:echo", "--decision", "completed"],
        root.path(),
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
    let out = fastmcp(&["audit", "query", "--sub", "nobody", "--format", "table"], root.path());
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].starts_with("TIME") && rows[1].contains("nobody") && rows[1].contains("403"), "{table}");
    let out = fastmcp(&["audit", "query", "--since", "1h", "--until", "2999-01-01T00:00:00Z"], root.path());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), records.len());
    let out = fastmcp(&["audit", "query", "--since", "yesterday-ish"], root.path());
    assert!(!out.status.success());

    // An edited record: the commands refuse to print past it.
    let file = std::fs::read_dir(root.path().join(".audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl") && !p.ends_with("checkpoints.jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap().replacen("\"m1\"", "\"mX\"", 1).replacen(
        "util:echo",
        "util:ech0",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let out = fastmcp(&["audit", "tail"], root.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not continue the chain"));
}
