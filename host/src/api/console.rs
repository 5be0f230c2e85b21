//! The approver inbox page (`/console/approvals`): plain HTML, CSS and
//! JavaScript embedded in the binary (no CDN, no external fonts), served
//! with a strict `Content-Security-Policy` — scripts and styles from this
//! host only, no inline script, no framing, no form posts — so that a
//! hostile argument shown in the page can never run. The page calls the
//! approval API with the token the approver pastes (kept in the tab's
//! `sessionStorage`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("console/approvals.html");
const SCRIPT: &str = include_str!("console/approvals.js");
const STYLE: &str = include_str!("console/approvals.css");

/// What the page may load and do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    guarded(body.into_response(), content_type, CONTENT_SECURITY_POLICY)
}

/// `response` as a page of this host: its content type and `policy`, never
/// sniffed, framed, cached or sent on as a referrer.
pub(super) fn guarded(mut response: Response, content_type: &'static str, policy: &'static str) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /console/approvals`.
pub async fn page() -> Response {
    asset(PAGE, "text/html; charset=utf-8")
}

/// `GET /console/approvals.js`.
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /console/approvals.css`.
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}
