//! What the `telemetry` settings (and their `OTEL_*` variables) mean, checked
//! once: whether traces are exported, where, how, and sampled how.

use crate::config::TelemetryConfig;
use anyhow::{Context as _, bail};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;
use std::collections::HashMap;

/// How spans and the audit export's log records travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over HTTP, protobuf bodies (`http/protobuf`).
    HttpProtobuf,
    /// OTLP over gRPC (`grpc`).
    Grpc,
}

/// The telemetry settings, resolved and checked.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// The traces URL; `None`: no trace export.
    pub traces_url: Option<String>,
    /// The collector's base URL, as configured.
    base: Option<String>,
    /// OTLP transport.
    pub protocol: Protocol,
    /// Headers for every export (parsed from `key=value,…`).
    pub headers: HashMap<String, String>,
    /// The resource's attributes besides `service.*`.
    pub resource: Vec<KeyValue>,
    /// `service.name`.
    pub service_name: String,
    /// The sampler's name and ratio, checked.
    sampler: (String, f64),
}

impl TraceSettings {
    /// Check the settings; the error names the setting at fault.
    pub fn resolve(config: &TelemetryConfig) -> anyhow::Result<Self> {
        let protocol = match config.protocol.trim() {
            "http/protobuf" | "" => Protocol::HttpProtobuf,
            "grpc" => Protocol::Grpc,
            other => bail!("telemetry.protocol: `{other}` is not `http/protobuf` or `grpc`"),
        };
        let base = config.endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned);
        let traces = config.traces_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty());
        for (key, url) in [("telemetry.endpoint", base.as_deref()), ("telemetry.traces_endpoint", traces)] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                bail!("{key}: must be an http:// or https:// URL");
            }
        }
        let exporter = config.exporter.as_deref().map(str::trim).unwrap_or("");
        let on = match exporter {
            "" => base.is_some() || traces.is_some(),
            "otlp" => true,
            "none" => false,
            other => bail!("telemetry.exporter: `{other}` is not `otlp` or `none`"),
        };
        let traces_url = on.then(|| match (traces, &base, protocol) {
            (Some(url), _, _) => url.to_owned(),
            (None, Some(base), Protocol::HttpProtobuf) => signal_url(base, "traces"),
            (None, Some(base), Protocol::Grpc) => base.clone(),
            (None, None, Protocol::HttpProtobuf) => "http://localhost:4318/v1/traces".to_owned(),
            (None, None, Protocol::Grpc) => "http://localhost:4317".to_owned(),
        });
        let headers = pairs(config.headers.as_deref().unwrap_or(""))
            .context("telemetry.headers: expected key=value,key2=value2")?
            .into_iter()
            .collect();
        let resource = pairs(config.resource_attributes.as_deref().unwrap_or(""))
            .context("telemetry.resource_attributes: expected key=value,key2=value2")?
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        let ratio = match config.sampler_arg.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => 1.0,
            Some(arg) => match arg.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => r,
                _ => bail!("telemetry.sampler_arg: `{arg}` is not a number from 0 to 1"),
            },
        };
        let sampler = config.sampler.trim().to_owned();
        if !SAMPLERS.contains(&sampler.as_str()) {
            bail!("telemetry.sampler: `{sampler}` is not one of {}", SAMPLERS.join(", "));
        }
        let service_name = match config.service_name.trim() {
            "" => "fastmcp".to_owned(),
            name => name.to_owned(),
        };
        Ok(Self { traces_url, base, protocol, headers, resource, service_name, sampler: (sampler, ratio) })
    }

    /// Where the audit export sends OTLP log records: the collector's base
    /// URL (`/v1/logs` for HTTP).
    pub fn logs_endpoint(&self) -> Option<String> {
        let base = self.base.as_ref()?;
        Some(match self.protocol {
            Protocol::HttpProtobuf => signal_url(base, "logs"),
            Protocol::Grpc => base.clone(),
        })
    }

    /// The sampler the settings name.
    pub fn sampler(&self) -> Sampler {
        let (name, ratio) = (&self.sampler.0, self.sampler.1);
        match name.as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatioBased(ratio),
            "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            "parentbased_traceidratio" => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))),
            _ => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        }
    }
}

const SAMPLERS: &[&str] = &[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// `base` + `/v1/{signal}`, as OTLP/HTTP defines for the base endpoint.
fn signal_url(base: &str, signal: &str) -> String {
    format!("{}/v1/{signal}", base.trim_end_matches('/'))
}

/// `key=value,key2=value2` with URL-encoded values (the `OTEL_*` format).
fn pairs(raw: &str) -> anyhow::Result<Vec<(String, String)>> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').context("a pair without `=`")?;
            let key = key.trim();
            if key.is_empty() {
                bail!("an empty key");
            }
            Ok((
                key.to_owned(),
                percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy().into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TelemetryConfig {
        TelemetryConfig::default()
    }

    #[test]
    fn off_without_an_endpoint_on_with_one() {
        assert!(TraceSettings::resolve(&config()).unwrap().traces_url.is_none());
        let mut c = config();
        c.endpoint = Some("http://collector:4318/".into());
        let s = TraceSettings::resolve(&c).unwrap();
        assert_eq!(s.traces_url.as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(s.logs_endpoint().as_deref(), Some("http://collector:4318/v1/logs"));
        c.exporter = Some("none".into());
        assert!(TraceSettings::resolve(&c).unwrap().traces_url.is_none());
        c.exporter = None;
        c.traces_endpoint = Some("http://other/x".into());
        assert_eq!(TraceSettings::resolve(&c).unwrap().traces_url.as_deref(), Some("http://other/x"));
        c.protocol = "grpc".into();
        c.traces_endpoint = None;
        assert_eq!(TraceSettings::resolve(&c).unwrap().traces_url.as_deref(), Some("http://collector:4318/"));
    }

    #[test]
    fn bad_values_name_their_setting() {
        type Edit = fn(&mut TelemetryConfig);
        let cases: [(&str, Edit); 5] = [
            ("telemetry.protocol", |c| c.protocol = "http/json".into()),
            ("telemetry.sampler:", |c| c.sampler = "sometimes".into()),
            ("telemetry.sampler_arg", |c| c.sampler_arg = Some("2".into())),
            ("telemetry.headers", |c| c.headers = Some("novalue".into())),
            ("telemetry.endpoint", |c| c.endpoint = Some("collector:4318".into())),
        ];
        for (key, edit) in cases {
            let mut c = config();
            edit(&mut c);
            let error = format!("{:#}", TraceSettings::resolve(&c).unwrap_err());
            assert!(error.starts_with(key), "{error}");
        }
    }

    #[test]
    fn pairs_are_url_decoded() {
        let parsed = pairs("api-key=a%20b%3Dc, x=y").unwrap();
        assert_eq!(parsed, [("api-key".into(), "a b=c".into()), ("x".into(), "y".into())]);
    }
}
