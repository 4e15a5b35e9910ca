//! Delivery of notifications outside the app: email through the real SMTP server of the mail
//! lab (in the user's language, once, batched, retried while the server is down) and Web
//! Push to a local push service that decrypts what it gets.
//!
//! The gateways here run without their background queue workers: each test steps the
//! delivery worker (`run_once`) and, where a batch window or a retry must pass, moves a
//! manual clock, so what a pass did is known when it returns.

use std::time::Duration;

use chrono::Utc;
use concierge::clock::ManualClock;
use concierge::identity::model::AccountId;
use concierge::jobs::worker::Worker as _;
use concierge::notifications::model::NotificationEvent;
use concierge::notifications::outbox::JobState;
use concierge::notifications::service::Notice;
use serde_json::json;

use crate::helpers::{TestApp, TestUser};
use crate::mail_lab::{MailLab, parse};
use crate::push_endpoint::PushEndpoint;

const CREATE_TOKEN: &str = "mutation { createAccessToken(input: {name: \"ci\", scopes: [\"profile:read\"]}) { token } }";

fn fresh(local: &str) -> String {
    format!("{local}-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn account(user: &TestUser) -> AccountId {
    AccountId::parse("id", &user.id).expect("an account id")
}

async fn jobs(app: &TestApp, user: &TestUser) -> Vec<JobState> {
    app.services.notifications.deliveries(account(user)).await.expect("jobs")
}

/// One pass of the delivery worker: every job due now is attempted.
async fn step(app: &TestApp) -> usize {
    app.services.delivery.run_once().await.expect("a pass over the queue")
}

/// The user's job on `channel`.
async fn job(app: &TestApp, user: &TestUser, channel: &str) -> JobState {
    let all = jobs(app, user).await;
    all.iter().find(|j| j.channel == channel).unwrap_or_else(|| panic!("no {channel} job: {all:#?}")).clone()
}

async fn set_language(app: &TestApp, user: &TestUser, language: &str) {
    let r = app
        .gql(
            Some(&user.token),
            "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { language } }",
            json!({ "i": { "language": language } }),
        )
        .await;
    assert_eq!(r["data"]["updateProfile"]["language"], language, "{r}");
}

#[tokio::test]
async fn a_notification_email_arrives_once_in_the_users_language_with_html_and_text() {
    let lab = MailLab::get().await;
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url())), &clock).await;
    let user = app.user(&fresh("greta")).await;
    set_language(&app, &user, "de").await;

    let r = app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(lab.messages_to(&user.email).await.is_empty(), "nothing is sent before the worker's pass");
    step(&app).await;

    let mail = parse(&lab.wait_for(&user.email, 1).await[0]);
    assert_eq!(mail.subject, "Ein persönliches Zugriffstoken wurde erstellt");
    assert!(mail.text.starts_with("Hallo Test User,"), "German frame expected: {}", mail.text);
    assert!(mail.text.contains("Es gibt etwas Neues für Sie"), "{}", mail.text);
    assert!(mail.text.contains("Falls Sie das nicht waren"), "{}", mail.text);
    let html = mail.html.expect("an HTML alternative");
    assert!(
        html.contains("Solche E-Mails abbestellen") && html.contains("<strong>Ein persönliches Zugriffstoken wurde erstellt</strong>"),
        "{html}"
    );

    let done = jobs(&app, &user).await;
    assert_eq!(done.iter().filter(|j| j.channel == "EMAIL").count(), 1, "{done:#?}");
    let email = job(&app, &user, "EMAIL").await;
    assert_eq!((email.state.as_str(), email.attempts), ("SENT", 1), "sent at the first attempt: {email:?}");
    // Nothing more comes later: a pass over the queue finds nothing left to send.
    assert_eq!(step(&app).await, 0);
    assert_eq!(lab.messages_to(&user.email).await.len(), 1);
}

#[tokio::test]
async fn a_burst_of_one_hundred_new_messages_is_one_email() {
    let lab = MailLab::get().await;
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(
        |c| {
            c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()));
            c.email_batch_secs = 5;
        },
        &clock,
    )
    .await;
    let user = app.user(&fresh("burst")).await;
    let r = app
        .gql(
            Some(&user.token),
            "mutation { updateNotificationPreferences(changes: [{event: MESSAGE_RECEIVED, channel: EMAIL, enabled: true}]) { audio } }",
            json!({}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    for i in 0..100 {
        let notice = Notice {
            contact: Some("Bob Stone".into()),
            ..Notice::new(account(&user), NotificationEvent::MessageReceived, format!("New message {i}"), "Hello there")
        };
        app.services.notifications.notify(notice).await.expect("notified");
    }
    assert_eq!(step(&app).await, 0, "the batch window is still open");
    clock.advance(chrono::Duration::seconds(6));
    step(&app).await;

    let done = jobs(&app, &user).await;
    assert_eq!(done.iter().filter(|j| j.state == "SENT").count(), 100, "all 100 jobs closed: {done:#?}");
    let carriers: std::collections::HashSet<_> = done.iter().map(|j| j.sent_with).collect();
    assert_eq!(carriers.len(), 1, "one email carried them all: {carriers:?}");
    let mail = parse(&lab.wait_for(&user.email, 1).await[0]);
    assert_eq!(mail.subject, "100 new notifications");
    assert!(mail.text.contains("New message 0") && mail.text.contains("…and 75 more."), "{}", mail.text);
    assert_eq!(step(&app).await, 0, "nothing left to send");
    assert_eq!(lab.messages_to(&user.email).await.len(), 1, "exactly one email");
}

/// A TCP relay to the lab's SMTP server that can be started late: until then its port
/// refuses connections, as a server that is down does.
struct Relay {
    port: u16,
}

impl Relay {
    fn reserve() -> Relay {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = probe.local_addr().expect("address").port();
        drop(probe);
        Relay { port }
    }

    async fn start(&self, to: u16) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("relay port still free");
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
}

#[tokio::test]
async fn with_the_smtp_server_down_the_email_is_retried_and_delivered_once_when_it_is_back() {
    let lab = MailLab::get().await;
    let relay = Relay::reserve();
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(
        |c| {
            c.smtp_url = Some(concierge::config::Redacted(format!("smtp://127.0.0.1:{}", relay.port)));
            c.delivery_retry_ms = 200;
        },
        &clock,
    )
    .await;
    let user = app.user(&fresh("retry")).await;
    let r = app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await;
    assert!(r["errors"].is_null(), "{r}");

    step(&app).await;
    assert_eq!(job(&app, &user, "EMAIL").await.attempts, 1, "the first attempt");
    assert_eq!(step(&app).await, 0, "the retry waits for its time");
    // The first retry waits 200 ms and at most a fifth more.
    clock.advance(chrono::Duration::seconds(1));
    step(&app).await;
    let email = job(&app, &user, "EMAIL").await;
    assert_eq!((email.state.as_str(), email.attempts), ("PENDING", 2), "still to be retried: {email:?}");
    assert!(email.last_error.as_deref().is_some_and(|e| e.contains("SMTP")), "{email:?}");
    assert!(lab.messages_to(&user.email).await.is_empty());

    relay.start(lab.smtp).await;
    clock.advance(chrono::Duration::seconds(1));
    step(&app).await;
    assert_eq!(job(&app, &user, "EMAIL").await.state, "SENT");
    let mail = parse(&lab.wait_for(&user.email, 1).await[0]);
    assert_eq!(mail.subject, "A personal access token was created");
    // Every attempt carried the same Message-ID, named after the job.
    assert!(mail.message_id.as_deref().is_some_and(|id| id.starts_with(&email.job_id.to_string())), "{:?}", mail.message_id);
    assert_eq!(step(&app).await, 0, "nothing left to send");
    assert_eq!(lab.messages_to(&user.email).await.len(), 1, "delivered once");
}

#[tokio::test]
async fn a_repeated_domain_event_notifies_once() {
    let app = TestApp::spawn().await;
    let user = app.user(&fresh("dedupe")).await;
    let notice = || Notice {
        dedupe_key: Some("billing:invoice-42".into()),
        ..Notice::new(account(&user), NotificationEvent::BillingUpdate, "Invoice 42 is paid", "Thank you")
    };
    assert!(app.services.notifications.notify(notice()).await.expect("first").is_some());
    assert!(app.services.notifications.notify(notice()).await.expect("second").is_none(), "the repeat is dropped");
    let r = app.gql(Some(&user.token), "{ me { unreadNotificationCount } }", json!({})).await;
    assert_eq!(r["data"]["me"]["unreadNotificationCount"], 1, "{r}");
    let email_jobs = jobs(&app, &user).await.into_iter().filter(|j| j.channel == "EMAIL").count();
    assert_eq!(email_jobs, 1);
}

async fn register(app: &TestApp, user: &TestUser, endpoint: &PushEndpoint) {
    let r = app
        .gql(
            Some(&user.token),
            "mutation($e: String!, $k: PushKeysInput!) { registerPushSubscription(endpoint: $e, keys: $k) }",
            json!({ "e": endpoint.url, "k": { "p256dh": endpoint.p256dh, "auth": endpoint.auth } }),
        )
        .await;
    assert_eq!(r["data"]["registerPushSubscription"], true, "{r}");
}

#[tokio::test]
async fn a_push_is_encrypted_for_the_browser_and_signed_with_the_gateways_published_key() {
    // The push stand-in listens on loopback.
    let app = TestApp::spawn_stepped(|c| c.allow_loopback(), &ManualClock::new(Utc::now())).await;
    let user = app.user(&fresh("push")).await;
    let endpoint = PushEndpoint::start().await;
    register(&app, &user, &endpoint).await;
    let key = app.gql(None, "{ pushPublicKey }", json!({})).await["data"]["pushPublicKey"].as_str().expect("a key").to_owned();

    let r = app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    step(&app).await;
    assert_eq!(job(&app, &user, "PUSH").await.state, "SENT");

    let got = endpoint.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].payload["title"], "A personal access token was created");
    assert_eq!(got[0].payload["event"], "SECURITY_EVENT");
    assert_eq!(got[0].vapid_key, key, "signed with the key clients subscribe with");
    assert_eq!(got[0].urgency.as_deref(), Some("high"));
    assert!(got[0].topic.is_some());
}

#[tokio::test]
async fn an_endpoint_that_answers_410_gone_is_removed() {
    let app = TestApp::spawn_stepped(|c| c.allow_loopback(), &ManualClock::new(Utc::now())).await;
    let user = app.user(&fresh("gone")).await;
    let endpoint = PushEndpoint::start().await;
    register(&app, &user, &endpoint).await;
    endpoint.answer_with(410);
    assert_eq!(app.services.notifications.push_subscription_count(account(&user)).await.expect("count"), 1);

    app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await;
    step(&app).await;
    let push = job(&app, &user, "PUSH").await;
    assert_eq!(push.state, "SKIPPED", "{push:?}");
    assert_eq!(app.services.notifications.push_subscription_count(account(&user)).await.expect("count"), 0, "the subscription is gone");
    assert_eq!(step(&app).await, 0);
    assert_eq!(endpoint.attempts(), 1, "and it is not tried again");
}

#[tokio::test]
async fn a_push_service_that_fails_for_a_while_gets_the_message_once_it_recovers() {
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(
        |c| {
            c.delivery_retry_ms = 100;
            c.allow_loopback();
        },
        &clock,
    )
    .await;
    let user = app.user(&fresh("flaky")).await;
    let endpoint = PushEndpoint::start().await;
    register(&app, &user, &endpoint).await;
    endpoint.answer_with(503);

    app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await;
    step(&app).await;
    // The first retry waits 100 ms and at most a fifth more.
    clock.advance(chrono::Duration::seconds(1));
    step(&app).await;
    let push = job(&app, &user, "PUSH").await;
    assert_eq!((push.state.as_str(), push.attempts), ("PENDING", 2), "two failed pushes: {push:?}");
    endpoint.answer_with(201);
    clock.advance(chrono::Duration::seconds(1));
    step(&app).await;
    assert_eq!(job(&app, &user, "PUSH").await.state, "SENT");
    let got = endpoint.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].payload["title"], "A personal access token was created");
    assert_eq!(endpoint.attempts(), 3, "two refused, one taken");
}

/// Whether the user's matrix has email on for `event`.
async fn emails_on(app: &TestApp, user: &TestUser, event: &str) -> bool {
    let r = app.gql(Some(&user.token), "{ me { preferences { notifications { event channel enabled } } } }", json!({})).await;
    let cells = r["data"]["me"]["preferences"]["notifications"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    cells.iter().find(|c| c["event"] == event && c["channel"] == "EMAIL").map(|c| c["enabled"] == true).expect("a cell")
}

#[tokio::test]
async fn an_emails_own_link_stops_exactly_its_kind_without_signing_in_and_opening_it_changes_nothing() {
    let lab = MailLab::get().await;
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()))).await;
    let user = app.user(&fresh("una")).await;
    assert!(app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await["errors"].is_null());

    let raw = lab.wait_for(&user.email, 1).await.remove(0);
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("a message");
    let header = message.header_raw("List-Unsubscribe").expect("a List-Unsubscribe header").trim().to_owned();
    assert_eq!(message.header_raw("List-Unsubscribe-Post").map(str::trim), Some("List-Unsubscribe=One-Click"));
    let link = header.trim_start_matches('<').trim_end_matches('>').to_owned();
    assert!(link.starts_with(&format!("{}/email-preferences?token=", app.base)), "{link}");
    let mail = parse(&raw);
    // No frontend configured: no button to a page that does not exist, and the settings link
    // is the gateway's own page.
    assert!(!mail.text.contains("Open Concierge") && mail.text.contains(&link), "{}", mail.text);

    // Opening the link (a mail scanner does) shows a button and changes nothing.
    let res = app.client().get(&link).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<form method=\"post\""));
    assert!(emails_on(&app, &user, "SECURITY_EVENT").await);

    // A forged or altered token does nothing.
    let altered = format!("{}A", link);
    let res = app.client().post(&altered).form(&[("List-Unsubscribe", "One-Click")]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(emails_on(&app, &user, "SECURITY_EVENT").await);

    // The mail client's one-click POST turns off this kind's emails, and nothing else.
    let mention_before = emails_on(&app, &user, "MENTION").await;
    let res = app.client().post(&link).form(&[("List-Unsubscribe", "One-Click")]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(!emails_on(&app, &user, "SECURITY_EVENT").await);
    assert_eq!(emails_on(&app, &user, "MENTION").await, mention_before);
}

#[tokio::test]
async fn with_the_platforms_frontend_configured_emails_link_to_its_pages() {
    let lab = MailLab::get().await;
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()));
        c.app_url = Some("https://app.example/".into());
        c.app_settings_path = "/me/notifications".into();
    })
    .await;
    let user = app.user(&fresh("vic")).await;
    assert!(app.gql(Some(&user.token), CREATE_TOKEN, json!({})).await["errors"].is_null());

    let mail = parse(&lab.wait_for(&user.email, 1).await[0]);
    assert!(mail.text.contains("Open Concierge: https://app.example/notifications"), "{}", mail.text);
    assert!(mail.text.contains("https://app.example/me/notifications"), "{}", mail.text);
    let html = mail.html.expect("html");
    assert!(html.contains("href=\"https://app.example/notifications\""), "{html}");
}
