//! [`JsonObject`]: the request body of tool calls, with the error contract's
//! 415 / 413 / 400 instead of axum's plain-text rejections.

use crate::correlation::CorrelationId;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

/// A JSON object body, at most `max_body_bytes` long.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let correlation_id = request
            .extensions()
            .get::<CorrelationId>()
            .cloned()
            .unwrap_or_else(CorrelationId::generate);
        let reject = |error: ApiError| error.at(&correlation_id);
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(reject(ApiError::UnsupportedMediaType));
        }
        let limit = state.config().max_body_bytes;
        let too_large = ApiError::PayloadTooLarge { limit };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(reject(too_large));
        }
        let bytes = match axum::body::to_bytes(request.into_body(), limit).await {
            Ok(bytes) => bytes,
            Err(e) if is_length_limit(&e) => return Err(reject(too_large)),
            Err(e) => {
                return Err(reject(ApiError::BadRequest(format!(
                    "cannot read body: {e}"
                ))));
            }
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(reject(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ))),
            Err(e) => Err(reject(ApiError::BadRequest(format!(
                "the body is not valid JSON: {e}"
            )))),
        }
    }
}

/// `application/json` or `application/<something>+json`, any parameters.
fn is_json(value: Option<&header::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
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
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(ok))), "{ok}");
        }
        for bad in ["text/plain", "application/jsonx", "multipart/form-data"] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }
}
