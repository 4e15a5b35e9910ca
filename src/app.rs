//! The application: binds the listener, wires services, schema and routes, and runs until a
//! shutdown signal, letting in-flight requests finish and closing subscriptions cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::middleware::{map_request, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::db::Db;
use crate::fanout::Fanout;
use crate::graphql::{self, ConciergeSchema};
use crate::services::Services;
use crate::transport::{self, REQUEST_ID};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// Shared, so each connection holds a pointer, not a copy.
    pub services: Arc<Services>,
    pub schema: ConciergeSchema,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Long-lived connection tasks (WebSockets), awaited on shutdown.
    pub tasks: TaskTracker,
}

pub struct Application {
    listener: TcpListener,
    /// `/metrics` on an address of its own (CONCIERGE_METRICS_BIND), off the public listener.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Opens the database, applies migrations and binds the listener (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Arc::new(crate::clock::SystemClock)).await
    }

    /// As [`Application::build`], with scheduled work (deliveries, retries, daily summaries)
    /// on `clock` (tests move a manual one).
    pub async fn build_with_clock(mut config: Config, clock: crate::clock::SharedClock) -> anyhow::Result<Application> {
        // Install the metrics recorder before anything records.
        crate::telemetry::prometheus();
        let db = Db::connect(&config.database_url(), config.db_max_connections).await?;
        db.migrate().await?;
        let shutdown = CancellationToken::new();
        let fanout = Fanout::start(db.clone(), shutdown.clone()).await.context("starting change fan-out")?;
        let secrets = crate::crypto::SecretBox::load(config.secret_key.as_ref().map(|k| k.0.as_str()), &config.data_dir)?;
        let mailer = crate::mail::Mailer::new(config.smtp_url.as_ref().map(|u| u.0.as_str()), &config.mail_from, &config.data_dir)?;
        let listener =
            TcpListener::bind(config.bind).await.with_context(|| format!("cannot listen on {} (CONCIERGE_BIND)", config.bind))?;
        let metrics_listener = match config.metrics_bind {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (CONCIERGE_METRICS_BIND)"))?),
            None => None,
        };
        // Links and photo URLs need the address really bound (port 0 picks one).
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{}", listener.local_addr()?));
        }
        let blobs: crate::blob::SharedBlobStore = Arc::new(crate::blob::LocalBlobStore::new(config.data_dir.join("blobs"))?);
        let mail = mail_options(&config)?;
        let trust = concierge_connector_sdk::trust::Trust::new(mail.extra_root_certs_pem.as_deref()).map_err(anyhow::Error::msg)?;
        let discovery = crate::mailboxes::discovery::Discovery::new(&config.dns_servers, config.outbound_policy(), trust)?;
        let connectors = crate::accounts::registry::Registry::builtin(mail, &config)?;
        let relying_party = crate::passkeys::service::relying_party(&config)?;
        // A data folder this process cannot write (a read-only container on PostgreSQL with
        // the key in the environment) still serves: only the quick takeover after a restart
        // is lost.
        let instance = Arc::new(crate::instance::Instance::claim(&config.data_dir).unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "cannot keep this gateway's identity in the data folder; using one for this run");
            crate::instance::Instance::ephemeral()
        }));
        let foundation = crate::services::Foundation {
            instance,
            db,
            fanout,
            secrets,
            mailer,
            blobs,
            clock,
            connectors,
            relying_party,
            discovery: Arc::new(discovery),
        };
        let services = Services::new(&config, foundation)?;
        let schema = graphql::build_schema(&config, services.clone());
        let state = AppState { config: Arc::new(config), services: Arc::new(services), schema, shutdown, tasks: TaskTracker::new() };
        Ok(Application { listener, metrics_listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.bind)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Where `/metrics` is served when it has an address of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn services(&self) -> &Services {
        &self.state.services
    }

    /// The GraphQL schema the server answers with (the data-export builder reads through it).
    pub fn schema(&self) -> &ConciergeSchema {
        &self.state.schema
    }

    /// A handle that starts the shutdown when cancelled (tests use it instead of a signal).
    pub fn shutdown_handle(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until `shutdown_handle()` is cancelled or SIGINT/SIGTERM arrives.
    pub async fn run(self) -> anyhow::Result<()> {
        let Application { listener, metrics_listener, state } = self;
        let addr = listener.local_addr()?;
        let public = state.config.public_url();
        tracing::info!(%addr, graphiql = %format!("{public}/graphql"), backend = ?state.services.db.backend(), "serving");
        let stop = state.shutdown.clone();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                tracing::info!("shutdown requested; finishing in-flight requests");
                stop.cancel();
            }
        });
        // Background work stops with the server; an email being sent (or a webhook attempt
        // in progress) is let finish.
        if state.config.queue_workers {
            state.tasks.spawn(state.services.delivery.clone().run(stop.clone()));
            state.tasks.spawn(state.services.digests.clone().run(stop.clone()));
            state.tasks.spawn(state.services.webhooks.clone().run(stop.clone()));
            state.tasks.spawn(state.services.calendars.sync().clone().run(stop.clone()));
            state.tasks.spawn(state.services.deletion.clone().run(stop.clone()));
            state.tasks.spawn(state.services.exports.clone().run(state.schema.clone(), stop.clone()));
        }
        state.tasks.spawn(state.services.availability.clone().run(stop.clone()));
        let sync = state.services.mailboxes.sync().clone();
        if let Err(e) = sync.start_all().await {
            tracing::error!(error = ?e, "cannot start the mailbox syncs");
        }
        state.tasks.spawn({
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                sync.shutdown().await;
            }
        });
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        let header_read_timeout = Duration::from_secs(state.config.header_read_timeout_secs.max(1));
        let server = transport::serve::serve(listener, router(state.clone()), header_read_timeout, stop.clone());
        let metrics_server = async {
            if let Some(listener) = metrics_listener {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(%addr, "serving /metrics");
                }
                transport::serve::serve(listener, metrics_router(state.clone()), header_read_timeout, stop.clone()).await;
            }
        };
        // In-flight requests get the grace period; after it the process stops regardless.
        let served = tokio::select! {
            _ = futures_util::future::join(server, metrics_server) => Ok(()),
            _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("grace period over; dropping requests still in flight");
                Ok(())
            }
        };
        state.tasks.close();
        if tokio::time::timeout(grace, state.tasks.wait()).await.is_err() {
            tracing::warn!("WebSocket connections did not close within the grace period");
        }
        state.services.db.close().await;
        tracing::info!("stopped");
        served
    }
}

/// How the built-in mail connectors reach servers: the operator's extra trusted roots,
/// whether unencrypted connections to other machines are allowed, and which addresses
/// user-typed hosts may resolve to (`CONCIERGE_OUTBOUND_ALLOW`; presets' servers are the
/// operator's and not checked, see [`crate::accounts::registry`]).
fn mail_options(config: &Config) -> anyhow::Result<concierge_connector_imap_smtp::Options> {
    let extra_root_certs_pem = match &config.mail_ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {} (CONCIERGE_MAIL_CA_FILE)", path.display()))?),
        None => None,
    };
    Ok(concierge_connector_imap_smtp::Options {
        extra_root_certs_pem,
        allow_plaintext_remote: config.mail_allow_plaintext,
        outbound: config.outbound_policy(),
        poll_interval: Duration::from_secs(config.mail_poll_secs),
        ..concierge_connector_imap_smtp::Options::default()
    })
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let mut routes = Router::new()
        .route("/graphql", get(graphql::http::get).post(graphql::http::post))
        .route("/assets/graphiql/{file}", get(crate::assets::graphiql_asset))
        .route("/confirm-email", get(crate::profile::pages::confirm_email_page).post(crate::profile::pages::confirm_email))
        .route("/reset-password", get(crate::recovery::pages::reset_password_page).post(crate::recovery::pages::reset_password))
        .route("/exports/{id}", get(crate::export::pages::download))
        .route(
            "/email-preferences",
            get(crate::notifications::pages::email_preferences_page).post(crate::notifications::pages::unsubscribe),
        )
        .route("/passkeys", get(crate::passkeys::pages::page))
        .route("/assets/passkeys.js", get(crate::passkeys::pages::script))
        .route("/verify-email", get(crate::recovery::pages::verify_email_page).post(crate::recovery::pages::verify_email))
        .route("/invitation", get(crate::profile::pages::invitation_page).post(crate::profile::pages::answer_invitation))
        .route("/media/photos/{account}/{version}/{file}", get(crate::profile::pages::photo))
        .route("/oauth/callback/{connector}", get(crate::connect::callback))
        .route("/oauth/done", get(crate::connect::done))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.config.metrics_bind.is_none() {
        routes = routes.route("/metrics", get(metrics));
    }
    routes
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(map_response(transport::finish_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
                    let span = tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %request.method(),
                        path = %request.uri().path(),
                        operation = tracing::field::Empty,
                        // Filled only while traces are exported, so log lines stay as they were.
                        otel.kind = tracing::field::Empty,
                        http.response.status_code = tracing::field::Empty,
                    );
                    if crate::telemetry::traces::on() {
                        span.record("otel.kind", "server");
                        crate::telemetry::traces::adopt_caller_trace(&span, request.headers());
                    }
                    span
                })
                .on_response(crate::telemetry::traces::RecordStatus),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(map_request(transport::drop_unfit_request_id))
}

/// The listener of CONCIERGE_METRICS_BIND serves `/metrics` and nothing else.
fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state).layer(map_response(transport::finish_response))
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers too.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if !state.services.db.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    }
    // Without the change listener, this replica's subscribers miss other replicas' changes.
    if !state.services.fanout.hearing() {
        return (StatusCode::SERVICE_UNAVAILABLE, "change listener unavailable").into_response();
    }
    "ready".into_response()
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = state.config.metrics_token.as_ref().filter(|t| !t.0.is_empty())
        && !transport::bearer_matches(&headers, &token.0)
    {
        return transport::metrics_unauthorized();
    }
    let mut body = crate::telemetry::prometheus().render();
    body.push_str(&format!(
        "# HELP concierge_db_statements_total Database statements sent by read paths since start.\n\
         # TYPE concierge_db_statements_total counter\n\
         concierge_db_statements_total {}\n",
        state.services.db.queries()
    ));
    crate::telemetry::gauges::render(&state.services, &mut body).await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], body).into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn the_poll_interval_for_servers_without_idle_is_a_setting() {
        let config = Args::parse_from(["concierge", "--mail-poll-secs", "15"]).config;
        assert_eq!(mail_options(&config).unwrap().poll_interval, Duration::from_secs(15));
        assert_eq!(mail_options(&Config::defaults()).unwrap().poll_interval, Duration::from_secs(60));
        for bad in ["0", "3601", "soon"] {
            assert!(Args::try_parse_from(["concierge", "--mail-poll-secs", bad]).is_err(), "{bad}");
        }
    }
}
