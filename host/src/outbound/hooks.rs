//! [`OutboundHooks`]: the `wasi:http` hooks of one call. Every outgoing
//! request passes, in order:
//!
//! 1. **count** — at most `max_requests_per_call` per call;
//! 2. **allowlist** — the request's scheme, host and port must match one of
//!    the manifest's `network.allow` patterns (none: no network at all);
//! 3. **addresses** — the host name's resolved addresses must be in ranges
//!    the pattern may reach ([`super::address`]);
//! 4. **inject** — for a grant whose `inject.host` matches, the host adds the
//!    credential header itself (the plugin can neither read nor set it: the
//!    header is forbidden to the guest);
//! 5. **send** — to the checked addresses only, within the limits.
//!
//! Denials reach the plugin as `wasi:http` error codes
//! (`HTTP-request-denied`, `destination-IP-prohibited`) and are logged and
//! recorded in the call's [`super::log::EgressLog`], naming the target.

use super::address::{AddressError, permitted_addresses};
use super::log::EgressEvent;
use super::send::{ConnectionTask, SendLimits, send};
use super::{Egress, OutboundConfig};
use crate::broker::Grant;
use crate::origin::Origin;
use http::HeaderValue;
use std::sync::Arc;
use tracing::Instrument as _;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
};

/// The hooks of one call.
pub struct OutboundHooks {
    egress: Egress,
    requests_left: u32,
    correlation_id: String,
    /// The tool being called (`plugin:tool`), for the plugin's own log.
    tool: String,
}

impl OutboundHooks {
    /// Hooks for one call.
    pub fn new(egress: Egress, correlation_id: String, tool: String) -> Self {
        let requests_left = egress.config.outbound.max_requests_per_call;
        Self { egress, requests_left, correlation_id, tool }
    }

    /// The call's broker, network rules and egress log.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Whether the guest may not set the header `name`.
    fn forbids(&self, name: &http::HeaderName) -> bool {
        DEFAULT_FORBIDDEN_HEADERS.contains(name) || self.egress.network.forbidden_headers.contains(name)
    }

    /// Steps 1 and 2, synchronously: the origin and the grant to inject.
    fn admit(&mut self, uri: &http::Uri) -> Result<(Origin, Option<Grant>), Error> {
        let deny = |this: &Self, target: String, reason: String, error: Error| {
            let reason = crate::text::clip(&reason, super::log::MAX_FIELD).into_owned();
            tracing::warn!(
                target: crate::plugin_log::TARGET,
                correlation_id = %this.correlation_id, tool = %this.tool, %target, %reason,
                "outbound request denied"
            );
            this.egress.log.push(EgressEvent::Denied { target, reason });
            Err(error)
        };
        let target = target_of(uri);
        if self.requests_left == 0 {
            let limit = self.egress.config.outbound.max_requests_per_call;
            return deny(
                self,
                target,
                format!("more than {limit} requests in one call"),
                Error::HttpRequestDenied,
            );
        }
        self.requests_left -= 1;
        let Some(origin) = Origin::of_uri(uri) else {
            return deny(self, target, "not an http(s) URL with a host".into(), Error::HttpRequestUriInvalid);
        };
        let network = &self.egress.network;
        if network.allow.is_empty() {
            return deny(
                self,
                origin.to_string(),
                "the plugin's manifest allows no network".into(),
                Error::HttpRequestDenied,
            );
        }
        if !network.allow.iter().any(|p| p.matches(&origin)) {
            return deny(
                self,
                origin.to_string(),
                format!("`{origin}` is not in the plugin's network.allow"),
                Error::HttpRequestDenied,
            );
        }
        // Inject only where the manifest asks *and* the operator bound the
        // provider to this exact origin (scheme, host and port).
        // Where several grants could, the tool's named provider wins; a
        // provider that acts as the caller is used only by tools naming it.
        let broker = &self.egress.broker;
        let named = self.egress.credential.as_deref();
        let mut candidates = network
            .grants
            .iter()
            .filter(|g| injects_into(g, &origin) && broker.may_inject(&g.provider, &origin));
        let grant = match named {
            Some(name) => candidates.find(|g| g.provider == name),
            None => candidates.find(|g| !broker.acts_as_caller(&g.provider)),
        }
        .cloned();
        Ok((origin, grant))
    }
}

fn injects_into(grant: &Grant, origin: &Origin) -> bool {
    grant.inject.as_ref().is_some_and(|i| i.host == origin.host && i.port.is_none_or(|p| p == origin.port))
}

/// What a request tried to reach, for messages (no path or query: they may
/// carry data), cut to [`super::log::MAX_FIELD`] bytes.
fn target_of(uri: &http::Uri) -> String {
    let target = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            format!("{scheme}://{}", authority.as_str().rsplit('@').next().unwrap_or(""))
        }
        (_, Some(authority)) => authority.as_str().rsplit('@').next().unwrap_or("").to_owned(),
        _ => "(no host)".into(),
    };
    crate::text::clip(&target, super::log::MAX_FIELD).into_owned()
}

impl WasiHttpHooks for OutboundHooks {
    /// Checked for every header the guest sets: no allocation here.
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        self.forbids(name)
    }

    /// The same rule, for tasks that run without the store.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        let network = self.egress.network.clone();
        Arc::new(move |name| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name) || network.forbidden_headers.contains(name)
        })
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, ConnectionTask), Error>> + Send> {
        let admitted = self.admit(request.uri());
        let egress = self.egress.clone();
        let correlation_id = self.correlation_id.clone();
        let tool = self.tool.clone();
        Box::new(async move {
            let (origin, grant) = admitted?;
            let config: &OutboundConfig = &egress.config.outbound;
            let resolver = egress.client.resolver();
            let addrs = match permitted_addresses(
                resolver,
                &origin,
                config.dns_timeout,
                &config.allow_internal,
            )
            .await
            {
                Ok(addrs) => addrs,
                Err(e) => {
                    tracing::warn!(
                        target: crate::plugin_log::TARGET,
                        %correlation_id, %tool, target = %origin, reason = %e,
                        "outbound request denied"
                    );
                    egress
                        .log
                        .push(EgressEvent::Denied { target: origin.to_string(), reason: e.to_string() });
                    return Err(match e {
                        AddressError::Unresolved(_) => Error::DnsError { rcode: None, info_code: None },
                        AddressError::Prohibited { .. } => Error::DestinationIpProhibited,
                    });
                }
            };
            // Whatever the guest managed to put there never leaves the host.
            for header in &egress.network.forbidden_headers {
                request.headers_mut().remove(header);
            }
            // The client span opens first: the credential step is its child.
            let method = request.method().to_string();
            let provider = grant.as_ref().map(|g| g.provider.as_str());
            let span = egress.trace.start(&method, &origin, provider, request.headers_mut());
            if let Some(grant) = &grant
                && let Err(e) = inject(&egress, grant, &origin, &mut request)
                    .instrument(crate::telemetry::context::credential_span(&span, &grant.provider))
                    .await
            {
                crate::telemetry::context::end_outbound(&span, None, None, Some("credential_unavailable"));
                tracing::warn!(
                    target: crate::plugin_log::TARGET,
                    %correlation_id, %tool, target = %origin, reason = ?e,
                    "outbound request denied"
                );
                return Err(e);
            }
            let limits = SendLimits {
                connect_timeout: clamp(options.and_then(|o| o.connect_timeout), config.connect_timeout),
                first_byte_timeout: clamp(
                    options.and_then(|o| o.first_byte_timeout),
                    config.first_byte_timeout,
                ),
                between_bytes_timeout: clamp(
                    options.and_then(|o| o.between_bytes_timeout),
                    config.between_bytes_timeout,
                ),
                max_request_body: config.max_request_body_bytes,
                max_response_body: config.max_response_body_bytes,
            };
            let method = request.method().to_string();
            let sent = send(&egress.client, request, &origin, &addrs, limits).await;
            let (status, error) = match &sent {
                Ok((response, _)) => {
                    let status = response.status().as_u16();
                    let length = response
                        .headers()
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse().ok());
                    crate::telemetry::context::end_outbound(&span, Some(status), length, None);
                    (Some(status), None)
                }
                Err(e) => {
                    tracing::info!(
                        target: crate::plugin_log::TARGET,
                        %correlation_id, %tool, target = %origin, error = %e,
                        "outbound request failed"
                    );
                    crate::telemetry::context::end_outbound(&span, None, None, Some(error_type(e)));
                    (None, Some(e.to_string()))
                }
            };
            egress.log.push(EgressEvent::Request { method, origin: origin.to_string(), status, error });
            sent
        })
    }
}

/// Step 4: add the grant's credential to the request.
async fn inject(
    egress: &Egress,
    grant: &Grant,
    origin: &Origin,
    request: &mut http::Request<WasiBody>,
) -> Result<(), Error> {
    let inject = grant.inject.as_ref().expect("only grants with an injection are passed");
    let on_behalf = egress.on_behalf.as_deref();
    let credential = match egress.broker.credential(grant, on_behalf).await {
        Ok(credential) => credential,
        Err(e) => {
            let reason = format!("no credential for provider `{}`: {e}", grant.provider);
            egress.log.push(EgressEvent::Denied { target: origin.to_string(), reason: reason.clone() });
            // A delegated credential that cannot be had is the call's
            // failure; a service one keeps its usual path (the tool reports
            // what it could not reach).
            if egress.broker.acts_as_caller(&grant.provider) {
                egress.log.credential_unavailable(&grant.provider);
            }
            return Err(Error::InternalError(Some(reason)));
        }
    };
    let value = if inject.header == http::header::AUTHORIZATION {
        format!("Bearer {}", credential.value.expose())
    } else {
        credential.value.expose().to_owned()
    };
    let mut value = HeaderValue::try_from(value).map_err(|_| {
        Error::InternalError(Some(format!("provider `{}` issued an unusable credential", grant.provider)))
    })?;
    value.set_sensitive(true);
    request.headers_mut().insert(inject.header.clone(), value);
    egress.log.push(EgressEvent::Inject {
        provider: grant.provider.clone(),
        scopes: grant.scopes.clone(),
        origin: origin.to_string(),
        fingerprint: credential.fingerprint,
        identity: egress.broker.identity(&grant.provider, on_behalf),
    });
    Ok(())
}

/// A stable name for a failed request's `error.type` (never its message,
/// which may name addresses).
fn error_type(error: &Error) -> &'static str {
    match error {
        Error::ConnectionTimeout => "connection_timeout",
        Error::ConnectionReadTimeout => "read_timeout",
        Error::ConnectionRefused => "connection_refused",
        Error::TlsCertificateError => "tls_certificate_error",
        Error::HttpResponseBodySize(_) => "response_body_size",
        Error::HttpRequestBodySize(_) => "request_body_size",
        _ => "request_failed",
    }
}

fn clamp(asked: Option<std::time::Duration>, max: std::time::Duration) -> std::time::Duration {
    asked.map_or(max, |asked| asked.min(max))
}

#[cfg(test)]
mod tests {
    use super::target_of;

    #[test]
    fn targets_never_show_paths_queries_or_user_info() {
        assert_eq!(
            target_of(&"http://u:p@evil.example:81/a?token=x".parse().unwrap()),
            "http://evil.example:81"
        );
        assert_eq!(target_of(&"https://api.example.com/v1".parse().unwrap()), "https://api.example.com");
    }
}
