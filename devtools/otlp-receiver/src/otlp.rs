//! OTLP traces and logs, over HTTP/protobuf and gRPC, flattened into records.

use super::Recorded;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One span as received.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedSpan {
    /// `http` or `grpc`.
    pub transport: &'static str,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id (empty for a root).
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// OTLP span kind (2 server, 3 client).
    pub kind: i32,
    /// OTLP status code (2 error).
    pub status: i32,
    /// Attributes, values rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Events: name and attributes.
    pub events: Vec<(String, BTreeMap<String, String>)>,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
}

/// One log record as received.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedLog {
    /// `http` or `grpc`.
    pub transport: &'static str,
    /// The body, as text.
    pub body: String,
    /// Attributes, values rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Hex trace id (empty when none).
    pub trace_id: String,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn map(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
}

fn record_traces(recorded: &Recorded, transport: &'static str, request: ExportTraceServiceRequest) {
    let mut spans = recorded.spans.lock().expect("not poisoned");
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| map(&r.attributes)).unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                if !recorded.count(0, 1, spans.len()) {
                    continue;
                }
                spans.push(ReceivedSpan {
                    transport,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    status: span.status.map_or(0, |s| s.code),
                    attributes: map(&span.attributes),
                    events: span.events.iter().map(|e| (e.name.clone(), map(&e.attributes))).collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
}

fn record_logs(recorded: &Recorded, transport: &'static str, request: ExportLogsServiceRequest) {
    let mut logs = recorded.logs.lock().expect("not poisoned");
    for resource_logs in request.resource_logs {
        for scope in resource_logs.scope_logs {
            for log in scope.log_records {
                if !recorded.count(1, 1, logs.len()) {
                    continue;
                }
                logs.push(ReceivedLog {
                    transport,
                    body: text(log.body.as_ref()),
                    attributes: map(&log.attributes),
                    trace_id: hex::encode(&log.trace_id),
                });
            }
        }
    }
}

pub(super) fn http_routes() -> Router<Arc<Recorded>> {
    Router::new().route("/v1/traces", post(http_traces)).route("/v1/logs", post(http_logs))
}

async fn http_traces(State(recorded): State<Arc<Recorded>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    if recorded.refusing() {
        return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            record_traces(&recorded, "http", request);
            (StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

async fn http_logs(State(recorded): State<Arc<Recorded>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    if recorded.refusing() {
        return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    }
    match ExportLogsServiceRequest::decode(body) {
        Ok(request) => {
            record_logs(&recorded, "http", request);
            (StatusCode::OK, ExportLogsServiceResponse::default().encode_to_vec())
        }
        Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
    }
}

struct Grpc(Arc<Recorded>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self.0.refusing() {
            return Err(tonic::Status::unavailable("refusing"));
        }
        record_traces(&self.0, "grpc", request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        if self.0.refusing() {
            return Err(tonic::Status::unavailable("refusing"));
        }
        record_logs(&self.0, "grpc", request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

pub(super) async fn serve_grpc(listener: tokio::net::TcpListener, recorded: Arc<Recorded>) {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let _ = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Grpc(recorded.clone())))
        .add_service(LogsServiceServer::new(Grpc(recorded)))
        .serve_with_incoming(incoming)
        .await;
}
