//! The in-process call path for `util:echo` with a ~100-byte JSON argument:
//!
//! - `raw_instantiate_call`: wasmtime alone — fresh `Store`, instantiate from
//!   the cached `InstancePre`, call, drop;
//! - `sandbox_call`: `Runtime::call` — slot, limits, deadline, instantiate,
//!   call, result parsing;
//! - `pipeline_invoke`: the host's whole call path through the router, without a socket (token check
//!   from the cache, body parsing, resolve, schema, scopes and policy, sandbox
//!   call, metrics, log record).
//!
//! Run with `./dev bench` (it builds the plugins first).

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use fastmcp_host::auth::devkeys::{DevKeyFiles, dev_claims};
use fastmcp_host::internals::EgressLog;
use fastmcp_host::internals::PluginPre;
use fastmcp_host::internals::{CallData, CallIdentity, OutputLimits, call_context};
use fastmcp_host::{AppState, HostConfig};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::{Component, Linker};

const UTIL_MANIFEST: &str = "plugin: util\nversion: 1.0.0\ncomponent: plugins/util/util.wasm\ntools:\n  - name: echo\n    input_schema: { type: object }\n";

fn args() -> Map<String, Value> {
    let Value::Object(map) = json!({"campaign": "LaunchX", "budget": 1200, "startDate": "2025-10-10", "tags": ["search", "video"], "ok": true})
    else {
        unreachable!()
    };
    map
}

fn identity() -> CallIdentity {
    CallIdentity {
        correlation_id: "bench".into(),
        tenant: "public".into(),
        subject: "bench".into(),
        tool_id: "util:echo".into(),
    }
}

fn util_wasm() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/wasm32-wasip2/plugin/util.wasm");
    std::fs::read(&path).unwrap_or_else(|_| panic!("{} is missing: run `./dev bench`", path.display()))
}

fn bench(c: &mut Criterion) {
    let args_json = Value::Object(args()).to_string();
    assert!((90..=120).contains(&args_json.len()), "argument is {} bytes", args_json.len());
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("manifests")).unwrap();
    std::fs::create_dir_all(root.path().join("plugins/util")).unwrap();
    std::fs::write(root.path().join("plugins/util/util.wasm"), util_wasm()).unwrap();
    std::fs::write(root.path().join("manifests/util.yaml"), UTIL_MANIFEST).unwrap();
    std::fs::create_dir_all(root.path().join("policies")).unwrap();
    std::fs::write(
        root.path().join("policies/policies.yml"),
        "version: 1\nroles: { dev: { tools: [\"util:*\"] } }\n",
    )
    .unwrap();
    let config = HostConfig::for_root(root.path());

    // Raw wasmtime with the host's engine settings.
    let engine = fastmcp_host::internals::engine::build(&config.runtime).unwrap().engine;
    let mut linker = Linker::<CallData>::new(&engine);
    fastmcp_host::internals::link_imports(&mut linker).unwrap();
    let component = Component::new(&engine, util_wasm()).unwrap();
    let pre = PluginPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let context = call_context(&identity());
    let state = tokio.block_on(AppState::start(config)).unwrap();
    let registry = state.registry();
    let tool = registry.tool("util:echo").unwrap().clone();
    c.bench_function("raw_instantiate_call", |b| {
        b.to_async(&tokio).iter(|| async {
            let grants = state.call_grants(&tool.plugin, state.broker(), EgressLog::default());
            let mut store = Store::new(
                &engine,
                CallData::new(identity(), grants, 16 << 20, OutputLimits { log_lines: 16, output_bytes: 0 }),
            );
            store.set_epoch_deadline(u64::MAX / 2);
            let plugin = pre.instantiate_async(&mut store).await.unwrap();
            let out =
                plugin.fastmcp_plugin_tools().call_invoke(&mut store, &context, "echo", &args_json).await;
            out.unwrap().unwrap()
        })
    });

    c.bench_function("sandbox_call", |b| {
        b.to_async(&tokio).iter(|| async {
            let plugin = &tool.plugin;
            let grants = state.call_grants(plugin, state.broker(), EgressLog::default());
            let call = state.runtime().call(
                &plugin.component,
                plugin.limits,
                identity(),
                grants,
                "echo",
                args_json.clone(),
            );
            call.await.unwrap()
        })
    });

    // The whole path without HTTP: authentication (token cache warm), body
    // parsing, resolve, schema, scopes and policy, sandbox call, metrics, log.
    let token = tokio.block_on(async {
        let files = DevKeyFiles::in_dir(&root.path().join(".runtime"));
        let scopes = vec!["tools.invoke:write".to_owned()];
        let claims = dev_claims(
            "https://idp.local",
            "fastmcp",
            "bench",
            "public",
            vec!["dev".into()],
            scopes,
            Duration::from_secs(3600),
        );
        files.mint(&claims).unwrap()
    });
    let body = args_json.clone();
    let app = fastmcp_host::api::router(state.clone());
    c.bench_function("pipeline_invoke", |b| {
        b.to_async(&tokio).iter(|| async {
            let request = Request::post("/tools/util:echo/invoke")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
            assert_eq!(response.status(), 200);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
