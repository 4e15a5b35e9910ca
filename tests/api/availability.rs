//! Availability: live presence seen by fellow members, a chosen BUSY that holds push and sound
//! back, working hours validated whole, and free intervals across daylight-saving changes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use concierge::availability::store::{self, Part};
use concierge::fanout::Topic;
use concierge::identity::model::AccountId;
use concierge::notifications::model::NotificationEvent;
use concierge::notifications::service::Notice;
use concierge::workspace::model::WorkspaceId;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, WsClient, WsEvent, error_of};

const AVAILABILITY: &str = "{ me { availability { status effectiveStatus holdWhileBusy timeZone \
    weeklySchedule { day intervals { start end } } dateOverrides { date intervals { start end } } \
    outOfOffice { from to message } } } }";
const UPDATE: &str = "mutation($i: UpdateAvailabilityInput!) { updateAvailability(input: $i) { timeZone } }";
const FREE_BUSY: &str = "query($f: DateTime!, $t: DateTime!) { me { freeBusy(from: $f, to: $t) { free { start end } } } }";

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.presence_grace_secs = 1).await
}

fn workspace(user: &TestUser) -> WorkspaceId {
    WorkspaceId::parse("id", &user.workspace_id).expect("a workspace id")
}

/// A socket authenticated as `user` over `protocol`.
async fn connect(app: &TestApp, user: &TestUser, protocol: &str) -> WsClient {
    let mut ws = app.ws(protocol).await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", user.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws
}

/// `watcher`'s live subscription to the presence of their workspace's members.
async fn watch_presence(app: &TestApp, watcher: &TestUser, workspace_id: &str) -> WsClient {
    let mut ws = connect(app, watcher, "graphql-transport-ws").await;
    ws.send(json!({ "id": "p", "type": "subscribe", "payload": {
        "query": "subscription($w: ID!) { presenceChanged(workspaceId: $w) { userId status } }",
        "variables": { "w": workspace_id } } }))
        .await;
    ws
}

/// The next status the subscription reports for `user_id` (others' changes are skipped).
async fn next_status_of(ws: &mut WsClient, user_id: &str) -> String {
    loop {
        match ws.next_within(Duration::from_secs(10)).await {
            WsEvent::Json(m) if m["type"] == "next" => {
                let change = &m["payload"]["data"]["presenceChanged"];
                if change["userId"] == user_id {
                    return change["status"].as_str().expect("status").to_owned();
                }
            }
            WsEvent::Json(m) => panic!("unexpected message {m}"),
            WsEvent::Closed(code) => panic!("closed: {code:?}"),
        }
    }
}

/// Nothing about `user_id` arrives for `window`.
async fn quiet_about(ws: &mut WsClient, user_id: &str, window: Duration) {
    let deadline = tokio::time::Instant::now() + window;
    while let Some(event) = ws.within(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        if let WsEvent::Json(m) = &event {
            assert_ne!(m["payload"]["data"]["presenceChanged"]["userId"], user_id, "unexpected change {m}");
        } else {
            panic!("closed: {event:?}");
        }
    }
}

async fn member_status(app: &TestApp, viewer: &TestUser, workspace_id: &str, user_id: &str) -> String {
    let r = app
        .gql(
            Some(&viewer.token),
            "query($w: ID!) { workspace(id: $w) { members { edges { node { user { id } availability { status } } } } } }",
            json!({ "w": workspace_id }),
        )
        .await;
    let edges = r["data"]["workspace"]["members"]["edges"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    let node = edges.iter().find(|e| e["node"]["user"]["id"] == user_id).unwrap_or_else(|| panic!("no member {user_id}: {r}"));
    node["node"]["availability"]["status"].as_str().expect("status").to_owned()
}

async fn update(app: &TestApp, user: &TestUser, input: Value) -> Value {
    app.gql(Some(&user.token), UPDATE, json!({ "i": input })).await
}

fn spans(r: &Value) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let free = r["data"]["me"]["freeBusy"]["free"].as_array().unwrap_or_else(|| panic!("{r}"));
    free.iter()
        .map(|s| (s["start"].as_str().expect("start").parse().expect("time"), s["end"].as_str().expect("end").parse().expect("time")))
        .collect()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("a UTC time")
}

fn every_day(start: &str, end: &str) -> Value {
    let days = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"];
    Value::Array(days.iter().map(|d| json!({ "day": d, "intervals": [{ "start": start, "end": end }] })).collect())
}

#[tokio::test]
async fn a_members_presence_goes_online_when_they_connect_and_offline_after_their_last_socket_closes() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&ada, &ada.workspace_id, &bob.email, "MEMBER").await;
    assert_eq!(member_status(&app, &ada, &ada.workspace_id, &bob.id).await, "OFFLINE");

    let mut feed = watch_presence(&app, &ada, &ada.workspace_id).await;
    app.listening(Topic::Workspace(workspace(&ada)), 1).await;

    // Two sockets, one per protocol: closing one keeps Bob online.
    let first = connect(&app, &bob, "graphql-ws").await;
    assert_eq!(next_status_of(&mut feed, &bob.id).await, "ONLINE");
    assert_eq!(member_status(&app, &ada, &ada.workspace_id, &bob.id).await, "ONLINE");
    let second = connect(&app, &bob, "graphql-transport-ws").await;
    drop(first);
    // The grace period after the first close passes, and Bob is still online.
    quiet_about(&mut feed, &bob.id, Duration::from_millis(1_500)).await;
    assert_eq!(member_status(&app, &ada, &ada.workspace_id, &bob.id).await, "ONLINE");

    drop(second);
    assert_eq!(next_status_of(&mut feed, &bob.id).await, "OFFLINE");
    assert_eq!(member_status(&app, &ada, &ada.workspace_id, &bob.id).await, "OFFLINE");

    let _back = connect(&app, &bob, "graphql-ws").await;
    assert_eq!(next_status_of(&mut feed, &bob.id).await, "ONLINE");
    let r = app.gql(Some(&bob.token), "{ me { availability { status effectiveStatus } } }", json!({})).await;
    assert_eq!(r["data"]["me"]["availability"], json!({ "status": "AUTOMATIC", "effectiveStatus": "ONLINE" }), "{r}");
}

#[tokio::test]
async fn a_non_member_cannot_subscribe_to_a_workspaces_presence() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let eve = app.user("eve@example.com").await;
    let mut feed = watch_presence(&app, &eve, &ada.workspace_id).await;
    let m = feed.next_json().await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{m}");
    assert_eq!(feed.next_json().await["type"], "complete");
}

#[tokio::test]
async fn a_chosen_busy_status_shows_to_members_and_holds_push_and_sound_back() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&ada, &ada.workspace_id, &bob.email, "MEMBER").await;
    let register =
        "mutation($e: String!, $p: String!, $a: String!) { registerPushSubscription(endpoint: $e, keys: {p256dh: $p, auth: $a}) }";
    let keys = json!({ "e": "https://push.example.com/bob", "p": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", "a": "tBHItJI5svbpez7KI4CCXg" });
    let r = app.gql(Some(&bob.token), register, keys).await;
    assert!(r["errors"].is_null(), "{r}");
    let account = AccountId::parse("id", &bob.id).expect("id");
    let notify = |title: &str| Notice {
        assigned_to_me: true,
        ..Notice::new(account, NotificationEvent::ConversationAssigned, title, "A conversation is yours")
    };
    let push_jobs = || async {
        app.services.notifications.deliveries(account).await.expect("jobs").into_iter().filter(|j| j.channel == "PUSH").count()
    };

    let before = app.services.notifications.notify(notify("before")).await.expect("notified").expect("recorded");
    assert!(before.audible);
    assert_eq!(push_jobs().await, 1);

    let r = app
        .gql(Some(&bob.token), "mutation { setAvailabilityStatus(status: BUSY) { status effectiveStatus holdWhileBusy } }", json!({}))
        .await;
    assert_eq!(r["data"]["setAvailabilityStatus"], json!({ "status": "BUSY", "effectiveStatus": "BUSY", "holdWhileBusy": true }), "{r}");
    assert_eq!(member_status(&app, &ada, &ada.workspace_id, &bob.id).await, "BUSY");

    let during = app.services.notifications.notify(notify("during")).await.expect("notified").expect("recorded");
    assert!(!during.audible, "no sound while busy");
    assert_eq!(push_jobs().await, 1, "no push while busy");
    let r = app.gql(Some(&bob.token), "{ me { notifications { edges { node { title audible } } } } }", json!({})).await;
    assert_eq!(r["data"]["me"]["notifications"]["edges"][0]["node"], json!({ "title": "during", "audible": false }), "{r}");

    // Choosing not to hold alerts lets them through again, still BUSY.
    let r = update(&app, &bob, json!({ "holdWhileBusy": false })).await;
    assert!(r["errors"].is_null(), "{r}");
    let after = app.services.notifications.notify(notify("after")).await.expect("notified").expect("recorded");
    assert!(after.audible);
    assert_eq!(push_jobs().await, 2);
}

#[tokio::test]
async fn bad_working_hours_are_typed_errors_that_save_nothing() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let good = json!({ "timeZone": "Europe/Berlin", "weeklySchedule": [
        { "day": "MONDAY", "intervals": [{ "start": "09:00", "end": "12:00" }, { "start": "13:00", "end": "17:00" }] }
    ] });
    let r = update(&app, &ada, good).await;
    assert_eq!(r["data"]["updateAvailability"]["timeZone"], "Europe/Berlin", "{r}");
    let saved = app.gql(Some(&ada.token), AVAILABILITY, json!({})).await;
    assert!(saved["errors"].is_null(), "{saved}");

    let day = |intervals: Value| json!([{ "day": "TUESDAY", "intervals": intervals }]);
    let cases = [
        (json!({ "timeZone": "Mars/Olympus" }), "timeZone"),
        (
            json!({ "timeZone": "Asia/Tokyo", "weeklySchedule": day(json!([{ "start": "17:00", "end": "09:00" }])) }),
            "weeklySchedule[0].intervals[0]",
        ),
        (
            json!({ "weeklySchedule": day(json!([{ "start": "09:00", "end": "12:00" }, { "start": "11:00", "end": "14:00" }])) }),
            "weeklySchedule[0].intervals[1]",
        ),
        (json!({ "weeklySchedule": day(json!([{ "start": "9am", "end": "12:00" }])) }), "weeklySchedule[0].intervals[0].start"),
        (json!({ "timeZone": "UTC", "dateOverrides": [{ "date": "2020-01-01", "intervals": [] }] }), "dateOverrides[0].date"),
        (json!({ "outOfOffice": { "from": "2030-01-10T00:00:00Z", "to": "2030-01-01T00:00:00Z", "message": "Away" } }), "outOfOffice.to"),
    ];
    for (input, field) in cases {
        let r = update(&app, &ada, input.clone()).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some(field.to_owned())), "{input}: {r}");
        let now = app.gql(Some(&ada.token), AVAILABILITY, json!({})).await;
        assert_eq!(now, saved, "nothing saved after {input}");
    }
}

#[tokio::test]
async fn free_busy_follows_berlin_working_hours_across_both_daylight_saving_changes() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let r = update(&app, &ada, json!({ "timeZone": "Europe/Berlin", "weeklySchedule": every_day("09:00", "17:00") })).await;
    assert!(r["errors"].is_null(), "{r}");

    // Clocks go back on Sunday 2026-10-25: 09:00 is 07:00Z the day before, 08:00Z that day.
    let r = app.gql(Some(&ada.token), FREE_BUSY, json!({ "f": "2026-10-24T00:00:00Z", "t": "2026-10-26T00:00:00Z" })).await;
    assert_eq!(
        spans(&r),
        [(utc("2026-10-24T07:00:00Z"), utc("2026-10-24T15:00:00Z")), (utc("2026-10-25T08:00:00Z"), utc("2026-10-25T16:00:00Z")),]
    );
    // Clocks go forward on Sunday 2026-03-29.
    let r = app.gql(Some(&ada.token), FREE_BUSY, json!({ "f": "2026-03-28T00:00:00Z", "t": "2026-03-30T00:00:00Z" })).await;
    assert_eq!(
        spans(&r),
        [(utc("2026-03-28T08:00:00Z"), utc("2026-03-28T16:00:00Z")), (utc("2026-03-29T07:00:00Z"), utc("2026-03-29T15:00:00Z")),]
    );

    let r = app.gql(Some(&ada.token), FREE_BUSY, json!({ "f": "2026-01-01T00:00:00Z", "t": "2026-04-01T00:00:00Z" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("to".to_owned())), "more than 62 days: {r}");
}

#[tokio::test]
async fn out_of_office_and_a_day_off_remove_their_spans_from_free_time() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    // A week from now (UTC) is a day off.
    let day_off = (Utc::now() + chrono::Duration::days(7)).date_naive();
    let r = update(
        &app,
        &ada,
        json!({
            "timeZone": "UTC",
            "weeklySchedule": every_day("09:00", "17:00"),
            "dateOverrides": [{ "date": day_off.to_string(), "intervals": [] }],
            "outOfOffice": { "from": "2026-06-01T12:00:00Z", "to": "2026-06-02T10:00:00Z", "message": "Conference" },
        }),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");

    let r = app.gql(Some(&ada.token), FREE_BUSY, json!({ "f": "2026-06-01T00:00:00Z", "t": "2026-06-03T00:00:00Z" })).await;
    assert_eq!(
        spans(&r),
        [(utc("2026-06-01T09:00:00Z"), utc("2026-06-01T12:00:00Z")), (utc("2026-06-02T10:00:00Z"), utc("2026-06-02T17:00:00Z")),]
    );

    let midnight = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let from = midnight(day_off - chrono::Duration::days(1));
    let r = app.gql(Some(&ada.token), FREE_BUSY, json!({ "f": from, "t": from + chrono::Duration::days(3) })).await;
    let days: Vec<_> = spans(&r).iter().map(|(s, _)| s.date_naive()).collect();
    assert_eq!(days, [day_off - chrono::Duration::days(1), day_off + chrono::Duration::days(1)], "{r}");

    // Ending the out-of-office period gives the time back.
    let r = update(&app, &ada, json!({ "outOfOffice": null })).await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app.gql(Some(&ada.token), FREE_BUSY, json!({ "f": "2026-06-01T00:00:00Z", "t": "2026-06-02T00:00:00Z" })).await;
    assert_eq!(spans(&r), [(utc("2026-06-01T09:00:00Z"), utc("2026-06-01T17:00:00Z"))]);
}

#[tokio::test]
async fn connections_counted_by_a_process_that_died_are_swept_and_their_user_goes_offline() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let effective = |user: TestUser| {
        let app = &app;
        async move {
            let r = app.gql(Some(&user.token), "{ me { availability { effectiveStatus } } }", json!({})).await;
            r["data"]["me"]["availability"]["effectiveStatus"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
        }
    };
    // Ada is counted by a process that never says it is alive (killed before its heartbeat);
    // Bob by this gateway, through a real socket.
    let ada_id = AccountId(uuid::Uuid::parse_str(&ada.id).expect("an id"));
    concierge::availability::store::connection_opened(&app.services.db, uuid::Uuid::new_v4(), ada_id).await.expect("a count");
    let _bob_socket = connect(&app, &bob, "graphql-transport-ws").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while effective(bob.clone()).await != "ONLINE" {
        assert!(tokio::time::Instant::now() < deadline, "bob never showed ONLINE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(effective(ada.clone()).await, "ONLINE");

    app.services.availability.sweep().await;

    assert_eq!(effective(ada.clone()).await, "OFFLINE", "the dead process's count is gone");
    assert_eq!(effective(bob.clone()).await, "ONLINE", "a live process's count stays");
}

#[tokio::test]
async fn a_change_written_from_a_stale_read_keeps_the_parts_it_did_not_change() {
    // Two requests at once each read the row, then write: the later write must not put back
    // what the earlier one changed. Simulated exactly: the status is written from a row read
    // before the time zone changed.
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let id = AccountId::parse("id", &ada.id).expect("an account id");
    let db = &app.services.db;
    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "weeklySchedule": [] } })).await;
    let mut stale = store::find(db, id).await.expect("read").expect("a row");
    let r = app.gql(Some(&ada.token), UPDATE, json!({ "i": { "timeZone": "Asia/Tokyo" } })).await;
    assert_eq!(r["data"]["updateAvailability"]["timeZone"], "Asia/Tokyo", "{r}");
    stale.status = "BUSY".into();
    store::upsert(db, id, &stale, &[Part::Status], Utc::now()).await.expect("write");
    let r = app.gql(Some(&ada.token), AVAILABILITY, json!({})).await;
    let now = &r["data"]["me"]["availability"];
    assert_eq!((now["status"].as_str(), now["timeZone"].as_str()), (Some("BUSY"), Some("Asia/Tokyo")), "{r}");
}
