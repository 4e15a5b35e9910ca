//! OpenTelemetry traces from a real gateway process to an OTLP receiver inside the test
//! (`POST /v1/traces`, protobuf, as the OpenTelemetry Collector takes it): a GraphQL request
//! and the webhook delivery it causes arrive as spans, the caller's `traceparent` becomes the
//! request's parent, the last spans are flushed on a graceful stop, and with no endpoint
//! configured nothing is started at all.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use crate::helpers::{TestApp, TestUser};
use crate::mail_lab::MailLab;
use crate::mailboxes::{connected, live_with, message};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The thread the SDK's batch exporter runs on (names are cut to 15 bytes in /proc).
const EXPORTER_THREAD: &str = "OpenTelemetry.T";

/// An OTLP/HTTP receiver: keeps every span it is sent, with its service's name.
struct Collector {
    port: u16,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    requests: Arc<Mutex<usize>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
        let requests: Arc<Mutex<usize>> = Arc::default();
        let router = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post({
                let (spans, requests) = (spans.clone(), requests.clone());
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    *requests.lock().unwrap() += 1;
                    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-protobuf"));
                    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                    let mut kept = spans.lock().unwrap();
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .as_ref()
                            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                            .and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            kept.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
                        }
                    }
                    ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Collector { port, spans, requests, _server: server }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }
}

fn text(v: &Any) -> Option<String> {
    match v {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A gateway process, its address learnt from its "serving" log line.
struct Gateway {
    child: tokio::process::Child,
    base: String,
}

impl Gateway {
    async fn start(database_url: &str, data: &std::path::Path, otel: &[(&str, String)]) -> Gateway {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_concierge"));
        for (name, _) in std::env::vars() {
            if name.starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env("DATABASE_URL", database_url)
            .env("CONCIERGE_BIND", "127.0.0.1:0")
            .env("CONCIERGE_DATA_DIR", data)
            .env("CONCIERGE_SECRET_KEY", KEY)
            .env("CONCIERGE_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
            .env("CONCIERGE_WEBHOOK_RETRY_MS", "20")
            .env("CONCIERGE_LOG_FORMAT", "json")
            // The log lines leave out the webhook worker: its spans must reach the traces anyway.
            .env("RUST_LOG", "warn,concierge::app=info")
            .envs(otel.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the gateway binary starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("stdout readable") {
                let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
                if entry["message"] == "serving" {
                    return entry["addr"].as_str().expect("an address").to_owned();
                }
            }
            panic!("the gateway exited before serving");
        })
        .await
        .expect("the gateway serves within 30 s");
        // Keep reading, so a full pipe never blocks the gateway.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Gateway { child, base: format!("http://{addr}") }
    }

    fn threads(&self) -> Vec<String> {
        let pid = self.child.id().expect("running");
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("its threads")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    /// SIGTERM, then the exit within 30 s.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running");
        let killed = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.expect("kill runs");
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("stops within 30 s").unwrap();
        assert!(status.success(), "{status}");
    }
}

/// A user with a webhook on new contacts (to `receiver`) and, given a mail lab account, a
/// mailbox, made by an in-process gateway that is then stopped, leaving its database to a
/// gateway process.
async fn prepared(receiver: &str, mail: Option<(&MailLab, &str, &str)>) -> (TestApp, TestUser, Option<String>) {
    let cert = mail.map(|(lab, _, _)| lab.cert());
    let mut app = TestApp::spawn_with(|c| {
        c.allow_loopback();
        c.secret_key = Some(concierge::config::Redacted(KEY.into()));
        c.mail_ca_file = cert;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let mut mailbox = None;
    if let Some((lab, mail_user, password)) = mail {
        let id = connected(&app, &ada, lab, mail_user, password).await;
        live_with(&app, &ada, &id, 0).await;
        mailbox = Some(id);
    }
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }",
            json!({ "i": { "workspaceId": ada.workspace_id, "url": receiver, "eventKinds": ["contact.created"] } }),
        )
        .await;
    assert!(r["data"]["createWebhook"]["webhook"]["id"].is_string(), "{r}");
    app.begin_shutdown();
    app.stopped(Duration::from_secs(20)).await.unwrap();
    (app, ada, mailbox)
}

/// A webhook receiver answering 204, counting deliveries.
async fn hook() -> (String, Arc<Mutex<usize>>) {
    let hits: Arc<Mutex<usize>> = Arc::default();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let hits = hits.clone();
            move || async move {
                *hits.lock().unwrap() += 1;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, hits)
}

/// Creates a contact through `gateway`, sending `traceparent`; then waits for the webhook.
async fn contact_with_trace(gateway: &Gateway, ada: &TestUser, traceparent: &str, hits: &Arc<Mutex<usize>>) {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/graphql", gateway.base))
        .bearer_auth(&ada.token)
        .header("traceparent", traceparent)
        .json(&json!({
            "query": "mutation NewContact($i: CreateContactInput!) { createContact(input: $i) { id } }",
            "variables": { "i": { "workspaceId": ada.workspace_id, "emails": ["eve.secret@customer.test"] } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["data"]["createContact"]["id"].is_string(), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while *hits.lock().unwrap() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the webhook was not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_and_webhook_deliveries_reach_the_otlp_endpoint_under_the_callers_trace() {
    let collector = Collector::start().await;
    let (receiver, hits) = hook().await;
    let lab = MailLab::get().await;
    let (mail_user, password) = lab.new_user("otel").await;
    let (app, ada, mailbox) = prepared(&receiver, Some((&lab, &mail_user, &password))).await;
    let mailbox = mailbox.expect("a mailbox");
    // Mail that came while no gateway ran: the gateway process records it in a sync batch.
    let to = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "while away", "b"), None)]).await;
    let data = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(
        &app.database_url,
        data.path(),
        &[
            ("CONCIERGE_MAIL_CA_FILE", lab.cert().display().to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
            ("OTEL_SERVICE_NAME", "concierge-under-test".into()),
            // Long enough that only the flush on the way out sends them.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
        ],
    )
    .await;
    assert!(gateway.threads().iter().any(|t| t == EXPORTER_THREAD), "the exporter runs: {:?}", gateway.threads());

    let (trace_id, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    contact_with_trace(&gateway, &ada, &format!("00-{trace_id}-{caller_span}-01"), &hits).await;
    // A request without a traceparent starts a trace of its own.
    let plain = reqwest::Client::new().get(format!("{}/healthz", gateway.base)).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let db = concierge::db::Db::connect(&app.database_url, Some(1)).await.unwrap();
    let mailbox_id = concierge::mailboxes::model::MailboxId::parse("id", &mailbox).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = concierge::mailboxes::store::find_mailbox(&db, mailbox_id).await.unwrap().unwrap();
        if m.message_count >= 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the gateway process did not record the mail: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.close().await;
    gateway.stop().await;

    let spans = collector.spans();
    assert!(spans.iter().all(|(service, _)| service == "concierge-under-test"), "OTEL_SERVICE_NAME: {spans:?}");
    let requests: Vec<&Span> = spans.iter().map(|(_, s)| s).filter(|s| s.name == "request").collect();
    let graphql = requests.iter().find(|s| attribute(s, "path").as_deref() == Some("/graphql")).expect("the GraphQL request's span");
    assert_eq!(hex(&graphql.trace_id), trace_id, "the caller's trace");
    assert_eq!(hex(&graphql.parent_span_id), caller_span, "the caller's span is the parent");
    assert_eq!(graphql.kind, opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server as i32);
    assert_eq!(attribute(graphql, "method").as_deref(), Some("POST"));
    assert_eq!(attribute(graphql, "operation").as_deref(), Some("NewContact"));
    assert_eq!(attribute(graphql, "http.response.status_code").as_deref(), Some("200"));
    let health = requests.iter().find(|s| attribute(s, "path").as_deref() == Some("/healthz")).expect("the health check's span");
    assert_ne!(hex(&health.trace_id), trace_id);
    assert!(health.parent_span_id.is_empty(), "a root");

    let delivery = spans.iter().map(|(_, s)| s).find(|s| s.name == "webhook_delivery").expect("the webhook delivery's span");
    assert_eq!(attribute(delivery, "event_type").as_deref(), Some("contact.created"));
    assert_eq!(attribute(delivery, "outcome").as_deref(), Some("delivered"));
    assert_eq!(attribute(delivery, "http.response.status_code").as_deref(), Some("204"));
    assert_eq!(attribute(delivery, "attempt").as_deref(), Some("1"));
    let batch = spans.iter().map(|(_, s)| s).find(|s| s.name == "mail_sync_batch").expect("the mail sync batch's span");
    assert_eq!(attribute(batch, "mailbox_id").as_deref(), Some(mailbox.as_str()));
    assert_eq!(attribute(batch, "messages").as_deref(), Some("1"));
    assert!(batch.parent_span_id.is_empty(), "a trace of its own");
    // Ids and outcomes only: nothing from the bodies.
    for (_, span) in &spans {
        for a in &span.attributes {
            let v = a.value.as_ref().and_then(|v| text(v.value.as_ref()?)).unwrap_or_default();
            assert!(!v.contains("eve.secret"), "{} carries a body: {v}", a.key);
        }
    }
}

#[tokio::test]
async fn without_an_otlp_endpoint_no_exporter_runs_and_nothing_is_sent() {
    let collector = Collector::start().await;
    let (receiver, hits) = hook().await;
    let (app, ada, _) = prepared(&receiver, None).await;
    let data = tempfile::tempdir().unwrap();
    // The other variables alone do not turn traces on.
    let gateway = Gateway::start(
        &app.database_url,
        data.path(),
        &[("OTEL_SERVICE_NAME", "concierge-under-test".into()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into())],
    )
    .await;
    assert!(!gateway.threads().iter().any(|t| t.starts_with("OpenTelemetry")), "no exporter thread: {:?}", gateway.threads());
    contact_with_trace(&gateway, &ada, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &hits).await;
    gateway.stop().await;
    assert_eq!(*collector.requests.lock().unwrap(), 0);
    assert!(collector.spans().is_empty());
}
