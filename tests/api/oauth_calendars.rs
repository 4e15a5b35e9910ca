//! Google's and Microsoft's calendars through the same OAuth grant as their mailboxes. The
//! providers can't be reached from here, so their calendar APIs are stand-ins (Radicale
//! behind a bearer-token front for Google's CalDAV; scripts/graph-standin for Microsoft
//! Graph) checking every token with the OAuth stand-in; the connectors are the real ones
//! with only their base URLs moved.

use std::time::Duration;

use serde_json::{Value, json};

use crate::calendar_lab::{CalendarLab, GraphStandin};
use crate::helpers::{TestApp, TestUser};
use crate::mail_lab::MailLab;
use crate::oauth_mail::{authorize, oauth_gateway_on};

const ACCOUNTS: &str =
    "{ me { calendarAccounts { id connector username mailboxId status lastError calendars { id name colour writable primary } } } }";

/// The calendar account linked to the user's mailbox, once its first sync is done.
async fn linked_account(app: &TestApp, user: &TestUser) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.gql(Some(&user.token), ACCOUNTS, json!({})).await;
        let account = &r["data"]["me"]["calendarAccounts"][0];
        if account["status"] == "LIVE" {
            return account.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no live calendar account: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn connecting_gmail_also_connects_its_google_calendars_with_the_same_grant() {
    let calendars = CalendarLab::get().await;
    let mail = MailLab::get().await;
    let bearer = calendars.start_bearer(&mail.oauth_url()).await;
    let (app, lab) = oauth_gateway_on(mail, move |c| {
        c.gmail_caldav_url = Some(bearer);
        c.calendar_poll_secs = 3600;
    })
    .await;
    let ada = app.user(&format!("ada-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    let (mail_user, _) = lab.new_user("gc").await;
    let address = format!("{mail_user}@lab.test");
    // Google's side: the same person's calendar.
    let cal_password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    calendars.set_password(&mail_user, &cal_password).await;
    let team = calendars.make_calendar(&mail_user, &cal_password, "team", "Team", Some("#0B8043")).await;
    calendars
        .put(
            &mail_user,
            &cal_password,
            &team,
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:g-1@tests\r\nDTSTAMP:20300101T000000Z\r\n\
             DTSTART:20300304T100000Z\r\nDTEND:20300304T110000Z\r\nSUMMARY:Planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        )
        .await;

    let outcome = authorize(&app, &ada, "gmail", &address, json!({ "loginHint": address })).await;
    assert_eq!(outcome["status"], "connected", "{outcome:?}");
    let account = linked_account(&app, &ada).await;
    let stats = lab.oauth_stats(&address).await;
    assert_eq!(stats["authorization_code"], 1, "{stats}");
    assert_eq!(stats["refresh_token"], 0, "the code exchange's token serves mail and calendars, unrefreshed: {stats}");
    assert_eq!(account["connector"], "gmail");
    assert_eq!(account["mailboxId"], outcome["mailbox"].as_str());
    let cal = &account["calendars"][0];
    assert_eq!((cal["name"].as_str(), cal["colour"].as_str(), cal["writable"].as_bool()), (Some("Team"), Some("#0B8043"), Some(true)));
    assert_eq!(cal["primary"], true, "the first writable calendar becomes the primary one");

    let r = app
        .gql(
            Some(&ada.token),
            "query($f: DateTime!, $t: DateTime!) { me { calendarEvents(from: $f, to: $t) { uid summary start } } }",
            json!({ "f": "2030-03-04T00:00:00Z", "t": "2030-03-05T00:00:00Z" }),
        )
        .await;
    assert_eq!(r["data"]["me"]["calendarEvents"][0]["summary"], "Planning", "{r}");

    // The grant is revoked at Google: the calendars ask to be signed in again; signing the
    // mailbox in again brings them back.
    lab.oauth_admin("revoke", json!({ "email": address })).await;
    let account_id = account["id"].as_str().expect("id").to_owned();
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { syncCalendarAccount(id: $id) { status } }", json!({ "id": account_id })).await;
    assert_eq!(r["data"]["syncCalendarAccount"]["status"], "NEEDS_REAUTH", "{r}");
    let again = authorize(&app, &ada, "gmail", &address, json!({ "mailboxId": outcome["mailbox"] })).await;
    assert_eq!(again["status"], "connected", "{again:?}");
    assert_eq!(linked_account(&app, &ada).await["id"], account_id.as_str(), "the same calendar account, LIVE again");

    // Its calendars go with the mailbox, not on their own.
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { disconnectCalendarAccount(id: $id) }", json!({ "id": account["id"] })).await;
    assert_eq!(crate::helpers::error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{r}");
}

#[tokio::test]
async fn connecting_outlook_also_connects_its_calendars_and_appointments_are_written_through_graph() {
    let mail = MailLab::get().await;
    let graph = GraphStandin::start(&mail.oauth_url()).await;
    let graph_url = graph.url.clone();
    let (app, lab) = oauth_gateway_on(mail, move |c| {
        c.outlook_graph_url = Some(graph_url);
        c.calendar_poll_secs = 3600;
        c.calendar_retry_ms = 200;
    })
    .await;
    let bea = app.user(&format!("bea-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    let (mail_user, _) = lab.new_user("oc").await;
    let address = format!("{mail_user}@lab.test");
    graph.admin("POST", "/calendars", json!({ "email": address, "name": "Holidays", "canEdit": false })).await;
    let main = graph.admin("POST", "/calendars", json!({ "email": address, "name": "Calendar", "hexColor": "#1F6FEB" })).await;
    // Graph reads a window around today (about a year ahead), so these are days from now.
    let day = |n: i64| (chrono::Utc::now() + chrono::Duration::days(n)).format("%Y-%m-%d").to_string();
    let (meeting_day, booking_day) = (day(3), day(4));
    graph
        .admin(
            "POST",
            "/events",
            json!({ "calendar": main["id"], "subject": "1:1", "start": format!("{meeting_day}T09:00:00Z"), "end": format!("{meeting_day}T09:30:00Z") }),
        )
        .await;

    let outcome = authorize(&app, &bea, "outlook", &address, json!({ "loginHint": address })).await;
    assert_eq!(outcome["status"], "connected", "{outcome:?}");
    let account = linked_account(&app, &bea).await;
    let stats = lab.oauth_stats(&address).await;
    assert_eq!(stats["authorization_code"], 1, "{stats}");
    assert_eq!(stats["refresh_token"], 0, "no refresh grant right after the code exchange: {stats}");
    let list = account["calendars"].as_array().expect("calendars");
    let named = |n: &str| list.iter().find(|c| c["name"] == n).unwrap_or_else(|| panic!("no {n} in {list:?}")).clone();
    assert_eq!(named("Holidays")["writable"], false);
    assert_eq!(named("Calendar")["writable"], true);
    assert_eq!(named("Calendar")["colour"], "#1F6FEB");
    assert_eq!(named("Calendar")["primary"], true);
    let r = app
        .gql(
            Some(&bea.token),
            "query($f: DateTime!, $t: DateTime!) { me { freeBusy(from: $f, to: $t) { busy { start end } } } }",
            json!({ "f": format!("{meeting_day}T00:00:00Z"), "t": format!("{meeting_day}T23:59:59Z") }),
        )
        .await;
    assert_eq!(
        r["data"]["me"]["freeBusy"]["busy"],
        json!([{ "start": format!("{meeting_day}T09:00:00+00:00"), "end": format!("{meeting_day}T09:30:00+00:00") }]),
        "{r}"
    );

    // A booked appointment lands in the Outlook calendar, through Graph.
    let token = crate::calendars::publisher(&app, &bea).await;
    let r = app
        .gql(
            Some(&token),
            crate::calendars::PUBLISH,
            json!({ "e": [crate::calendars::appointment(
                "appointment.booked",
                &bea,
                "o1",
                &format!("{booking_day}T10:00:00Z"),
                &format!("{booking_day}T11:00:00Z")
            )] }),
        )
        .await;
    assert_eq!(r["data"]["publishEvents"]["results"][0]["status"], "ACCEPTED", "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stored = graph.admin("GET", &format!("/events?calendar={}", main["id"].as_str().expect("id")), Value::Null).await;
        let written: Vec<&Value> =
            stored["value"].as_array().expect("events").iter().filter(|e| e["subject"] == "Demo with Acme, Inc.").collect();
        if let [e] = written.as_slice() {
            assert!(e["start"]["dateTime"].as_str().unwrap_or_default().starts_with(&format!("{booking_day}T10:00:00")), "{e}");
            assert_eq!(e["location"]["displayName"], "Room 4; 2nd floor");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not written to Outlook: {stored}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
