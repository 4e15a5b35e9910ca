//! Webhooks out, through the real server, to a real receiver (scripts/webhook-receiver) that
//! verifies every delivery with the `standardwebhooks` package from PyPI, an implementation
//! that is not Concierge's: events arrive signed, in order, none lost while the receiver is
//! down; secrets rotate without a gap; URLs that reach private addresses are refused; a
//! webhook failing for more than a day is turned off and its creator told.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use concierge::clock::ManualClock;
use concierge::jobs::worker::Worker as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_of};
use crate::mail_lab::MailLab;
use crate::mailboxes::{connected, live_with, message};

const WEBHOOK: &str = "id url description eventKinds enabled disabledReason previousSecretExpiresAt";
const DELIVERY: &str = "id eventId eventType attempt status statusCode durationMs lastError lastAttemptAt nextAttemptAt createdAt payload";

/// The receiver: a child process on a free port of its choosing, gone when dropped.
pub struct Receiver {
    dir: tempfile::TempDir,
    port: u16,
    _child: tokio::process::Child,
}

impl Receiver {
    pub async fn start(secret: &str) -> Receiver {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/webhook-receiver");
        let child = tokio::process::Command::new(script)
            .arg(dir.path())
            .args(["--secret", secret])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("scripts/webhook-receiver starts");
        let port_file = dir.path().join("port");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().expect("a port");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the webhook receiver did not start (is standardwebhooks installed? run scripts/test)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Receiver { dir, port, _child: child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn control(&self, change: Value) {
        let r = reqwest::Client::new().post(self.url("/_control")).json(&change).send().await.expect("receiver control");
        assert_eq!(r.status(), 204);
    }

    pub fn lines(&self, file: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Verified deliveries, in arrival order.
    pub fn received(&self) -> Vec<Value> {
        self.lines("received.jsonl")
    }

    /// Every request, whatever it was answered.
    pub fn requests(&self) -> Vec<Value> {
        self.lines("requests.jsonl")
    }

    /// Waits until `n` verified deliveries arrived.
    pub async fn received_within(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                assert!(self.lines("rejected.jsonl").is_empty(), "a delivery failed verification: {:?}", self.lines("rejected.jsonl"));
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} deliveries arrived: {got:?}\nrequests: {:?}",
                got.len(),
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A gateway that may deliver to this machine over http, retrying quickly.
async fn gateway_with(adjust: impl FnOnce(&mut concierge::config::Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.allow_loopback();
        c.webhook_retry_ms = 20;
        adjust(c);
    })
    .await
}

/// Stops the gateway the way SIGTERM would, so no transaction is left open when its database
/// is dropped (the mail sync goes on recording status changes after a test has seen enough).
async fn stop(mut app: TestApp) {
    app.begin_shutdown();
    app.stopped(Duration::from_secs(30)).await.expect("the gateway stops cleanly");
}

async fn create_webhook(app: &TestApp, user: &TestUser, url: &str, kinds: &[&str]) -> Value {
    app.gql(
        Some(&user.token),
        &format!("mutation($i: CreateWebhookInput!) {{ createWebhook(input: $i) {{ secret webhook {{ {WEBHOOK} }} }} }}"),
        json!({ "i": { "workspaceId": user.workspace_id, "url": url, "eventKinds": kinds, "description": "test receiver" } }),
    )
    .await
}

/// Creates a webhook and returns its id and secret.
async fn webhook_to(app: &TestApp, user: &TestUser, url: &str, kinds: &[&str]) -> (String, String) {
    let r = create_webhook(app, user, url, kinds).await;
    let created = &r["data"]["createWebhook"];
    let id = created["webhook"]["id"].as_str().unwrap_or_else(|| panic!("createWebhook failed: {r}")).to_owned();
    (id, created["secret"].as_str().expect("the secret, shown once").to_owned())
}

async fn new_contact(app: &TestApp, user: &TestUser, email: &str) -> String {
    let r = app
        .gql(
            Some(&user.token),
            "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }",
            json!({ "i": { "workspaceId": user.workspace_id, "emails": [email] } }),
        )
        .await;
    r["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("createContact failed: {r}")).to_owned()
}

async fn webhook(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let r = app
        .gql(
            Some(&user.token),
            &format!("query($id: ID!) {{ webhook(id: $id) {{ {WEBHOOK} deliveries(first: 50) {{ edges {{ node {{ {DELIVERY} attempts {{ attempt attemptedAt statusCode error }} }} }} }} }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    r["data"]["webhook"].clone()
}

fn deliveries(webhook: &Value) -> Vec<Value> {
    webhook["deliveries"]["edges"].as_array().expect("deliveries").iter().map(|e| e["node"].clone()).collect()
}

async fn webhooks_of(app: &TestApp, user: &TestUser) -> Value {
    let r = app.gql(Some(&user.token), "query($w: ID!) { webhooks(workspaceId: $w) { id } }", json!({ "w": user.workspace_id })).await;
    r["data"]["webhooks"].clone()
}

#[tokio::test]
async fn a_new_senders_mail_reaches_the_webhook_signed_as_contact_created_then_message_receive() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = gateway_with(move |c| {
        c.mail_ca_file = Some(cert);
        c.mail_retry_ms = 200;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let receiver = Receiver::start("whsec_placeholder").await;
    let (_, secret) =
        webhook_to(&app, &ada, &receiver.url("/hook"), &["contact.created", "message.receive", "mailbox.status_changed"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.control(json!({ "secret": secret })).await;

    let (mail_user, password) = lab.new_user("ada").await;
    let mailbox_id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &mailbox_id, 0).await;
    let sender = format!("eve{}@customer.test", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    lab.append(
        &mail_user,
        &password,
        &[(message(&format!("Eve Sender <{sender}>"), &format!("{mail_user}@lab.test"), "Quote, please", "hi"), None)],
    )
    .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = receiver.received();
        if got.iter().any(|d| d["payload"]["type"] == "message.receive") {
            break receiver.received_within(got.len(), Duration::ZERO).await;
        }
        assert!(tokio::time::Instant::now() < deadline, "no message.receive delivery: {got:?}\n{:?}", receiver.requests());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let of_type = |t: &str| got.iter().position(|d| d["payload"]["type"] == t).unwrap_or_else(|| panic!("no {t}: {got:?}"));
    let (contact, mail) = (&got[of_type("contact.created")], &got[of_type("message.receive")]);
    assert!(of_type("contact.created") < of_type("message.receive"), "the contact before its message: {got:?}");
    assert_eq!(contact["payload"]["data"]["emails"], json!([sender]));
    assert_eq!(contact["payload"]["data"]["name"], "Eve Sender");
    let data = &mail["payload"]["data"];
    assert_eq!(data["contactId"], contact["payload"]["data"]["contactId"], "{got:?}");
    assert_eq!(data["title"], "Quote, please");
    assert_eq!(data["from"], json!([{ "name": "Eve Sender", "email": sender }]));
    assert_eq!(data["mailboxId"], mailbox_id);
    assert!(data["threadId"].is_string() && data.get("html").is_none(), "{data}");
    assert_eq!(mail["id"], data["eventId"], "webhook-id is the event's id");
    assert!(chrono::DateTime::parse_from_rfc3339(mail["payload"]["timestamp"].as_str().unwrap()).is_ok(), "{mail}");

    // The sync's status changes came too, the mailbox being LIVE among them.
    let statuses: Vec<&Value> = got.iter().filter(|d| d["payload"]["type"] == "mailbox.status_changed").collect();
    assert!(
        statuses.iter().any(|d| d["payload"]["data"]["status"] == "LIVE" && d["payload"]["data"]["mailboxId"] == mailbox_id),
        "{statuses:?}"
    );
    stop(app).await;
}

#[tokio::test]
async fn events_wait_out_a_receiver_that_is_down_and_then_arrive_in_order_none_lost() {
    let app = gateway_with(|_| {}).await;
    let ada = app.user("ada@example.com").await;
    let receiver = Receiver::start("whsec_placeholder").await;
    let (webhook_id, secret) = webhook_to(&app, &ada, &receiver.url("/hook"), &["contact.created"]).await;
    receiver.control(json!({ "secret": secret, "fail": 3, "status": 503 })).await;

    let mut created = Vec::new();
    for i in 0..5 {
        created.push(new_contact(&app, &ada, &format!("c{i}@customer.test")).await);
    }

    let got = receiver.received_within(5, Duration::from_secs(30)).await;
    let ids: Vec<&str> = got.iter().map(|d| d["payload"]["data"]["contactId"].as_str().unwrap()).collect();
    assert_eq!(ids, created, "every event, once, in the order it happened");
    let requests = receiver.requests();
    let refused: Vec<&Value> = requests.iter().filter(|r| r["status"] == 503).collect();
    assert_eq!(refused.len(), 3);
    assert!(
        refused.iter().all(|r| r["headers"]["webhook-id"] == got[0]["id"]),
        "the first event was retried with the same webhook-id: {requests:?}"
    );
    assert_eq!(requests.len(), 8, "nothing went out of turn while the first one was retried: {requests:?}");

    let w = webhook(&app, &ada, &webhook_id).await;
    let first = deliveries(&w).into_iter().find(|d| d["eventId"] == created[0]).expect("the first delivery");
    assert_eq!(first["status"], "DELIVERED", "{first}");
    assert_eq!(first["attempt"], 4);
    assert_eq!(first["statusCode"], 204);
    let attempts: Vec<&Value> = first["attempts"].as_array().unwrap().iter().collect();
    assert_eq!(attempts.iter().map(|a| a["statusCode"].as_i64().unwrap()).collect::<Vec<_>>(), [503, 503, 503, 204]);
}

#[tokio::test]
async fn after_a_rotation_deliveries_verify_with_the_new_secret_and_with_the_old_one_during_the_grace() {
    let app = gateway_with(|_| {}).await;
    let ada = app.user("ada@example.com").await;
    let receiver = Receiver::start("whsec_placeholder").await;
    let (webhook_id, old) = webhook_to(&app, &ada, &receiver.url("/hook"), &["contact.created"]).await;
    receiver.control(json!({ "secret": old })).await;
    new_contact(&app, &ada, "before@customer.test").await;
    assert_eq!(receiver.received_within(1, Duration::from_secs(10)).await[0]["signatures"], 1);

    let r = app
        .gql(
            Some(&ada.token),
            &format!("mutation($id: ID!) {{ rotateWebhookSecret(id: $id) {{ secret webhook {{ {WEBHOOK} }} }} }}"),
            json!({ "id": webhook_id }),
        )
        .await;
    let new = r["data"]["rotateWebhookSecret"]["secret"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    let grace = r["data"]["rotateWebhookSecret"]["webhook"]["previousSecretExpiresAt"].as_str().expect("a grace period");
    let grace = chrono::DateTime::parse_from_rfc3339(grace).unwrap().with_timezone(&Utc);
    assert!((grace - Utc::now() - chrono::Duration::hours(24)).num_minutes().abs() < 5, "{grace}");

    receiver.control(json!({ "secret": new })).await;
    new_contact(&app, &ada, "after@customer.test").await;
    let got = receiver.received_within(2, Duration::from_secs(10)).await;
    assert_eq!(got[1]["payload"]["data"]["emails"], json!(["after@customer.test"]));
    assert_eq!(got[1]["signatures"], 2, "signed by the new secret and, during the grace, the old one");

    receiver.control(json!({ "secret": old })).await;
    new_contact(&app, &ada, "still@customer.test").await;
    receiver.received_within(3, Duration::from_secs(10)).await;

    // The secret is never shown again.
    let listed =
        app.gql(Some(&ada.token), "query($w: ID!) { webhooks(workspaceId: $w) { id url } }", json!({ "w": ada.workspace_id })).await;
    assert!(!listed.to_string().contains(&new[6..]) && !listed.to_string().contains(&old[6..]), "{listed}");
}

#[tokio::test]
async fn urls_that_reach_private_or_local_addresses_are_refused_and_nothing_is_stored() {
    // The default: loopback is not allowed either.
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    for url in [
        "http://10.0.0.1/x",
        "https://10.0.0.1/x",
        "https://169.254.169.254/",
        "https://[::ffff:169.254.169.254]/",
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "http://127.0.0.1:9/hook",
        "https://user:secret@hooks.example.com/",
        "not a url",
        "ftp://hooks.example.com/",
    ] {
        let r = create_webhook(&app, &ada, url, &["contact.created"]).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("url".into())), "{url}: {r}");
    }
    assert_eq!(webhooks_of(&app, &ada).await, json!([]), "nothing stored");
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_never_followed() {
    // Stepped: each attempt is one pass, with the clock moved past any retry's wait.
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(|c| c.allow_loopback(), &clock).await;
    let webhooks = &app.services.webhooks;
    let ada = app.user("ada@example.com").await;
    let receiver = Receiver::start("whsec_placeholder").await;
    let (webhook_id, secret) = webhook_to(&app, &ada, &receiver.url("/hook"), &["contact.created"]).await;
    // Pointing back at the receiver itself shows whether it was followed, without sending
    // anything to another machine.
    receiver.control(json!({ "secret": secret, "redirect": receiver.url("/followed") })).await;
    new_contact(&app, &ada, "carol@customer.test").await;

    for attempt in 1..=2 {
        clock.advance(chrono::Duration::hours(13));
        assert_eq!(webhooks.run_once().await.expect("a pass"), 1, "attempt {attempt}");
    }
    let delivery = deliveries(&webhook(&app, &ada, &webhook_id).await).pop().expect("a delivery");
    assert_eq!(delivery["attempt"], 2, "{delivery}");
    assert_eq!(delivery["status"], "RETRYING", "{delivery}");
    assert_eq!(delivery["statusCode"], 302);
    assert!(delivery["nextAttemptAt"].is_string());
    let paths: Vec<Value> = receiver.requests().iter().map(|r| r["path"].clone()).collect();
    assert!(paths.iter().all(|p| p == "/hook"), "the redirect was followed: {paths:?}");

    // Once the receiver answers properly, the same event goes through.
    receiver.control(json!({ "redirect": null })).await;
    clock.advance(chrono::Duration::hours(13));
    assert_eq!(webhooks.run_once().await.expect("a pass"), 1, "the third attempt");
    let got = receiver.received_within(1, Duration::from_secs(5)).await;
    assert_eq!(got[0]["id"], delivery["eventId"]);
}

#[tokio::test]
async fn bad_input_and_callers_without_the_permission_get_typed_errors_and_nothing_is_stored() {
    let app = gateway_with(|_| {}).await;
    let ada = app.user("ada@example.com").await;
    let url = "http://127.0.0.1:9/hook";

    let r = create_webhook(&app, &ada, url, &["contact.created", "no.such.kind"]).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("eventKinds[1]".into())), "{r}");
    let r = create_webhook(&app, &ada, url, &["security.event"]).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("eventKinds[0]".into())), "not deliverable to webhooks: {r}");
    let r = create_webhook(&app, &ada, url, &[]).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("eventKinds".into())), "{r}");

    // Someone else's workspace does not exist for Ada.
    let bob = app.user("bob@example.com").await;
    let r = create_webhook(&app, &TestUser { workspace_id: bob.workspace_id.clone(), ..ada.clone() }, url, &["contact.created"]).await;
    assert_eq!(error_of(&r).0, "NOT_FOUND", "{r}");

    // A MEMBER may not manage integrations.
    let r = app.add_member(&bob, &bob.workspace_id, "ada@example.com", "MEMBER").await;
    assert!(r.get("errors").is_none(), "{r}");
    let as_member = TestUser { workspace_id: bob.workspace_id.clone(), ..ada.clone() };
    let r = create_webhook(&app, &as_member, url, &["contact.created"]).await;
    assert_eq!(error_of(&r).0, "FORBIDDEN", "{r}");
    let r = app.gql(Some(&ada.token), "query($w: ID!) { webhooks(workspaceId: $w) { id } }", json!({ "w": bob.workspace_id })).await;
    assert_eq!(error_of(&r).0, "FORBIDDEN", "{r}");

    assert_eq!(webhooks_of(&app, &ada).await, json!([]));
    assert_eq!(webhooks_of(&app, &bob).await, json!([]));

    // Bob's webhook: Ada (a MEMBER there) cannot change it; a stranger cannot find it.
    let (bobs, _) = webhook_to(&app, &bob, url, &["contact.created"]).await;
    let carol = app.user("carol@example.com").await;
    for (who, code) in [(&ada, "FORBIDDEN"), (&carol, "NOT_FOUND")] {
        let r = app.gql(Some(&who.token), "mutation($id: ID!) { deleteWebhook(id: $id) }", json!({ "id": bobs })).await;
        assert_eq!(error_of(&r).0, code, "{r}");
        let r = app.gql(Some(&who.token), "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }", json!({ "id": bobs })).await;
        assert_eq!(error_of(&r).0, code, "{r}");
    }
    let r = app
        .gql(
            Some(&bob.token),
            "mutation($id: ID!) { updateWebhook(id: $id, input: { url: \"https://10.1.2.3/\" }) { url } }",
            json!({ "id": bobs }),
        )
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("url".into())), "{r}");
    assert_eq!(webhook(&app, &bob, &bobs).await["url"], url, "unchanged");
}

#[tokio::test]
async fn a_webhook_failing_through_the_whole_schedule_is_disabled_its_creator_told_and_a_redelivery_sends_the_same_id() {
    let clock = ManualClock::new(Utc::now());
    // The test steps the webhook worker itself, one attempt per step of the schedule.
    let app = TestApp::spawn_stepped(|c| c.allow_loopback(), &clock).await;
    let ada = app.user("ada@example.com").await;
    let receiver = Receiver::start("whsec_placeholder").await;
    let (webhook_id, secret) = webhook_to(&app, &ada, &receiver.url("/hook"), &["contact.created"]).await;
    receiver.control(json!({ "secret": secret, "fail": 1000, "status": 500 })).await;
    new_contact(&app, &ada, "carol@customer.test").await;

    // Each step of the schedule is at most 10 hours (and a fifth more): each attempt is due
    // once the clock has moved past its step, and never before. (The delivery was queued at
    // the wall clock's time, a moment after the manual clock's start.)
    let settled = |w: &Value| -> Option<usize> {
        let d = deliveries(w).into_iter().next()?;
        let attempts = d["attempts"].as_array()?.clone();
        (attempts.last()?["attemptedAt"] == d["lastAttemptAt"]).then_some(attempts.len())
    };
    let webhooks = &app.services.webhooks;
    for attempt in 1..=9 {
        assert_eq!(webhooks.run_once().await.expect("a pass"), 0, "attempt {attempt} came before its step");
        clock.advance(chrono::Duration::hours(13));
        assert_eq!(webhooks.run_once().await.expect("a pass"), 1, "attempt {attempt}");
        let w = webhook(&app, &ada, &webhook_id).await;
        assert_eq!(settled(&w), Some(attempt), "one attempt per step, recorded: {w}");
        assert_eq!(deliveries(&w)[0]["attempt"], attempt);
    }
    let w = webhook(&app, &ada, &webhook_id).await;
    assert_eq!(w["enabled"], false, "disabled after 9 attempts: {w}");
    assert_eq!(w["disabledReason"], "FAILING");
    let failed = &deliveries(&w)[0];
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["attempt"], 9);
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 9);
    assert!(failed["nextAttemptAt"].is_null());

    let r = app.gql(Some(&ada.token), "{ me { notifications(first: 10) { edges { node { event title body } } } } }", json!({})).await;
    let edges = r["data"]["me"]["notifications"]["edges"].as_array().cloned().unwrap_or_default();
    let told =
        edges.iter().find(|e| e["node"]["event"] == "WEBHOOK_DISABLED").unwrap_or_else(|| panic!("no WEBHOOK_DISABLED notification: {r}"));
    assert!(told["node"]["body"].as_str().unwrap().contains(&receiver.url("/hook")), "{told}");

    // Disabled, nothing new is queued; a redelivery must wait for it to be on again.
    new_contact(&app, &ada, "dan@customer.test").await;
    assert_eq!(deliveries(&webhook(&app, &ada, &webhook_id).await).len(), 1);
    let redeliver = format!("mutation($id: ID!) {{ redeliverWebhookDelivery(id: $id) {{ {DELIVERY} }} }}");
    let r = app.gql(Some(&ada.token), &redeliver, json!({ "id": failed["id"] })).await;
    assert_eq!(error_of(&r).0, "CONFLICT", "{r}");

    receiver.control(json!({ "fail": 0 })).await;
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($id: ID!) { updateWebhook(id: $id, input: { enabled: true }) { enabled disabledReason } }",
            json!({ "id": webhook_id }),
        )
        .await;
    assert_eq!(r["data"]["updateWebhook"], json!({ "enabled": true, "disabledReason": null }), "{r}");
    let r = app.gql(Some(&ada.token), &redeliver, json!({ "id": failed["id"] })).await;
    assert_eq!(r["data"]["redeliverWebhookDelivery"]["status"], "PENDING", "{r}");
    assert_eq!(webhooks.run_once().await.expect("a pass"), 1, "the redelivery");
    // The receiver's own log may trail its answer by a moment.
    let got = receiver.received_within(1, Duration::from_secs(5)).await;
    assert_eq!(got[0]["id"], failed["eventId"], "the same webhook-id, so the receiver can tell");
    assert_eq!(got[0]["payload"]["data"]["emails"], json!(["carol@customer.test"]));
}
