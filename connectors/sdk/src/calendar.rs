//! The calendar capability: the second half of the seam, beside mail.
//!
//! A calendar connector knows one kind of calendar account (any CalDAV server, Google,
//! Microsoft 365). It lists the account's calendars, reports what changed in one since the
//! last sync, and writes or removes the events Concierge owns (booked appointments). Events
//! travel as iCalendar text (RFC 5545) whatever the provider speaks, so the gateway parses,
//! expands recurrences and stores them in one place; a connector for an API that is not
//! CalDAV converts at its edge.
//!
//! One connector value can serve mail, calendars or both: a type implements
//! [`crate::MailConnector`], [`CalendarConnector`], or the two, with the same descriptor
//! kind, and one sign-in (an OAuth grant with both scopes) serves both.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Account, ConnectorError, Descriptor, FieldError, OAuthProvider, Settings};

/// A kind of calendar account Concierge can sync and write to.
#[async_trait]
pub trait CalendarConnector: Send + Sync + 'static {
    /// What this connector is and the form that connects an account with it.
    fn descriptor(&self) -> &Descriptor;

    /// Checks the connect form's values and returns them complete, as
    /// [`crate::MailConnector::validate`] does.
    fn validate(&self, settings: &Settings) -> Result<Settings, FieldError> {
        self.descriptor().validate(settings)
    }

    /// Connects and signs in. A wrong password, a URL that is not a calendar server or an
    /// unreachable host must fail here, typed: the gateway saves nothing then.
    async fn open(&self, account: &Account) -> Result<Box<dyn CalendarSession>, ConnectorError>;

    /// The OAuth2 provider, for connectors that sign in with one.
    fn oauth(&self) -> Option<&OAuthProvider> {
        None
    }
}

/// One calendar of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCalendar {
    /// Stable within the account (CalDAV: the collection's path).
    pub id: String,
    pub name: String,
    /// `#RRGGBB`, when the server has one.
    pub colour: Option<String>,
    /// The calendar's IANA time zone, when the server says.
    pub time_zone: Option<String>,
    /// Events can be written to it (the user may pick it as the primary calendar).
    pub writable: bool,
}

/// Where a calendar's sync stands, in the connector's terms (a CalDAV sync token, a Graph
/// delta link). Opaque to the gateway, which stores it with the events it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncToken(pub String);

/// One stored calendar object: an event with its recurrence exceptions, as one iCalendar
/// document (`BEGIN:VCALENDAR` … with one or more `VEVENT`s sharing a UID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarObject {
    /// Stable within the calendar (CalDAV: the resource's path).
    pub id: String,
    /// Changes whenever the object does, when the server has such a tag.
    pub etag: Option<String>,
    pub ical: String,
}

/// An object the gateway already holds, so a connector without sync tokens can fetch only
/// what changed (by ETag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownObject {
    pub id: String,
    pub etag: Option<String>,
}

/// What changed in a calendar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CalendarChanges {
    /// New or changed objects.
    pub changed: Vec<CalendarObject>,
    /// Ids of objects that were removed.
    pub removed: Vec<String>,
    /// `changed` is the calendar's whole content: anything else the gateway holds for it is
    /// gone (a first sync, or a sync token the server no longer accepts).
    pub complete: bool,
    /// Pass this to the next [`CalendarSession::changes`].
    pub token: Option<SyncToken>,
}

/// What a write left on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteReceipt {
    /// The object's id, to update or remove it later.
    pub id: String,
    pub etag: Option<String>,
}

/// A signed-in connection to one calendar account. One task uses it at a time.
#[async_trait]
pub trait CalendarSession: Send {
    /// Every calendar of the account.
    async fn calendars(&mut self) -> Result<Vec<RemoteCalendar>, ConnectorError>;

    /// What changed in `calendar` since `token` (everything, with `complete`, when `token` is
    /// `None` or no longer valid). `known` is what the gateway holds, for servers without
    /// sync tokens. A calendar that no longer exists is [`ConnectorError::Gone`].
    async fn changes(
        &mut self,
        calendar: &str,
        token: Option<&SyncToken>,
        known: &[KnownObject],
    ) -> Result<CalendarChanges, ConnectorError>;

    /// Creates the event with this UID in `calendar`, or replaces it when `existing` (a
    /// receipt's id) is given. Writing the same event twice leaves one event.
    async fn put(&mut self, calendar: &str, uid: &str, ical: &str, existing: Option<&str>) -> Result<WriteReceipt, ConnectorError>;

    /// Replaces the object `known` (an id, and the ETag it was read with) only if the server
    /// still holds that version, so a change made elsewhere since is never overwritten
    /// unseen: a newer version is [`ConnectorError::Conflict`] (read it again, then decide).
    /// Connectors whose server cannot compare versions keep the default,
    /// [`ConnectorError::Unsupported`].
    async fn put_if_unchanged(
        &mut self,
        calendar: &str,
        uid: &str,
        ical: &str,
        known: &KnownObject,
    ) -> Result<WriteReceipt, ConnectorError> {
        let _ = (calendar, uid, ical, known);
        Err(ConnectorError::Unsupported { what: "writing only if unchanged".into() })
    }

    /// Removes an object written before. One that is already gone is not an error.
    async fn delete(&mut self, calendar: &str, id: &str) -> Result<(), ConnectorError>;

    /// Signs out politely. Dropping the session without it must also be safe.
    async fn close(self: Box<Self>) {}
}

/// Shorthand for a calendar connector shared across the gateway.
pub type SharedCalendarConnector = std::sync::Arc<dyn CalendarConnector>;
