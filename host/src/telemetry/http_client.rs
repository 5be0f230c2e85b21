//! The client the OTLP/HTTP exporters send with: the host's `reqwest` (0.12,
//! rustls), on the host's runtime. `opentelemetry-http` implements its
//! client trait only for `reqwest` 0.13, which would build a second HTTP
//! stack into the binary; this adapter is the few lines that avoid it.

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use std::time::Duration;

/// Largest collector answer read.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// An OTLP/HTTP client with a timeout per request.
#[derive(Debug, Clone)]
pub struct ReqwestClient(reqwest::Client);

impl ReqwestClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self(client))
    }

    /// POST `body` to `url` with `headers`; the status and (bounded) body.
    pub async fn post(
        &self,
        url: &str,
        headers: http::HeaderMap,
        body: Vec<u8>,
    ) -> Result<(http::StatusCode, Bytes), HttpError> {
        let response = self.0.post(url).headers(headers).body(body).send().await?;
        let status = response.status();
        let body = read_bounded(response).await?;
        Ok((status, body))
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Bytes, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err("the collector's answer is too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let mut answer = Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        Ok(answer.body(read_bounded(response).await?)?)
    }
}
