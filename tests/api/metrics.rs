//! What `/metrics` tells an operator about one replica, read through the real endpoint:
//! the sync leases it holds and how far behind its mailboxes are, the outboxes' backlog,
//! the database pool, and how late changes from the fan-out arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use concierge::clock::ManualClock;
use concierge::jobs::worker::Worker as _;
use serde_json::json;

use crate::helpers::{TestApp, TestUser};
use crate::mail_lab::MailLab;
use crate::mailboxes::{connected, live_with, message};

/// The `/metrics` text.
pub async fn scrape(app: &TestApp) -> String {
    let (status, _, text) = app.get("/metrics", "text/plain").await;
    assert_eq!(status, 200, "{text}");
    text
}

async fn scrape_with_token(app: &TestApp, token: &str) -> String {
    let r = app.client().get(format!("{}/metrics", app.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of one series (`name` or `name{labels}` exactly as exported), if exported.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn expect(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("{series} is not exported:\n{text}"))
}

/// A webhook receiver on this machine that answers every delivery with the status it is
/// set to, counting them.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let (status, hits) = (Arc::new(AtomicU16::new(status)), Arc::new(AtomicUsize::new(0)));
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let (status, hits) = (status.clone(), hits.clone());
                move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap_or(axum::http::StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { port, status, hits, _server: server }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
}

async fn webhook_on_new_contacts(app: &TestApp, user: &TestUser, url: &str) {
    let r = app
        .gql(
            Some(&user.token),
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }",
            json!({ "i": { "workspaceId": user.workspace_id, "url": url, "eventKinds": ["contact.created"] } }),
        )
        .await;
    assert!(r["data"]["createWebhook"]["webhook"]["id"].is_string(), "createWebhook: {r}");
}

pub async fn new_contact(app: &TestApp, user: &TestUser, email: &str) {
    let r = app
        .gql(
            Some(&user.token),
            "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }",
            json!({ "i": { "workspaceId": user.workspace_id, "emails": [email] } }),
        )
        .await;
    assert!(r["data"]["createContact"]["id"].is_string(), "createContact: {r}");
}

/// Polls `/metrics` until `series` reads `wanted`.
async fn reads(app: &TestApp, series: &str, wanted: f64, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = scrape(app).await;
        if value(&text, series) == Some(wanted) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{series} never read {wanted}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_delivery_waiting_on_a_receiver_that_is_down_shows_in_the_webhook_outbox_until_it_goes() {
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(
        |c| {
            c.allow_loopback();
            // The retry waits an hour of the test's clock: nothing moves until it is moved.
            c.webhook_retry_ms = 3_600_000;
            // The test steps the webhook worker.
        },
        &clock,
    )
    .await;
    let webhooks = &app.services.webhooks;
    let ada = app.user("ada@example.com").await;
    let text = scrape(&app).await;
    for outbox in ["email", "push", "webhook", "calendar_write"] {
        assert_eq!(expect(&text, &format!("concierge_outbox_depth{{outbox=\"{outbox}\"}}")), 0.0, "{outbox}");
        assert_eq!(expect(&text, &format!("concierge_outbox_oldest_job_age_seconds{{outbox=\"{outbox}\"}}")), 0.0, "{outbox}");
    }
    assert_eq!(expect(&text, "concierge_scrape_database_ok"), 1.0);

    let receiver = Receiver::start(503).await;
    webhook_on_new_contacts(&app, &ada, &receiver.url()).await;
    new_contact(&app, &ada, "eve@customer.test").await;
    // Deliveries are queued at the wall clock's time: move the test's clock past it.
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(webhooks.run_once().await.expect("a pass"), 1, "the first attempt");
    assert_eq!(receiver.hits.load(Ordering::SeqCst), 1);
    // The failed attempt waits for its retry, still in the outbox.
    let text = scrape(&app).await;
    assert_eq!(expect(&text, "concierge_outbox_depth{outbox=\"webhook\"}"), 1.0, "{text}");
    let age = expect(&text, "concierge_outbox_oldest_job_age_seconds{outbox=\"webhook\"}");
    assert!(age > 0.0 && age <= 60.0, "queued within the minute: {age}\n{text}");

    clock.advance(chrono::Duration::minutes(10));
    assert_eq!(webhooks.run_once().await.expect("a pass"), 0, "no retry before its time");
    let text = scrape(&app).await;
    let older = expect(&text, "concierge_outbox_oldest_job_age_seconds{outbox=\"webhook\"}");
    assert!((older - age - 600.0).abs() < 0.01, "ten minutes older: {age} then {older}\n{text}");
    assert_eq!(expect(&text, "concierge_outbox_depth{outbox=\"webhook\"}"), 1.0);
    assert_eq!(receiver.hits.load(Ordering::SeqCst), 1, "no retry before its time");

    // The receiver is back and the retry falls due: the outbox empties.
    receiver.status.store(204, Ordering::SeqCst);
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(webhooks.run_once().await.expect("a pass"), 1, "the retry");
    let text = scrape(&app).await;
    assert_eq!(expect(&text, "concierge_outbox_depth{outbox=\"webhook\"}"), 0.0, "{text}");
    assert_eq!(expect(&text, "concierge_outbox_oldest_job_age_seconds{outbox=\"webhook\"}"), 0.0);
    assert_eq!(receiver.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_pool_and_the_fanout_lag_are_exported_and_the_gauges_keep_to_the_metrics_token() {
    let app = TestApp::spawn_with(|c| {
        c.db_max_connections = Some(7);
        c.metrics_token = Some(concierge::config::Redacted("scrape-me".into()));
    })
    .await;
    let ada = app.user("ada@example.com").await;
    // Without the token, none of it shows.
    let (status, _, text) = app.get("/metrics", "text/plain").await;
    assert_eq!(status, 401);
    assert!(!text.contains("concierge_"), "{text}");

    let text = scrape_with_token(&app, "scrape-me").await;
    assert_eq!(expect(&text, "concierge_db_pool_max_connections"), 7.0);
    let (in_use, idle) =
        (expect(&text, "concierge_db_pool_connections{state=\"in_use\"}"), expect(&text, "concierge_db_pool_connections{state=\"idle\"}"));
    assert!(in_use + idle >= 1.0 && in_use + idle <= 7.0, "{text}");
    assert!(text.contains("# TYPE concierge_leases_held gauge"), "{text}");

    // A change published by this replica is heard back (on PostgreSQL through NOTIFY): the
    // histogram counts it. Other tests in this process count too, so it only has to grow.
    let before = value(&text, "concierge_fanout_lag_seconds_count").unwrap_or(0.0);
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { firstName } }",
            json!({ "i": { "firstName": "Ada" } }),
        )
        .await;
    assert_eq!(r["data"]["updateProfile"]["firstName"], "Ada", "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape_with_token(&app, "scrape-me").await;
        if value(&text, "concierge_fanout_lag_seconds_count").is_some_and(|n| n > before) {
            assert!(text.contains("concierge_fanout_lag_seconds_bucket{le=\"0.005\"}"), "{text}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fan-out lag never counted the change:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two replicas on one database: each reports the leases it holds itself, and the mailboxes
/// it syncs get a lag series; when the holder goes, the other takes the mailbox and reports it.
#[tokio::test]
async fn each_replica_reports_only_the_mailbox_leases_it_holds() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let settings = move |cert: std::path::PathBuf| {
        move |c: &mut concierge::config::Config| {
            c.mail_ca_file = Some(cert);
            // The mail lab listens on loopback.
            c.allow_loopback();
            c.secret_key = Some(concierge::config::Redacted("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()));
            c.mail_lease_secs = 2;
        }
    };
    let mut first = TestApp::spawn_with(settings(cert.clone())).await;
    let text = scrape(&first).await;
    assert_eq!(expect(&text, "concierge_leases_held{kind=\"mailbox\"}"), 0.0);
    assert_eq!(expect(&text, "concierge_leases_held{kind=\"calendar_account\"}"), 0.0);
    assert!(!text.contains("concierge_mailbox_sync_lag_seconds{"), "{text}");

    let ada = first.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("gauge").await;
    let to = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "one", "b"), None)]).await;
    let id = connected(&first, &ada, &lab, &mail_user, &password).await;
    live_with(&first, &ada, &id, 1).await;
    let lag = format!("concierge_mailbox_sync_lag_seconds{{mailbox_id=\"{id}\"}}");
    let text = scrape(&first).await;
    assert_eq!(expect(&text, "concierge_leases_held{kind=\"mailbox\"}"), 1.0, "{text}");
    let behind = expect(&text, &lag);
    assert!((0.0..30.0).contains(&behind), "just caught up: {behind}");

    let url = first.database_url.clone();
    let second = TestApp::spawn_with({
        let cert = cert.clone();
        move |c| {
            settings(cert)(c);
            c.database_url = Some(url);
        }
    })
    .await;
    // The second replica tries the mailbox too, but the first holds it.
    let text = scrape(&second).await;
    assert_eq!(expect(&text, "concierge_leases_held{kind=\"mailbox\"}"), 0.0, "{text}");
    assert_eq!(value(&text, &lag), None, "{text}");
    assert_eq!(expect(&scrape(&first).await, "concierge_leases_held{kind=\"mailbox\"}"), 1.0);

    // The first goes away; the second takes the mailbox over and reports it.
    first.begin_shutdown();
    first.stopped(Duration::from_secs(20)).await.unwrap();
    let text = reads(&second, "concierge_leases_held{kind=\"mailbox\"}", 1.0, Duration::from_secs(20)).await;
    let ada = TestUser {
        token: second.log_in("ada@example.com", crate::helpers::PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned(),
        ..ada
    };
    live_with(&second, &ada, &id, 1).await;
    assert!(value(&text, &lag).is_some() || value(&scrape(&second).await, &lag).is_some(), "the lag follows the lease");
    let mut second = second;
    second.begin_shutdown();
    second.stopped(Duration::from_secs(20)).await.unwrap();
}
