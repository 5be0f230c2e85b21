//! `guest-http`: a small blocking HTTP client for FastMCP plugins, over
//! `wasi:http/outgoing-handler`.
//!
//! The host decides what a request may reach (the manifest's
//! `network.allow`) and adds brokered credentials itself, so a plugin never
//! sets `authorization`: trying to is a [`FetchError::Header`] error. A
//! request the host refuses fails with [`FetchError::Denied`], naming the
//! target.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Largest response body read (the host enforces its own cap too).
pub const MAX_BODY: usize = 4 << 20;

/// One request.
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Absolute `http(s)://host[:port]/path?query`.
    pub url: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, if any.
    pub body: Option<&'a [u8]>,
}

/// A response.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request failed.
#[derive(Debug)]
pub enum FetchError {
    /// The URL is not `http(s)://authority/path`.
    BadUrl(String),
    /// The host refused a header (forbidden or malformed).
    Header(String),
    /// The host refused to send the request to this target.
    Denied {
        /// `scheme://authority` of the request.
        target: String,
        /// The wasi:http error code.
        code: String,
    },
    /// The request was sent (or tried) and failed.
    Transport(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadUrl(url) => write!(f, "`{url}` is not an http(s) URL"),
            Self::Header(e) => write!(f, "header refused: {e}"),
            Self::Denied { target, code } => write!(f, "the host denied the request to {target} ({code})"),
            Self::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Send `request` and read the whole response.
pub fn fetch(request: &Request<'_>) -> Result<Response, FetchError> {
    let (scheme, rest) =
        request.url.split_once("://").ok_or_else(|| FetchError::BadUrl(request.url.into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let target = format!("{scheme}://{authority}");
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(FetchError::BadUrl(request.url.into())),
    };
    let entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    let headers = Fields::from_list(&entries).map_err(|e| FetchError::Header(format!("{e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_owned()),
    };
    let bad = |_| FetchError::BadUrl(request.url.into());
    outgoing.set_method(&method).map_err(bad)?;
    outgoing.set_scheme(Some(&scheme)).map_err(bad)?;
    outgoing.set_authority(Some(authority)).map_err(bad)?;
    outgoing.set_path_with_query(Some(path)).map_err(bad)?;
    let body = outgoing.body().map_err(|()| FetchError::Transport("no request body".into()))?;
    let pending = outgoing_handler::handle(outgoing, None).map_err(|code| error(&target, code))?;
    if let Some(bytes) = request.body {
        let stream = body.write().map_err(|()| FetchError::Transport("no body stream".into()))?;
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| FetchError::Transport(stream_error(e)))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| error(&target, code))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(error(&target, code)),
        Some(Err(())) | None => return Err(FetchError::Transport("no response".into())),
    };
    let status = response.status();
    let incoming = response.consume().map_err(|()| FetchError::Transport("no response body".into()))?;
    let stream = incoming.stream().map_err(|()| FetchError::Transport("no response body".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(FetchError::Transport(format!("response larger than {MAX_BODY} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(e) => return Err(FetchError::Transport(stream_error(e))),
        }
    }
    Ok(Response { status, body })
}

fn error(target: &str, code: ErrorCode) -> FetchError {
    match code {
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
            FetchError::Denied { target: target.to_owned(), code: format!("{code:?}") }
        }
        other => FetchError::Transport(format!("request to {target} failed: {other:?}")),
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
        StreamError::Closed => "stream closed".into(),
    }
}
