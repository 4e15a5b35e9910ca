//! The Graph calendar connector against scripts/graph-standin, which checks every token with
//! scripts/oauth-standin playing Microsoft. Each test starts its own pair on free ports and
//! changes the calendars "as in Outlook" through the stand-in's admin API.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use concierge_connector_outlook::calendar_connector;
use concierge_connector_sdk::kit::{self, calendar::CalendarHarness, calendar::CalendarThrottling};
use concierge_connector_sdk::{
    AccessTokenSource, Account, CalendarConnector, CalendarSession, ConnectorError, Credentials, RemoteCalendar, Secret, Settings,
    SharedCalendarConnector, async_trait,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CALENDARS: &str = "openid email offline_access https://graph.microsoft.com/Calendars.ReadWrite";

// --- fixtures ------------------------------------------------------------------------------

/// The two stand-ins, killed when dropped.
struct StandIns {
    oauth: String,
    graph: String,
    admin: String,
    http: reqwest::Client,
    _processes: (Child, Child),
}

/// Starts `script args…` and returns it with the first line it prints.
async fn spawn(script: &str, args: &[&str]) -> (Child, String) {
    let path = format!("{}/../../scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{path} did not start: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).lines().next_line())
        .await
        .unwrap_or_else(|_| panic!("{script} printed nothing within 10 s"))
        .expect("readable stdout")
        .unwrap_or_else(|| panic!("{script} exited before listening"));
    (child, line)
}

impl StandIns {
    async fn start() -> StandIns {
        let (oauth_process, port) = spawn("oauth-standin", &[]).await;
        let oauth = format!("http://127.0.0.1:{}", port.trim());
        let (graph_process, line) = spawn("graph-standin", &["--oauth", &oauth, "--page-size", "2"]).await;
        let urls: Value = serde_json::from_str(&line).expect("graph-standin's first line is JSON");
        StandIns {
            graph: urls["url"].as_str().expect("url").to_owned(),
            admin: urls["admin"].as_str().expect("admin").to_owned(),
            oauth,
            http: reqwest::Client::new(),
            _processes: (oauth_process, graph_process),
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.admin));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("graph-standin answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} /admin{path}: {status} {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") }
    }

    async fn oauth_admin(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.oauth)).json(&body).send().await.expect("oauth-standin answers");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.expect("JSON")
    }

    /// An account for `email` whose grant has `scope`.
    async fn account_with_scope(&self, email: &str, scope: &str) -> (Account, Arc<StandInTokens>) {
        let issued = self.oauth_admin("/admin/issue", json!({ "email": email, "scope": scope })).await;
        let tokens = Arc::new(StandInTokens {
            http: self.http.clone(),
            token_url: format!("{}/token", self.oauth),
            refresh_token: issued["refresh_token"].as_str().expect("refresh token").to_owned(),
            current: Mutex::new(Secret::new(issued["access_token"].as_str().expect("access token"))),
        });
        let account = Account {
            address: email.to_owned(),
            settings: Settings::new(),
            credentials: Credentials::OAuth2 { username: email.to_owned(), tokens: tokens.clone() },
        };
        (account, tokens)
    }

    async fn account(&self, email: &str) -> Account {
        self.account_with_scope(email, CALENDARS).await.0
    }

    async fn session(&self, account: &Account) -> Box<dyn CalendarSession> {
        calendar_connector(Some(self.graph.clone())).open(account).await.expect("signs in")
    }

    async fn calendar(&self, email: &str, extra: Value) -> String {
        let mut body = json!({ "email": email, "name": "Work" });
        merge(&mut body, extra);
        let made = self.admin(reqwest::Method::POST, "/calendars", Some(body)).await;
        made["id"].as_str().expect("calendar id").to_owned()
    }

    /// An event made "in Outlook", `days` from now for an hour, with `extra` fields.
    async fn seed(&self, calendar: &str, subject: &str, days: i64, extra: Value) -> String {
        let start = Utc::now() + chrono::Duration::days(days);
        let mut body =
            json!({ "calendar": calendar, "subject": subject, "start": utc(start), "end": utc(start + chrono::Duration::hours(1)) });
        merge(&mut body, extra);
        let made = self.admin(reqwest::Method::POST, "/events", Some(body)).await;
        made["id"].as_str().expect("event id").to_owned()
    }

    async fn stored(&self, calendar: &str) -> Vec<Value> {
        let url = format!("/events?calendar={}", encode(calendar));
        let listing = self.admin(reqwest::Method::GET, &url, None).await;
        listing["value"].as_array().cloned().unwrap_or_default()
    }

    async fn refreshes(&self, email: &str) -> u64 {
        let response = self.http.get(format!("{}/admin/stats?email={}", self.oauth, encode(email))).send().await.expect("stats");
        let stats: Value = response.json().await.expect("JSON");
        stats["refresh_token"].as_u64().expect("a count")
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The gateway's side of OAuth2: the current token, and a new one from the stand-in's token
/// endpoint when asked.
struct StandInTokens {
    http: reqwest::Client,
    token_url: String,
    refresh_token: String,
    current: Mutex<Secret>,
}

#[async_trait]
impl AccessTokenSource for StandInTokens {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        Ok(self.current.lock().expect("not poisoned").clone())
    }

    async fn refresh(&self) -> Result<Secret, ConnectorError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.refresh_token.as_str()),
            ("client_id", "concierge-test"),
            ("client_secret", "concierge-test-secret"),
        ];
        let response =
            self.http.post(&self.token_url).form(&form).send().await.map_err(|e| ConnectorError::Unreachable { message: e.to_string() })?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or_default();
        match (status, answer["access_token"].as_str()) {
            (200, Some(token)) => {
                let token = Secret::new(token);
                *self.current.lock().expect("not poisoned") = token.clone();
                Ok(token)
            }
            _ => Err(ConnectorError::Authentication { message: format!("the refresh was refused ({status})") }),
        }
    }
}

/// An object's content lines, unfolded.
fn lines(ical: &str) -> Vec<String> {
    ical.replace("\r\n ", "").split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn has(ical: &str, line: &str) -> bool {
    lines(ical).iter().any(|l| l == line)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

const BOOKING: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge//EN\r\nBEGIN:VEVENT\r\nUID:booking-7@concierge.test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\nDESCRIPTION:Bring the receipt\\nand the shoes\r\nLOCATION:Shop\\, back room\r\nORGANIZER;CN=Shop:mailto:shop@example.com\r\nATTENDEE;CN=\"Roe, Richard\";ROLE=REQ-PARTICIPANT:mailto:richard@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn booking(summary: &str, start: DateTime<Utc>) -> String {
    BOOKING.replace("{start}", &stamp(start)).replace("{end}", &stamp(start + chrono::Duration::minutes(30))).replace("{summary}", summary)
}

/// A whole hour a few days ahead (the stand-in keeps seconds; the connector writes them).
fn next_week() -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::days(7);
    DateTime::from_timestamp(t.timestamp() - t.timestamp() % 3600, 0).expect("a time")
}

// --- calendars -----------------------------------------------------------------------------

#[tokio::test]
async fn calendars_are_listed_with_their_colour_and_whether_they_are_writable() {
    let graph = StandIns::start().await;
    let work = graph.calendar("ann@example.com", json!({ "name": "Work", "hexColor": "#1f6fb2" })).await;
    let birthdays = graph.calendar("ann@example.com", json!({ "name": "Birthdays", "color": "lightRed", "canEdit": false })).await;
    let plain = graph.calendar("ann@example.com", json!({ "name": "Plain" })).await;
    graph.calendar("bob@example.com", json!({ "name": "Bob's" })).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;

    // Three calendars at two a page: the connector follows the next link.
    let mut listed = session.calendars().await.expect("lists");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let summary: Vec<_> =
        listed.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.colour.as_deref(), c.writable, c.time_zone.clone())).collect();
    assert_eq!(
        summary,
        vec![
            (birthdays.as_str(), "Birthdays", Some("#F09E9E"), false, None),
            (plain.as_str(), "Plain", None, true, None),
            (work.as_str(), "Work", Some("#1F6FB2"), true, None),
        ]
    );
}

// --- sync ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_full_sync_then_deltas_report_only_what_changed() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let standup = graph.seed(&calendar, "Stand-up", 1, json!({ "location": { "displayName": "Room 1, east; wing" } })).await;
    let review = graph.seed(&calendar, "Review", 2, json!({ "showAs": "free" })).await;
    let retro = graph.seed(&calendar, "Retro", 3, json!({})).await;
    graph.seed(&calendar, "Too far ahead", 800, json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;

    let full = session.changes(&calendar, None, &[]).await.expect("a full sync");
    assert!(full.complete && full.removed.is_empty());
    let mut ids: Vec<_> = full.changed.iter().map(|o| o.id.clone()).collect();
    ids.sort();
    let mut expected = vec![standup.clone(), review.clone(), retro.clone()];
    expected.sort();
    assert_eq!(ids, expected, "the three in the window, over two pages");
    let stored = graph.stored(&calendar).await;
    let stored_standup = stored.iter().find(|e| e["id"] == standup.as_str()).expect("stored");
    let object = full.changed.iter().find(|o| o.id == standup).expect("listed");
    assert_eq!(object.etag.as_deref(), stored_standup["@odata.etag"].as_str());
    assert!(object.ical.starts_with("BEGIN:VCALENDAR\r\n") && object.ical.ends_with("END:VCALENDAR\r\n"));
    assert!(has(&object.ical, &format!("UID:{standup}")), "{}", object.ical);
    assert!(has(&object.ical, "SUMMARY:Stand-up"));
    assert!(has(&object.ical, "LOCATION:Room 1\\, east\\; wing"));
    assert!(has(&object.ical, "TRANSP:OPAQUE"));
    let start = stored_standup["start"]["dateTime"].as_str().expect("start");
    let start = DateTime::parse_from_rfc3339(&format!("{}Z", &start[..19])).expect("a time").with_timezone(&Utc);
    assert!(has(&object.ical, &format!("DTSTART:{}", stamp(start))), "{}", object.ical);
    assert!(has(&object.ical, &format!("DTEND:{}", stamp(start + chrono::Duration::hours(1)))));
    let free = full.changed.iter().find(|o| o.id == review).expect("listed");
    assert!(has(&free.ical, "TRANSP:TRANSPARENT"));

    // Changes "in Outlook": one new, one edited, one deleted.
    let lunch = graph.seed(&calendar, "Lunch", 4, json!({})).await;
    graph
        .admin(
            reqwest::Method::PATCH,
            &format!("/events/{}", encode(&review)),
            Some(json!({ "subject": "Review (moved)", "isCancelled": true })),
        )
        .await;
    graph.admin(reqwest::Method::DELETE, &format!("/events/{}", encode(&retro)), None).await;

    let delta = session.changes(&calendar, full.token.as_ref(), &[]).await.expect("a delta");
    assert!(!delta.complete);
    let mut changed: Vec<_> = delta.changed.iter().map(|o| o.id.clone()).collect();
    changed.sort();
    let mut expected = vec![lunch.clone(), review.clone()];
    expected.sort();
    assert_eq!(changed, expected);
    assert_eq!(delta.removed, vec![retro.clone()]);
    let edited = delta.changed.iter().find(|o| o.id == review).expect("edited");
    assert!(has(&edited.ical, "SUMMARY:Review (moved)") && has(&edited.ical, "STATUS:CANCELLED"), "{}", edited.ical);
    assert_ne!(edited.etag, free.etag);

    let quiet = session.changes(&calendar, delta.token.as_ref(), &[]).await.expect("another delta");
    assert_eq!((quiet.changed.len(), quiet.removed.len(), quiet.complete), (0, 0, false));
    assert!(quiet.token.is_some());
}

#[tokio::test]
async fn an_all_day_event_is_a_date_range() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let day = (Utc::now() + chrono::Duration::days(10)).date_naive();
    let at = |d: chrono::NaiveDate| format!("{}T00:00:00Z", d.format("%Y-%m-%d"));
    let after = day + chrono::Duration::days(2);
    let holiday = graph.seed(&calendar, "Holiday", 0, json!({ "isAllDay": true, "start": at(day), "end": at(after) })).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;

    let full = session.changes(&calendar, None, &[]).await.expect("a full sync");
    let object = full.changed.iter().find(|o| o.id == holiday).expect("listed");
    assert!(has(&object.ical, &format!("DTSTART;VALUE=DATE:{}", day.format("%Y%m%d"))), "{}", object.ical);
    assert!(has(&object.ical, &format!("DTEND;VALUE=DATE:{}", after.format("%Y%m%d"))));
}

#[tokio::test]
async fn a_forgotten_delta_token_restarts_with_a_full_sync() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let standup = graph.seed(&calendar, "Stand-up", 1, json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;
    let full = session.changes(&calendar, None, &[]).await.expect("a full sync");

    graph.admin(reqwest::Method::POST, "/forget-sync", None).await;

    let again = session.changes(&calendar, full.token.as_ref(), &[]).await.expect("a full sync again");
    assert!(again.complete);
    assert_eq!(again.changed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), vec![standup.as_str()]);
    assert_ne!(again.token, full.token);
}

#[tokio::test]
async fn a_deleted_calendar_is_gone() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;
    let full = session.changes(&calendar, None, &[]).await.expect("a full sync");

    graph.admin(reqwest::Method::DELETE, &format!("/calendars/{}", encode(&calendar)), None).await;

    for token in [full.token.as_ref(), None] {
        let err = session.changes(&calendar, token, &[]).await.expect_err("gone");
        assert_eq!(err, ConnectorError::Gone { what: format!("calendar {calendar}") });
    }
    let err = session.put(&calendar, "booking-7@concierge.test", &booking("Fitting", next_week()), None).await.expect_err("gone");
    assert_eq!(err.code(), "GONE");
}

// --- writes --------------------------------------------------------------------------------

#[tokio::test]
async fn putting_the_same_uid_twice_leaves_one_event_and_existing_updates_it() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;
    let start = next_week();

    let first = session.put(&calendar, "booking-7@concierge.test", &booking("Fitting; first visit", start), None).await.expect("created");
    let retry = session.put(&calendar, "booking-7@concierge.test", &booking("Fitting; first visit", start), None).await.expect("the same");
    assert_eq!(retry.id, first.id);

    let stored = graph.stored(&calendar).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let event = &stored[0];
    assert_eq!(event["id"], first.id.as_str());
    assert_eq!(event["transactionId"], "booking-7@concierge.test");
    assert_eq!(event["subject"], "Fitting; first visit");
    assert_eq!(event["body"], json!({ "contentType": "text", "content": "Bring the receipt\nand the shoes" }));
    assert_eq!(event["location"]["displayName"], "Shop, back room");
    assert_eq!(event["start"]["dateTime"], format!("{}.0000000", start.format("%Y-%m-%dT%H:%M:%S")));
    assert_eq!(event["end"]["dateTime"], format!("{}.0000000", (start + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S")));
    assert_eq!(
        event["attendees"],
        json!([{ "emailAddress": { "address": "richard@example.com", "name": "Roe, Richard" }, "type": "required" }])
    );
    assert_eq!(event["isAllDay"], false);
    assert_eq!(Some(event["@odata.etag"].as_str().expect("etag")), retry.etag.as_deref());

    let later = start + chrono::Duration::hours(2);
    let updated =
        session.put(&calendar, "booking-7@concierge.test", &booking("Fitting, moved", later), Some(&first.id)).await.expect("updated");
    assert_eq!(updated.id, first.id);
    assert_ne!(updated.etag, first.etag);
    let stored = graph.stored(&calendar).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["subject"], "Fitting, moved");
    assert_eq!(stored[0]["start"]["dateTime"], format!("{}.0000000", later.format("%Y-%m-%dT%H:%M:%S")));

    // The write shows up in the next sync like any other event.
    let full = session.changes(&calendar, None, &[]).await.expect("a full sync");
    assert_eq!(full.changed.len(), 1);
    assert!(has(&full.changed[0].ical, "SUMMARY:Fitting\\, moved"));
    assert!(has(&full.changed[0].ical, &format!("DTSTART:{}", stamp(later))));
}

#[tokio::test]
async fn an_event_deleted_in_outlook_is_created_again_by_a_put_with_existing() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;
    let first = session.put(&calendar, "booking-7@concierge.test", &booking("Fitting", next_week()), None).await.expect("created");
    graph.admin(reqwest::Method::DELETE, &format!("/events/{}", encode(&first.id)), None).await;

    let again =
        session.put(&calendar, "booking-7@concierge.test", &booking("Fitting", next_week()), Some(&first.id)).await.expect("recreated");

    assert_ne!(again.id, first.id);
    let stored = graph.stored(&calendar).await;
    assert_eq!(stored.iter().map(|e| e["id"].as_str().unwrap_or_default()).collect::<Vec<_>>(), vec![again.id.as_str()]);
}

#[tokio::test]
async fn deleting_twice_is_fine() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;
    let receipt = session.put(&calendar, "booking-7@concierge.test", &booking("Fitting", next_week()), None).await.expect("created");

    session.delete(&calendar, &receipt.id).await.expect("deleted");
    assert!(graph.stored(&calendar).await.is_empty());
    session.delete(&calendar, &receipt.id).await.expect("already gone is fine");
}

#[tokio::test]
async fn an_unreadable_event_is_rejected_before_anything_is_sent() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;

    let err = session.put(&calendar, "x", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", None).await.expect_err("no VEVENT");

    assert_eq!(err.code(), "REJECTED");
    assert!(graph.stored(&calendar).await.is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let graph = StandIns::start().await;
    graph.calendar("ann@example.com", json!({ "name": "Work" })).await;
    let account = graph.account("ann@example.com").await;
    let mut session = graph.session(&account).await;
    assert_eq!(graph.refreshes("ann@example.com").await, 0);

    graph.oauth_admin("/admin/expire", json!({ "email": "ann@example.com" })).await;

    let listed = session.calendars().await.expect("lists after a refresh");
    assert_eq!(listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["Work"]);
    assert_eq!(graph.refreshes("ann@example.com").await, 1);
    session.calendars().await.expect("the new token keeps working");
    assert_eq!(graph.refreshes("ann@example.com").await, 1);
}

#[tokio::test]
async fn a_revoked_grant_is_an_authentication_error() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let account = graph.account("ann@example.com").await;
    let mut session = graph.session(&account).await;

    graph.oauth_admin("/admin/revoke", json!({ "email": "ann@example.com" })).await;

    assert_eq!(session.calendars().await.expect_err("revoked").code(), "AUTHENTICATION_FAILED");
    assert_eq!(session.changes(&calendar, None, &[]).await.expect_err("revoked").code(), "AUTHENTICATION_FAILED");
    let err = calendar_connector(Some(graph.graph.clone())).open(&account).await.err().expect("open refused");
    assert_eq!(err.code(), "AUTHENTICATION_FAILED");
}

/// A token source whose tokens Graph never accepts, counting the refreshes asked of it.
#[derive(Default)]
struct Refused {
    refreshes: Mutex<u32>,
}

#[async_trait]
impl AccessTokenSource for Refused {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        Ok(Secret::new("not-a-token"))
    }

    async fn refresh(&self) -> Result<Secret, ConnectorError> {
        *self.refreshes.lock().expect("not poisoned") += 1;
        Ok(Secret::new("still-not-a-token"))
    }
}

#[tokio::test]
async fn a_token_refused_again_after_a_refresh_is_an_authentication_error() {
    let graph = StandIns::start().await;
    let tokens = Arc::new(Refused::default());
    let account = Account {
        address: "ann@example.com".into(),
        settings: Settings::new(),
        credentials: Credentials::OAuth2 { username: "ann@example.com".into(), tokens: tokens.clone() },
    };

    let err = calendar_connector(Some(graph.graph.clone())).open(&account).await.err().expect("refused");

    assert_eq!(err.code(), "AUTHENTICATION_FAILED");
    assert_eq!(*tokens.refreshes.lock().expect("not poisoned"), 1, "one refresh, then give up");
}

#[tokio::test]
async fn a_grant_without_the_calendar_scope_is_refused_with_the_reason() {
    let graph = StandIns::start().await;
    graph.calendar("ann@example.com", json!({})).await;
    let (account, _) = graph.account_with_scope("ann@example.com", "openid email https://outlook.office.com/IMAP.AccessAsUser.All").await;
    let mut session = graph.session(&account).await;

    let err = session.calendars().await.expect_err("no calendar scope");

    assert_eq!(err.code(), "AUTHENTICATION_FAILED");
    assert!(err.to_string().contains("Calendars.ReadWrite"), "{err}");
}

#[tokio::test]
async fn throttling_says_how_long_to_wait() {
    let graph = StandIns::start().await;
    let calendar = graph.calendar("ann@example.com", json!({})).await;
    let mut session = graph.session(&graph.account("ann@example.com").await).await;

    graph.admin(reqwest::Method::POST, "/throttle", Some(json!({ "count": 1, "retryAfter": 7 }))).await;

    match session.changes(&calendar, None, &[]).await {
        Err(ConnectorError::Throttled { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(session.changes(&calendar, None, &[]).await.expect("served again").complete);
}

// --- the SDK's calendar conformance kit ----------------------------------------------------

/// The kit's view of the stand-ins: each account is a new email with one calendar made
/// "in Outlook", whose events the admin API adds and edits as Outlook would.
struct GraphHarness {
    standins: StandIns,
}

impl GraphHarness {
    /// The stored event the kit knows by `uid`: the connector's writes carry it as Graph's
    /// transactionId, and so do the events the harness adds.
    async fn event_id(&self, calendar: &RemoteCalendar, uid: &str) -> String {
        let stored = self.standins.stored(&calendar.id).await;
        let event = stored.iter().find(|e| e["transactionId"] == uid).unwrap_or_else(|| panic!("no event {uid} in {stored:?}"));
        event["id"].as_str().expect("event id").to_owned()
    }
}

#[async_trait]
impl CalendarHarness for GraphHarness {
    fn connector(&self) -> SharedCalendarConnector {
        Arc::new(calendar_connector(Some(self.standins.graph.clone())))
    }

    async fn new_account(&self, calendar: &str) -> Account {
        let email = format!("{calendar}@contoso.test");
        let account = self.standins.account(&email).await;
        self.standins.admin(reqwest::Method::POST, "/calendars", Some(json!({ "email": email, "name": calendar }))).await;
        account
    }

    async fn add_event(&self, _account: &Account, calendar: &RemoteCalendar, uid: &str, summary: &str) {
        self.standins.seed(&calendar.id, summary, 2, json!({ "transactionId": uid })).await;
    }

    async fn rename_event(&self, _account: &Account, calendar: &RemoteCalendar, uid: &str, summary: &str) {
        let id = self.event_id(calendar, uid).await;
        self.standins.admin(reqwest::Method::PATCH, &format!("/events/{}", encode(&id)), Some(json!({ "subject": summary }))).await;
    }

    async fn summaries(&self, _account: &Account, calendar: &RemoteCalendar) -> Vec<String> {
        let mut out: Vec<String> =
            self.standins.stored(&calendar.id).await.iter().map(|e| e["subject"].as_str().unwrap_or_default().to_owned()).collect();
        out.sort();
        out
    }

    fn oauth(&self) -> Option<&dyn kit::OAuthTokens> {
        Some(self)
    }

    fn throttling(&self) -> Option<&dyn CalendarThrottling> {
        Some(self)
    }
}

/// The stand-in answers the next Graph request 429 with Retry-After, as Graph does.
#[async_trait]
impl CalendarThrottling for GraphHarness {
    async fn throttled(&self, account: &Account) -> (SharedCalendarConnector, Account) {
        self.standins.admin(reqwest::Method::POST, "/throttle", Some(json!({ "count": 1, "retryAfter": 7 }))).await;
        (self.connector(), account.clone())
    }
}

#[async_trait]
impl kit::OAuthTokens for GraphHarness {
    async fn expire_access_token(&self, account: &Account) {
        self.standins.oauth_admin("/admin/expire", json!({ "email": account.address })).await;
    }

    async fn refreshes(&self, account: &Account) -> u32 {
        u32::try_from(self.standins.refreshes(&account.address).await).unwrap_or(u32::MAX)
    }
}

#[tokio::test]
async fn the_outlook_calendar_passes_the_calendar_kit() {
    let report = kit::calendar::run(&GraphHarness { standins: StandIns::start().await }).await;
    assert_eq!(report.skipped, [], "every check applies: {report:?}");
}
