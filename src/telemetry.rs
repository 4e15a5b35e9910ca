//! Logs, metrics and traces: `tracing` with a per-request span (request id, GraphQL
//! operation), Prometheus metrics prefixed `concierge_` (counters and histograms recorded as
//! things happen, [`gauges`] read at scrape time), and OpenTelemetry [`traces`] when an OTLP
//! endpoint is configured.

pub mod gauges;
pub mod traces;

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::LogFormat;

/// Installs the global subscriber. `sink` is where lines go (stdout in the binary, a
/// discarding writer in quiet tests).
pub fn init_tracing<W>(filter: &str, format: LogFormat, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    init_tracing_with(filter, format, sink, None);
}

/// As [`init_tracing`], with spans also exported as OpenTelemetry traces when `traces` is
/// given. `filter` applies to the log lines only: traces have their own (see
/// [`traces::Traces::layer`]).
pub fn init_tracing_with<W>(filter: &str, format: LogFormat, sink: W, traces: Option<&traces::Traces>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(true).with_writer(sink).boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().compact().with_writer(sink).boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(logs.with_filter(filter));
    let traced = traces.map(|t| t.layer());
    // A second init (several apps in one test process) is harmless; ignore it.
    let _ = subscriber.with(traced).try_init();
}

/// Spawns `task` inside `span`, so its log lines and trace belong to it.
pub fn spawn_in<F>(span: tracing::Span, task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(tracing::Instrument::instrument(task, span))
}

/// The process-wide Prometheus recorder (metrics are global by nature of the `metrics` facade).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .expect("static bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; then this one simply stays empty.
        let _ = metrics::set_global_recorder(recorder);
        metrics::describe_histogram!(
            crate::fanout::FANOUT_LAG,
            metrics::Unit::Seconds,
            "Seconds from a change being published (by any replica) to this replica hearing it."
        );
        handle
    })
}

/// Operation names are chosen by clients, so they are bounded before becoming metric labels:
/// a well-formed name is kept until `MAX_OPERATION_LABELS` distinct ones have been seen,
/// the rest are counted as `other`.
pub fn operation_label(name: Option<&str>) -> String {
    const MAX_OPERATION_LABELS: usize = 256;
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name else { return "anonymous".to_owned() };
    let well_formed = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !well_formed {
        return "other".to_owned();
    }
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(name) || seen.len() < MAX_OPERATION_LABELS {
        seen.insert(name.to_owned());
        name.to_owned()
    } else {
        "other".to_owned()
    }
}
