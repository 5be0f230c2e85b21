//! Where the trail goes: an HTTP endpoint taking signed batches of JSON
//! lines, or the OTLP collector as log records.

use super::reader::Batch;
use crate::telemetry::http_client::ReqwestClient;
use crate::telemetry::{Protocol, TraceSettings};
use hmac::{Hmac, Mac};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;

/// The header carrying a batch's signature: `sha256=` and the hex
/// HMAC-SHA256 of the body under the operator's key.
pub const SIGNATURE_HEADER: &str = "x-fastmcp-signature";

/// One destination of the trail.
pub enum Sink {
    /// Signed batches of JSON lines, POSTed.
    Http {
        /// Where.
        url: String,
        /// The signing key.
        key: Vec<u8>,
        /// The client.
        client: ReqwestClient,
    },
    /// OTLP log records over HTTP/protobuf.
    OtlpHttp {
        /// The logs URL.
        url: String,
        /// Export headers.
        headers: http::HeaderMap,
        /// The client.
        client: ReqwestClient,
        /// `service.name` of the resource.
        service: String,
    },
    /// OTLP log records over gRPC.
    OtlpGrpc {
        /// The client.
        client: LogsServiceClient<tonic::transport::Channel>,
        /// Export metadata.
        metadata: tonic::metadata::MetadataMap,
        /// `service.name` of the resource.
        service: String,
    },
}

impl Sink {
    /// The HTTP sink.
    pub fn http(url: String, key: Vec<u8>, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self::Http { url, key, client: ReqwestClient::new(timeout)? })
    }

    /// The OTLP logs sink on the traces collector.
    pub fn otlp(settings: &TraceSettings, timeout: Duration) -> anyhow::Result<Self> {
        let url = settings.logs_endpoint().ok_or_else(|| anyhow::anyhow!("no collector endpoint"))?;
        let service = settings.service_name.clone();
        Ok(match settings.protocol {
            Protocol::HttpProtobuf => {
                let mut headers = crate::telemetry::grpc_metadata(settings)?.into_headers();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-protobuf"),
                );
                Self::OtlpHttp { url, headers, client: ReqwestClient::new(timeout)?, service }
            }
            Protocol::Grpc => Self::OtlpGrpc {
                client: LogsServiceClient::new(crate::telemetry::grpc_channel(&url, timeout)?),
                metadata: crate::telemetry::grpc_metadata(settings)?,
                service,
            },
        })
    }

    /// The sink's name (its cursor file, metric label).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::OtlpHttp { .. } | Self::OtlpGrpc { .. } => "otlp",
        }
    }

    /// Deliver `batch`; an error says why it was not accepted.
    pub async fn deliver(&self, batch: &Batch) -> Result<(), String> {
        match self {
            Self::Http { url, key, client } => {
                let body =
                    batch.lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect::<Vec<u8>>();
                let signature = signature(key, &body);
                let mut headers = http::HeaderMap::new();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-ndjson"),
                );
                headers.insert(
                    SIGNATURE_HEADER,
                    http::HeaderValue::try_from(signature).expect("hex is a header value"),
                );
                let (status, _) = client.post(url, headers, body).await.map_err(|e| short(&*e))?;
                accepted(status)
            }
            Self::OtlpHttp { url, headers, client, service } => {
                let body = logs_request(batch, service).encode_to_vec();
                let (status, _) = client.post(url, headers.clone(), body).await.map_err(|e| short(&*e))?;
                accepted(status)
            }
            Self::OtlpGrpc { client, metadata, service } => {
                let mut request = tonic::Request::new(logs_request(batch, service));
                *request.metadata_mut() = metadata.clone();
                client.clone().export(request).await.map(|_| ()).map_err(|s| format!("gRPC {}", s.code()))
            }
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body under key>`: the value of
/// [`SIGNATURE_HEADER`] (audit batches and approval webhook events).
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn accepted(status: http::StatusCode) -> Result<(), String> {
    if status.is_success() { Ok(()) } else { Err(format!("HTTP {}", status.as_u16())) }
}

/// An error's kind without anything that may be a secret (URLs with keys).
fn short(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    match error.downcast_ref::<reqwest::Error>() {
        Some(e) if e.is_timeout() => "timed out".into(),
        Some(e) if e.is_connect() => "cannot connect".into(),
        Some(_) => "request failed".into(),
        None => "request failed".into(),
    }
}

/// One OTLP log record per audit record: the line as the body; `seq`,
/// `hash`, `event`, `decision` and `trace_id` as attributes.
fn logs_request(batch: &Batch, service: &str) -> ExportLogsServiceRequest {
    let text = |s: &str| AnyValue { value: Some(any_value::Value::StringValue(s.to_owned())) };
    let attribute = |key: &str, value: AnyValue| KeyValue {
        key: key.to_owned(),
        value: Some(value),
        ..Default::default()
    };
    let records = batch
        .lines
        .iter()
        .zip(&batch.records)
        .map(|(line, record)| {
            let field = |name: &str| record[name].as_str().unwrap_or("");
            let mut attributes = vec![
                attribute(
                    "fastmcp.audit.seq",
                    AnyValue { value: Some(any_value::Value::IntValue(record["seq"].as_i64().unwrap_or(0))) },
                ),
                attribute("fastmcp.audit.hash", text(field("hash"))),
                attribute("fastmcp.audit.event", text(field("event"))),
                attribute("fastmcp.audit.decision", text(field("decision"))),
            ];
            let trace_id = record.get("trace_id").and_then(Value::as_str).and_then(|t| hex::decode(t).ok());
            if let Some(id) = record.get("trace_id").and_then(Value::as_str) {
                attributes.push(attribute("trace_id", text(id)));
            }
            let time = chrono::DateTime::parse_from_rfc3339(field("ts"))
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .map_or(0, |n| n as u64);
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time,
                severity_number: 9, // INFO
                severity_text: "INFO".into(),
                event_name: "fastmcp.audit".into(),
                body: Some(text(&String::from_utf8_lossy(line))),
                attributes,
                trace_id: trace_id.filter(|t| t.len() == 16).unwrap_or_default(),
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", text(service))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope { name: "fastmcp.audit".into(), ..Default::default() }),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
