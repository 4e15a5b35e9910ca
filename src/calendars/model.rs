use chrono::{DateTime, Utc};

use crate::accounts::model::MailboxId;

use crate::db::StoredEnum as _;
use crate::identity::model::AccountId;

crate::ids::id_type!(CalendarAccountId, "a calendar account");
crate::ids::id_type!(CalendarId, "a calendar");

/// Where a calendar account's sync stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum CalendarAccountStatus {
    /// Signing in, or syncing for the first time.
    Connecting,
    /// Synced; polled for changes.
    Live,
    /// The last sync failed; it is retried with backoff (see `lastError`).
    Error,
    /// The server refused the credentials: the user must connect the account again.
    NeedsReauth,
}

/// Where one calendar stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum CalendarStatus {
    /// Nothing is wrong (a calendar that is neither primary nor checked for conflicts is
    /// listed but not synced).
    Ok,
    /// An appointment could not be written to it; the write is retried (see `statusReason`).
    WriteFailed,
    /// Its events could not be read at the last sync.
    SyncFailed,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CalendarAccount {
    pub calendar_account_id: CalendarAccountId,
    pub account_id: AccountId,
    pub connector: String,
    pub username: String,
    /// The connect form's values as JSON (never a secret).
    pub settings: String,
    pub mailbox_id: Option<MailboxId>,
    pub status: String,
    pub status_reason: Option<String>,
    pub last_error: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl CalendarAccount {
    pub fn status(&self) -> CalendarAccountStatus {
        CalendarAccountStatus::from_stored(&self.status).unwrap_or(CalendarAccountStatus::Error)
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Calendar {
    pub calendar_id: CalendarId,
    pub calendar_account_id: CalendarAccountId,
    pub account_id: AccountId,
    pub remote_id: String,
    pub name: String,
    pub colour: Option<String>,
    pub time_zone: Option<String>,
    pub writable: bool,
    pub is_primary: bool,
    pub check_conflicts: bool,
    pub sync_token: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
}

impl Calendar {
    pub fn status(&self) -> CalendarStatus {
        CalendarStatus::from_stored(&self.status).unwrap_or(CalendarStatus::SyncFailed)
    }

    /// Its events are synced: it is the primary calendar or one checked for conflicts.
    pub fn synced(&self) -> bool {
        self.is_primary || self.check_conflicts
    }
}

/// One stored calendar object, parsed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredEvent {
    pub calendar_id: CalendarId,
    pub remote_id: String,
    pub etag: Option<String>,
    pub uid: String,
    pub summary: Option<String>,
    pub span_start: i64,
    pub span_end: Option<i64>,
    pub recurring: bool,
    /// The [`concierge_connector_sdk::ical::ParsedObject`] as JSON.
    pub parsed: String,
}

/// An appointment as written to a calendar (from an `appointment.*` platform event).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Appointment {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub location: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub organizer: Option<Person>,
    pub attendees: Vec<Person>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub name: Option<String>,
    pub email: String,
}

/// A pending appointment write, as the writer reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppointmentWrite {
    pub account_id: AccountId,
    pub appointment_key: String,
    pub uid: String,
    pub cancelled: bool,
    /// The [`Appointment`] as JSON.
    pub appointment: String,
    pub version: i64,
    pub calendar_id: Option<CalendarId>,
    pub remote_id: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
}
