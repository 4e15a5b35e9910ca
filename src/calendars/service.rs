//! Connecting calendar accounts, choosing the primary and conflict calendars, reading busy
//! time and the agenda, and taking appointments in from platform events.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use concierge_connector_sdk::{Account, ConnectorError, Credentials, Descriptor, Secret, Settings};
use tracing::instrument;

use super::model::{Calendar, CalendarAccount, CalendarAccountId, CalendarAccountStatus, CalendarId};
use super::recurrence::{self, Occurrence};
use super::store;
use super::sync::{CalendarSync, StoredLogin};
use crate::availability::model::Span;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use concierge_connector_sdk::ical::ParsedObject;

/// What `connectCalendarAccount` asks for.
pub struct ConnectCalendarInput {
    pub connector: String,
    pub username: String,
    pub password: String,
    pub settings: Settings,
}

/// One occurrence of an event of a synced calendar.
#[derive(Clone, Debug)]
pub struct AgendaEntry {
    pub calendar_id: CalendarId,
    pub uid: String,
    pub occurrence: Occurrence,
    pub location: Option<String>,
}

/// Most calendars one `setConflictCalendars` may name.
pub const MAX_CONFLICT_CALENDARS: usize = 50;

#[derive(Clone)]
pub struct CalendarService {
    db: Db,
    sync: CalendarSync,
}

impl CalendarService {
    pub fn new(db: Db, sync: CalendarSync) -> Self {
        CalendarService { db, sync }
    }

    pub fn sync(&self) -> &CalendarSync {
        &self.sync
    }

    /// The calendar connectors a user can connect with a form (OAuth ones come with their
    /// mailbox: connecting Gmail or Outlook by OAuth also connects its calendars).
    pub fn connectors(&self) -> Vec<&Descriptor> {
        self.sync.registry().calendars().iter().map(|c| c.descriptor()).collect()
    }

    /// Signs in and lists the calendars before saving anything; then saves the account with
    /// its sealed login, records its calendars, and starts syncing.
    #[instrument(skip_all, fields(connector = %input.connector))]
    pub async fn connect(&self, viewer: &Viewer, input: ConnectCalendarInput) -> Result<CalendarAccount> {
        let connector =
            self.sync.registry().calendar(input.connector.trim()).cloned().ok_or_else(|| {
                Error::invalid("connector", format!("no calendar connector {:?}; see calendarConnectors", input.connector))
            })?;
        if connector.oauth().is_some() {
            return Err(Error::invalid(
                "connector",
                "this connector signs in at its provider: connect its mailbox with startMailboxAuthorization, which connects its calendars too",
            ));
        }
        let username = input.username.trim();
        if username.is_empty() || username.len() > 254 {
            return Err(Error::invalid("username", "must be 1 to 254 characters"));
        }
        if input.password.is_empty() {
            return Err(Error::invalid("password", "must not be empty"));
        }
        if input.password.len() > 1024 {
            return Err(Error::invalid("password", "must be at most 1024 bytes"));
        }
        let settings = connector.validate(&input.settings).map_err(|e| Error::invalid(format!("settings.{}", e.field), e.message))?;
        let account = Account {
            address: username.to_owned(),
            settings: settings.clone(),
            credentials: Credentials::Password { username: username.to_owned(), password: Secret::new(input.password.clone()) },
        };
        // Really sign in and read the calendars: wrong credentials, or a URL that is not a
        // calendar server, fail here and nothing is saved.
        let timeout = self.sync.settings().timeout;
        let listed = tokio::time::timeout(timeout, async {
            let mut session = connector.open(&account).await?;
            let listed = session.calendars().await;
            session.close().await;
            listed
        })
        .await
        .unwrap_or_else(|_| {
            Err(ConnectorError::Unreachable { message: format!("the server did not answer within {} s", timeout.as_secs()) })
        })
        .map_err(|e| connect_error(&e, connector.descriptor()))?;

        let kind = connector.descriptor().kind;
        let settings_text = serde_json::Value::Object(settings).to_string();
        let login = StoredLogin { username: username.to_owned(), password: input.password };
        let owner = match store::find_login(&self.db, viewer.account_id(), kind, username).await? {
            Some(existing) => {
                let sealed = login.seal(self.sync.secrets(), existing.calendar_account_id)?;
                store::reconnect_account(&self.db, existing.calendar_account_id, &settings_text, Some(&sealed)).await?;
                existing
            }
            None => {
                let a = CalendarAccount {
                    calendar_account_id: CalendarAccountId::new(),
                    account_id: viewer.account_id(),
                    connector: kind.to_owned(),
                    username: username.to_owned(),
                    settings: settings_text,
                    mailbox_id: None,
                    status: CalendarAccountStatus::Connecting.stored_name().to_owned(),
                    status_reason: Some("connected; the first sync is starting".into()),
                    last_error: None,
                    last_synced_at: None,
                    created_at: Utc::now(),
                };
                let sealed = login.seal(self.sync.secrets(), a.calendar_account_id)?;
                store::insert_account(&self.db, &a, Some(&sealed)).await.map_err(|e| {
                    if store::LOGIN_KEY.violated_by(&e) {
                        Error::conflict("username", "this calendar account is being connected already")
                    } else {
                        e.into()
                    }
                })?;
                a
            }
        };
        let mut tx = self.db.begin().await?;
        store::reconcile_calendars(&mut tx, &owner, &listed).await?;
        tx.commit().await?;
        super::sync::choose_default_primary(&self.db, viewer.account_id()).await?;
        self.sync.wake();
        tracing::info!(calendar_account_id = %owner.calendar_account_id.0, calendars = listed.len(), "calendar account connected");
        store::find_account(&self.db, owner.calendar_account_id).await?.ok_or(Error::NotFound("calendar account"))
    }

    pub async fn accounts(&self, viewer: &Viewer) -> Result<Vec<CalendarAccount>> {
        Ok(store::accounts_of(&self.db, viewer.account_id()).await?)
    }

    pub async fn calendars(&self, account_id: AccountId) -> Result<Vec<Calendar>> {
        Ok(store::calendars_of(&self.db, account_id).await?)
    }

    pub async fn calendars_in(&self, id: CalendarAccountId) -> Result<Vec<Calendar>> {
        Ok(store::calendars_in(&self.db, id).await?)
    }

    pub async fn account(&self, id: CalendarAccountId) -> Result<Option<CalendarAccount>> {
        Ok(store::find_account(&self.db, id).await?)
    }

    /// One of the viewer's calendars, or an input error on `field`.
    async fn own_calendar(&self, viewer: &Viewer, field: String, raw: &str) -> Result<Calendar> {
        let id = CalendarId::parse(field.clone(), raw)?;
        match store::find_calendar(&self.db, id).await? {
            Some(c) if c.account_id == viewer.account_id() => Ok(c),
            _ => Err(Error::invalid(field, "not one of your calendars")),
        }
    }

    /// Appointments are written to this calendar from now on (it must be writable). Writes
    /// waiting for a calendar go ahead.
    pub async fn set_primary(&self, viewer: &Viewer, raw_id: &str) -> Result<Calendar> {
        let calendar = self.own_calendar(viewer, "id".into(), raw_id).await?;
        if !calendar.writable {
            return Err(Error::invalid("id", "this calendar is read-only: appointments cannot be written to it"));
        }
        let mut tx = self.db.begin().await?;
        store::set_primary(&mut tx, viewer.account_id(), calendar.calendar_id).await?;
        store::drop_unsynced(&mut tx, viewer.account_id()).await?;
        tx.commit().await?;
        store::retry_writes_now(&self.db, viewer.account_id()).await?;
        self.sync.wake();
        store::find_calendar(&self.db, calendar.calendar_id).await?.ok_or(Error::NotFound("calendar"))
    }

    /// Exactly these calendars are checked for conflicts (with the primary one).
    pub async fn set_conflicts(&self, viewer: &Viewer, raw_ids: &[String]) -> Result<Vec<Calendar>> {
        if raw_ids.len() > MAX_CONFLICT_CALENDARS {
            return Err(Error::invalid("ids", format!("at most {MAX_CONFLICT_CALENDARS} calendars")));
        }
        let mut ids: Vec<CalendarId> = Vec::with_capacity(raw_ids.len());
        for (i, raw) in raw_ids.iter().enumerate() {
            let c = self.own_calendar(viewer, format!("ids[{i}]"), raw).await?;
            if !ids.contains(&c.calendar_id) {
                ids.push(c.calendar_id);
            }
        }
        let mut tx = self.db.begin().await?;
        store::set_conflicts(&mut tx, viewer.account_id(), &ids).await?;
        store::drop_unsynced(&mut tx, viewer.account_id()).await?;
        tx.commit().await?;
        // Newly chosen calendars are read at once, not at the next poll.
        store::sync_accounts_soon(&self.db, viewer.account_id()).await?;
        self.sync.wake();
        self.calendars(viewer.account_id()).await
    }

    /// Syncs one of the viewer's accounts now and returns it as it then stands.
    pub async fn sync_now(&self, viewer: &Viewer, raw_id: &str) -> Result<CalendarAccount> {
        let a = self.own_account(viewer, raw_id).await?;
        self.sync.sync_account(&a, super::sync::SyncReason::Asked).await;
        store::find_account(&self.db, a.calendar_account_id).await?.ok_or(Error::NotFound("calendar account"))
    }

    /// Disconnects an account: its calendars and their events go; the login is deleted.
    pub async fn disconnect(&self, viewer: &Viewer, raw_id: &str) -> Result<bool> {
        let a = self.own_account(viewer, raw_id).await?;
        if a.mailbox_id.is_some() {
            return Err(Error::invalid(
                "id",
                "this account shares its mailbox's sign-in: disconnect the mailbox to disconnect its calendars",
            ));
        }
        Ok(store::delete_account(&self.db, viewer.account_id(), a.calendar_account_id).await?)
    }

    async fn own_account(&self, viewer: &Viewer, raw_id: &str) -> Result<CalendarAccount> {
        let id = CalendarAccountId::parse("id", raw_id)?;
        match store::find_account(&self.db, id).await? {
            Some(a) if a.account_id == viewer.account_id() => Ok(a),
            _ => Err(Error::invalid("id", "not one of your calendar accounts")),
        }
    }

    /// Every occurrence in `[from, to)` of the events of the account's synced calendars
    /// (primary and conflict), in order. All-day and floating events are placed in `zone`.
    pub async fn agenda(&self, account_id: AccountId, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> Result<Vec<AgendaEntry>> {
        Ok(agenda(&self.db, account_id, from, to, zone).await?)
    }

    /// The account's busy time in `[from, to)` from its primary and conflict calendars.
    pub async fn busy(&self, account_id: AccountId, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> Result<Vec<Span>> {
        Ok(self
            .agenda(account_id, from, to, zone)
            .await?
            .into_iter()
            .filter(|e| e.occurrence.busy)
            .map(|e| Span { start: e.occurrence.start.max(from), end: e.occurrence.end.min(to) })
            .filter(|s| s.start < s.end)
            .collect())
    }
}

/// Every occurrence in `[from, to)` of the events of the account's synced calendars, in
/// order (also what the daily summary lists).
pub async fn agenda(
    db: &Db,
    account_id: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone: Tz,
) -> Result<Vec<AgendaEntry>, sqlx::Error> {
    let calendars: Vec<CalendarId> =
        store::calendars_of(db, account_id).await?.into_iter().filter(Calendar::synced).map(|c| c.calendar_id).collect();
    let stored = store::events_overlapping(db, &calendars, from.timestamp(), to.timestamp()).await?;
    let mut out = Vec::new();
    for e in stored {
        let parsed: ParsedObject = match serde_json::from_str(&e.parsed) {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(error = %err, "a stored calendar object no longer reads; it is skipped until the next full sync");
                continue;
            }
        };
        for occurrence in recurrence::occurrences(&parsed, from, to, zone) {
            out.push(AgendaEntry { calendar_id: e.calendar_id, uid: e.uid.clone(), occurrence, location: parsed.location.clone() });
        }
    }
    out.sort_by(|a, b| (a.occurrence.start, a.occurrence.end, &a.uid).cmp(&(b.occurrence.start, b.occurrence.end, &b.uid)));
    Ok(out)
}

/// A failed sign-in as the client sees it: typed, naming the input most likely wrong.
fn connect_error(e: &ConnectorError, form: &Descriptor) -> Error {
    let setting = |key: &str| -> String { if form.field(key).is_some() { format!("settings.{key}") } else { "settings".into() } };
    match e {
        ConnectorError::Settings(f) => Error::invalid(format!("settings.{}", f.field), f.message.clone()),
        ConnectorError::Authentication { .. } => {
            Error::Connector { code: e.code(), field: "password".into(), message: "the server refused the username or password".into() }
        }
        ConnectorError::UntrustedCertificate { certificate, .. } => Error::UntrustedCertificate {
            field: setting("url").into(),
            message: e.to_string(),
            certificate: crate::accounts::trust::shown(certificate),
        },
        ConnectorError::Unreachable { .. } | ConnectorError::Tls { .. } => {
            Error::Connector { code: e.code(), field: setting("url").into(), message: e.to_string() }
        }
        _ => Error::Connector { code: e.code(), field: setting("url").into(), message: e.to_string() },
    }
}
