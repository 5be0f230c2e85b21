//! A small OpenTelemetry collector stand-in for tests and local trials: it
//! accepts OTLP traces and logs over HTTP/protobuf (`POST /v1/traces`,
//! `/v1/logs`) and gRPC (`TraceService`, `LogsService`), decoding them with
//! the official protobuf definitions (`opentelemetry-proto`), and records
//! what arrived. It also takes the audit export's HTTP batches (`POST
//! /audit`), checking their HMAC signature.
//!
//! [`Receiver::refuse`] makes every endpoint answer an error (a collector
//! that is up but refusing).

mod audit;
mod otlp;

pub use audit::AuditBatch;
pub use otlp::{ReceivedLog, ReceivedSpan};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the receiver has recorded.
#[derive(Debug, Default)]
pub struct Recorded {
    spans: Mutex<Vec<ReceivedSpan>>,
    logs: Mutex<Vec<ReceivedLog>>,
    audit: Mutex<Vec<AuditBatch>>,
    refusing: AtomicBool,
    audit_key: Mutex<Vec<u8>>,
    /// Items of each kind kept; beyond, only counted.
    keep: usize,
    /// Spans, log records and audit records received, kept or not.
    counts: [std::sync::atomic::AtomicU64; 3],
}

/// A running receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// The HTTP listener (OTLP/HTTP and the audit sink).
    pub http: SocketAddr,
    /// The gRPC listener.
    pub grpc: SocketAddr,
    recorded: Arc<Recorded>,
}

impl Receiver {
    /// Listen on `http` and `grpc` (port 0: any); `audit_key` checks the
    /// audit batches' signatures.
    pub async fn start(http: SocketAddr, grpc: SocketAddr, audit_key: &[u8]) -> std::io::Result<Self> {
        Self::start_keeping(http, grpc, audit_key, usize::MAX).await
    }

    /// [`Receiver::start`], keeping at most `keep` items of each kind (the
    /// rest are only counted: a load test's collector).
    pub async fn start_keeping(
        http: SocketAddr,
        grpc: SocketAddr,
        audit_key: &[u8],
        keep: usize,
    ) -> std::io::Result<Self> {
        let recorded = Arc::new(Recorded { keep, ..Recorded::default() });
        *recorded.audit_key.lock().expect("not poisoned") = audit_key.to_vec();
        let http_listener = tokio::net::TcpListener::bind(http).await?;
        let grpc_listener = tokio::net::TcpListener::bind(grpc).await?;
        let (http, grpc) = (http_listener.local_addr()?, grpc_listener.local_addr()?);
        let router = otlp::http_routes().merge(audit::routes()).with_state(recorded.clone());
        tokio::spawn(async move { axum::serve(http_listener, router).await });
        tokio::spawn(otlp::serve_grpc(grpc_listener, recorded.clone()));
        Ok(Self { http, grpc, recorded })
    }

    /// Answer every request with an error (503 / `UNAVAILABLE`) or not.
    pub fn refuse(&self, refusing: bool) {
        self.recorded.refusing.store(refusing, Ordering::SeqCst);
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.recorded.spans.lock().expect("not poisoned").clone()
    }

    /// The log records received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.recorded.logs.lock().expect("not poisoned").clone()
    }

    /// Spans, log records and audit records received so far (kept or not).
    pub fn counts(&self) -> [u64; 3] {
        self.recorded.counts.each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// The audit batches received so far (signature checked).
    pub fn audit_batches(&self) -> Vec<AuditBatch> {
        self.recorded.audit.lock().expect("not poisoned").clone()
    }
}

impl Recorded {
    fn refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }

    /// Count `n` items of kind `kind` (0 spans, 1 logs, 2 audit records);
    /// whether they are to be kept.
    fn count(&self, kind: usize, n: usize, kept: usize) -> bool {
        self.counts[kind].fetch_add(n as u64, Ordering::Relaxed);
        kept < self.keep
    }
}
