//! The audit export's HTTP sink: batches of JSON lines, signed.

use super::Recorded;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::Arc;

/// One batch: its records, in the order received.
#[derive(Debug, Clone)]
pub struct AuditBatch {
    /// The records (one JSON line each).
    pub records: Vec<Value>,
}

pub(super) fn routes() -> Router<Arc<Recorded>> {
    Router::new().route("/audit", post(receive))
}

async fn receive(State(recorded): State<Arc<Recorded>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if recorded.refusing() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let signature = headers
        .get("x-fastmcp-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok());
    let key = recorded.audit_key.lock().expect("not poisoned").clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(&body);
    if signature.is_none_or(|s| mac.verify_slice(&s).is_err()) {
        return StatusCode::UNAUTHORIZED;
    }
    let records: Result<Vec<Value>, _> =
        body.split(|b| *b == b'\n').filter(|line| !line.is_empty()).map(serde_json::from_slice).collect();
    match records {
        Ok(records) => {
            let mut batches = recorded.audit.lock().expect("not poisoned");
            if recorded.count(2, records.len(), batches.len()) {
                batches.push(AuditBatch { records });
            }
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}
