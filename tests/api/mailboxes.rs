//! Mailboxes against a real Dovecot: connecting (a failed sign-in is a typed error and saves
//! nothing), syncing mail since the sync-from date into `message.receive` events on the
//! sender's contact, live arrival, and every fault ending with each message recorded once.

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use serde_json::{Value, json};

use concierge::fanout::Topic;
use concierge::workspace::model::WorkspaceId;

use crate::helpers::{TestApp, TestUser, WsEvent, codes, error_of};
use crate::mail_lab::MailLab;

const MAILBOX: &str = "id status statusReason lastError syncFrom paused lastSyncedAt counts { messages malformed } \
    health { serverCount recordedCount missing lastReconciledAt } settings emailAddress connector";

/// A gateway that trusts the lab's certificate, and the lab.
pub async fn gateway() -> (TestApp, MailLab) {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.mail_retry_ms = 200;
    })
    .await;
    (app, lab)
}

/// IMAP over implicit TLS, and the lab's submission server (implicit TLS, signed in with the
/// mailbox's password) for sending, as a real provider's would be.
pub fn imap_settings(lab: &MailLab) -> Value {
    json!({
        "imapHost": "127.0.0.1", "imapPort": lab.imaps, "imapSecurity": "SSL_TLS",
        "smtpHost": "127.0.0.1", "smtpPort": lab.submissions, "smtpSecurity": "SSL_TLS",
    })
}

pub fn message(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{}@test.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        Utc::now().to_rfc2822(),
        uuid::Uuid::new_v4().simple()
    )
    .into_bytes()
}

pub fn imap_date(days_ago: i64) -> Option<String> {
    Some((Utc::now() - Days::days(days_ago)).format("%d-%b-%Y %H:%M:%S +0000").to_string())
}

pub fn sync_from(days_ago: i64) -> String {
    (Utc::now() - Days::days(days_ago)).format("%Y-%m-%d").to_string()
}

pub async fn connect(app: &TestApp, user: &TestUser, mail_user: &str, password: &str, settings: Value) -> Value {
    app.gql(
        Some(&user.token),
        &format!("mutation($i: ConnectMailboxInput!) {{ connectMailbox(input: $i) {{ {MAILBOX} }} }}"),
        json!({ "i": {
            "connector": "imap", "emailAddress": format!("{mail_user}@lab.test"), "password": password,
            "syncFrom": sync_from(30), "settings": settings,
        }}),
    )
    .await
}

/// Connects `mail_user`'s mailbox for `user` and returns its id.
pub async fn connected(app: &TestApp, user: &TestUser, lab: &MailLab, mail_user: &str, password: &str) -> String {
    let r = connect(app, user, mail_user, password, imap_settings(lab)).await;
    r["data"]["connectMailbox"]["id"].as_str().unwrap_or_else(|| panic!("connectMailbox failed: {r}")).to_owned()
}

pub async fn mailbox(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let r = app.gql(Some(&user.token), &format!("query($id: ID!) {{ mailbox(id: $id) {{ {MAILBOX} }} }}"), json!({ "id": id })).await;
    r["data"]["mailbox"].clone()
}

/// Waits until the mailbox is LIVE with `n` messages recorded.
pub async fn live_with(app: &TestApp, user: &TestUser, id: &str, n: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = mailbox(app, user, id).await;
        if m["status"] == "LIVE" && m["counts"]["messages"].as_i64() == Some(n) {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mailbox did not reach LIVE with {n} messages: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn workspace_activity(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let r = app
        .gql(
            Some(&user.token),
            "{ activity(first: 100) { edges { node { id type occurredAt malformed contact { name emails } \
               message { title contents html from { name email } to { name email } cc { name email } messageId inReplyTo references \
               attachments { name size contentType } malformed } } } } }",
            json!({}),
        )
        .await;
    r["data"]["activity"]["edges"].as_array().unwrap_or_else(|| panic!("activity: {r}")).iter().map(|e| e["node"].clone()).collect()
}

#[tokio::test]
async fn the_connectors_describe_their_connect_forms() {
    let (app, _lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let r = app
        .gql(
            Some(&ada.token),
            "{ mailConnectors { kind displayName auth canSend fields { key label type required default choices { value label } } } }",
            json!({}),
        )
        .await;
    let connectors = r["data"]["mailConnectors"].as_array().unwrap_or_else(|| panic!("{r}"));
    let imap = connectors.iter().find(|c| c["kind"] == "imap").expect("the IMAP/SMTP connector");
    assert_eq!(imap["auth"], "PASSWORD");
    assert_eq!(imap["canSend"], true);
    let field = |key: &str| {
        imap["fields"].as_array().unwrap().iter().find(|f| f["key"] == key).cloned().unwrap_or_else(|| panic!("no field {key}"))
    };
    assert_eq!(field("imapHost")["required"], true);
    assert_eq!(field("imapPort")["type"], "PORT");
    let security: Vec<String> =
        field("imapSecurity")["choices"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap().to_owned()).collect();
    assert_eq!(security, ["SSL_TLS", "STARTTLS", "NONE"]);
    let gmail = connectors.iter().find(|c| c["kind"] == "gmail-password").expect("Gmail by app password");
    assert!(gmail["fields"].as_array().unwrap().iter().any(|f| f["key"] == "smtpSecurity"), "{gmail}");
}

#[tokio::test]
async fn a_sign_in_that_fails_is_a_typed_error_on_the_field_at_fault_and_saves_nothing() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;

    let r = connect(&app, &ada, &mail_user, "wrong password", imap_settings(&lab)).await;
    assert_eq!(error_of(&r), ("AUTHENTICATION_FAILED".into(), Some("password".into())), "{r}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut settings = imap_settings(&lab);
    settings["imapPort"] = json!(closed);
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r), ("UNREACHABLE".into(), Some("settings.imapPort".into())), "a closed port is the port's fault: {r}");

    // SSL/TLS against the plain port: the handshake fails.
    let mut settings = imap_settings(&lab);
    settings["imapPort"] = json!(lab.imap);
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r).0, "TLS_FAILED", "{r}");

    // STARTTLS or no encryption towards the implicit-TLS port: the server waits for a
    // handshake and says nothing; that is a TLS mistake on the security field, not a timeout.
    for security in ["STARTTLS", "NONE"] {
        let mut settings = imap_settings(&lab);
        settings["imapSecurity"] = json!(security);
        settings["imapPort"] = json!(lab.imaps);
        let r = connect(&app, &ada, &mail_user, &password, settings).await;
        assert_eq!(error_of(&r), ("TLS_FAILED".into(), Some("settings.imapSecurity".into())), "{security}: {r}");
    }

    let mut settings = imap_settings(&lab);
    settings["imapSecurity"] = json!("TLS9");
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.imapSecurity".into())), "{r}");

    let r = app.gql(Some(&ada.token), "{ me { mailboxes { id } } }", json!({})).await;
    assert_eq!(r["data"]["me"]["mailboxes"], json!([]), "nothing saved: {r}");
}

#[tokio::test]
async fn a_wrong_smtp_port_or_type_is_refused_at_connect_not_at_the_first_send() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;

    // IMAP is right; nothing listens on the SMTP port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut settings = imap_settings(&lab);
    settings["smtpPort"] = json!(closed);
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r), ("UNREACHABLE".into(), Some("settings.smtpPort".into())), "{r}");

    // SSL/TLS towards a plain SMTP port: the handshake fails, on the SMTP security field.
    let mut settings = imap_settings(&lab);
    settings["smtpPort"] = json!(lab.smtp);
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r), ("TLS_FAILED".into(), Some("settings.smtpSecurity".into())), "{r}");
    assert!(r["errors"][0]["message"].as_str().is_some_and(|m| m.contains("SMTP")), "the message names the SMTP server: {r}");

    // STARTTLS towards the implicit-TLS submission port.
    let mut settings = imap_settings(&lab);
    settings["smtpSecurity"] = json!("STARTTLS");
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r), ("TLS_FAILED".into(), Some("settings.smtpSecurity".into())), "{r}");

    // A relay port that offers no sign-in (the lab's exim takes local mail without AUTH): a
    // password could never be used there, so it is the port that is wrong.
    let mut settings = imap_settings(&lab);
    settings["smtpPort"] = json!(lab.smtp);
    settings["smtpSecurity"] = json!("NONE");
    let r = connect(&app, &ada, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.smtpPort".into())), "{r}");

    let r = app.gql(Some(&ada.token), "{ me { mailboxes { id } } }", json!({})).await;
    assert_eq!(r["data"]["me"]["mailboxes"], json!([]), "nothing saved: {r}");

    // Both right: connected.
    let r = connect(&app, &ada, &mail_user, &password, imap_settings(&lab)).await;
    assert!(r["data"]["connectMailbox"]["id"].is_string(), "{r}");
}

#[tokio::test]
async fn every_tls_mode_connects() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    for (security, port) in [("SSL_TLS", lab.imaps), ("STARTTLS", lab.imap), ("NONE", lab.imap)] {
        let mut settings = imap_settings(&lab);
        settings["imapSecurity"] = json!(security);
        settings["imapPort"] = json!(port);
        let r = connect(&app, &ada, &mail_user, &password, settings).await;
        assert!(r["data"]["connectMailbox"]["id"].is_string(), "{security}: {r}");
        let id = r["data"]["connectMailbox"]["id"].as_str().unwrap();
        let r = app.gql(Some(&ada.token), "mutation($id: ID!) { disconnectMailbox(id: $id) }", json!({ "id": id })).await;
        assert!(r.get("errors").is_none(), "{r}");
    }
}

#[tokio::test]
async fn mail_since_the_sync_from_date_becomes_events_on_the_senders_contact() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let to = format!("Ada <{mail_user}@lab.test>");
    lab.append(
        &mail_user,
        &password,
        &[
            (message("Old Timer <old@customer.test>", &to, "Before the sync-from date", "old"), imap_date(60)),
            (message("Carol Customer <Carol@Customer.test>", &to, "Order 1042", "Where is my order?"), imap_date(3)),
            (
                format!(
                    "From: carol@customer.test\r\nTo: {to}\r\nCc: Dan <dan@customer.test>\r\nSubject: =?UTF-8?B?WmHFvMOzxYLEhw==?=\r\n\
                     Message-ID: <second@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks!\r\n"
                )
                .into_bytes(),
                imap_date(1),
            ),
        ],
    )
    .await;

    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    let m = live_with(&app, &ada, &id, 2).await;
    assert_eq!(m["health"]["serverCount"], 2, "{m}");
    assert_eq!(m["health"]["recordedCount"], 2);
    assert_eq!(m["health"]["missing"], 0);
    assert!(m["statusReason"].is_string());

    let events = workspace_activity(&app, &ada).await;
    assert_eq!(events.len(), 2, "the 60-day-old message is before the sync-from date: {events:?}");
    let newest = &events[0];
    assert_eq!(newest["type"], "MESSAGE_RECEIVE");
    assert_eq!(newest["message"]["title"], "Zażółć");
    assert_eq!(newest["message"]["contents"].as_str().unwrap().trim(), "Thanks!");
    assert_eq!(newest["message"]["cc"], json!([{ "name": "Dan", "email": "dan@customer.test" }]));
    assert_eq!(newest["message"]["messageId"], "second@customer.test");
    let first = &events[1];
    assert_eq!(first["message"]["title"], "Order 1042");
    assert_eq!(first["message"]["from"], json!([{ "name": "Carol Customer", "email": "Carol@Customer.test" }]));
    assert_eq!(first["message"]["to"][0]["email"], format!("{mail_user}@lab.test"));
    // Both from Carol (the address compared case-insensitively): one contact.
    assert_eq!(first["contact"]["name"], "Carol Customer");
    assert_eq!(newest["contact"], first["contact"]);

    // Syncing never changed the mailbox: nothing was marked read.
    assert_eq!(lab.seen_flags(&mail_user, &password).await, [false, false, false]);
}

#[tokio::test]
async fn mail_appended_while_live_reaches_an_activity_subscriber() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;

    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", ada.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query":
        "subscription { activityEvents { type contact { emails } message { title from { email } } } }" } }))
        .await;
    app.listening(Topic::Workspace(WorkspaceId(uuid::Uuid::parse_str(&ada.workspace_id).unwrap())), 1).await;

    lab.append(&mail_user, &password, &[(message("eve@customer.test", &format!("{mail_user}@lab.test"), "Live one", "hi"), None)]).await;
    let WsEvent::Json(next) = ws.next_within(Duration::from_secs(15)).await else { panic!("subscription closed") };
    assert_eq!(next["type"], "next", "{next}");
    let event = &next["payload"]["data"]["activityEvents"];
    assert_eq!(event["type"], "MESSAGE_RECEIVE");
    assert_eq!(event["message"]["title"], "Live one");
    assert_eq!(event["contact"]["emails"], json!(["eve@customer.test"]));

    // Live mail notifies the mailbox's owner.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.gql(Some(&ada.token), "{ me { notifications(first: 5) { edges { node { event title body } } } } }", json!({})).await;
        let edges = r["data"]["me"]["notifications"]["edges"].as_array().cloned().unwrap_or_default();
        if let Some(n) = edges.iter().find(|e| e["node"]["event"] == "MESSAGE_RECEIVED") {
            assert_eq!(n["node"]["body"], "Live one");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no MESSAGE_RECEIVED notification: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn mailbox_credentials_never_come_back_and_are_sealed_at_rest() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    let everything = app
        .gql(Some(&ada.token), &format!("{{ me {{ mailboxes {{ {MAILBOX} statusChangedAt createdAt workspaceId }} }} }}"), json!({}))
        .await;
    assert!(!everything.to_string().contains(&password), "the password came back: {everything}");
    let stored =
        concierge::mailboxes::store::credentials(&app.services.db, concierge::mailboxes::model::MailboxId::parse("id", &id).unwrap())
            .await
            .unwrap()
            .expect("sealed credentials");
    assert!(!stored.windows(password.len()).any(|w| w == password.as_bytes()), "the password is stored in the clear");
}

#[tokio::test]
async fn a_refused_password_after_connecting_needs_reauthorisation_and_notifies() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;

    lab.set_password(&mail_user, "changed-elsewhere").await;
    // Make the sync sign in again now rather than at its next reconnect.
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { resyncMailbox(id: $id) { id } }", json!({ "id": id })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = mailbox(&app, &ada, &id).await;
        if m["status"] == "NEEDS_REAUTH" {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline, "never NEEDS_REAUTH: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(m["statusReason"].as_str().unwrap().contains("refused"), "{m}");
    assert!(m["lastError"].as_str().is_some_and(|e| e.contains("authentication")), "{m}");
    // The notice follows the status change.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.gql(Some(&ada.token), "{ me { notifications(first: 5) { edges { node { event title } } } } }", json!({})).await;
        let edges = r["data"]["me"]["notifications"]["edges"].as_array().cloned().unwrap_or_default();
        if let Some(n) = edges.iter().find(|e| e["node"]["event"] == "MAILBOX_ERROR") {
            assert!(n["node"]["title"].as_str().unwrap().contains(&mail_user), "{n}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no MAILBOX_ERROR notification: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Connecting it again with the new password signs it back in: same mailbox, sync resumed.
    lab.append(&mail_user, "changed-elsewhere", &[(message("x@customer.test", &format!("{mail_user}@lab.test"), "while away", "b"), None)])
        .await;
    let r = connect(&app, &ada, &mail_user, "changed-elsewhere", imap_settings(&lab)).await;
    assert_eq!(r["data"]["connectMailbox"]["id"], id, "{r}");
    live_with(&app, &ada, &id, 1).await;
}

#[tokio::test]
async fn pausing_stops_the_sync_and_disconnecting_keeps_the_events() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let to = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("x@customer.test", &to, "one", "1"), None)]).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 1).await;

    let r = app
        .gql(
            Some(&ada.token),
            "mutation($id: ID!) { updateMailbox(id: $id, input: { paused: true }) { status paused } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(r["data"]["updateMailbox"], json!({ "status": "PAUSED", "paused": true }), "{r}");
    lab.append(&mail_user, &password, &[(message("x@customer.test", &to, "two", "2"), None)]).await;
    let r = app
        .gql(Some(&ada.token), "mutation($id: ID!) { updateMailbox(id: $id, input: { paused: false }) { paused } }", json!({ "id": id }))
        .await;
    assert_eq!(r["data"]["updateMailbox"]["paused"], false, "{r}");
    live_with(&app, &ada, &id, 2).await;

    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { disconnectMailbox(id: $id) }", json!({ "id": id })).await;
    assert_eq!(r["data"]["disconnectMailbox"], id, "{r}");
    assert_eq!(workspace_activity(&app, &ada).await.len(), 2, "events stay");
    let r = app.gql(Some(&ada.token), "query($id: ID!) { mailbox(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
}

#[tokio::test]
async fn someone_elses_mailbox_is_not_found() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    for q in [
        "query($id: ID!) { mailbox(id: $id) { id } }",
        "mutation($id: ID!) { resyncMailbox(id: $id) { id } }",
        "mutation($id: ID!) { disconnectMailbox(id: $id) }",
    ] {
        let r = app.gql(Some(&bob.token), q, json!({ "id": id })).await;
        assert_eq!(codes(&r), ["NOT_FOUND"], "{q}: {r}");
        let r = app.gql(Some(&ada.token), q, json!({ "id": "not-a-mailbox-id" })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{q}: {r}");
    }
    assert!(mailbox(&app, &ada, &id).await["id"].is_string(), "still connected");
}

#[tokio::test]
async fn every_message_of_the_corpus_and_a_10_mb_one_becomes_one_event_without_stalling() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("corpus").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eml");
    let mut mail: Vec<(Vec<u8>, Option<String>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| (std::fs::read(e.path()).unwrap(), imap_date(1)))
        .collect();
    let corpus = mail.len();
    assert!(corpus >= 10, "the corpus is in tests/eml");
    let big = {
        use base64::Engine as _;
        let blob = base64::engine::general_purpose::STANDARD.encode(vec![0x5au8; 7_500_000]);
        let wrapped: Vec<&str> = blob.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!(
            "From: big@customer.test\r\nTo: {mail_user}@lab.test\r\nSubject: Big one\r\nMessage-ID: <big@customer.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--x\r\n\
             Content-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--x--\r\n",
            wrapped.join("\r\n")
        )
    };
    assert!(big.len() > 10_000_000);
    mail.push((big.into_bytes(), imap_date(1)));
    lab.append(&mail_user, &password, &mail).await;

    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    let m = live_with(&app, &ada, &id, corpus as i64 + 1).await;
    assert!(m["counts"]["malformed"].as_i64().unwrap() >= 2, "broken MIME is recorded and marked: {m}");
    let events = workspace_activity(&app, &ada).await;
    assert_eq!(events.len(), corpus + 1);
    let big = events.iter().find(|e| e["message"]["title"] == "Big one").expect("the 10 MB message");
    assert_eq!(big["message"]["attachments"], json!([{ "name": "big.bin", "size": 7_500_000, "contentType": "application/octet-stream" }]));
    let titles: Vec<&str> = events.iter().filter_map(|e| e["message"]["title"].as_str()).collect();
    assert!(titles.contains(&"Zażółć gęślą jaźń 🎉"), "{titles:?}");
    assert!(events.iter().any(|e| e["malformed"] == true && e["message"]["malformed"].is_string()));
    for e in &events {
        if let Some(html) = e["message"]["html"].as_str() {
            assert!(!html.contains("<script") && !html.contains("onclick"), "unsanitised HTML: {html}");
        }
    }
}

#[tokio::test]
async fn activity_lists_mail_by_when_it_was_sent_even_when_recorded_late() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("order").await;
    let dated = |subject: &str, days_ago: i64| {
        format!(
            "From: c@customer.test\r\nTo: {mail_user}@lab.test\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{subject}.{mail_user}@customer.test>\r\n\r\nx\r\n",
            (Utc::now() - Days::days(days_ago)).to_rfc2822()
        )
        .into_bytes()
    };
    lab.append(&mail_user, &password, &[(dated("two-days", 2), imap_date(2)), (dated("one-day", 1), imap_date(1))]).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 2).await;
    // Written 20 days ago, delivered only now: recorded last, listed last.
    lab.append(&mail_user, &password, &[(dated("twenty-days", 20), None)]).await;
    live_with(&app, &ada, &id, 3).await;

    let mut titles = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = app
            .gql(
                Some(&ada.token),
                "query($a: String) { activity(first: 1, after: $a) { edges { node { message { title } } } pageInfo { hasNextPage endCursor } } }",
                json!({ "a": after }),
            )
            .await;
        let page = &r["data"]["activity"];
        titles.push(page["edges"][0]["node"]["message"]["title"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned());
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(titles, ["one-day", "two-days", "twenty-days"]);
    let r = app.gql(Some(&ada.token), "{ activity(after: \"bogus\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("after".into())));
}

#[tokio::test]
async fn sync_from_dates_must_be_real_ones() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("date").await;
    let tomorrow = (Utc::now() + Days::days(1)).format("%Y-%m-%d").to_string();
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: ConnectMailboxInput!) { connectMailbox(input: $i) { id } }",
            json!({ "i": { "connector": "imap", "emailAddress": format!("{mail_user}@lab.test"), "password": password,
                           "syncFrom": tomorrow, "settings": imap_settings(&lab) } }),
        )
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("syncFrom".into())), "{r}");
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($id: ID!) { updateMailbox(id: $id, input: { syncFrom: \"1980-01-01\" }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("syncFrom".into())), "{r}");
    assert_eq!(mailbox(&app, &ada, &id).await["syncFrom"], sync_from(30), "nothing changed");
}

/// The SHA-256 fingerprint of a PEM certificate, as `openssl x509 -fingerprint` prints it.
pub async fn fingerprint(cert: &std::path::Path) -> String {
    let out = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .await
        .expect("openssl runs");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.trim().rsplit_once('=').map(|(_, f)| f.to_uppercase()).unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
}

#[tokio::test]
async fn a_self_signed_certificate_works_when_the_operator_trusts_it_or_the_user_pins_it() {
    // The certificate a self-hosted server's operator makes the common way: CA:TRUE.
    let lab = MailLab::private_with(&[("MAIL_LAB_CERT", "common")]).await;
    let (mail_user, password) = lab.new_user("ada").await;
    // TLS on both sides: IMAP by STARTTLS, SMTP by implicit TLS.
    let settings = json!({
        "imapHost": "127.0.0.1", "imapPort": lab.imap, "imapSecurity": "STARTTLS",
        "smtpHost": "127.0.0.1", "smtpPort": lab.submissions, "smtpSecurity": "SSL_TLS",
    });

    // The operator trusts it (CONCIERGE_MAIL_CA_FILE): it connects, and a wrong password is
    // a wrong password, not a TLS failure.
    let cert = lab.cert();
    let trusting = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        c.allow_loopback();
    })
    .await;
    let ada = trusting.user("ada@example.com").await;
    let r = connect(&trusting, &ada, &mail_user, "wrong password", settings.clone()).await;
    assert_eq!(error_of(&r), ("AUTHENTICATION_FAILED".into(), Some("password".into())), "{r}");
    let r = connect(&trusting, &ada, &mail_user, &password, settings.clone()).await;
    assert!(r["data"]["connectMailbox"]["id"].is_string(), "{r}");

    // Nobody trusts it: refused, with what the user needs to check it and pin it.
    let app = TestApp::spawn_with(|c| c.allow_loopback()).await;
    let bob = app.user("bob@example.com").await;
    let r = connect(&app, &bob, &mail_user, &password, settings.clone()).await;
    assert_eq!(error_of(&r), ("TLS_FAILED".into(), Some("settings.imapSecurity".into())), "{r}");
    let shown = &r["errors"][0]["extensions"]["certificate"];
    let expected = fingerprint(&lab.cert()).await;
    assert_eq!(shown["sha256"], expected.as_str(), "{r}");
    assert_eq!(shown["subject"], "CN=localhost", "{r}");
    assert_eq!(shown["issuer"], "CN=localhost", "{r}");
    assert_eq!(shown["pinSetting"], "tlsCertificateSha256", "{r}");
    assert!(r["errors"][0]["message"].as_str().is_some_and(|m| m.contains(&expected)), "{r}");

    // A pin that is not this certificate's changes nothing; a malformed one is refused.
    let mut pinned = settings.clone();
    pinned["tlsCertificateSha256"] = json!("00".repeat(32));
    let r = connect(&app, &bob, &mail_user, &password, pinned.clone()).await;
    assert_eq!(error_of(&r).0, "TLS_FAILED", "{r}");
    pinned["tlsCertificateSha256"] = json!("AB:CD");
    let r = connect(&app, &bob, &mail_user, &password, pinned.clone()).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.tlsCertificateSha256".into())), "{r}");

    // Pinned (as copied, lower case and without colons too): IMAP and SMTP both connect.
    pinned["tlsCertificateSha256"] = json!(expected.replace(':', "").to_lowercase());
    let r = connect(&app, &bob, &mail_user, &password, pinned).await;
    assert!(r["data"]["connectMailbox"]["id"].is_string(), "{r}");
    // The pin is Bob's mailbox's: nobody else's connection trusts the certificate.
    let carol = app.user("carol@example.com").await;
    let r = connect(&app, &carol, &mail_user, &password, settings).await;
    assert_eq!(error_of(&r).0, "TLS_FAILED", "{r}");
}

#[tokio::test]
async fn providers_are_presets_built_in_or_from_the_operators_file_and_an_address_finds_its_own() {
    let lab = MailLab::get().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.toml");
    // The lab as a provider the operator added: its servers, its domain, a password to sign in.
    std::fs::write(
        &file,
        format!(
            "[[mail_provider]]\nkind = \"acme\"\nlabel = \"Acme Mail\"\ndomains = [\"lab.test\"]\nauth = \"password\"\n\
             help = \"Use an app password from Acme's security page.\"\n\
             imap = {{ host = \"127.0.0.1\", port = {}, security = \"SSL_TLS\" }}\n\
             smtp = {{ host = \"127.0.0.1\", port = {}, security = \"SSL_TLS\" }}\n",
            lab.imaps, lab.submissions
        ),
    )
    .unwrap();
    let (cert, providers) = (lab.cert(), file.clone());
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        c.allow_loopback();
        c.providers_file = Some(providers);
    })
    .await;
    let ada = app.user("ada@example.com").await;

    let r = app.gql(Some(&ada.token), "{ mailConnectors { kind label auth help domains fields { key } } }", json!({})).await;
    let connectors = r["data"]["mailConnectors"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    let by_kind = |kind: &str| connectors.iter().find(|c| c["kind"] == kind).cloned().unwrap_or_else(|| panic!("no {kind}: {r}"));
    for kind in ["imap", "gmail", "outlook", "yahoo", "icloud", "fastmail", "zoho", "gmx", "aol", "yandex", "acme"] {
        by_kind(kind);
    }
    let acme = by_kind("acme");
    assert_eq!((acme["label"].as_str(), acme["auth"].as_str()), (Some("Acme Mail"), Some("PASSWORD")), "{acme}");
    assert_eq!(acme["domains"], json!(["lab.test"]));
    assert_eq!(acme["fields"], json!([]), "a preset's form asks for nothing but the password");
    assert!(by_kind("yahoo")["domains"].as_array().unwrap().iter().any(|d| d == "yahoo.com"));

    // An address finds its provider; one no preset serves finds nothing.
    let discover = "query($e: String!) { discoverMailSettings(email: $e) { domain source connector { kind label } } }";
    for (email, kind) in
        [("someone@LAB.test", "acme"), ("someone@yahoo.com", "yahoo"), ("someone@fastmail.com", "fastmail"), ("a@gmail.com", "gmail")]
    {
        let r = app.gql(Some(&ada.token), discover, json!({ "e": email })).await;
        assert_eq!(r["data"]["discoverMailSettings"]["connector"]["kind"], kind, "{email}: {r}");
        assert_eq!(r["data"]["discoverMailSettings"]["source"], "PRESET", "{r}");
    }
    let r = app.gql(Some(&ada.token), discover, json!({ "e": "someone@unknown-provider.example" })).await;
    assert_eq!(r["data"]["discoverMailSettings"], Value::Null, "{r}");
    let r = app.gql(Some(&ada.token), discover, json!({ "e": "not an address" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("email".into())), "{r}");
    let r = app.gql(None, discover, json!({ "e": "someone@yahoo.com" })).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");

    // Connected with the preset and a password alone; it syncs from the preset's servers, and
    // a wrong password is refused as one. Settings are not the preset's to take.
    let (mail_user, password) = lab.new_user("acme").await;
    let connect_with = |settings: Value, password: String| {
        let (app, token, address) = (&app, ada.token.clone(), format!("{mail_user}@lab.test"));
        async move {
            let input = json!({ "connector": "acme", "emailAddress": address, "password": password, "syncFrom": sync_from(30), "settings": settings });
            app.gql(
                Some(&token),
                &format!("mutation($i: ConnectMailboxInput!) {{ connectMailbox(input: $i) {{ {MAILBOX} }} }}"),
                json!({ "i": input }),
            )
            .await
        }
    };
    let r = connect_with(json!({}), "wrong".into()).await;
    assert_eq!(error_of(&r), ("AUTHENTICATION_FAILED".into(), Some("password".into())), "{r}");
    let r = connect_with(json!({ "imapHost": "evil.example" }), password.clone()).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.imapHost".into())), "{r}");
    let r = connect_with(json!({}), password.clone()).await;
    let id = r["data"]["connectMailbox"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    live_with(&app, &ada, &id, 0).await;
}

#[test]
fn a_bad_providers_file_stops_the_gateway_with_the_line_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.toml");
    std::fs::write(
        &file,
        "# ours\n\n[[mail_provider]]\nkind = \"acme\"\nlabel = \"Acme\"\nauth = \"password\"\n\
         imap = { host = \"imap.acme.example\", port = 0, security = \"SSL_TLS\" }\n\
         smtp = { host = \"smtp.acme.example\", port = 465, security = \"SSL_TLS\" }\n",
    )
    .unwrap();
    let mut config = concierge::config::Config::defaults();
    config.providers_file = Some(file);
    let err = concierge::accounts::registry::Registry::builtin(Default::default(), &config).err().expect("refused").to_string();
    assert!(err.contains("providers.toml") && err.contains("line 3") && err.contains("imap.port"), "{err}");
}

/// A mailbox keeps a history of what its status soon stops showing: its owner's changes, and
/// the server refusing the password until it is connected again. Nobody else can read it.
#[tokio::test]
async fn a_mailbox_keeps_a_history_of_what_happened_to_it() {
    let (app, lab) = gateway().await;
    let (ada, bea) = (app.user("ada@example.com").await, app.user("bea@example.com").await);
    let (mail_user, password) = lab.new_user("hist").await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;
    let update = "mutation($i: UpdateMailboxInput!) { updateMailbox(input: $i) { status } }";
    let history = "query($id: ID!, $n: Int) { mailbox(id: $id) { history(first: $n) { at kind detail } } }";
    let lines = |token: String, n: i64| {
        let app = &app;
        let id = id.clone();
        async move { app.gql(Some(&token), history, json!({ "id": id, "n": n })).await }
    };

    for paused in [true, false] {
        let r = app.gql(Some(&ada.token), update, json!({ "i": { "id": id, "paused": paused } })).await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    live_with(&app, &ada, &id, 0).await;
    let r = app.gql(Some(&ada.token), update, json!({ "i": { "id": id, "syncFrom": sync_from(60) } })).await;
    assert!(r.get("errors").is_none(), "{r}");
    live_with(&app, &ada, &id, 0).await;
    // The password changes at the server: the next sign-in is refused.
    lab.set_password(&mail_user, "a-brand-new-password").await;
    let r = app
        .gql(Some(&ada.token), "mutation($i: MailboxInput!) { resyncMailbox(input: $i) { status } }", json!({ "i": { "id": id } }))
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while mailbox(&app, &ada, &id).await["status"] != "NEEDS_REAUTH" {
        assert!(tokio::time::Instant::now() < deadline, "the refused password never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = connected(&app, &ada, &lab, &mail_user, "a-brand-new-password").await;
    assert_eq!(again, id, "the same mailbox, signed in again");

    let r = lines(ada.token.clone(), 20).await;
    let list = r["data"]["mailbox"]["history"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    let kinds: Vec<&str> = list.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["SIGNED_IN_AGAIN", "NEEDS_REAUTH", "LISTED_AGAIN", "LISTED_AGAIN", "RESUMED", "PAUSED", "CONNECTED"],
        "newest first: {r}"
    );
    assert_eq!(list[2]["detail"], "asked by the user");
    assert_eq!(list[3]["detail"], format!("from {}", sync_from(60)));
    assert!(list[1]["detail"].as_str().unwrap().contains("refused the credentials"), "{r}");
    assert!(list.windows(2).all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()), "{r}");
    let r = lines(ada.token.clone(), 2).await;
    assert_eq!(r["data"]["mailbox"]["history"].as_array().map(Vec::len), Some(2), "{r}");

    // Out of range; and another account learns nothing, not even that the mailbox exists.
    for n in [0, 101] {
        let r = lines(ada.token.clone(), n).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("first".into())), "{n}: {r}");
    }
    let r = lines(bea.token.clone(), 20).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
}

/// Gmail by app password follows `CONCIERGE_GMAIL_IMAP`/`SMTP` like Gmail by OAuth: an
/// operator (here, a lab standing in for Gmail) points both sign-ins at the same servers, and
/// the user still gives nothing but the address and the app password. The servers are the
/// operator's, so they need no outbound allowance.
#[tokio::test]
async fn gmail_by_app_password_follows_the_operators_gmail_servers() {
    let lab = MailLab::get().await;
    let (cert, imaps, submissions) = (lab.cert(), lab.imaps, lab.submissions);
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        c.gmail_imap = Some(format!("127.0.0.1:{imaps}"));
        c.gmail_smtp = Some(format!("127.0.0.1:{submissions}"));
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("gpw").await;
    let connect = |password: String, settings: Value| {
        let (app, token, address) = (&app, ada.token.clone(), format!("{mail_user}@lab.test"));
        async move {
            let input = json!({ "connector": "gmail-password", "emailAddress": address, "password": password, "syncFrom": sync_from(30), "settings": settings });
            app.gql(
                Some(&token),
                &format!("mutation($i: ConnectMailboxInput!) {{ connectMailbox(input: $i) {{ {MAILBOX} }} }}"),
                json!({ "i": input }),
            )
            .await
        }
    };
    let r = connect("not-the-app-password".into(), json!({})).await;
    assert_eq!(error_of(&r), ("AUTHENTICATION_FAILED".into(), Some("password".into())), "{r}");
    // The form has no server fields for a user to move it with.
    let r = connect(password.clone(), json!({ "imapHost": "169.254.169.254" })).await;
    assert_eq!(error_of(&r).0, "BAD_USER_INPUT", "{r}");
    let r = connect(password.clone(), json!({})).await;
    let id = r["data"]["connectMailbox"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    live_with(&app, &ada, &id, 0).await;
}
