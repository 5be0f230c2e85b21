//! Audited records per second: group commit (one fsync per batch) against an
//! fsync per record and against no fsync at all, with 1, 16 and 64
//! concurrent callers. Throughput is reported in records (elements) per
//! second; each iteration is `n` concurrent appends, each resolving once its
//! record is written (and, except for `never`, on disk).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fastmcp_host::audit::record::AuditEvent;
use fastmcp_host::audit::{AuditConfig, AuditLog, SyncMode};
use fastmcp_host::clock::Clock;
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
    for (name, sync) in [
        ("group_commit", SyncMode::Group),
        ("fsync_per_record", SyncMode::PerRecord),
        ("no_fsync", SyncMode::Never),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            sync,
            ..AuditConfig::new(dir.path().join(".audit"), dir.path().join(".runtime"), Clock::default())
        };
        let log = tokio.block_on(AuditLog::start(config)).unwrap();
        let mut group = c.benchmark_group(format!("audit_append/{name}"));
        group.sample_size(20).measurement_time(Duration::from_secs(3));
        for callers in [1usize, 16, 64] {
            group.throughput(Throughput::Elements(callers as u64));
            group.bench_with_input(BenchmarkId::from_parameter(callers), &callers, |b, &callers| {
                b.to_async(&tokio)
                    .iter(|| async { join_all((0..callers).map(|_| log.append(event()))).await })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
