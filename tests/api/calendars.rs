//! Calendars against a real CalDAV server (Radicale): connecting lists every calendar, bad
//! input saves nothing, free/busy subtracts synced events (recurring ones with their moved
//! and deleted instances, across a daylight-saving change, all-day ones, ones in Outlook's
//! Windows zone names), edits and deletions on the server arrive with the next sync, and
//! booked appointments are written to the primary calendar, moved and removed, as an
//! independent client sees them.

use std::time::Duration;

use chrono::Utc;
use concierge::clock::ManualClock;
use concierge::jobs::worker::Worker as _;
use serde_json::{Value, json};

use crate::calendar_lab::CalendarLab;
use crate::helpers::{TestApp, TestUser, error_of};

const CONNECT: &str = "mutation($i: ConnectCalendarAccountInput!) { connectCalendarAccount(input: $i) { \
    id connector username status calendars { id name } } }";
const CALENDARS: &str = "{ me { calendars { id name colour timeZone writable primary checkConflicts synced status statusReason } } }";
const ACCOUNTS: &str = "{ me { calendarAccounts { id status lastError calendars { name } } } }";
const SET_PRIMARY: &str = "mutation($id: ID!) { setPrimaryCalendar(id: $id) { id primary } }";
const SET_CONFLICTS: &str = "mutation($ids: [ID!]!) { setConflictCalendars(ids: $ids) { id checkConflicts } }";
const SYNC: &str = "mutation($id: ID!) { syncCalendarAccount(id: $id) { status lastError } }";
const EVENTS: &str =
    "query($f: DateTime!, $t: DateTime!) { me { calendarEvents(from: $f, to: $t) { uid summary start end allDay busy } } }";
const FREE_BUSY: &str =
    "query($f: DateTime!, $t: DateTime!) { me { freeBusy(from: $f, to: $t) { free { start end } busy { start end } } } }";
const UPDATE_AVAILABILITY: &str = "mutation($i: UpdateAvailabilityInput!) { updateAvailability(input: $i) { timeZone } }";

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.calendar_retry_ms = 200;
        c.calendar_poll_secs = 3600;
        // The calendar lab (Radicale) listens on loopback.
        c.allow_loopback();
    })
    .await
}

fn fresh(local: &str) -> String {
    format!("{local}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Connects the lab user's CalDAV account; returns the account's id.
async fn connect(app: &TestApp, user: &TestUser, lab: &CalendarLab, name: &str, password: &str) -> String {
    let r = app
        .gql(
            Some(&user.token),
            CONNECT,
            json!({ "i": { "connector": "caldav", "username": name, "password": password, "settings": { "url": lab.url } } }),
        )
        .await;
    r["data"]["connectCalendarAccount"]["id"].as_str().unwrap_or_else(|| panic!("not connected: {r}")).to_owned()
}

async fn calendars(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let r = app.gql(Some(&user.token), CALENDARS, json!({})).await;
    r["data"]["me"]["calendars"].as_array().cloned().unwrap_or_else(|| panic!("no calendars: {r}"))
}

fn named<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no calendar {name} in {list:?}"))
}

async fn sync(app: &TestApp, user: &TestUser, account: &str) {
    let r = app.gql(Some(&user.token), SYNC, json!({ "id": account })).await;
    assert_eq!(r["data"]["syncCalendarAccount"]["status"], "LIVE", "{r}");
}

async fn occurrences(app: &TestApp, user: &TestUser, from: &str, to: &str) -> Vec<Value> {
    let r = app.gql(Some(&user.token), EVENTS, json!({ "f": from, "t": to })).await;
    r["data"]["me"]["calendarEvents"].as_array().cloned().unwrap_or_else(|| panic!("no events: {r}"))
}

fn spans(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("spans")
        .iter()
        .map(|s| (s["start"].as_str().expect("start").to_owned(), s["end"].as_str().expect("end").to_owned()))
        .collect()
}

fn ics(body: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge tests//EN\r\n{}END:VCALENDAR\r\n", body.replace('\n', "\r\n"))
}

/// A weekly Monday 10:00–11:00 (Berlin) meeting for six weeks from 2030-03-04, crossing the
/// change to summer time on 2030-03-31; the 11th moved to 14:00–15:00, the 18th deleted.
fn weekly_with_exceptions() -> String {
    ics("BEGIN:VEVENT
UID:weekly-1@tests
DTSTAMP:20300101T000000Z
DTSTART;TZID=Europe/Berlin:20300304T100000
DTEND;TZID=Europe/Berlin:20300304T110000
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE;TZID=Europe/Berlin:20300318T100000
SUMMARY:Weekly sync
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@tests
DTSTAMP:20300101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20300311T100000
DTSTART;TZID=Europe/Berlin:20300311T140000
DTEND;TZID=Europe/Berlin:20300311T150000
SUMMARY:Weekly sync (moved)
END:VEVENT
")
}

#[tokio::test]
async fn connecting_lists_every_calendar_with_its_colour_and_rights_and_picks_a_writable_primary() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("cal")).await;
    let (name, password) = lab.new_user("c").await;
    lab.make_calendar(&name, &password, "work", "Work", Some("#3366FFFF")).await;
    lab.make_read_only_calendar(&name, &password, "ro-holidays", "Holidays").await;

    let account = connect(&app, &user, &lab, &name, &password).await;
    let list = calendars(&app, &user).await;
    let work = named(&list, "Work");
    assert_eq!(work["colour"], "#3366FF");
    assert_eq!(work["writable"], true);
    assert_eq!(work["primary"], true, "the first writable calendar becomes the primary one");
    assert_eq!(work["synced"], true);
    let holidays = named(&list, "Holidays");
    assert_eq!(holidays["writable"], false);
    assert_eq!(holidays["primary"], false);
    assert_eq!(holidays["synced"], false, "neither primary nor a conflict calendar");

    // A read-only calendar cannot be the primary one; it can be checked for conflicts.
    let r = app.gql(Some(&user.token), SET_PRIMARY, json!({ "id": holidays["id"] })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{r}");
    let r = app.gql(Some(&user.token), SET_CONFLICTS, json!({ "ids": [holidays["id"]] })).await;
    let checked: Vec<&Value> =
        r["data"]["setConflictCalendars"].as_array().expect("calendars").iter().filter(|c| c["checkConflicts"] == true).collect();
    assert_eq!(checked.len(), 1, "{r}");
    assert_eq!(named(&calendars(&app, &user).await, "Holidays")["synced"], true);

    // iCloud is offered with what the user must know first.
    let r = app.gql(Some(&user.token), "{ calendarConnectors { kind auth help fields { key } } }", json!({})).await;
    let kinds = r["data"]["calendarConnectors"].as_array().expect("connectors");
    let icloud = kinds.iter().find(|k| k["kind"] == "icloud").unwrap_or_else(|| panic!("{r}"));
    assert!(icloud["help"].as_str().unwrap_or_default().contains("app-specific password"), "{icloud}");
    assert!(kinds.iter().any(|k| k["kind"] == "caldav" && k["fields"].to_string().contains("url")), "{r}");
    assert!(kinds.iter().any(|k| k["kind"] == "gmail" && k["auth"] == "OAUTH2"), "{r}");

    // The account and its calendars, and no password anywhere.
    let r = app.gql(Some(&user.token), ACCOUNTS, json!({})).await;
    assert_eq!(r["data"]["me"]["calendarAccounts"][0]["id"], account.as_str());
    assert!(!r.to_string().contains(&password));

    // Disconnected: its calendars go with it; another user cannot disconnect it.
    let disconnect = "mutation($id: ID!) { disconnectCalendarAccount(id: $id) }";
    let other = app.user(&fresh("calthief")).await;
    let r = app.gql(Some(&other.token), disconnect, json!({ "id": account })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{r}");
    let r = app.gql(Some(&user.token), disconnect, json!({ "id": account })).await;
    assert_eq!(r["data"]["disconnectCalendarAccount"], true, "{r}");
    assert_eq!(calendars(&app, &user).await, Vec::<Value>::new());
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_at_fault_and_nothing_is_saved() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calbad")).await;
    let (name, password) = lab.new_user("b").await;
    lab.make_calendar(&name, &password, "work", "Work", None).await;
    let attempt = |password: &str, url: &str| json!({ "i": { "connector": "caldav", "username": name, "password": password, "settings": { "url": url } } });

    let r = app.gql(Some(&user.token), CONNECT, attempt("wrong", &lab.url)).await;
    assert_eq!(error_of(&r), ("AUTHENTICATION_FAILED".into(), Some("password".into())), "{r}");
    // The gateway itself answers HTTP, but is no calendar server.
    let not_dav = format!("http://127.0.0.1:{}/", app.port);
    let r = app.gql(Some(&user.token), CONNECT, attempt(&password, &not_dav)).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.url".into())), "{r}");
    let r = app.gql(Some(&user.token), CONNECT, attempt(&password, "http://127.0.0.1:9/")).await;
    assert_eq!(error_of(&r).1, Some("settings.url".into()), "{r}");
    let r = app.gql(Some(&user.token), CONNECT, attempt("", &lab.url)).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("password".into())), "{r}");
    let r =
        app.gql(Some(&user.token), CONNECT, json!({ "i": { "connector": "exchange-2003", "username": name, "password": password } })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("connector".into())), "{r}");
    let r = app.gql(Some(&user.token), ACCOUNTS, json!({})).await;
    assert_eq!(r["data"]["me"]["calendarAccounts"], json!([]), "a refused connection saves nothing: {r}");
    assert_eq!(calendars(&app, &user).await, Vec::<Value>::new());

    // Someone else's calendar, or no calendar at all, cannot be chosen.
    connect(&app, &user, &lab, &name, &password).await;
    let work = named(&calendars(&app, &user).await, "Work").clone();
    let other = app.user(&fresh("calother")).await;
    let r = app.gql(Some(&other.token), SET_PRIMARY, json!({ "id": work["id"] })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{r}");
    let r = app.gql(Some(&other.token), SET_CONFLICTS, json!({ "ids": [work["id"]] })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("ids[0]".into())), "{r}");
    let r = app.gql(Some(&user.token), SET_PRIMARY, json!({ "id": "not-an-id" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{r}");
    assert_eq!(named(&calendars(&app, &user).await, "Work")["primary"], true, "a refused change changes nothing");
}

#[tokio::test]
async fn free_busy_subtracts_recurring_events_with_their_exceptions_across_a_clock_change() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calfb")).await;
    let (name, password) = lab.new_user("f").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    lab.put(&name, &password, &work, &weekly_with_exceptions()).await;
    // All day on Wednesday 6 March; a night across the clock change (20:00 → 10:00 Berlin).
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VEVENT
UID:allday-1@tests
DTSTAMP:20300101T000000Z
DTSTART;VALUE=DATE:20300306
DTEND;VALUE=DATE:20300307
SUMMARY:Offsite
END:VEVENT
"),
    )
    .await;
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VEVENT
UID:night-1@tests
DTSTAMP:20300101T000000Z
DTSTART;TZID=Europe/Berlin:20300330T200000
DTEND;TZID=Europe/Berlin:20300331T100000
SUMMARY:Night shift
END:VEVENT
"),
    )
    .await;
    // Shown but free: it takes no time.
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VEVENT
UID:free-1@tests
DTSTAMP:20300101T000000Z
DTSTART:20300305T090000Z
DTEND:20300305T100000Z
TRANSP:TRANSPARENT
SUMMARY:Optional talk
END:VEVENT
"),
    )
    .await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    let r = app.gql(Some(&user.token), UPDATE_AVAILABILITY, json!({ "i": { "timeZone": "Europe/Berlin" } })).await;
    assert_eq!(r["data"]["updateAvailability"]["timeZone"], "Europe/Berlin", "{r}");
    sync(&app, &user, &account).await;

    let weekly: Vec<(String, String)> = occurrences(&app, &user, "2030-03-01T00:00:00Z", "2030-04-30T00:00:00Z")
        .await
        .iter()
        .filter(|o| o["uid"] == "weekly-1@tests")
        .map(|o| (o["start"].as_str().unwrap().to_owned(), o["summary"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        weekly,
        [
            ("2030-03-04T09:00:00+00:00".to_owned(), "Weekly sync".to_owned()),
            ("2030-03-11T13:00:00+00:00".to_owned(), "Weekly sync (moved)".to_owned()),
            // the 18th is deleted
            ("2030-03-25T09:00:00+00:00".to_owned(), "Weekly sync".to_owned()),
            // summer time: still 10:00 in Berlin
            ("2030-04-01T08:00:00+00:00".to_owned(), "Weekly sync".to_owned()),
            ("2030-04-08T08:00:00+00:00".to_owned(), "Weekly sync".to_owned()),
        ]
        .to_vec(),
        "RRULE expanded in Berlin time, the moved instance moved, the deleted one gone"
    );

    // Monday 4 March: 09:00–17:00 Berlin (08:00–16:00 UTC) minus the meeting at 09:00 UTC.
    let r = app.gql(Some(&user.token), FREE_BUSY, json!({ "f": "2030-03-04T00:00:00Z", "t": "2030-03-07T00:00:00Z" })).await;
    let fb = &r["data"]["me"]["freeBusy"];
    assert_eq!(
        spans(&fb["free"]),
        [
            ("2030-03-04T08:00:00+00:00", "2030-03-04T09:00:00+00:00"),
            ("2030-03-04T10:00:00+00:00", "2030-03-04T16:00:00+00:00"),
            // Tuesday: the transparent talk leaves the day free
            ("2030-03-05T08:00:00+00:00", "2030-03-05T16:00:00+00:00"),
            // Wednesday is the all-day offsite: nothing free
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec(),
        "{r}"
    );
    assert!(
        spans(&fb["busy"]).contains(&("2030-03-05T23:00:00+00:00".into(), "2030-03-06T23:00:00+00:00".into())),
        "all day in Berlin: {r}"
    );

    // The night across the change lasts 13 hours of real time (19:00Z → 08:00Z).
    let night: Vec<Value> = occurrences(&app, &user, "2030-03-30T00:00:00Z", "2030-04-01T00:00:00Z")
        .await
        .into_iter()
        .filter(|o| o["uid"] == "night-1@tests")
        .collect();
    assert_eq!(night.len(), 1);
    assert_eq!(
        (night[0]["start"].as_str(), night[0]["end"].as_str()),
        (Some("2030-03-30T19:00:00+00:00"), Some("2030-03-31T08:00:00+00:00"))
    );
}

#[tokio::test]
async fn an_outlook_invitation_in_a_windows_time_zone_is_busy_at_its_real_time() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calwin")).await;
    let (name, password) = lab.new_user("w").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    // As Outlook sends it: a Windows zone name, defined by offsets only (no IANA location).
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VTIMEZONE
TZID:Iran Standard Time
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0330
TZOFFSETTO:+0330
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:tehran-1@tests
DTSTAMP:20300101T000000Z
DTSTART;TZID=Iran Standard Time:20300304T100000
DTEND;TZID=Iran Standard Time:20300304T113000
SUMMARY:Budget review
END:VEVENT
"),
    )
    .await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    sync(&app, &user, &account).await;

    let r = app.gql(Some(&user.token), FREE_BUSY, json!({ "f": "2030-03-04T00:00:00Z", "t": "2030-03-05T00:00:00Z" })).await;

    // 10:00–11:30 in Tehran (+03:30) is 06:30–08:00 UTC, not 10:00–11:30 UTC.
    let busy = spans(&r["data"]["me"]["freeBusy"]["busy"]);
    assert_eq!(busy, [("2030-03-04T06:30:00+00:00".to_owned(), "2030-03-04T08:00:00+00:00".to_owned())], "{r}");
}

#[tokio::test]
async fn edits_and_deletions_on_the_server_arrive_with_the_next_sync_and_a_deleted_calendar_goes() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("caledit")).await;
    let (name, password) = lab.new_user("e").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    let side = lab.make_calendar(&name, &password, "side", "Side", None).await;
    let event = |start: &str, end: &str| {
        ics(&format!(
            "BEGIN:VEVENT\nUID:edit-1@tests\nDTSTAMP:20300101T000000Z\nDTSTART:{start}\nDTEND:{end}\nSUMMARY:Review\nEND:VEVENT\n"
        ))
    };
    lab.put(&name, &password, &work, &event("20300304T120000Z", "20300304T130000Z")).await;
    lab.put(&name, &password, &side, &event("20300305T120000Z", "20300305T130000Z").replace("edit-1", "side-1")).await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    let list = calendars(&app, &user).await;
    let side_id = named(&list, "Side")["id"].clone();
    app.gql(Some(&user.token), SET_PRIMARY, json!({ "id": named(&list, "Work")["id"] })).await;
    app.gql(Some(&user.token), SET_CONFLICTS, json!({ "ids": [side_id] })).await;
    sync(&app, &user, &account).await;
    let busy = |r: &Value| spans(&r["data"]["me"]["freeBusy"]["busy"]);
    let window = json!({ "f": "2030-03-04T00:00:00Z", "t": "2030-03-06T00:00:00Z" });
    let r = app.gql(Some(&user.token), FREE_BUSY, window.clone()).await;
    assert_eq!(
        busy(&r),
        vec![
            ("2030-03-04T12:00:00+00:00".to_owned(), "2030-03-04T13:00:00+00:00".to_owned()),
            ("2030-03-05T12:00:00+00:00".to_owned(), "2030-03-05T13:00:00+00:00".to_owned())
        ],
        "{r}"
    );

    // Moved on the server: the old slot frees up after the next sync, the new one is busy.
    lab.put(&name, &password, &work, &event("20300304T150000Z", "20300304T153000Z")).await;
    let r = app.gql(Some(&user.token), FREE_BUSY, window.clone()).await;
    assert_eq!(busy(&r)[0].0, "2030-03-04T12:00:00+00:00", "not before the sync");
    sync(&app, &user, &account).await;
    let r = app.gql(Some(&user.token), FREE_BUSY, window.clone()).await;
    assert_eq!(busy(&r)[0], ("2030-03-04T15:00:00+00:00".to_owned(), "2030-03-04T15:30:00+00:00".to_owned()), "{r}");

    // Deleted on the server.
    lab.client(&name, &password, &["delete-event", &work, "edit-1@tests"]).await;
    // The conflict calendar deleted on the server.
    lab.client(&name, &password, &["delete-calendar", &side]).await;
    sync(&app, &user, &account).await;
    let r = app.gql(Some(&user.token), FREE_BUSY, window).await;
    assert_eq!(busy(&r), Vec::<(String, String)>::new(), "{r}");
    let list = calendars(&app, &user).await;
    assert!(list.iter().all(|c| c["name"] != "Side"), "a calendar deleted on the server goes: {list:?}");
    let r = app.gql(Some(&user.token), "{ me { notifications(first: 10) { edges { node { event title } } } } }", json!({})).await;
    assert!(r.to_string().contains("CALENDAR_ERROR") && r.to_string().contains("Side"), "the user hears of it: {r}");
}

const CREATE_SERVICE_ACCOUNT: &str = "mutation($w: ID!, $n: String!, $s: [String!]!) { \
    createServiceAccount(workspaceId: $w, name: $n, scopes: $s) { id } }";
const CREATE_SERVICE_TOKEN: &str = "mutation($a: ID!, $n: String!, $s: [String!]!) { \
    createServiceAccountToken(serviceAccountId: $a, name: $n, scopes: $s) { token } }";
pub const PUBLISH: &str = "mutation($e: [PlatformEventInput!]!) { publishEvents(events: $e) { results { status error { code field } } } }";

pub async fn publisher(app: &TestApp, owner: &TestUser) -> String {
    let r = app
        .gql(Some(&owner.token), CREATE_SERVICE_ACCOUNT, json!({ "w": owner.workspace_id, "n": "Scheduler", "s": ["events:publish"] }))
        .await;
    let id = r["data"]["createServiceAccount"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app.gql(Some(&owner.token), CREATE_SERVICE_TOKEN, json!({ "a": id, "n": "prod", "s": ["events:publish"] })).await;
    r["data"]["createServiceAccountToken"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

pub fn appointment(kind: &str, user: &TestUser, key: &str, starts: &str, ends: &str) -> Value {
    json!({
        "kind": kind,
        "recipients": { "userIds": [user.id] },
        "subject": { "type": "appointment", "id": "APT-7", "title": "Demo with Acme, Inc.", "url": "https://crm.example/apt/7" },
        "occurredAt": "2030-03-01T09:00:00Z",
        "data": {
            "startsAt": starts,
            "endsAt": ends,
            "location": "Room 4; 2nd floor",
            "organizer": { "email": "eve@example.com", "name": "Eve Adams" },
            "attendees": [{ "email": "bob@acme.example", "name": "Bob Stone" }]
        },
        "idempotencyKey": key,
    })
}

/// Waits until the independent client sees `check` hold for the calendar's events.
async fn until_events(
    lab: &CalendarLab,
    user: &str,
    password: &str,
    calendar: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = lab.events(user, password, calendar).await;
        if check(&events) {
            return events;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}; the calendar holds {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn appointments_are_written_to_the_primary_calendar_moved_and_removed() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calapt")).await;
    let token = publisher(&app, &user).await;
    let (name, password) = lab.new_user("a").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    connect(&app, &user, &lab, &name, &password).await;

    let r = app
        .gql(
            Some(&token),
            PUBLISH,
            json!({ "e": [appointment("appointment.booked", &user, "b1", "2030-03-04T10:00:00Z", "2030-03-04T11:00:00Z")] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    let events = until_events(&lab, &name, &password, &work, "the booking is written", |e| e.len() == 1).await;
    let e = &events[0];
    assert_eq!(e["summary"], "Demo with Acme, Inc.");
    assert_eq!(e["location"], "Room 4; 2nd floor");
    assert_eq!(e["dtstart"], "20300304T100000Z");
    assert_eq!(e["dtend"], "20300304T110000Z");
    assert!(e["organizer"].as_str().unwrap_or_default().contains("eve@example.com"), "{e}");
    assert!(e["attendees"].to_string().contains("bob@acme.example"), "{e}");
    let uid = e["uid"].as_str().expect("uid").to_owned();

    // Free/busy knows at once (the calendar polls hourly here, and no sync was asked for).
    let window = json!({ "f": "2030-03-04T00:00:00Z", "t": "2030-03-05T00:00:00Z" });
    let busy = until_busy(&app, &user, &window, |b| !b.is_empty()).await;
    assert_eq!(busy, [("2030-03-04T10:00:00+00:00".to_owned(), "2030-03-04T11:00:00+00:00".to_owned())]);

    // Moved: the same event (same UID), at the new time; never two.
    let r = app
        .gql(
            Some(&token),
            PUBLISH,
            json!({ "e": [appointment("appointment.rescheduled", &user, "r1", "2030-03-05T14:00:00Z", "2030-03-05T15:00:00Z")] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    let events =
        until_events(&lab, &name, &password, &work, "the move is written", |e| e.len() == 1 && e[0]["dtstart"] == "20300305T140000Z").await;
    assert_eq!(events[0]["uid"], uid.as_str());
    // A repeated publish is a duplicate and writes nothing new.
    let r = app
        .gql(
            Some(&token),
            PUBLISH,
            json!({ "e": [appointment("appointment.rescheduled", &user, "r1", "2030-03-05T14:00:00Z", "2030-03-05T15:00:00Z")] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "DUPLICATE", "{r}");

    // An appointment that ends before it starts is refused, naming the place.
    let r = app
        .gql(
            Some(&token),
            PUBLISH,
            json!({ "e": [appointment("appointment.booked", &user, "bad", "2030-03-05T14:00:00Z", "2030-03-05T13:00:00Z")] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["error"]["field"], "events[0].data/endsAt", "{r}");

    // Cancelled: removed from the calendar.
    let r = app
        .gql(
            Some(&token),
            PUBLISH,
            json!({ "e": [appointment("appointment.cancelled", &user, "c1", "2030-03-05T14:00:00Z", "2030-03-05T15:00:00Z")] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    until_events(&lab, &name, &password, &work, "the cancellation removes it", |e| e.is_empty()).await;
    let window = json!({ "f": "2030-03-05T00:00:00Z", "t": "2030-03-06T00:00:00Z" });
    until_busy(&app, &user, &window, |b| b.is_empty()).await;
}

/// Waits until the user's free/busy over `window` satisfies `check`; returns the busy spans.
async fn until_busy(app: &TestApp, user: &TestUser, window: &Value, check: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.gql(Some(&user.token), FREE_BUSY, window.clone()).await;
        let busy = spans(&r["data"]["me"]["freeBusy"]["busy"]);
        if check(&busy) {
            return busy;
        }
        assert!(tokio::time::Instant::now() < deadline, "free/busy never changed: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_failed_write_shows_on_the_calendar_notifies_the_user_and_is_retried_until_it_lands() {
    // Stepped: the calendar worker's passes are the test's, and the clock moves past a retry.
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_stepped(
        |c| {
            c.calendar_retry_ms = 200;
            c.allow_loopback();
        },
        &clock,
    )
    .await;
    let lab = CalendarLab::get().await;
    let writes = app.services.calendars.sync();
    let user = app.user(&fresh("calfail")).await;
    let token = publisher(&app, &user).await;
    let (name, password) = lab.new_user("w").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    connect(&app, &user, &lab, &name, &password).await;

    // The server stops accepting the saved password.
    lab.set_password(&name, "changed-elsewhere").await;
    let r = app
        .gql(
            Some(&token),
            PUBLISH,
            json!({ "e": [appointment("appointment.booked", &user, "f1", "2030-03-04T10:00:00Z", "2030-03-04T11:00:00Z")] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    assert_eq!(writes.run_once().await.expect("a pass"), 1, "the write was attempted");
    let work_now = named(&calendars(&app, &user).await, "Work").clone();
    assert_eq!(work_now["status"], "WRITE_FAILED", "{work_now}");
    assert!(work_now["statusReason"].as_str().unwrap_or_default().contains("authentication"), "{work_now}");
    assert_eq!(writes.run_once().await.expect("a pass"), 0, "the retry waits for its time");
    let r = app.gql(Some(&user.token), "{ me { notifications(first: 10) { edges { node { event title } } } } }", json!({})).await;
    assert!(r.to_string().contains("CALENDAR_ERROR") && r.to_string().contains("Demo with Acme"), "{r}");

    // The password works again: a retry writes it, and the calendar is OK again.
    lab.set_password(&name, &password).await;
    // The first retry waits 200 ms and at most a fifth more.
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(writes.run_once().await.expect("a pass"), 1, "the retry");
    assert_eq!(lab.events(&name, &password, &work).await.len(), 1, "a retry writes it");
    assert_eq!(named(&calendars(&app, &user).await, "Work")["status"], "OK", "the calendar is OK again");
}

#[tokio::test]
async fn the_daily_summary_lists_the_days_calendar_events_in_the_users_zone() {
    use concierge::clock::ManualClock;
    let (lab, mail) = (CalendarLab::get().await, crate::mail_lab::MailLab::get().await);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&chrono::Utc);
    let clock = ManualClock::new(at("2030-03-04T05:00:00Z"));
    let smtp = mail.smtp_url();
    let app = TestApp::spawn_with_clock(
        move |c| {
            c.smtp_url = Some(concierge::config::Redacted(smtp));
            c.calendar_poll_secs = 3600;
            c.allow_loopback();
        },
        clock.clone(),
    )
    .await;
    let user = app.user(&fresh("calday")).await;
    let (name, password) = lab.new_user("d").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    lab.put(&name, &password, &work, &weekly_with_exceptions()).await;
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VEVENT
UID:allday-2@tests
DTSTAMP:20300101T000000Z
DTSTART;VALUE=DATE:20300304
DTEND;VALUE=DATE:20300305
SUMMARY:Trade fair
END:VEVENT
"),
    )
    .await;
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VEVENT
UID:tomorrow-1@tests
DTSTAMP:20300101T000000Z
DTSTART:20300305T090000Z
DTEND:20300305T100000Z
SUMMARY:Not today
END:VEVENT
"),
    )
    .await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    sync(&app, &user, &account).await;
    let r = app
        .gql(
            Some(&user.token),
            "mutation($s: DailySummaryInput!) { updatePreferences(input: { dailySummary: $s }) { dailySummary { enabled } } }",
            json!({ "s": { "enabled": true, "deliveryTime": "08:00", "timeZone": "Europe/Berlin" } }),
        )
        .await;
    assert_eq!(r["data"]["updatePreferences"]["dailySummary"]["enabled"], true, "{r}");

    clock.set(at("2030-03-04T07:00:00Z")); // 08:00 in Berlin
    let mails = mail.wait_for(&user.email, 1).await;
    let summary = crate::mail_lab::parse(&mails[0]);
    assert!(summary.text.contains("On your calendar today"), "{}", summary.text);
    assert!(summary.text.contains("10:00–11:00 – Weekly sync"), "Berlin time: {}", summary.text);
    assert!(summary.text.contains("All day – Trade fair"), "{}", summary.text);
    assert!(!summary.text.contains("Not today"), "{}", summary.text);
}

#[tokio::test]
async fn an_account_another_process_is_syncing_is_left_to_it_until_its_lease_runs_out() {
    use concierge::calendars::model::CalendarAccountId;
    use concierge::jobs::lease::{self, CALENDAR_ACCOUNT, Claim};
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("callease")).await;
    let (name, password) = lab.new_user("l").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    sync(&app, &user, &account).await;
    let id = CalendarAccountId::parse("id", &account).expect("an id");
    let db = &app.services.db;

    // Another process takes the account's sync.
    let other = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    assert_eq!(lease::claim(db, CALENDAR_ACCOUNT, id.0, other, now, Duration::from_secs(600)).await.expect("claim"), Claim::Taken);
    lab.put(
        &name,
        &password,
        &work,
        &ics("BEGIN:VEVENT
UID:lease-1@tests
DTSTAMP:20300101T000000Z
DTSTART:20300304T120000Z
DTEND:20300304T130000Z
SUMMARY:Held
END:VEVENT
"),
    )
    .await;
    sync(&app, &user, &account).await;
    let seen = |list: Vec<Value>| list.iter().any(|o| o["uid"] == "lease-1@tests");
    assert!(!seen(occurrences(&app, &user, "2030-03-04T00:00:00Z", "2030-03-05T00:00:00Z").await), "this process kept off");
    // The other process's claim stands for itself; ours is refused until it lets go.
    assert_eq!(lease::claim(db, CALENDAR_ACCOUNT, id.0, other, now, Duration::from_secs(600)).await.expect("renew"), Claim::Taken);
    assert!(matches!(
        lease::claim(db, CALENDAR_ACCOUNT, id.0, uuid::Uuid::now_v7(), now, Duration::from_secs(600)).await.expect("refused"),
        Claim::HeldUntil(_)
    ));

    // It died: its lease runs out, and the next sync here reads the event.
    let old = lease::claim(db, CALENDAR_ACCOUNT, id.0, other, now - chrono::Duration::hours(1), Duration::from_secs(60)).await;
    assert_eq!(old.expect("an old lease"), Claim::Taken);
    sync(&app, &user, &account).await;
    assert!(seen(occurrences(&app, &user, "2030-03-04T00:00:00Z", "2030-03-05T00:00:00Z").await), "synced once the lease ran out");
}

/// Another gateway process on the same database: its own identity as a lease holder, the
/// rest shared with `app`.
fn other_process(app: &TestApp) -> concierge::calendars::sync::CalendarSync {
    use concierge::calendars::sync::{CalendarSettings, CalendarSync};
    let (s, mine) = (&app.services, app.services.calendars.sync());
    CalendarSync::new(
        s.db.clone(),
        mine.secrets().clone(),
        mine.registry().clone(),
        std::sync::Arc::new(s.mailboxes.sync().clone()),
        s.notifications.clone(),
        CalendarSettings { process: uuid::Uuid::now_v7(), ..mine.settings() },
        std::sync::Arc::new(concierge::clock::SystemClock),
    )
}

#[tokio::test]
async fn processes_sharing_the_database_sync_an_account_once_per_poll_between_them() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calonce")).await;
    let (name, password) = lab.new_user("o").await;
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    let id = concierge::calendars::model::CalendarAccountId::parse("id", &account).expect("an id");
    let db = &app.services.db;
    // Rounds of `process` until the account is synced and not due (this process's own worker
    // may be syncing it meanwhile).
    let synced_by = |process: concierge::calendars::sync::CalendarSync| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            process.sync_all().await;
            if concierge::calendars::store::sync_due(db, id, chrono::Utc::now()).await.expect("due?") == Some(false) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never synced");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // The connect makes the first sync due at once.
    synced_by(app.services.calendars.sync().clone()).await;
    let event = ics("BEGIN:VEVENT
UID:once-1@tests
DTSTAMP:20300101T000000Z
DTSTART:20300305T120000Z
DTEND:20300305T130000Z
SUMMARY:Once
END:VEVENT
");
    lab.put(&name, &password, &work, &event).await;
    let seen = || async {
        occurrences(&app, &user, "2030-03-05T00:00:00Z", "2030-03-06T00:00:00Z").await.iter().any(|o| o["uid"] == "once-1@tests")
    };

    // A second process's round finds the account synced within the poll (an hour) and
    // leaves it: one sync per poll between them, not one each.
    let other = other_process(&app);
    assert_eq!(other.sync_all().await, None, "nothing held elsewhere");
    assert!(!seen().await, "the second process synced an account that was not due");
    assert_eq!(concierge::calendars::store::sync_due(db, id, chrono::Utc::now()).await.expect("due?"), Some(false));

    // A new choice of calendars makes it due for whichever process comes first.
    let r = app.gql(Some(&user.token), SET_CONFLICTS, json!({ "ids": [] })).await;
    assert!(r["errors"].is_null(), "{r}");
    synced_by(other.clone()).await;
    assert!(seen().await, "the account made due was synced");

    // The user asking syncs it whenever it was last, on any process.
    lab.client(&name, &password, &["delete-event", &work, "once-1@tests"]).await;
    let a = concierge::calendars::store::find_account(db, id).await.expect("read").expect("the account");
    other.sync_account(&a, concierge::calendars::sync::SyncReason::Asked).await;
    assert!(!seen().await, "an asked-for sync reads the deletion");
}

#[tokio::test]
async fn an_appointment_waits_for_a_primary_calendar_and_is_written_once_there_is_one() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calwait")).await;
    let token = publisher(&app, &user).await;
    let (name, password) = lab.new_user("q").await;
    let shared = lab.make_read_only_calendar(&name, &password, "ro-team", "Team").await;
    connect(&app, &user, &lab, &name, &password).await;
    assert_eq!(named(&calendars(&app, &user).await, "Team")["primary"], false, "a read-only calendar is never the primary one");

    // The platform names no organiser this time: the user organises it.
    let mut booked = appointment("appointment.booked", &user, "w1", "2030-03-04T10:00:00Z", "2030-03-04T11:00:00Z");
    booked["data"].as_object_mut().expect("data").remove("organizer");
    let r = app.gql(Some(&token), PUBLISH, json!({ "e": [booked] })).await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    // A pass of the appointment writer, now: with no primary calendar the write waits, and
    // nothing reaches the read-only one.
    app.services.calendars.sync().run_once().await.expect("a pass");
    assert_eq!(lab.events(&name, &password, &shared).await, Vec::<Value>::new());

    // A writable calendar appears on the server: the next sync makes it primary, and the
    // waiting appointment goes into it.
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    let account =
        app.gql(Some(&user.token), ACCOUNTS, json!({})).await["data"]["me"]["calendarAccounts"][0]["id"].as_str().expect("id").to_owned();
    sync(&app, &user, &account).await;
    assert_eq!(named(&calendars(&app, &user).await, "Work")["primary"], true);
    let events = until_events(&lab, &name, &password, &work, "the waiting appointment is written", |e| e.len() == 1).await;
    assert_eq!(events[0]["summary"], "Demo with Acme, Inc.");
    // Organised by the user's email, not by the CalDAV login.
    let organizer = events[0]["organizer"].as_str().unwrap_or_default().to_lowercase();
    assert!(organizer.contains(&format!("mailto:{}", user.email.to_lowercase())), "{}", events[0]);
    assert!(!organizer.contains(&format!("mailto:{}", name.to_lowercase())), "{}", events[0]);
}

#[tokio::test]
async fn an_appointment_write_held_by_a_process_that_died_is_written_once_its_claim_runs_out() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let user = app.user(&fresh("calheld")).await;
    let token = publisher(&app, &user).await;
    let (name, password) = lab.new_user("h").await;
    lab.make_read_only_calendar(&name, &password, "ro-held", "Team").await;
    let account = connect(&app, &user, &lab, &name, &password).await;
    let booked = appointment("appointment.booked", &user, "h1", "2030-03-06T10:00:00Z", "2030-03-06T11:00:00Z");
    let r = app.gql(Some(&token), PUBLISH, json!({ "e": [booked] })).await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    app.services.calendars.sync().run_once().await.expect("a pass");

    // Another process claimed the write and died with it.
    let (db, other, account_id) = (&app.services.db, uuid::Uuid::now_v7(), uuid::Uuid::parse_str(&user.id).expect("id"));
    let claim = |until: chrono::DateTime<chrono::Utc>| async move {
        concierge::on_pool!(db, p => sqlx::query("UPDATE appointment_write SET claimed_by = $1, claimed_until = $2 WHERE account_id = $3")
            .bind(other)
            .bind(until)
            .bind(account_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .expect("claimed")
    };
    assert_eq!(claim(chrono::Utc::now() + chrono::Duration::hours(1)).await, 1);
    let work = lab.make_calendar(&name, &password, "work", "Work", None).await;
    sync(&app, &user, &account).await;
    assert_eq!(named(&calendars(&app, &user).await, "Work")["primary"], true);
    assert_eq!(app.services.calendars.sync().run_once().await.expect("a pass"), 0, "held elsewhere: not taken");
    assert_eq!(lab.events(&name, &password, &work).await, Vec::<Value>::new());

    // Its claim runs out: this process takes the write, and lets go of it once written.
    claim(chrono::Utc::now() - chrono::Duration::seconds(1)).await;
    app.services.calendars.sync().run_once().await.expect("a pass");
    let events = until_events(&lab, &name, &password, &work, "the write left behind is written", |e| e.len() == 1).await;
    assert_eq!(events[0]["summary"], "Demo with Acme, Inc.");
    let holder: Option<uuid::Uuid> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT claimed_by FROM appointment_write WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(p)
        .await)
        .expect("the write");
    assert_eq!(holder, None, "released once written");
}

/// A TLS front before the calendar lab, with a self-signed certificate made the common way
/// (`openssl req -x509`: CA:TRUE), as a self-hosted server has. It forwards every connection
/// to the lab as it is.
struct TlsFront {
    url: String,
    fingerprint: String,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    async fn start(lab_url: &str) -> TlsFront {
        let dir = tempfile::tempdir().expect("dir");
        let (acceptor, cert) = crate::helpers::self_signed_acceptor(dir.path(), "calendar.self-hosted.test", "IP:127.0.0.1").await;
        let upstream = lab_url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut lab) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut lab).await;
                });
            }
        });
        let fingerprint = crate::mailboxes::fingerprint(&cert).await;
        TlsFront { url: format!("https://127.0.0.1:{port}/"), fingerprint, _dir: dir }
    }
}

#[tokio::test]
async fn a_self_signed_caldav_server_shows_its_certificate_and_connects_once_the_user_pins_it() {
    let (app, lab) = (spawn().await, CalendarLab::get().await);
    let front = TlsFront::start(&lab.url).await;
    let user = app.user(&fresh("calpin")).await;
    let (name, password) = lab.new_user("pin").await;
    lab.make_calendar(&name, &password, "work", "Work", None).await;
    let connect = |settings: Value| {
        let (app, token, name, password) = (&app, user.token.clone(), name.clone(), password.clone());
        async move {
            let input = json!({ "connector": "caldav", "username": name, "password": password, "settings": settings });
            app.gql(Some(&token), CONNECT, json!({ "i": input })).await
        }
    };

    // Nobody vouches for it: refused, showing what to check with the server's operator.
    let r = connect(json!({ "url": front.url })).await;
    assert_eq!(error_of(&r), ("TLS_FAILED".into(), Some("settings.url".into())), "{r}");
    let shown = &r["errors"][0]["extensions"]["certificate"];
    assert_eq!(shown["sha256"], front.fingerprint.as_str(), "{r}");
    assert_eq!(shown["subject"], "CN=calendar.self-hosted.test", "{r}");
    assert_eq!(shown["pinSetting"], "tlsCertificateSha256", "{r}");

    // Another certificate's fingerprint changes nothing; a malformed one is refused.
    let r = connect(json!({ "url": front.url, "tlsCertificateSha256": "AB".repeat(32) })).await;
    assert_eq!(error_of(&r).0, "TLS_FAILED", "{r}");
    let r = connect(json!({ "url": front.url, "tlsCertificateSha256": "not a fingerprint" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.tlsCertificateSha256".into())), "{r}");

    // Pinned: connected, and its calendars are read through the pinned connection.
    let r = connect(json!({ "url": front.url, "tlsCertificateSha256": front.fingerprint })).await;
    assert!(r["data"]["connectCalendarAccount"]["id"].is_string(), "{r}");
    assert!(calendars(&app, &user).await.iter().any(|c| c["name"] == "Work"));
}

/// Calendar providers are presets too: built in (iCloud, Fastmail, …) and from the operator's
/// file, listed by `calendarConnectors` with their domains, and connected with a user name and
/// password alone. A preset's URL is the operator's, so a user's settings cannot move it.
#[tokio::test]
async fn calendar_presets_come_built_in_and_from_the_operators_file() {
    let lab = CalendarLab::get().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("providers.toml");
    std::fs::write(
        &file,
        format!(
            "[[calendar_provider]]\nkind = \"labcal\"\nlabel = \"Lab Calendar\"\ndomains = [\"lab.test\"]\nhelp = \"Use your lab password.\"\nurl = \"{}\"\n",
            lab.url
        ),
    )
    .expect("write providers file");
    // Not loopback-allowed: a preset's URL is the operator's, not held to the user policy.
    let app = TestApp::spawn_with(|c| c.providers_file = Some(file.clone())).await;
    let ada = app.user(&fresh("ada")).await;

    let r = app.gql(Some(&ada.token), "{ calendarConnectors { kind displayName help auth domains fields { key } } }", json!({})).await;
    let list = r["data"]["calendarConnectors"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    let by_kind = |kind: &str| list.iter().find(|c| c["kind"] == kind).cloned().unwrap_or_else(|| panic!("no {kind}: {r}"));
    let labcal = by_kind("labcal");
    assert_eq!(labcal["displayName"], "Lab Calendar");
    assert_eq!(labcal["help"], "Use your lab password.");
    assert_eq!(labcal["auth"], "PASSWORD");
    assert_eq!(labcal["domains"], json!(["lab.test"]));
    assert_eq!(labcal["fields"], json!([]), "a preset's form asks for nothing but the sign-in");
    for kind in ["icloud", "fastmail", "yahoo", "posteo"] {
        assert_eq!(by_kind(kind)["auth"], "PASSWORD", "{kind}");
    }
    assert!(by_kind("icloud")["help"].as_str().unwrap().contains("app-specific password"));
    assert!(by_kind("fastmail")["domains"].as_array().unwrap().iter().any(|d| d == "fastmail.com"));
    assert_eq!(by_kind("caldav")["domains"], json!([]));

    // Connected with the preset: nothing but a user name and password.
    let (name, password) = lab.new_user("preset").await;
    lab.make_calendar(&name, &password, "work", "Work", None).await;
    let connect = |password: String, settings: Value| {
        let (app, token, name) = (&app, ada.token.clone(), name.clone());
        async move {
            let input = json!({ "connector": "labcal", "username": name, "password": password, "settings": settings });
            app.gql(Some(&token), CONNECT, json!({ "i": input })).await
        }
    };
    // A wrong password is refused as one, and saves nothing.
    let r = connect("wrong".into(), json!({})).await;
    assert_eq!(error_of(&r).0, "AUTHENTICATION_FAILED", "{r}");
    // A user's `url` cannot point the preset elsewhere.
    let r = connect(password.clone(), json!({ "url": "http://169.254.169.254/" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("settings.url".into())), "{r}");
    let r = app.gql(Some(&ada.token), ACCOUNTS, json!({})).await;
    assert_eq!(r["data"]["me"]["calendarAccounts"], json!([]), "nothing saved: {r}");
    let r = connect(password.clone(), json!({})).await;
    let account = &r["data"]["connectCalendarAccount"];
    assert_eq!(account["connector"], "labcal", "{r}");
    assert!(account["calendars"].as_array().unwrap().iter().any(|c| c["name"] == "Work"), "{r}");
}
