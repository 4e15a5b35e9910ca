//! Finding the calendar home (RFC 4791 §6.2.1, RFC 6764): ask the start URL who the user is
//! and where their calendars live; if it does not know, try `/.well-known/caldav` on the
//! same server; follow the principal to its `calendar-home-set`. A URL that answers but
//! leads to no calendar home is not a CalDAV server: a settings error on `url`.

use concierge_connector_sdk::{ConnectorError, FieldError};
use url::Url;

use crate::classify::{self, Purpose};
use crate::dav::{Body, Dav};
use crate::wire;

fn not_caldav() -> ConnectorError {
    ConnectorError::Settings(FieldError::new("url", "is not a CalDAV server or calendar address"))
}

/// The calendar home's URL. While looking for it, an answer that is not WebDAV's (a server
/// error on PROPFIND, a reply that is not HTTP) means the URL is not a CalDAV server: a
/// settings error on `url`, as for a 404, not a protocol failure of a server that is one.
pub(crate) async fn calendar_home(dav: &Dav, start: &Url) -> Result<Url, ConnectorError> {
    find(dav, start).await.map_err(|e| match e {
        ConnectorError::Protocol { message } => {
            ConnectorError::Settings(FieldError::new("url", format!("is not a CalDAV server or calendar address ({message})")))
        }
        other => other,
    })
}

async fn find(dav: &Dav, start: &Url) -> Result<Url, ConnectorError> {
    if let Some(home) = from(dav, start).await? {
        return Ok(home);
    }
    let mut well_known = start.clone();
    well_known.set_path("/.well-known/caldav");
    well_known.set_query(None);
    if well_known != *start
        && let Some(home) = from(dav, &well_known).await?
    {
        return Ok(home);
    }
    Err(not_caldav())
}

/// The home found from this URL, `None` when it does not lead to one.
async fn from(dav: &Dav, url: &Url) -> Result<Option<Url>, ConnectorError> {
    let Some((found_at, props)) = propfind(dav, url).await? else {
        return Ok(None);
    };
    if let Some(home) = props.home_sets.first() {
        return Ok(found_at.join(home).ok());
    }
    if let Some(principal) = props.principal.as_deref().and_then(|p| found_at.join(p).ok())
        && principal != found_at
        && let Some((at, p)) = propfind(dav, &principal).await?
        && let Some(home) = p.home_sets.first()
    {
        return Ok(at.join(home).ok());
    }
    // The user gave a calendar's own address: its parent is the home.
    if props.calendar {
        return Ok(found_at.join("..").ok());
    }
    Ok(None)
}

/// PROPFIND depth 0 for the discovery properties: `None` when the URL answers but not as
/// WebDAV (404, a web page, a method not allowed).
async fn propfind(dav: &Dav, url: &Url) -> Result<Option<(Url, wire::Props)>, ConnectorError> {
    let body = wire::propfind_discovery();
    let reply = dav
        .request("PROPFIND", url, Some("0"), Some(Body { content_type: "application/xml; charset=utf-8", text: &body, if_match: None }))
        .await?;
    match reply.status {
        207 => {}
        401 | 403 | 429 | 500..=599 => {
            return Err(classify::status(reply.status, reply.retry_after, Purpose::SignIn, "sign-in"));
        }
        _ => return Ok(None),
    }
    // A 207 that is not a multistatus is not WebDAV either.
    let Ok(ms) = wire::parse_multistatus(&reply.body) else {
        return Ok(None);
    };
    let mut props = wire::Props::default();
    for r in ms.responses {
        let p = r.props;
        props.home_sets.extend(p.home_sets);
        props.principal = props.principal.or(p.principal);
        props.calendar |= p.calendar;
    }
    Ok(Some((reply.url, props)))
}
