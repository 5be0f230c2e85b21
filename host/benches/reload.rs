//! Hot-reload latency: from a file write to the new version serving, with the
//! real file watcher (debounce included).
//!
//! - `manifest_edit`: rewrite a manifest (new version string);
//! - `policy_edit`: rewrite the policy file;
//! - `new_component`: write a component never seen before (the same plugin
//!   with a different custom section, so it must be compiled), by rename.

use criterion::{Criterion, criterion_group, criterion_main};
use fastmcp_host::{AppState, HostConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const UTIL_MANIFEST: &str = "plugin: util\nversion: 1.0.0\ncomponent: plugins/util/util.wasm\ntools:\n  - name: echo\n    input_schema: { type: object }\n";

fn util_wasm() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/wasm32-wasip2/plugin/util.wasm");
    std::fs::read(&path).unwrap_or_else(|_| panic!("{} is missing: run `./dev bench`", path.display()))
}

/// `wasm` plus a custom section named `bench` holding `n`: a new, valid component.
fn with_custom_section(wasm: &[u8], n: u64) -> Vec<u8> {
    let mut payload = vec![5u8];
    payload.extend_from_slice(b"bench");
    payload.extend_from_slice(&n.to_le_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.push(payload.len() as u8); // LEB128 length (< 128)
    out.extend_from_slice(&payload);
    out
}

async fn until(state: &AppState, changed: impl Fn(&AppState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !changed(state) {
        assert!(Instant::now() < deadline, "the reload did not happen");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let path = |p: &str| root.path().join(p);
    std::fs::create_dir_all(path("manifests")).unwrap();
    std::fs::create_dir_all(path("plugins/util")).unwrap();
    std::fs::create_dir_all(path("policies")).unwrap();
    std::fs::write(path("plugins/util/util.wasm"), util_wasm()).unwrap();
    std::fs::write(path("manifests/util.yaml"), UTIL_MANIFEST).unwrap();
    std::fs::write(path("policies/policies.yml"), "version: 1\n").unwrap();
    let state = tokio.block_on(AppState::start(HostConfig::for_root(root.path()))).unwrap();
    let listener = tokio.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    tokio.spawn(fastmcp_host::serve(listener, state.clone(), std::future::pending()));
    std::thread::sleep(Duration::from_millis(200));

    let mut group = c.benchmark_group("reload");
    group.sample_size(20);
    let mut n = 0u64;
    group.bench_function("manifest_edit", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let state = state.clone();
            let manifest = path("manifests/util.yaml");
            let start_n = n;
            n += iters;
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let before = state.registry().version;
                    let started = Instant::now();
                    std::fs::write(
                        &manifest,
                        UTIL_MANIFEST.replace("1.0.0", &format!("1.0.{}", start_n + i)),
                    )
                    .unwrap();
                    until(&state, |s| s.registry().version > before).await;
                    total += started.elapsed();
                }
                total
            }
        })
    });
    group.bench_function("policy_edit", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let state = state.clone();
            let policy = path("policies/policies.yml");
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let before = state.policy().version;
                    let started = Instant::now();
                    std::fs::write(&policy, format!("version: 1\nroles: {{ r{i}: {{ tools: [\"*\"] }} }}\n"))
                        .unwrap();
                    until(&state, |s| s.policy().version > before).await;
                    total += started.elapsed();
                }
                total
            }
        })
    });
    let wasm = util_wasm();
    group.bench_function("new_component", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let (state, wasm) = (state.clone(), wasm.clone());
            let (tmp, component) = (path("plugins/util/.util.wasm.tmp"), path("plugins/util/util.wasm"));
            let start_n = n;
            n += iters;
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let before = state.registry().version;
                    let started = Instant::now();
                    std::fs::write(&tmp, with_custom_section(&wasm, start_n + i)).unwrap();
                    std::fs::rename(&tmp, &component).unwrap();
                    until(&state, |s| s.registry().version > before).await;
                    total += started.elapsed();
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
