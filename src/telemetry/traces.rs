//! Traces over OTLP: on only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and then every `tracing` span of this crate
//! (HTTP requests, mail sync batches, webhook and notification delivery attempts, service
//! calls) becomes an OpenTelemetry span, sent in batches from a thread of the SDK's own.
//! Unset, nothing is built: no exporter, no thread, no layer, no propagation.
//!
//! The standard variables are honoured as far as the crates do: the endpoints, headers,
//! timeout and compression (by `opentelemetry-otlp`), `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` (the SDK's resource detectors; the service is `concierge` when
//! neither names it), `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_BSP_*` (the SDK). The protocol is
//! read here: `http/protobuf` (the default) or `http/json`; `grpc` is not built in, so it is
//! answered with a warning and `http/protobuf`. `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` keep traces off whatever the endpoint.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// Whether traces are exported by this process (read on every request: one atomic load).
static ON: AtomicBool = AtomicBool::new(false);

/// The service name when the environment gives none.
const SERVICE: &str = "concierge";

/// The tracer provider while traces are on. Shut it down on the way out: that sends what is
/// still buffered.
pub struct Traces {
    provider: SdkTracerProvider,
}

/// What the environment asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Off,
    On(Protocol),
}

fn wanted(var: impl Fn(&str) -> Option<String>) -> Wanted {
    let set = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return Wanted::Off;
    }
    if set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() && set("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        return Wanted::Off;
    }
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    Wanted::On(match protocol.as_deref() {
        None | Some("http/protobuf") => Protocol::HttpBinary,
        Some("http/json") => Protocol::HttpJson,
        Some(other) => {
            // Logging is not up yet: say it on stderr, once, at start.
            eprintln!("OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported by this build; sending traces as http/protobuf");
            Protocol::HttpBinary
        }
    })
}

impl Traces {
    /// Traces as the environment asks for them: None (and nothing started) when no OTLP
    /// endpoint is set.
    pub fn from_env() -> anyhow::Result<Option<Traces>> {
        let Wanted::On(protocol) = wanted(|name| std::env::var(name).ok()) else { return Ok(None) };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .build()
            .context("cannot set up the OTLP trace exporter (OTEL_EXPORTER_OTLP_*)")?;
        let mut resource = Resource::builder().build();
        let unnamed = resource.get(&opentelemetry::Key::from_static_str("service.name")).is_none_or(|n| n.as_str() == "unknown_service");
        if unnamed {
            resource = Resource::builder().with_service_name(SERVICE).build();
        }
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        ON.store(true, Ordering::Relaxed);
        Ok(Some(Traces { provider }))
    }

    /// The layer that turns this crate's spans into OpenTelemetry spans. It has a filter of
    /// its own (this crate, INFO and up), so `RUST_LOG` quieting the logs does not take the
    /// spans away, and the exporter's own HTTP client is never traced.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let tracer = self.provider.tracer(SERVICE);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_filter(Targets::new().with_target("concierge", tracing::Level::INFO))
    }

    /// Sends what is buffered and stops the exporter (bounded by the SDK's own timeout).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "cannot send the last traces");
        }
        ON.store(false, Ordering::Relaxed);
    }
}

/// Whether traces are exported by this process.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Makes the trace a caller sent in its W3C `traceparent` (and `tracestate`) header the
/// parent of `span`, when traces are on. A missing or malformed header leaves `span` the root
/// of a trace of its own.
pub fn adopt_caller_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !on() {
        return;
    }
    let context = TraceContextPropagator::new().extract(&Headers(headers));
    // Fails only when the span is disabled (filtered out): nothing to do then.
    let _ = span.set_parent(context);
}

/// What a request span records of its answer: the status code while traces are on, besides
/// the default (a DEBUG line with the latency).
#[derive(Clone, Copy, Debug)]
pub struct RecordStatus;

impl<B> tower_http::trace::OnResponse<B> for RecordStatus {
    fn on_response(self, response: &http::Response<B>, latency: std::time::Duration, span: &tracing::Span) {
        tower_http::trace::DefaultOnResponse::default().on_response(response, latency, span);
        if on() {
            span.record("http.response.status_code", response.status().as_u16());
        }
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn traces_are_on_only_with_an_endpoint_and_not_switched_off() {
        assert_eq!(wanted(env(&[])), Wanted::Off);
        assert_eq!(wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")])), Wanted::Off);
        assert_eq!(wanted(env(&[("OTEL_SERVICE_NAME", "x")])), Wanted::Off);
        assert_eq!(wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])), Wanted::On(Protocol::HttpBinary));
        assert_eq!(wanted(env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")])), Wanted::On(Protocol::HttpBinary));
        assert_eq!(wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "TRUE")])), Wanted::Off);
        assert_eq!(wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")])), Wanted::Off);
    }

    #[test]
    fn the_protocol_is_protobuf_unless_json_is_asked_for() {
        let with = |p: &str| wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", p)]));
        assert_eq!(with("http/json"), Wanted::On(Protocol::HttpJson));
        assert_eq!(with("http/protobuf"), Wanted::On(Protocol::HttpBinary));
        assert_eq!(with("grpc"), Wanted::On(Protocol::HttpBinary));
        let traces_only = wanted(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ]));
        assert_eq!(traces_only, Wanted::On(Protocol::HttpJson));
    }
}
