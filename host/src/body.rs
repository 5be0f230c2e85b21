//! Request bodies, for both transports (REST and MCP): bounded in size and
//! in time, and — for REST tool calls — a JSON object, with the error
//! contract's 415 / 413 / 408 / 400 instead of axum's plain-text rejections.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::header;
use serde_json::{Map, Value};

/// Read a JSON object body of at most `limit` bytes, arriving in full
/// within `timeout` (408 `body_timeout` otherwise).
pub async fn read_json_object(
    request: Request,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Map<String, Value>, ApiError> {
    if !is_json(request.headers().get(header::CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let (parts, body) = request.into_parts();
    let bytes = read_bytes(&parts.headers, body, limit, timeout).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest("the body must be a JSON object".into())),
        Err(e) => Err(ApiError::BadRequest(format!("the body is not valid JSON: {e}"))),
    }
}

/// Read a body of at most `limit` bytes (413 `payload_too_large`) arriving
/// in full within `timeout` (408 `body_timeout`).
pub async fn read_bytes(
    headers: &header::HeaderMap,
    body: axum::body::Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large);
    }
    let reading = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit));
    let Ok(read) = reading.await else {
        return Err(ApiError::BodyTimeout { timeout_ms: timeout.as_millis() as u64 });
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) if is_length_limit(&e) => return Err(too_large),
        Err(e) => return Err(ApiError::BadRequest(format!("cannot read body: {e}"))),
    };
    Ok(bytes)
}

/// `application/json` or `application/<something>+json`, any parameters.
fn is_json(value: Option<&header::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_json;
    use axum::http::HeaderValue;

    #[test]
    fn recognises_json_media_types() {
        for ok in ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"] {
            assert!(is_json(Some(&HeaderValue::from_static(ok))), "{ok}");
        }
        for bad in ["text/plain", "application/jsonx", "multipart/form-data"] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }
}
