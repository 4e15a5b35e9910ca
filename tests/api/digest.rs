//! The daily summary, on a clock the test moves: sent at the user's local time, once per
//! local day, across daylight-saving changes, and once even when two schedulers share the
//! database.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use concierge::clock::{Clock as _, ManualClock};
use concierge::identity::model::AccountId;
use concierge::jobs::worker::Worker as _;
use concierge::notifications::digest::DigestScheduler;
use concierge::notifications::model::NotificationEvent;
use concierge::notifications::outbox::JobState;
use concierge::notifications::service::Notice;
use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::{TestApp, TestUser};
use crate::mail_lab::{MailLab, parse};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("an RFC 3339 time").with_timezone(&Utc)
}

fn fresh(local: &str) -> String {
    format!("{local}-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn account(user: &TestUser) -> AccountId {
    AccountId::parse("id", &user.id).expect("an account id")
}

async fn schedule(app: &TestApp, user: &TestUser, time: &str, zone: &str) {
    let r = app
        .gql(
            Some(&user.token),
            "mutation($s: DailySummaryInput!) { updatePreferences(input: { dailySummary: $s }) { dailySummary { enabled deliveryTime timeZone } } }",
            json!({ "s": { "enabled": true, "deliveryTime": time, "timeZone": zone } }),
        )
        .await;
    assert_eq!(r["data"]["updatePreferences"]["dailySummary"], json!({ "enabled": true, "deliveryTime": time, "timeZone": zone }), "{r}");
}

async fn digests(app: &TestApp, user: &TestUser) -> Vec<JobState> {
    let all = app.services.notifications.deliveries(account(user)).await.expect("jobs");
    all.into_iter().filter(|j| j.kind == "DIGEST").collect()
}

/// Steps the scheduler at the clock's time, as its background loop would when the clock
/// moves, then reads the summaries queued.
async fn digests_now(app: &TestApp, user: &TestUser) -> Vec<JobState> {
    app.services.digests.run_once().await.expect("a pass of the scheduler");
    digests(app, user).await
}

/// The summaries, after a pass of the delivery worker: every one due is sent by it.
async fn digests_settled(app: &TestApp, user: &TestUser) -> Vec<JobState> {
    app.services.delivery.run_once().await.expect("a pass of the delivery worker");
    let found = digests(app, user).await;
    assert!(found.iter().all(|j| j.state != "PENDING"), "summaries still waiting after a pass: {found:#?}");
    found
}

async fn message_from(app: &TestApp, user: &TestUser, contact: &str, title: &str) {
    let notice = Notice { contact: Some(contact.into()), ..Notice::new(account(user), NotificationEvent::MessageReceived, title, "…") };
    app.services.notifications.notify(notice).await.expect("notified");
}

#[tokio::test]
async fn the_summary_arrives_at_the_users_local_time_once_with_their_day_in_their_language() {
    let lab = MailLab::get().await;
    let clock = ManualClock::new(at("2026-11-23T05:00:00Z"));
    let app = TestApp::spawn_stepped(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url())), &clock).await;
    let user = app.user(&fresh("digest")).await;
    let r = app.gql(Some(&user.token), "mutation { updateProfile(input: {language: \"fr\"}) { language } }", json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    schedule(&app, &user, "08:00", "Europe/Paris").await; // 07:00 UTC in November

    clock.set(at("2026-11-23T06:00:00Z"));
    for i in 0..3 {
        message_from(&app, &user, "Bob Stone", &format!("Quote {i}")).await;
    }
    message_from(&app, &user, "ann@example.com", "Lunch?").await;
    let task = Notice::new(account(&user), NotificationEvent::TaskReminder, "Call Bob back", "Due at 10:00");
    app.services.notifications.notify(task).await.expect("notified");

    clock.set(at("2026-11-23T06:59:00Z"));
    assert!(digests_now(&app, &user).await.is_empty(), "not before 08:00 Paris time");

    clock.set(at("2026-11-23T07:00:00Z"));
    assert_eq!(digests_now(&app, &user).await.len(), 1, "queued at 08:00 Paris time");
    // The task reminder goes out by email on its own; the summary is the second message.
    app.services.delivery.run_once().await.expect("a pass of the delivery worker");
    let mails: Vec<_> = lab.wait_for(&user.email, 2).await.iter().map(|raw| parse(raw)).collect();
    let summary = mails.iter().find(|m| m.subject.starts_with("Votre résumé")).expect("the summary email");
    assert_eq!(summary.subject, "Votre résumé quotidien du 2026-11-23");
    assert!(summary.text.contains("3 messages de Bob Stone"), "{}", summary.text);
    assert!(summary.text.contains("1 message de ann@example.com"), "{}", summary.text);
    assert!(summary.text.contains("Call Bob back"), "unread notifications listed: {}", summary.text);
    assert!(summary.html.as_deref().is_some_and(|h| h.contains("3 messages de Bob Stone")));

    // Later that day, nothing more; the next day's is queued at its time (and, with nothing
    // new to report, not sent).
    clock.set(at("2026-11-23T20:00:00Z"));
    assert_eq!(digests_now(&app, &user).await.len(), 1);
    clock.set(at("2026-11-24T07:00:00Z"));
    let both = digests_now(&app, &user).await;
    assert_eq!(both.len(), 2);
    let states: Vec<_> = digests_settled(&app, &user).await.into_iter().map(|j| j.state).collect();
    assert_eq!(states, ["SENT", "SKIPPED"], "an empty day sends nothing");
    let summaries = lab.messages_to(&user.email).await.iter().filter(|raw| parse(raw).subject.starts_with("Votre résumé")).count();
    assert_eq!(summaries, 1);
}

#[tokio::test]
async fn a_delivery_time_the_clocks_skip_still_sends_once_that_day() {
    // 2026-03-29: in Berlin 02:00 CET jumps to 03:00 CEST, so 02:30 does not happen.
    let clock = ManualClock::new(at("2026-03-28T12:00:00Z"));
    let app = TestApp::spawn_stepped(|_| {}, &clock).await;
    let user = app.user(&fresh("gap")).await;
    schedule(&app, &user, "02:30", "Europe/Berlin").await;

    clock.set(at("2026-03-29T00:59:00Z")); // 01:59 CET
    assert!(digests_now(&app, &user).await.is_empty());
    clock.set(at("2026-03-29T01:00:00Z")); // 03:00 CEST, right after the gap
    assert_eq!(digests_now(&app, &user).await.len(), 1);
    clock.set(at("2026-03-29T21:00:00Z"));
    assert_eq!(digests_now(&app, &user).await.len(), 1, "once that day");
    clock.set(at("2026-03-30T00:30:00Z")); // 02:30 CEST the next day
    assert_eq!(digests_now(&app, &user).await.len(), 2);
}

#[tokio::test]
async fn a_delivery_time_that_happens_twice_sends_once() {
    // 2026-10-25: in Berlin 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice.
    let clock = ManualClock::new(at("2026-10-24T12:00:00Z"));
    let app = TestApp::spawn_stepped(|_| {}, &clock).await;
    let user = app.user(&fresh("overlap")).await;
    schedule(&app, &user, "02:30", "Europe/Berlin").await;

    clock.set(at("2026-10-25T00:30:00Z")); // the first 02:30 (CEST)
    assert_eq!(digests_now(&app, &user).await.len(), 1);
    clock.set(at("2026-10-25T01:30:00Z")); // the second 02:30 (CET)
    assert_eq!(digests_now(&app, &user).await.len(), 1, "not again at the repeated 02:30");
    clock.set(at("2026-10-26T01:30:00Z")); // 02:30 CET the next day
    assert_eq!(digests_now(&app, &user).await.len(), 2);
}

#[tokio::test]
async fn two_schedulers_on_one_database_queue_one_summary() {
    let clock = ManualClock::new(at("2026-06-01T10:00:00Z"));
    let app = TestApp::spawn_stepped(|_| {}, &clock).await;
    let users = [app.user(&fresh("twice-a")).await, app.user(&fresh("twice-b")).await];
    for u in &users {
        schedule(&app, u, "09:00", "America/New_York").await; // 13:00 UTC in June
    }
    // A second gateway process: its own connection pool on the same database.
    let other_db = concierge::db::Db::connect(&app.database_url, Some(4)).await.expect("a second pool");
    let schedulers: Vec<DigestScheduler> = (0..3)
        .map(|_| DigestScheduler::new(other_db.clone(), clock.clone(), Arc::new(Notify::new()), Arc::new(Notify::new())))
        .chain([app.services.digests.clone()])
        .collect();

    clock.set(at("2026-06-01T13:00:00Z"));
    assert_eq!(clock.now(), at("2026-06-01T13:00:00Z"));
    let runs = futures_util::future::join_all(schedulers.iter().map(|s| s.run_once())).await;
    for r in &runs {
        assert!(r.is_ok(), "{r:?}");
    }
    for u in &users {
        assert_eq!(digests(&app, u).await.len(), 1, "one summary for {}, whoever got there first", u.email);
    }
    // And again a few seconds later: still one.
    clock.set(at("2026-06-01T13:00:05Z"));
    futures_util::future::join_all(schedulers.iter().map(|s| s.run_once())).await;
    for u in &users {
        assert_eq!(digests(&app, u).await.len(), 1);
    }
    other_db.close().await;
}
