//! A signed-in CalDAV account: listing calendars, syncing one (RFC 6578 sync-collection, or
//! ETag comparison where the server has no sync tokens), and writing Concierge's events.

use std::sync::Arc;

use concierge_connector_sdk::ical::read::{first_tzid, has_component};
use concierge_connector_sdk::{
    CalendarChanges, CalendarObject, CalendarSession, ConnectorError, KnownObject, RemoteCalendar, SyncToken, WriteReceipt, async_trait,
};
use url::Url;

use crate::classify::{self, Purpose};
use crate::dav::{Body, Dav, Reply};
use crate::wire::{self, DAV};

const XML: &str = "application/xml; charset=utf-8";
/// RFC 6578 does not bound a multiget; servers do. 100 hrefs per request is safe everywhere.
const MULTIGET_BATCH: usize = 100;

pub(crate) struct CaldavSession {
    pub dav: Arc<Dav>,
    /// The calendar home, where calendars are listed; ids are paths on its server.
    pub home: Url,
    pub use_sync_collection: bool,
}

impl CaldavSession {
    /// A calendar id (a path) or an object id as a URL on the home's server.
    fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        self.home.join(path).map_err(|_| classify::protocol(path, "not a path on the calendar server"))
    }

    fn collection_url(&self, calendar: &str) -> Result<Url, ConnectorError> {
        let mut url = self.url(calendar)?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(url)
    }

    async fn xml(&self, method: &str, url: &Url, depth: &str, body: &str) -> Result<Reply, ConnectorError> {
        self.dav.request(method, url, Some(depth), Some(Body { content_type: XML, text: body, if_match: None })).await
    }

    /// The multistatus of a 207, or the typed error of anything else.
    fn multistatus(reply: &Reply, purpose: Purpose, what: &str) -> Result<wire::Multistatus, ConnectorError> {
        if reply.status != 207 {
            return Err(classify::status(reply.status, reply.retry_after, purpose, what));
        }
        wire::parse_multistatus(&reply.body).map_err(|why| classify::protocol(what, &why))
    }

    /// An href from a reply as an id: its path (hrefs may be absolute URLs).
    fn id_of(reply_url: &Url, href: &str) -> Option<String> {
        reply_url.join(href).ok().map(|u| u.path().to_owned())
    }

    /// RFC 6578. `Ok(None)`: the server does not do sync-collection here.
    async fn sync_collection(
        &self,
        url: &Url,
        calendar: &str,
        token: Option<&SyncToken>,
    ) -> Result<Option<CalendarChanges>, ConnectorError> {
        let reply = self.xml("REPORT", url, "0", &wire::sync_collection(token.map(|t| t.0.as_str()))).await?;
        if token.is_some() && matches!(reply.status, 403 | 404 | 409 | 410) {
            // RFC 6578 says 403/409 with valid-sync-token when the server forgot the token;
            // some servers answer 410 instead. Start over, whole: if the calendar itself is
            // gone, that listing says so.
            if !wire::names_precondition(&reply.body, DAV, "valid-sync-token") {
                tracing::debug!(status = reply.status, "sync token refused without valid-sync-token; listing again");
            }
            return Box::pin(self.sync_collection(url, calendar, None)).await;
        }
        match reply.status {
            207 => {}
            404 | 410 => {
                return Err(ConnectorError::Gone { what: format!("calendar {calendar}") });
            }
            // Not supported (here): 400, 403, 405, 415, 501 are what servers answer.
            400 | 403 | 405 | 415 | 501 if token.is_none() => return Ok(None),
            _ => {
                return Err(classify::status(reply.status, reply.retry_after, Purpose::Read, &format!("calendar {calendar}")));
            }
        }
        let ms = wire::parse_multistatus(&reply.body).map_err(|why| classify::protocol("sync-collection", &why))?;
        let collection = url.path().to_owned();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for r in ms.responses {
            let Some(id) = Self::id_of(&reply.url, &r.href) else {
                continue;
            };
            if id == collection || id.ends_with('/') || r.props.collection {
                continue;
            }
            match r.status {
                Some(404 | 410) => removed.push(id),
                _ => changed.push(id),
            }
        }
        let objects = self.multiget(url, &changed).await?;
        Ok(Some(CalendarChanges {
            changed: objects,
            removed: if token.is_some() { removed } else { Vec::new() },
            complete: token.is_none(),
            token: ms.sync_token.map(SyncToken),
        }))
    }

    /// Without sync tokens: list ETags, fetch what is new or changed, report what is gone.
    async fn by_etag(&self, url: &Url, calendar: &str, known: &[KnownObject]) -> Result<CalendarChanges, ConnectorError> {
        let what = format!("calendar {calendar}");
        let reply = self.xml("PROPFIND", url, "1", &wire::propfind_etags()).await?;
        let ms = Self::multistatus(&reply, Purpose::Read, &what)?;
        let collection = url.path().to_owned();
        let mut listed = Vec::new();
        for r in ms.responses {
            let Some(id) = Self::id_of(&reply.url, &r.href) else {
                continue;
            };
            if id == collection || id.ends_with('/') || r.props.collection {
                continue;
            }
            listed.push((id, r.props.etag));
        }
        let fetch: Vec<String> = listed
            .iter()
            .filter(|(id, etag)| !known.iter().any(|k| &k.id == id && etag.is_some() && k.etag == *etag))
            .map(|(id, _)| id.clone())
            .collect();
        let removed = known.iter().filter(|k| !listed.iter().any(|(id, _)| *id == k.id)).map(|k| k.id.clone()).collect();
        Ok(CalendarChanges { changed: self.multiget(url, &fetch).await?, removed, complete: known.is_empty(), token: None })
    }

    /// calendar-multiget in batches; only objects holding a VEVENT come back.
    async fn multiget(&self, url: &Url, ids: &[String]) -> Result<Vec<CalendarObject>, ConnectorError> {
        let mut out = Vec::new();
        for batch in ids.chunks(MULTIGET_BATCH) {
            let reply = self.xml("REPORT", url, "1", &wire::multiget(batch)).await?;
            let ms = Self::multistatus(&reply, Purpose::Read, "calendar-multiget")?;
            for r in ms.responses {
                let (Some(id), Some(ical)) = (Self::id_of(&reply.url, &r.href), r.props.calendar_data) else {
                    continue;
                };
                if has_component(&ical, "VEVENT") {
                    out.push(CalendarObject { id, etag: r.props.etag, ical });
                }
            }
        }
        Ok(out)
    }

    /// PUTs the event at `url`; over the version with ETag `if_match` only, when given.
    async fn put_at(&self, url: &Url, ical: &str, if_match: Option<&str>) -> Result<Reply, ConnectorError> {
        self.dav.request("PUT", url, None, Some(Body { content_type: "text/calendar; charset=utf-8", text: ical, if_match })).await
    }

    /// What a successful PUT left: the resource's path and its ETag (asked for when the
    /// answer had none).
    async fn receipt(&self, url: &Url, reply: Reply) -> Result<WriteReceipt, ConnectorError> {
        let etag = match reply.etag {
            Some(etag) => Some(etag),
            None => self.etag_of(url).await?,
        };
        Ok(WriteReceipt { id: url.path().to_owned(), etag })
    }

    /// The ETag of one resource, when a PUT answered without one.
    async fn etag_of(&self, url: &Url) -> Result<Option<String>, ConnectorError> {
        let reply = self.xml("PROPFIND", url, "0", &wire::propfind_etags()).await?;
        let ms = Self::multistatus(&reply, Purpose::Read, "the written event")?;
        Ok(ms.responses.into_iter().find_map(|r| r.props.etag))
    }
}

#[async_trait]
impl CalendarSession for CaldavSession {
    async fn calendars(&mut self) -> Result<Vec<RemoteCalendar>, ConnectorError> {
        let reply = self.xml("PROPFIND", &self.home, "1", &wire::propfind_calendars()).await?;
        let ms = Self::multistatus(&reply, Purpose::Read, "the calendar home")?;
        let mut out = Vec::new();
        for r in ms.responses {
            let p = r.props;
            if !p.calendar || p.components.as_ref().is_some_and(|c| !c.iter().any(|c| c == "VEVENT")) {
                continue;
            }
            let Some(id) = Self::id_of(&reply.url, &r.href) else {
                continue;
            };
            let name = p.displayname.unwrap_or_else(|| last_segment(&id));
            // No privileges reported: assume writable; a refused write says otherwise later.
            let writable =
                p.privileges.as_ref().is_none_or(|ps| ps.iter().any(|p| matches!(p.as_str(), "write" | "write-content" | "all")));
            out.push(RemoteCalendar {
                id,
                name,
                colour: p.color.as_deref().and_then(wire::colour),
                time_zone: p.timezone.as_deref().and_then(first_tzid),
                writable,
            });
        }
        Ok(out)
    }

    async fn changes(
        &mut self,
        calendar: &str,
        token: Option<&SyncToken>,
        known: &[KnownObject],
    ) -> Result<CalendarChanges, ConnectorError> {
        let url = self.collection_url(calendar)?;
        if self.use_sync_collection
            && let Some(changes) = self.sync_collection(&url, calendar, token).await?
        {
            return Ok(changes);
        }
        self.by_etag(&url, calendar, known).await
    }

    async fn put(&mut self, calendar: &str, uid: &str, ical: &str, existing: Option<&str>) -> Result<WriteReceipt, ConnectorError> {
        let mut url = match existing {
            Some(id) => self.url(id)?,
            None => self.collection_url(calendar)?.join(&wire::resource_name(uid)).map_err(|_| classify::protocol(uid, "bad UID"))?,
        };
        let mut reply = self.put_at(&url, ical, None).await?;
        if matches!(reply.status, 403 | 409)
            && let Some(href) = wire::uid_conflict_href(&reply.body)
            && let Ok(holder) = reply.url.join(&href)
            && holder != url
        {
            // Another client stored this UID under another name: replace that one.
            url = holder;
            reply = self.put_at(&url, ical, None).await?;
        }
        if !reply.ok() {
            return Err(match reply.status {
                // PUT into a collection that is gone: 404, or 409 (no parent).
                404 | 409 | 410 => ConnectorError::Gone { what: format!("calendar {calendar}") },
                s => classify::status(s, reply.retry_after, Purpose::Write, &format!("event {uid}")),
            });
        }
        self.receipt(&url, reply).await
    }

    /// PUT with `If-Match`: a 412 (another ETag, or the event removed) is a conflict.
    async fn put_if_unchanged(
        &mut self,
        _calendar: &str,
        uid: &str,
        ical: &str,
        known: &KnownObject,
    ) -> Result<WriteReceipt, ConnectorError> {
        let url = self.url(&known.id)?;
        // Without an ETag there is nothing to compare with: read it again first.
        let etag = known.etag.as_deref().ok_or_else(|| ConnectorError::Conflict {
            message: format!("event {uid}: no ETag was read with it, so a change made elsewhere cannot be ruled out"),
        })?;
        let reply = self.put_at(&url, ical, Some(etag)).await?;
        if !reply.ok() {
            return Err(classify::status(reply.status, reply.retry_after, Purpose::Write, &format!("event {uid}")));
        }
        self.receipt(&url, reply).await
    }

    async fn delete(&mut self, calendar: &str, id: &str) -> Result<(), ConnectorError> {
        let url = self.url(id)?;
        let reply = self.dav.request("DELETE", &url, None, None).await?;
        match reply.status {
            200..=299 | 404 | 410 => Ok(()),
            s => Err(classify::status(s, reply.retry_after, Purpose::Write, &format!("{id} in {calendar}"))),
        }
    }
}

/// A collection's last path segment, decoded, for a calendar without a display name.
fn last_segment(path: &str) -> String {
    let segment = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calendar_without_a_name_is_named_after_its_path() {
        assert_eq!(last_segment("/alice/my%20cal/"), "my cal");
        assert_eq!(last_segment("/alice/work"), "work");
    }

    #[test]
    fn ids_are_paths_even_when_hrefs_are_absolute() {
        let base = Url::parse("https://p01.example.com/123/calendars/").unwrap();
        assert_eq!(CaldavSession::id_of(&base, "https://p01.example.com/123/calendars/a/x.ics").as_deref(), Some("/123/calendars/a/x.ics"));
        assert_eq!(CaldavSession::id_of(&base, "/123/calendars/a/").as_deref(), Some("/123/calendars/a/"));
    }
}
