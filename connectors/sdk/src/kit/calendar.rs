//! The calendar half of the conformance kit: listing calendars, incremental sync, writing
//! events, refusing to overwrite a change made elsewhere, and (when the harness provides
//! them) OAuth2 refresh and throttling.
//!
//! A calendar connector's tests implement [`CalendarHarness`] (a fresh account with one
//! calendar on the real server, and a way to change its events as another client would) and
//! call [`run`].
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_calendars_conform() {
//!     let report = concierge_connector_sdk::kit::calendar::run(&MyCalendarHarness::start().await).await;
//!     assert_eq!(report.skipped, []);
//! }
//! ```

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{OAuthTokens, Report};
use crate::{
    Account, AuthMethod, CalendarChanges, CalendarObject, CalendarSession, ConnectorError, KnownObject, RemoteCalendar,
    SharedCalendarConnector, SyncToken,
};

/// What the calendar kit needs from a connector's test environment.
#[async_trait]
pub trait CalendarHarness: Send + Sync {
    /// The connector under test.
    fn connector(&self) -> SharedCalendarConnector;
    /// A new account on the real server (a fresh user) whose calendars include a writable,
    /// empty one named `calendar`, with settings that pass validation and working
    /// credentials.
    async fn new_account(&self, calendar: &str) -> Account;
    /// Adds an event with this UID and summary to the calendar, starting a few days from
    /// now, as another client would. Must not go through the connector under test.
    async fn add_event(&self, account: &Account, calendar: &RemoteCalendar, uid: &str, summary: &str);
    /// Changes the summary of the event with this UID, as the user would in another client.
    async fn rename_event(&self, account: &Account, calendar: &RemoteCalendar, uid: &str, summary: &str);
    /// The summaries of the calendar's events as the server holds them, read without the
    /// connector under test.
    async fn summaries(&self, account: &Account, calendar: &RemoteCalendar) -> Vec<String>;
    /// How to expire an account's OAuth2 access token. `None` declares that the connector
    /// signs in with a password; refused when it has an OAuth2 provider.
    fn oauth(&self) -> Option<&dyn OAuthTokens>;
    /// How to make the server tell the connector to slow down. `None` declares that the
    /// connector's server never throttles.
    fn throttling(&self) -> Option<&dyn CalendarThrottling>;
}

/// A calendar server that throttles.
#[async_trait]
pub trait CalendarThrottling: Send + Sync {
    /// The connector and account to use against a server that answers this account's
    /// requests with "slow down" (HTTP 429, or 503 with Retry-After).
    async fn throttled(&self, account: &Account) -> (SharedCalendarConnector, Account);
}

/// Runs every calendar check in turn.
pub async fn run(h: &dyn CalendarHarness) -> Report {
    let connector = h.connector();
    let descriptor = connector.descriptor();
    assert!(
        !(descriptor.auth == AuthMethod::OAuth2 || connector.oauth().is_some()) || h.oauth().is_some(),
        "{} signs in with OAuth2, but the harness's oauth() is None: give the kit a way to expire an access token",
        descriptor.kind
    );
    let mut report = Report::default();
    lists_its_calendars(h).await;
    report.pass("lists_its_calendars");
    syncs_only_what_changed(h).await;
    report.pass("syncs_only_what_changed");
    writes_replaces_and_removes_an_event(h).await;
    report.pass("writes_replaces_and_removes_an_event");
    refuses_to_overwrite_a_change_made_elsewhere(h).await;
    report.pass("refuses_to_overwrite_a_change_made_elsewhere");
    match h.oauth() {
        Some(tokens) => {
            refreshes_an_expired_access_token(h, tokens).await;
            report.pass("calendar_refreshes_an_expired_access_token");
        }
        None => report.skip("calendar_refreshes_an_expired_access_token", "OAuth2 sign-in"),
    }
    match h.throttling() {
        Some(server) => {
            reports_throttling_as_throttled(h, server).await;
            report.pass("calendar_reports_throttling_as_throttled");
        }
        None => report.skip("calendar_reports_throttling_as_throttled", "throttling server"),
    }
    report
}

/// A one-hour event as iCalendar text (UTC times, as the gateway writes), `days` from now.
pub fn event(uid: &str, summary: &str, days: i64) -> String {
    let start = Utc::now() + chrono::Duration::days(days);
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H0000Z").to_string();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge kit//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{}\r\n\
         DTSTART:{}\r\nDTEND:{}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        stamp(Utc::now()),
        stamp(start),
        stamp(start + chrono::Duration::hours(1)),
    )
}

/// The SUMMARY of an iCalendar text (unescaped no further: the kit's summaries are plain).
pub fn summary(ical: &str) -> Option<&str> {
    ical.lines().find_map(|l| l.trim_end().strip_prefix("SUMMARY:"))
}

/// A server's "slow down" is [`ConnectorError::Throttled`], whether it comes on signing in
/// or listing the calendars.
pub async fn reports_throttling_as_throttled(h: &dyn CalendarHarness, server: &dyn CalendarThrottling) {
    let account = h.new_account(&unique("throttled")).await;
    let (connector, throttled) = server.throttled(&account).await;
    let error = match connector.open(&throttled).await {
        Err(e) => e,
        Ok(mut session) => {
            let listed = session.calendars().await;
            session.close().await;
            match listed {
                Err(e) => e,
                Ok(calendars) => panic!("a throttling server was not reported: open() and calendars() succeeded ({calendars:?})"),
            }
        }
    };
    assert!(matches!(error, ConnectorError::Throttled { .. }), "a throttled request must be ConnectorError::Throttled, got {error:?}");
    assert_eq!(error.code(), "THROTTLED");
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("kit-{what}-{nanos}")
}

async fn open(h: &dyn CalendarHarness, account: &Account) -> Box<dyn CalendarSession> {
    match h.connector().open(account).await {
        Ok(session) => session,
        Err(e) => panic!("open() with working credentials failed: {e}"),
    }
}

/// A fresh account, a session, and its calendar named `name` as the connector lists it.
async fn account_with_calendar(h: &dyn CalendarHarness, name: &str) -> (Account, Box<dyn CalendarSession>, RemoteCalendar) {
    let account = h.new_account(name).await;
    let mut session = open(h, &account).await;
    let calendars = session.calendars().await.unwrap_or_else(|e| panic!("calendars() failed: {e}"));
    let calendar = calendars
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("calendars() does not list the calendar named {name:?}: {calendars:?}"));
    (account, session, calendar)
}

/// One sync round as the gateway runs it: with the token, and what it holds.
struct Synced {
    token: Option<SyncToken>,
    held: Vec<CalendarObject>,
}

impl Synced {
    async fn first(session: &mut dyn CalendarSession, calendar: &RemoteCalendar) -> (Synced, CalendarChanges) {
        let changes = session.changes(&calendar.id, None, &[]).await.unwrap_or_else(|e| panic!("changes() (first sync) failed: {e}"));
        assert!(changes.complete, "a first sync (no token, nothing known) is the calendar's whole content");
        let synced = Synced { token: changes.token.clone(), held: changes.changed.clone() };
        (synced, changes)
    }

    async fn next(&mut self, session: &mut dyn CalendarSession, calendar: &RemoteCalendar) -> CalendarChanges {
        let known: Vec<KnownObject> = self.held.iter().map(|o| KnownObject { id: o.id.clone(), etag: o.etag.clone() }).collect();
        let changes = session
            .changes(&calendar.id, self.token.as_ref(), &known)
            .await
            .unwrap_or_else(|e| panic!("changes() (incremental sync) failed: {e}"));
        if changes.complete {
            self.held = changes.changed.clone();
        } else {
            self.held.retain(|o| !changes.removed.contains(&o.id) && !changes.changed.iter().any(|c| c.id == o.id));
            self.held.extend(changes.changed.iter().cloned());
        }
        self.token = changes.token.clone();
        changes
    }

    fn find(&self, uid_summary: &str) -> Option<&CalendarObject> {
        self.held.iter().find(|o| summary(&o.ical) == Some(uid_summary))
    }
}

fn summaries_of(changes: &CalendarChanges) -> Vec<String> {
    let mut out: Vec<String> = changes.changed.iter().map(|o| summary(&o.ical).unwrap_or("(no SUMMARY)").to_owned()).collect();
    out.sort();
    out
}

/// `calendars()` lists the account's calendar by name, writable, with unique ids.
pub async fn lists_its_calendars(h: &dyn CalendarHarness) {
    let name = unique("listed");
    let (_account, mut session, calendar) = account_with_calendar(h, &name).await;
    assert!(calendar.writable, "the harness's calendar is writable: {calendar:?}");
    assert!(!calendar.id.is_empty(), "{calendar:?}");
    let calendars = session.calendars().await.unwrap_or_else(|e| panic!("calendars() failed: {e}"));
    let ids: HashSet<&str> = calendars.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), calendars.len(), "calendar ids must be unique: {calendars:?}");
    if let Some(colour) = &calendar.colour {
        assert!(colour.len() == 7 && colour.starts_with('#'), "colours are #RRGGBB: {colour:?}");
    }
    session.close().await;
}

/// After a first, complete sync, the next reports nothing while nothing changed, and then
/// exactly the events added or changed elsewhere.
pub async fn syncs_only_what_changed(h: &dyn CalendarHarness) {
    let (account, mut session, calendar) = account_with_calendar(h, &unique("synced")).await;
    let first_uid = unique("first");
    h.add_event(&account, &calendar, &first_uid, "Kit first").await;

    let (mut synced, first) = Synced::first(session.as_mut(), &calendar).await;
    assert_eq!(summaries_of(&first), ["Kit first"]);

    let quiet = synced.next(session.as_mut(), &calendar).await;
    assert!(
        quiet.changed.is_empty() && quiet.removed.is_empty() && !quiet.complete,
        "nothing changed, so the sync reports nothing: {quiet:?}"
    );

    h.add_event(&account, &calendar, &unique("second"), "Kit second").await;
    h.rename_event(&account, &calendar, &first_uid, "Kit first renamed").await;
    let changed = synced.next(session.as_mut(), &calendar).await;
    assert!(!changed.complete, "an incremental sync is not the whole calendar");
    assert_eq!(summaries_of(&changed), ["Kit first renamed", "Kit second"], "only what changed elsewhere");
    assert!(changed.removed.is_empty(), "{changed:?}");

    let quiet = synced.next(session.as_mut(), &calendar).await;
    assert!(quiet.changed.is_empty() && quiet.removed.is_empty(), "nothing changed since: {quiet:?}");
    session.close().await;
}

/// `put` creates an event, writing it again with its id replaces it (one event), and
/// `delete` removes it; deleting it again is not an error.
pub async fn writes_replaces_and_removes_an_event(h: &dyn CalendarHarness) {
    let (account, mut session, calendar) = account_with_calendar(h, &unique("written")).await;
    let uid = unique("booking");

    let receipt =
        session.put(&calendar.id, &uid, &event(&uid, "Kit booked", 3), None).await.unwrap_or_else(|e| panic!("put() failed: {e}"));
    assert_eq!(h.summaries(&account, &calendar).await, ["Kit booked"]);
    let again = session
        .put(&calendar.id, &uid, &event(&uid, "Kit booked again", 3), Some(&receipt.id))
        .await
        .unwrap_or_else(|e| panic!("put() over its own id failed: {e}"));
    assert_eq!(again.id, receipt.id, "replacing an event keeps its id");
    assert_eq!(h.summaries(&account, &calendar).await, ["Kit booked again"], "one event, the latest content");

    let (_, synced) = Synced::first(session.as_mut(), &calendar).await;
    assert_eq!(synced.changed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [receipt.id.as_str()], "the sync sees the written event");

    session.delete(&calendar.id, &receipt.id).await.unwrap_or_else(|e| panic!("delete() failed: {e}"));
    assert!(h.summaries(&account, &calendar).await.is_empty(), "the event is gone");
    session.delete(&calendar.id, &receipt.id).await.unwrap_or_else(|e| panic!("deleting a removed event must not fail: {e}"));
    session.close().await;
}

/// A write over an event changed elsewhere since it was read (its ETag is stale) is
/// [`ConnectorError::Conflict`] and leaves the other change in place; with the fresh ETag
/// from the next sync it goes through.
pub async fn refuses_to_overwrite_a_change_made_elsewhere(h: &dyn CalendarHarness) {
    let (account, mut session, calendar) = account_with_calendar(h, &unique("conflict")).await;
    let uid = unique("contested");
    session.put(&calendar.id, &uid, &event(&uid, "Kit ours", 4), None).await.unwrap_or_else(|e| panic!("put() failed: {e}"));
    let (mut synced, _) = Synced::first(session.as_mut(), &calendar).await;
    let read = synced.find("Kit ours").cloned().unwrap_or_else(|| panic!("the sync does not hold the written event"));
    assert!(read.etag.is_some(), "a synced object carries its ETag, which conditional writes need: {read:?}");

    h.rename_event(&account, &calendar, &uid, "Kit theirs").await;
    let stale = KnownObject { id: read.id.clone(), etag: read.etag.clone() };
    match session.put_if_unchanged(&calendar.id, &uid, &event(&uid, "Kit overwritten", 4), &stale).await {
        Err(ConnectorError::Conflict { .. }) => {}
        other => panic!("a write with a stale ETag must be ConnectorError::Conflict, got {other:?}"),
    }
    assert_eq!(h.summaries(&account, &calendar).await, ["Kit theirs"], "the change made elsewhere is kept");

    synced.next(session.as_mut(), &calendar).await;
    let fresh = synced.find("Kit theirs").cloned().unwrap_or_else(|| panic!("the sync does not show the change made elsewhere"));
    let fresh = KnownObject { id: fresh.id, etag: fresh.etag };
    session
        .put_if_unchanged(&calendar.id, &uid, &event(&uid, "Kit ours again", 4), &fresh)
        .await
        .unwrap_or_else(|e| panic!("a write with the current ETag failed: {e}"));
    assert_eq!(h.summaries(&account, &calendar).await, ["Kit ours again"]);
    session.close().await;
}

/// An expired access token is refreshed through the account's token source, and the session
/// then works.
pub async fn refreshes_an_expired_access_token(h: &dyn CalendarHarness, tokens: &dyn OAuthTokens) {
    let name = unique("refreshed");
    let account = h.new_account(&name).await;
    let before = tokens.refreshes(&account).await;
    tokens.expire_access_token(&account).await;
    let mut session = open(h, &account).await;
    let calendars = session.calendars().await.unwrap_or_else(|e| panic!("calendars() after a refresh failed: {e}"));
    assert!(calendars.iter().any(|c| c.name == name), "{calendars:?}");
    session.close().await;
    assert!(tokens.refreshes(&account).await > before, "the expired access token was not refreshed through the token source");
}
