//! Audit append cost: one record at a time (an fsync each) and 64 concurrent
//! appends (group commit: one fsync per batch).

use criterion::{Criterion, criterion_group, criterion_main};
use fastmcp_host::audit::record::AuditEvent;
use fastmcp_host::audit::{AuditConfig, AuditLog, CheckpointPolicy};
use futures_util::future::join_all;
use std::time::Duration;

fn event() -> AuditEvent {
    AuditEvent {
        event: "tools.invoke".into(),
        correlation_id: Some("01a20b00-0000-7000-8000-000000000000".into()),
        tool: Some("util:echo".into()),
        decision: "completed".into(),
        status: Some(200),
        args_sha256: Some("ab".repeat(32)),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        dir: dir.path().join(".audit"),
        key_dir: dir.path().join(".runtime"),
        checkpoints: CheckpointPolicy { every_records: 1000, every: Duration::from_secs(10) },
        queue: 8192,
    };
    let log = tokio.block_on(AuditLog::start(config)).unwrap();
    c.bench_function("audit_append_1", |b| {
        b.to_async(&tokio).iter(|| async { log.append(event()).await.unwrap() })
    });
    let mut group = c.benchmark_group("audit_append_64_concurrent");
    group.throughput(criterion::Throughput::Elements(64));
    group.bench_function("batch", |b| {
        b.to_async(&tokio).iter(|| async { join_all((0..64).map(|_| log.append(event()))).await })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
