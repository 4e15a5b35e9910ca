//! The outbound address policy, attacked (issue 19, section 3): a free account names this
//! machine, the cloud metadata service or a private network as a push endpoint, a CalDAV
//! URL, an IMAP or SMTP host or a webhook, in every spelling, hoping the gateway connects
//! there for it (server-side request forgery) or that its errors map which ports are open.
//! Each is refused as BAD_USER_INPUT on the field that named it, and a real listener on
//! loopback counts the connections the gateway made to it: zero. With
//! `CONCIERGE_OUTBOUND_ALLOW` covering loopback the same addresses pass the policy, and an
//! address accepted under a wider policy is checked again when the gateway sends to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use concierge::identity::model::AccountId;
use concierge::jobs::worker::Worker as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, codes, error_of};

/// A browser's subscription keys (a valid P-256 point and a 16-byte secret).
const P256DH: &str = "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
const AUTH: &str = "Zl2DfSz9DwkePkvteR7iog";

const REGISTER_PUSH: &str = "mutation($e: String!, $k: PushKeysInput!) { registerPushSubscription(endpoint: $e, keys: $k) }";
const CONNECT_CALENDAR: &str = "mutation($i: ConnectCalendarAccountInput!) { connectCalendarAccount(input: $i) { id } }";
const CONNECT_MAILBOX: &str = "mutation($i: ConnectMailboxInput!) { connectMailbox(input: $i) { id } }";
const CREATE_WEBHOOK: &str = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }";

/// A listener on loopback that counts the connections made to it.
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Listener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(tcp);
            }
        });
        Listener { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits (up to 10 s) until at least one connection arrived.
    async fn connected_within(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.hits() == 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// This machine in every spelling, then the metadata service and private networks.
fn hostile_hosts() -> Vec<&'static str> {
    vec![
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "localhost",
        "localhost.",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "[fd00::1]",
        "0.0.0.0",
    ]
}

/// A host as an IMAP/SMTP form field: IPv6 without brackets.
fn bare(host: &str) -> &str {
    host.trim_matches(['[', ']'])
}

fn assert_refused_on(r: &Value, field: &str, what: &str) {
    assert!(r["errors"].is_array(), "{what} was accepted: {r}");
    let (code, got) = error_of(r);
    assert_eq!((code.as_str(), got.as_deref()), ("BAD_USER_INPUT", Some(field)), "{what}: {r}");
}

async fn register_push(app: &TestApp, token: &str, endpoint: &str) -> Value {
    app.gql(Some(token), REGISTER_PUSH, json!({ "e": endpoint, "k": { "p256dh": P256DH, "auth": AUTH } })).await
}

async fn connect_calendar(app: &TestApp, token: &str, url: &str) -> Value {
    app.gql(
        Some(token),
        CONNECT_CALENDAR,
        json!({ "i": { "connector": "caldav", "username": "u", "password": "p", "settings": { "url": url } } }),
    )
    .await
}

async fn connect_mailbox(app: &TestApp, token: &str, imap: (&str, u16), smtp: (&str, u16)) -> Value {
    let settings = json!({
        "imapHost": imap.0, "imapPort": imap.1, "imapSecurity": "SSL_TLS",
        "smtpHost": smtp.0, "smtpPort": smtp.1, "smtpSecurity": "SSL_TLS",
    });
    let input =
        json!({ "connector": "imap", "emailAddress": "a@example.com", "password": "x", "syncFrom": "2026-01-01", "settings": settings });
    app.gql(Some(token), CONNECT_MAILBOX, json!({ "i": input })).await
}

/// A public address that needs no DNS: the other server of a mailbox whose one server is hostile.
const PUBLIC: &str = "93.184.215.14";

#[tokio::test]
async fn push_endpoints_on_this_machine_or_private_networks_are_refused_without_a_connection() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    let listener = Listener::start().await;

    for host in hostile_hosts() {
        for endpoint in [format!("https://{host}:{}/push", listener.port), format!("http://{host}:{}/push", listener.port)] {
            let r = register_push(&app, &mallory.token, &endpoint).await;
            assert_refused_on(&r, "endpoint", &endpoint);
        }
    }

    let account = AccountId::parse("id", &mallory.id).expect("an account id");
    assert_eq!(app.services.notifications.push_subscription_count(account).await.expect("count"), 0, "nothing was saved");
    assert_eq!(listener.hits(), 0, "the gateway connected to a refused address");
}

#[tokio::test]
async fn caldav_urls_on_non_public_addresses_are_refused_before_any_connection() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    let listener = Listener::start().await;

    for host in hostile_hosts() {
        for url in [format!("http://{host}:{}/dav/", listener.port), format!("https://{host}:{}/dav/", listener.port)] {
            let r = connect_calendar(&app, &mallory.token, &url).await;
            assert_refused_on(&r, "settings.url", &url);
        }
    }

    assert_eq!(listener.hits(), 0, "the gateway connected to a refused address (and sent Basic credentials?)");
}

#[tokio::test]
async fn imap_and_smtp_hosts_on_non_public_addresses_are_refused_before_any_connection() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    let listener = Listener::start().await;

    for host in hostile_hosts() {
        let imap = connect_mailbox(&app, &mallory.token, (bare(host), listener.port), (PUBLIC, 465)).await;
        assert_refused_on(&imap, "settings.imapHost", host);
        // The SMTP host is refused when the mailbox is connected, not at its first send.
        let smtp = connect_mailbox(&app, &mallory.token, (PUBLIC, 993), (bare(host), listener.port)).await;
        assert_refused_on(&smtp, "settings.smtpHost", host);
    }

    assert_eq!(listener.hits(), 0, "the gateway connected to a refused address");
}

#[tokio::test]
async fn a_refusal_reads_the_same_whether_the_port_behind_it_is_open_or_closed() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    let open = Listener::start().await;
    let closed = {
        let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        gone.local_addr().expect("address").port()
    };

    let imap = |port| connect_mailbox(&app, &mallory.token, ("127.0.0.1", port), (PUBLIC, 465));
    let (to_open, to_closed) = (imap(open.port).await, imap(closed).await);
    assert_eq!(to_open["errors"], to_closed["errors"], "an open and a closed port answer alike");

    let caldav = |port: u16| format!("https://127.0.0.1:{port}/dav/");
    let to_open = connect_calendar(&app, &mallory.token, &caldav(open.port)).await;
    let to_closed = connect_calendar(&app, &mallory.token, &caldav(closed)).await;
    assert_eq!(codes(&to_open), codes(&to_closed));
    let message = |r: &Value, port: u16| r["errors"][0]["message"].as_str().unwrap_or_default().replace(&port.to_string(), "PORT");
    assert_eq!(message(&to_open, open.port), message(&to_closed, closed), "the messages differ only by the port typed");
    assert_eq!(open.hits(), 0);
}

#[tokio::test]
async fn with_loopback_in_the_allow_list_the_same_addresses_pass_the_policy() {
    let app = TestApp::spawn_with(|c| c.allow_loopback()).await;
    let ada = app.user("ada@example.com").await;

    // Registration checks the address without connecting.
    let push = Listener::start().await;
    let r = register_push(&app, &ada.token, &format!("https://127.0.0.1:{}/push", push.port)).await;
    assert_eq!(r["data"]["registerPushSubscription"], true, "{r}");
    assert_eq!(push.hits(), 0, "registering connects nowhere");

    // Connecting a calendar or a mailbox signs in: the listener sees the attempt, and the
    // answer is about the server (it hung up), not the address.
    let calendar = Listener::start().await;
    let r = connect_calendar(&app, &ada.token, &format!("http://127.0.0.1:{}/dav/", calendar.port)).await;
    assert!(calendar.connected_within(Duration::from_secs(10)).await, "the CalDAV URL was not tried: {r}");
    assert!(!codes(&r).contains(&"BAD_USER_INPUT".to_owned()), "{r}");

    let mailbox = Listener::start().await;
    let r = connect_mailbox(&app, &ada.token, ("localhost", mailbox.port), ("127.0.0.1", 465)).await;
    assert!(mailbox.connected_within(Duration::from_secs(10)).await, "the IMAP host was not tried: {r}");
    assert!(!codes(&r).contains(&"BAD_USER_INPUT".to_owned()), "{r}");
}

#[tokio::test]
async fn the_allow_list_opens_only_its_own_ranges() {
    let app = TestApp::spawn_with(|c| c.outbound_allow = vec!["10.0.0.0/8".parse().expect("CIDR")]).await;
    let mallory = app.user("mallory@example.com").await;
    let listener = Listener::start().await;

    let r = connect_mailbox(&app, &mallory.token, ("127.0.0.1", listener.port), (PUBLIC, 465)).await;
    assert_refused_on(&r, "settings.imapHost", "loopback beside a LAN allow list");
    let r = register_push(&app, &mallory.token, "https://169.254.169.254/push").await;
    assert_refused_on(&r, "endpoint", "the metadata service beside a LAN allow list");
    let r = register_push(&app, &mallory.token, "https://10.1.2.3/push").await;
    assert_eq!(r["data"]["registerPushSubscription"], true, "the LAN range is open: {r}");
    let r = register_push(&app, &mallory.token, "http://10.1.2.3/push").await;
    assert_refused_on(&r, "endpoint", "plain http beyond this machine");
    assert_eq!(listener.hits(), 0);
}

#[tokio::test]
async fn webhook_urls_on_non_public_addresses_are_refused_without_a_connection() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    let listener = Listener::start().await;

    for host in hostile_hosts() {
        let url = format!("https://{host}:{}/hook", listener.port);
        let input = json!({ "workspaceId": mallory.workspace_id, "url": url, "eventKinds": ["contact.created"] });
        let r = app.gql(Some(&mallory.token), CREATE_WEBHOOK, json!({ "i": input })).await;
        assert_refused_on(&r, "url", &url);
    }

    assert_eq!(listener.hits(), 0);
}

#[tokio::test]
async fn anonymous_callers_and_narrow_tokens_cannot_make_the_gateway_connect_anywhere() {
    // Loopback is open here, so only authorization stands between them and the listener.
    let app = TestApp::spawn_with(|c| c.allow_loopback()).await;
    let ada = app.user("ada@example.com").await;
    let r = app
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"narrow\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    let narrow = r["data"]["createAccessToken"]["token"].as_str().unwrap_or_else(|| panic!("a token: {r}")).to_owned();
    let listener = Listener::start().await;
    let url = format!("http://127.0.0.1:{}/x", listener.port);

    for token in [None, Some(narrow.as_str())] {
        let input = json!({ "connector": "caldav", "username": "u", "password": "p", "settings": { "url": url } });
        let r = app.gql(token, CONNECT_CALENDAR, json!({ "i": input })).await;
        assert!(r["errors"].is_array() && !codes(&r).contains(&"BAD_USER_INPUT".to_owned()), "{r}");
        let settings = json!({ "imapHost": "127.0.0.1", "imapPort": listener.port, "imapSecurity": "SSL_TLS", "smtpHost": "127.0.0.1", "smtpPort": listener.port, "smtpSecurity": "SSL_TLS" });
        let input = json!({ "connector": "imap", "emailAddress": "a@example.com", "password": "x", "syncFrom": "2026-01-01", "settings": settings });
        let r = app.gql(token, CONNECT_MAILBOX, json!({ "i": input })).await;
        assert!(r["errors"].is_array() && !codes(&r).contains(&"BAD_USER_INPUT".to_owned()), "{r}");
    }

    assert_eq!(listener.hits(), 0);
}

/// Stops a gateway the way SIGTERM would (its database stays, for the next one).
async fn stop(app: &mut TestApp) {
    app.begin_shutdown();
    app.stopped(Duration::from_secs(30)).await.expect("the gateway stops cleanly");
}

/// The key both gateways of one database seal secrets with.
fn key() -> concierge::config::Redacted {
    use base64::Engine as _;
    concierge::config::Redacted(base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
}

/// A gateway that may reach this machine, and whose database a second one can take over.
async fn lenient() -> TestApp {
    TestApp::spawn_with(|c| {
        c.allow_loopback();
        c.secret_key = Some(key());
    })
    .await
}

/// A second gateway on `first`'s database, with the default (strict) policy.
/// Its queue workers run only when the test steps them.
async fn strict_successor(first: &TestApp) -> TestApp {
    let url = first.database_url.clone();
    TestApp::spawn_with(move |c| {
        c.database_url = Some(url);
        c.secret_key = Some(key());
        c.queue_workers = false;
    })
    .await
}

#[tokio::test]
async fn a_push_endpoint_accepted_under_a_wider_policy_is_checked_again_when_sent_to() {
    let mut first = lenient().await;
    let ada: TestUser = first.user(&format!("ada-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    let listener = Listener::start().await;
    let r = register_push(&first, &ada.token, &format!("http://127.0.0.1:{}/push", listener.port)).await;
    assert_eq!(r["data"]["registerPushSubscription"], true, "{r}");
    stop(&mut first).await;

    // The address no longer passes (as when a name is rebound to it after registration).
    let second = strict_successor(&first).await;
    let r = second
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"ci\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    assert!(r["errors"].is_null(), "{r}");

    let account = AccountId::parse("id", &ada.id).expect("an account id");
    second.services.delivery.run_once().await.expect("a pass of the delivery worker");
    let jobs = second.services.notifications.deliveries(account).await.expect("jobs");
    let push = jobs.iter().find(|j| j.channel == "PUSH").unwrap_or_else(|| panic!("no push job: {jobs:?}"));
    assert_eq!(push.state, "FAILED", "{push:?}");
    assert_eq!(listener.hits(), 0, "the push went to an address the policy refuses");
}

#[tokio::test]
async fn a_webhook_accepted_under_a_wider_policy_is_checked_again_before_each_attempt() {
    let mut first = lenient().await;
    let ada = first.user(&format!("ada-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    let listener = Listener::start().await;
    let input = json!({ "workspaceId": ada.workspace_id, "url": format!("http://127.0.0.1:{}/hook", listener.port), "eventKinds": ["contact.created"] });
    let r = first.gql(Some(&ada.token), CREATE_WEBHOOK, json!({ "i": input })).await;
    let id = r["data"]["createWebhook"]["webhook"]["id"].as_str().unwrap_or_else(|| panic!("createWebhook: {r}")).to_owned();
    stop(&mut first).await;

    let second = strict_successor(&first).await;
    let r = second
        .gql(
            Some(&ada.token),
            "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }",
            json!({ "i": { "workspaceId": ada.workspace_id, "emails": ["carol@customer.test"] } }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    assert_eq!(second.services.webhooks.run_once().await.expect("a pass of the webhook worker"), 1, "the delivery was attempted");
    let r = second
        .gql(
            Some(&ada.token),
            "query($id: ID!) { webhook(id: $id) { deliveries(first: 5) { edges { node { lastError } } } } }",
            json!({ "id": id }),
        )
        .await;
    let error =
        r["data"]["webhook"]["deliveries"]["edges"][0]["node"]["lastError"].as_str().unwrap_or_else(|| panic!("no error recorded: {r}"));
    assert!(error.starts_with("refused"), "{error}");
    assert_eq!(listener.hits(), 0, "the webhook went to an address the policy refuses");
}
