//! Faults during a mailbox sync: the gateway killed mid-sync, Dovecot down and back, the
//! folder renumbered (UIDVALIDITY). After each, every message is an event exactly once.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use concierge::fanout::Topic;

use crate::helpers::{TestApp, TestUser, WsEvent};
use crate::mail_lab::MailLab;
use crate::mailboxes::{connected, imap_date, live_with, mailbox, message, sync_from};

/// The workspace's events: (count, distinct Message-IDs).
async fn event_counts(app: &TestApp, user: &TestUser) -> (usize, usize) {
    let mut ids = std::collections::HashSet::new();
    let mut total = 0;
    let mut after: Option<String> = None;
    loop {
        let r = app
            .gql(
                Some(&user.token),
                "query($a: String) { activity(first: 100, after: $a) { edges { node { message { messageId } } } pageInfo { hasNextPage endCursor } } }",
                json!({ "a": after }),
            )
            .await;
        let page = &r["data"]["activity"];
        for e in page["edges"].as_array().unwrap_or_else(|| panic!("{r}")) {
            total += 1;
            ids.insert(e["node"]["message"]["messageId"].as_str().unwrap_or_default().to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return (total, ids.len());
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

fn key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

#[tokio::test]
async fn a_gateway_killed_mid_sync_resumes_and_records_each_message_once() {
    let lab = MailLab::get().await;
    let (mail_user, password) = lab.new_user("kill").await;
    let to = format!("{mail_user}@lab.test");
    let mail: Vec<_> = (0..400).map(|i| (message(&format!("s{}@customer.test", i % 7), &to, &format!("m{i}"), "body"), None)).collect();
    lab.append(&mail_user, &password, &mail).await;

    // Connect with one gateway and stop it at once; its sync may have begun.
    let cert = lab.cert();
    let first = TestApp::spawn_with({
        let cert = cert.clone();
        move |c| {
            c.mail_ca_file = Some(cert);
            // The mail lab listens on loopback.
            c.allow_loopback();
            c.secret_key = Some(concierge::config::Redacted(key()));
            c.mail_sync_batch = 20;
            c.mail_lease_secs = 2;
        }
    })
    .await;
    let ada = first.user("ada@example.com").await;
    let id = connected(&first, &ada, &lab, &mail_user, &password).await;
    let url = first.database_url.clone();
    first.begin_shutdown();

    // A real gateway process on the same database, SIGKILLed while it records.
    let data = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .env("DATABASE_URL", &url)
        .env("CONCIERGE_BIND", "127.0.0.1:0")
        .env("CONCIERGE_DATA_DIR", data.path())
        .env("CONCIERGE_SECRET_KEY", key())
        .env("CONCIERGE_MAIL_CA_FILE", &cert)
        .env("CONCIERGE_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
        .env("CONCIERGE_MAIL_SYNC_BATCH", "20")
        .env("CONCIERGE_MAIL_LEASE_SECS", "2")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts");
    let db = concierge::db::Db::connect(&url, Some(2)).await.unwrap();
    let mailbox_id = concierge::mailboxes::model::MailboxId::parse("id", &id).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = concierge::mailboxes::store::find_mailbox(&db, mailbox_id).await.unwrap().unwrap();
        if m.message_count >= 60 {
            assert!(m.message_count < 400, "the sync finished before the kill; make the mailbox bigger");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the child gateway did not sync: {m:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    db.close().await;

    // Started again, the sync picks up from its checkpoint.
    let second = TestApp::spawn_with(move |c| {
        c.database_url = Some(url);
        // The killed process's lease runs out after 2 s; then this one takes the mailbox over.
        c.mail_lease_secs = 2;
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.secret_key = Some(concierge::config::Redacted(key()));
    })
    .await;
    let ada = TestUser {
        token: second.log_in("ada@example.com", crate::helpers::PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned(),
        ..ada
    };
    live_with(&second, &ada, &id, 400).await;
    assert_eq!(event_counts(&second, &ada).await, (400, 400));
}

#[tokio::test]
async fn an_imap_outage_mid_sync_shows_as_an_error_then_recovers_with_nothing_lost() {
    let lab = MailLab::private().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.mail_retry_ms = 100;
        c.mail_sync_batch = 10;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("out").await;
    let to = format!("{mail_user}@lab.test");
    let mail: Vec<_> = (0..150).map(|i| (message("c@customer.test", &to, &format!("m{i}"), "b"), None)).collect();
    lab.append(&mail_user, &password, &mail).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    lab.stop_imap().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox(&app, &ada, &id).await;
        if m["status"] == "ERROR" {
            assert!(m["statusReason"].as_str().unwrap().contains("retrying"), "{m}");
            assert!(m["lastError"].is_string(), "{m}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the outage never showed: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An outage that lasts (the retry fails too) gets a line in the mailbox's history.
    while !history_kinds(&app, &ada, &id).await.contains(&"FAILING".to_owned()) {
        assert!(tokio::time::Instant::now() < deadline, "the lasting outage never reached the history");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lab.start_imap().await;
    live_with(&app, &ada, &id, 150).await;
    assert_eq!(event_counts(&app, &ada).await, (150, 150));
    // The outage stays in the history once it is over: one line as it lasted (with the
    // error), one as the sync caught up, however many retries came between.
    let kinds = history_kinds(&app, &ada, &id).await;
    assert_eq!(kinds, ["RECOVERED", "FAILING", "CONNECTED"], "newest first");
}

/// The kinds of the mailbox's history, newest first.
pub async fn history_kinds(app: &TestApp, user: &crate::helpers::TestUser, id: &str) -> Vec<String> {
    let r = app.gql(Some(&user.token), "query($id: ID!) { mailbox(id: $id) { history { at kind detail } } }", json!({ "id": id })).await;
    let lines = r["data"]["mailbox"]["history"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    lines.iter().map(|l| l["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_renumbered_folder_is_resynced_without_duplicate_events() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.mail_retry_ms = 100;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("uidv").await;
    let to = format!("{mail_user}@lab.test");
    let mail: Vec<_> = (0..5).map(|i| (message("c@customer.test", &to, &format!("m{i}"), "b"), None)).collect();
    lab.append(&mail_user, &password, &mail).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 5).await;

    // New UIDs and a new UIDVALIDITY, as a server restored from backup would have.
    lab.doveadm(&["mailbox", "create", "-u", &mail_user, "tmp"]).await;
    lab.doveadm(&["move", "-u", &mail_user, "tmp", "mailbox", "INBOX", "all"]).await;
    lab.doveadm(&["move", "-u", &mail_user, "INBOX", "mailbox", "tmp", "all"]).await;
    lab.doveadm(&["mailbox", "delete", "-u", &mail_user, "tmp"]).await;
    let status = lab.doveadm(&["mailbox", "status", "-u", &mail_user, "uidvalidity", "INBOX"]).await;
    let current: u64 = status.trim().rsplit("uidvalidity=").next().unwrap_or_default().parse().unwrap_or_else(|_| panic!("{status}"));
    lab.doveadm(&["mailbox", "update", "-u", &mail_user, "--uid-validity", &(current + 1000).to_string(), "INBOX"]).await;
    // Arrival times are whole seconds: this one comes in after the second of connecting.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "after the renumbering", "b"), None)]).await;

    live_with(&app, &ada, &id, 6).await;
    assert_eq!(event_counts(&app, &ada).await, (6, 6));

    // The renumbering leaves a trace, and the health counts what the server holds now (the
    // old numbering's ids are forgotten; after the listing, every message is recorded once).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let m = loop {
        let r = app
            .gql(
                Some(&ada.token),
                "query($id: ID!) { mailbox(id: $id) { lastCheckpointResetAt health { recordedCount } } }",
                json!({ "id": id }),
            )
            .await;
        let m = r["data"]["mailbox"].clone();
        if m["health"]["recordedCount"] == 6 || tokio::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(m["health"]["recordedCount"], 6, "{m}");
    assert!(m["lastCheckpointResetAt"].is_string(), "{m}");
    assert_eq!(history_kinds(&app, &ada, &id).await, ["FOLDER_RENUMBERED", "CONNECTED"], "a line in the history, too");

    // Mail that came in while the renumbered folder was listed again is news all the same.
    // (The five re-listed messages were there before the mailbox was connected.)
    until_notices(&app, &ada, &["after the renumbering"]).await;
}

#[tokio::test]
async fn the_sync_reports_progress_while_it_records() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.mail_sync_batch = 10;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("prog").await;
    let to = format!("{mail_user}@lab.test");
    // Older than the 30-day sync-from date: the first sync records nothing.
    let mail: Vec<_> = (0..40).map(|i| (message("c@customer.test", &to, &format!("m{i}"), "b"), imap_date(45))).collect();
    lab.append(&mail_user, &password, &mail).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;

    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", ada.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "p", "type": "subscribe", "payload": {
        "query": "subscription($m: ID!) { mailboxSyncProgress(mailboxId: $m) { done total } }", "variables": { "m": id } } }))
        .await;
    app.listening(Topic::Mailbox(concierge::mailboxes::model::MailboxId::parse("id", &id).unwrap()), 1).await;
    // An earlier sync-from date lists again from it.
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($id: ID!, $d: NaiveDate!) { updateMailbox(id: $id, input: { syncFrom: $d }) { syncFrom } }",
            json!({ "id": id, "d": sync_from(60) }),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let mut seen = Vec::new();
    loop {
        let WsEvent::Json(m) = ws.next_within(Duration::from_secs(15)).await else { panic!("closed") };
        let p = &m["payload"]["data"]["mailboxSyncProgress"];
        assert_eq!(p["total"], 40, "{m}");
        let done = p["done"].as_u64().unwrap();
        seen.push(done);
        if done == 40 {
            break;
        }
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {seen:?}");
    assert!(seen.len() >= 3, "progress comes batch by batch: {seen:?}");
    live_with(&app, &ada, &id, 40).await;
    // Old mail recorded late is not news: no notifications for it.
    let r = app
        .gql(Some(&ada.token), "{ me { unreadNotificationCount notifications(first: 50) { edges { node { event } } } } }", json!({}))
        .await;
    let received =
        r["data"]["me"]["notifications"]["edges"].as_array().unwrap().iter().filter(|e| e["node"]["event"] == "MESSAGE_RECEIVED").count();
    assert_eq!(received, 0, "{r}");
}

#[tokio::test]
async fn reconciliation_finds_a_message_the_store_lost_and_records_it_again() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.mail_reconcile_secs = 1;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("recon").await;
    let to = format!("{mail_user}@lab.test");
    let mail: Vec<_> = (0..3).map(|i| (message("c@customer.test", &to, &format!("m{i}"), "b"), None)).collect();
    lab.append(&mail_user, &password, &mail).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    let first = live_with(&app, &ada, &id, 3).await;
    assert_eq!(first["health"]["serverCount"], 3, "{first}");

    // Lose one message's record behind the sync's back, as a restored backup or a bug would.
    let mailbox_id = concierge::mailboxes::model::MailboxId::parse("id", &id).unwrap();
    let lost = concierge::mailboxes::store::recorded_ids(&app.services.db, mailbox_id).await.unwrap().pop().unwrap();
    let db = &app.services.db;
    concierge::on_pool!(db, p => {
        let event: Option<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM mail_message WHERE mailbox_id = $1 AND remote_id = $2")
            .bind(mailbox_id)
            .bind(&lost)
            .fetch_one(p)
            .await
            .unwrap();
        sqlx::query("DELETE FROM mail_message WHERE mailbox_id = $1 AND remote_id = $2").bind(mailbox_id).bind(&lost).execute(p).await.unwrap();
        sqlx::query("DELETE FROM activity_event WHERE event_id = $1").bind(event).execute(p).await.unwrap();
    });
    assert_eq!(event_counts(&app, &ada).await.0, 2);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox(&app, &ada, &id).await;
        if m["health"]["recordedCount"] == 3 && m["status"] == "LIVE" && event_counts(&app, &ada).await == (3, 3) {
            assert_eq!(m["health"]["missing"], 0, "{m}");
            assert_ne!(m["health"]["lastReconciledAt"], first["health"]["lastReconciledAt"], "{m}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the lost message was not backfilled: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It was there before the mailbox was connected: backfilling it is not news.
    assert!(received_notices(&app, &ada).await.is_empty());

    // Mail that arrives live and is then lost (as if the sync had missed it) is news when the
    // backfill records it, as it would have been live.
    let before = concierge::mailboxes::store::recorded_ids(&app.services.db, mailbox_id).await.unwrap();
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "late", "b"), None)]).await;
    live_with(&app, &ada, &id, 4).await;
    until_notices(&app, &ada, &["late"]).await;
    let after = concierge::mailboxes::store::recorded_ids(&app.services.db, mailbox_id).await.unwrap();
    let late: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
    assert_eq!(late.len(), 1, "{before:?} {after:?}");
    concierge::on_pool!(db, p => {
        let event: Option<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM mail_message WHERE mailbox_id = $1 AND remote_id = $2")
            .bind(mailbox_id).bind(late[0]).fetch_one(p).await.unwrap();
        sqlx::query("DELETE FROM mail_message WHERE mailbox_id = $1 AND remote_id = $2").bind(mailbox_id).bind(late[0]).execute(p).await.unwrap();
        sqlx::query("DELETE FROM activity_event WHERE event_id = $1").bind(event).execute(p).await.unwrap();
        sqlx::query("DELETE FROM notification").execute(p).await.unwrap();
    });
    until_notices(&app, &ada, &["late"]).await;
}

/// A received message and its owner's notification are one write: when the notification
/// cannot be stored, the message is not recorded either (nor its webhook delivery), and the
/// sync fetches it again until both go in, once.
#[tokio::test]
async fn a_message_whose_notification_cannot_be_stored_is_not_recorded_until_both_can_be() {
    let (app, lab) = crate::mailboxes::gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("atomic").await;
    let to = format!("{mail_user}@lab.test");
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;
    crate::helpers::refuse_inserts(&app.services.db, "notification", "body", "Poisoned").await;

    lab.append(&mail_user, &password, &[(message("carol@customer.test", &to, "Poisoned", "hello"), None)]).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox(&app, &ada, &id).await;
        if m["status"] == "ERROR" {
            assert_eq!(m["counts"]["messages"], 0, "the message went in without its notification: {m}");
            break;
        }
        assert_eq!(m["counts"]["messages"], 0, "the message went in without its notification: {m}");
        assert!(tokio::time::Instant::now() < deadline, "the batch did not fail: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(event_counts(&app, &ada).await, (0, 0));

    crate::helpers::allow_inserts(&app.services.db, "notification").await;
    live_with(&app, &ada, &id, 1).await;
    assert_eq!(received_notices(&app, &ada).await, ["Poisoned"], "recorded with the message, once");
    assert_eq!(event_counts(&app, &ada).await, (1, 1));
}

/// Waits until the user's MESSAGE_RECEIVED notifications are `expected` (they are written
/// in the message's batch's transaction).
async fn until_notices(app: &TestApp, user: &TestUser, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let notices = received_notices(app, user).await;
        if notices == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "notified of {notices:?}, not {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bodies (message subjects) of the user's MESSAGE_RECEIVED notifications.
async fn received_notices(app: &TestApp, user: &TestUser) -> Vec<String> {
    let r = app.gql(Some(&user.token), "{ me { notifications(first: 50) { nodes { event body } } } }", json!({})).await;
    r["data"]["me"]["notifications"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .filter(|n| n["event"] == "MESSAGE_RECEIVED")
        .map(|n| n["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_mailbox_status_subscriber_sees_each_change_until_the_mailbox_is_disconnected() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        c.allow_loopback();
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("stat").await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;

    let mut watching = app.ws_signed_in(&ada.token).await;
    watching
        .send(json!({ "id": "s", "type": "subscribe", "payload": {
        "query": "subscription($m: ID!) { mailboxStatus(mailboxId: $m) { status statusReason paused } }", "variables": { "m": id } } }))
        .await;
    app.listening(Topic::Mailbox(concierge::mailboxes::model::MailboxId::parse("id", &id).unwrap()), 1).await;
    app.gql(Some(&ada.token), "mutation($id: ID!) { updateMailbox(id: $id, input: { paused: true }) { id } }", json!({ "id": id })).await;
    let WsEvent::Json(m) = watching.next_within(Duration::from_secs(10)).await else { panic!("closed") };
    assert_eq!(
        m["payload"]["data"]["mailboxStatus"],
        json!({ "status": "PAUSED", "statusReason": "paused by the user", "paused": true }),
        "{m}"
    );

    // Someone else cannot watch it.
    let eve = app.user("eve@example.com").await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", eve.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "s", "type": "subscribe", "payload": {
        "query": "subscription($m: ID!) { mailboxStatus(mailboxId: $m) { status } }", "variables": { "m": id } } }))
        .await;
    let m = ws.next_json().await;
    assert_eq!(m["payload"]["data"], json!(null), "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{m}");

    // Once the mailbox is gone, its watcher is told so, and the subscription ends.
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { disconnectMailbox(id: $id) }", json!({ "id": id })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let m = watching.next_json().await;
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{m}");
    assert_eq!(watching.next_json().await, json!({ "id": "s", "type": "complete" }));
}

#[tokio::test]
async fn two_gateways_on_one_database_sync_a_mailbox_from_one_connection_and_hand_it_over() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let settings = move |cert: std::path::PathBuf| {
        move |c: &mut concierge::config::Config| {
            c.mail_ca_file = Some(cert);
            // The mail lab listens on loopback.
            c.allow_loopback();
            c.secret_key = Some(concierge::config::Redacted(key()));
            c.mail_lease_secs = 2;
        }
    };
    let mut first = TestApp::spawn_with(settings(cert.clone())).await;
    let ada = first.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("pair").await;
    let to = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "one", "b"), None)]).await;
    let id = connected(&first, &ada, &lab, &mail_user, &password).await;
    live_with(&first, &ada, &id, 1).await;

    let url = first.database_url.clone();
    let second = TestApp::spawn_with({
        let cert = cert.clone();
        move |c| {
            settings(cert)(c);
            c.database_url = Some(url);
        }
    })
    .await;
    // The second process starts a sync for every mailbox, but the first holds this one's lease:
    // the server only ever sees one sync connection for the user.
    let mut seen = 0;
    for _ in 0..15 {
        let who = lab.doveadm(&["who", "-1"]).await;
        let connections = who.lines().filter(|l| l.split_whitespace().next().is_some_and(|u| u.starts_with(mail_user.as_str()))).count();
        assert!(connections <= 1, "two sync connections at once:\n{who}");
        seen = seen.max(connections);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1, "doveadm who shows the one sync connection");

    // The first process goes away; the second takes over and records new mail.
    first.begin_shutdown();
    first.stopped(Duration::from_secs(20)).await.unwrap();
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "two", "b"), None)]).await;
    let ada = TestUser {
        token: second.log_in("ada@example.com", crate::helpers::PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned(),
        ..ada
    };
    live_with(&second, &ada, &id, 2).await;
    assert_eq!(event_counts(&second, &ada).await, (2, 2));
}

#[tokio::test]
async fn credentials_sealed_under_another_key_ask_the_user_to_connect_again() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let mut first = TestApp::spawn_with({
        let cert = cert.clone();
        move |c| {
            c.mail_ca_file = Some(cert);
            // The mail lab listens on loopback.
            c.allow_loopback();
            c.secret_key = Some(concierge::config::Redacted(key()));
            c.mail_lease_secs = 1;
        }
    })
    .await;
    let ada = first.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("rekey").await;
    let id = connected(&first, &ada, &lab, &mail_user, &password).await;
    live_with(&first, &ada, &id, 0).await;
    let url = first.database_url.clone();
    first.begin_shutdown();
    first.stopped(Duration::from_secs(20)).await.unwrap();

    let second = TestApp::spawn_with(move |c| {
        c.database_url = Some(url);
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.secret_key = Some(concierge::config::Redacted(base64::engine::general_purpose::STANDARD.encode([9u8; 32])));
    })
    .await;
    let ada = TestUser {
        token: second.log_in("ada@example.com", crate::helpers::PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned(),
        ..ada
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox(&second, &ada, &id).await;
        if m["status"] == "NEEDS_REAUTH" {
            assert!(m["lastError"].as_str().unwrap().contains("secret key"), "{m}");
            assert!(m["statusReason"].as_str().unwrap().contains("cannot read the saved credentials"), "not the server's doing: {m}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never NEEDS_REAUTH: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway process (real, default 60 s lease) on the given data folder and database.
fn child(url: &str, data: &std::path::Path, cert: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .env("DATABASE_URL", url)
        .env("CONCIERGE_BIND", "127.0.0.1:0")
        .env("CONCIERGE_DATA_DIR", data)
        .env("CONCIERGE_SECRET_KEY", key())
        .env("CONCIERGE_MAIL_CA_FILE", cert)
        .env("CONCIERGE_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts")
}

/// After `kill -9`, the same gateway started again on its data folder is the same lease
/// holder: it takes its mailboxes back at once instead of waiting out its own 60 s lease
/// (while they showed a stale status).
#[tokio::test]
async fn a_gateway_restarted_after_a_kill_takes_its_own_mailboxes_back_at_once() {
    let lab = MailLab::get().await;
    let (mail_user, password) = lab.new_user("back").await;
    let to = format!("{mail_user}@lab.test");
    let cert = lab.cert();
    let first = TestApp::spawn_with({
        let cert = cert.clone();
        move |c| {
            c.mail_ca_file = Some(cert);
            c.allow_loopback();
            c.secret_key = Some(concierge::config::Redacted(key()));
            // Another holder than the gateway process below: its claim must run out soon.
            c.mail_lease_secs = 1;
        }
    })
    .await;
    let ada = first.user("ada@example.com").await;
    let id = connected(&first, &ada, &lab, &mail_user, &password).await;
    let url = first.database_url.clone();
    first.begin_shutdown();
    let db = concierge::db::Db::connect(&url, Some(2)).await.unwrap();
    let mailbox_id = concierge::mailboxes::model::MailboxId::parse("id", &id).unwrap();
    let recorded = |n: i64| {
        let db = db.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                let m = concierge::mailboxes::store::find_mailbox(&db, mailbox_id).await.unwrap().unwrap();
                if m.message_count >= n && m.status == "LIVE" {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "not recorded within 15 s (the lease is 60 s): {m:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // The gateway process takes the mailbox (the in-process one's lease is released or ran
    // out: it stopped) and records a first message.
    let data = tempfile::tempdir().unwrap();
    let mut gateway = child(&url, data.path(), &cert);
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "before the kill", "b"), None)]).await;
    recorded(1).await;
    gateway.start_kill().unwrap();
    gateway.wait().await.unwrap();

    // Started again on the same data folder: the same holder, so mail that arrived meanwhile
    // is recorded at once, well inside the lease it held when it died.
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "after the kill", "b"), None)]).await;
    let mut again = child(&url, data.path(), &cert);
    recorded(2).await;
    again.start_kill().unwrap();
    again.wait().await.unwrap();
    db.close().await;
}
