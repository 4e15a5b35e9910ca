//! Outlook calendars over Microsoft Graph: the calendar half of the `outlook` kind, signed
//! in with the same Microsoft grant as the mail half.
//!
//! Sync uses `calendarView/delta` over a window (60 days back, 400 ahead) fixed when a delta
//! chain starts; the delta link and the window travel together in the [`SyncToken`]. Writes
//! create events with `transactionId` set to the gateway's UID, so a retried create leaves
//! one event.

mod event;
mod graph;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use concierge_connector_sdk::{
    Account, CalendarChanges, CalendarConnector, CalendarObject, CalendarSession, ConnectorError, Credentials, Descriptor, KnownObject,
    OAuthProvider, RemoteCalendar, SyncToken, WriteReceipt, async_trait,
};
use reqwest::{Client, Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use graph::{Graph, Reply, Target};

/// Microsoft Graph's v1.0 endpoint.
pub const GRAPH_BASE: &str = "https://graph.microsoft.com/v1.0";
/// The scope the calendar half needs on top of the mail scopes.
pub const CALENDAR_SCOPE: &str = "https://graph.microsoft.com/Calendars.ReadWrite";

const TIMEOUT: Duration = Duration::from_secs(30);
const WINDOW_PAST_DAYS: i64 = 60;
const WINDOW_AHEAD_DAYS: i64 = 400;
/// A chain whose window has slid this far behind today starts over, so the window keeps
/// covering the coming year.
const WINDOW_DRIFT_DAYS: i64 = 30;
/// A round of delta pages longer than this is a server stuck in a loop, not a calendar.
const MAX_PAGES: usize = 2000;

/// The Outlook calendar connector (Microsoft Graph). Build it with [`calendar_connector`].
pub struct GraphCalendarConnector {
    descriptor: Descriptor,
    /// Microsoft's, as the mail preset's (always set: Outlook signs in with OAuth2).
    oauth: Option<OAuthProvider>,
    /// The HTTP client and Graph's base URL, or why they could not be made (reported by
    /// `open`, so a bad configuration shows on the account rather than panicking).
    setup: Result<(Client, Url), String>,
}

/// The Outlook calendar connector, talking to `graph_base` (default [`GRAPH_BASE`]; the
/// tests point it at `scripts/graph-standin`).
pub fn calendar_connector(graph_base: Option<String>) -> GraphCalendarConnector {
    let preset = crate::preset();
    let base = graph_base.unwrap_or_else(|| GRAPH_BASE.to_owned());
    let setup = match Url::parse(&base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map(|client| (client, url))
            .map_err(|e| format!("the HTTP client could not be built: {e}")),
        _ => Err(format!("the Graph base URL {base:?} is not an http(s) URL")),
    };
    GraphCalendarConnector { descriptor: preset.descriptor, oauth: preset.oauth, setup }
}

#[async_trait]
impl CalendarConnector for GraphCalendarConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn oauth(&self) -> Option<&OAuthProvider> {
        self.oauth.as_ref()
    }

    async fn open(&self, account: &Account) -> Result<Box<dyn CalendarSession>, ConnectorError> {
        let (http, base) = self.setup.clone().map_err(|message| ConnectorError::Unreachable { message })?;
        let Credentials::OAuth2 { tokens, .. } = &account.credentials else {
            return Err(ConnectorError::Unsupported { what: "password sign-in (Outlook calendars need Microsoft OAuth2)".into() });
        };
        let graph = Graph::new(http, base, tokens.clone());
        // Proves the token works before the gateway saves anything.
        graph.call(Method::GET, graph.url(&["me"]), None, Target::Account).await?;
        Ok(Box::new(GraphSession { graph }))
    }
}

struct GraphSession {
    graph: Graph,
}

/// What the gateway keeps as the sync token: where the delta chain stands and the window
/// it was started with.
#[derive(Serialize, Deserialize)]
struct DeltaState {
    v: u8,
    link: String,
    start: String,
    end: String,
}

impl DeltaState {
    fn decode(token: &SyncToken) -> Option<DeltaState> {
        serde_json::from_str::<DeltaState>(&token.0).ok().filter(|s| s.v == 1)
    }

    fn start(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.start).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// The window of a new delta chain, as Graph wants it (ISO 8601, UTC).
fn window(now: DateTime<Utc>) -> (String, String) {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (at(now - chrono::Duration::days(WINDOW_PAST_DAYS)), at(now + chrono::Duration::days(WINDOW_AHEAD_DAYS)))
}

impl GraphSession {
    /// Every item of a paged collection, following `@odata.nextLink`.
    async fn all_pages(&self, first: Url, target: Target<'_>) -> Result<Vec<Value>, ConnectorError> {
        let mut items = Vec::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let page = self.graph.call(Method::GET, url.clone(), None, target).await?.body;
            items.extend(values(&page)?);
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = self.next(next, &url)?,
                None => return Ok(items),
            }
        }
        Err(too_many_pages())
    }

    fn next(&self, link: &str, current: &Url) -> Result<Url, ConnectorError> {
        let next = self.graph.link(link)?;
        if &next == current {
            return Err(ConnectorError::Protocol { message: "Graph sent the same page link again".into() });
        }
        Ok(next)
    }

    /// One round of delta pages from `first` until the delta link. `complete` when this round
    /// began a new chain (then removals mean nothing: the gateway drops what is not listed).
    async fn delta_round(
        &self,
        calendar: &str,
        first: Url,
        start: String,
        end: String,
        complete: bool,
    ) -> Result<CalendarChanges, ConnectorError> {
        // The last word on each id wins: an event changed then removed in one round is removed.
        let mut latest: Vec<(String, Option<CalendarObject>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut url = first;
        let now = Utc::now();
        for _ in 0..MAX_PAGES {
            let page = self.graph.call(Method::GET, url.clone(), None, Target::Calendar(calendar)).await?.body;
            for item in values(&page)? {
                let Some(id) = item["id"].as_str().filter(|id| !id.is_empty()) else {
                    continue;
                };
                let state = if item.get("@removed").is_some() {
                    None
                } else {
                    let object = event::calendar_object(&item, now)
                        .map_err(|why| ConnectorError::Protocol { message: format!("Graph sent an event that cannot be read: {why}") })?;
                    Some(object)
                };
                match index.get(id) {
                    Some(&at) => latest[at].1 = state,
                    None => {
                        index.insert(id.to_owned(), latest.len());
                        latest.push((id.to_owned(), state));
                    }
                }
            }
            if let Some(next) = page["@odata.nextLink"].as_str() {
                url = self.next(next, &url)?;
                continue;
            }
            let Some(delta) = page["@odata.deltaLink"].as_str() else {
                return Err(ConnectorError::Protocol { message: "a delta page had neither a next nor a delta link".into() });
            };
            self.graph.link(delta)?;
            let token = serde_json::to_string(&DeltaState { v: 1, link: delta.to_owned(), start, end })
                .map_err(|e| ConnectorError::Protocol { message: format!("the sync token could not be written: {e}") })?;
            let mut changes = CalendarChanges { complete, token: Some(SyncToken(token)), ..CalendarChanges::default() };
            for (id, state) in latest {
                match state {
                    Some(object) => changes.changed.push(object),
                    None if !complete => changes.removed.push(id),
                    None => {}
                }
            }
            return Ok(changes);
        }
        Err(too_many_pages())
    }

    fn receipt(reply: &Reply) -> Result<WriteReceipt, ConnectorError> {
        let id = reply.body["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ConnectorError::Protocol { message: format!("Graph answered a write with {} but no event id", reply.status) })?;
        Ok(WriteReceipt { id: id.to_owned(), etag: reply.body["@odata.etag"].as_str().map(str::to_owned) })
    }
}

fn values(page: &Value) -> Result<Vec<Value>, ConnectorError> {
    match page.get("value") {
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err(ConnectorError::Protocol { message: "a Graph page without a value array".into() }),
    }
}

fn too_many_pages() -> ConnectorError {
    ConnectorError::Protocol { message: format!("Graph kept paging past {MAX_PAGES} pages") }
}

#[async_trait]
impl CalendarSession for GraphSession {
    async fn calendars(&mut self) -> Result<Vec<RemoteCalendar>, ConnectorError> {
        let items = self.all_pages(self.graph.url(&["me", "calendars"]), Target::Account).await?;
        Ok(items.iter().filter_map(event::remote_calendar).collect())
    }

    async fn changes(
        &mut self,
        calendar: &str,
        token: Option<&SyncToken>,
        _known: &[KnownObject],
    ) -> Result<CalendarChanges, ConnectorError> {
        let now = Utc::now();
        let drift_limit = now - chrono::Duration::days(WINDOW_PAST_DAYS + WINDOW_DRIFT_DAYS);
        // A token we cannot read, from another origin, or with a window left behind: start over.
        let resume = token
            .and_then(DeltaState::decode)
            .filter(|state| state.start().is_some_and(|start| start > drift_limit))
            .and_then(|state| self.graph.link(&state.link).ok().map(|url| (url, state)));
        if let Some((url, state)) = resume {
            match self.delta_round(calendar, url, state.start, state.end, false).await {
                // Graph forgot the chain (410 syncStateNotFound): a full sync replaces it.
                Err(ConnectorError::CheckpointReset { .. }) => {}
                other => return other,
            }
        }
        let (start, end) = window(now);
        let mut url = self.graph.url(&["me", "calendars", calendar, "calendarView", "delta"]);
        url.query_pairs_mut().append_pair("startDateTime", &start).append_pair("endDateTime", &end);
        self.delta_round(calendar, url, start, end, true).await
    }

    async fn put(&mut self, calendar: &str, uid: &str, ical: &str, existing: Option<&str>) -> Result<WriteReceipt, ConnectorError> {
        let draft = event::draft(ical)
            .map_err(|why| ConnectorError::Rejected { message: format!("the event cannot be sent to Outlook: {why}") })?;
        if let Some(id) = existing {
            let url = self.graph.url(&["me", "events", id]);
            match self.graph.call(Method::PATCH, url, Some(&event::graph_event(&draft, None)), Target::Event(id)).await {
                Ok(reply) => return Self::receipt(&reply),
                // Deleted in Outlook meanwhile: create it again.
                Err(ConnectorError::Gone { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let url = self.graph.url(&["me", "calendars", calendar, "events"]);
        let reply = self.graph.call(Method::POST, url, Some(&event::graph_event(&draft, Some(uid))), Target::Calendar(calendar)).await?;
        let receipt = Self::receipt(&reply)?;
        if reply.status == StatusCode::CREATED {
            return Ok(receipt);
        }
        // An event with this transactionId already existed (an earlier try whose answer was
        // lost): bring it up to date with what was asked now.
        let url = self.graph.url(&["me", "events", &receipt.id]);
        let reply = self.graph.call(Method::PATCH, url, Some(&event::graph_event(&draft, None)), Target::Event(&receipt.id)).await?;
        Self::receipt(&reply)
    }

    /// PATCH with `If-Match`: Graph's 412 (changed since) is a conflict, and so is an event
    /// removed meanwhile (nothing is recreated over a removal made elsewhere).
    async fn put_if_unchanged(
        &mut self,
        _calendar: &str,
        _uid: &str,
        ical: &str,
        known: &KnownObject,
    ) -> Result<WriteReceipt, ConnectorError> {
        let draft = event::draft(ical)
            .map_err(|why| ConnectorError::Rejected { message: format!("the event cannot be sent to Outlook: {why}") })?;
        let etag = known.etag.as_deref().ok_or_else(|| ConnectorError::Conflict {
            message: format!("event {}: no etag was read with it, so a change made in Outlook cannot be ruled out", known.id),
        })?;
        let url = self.graph.url(&["me", "events", &known.id]);
        let body = event::graph_event(&draft, None);
        match self.graph.call_if_match(Method::PATCH, url, Some(&body), Target::Event(&known.id), Some(etag)).await {
            Ok(reply) => Self::receipt(&reply),
            Err(ConnectorError::Gone { .. }) => {
                Err(ConnectorError::Conflict { message: format!("event {} was removed in Outlook since it was read", known.id) })
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&mut self, _calendar: &str, id: &str) -> Result<(), ConnectorError> {
        let url = self.graph.url(&["me", "events", id]);
        match self.graph.call(Method::DELETE, url, None, Target::Event(id)).await {
            Ok(_) | Err(ConnectorError::Gone { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_runs_from_sixty_days_back_to_four_hundred_ahead() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:34:56Z").unwrap().with_timezone(&Utc);
        assert_eq!(window(now), ("2025-12-31T12:34:56Z".to_owned(), "2027-04-05T12:34:56Z".to_owned()));
    }

    #[test]
    fn a_bad_base_url_is_reported_when_opening() {
        assert!(calendar_connector(Some("not a url".into())).setup.is_err());
        assert!(calendar_connector(Some("ftp://example.com/".into())).setup.is_err());
        let graph = calendar_connector(None);
        assert_eq!(graph.setup.as_ref().map(|(_, url)| url.as_str()).ok(), Some("https://graph.microsoft.com/v1.0"));
    }

    #[test]
    fn sync_tokens_that_are_not_ours_are_ignored() {
        assert!(DeltaState::decode(&SyncToken("garbage".into())).is_none());
        assert!(DeltaState::decode(&SyncToken(r#"{"v":2,"link":"x","start":"s","end":"e"}"#.into())).is_none());
        let ours = DeltaState::decode(&SyncToken(r#"{"v":1,"link":"x","start":"2026-01-01T00:00:00Z","end":"e"}"#.into())).unwrap();
        assert_eq!(ours.start().map(|t| t.to_rfc3339()), Some("2026-01-01T00:00:00+00:00".into()));
    }
}
