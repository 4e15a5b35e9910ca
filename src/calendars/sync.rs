//! The calendar worker: it polls every connected calendar account (its calendars, then the
//! events of the primary and conflict calendars), and writes the appointments waiting for a
//! user's primary calendar. One loop for all accounts; [`CalendarSync::wake`] runs it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use concierge_connector_sdk::{
    Account, CalendarSession, ConnectorError, Credentials, KnownObject, Secret, Settings, SharedCalendarConnector, SyncToken, ical,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::model::{
    Appointment, AppointmentWrite, Calendar, CalendarAccount, CalendarAccountId, CalendarAccountStatus, CalendarStatus, StoredEvent,
};
use super::recurrence;
use super::store;
use crate::accounts::credentials::SharedMailboxCredentials;
use crate::accounts::registry::Registry;
use crate::clock::{SharedClock, SystemClock};
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::i18n::text;
use crate::jobs::claims;
use crate::jobs::lease::{self, Claim};
use crate::jobs::retry::Retry;
use crate::jobs::worker::{self, Pace, Worker};
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService};

#[derive(Clone, Copy, Debug)]
pub struct CalendarSettings {
    /// How often every account is polled for changes (`CONCIERGE_CALENDAR_POLL_SECS`), by
    /// whichever process gets to it first.
    pub poll: Duration,
    /// How long one process's claim on an account's sync lasts unless renewed (it is renewed
    /// every third of this while the sync runs): a process that died leaves the account to
    /// the others after at most this (`CONCIERGE_CALENDAR_LEASE_SECS`).
    pub lease: Duration,
    /// The first retry of a failed appointment write; each further one waits twice as long,
    /// up to an hour (`CONCIERGE_CALENDAR_RETRY_MS`).
    pub retry: Duration,
    /// Longest wait for a server's answer.
    pub timeout: Duration,
    /// This process as a lease holder ([`crate::instance::Instance`]).
    pub process: uuid::Uuid,
}

/// A CalDAV-style account's own login, sealed at rest and bound to the account's id.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct StoredLogin {
    pub username: String,
    pub password: String,
}

impl StoredLogin {
    pub fn seal(&self, secrets: &SecretBox, id: CalendarAccountId) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(self).map_err(anyhow::Error::from)?;
        Ok(secrets.seal(&plain, id.0.as_bytes())?)
    }

    fn open(secrets: &SecretBox, id: CalendarAccountId, sealed: &[u8]) -> Result<StoredLogin> {
        let plain = secrets.open(sealed, id.0.as_bytes())?;
        Ok(serde_json::from_slice(&plain).map_err(anyhow::Error::from)?)
    }
}

#[derive(Clone)]
pub struct CalendarSync {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    secrets: SecretBox,
    registry: Registry,
    mail: SharedMailboxCredentials,
    notifications: NotificationService,
    settings: CalendarSettings,
    wake: Notify,
    /// This process, as the holder of accounts' sync leases.
    process: uuid::Uuid,
    /// When appointment writes fall due and are retried (leases and polls go by the wall
    /// clock, which other processes share).
    clock: SharedClock,
}

/// The error of an account whose saved credentials do not open (the gateway's secret key
/// changed without `concierge rekey`, or the row was damaged): the server is not to blame.
const UNREADABLE_CREDENTIALS: &str =
    "the saved credentials cannot be read with this gateway's secret key (was it changed without `concierge rekey`?)";

/// At most this many appointment writes per round.
const WRITES_PER_ROUND: i64 = 200;
/// A write waiting for the user to choose a primary calendar is not looked at again until
/// they do (choosing one makes it due at once); this is only a backstop.
const NO_CALENDAR_RETRY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why an account is synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncReason {
    /// Its poll fell due (or it was asked for by a change of its calendars): skipped when
    /// another process synced it since the list was read.
    Due,
    /// The user asked (`syncCalendarAccount`): synced whenever it was last.
    Asked,
}

impl CalendarSync {
    pub fn new(
        db: Db,
        secrets: SecretBox,
        registry: Registry,
        mail: SharedMailboxCredentials,
        notifications: NotificationService,
        settings: CalendarSettings,
        clock: SharedClock,
    ) -> Self {
        let process = settings.process;
        CalendarSync {
            inner: Arc::new(Inner { db, secrets, registry, mail, notifications, settings, wake: Notify::new(), process, clock }),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    pub fn settings(&self) -> CalendarSettings {
        self.inner.settings
    }

    /// Runs a round now (after a connect, a new primary calendar, a booked appointment).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Syncs each account when its poll falls due (and looks at once when woken), and writes
    /// appointments when woken or when a failed write's retry falls due, until `stop`: the
    /// [`Rounds`] worker on the shared worker loop.
    pub async fn run(self, stop: CancellationToken) {
        let rounds = Rounds { sync: self, held_until: Mutex::new(None) };
        // A third of a lease: accounts left by a process that died mid-sync (their poll is
        // still due) are taken over within a lease and a third, even by a process that never
        // saw them held.
        let pace = Pace { clock: &SystemClock, wake: &rounds.sync.inner.wake, recheck: rounds.sync.inner.settings.lease / 3 };
        worker::run(&rounds, pace, stop).await;
    }

    /// Calendars of newly connected OAuth mailboxes linked, then every account whose sync is
    /// due synced, unless another process is syncing it. Returns when the first of those
    /// others' leases runs out.
    pub async fn sync_all(&self) -> Option<chrono::DateTime<Utc>> {
        self.sync_due_accounts().await.1
    }

    /// [`Self::sync_all`], also counting the accounts it looked at and did not find held
    /// elsewhere.
    async fn sync_due_accounts(&self) -> (usize, Option<chrono::DateTime<Utc>>) {
        if let Err(e) = self.link_mailboxes().await {
            tracing::error!(error = ?e, "cannot link mailboxes to their calendars");
        }
        let (mut synced, mut held_until) = (0, None);
        match store::runnable_accounts(&self.inner.db, Utc::now()).await {
            Ok(accounts) => {
                for account in accounts {
                    match self.sync_account(&account, SyncReason::Due).await {
                        Some(until) => held_until = Some(held_until.map_or(until, |t: chrono::DateTime<Utc>| t.min(until))),
                        None => synced += 1,
                    }
                }
            }
            Err(e) => tracing::error!(error = ?e, "cannot list calendar accounts"),
        }
        (synced, held_until)
    }

    /// A mailbox whose connector also serves calendars (one OAuth grant for both) gets a
    /// calendar account sharing its sign-in.
    async fn link_mailboxes(&self) -> Result<()> {
        let kinds: Vec<&str> = self
            .inner
            .registry
            .calendars()
            .iter()
            .map(|c| c.descriptor().kind)
            .filter(|k| self.inner.registry.get(k).is_some_and(|m| m.descriptor().capabilities.calendars))
            .collect();
        for (mailbox_id, account_id, connector, address) in store::unlinked_mailboxes(&self.inner.db, &kinds).await? {
            let a = CalendarAccount {
                calendar_account_id: CalendarAccountId::new(),
                account_id,
                connector,
                username: address,
                settings: "{}".into(),
                mailbox_id: Some(mailbox_id),
                status: CalendarAccountStatus::Connecting.stored_name().to_owned(),
                status_reason: Some("connected with its mailbox".into()),
                last_error: None,
                last_synced_at: None,
                created_at: Utc::now(),
            };
            match store::insert_account(&self.inner.db, &a, None).await {
                Ok(()) => tracing::info!(calendar_account_id = %a.calendar_account_id.0, "calendars linked to a mailbox"),
                // The same login connected by hand already: keep that one.
                Err(e) if store::LOGIN_KEY.violated_by(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The connector and the signed-in identity of an account (its own login, or the OAuth
    /// grant of the mailbox it shares).
    pub async fn account_of(&self, a: &CalendarAccount) -> Result<(SharedCalendarConnector, Account)> {
        let connector = self
            .inner
            .registry
            .calendar(&a.connector)
            .cloned()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no calendar connector {:?}", a.connector)))?;
        let settings: Settings = serde_json::from_str(&a.settings).map_err(anyhow::Error::from)?;
        let credentials = match a.mailbox_id {
            Some(mailbox_id) => self.inner.mail.credentials(mailbox_id).await?,
            None => {
                let sealed = store::credentials(&self.inner.db, a.calendar_account_id).await?.ok_or(Error::NotFound("calendar account"))?;
                let login = StoredLogin::open(&self.inner.secrets, a.calendar_account_id, &sealed)?;
                Credentials::Password { username: login.username, password: Secret::new(login.password) }
            }
        };
        Ok((connector, Account { address: a.username.clone(), settings, credentials }))
    }

    async fn open(&self, a: &CalendarAccount) -> std::result::Result<Box<dyn CalendarSession>, ConnectorError> {
        let (connector, account) = self.account_of(a).await.map_err(|e| {
            tracing::warn!(error = ?e, calendar_account_id = %a.calendar_account_id.0, "cannot open a calendar account");
            if crate::crypto::Unreadable::caused(&e) {
                ConnectorError::Authentication { message: UNREADABLE_CREDENTIALS.into() }
            } else {
                ConnectorError::Protocol { message: format!("cannot open the account: {}", e.message()) }
            }
        })?;
        match tokio::time::timeout(self.inner.settings.timeout, connector.open(&account)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectorError::Unreachable { message: "signing in timed out".into() }),
        }
    }

    /// Syncs one account: its list of calendars, then the events of those synced; the next
    /// poll is then due one poll interval after this sync began, for every process. Returns
    /// when another process's lease on it runs out, when that process is syncing it.
    pub async fn sync_account(&self, a: &CalendarAccount, why: SyncReason) -> Option<chrono::DateTime<Utc>> {
        let id = a.calendar_account_id;
        let (db, process, length) = (&self.inner.db, self.inner.process, self.inner.settings.lease);
        let started = Utc::now();
        match lease::claim(db, lease::CALENDAR_ACCOUNT, id.0, process, started, length).await {
            Ok(Claim::Taken) => {}
            Ok(Claim::HeldUntil(until)) => {
                tracing::debug!(calendar_account_id = %id.0, "another process is syncing this calendar account");
                return Some(until);
            }
            Ok(Claim::Missing) => return None,
            Err(e) => {
                tracing::error!(error = ?e, "cannot take a calendar account's sync lease");
                return None;
            }
        }
        // Another process may have synced it between the list and the claim.
        if why == SyncReason::Due {
            match store::sync_due(db, id, started).await {
                Ok(Some(true)) => {}
                Ok(Some(false) | None) => {
                    tracing::debug!(calendar_account_id = %id.0, "another process synced this calendar account already");
                    if let Err(e) = lease::release(db, lease::CALENDAR_ACCOUNT, id.0, process).await {
                        tracing::warn!(error = ?e, "cannot release a calendar account's sync lease");
                    }
                    return None;
                }
                // Synced anyway: one sync too many is better than one too few.
                Err(e) => tracing::warn!(error = ?e, "cannot read whether a calendar account's sync is due"),
            }
        }
        // Renewed while the sync runs; lost (this process stalled past it and another took
        // over), the sync stops where it is: each calendar's changes commit with its token.
        let held = lease::Held::renew(db.clone(), lease::CALENDAR_ACCOUNT, id.0, process, length);
        let finished = tokio::select! {
            () = self.sync_leased(a) => true,
            () = held.lost().cancelled() => false,
        };
        drop(held);
        if finished {
            let next = started + chrono::Duration::from_std(self.inner.settings.poll).unwrap_or(chrono::Duration::minutes(5));
            if let Err(e) = store::set_sync_due(db, id, Some(next)).await {
                tracing::warn!(error = ?e, "cannot record when a calendar account's next sync is due");
            }
        }
        if let Err(e) = lease::release(db, lease::CALENDAR_ACCOUNT, id.0, process).await {
            tracing::warn!(error = ?e, "cannot release a calendar account's sync lease");
        }
        None
    }

    /// [`Self::sync_account`] once this process holds the lease.
    async fn sync_leased(&self, a: &CalendarAccount) {
        let id = a.calendar_account_id;
        let mut session = match self.open(a).await {
            Ok(s) => s,
            Err(e) => return self.account_failed(a, &e).await,
        };
        let result = self.sync_session(a, session.as_mut()).await;
        session.close().await;
        match result {
            Ok(()) => {
                let status = CalendarAccountStatus::Live.stored_name();
                if let Err(e) = store::set_account_status(&self.inner.db, id, status, "synced", None, Some(Utc::now())).await {
                    tracing::error!(error = ?e, calendar_account_id = %id.0, "cannot record a calendar sync");
                }
            }
            Err(e) => self.account_failed(a, &e).await,
        }
    }

    async fn sync_session(&self, a: &CalendarAccount, session: &mut dyn CalendarSession) -> std::result::Result<(), ConnectorError> {
        let remote = session.calendars().await?;
        let removed = {
            let db_err = |e: sqlx::Error| ConnectorError::Protocol { message: format!("database: {e}") };
            let mut tx = self.inner.db.begin().await.map_err(db_err)?;
            let removed = store::reconcile_calendars(&mut tx, a, &remote).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            removed
        };
        for gone in removed.iter().filter(|c| c.synced()) {
            self.calendar_removed(a, gone).await;
        }
        match choose_default_primary(&self.inner.db, a.account_id).await {
            // Appointments waiting for a calendar can go now.
            Ok(true) => self.wake(),
            Ok(false) => {}
            Err(e) => tracing::error!(error = ?e, "cannot choose a default primary calendar"),
        }
        let calendars = store::calendars_in(&self.inner.db, a.calendar_account_id).await.unwrap_or_default();
        for calendar in calendars.iter().filter(|c| c.synced()) {
            match self.sync_calendar(calendar, session).await {
                Ok(()) => {}
                Err(ConnectorError::Gone { .. }) => {
                    // Deleted on the server between listing and reading: drop it as if unlisted.
                    if let Ok(mut tx) = self.inner.db.begin().await {
                        let done = store::delete_calendar(&mut tx, calendar.calendar_id).await;
                        if done.is_ok() && tx.commit().await.is_ok() {
                            self.calendar_removed(a, calendar).await;
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e,
                        ConnectorError::Authentication { .. }
                            | ConnectorError::Unreachable { .. }
                            | ConnectorError::Tls { .. }
                            | ConnectorError::UntrustedCertificate { .. }
                    ) =>
                {
                    return Err(e);
                }
                Err(e) => {
                    let reason = format!("cannot read its events: {e}");
                    let _ = store::set_calendar_status(
                        &self.inner.db,
                        calendar.calendar_id,
                        CalendarStatus::SyncFailed.stored_name(),
                        Some(&reason),
                    )
                    .await;
                }
            }
        }
        Ok(())
    }

    /// Reads what changed in one calendar and stores it with the new sync token.
    async fn sync_calendar(&self, calendar: &Calendar, session: &mut dyn CalendarSession) -> std::result::Result<(), ConnectorError> {
        let db_err = |e: sqlx::Error| ConnectorError::Protocol { message: format!("database: {e}") };
        let known: Vec<KnownObject> = store::known_objects(&self.inner.db, calendar.calendar_id)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|(id, etag)| KnownObject { id, etag })
            .collect();
        let token = calendar.sync_token.clone().map(SyncToken);
        let changes = session.changes(&calendar.remote_id, token.as_ref(), &known).await?;
        let mut stored = Vec::with_capacity(changes.changed.len());
        let mut removed = changes.removed.clone();
        for object in &changes.changed {
            match stored_event(calendar, &object.id, object.etag.clone(), &object.ical) {
                Some(e) => stored.push(e),
                // No readable event in it (a task, or garbage): whatever was stored under its
                // id before is no longer true.
                None => removed.push(object.id.clone()),
            }
        }
        let unreadable = removed.len() - changes.removed.len();
        if unreadable > 0 {
            tracing::warn!(calendar_id = %calendar.calendar_id.0, unreadable, "calendar objects without a readable event were skipped");
        }
        store::apply_changes(
            &self.inner.db,
            calendar.calendar_id,
            &stored,
            &removed,
            changes.complete,
            changes.token.as_ref().map(|t| t.0.as_str()),
            Utc::now(),
        )
        .await
        .map_err(db_err)
    }

    async fn account_failed(&self, a: &CalendarAccount, e: &ConnectorError) {
        let id = a.calendar_account_id;
        let (status, reason) = match e {
            ConnectorError::Authentication { message } if message == UNREADABLE_CREDENTIALS => {
                (CalendarAccountStatus::NeedsReauth, "the gateway cannot read the saved credentials: connect the account again")
            }
            ConnectorError::Authentication { .. } => {
                (CalendarAccountStatus::NeedsReauth, "the server refused the credentials: connect the account again")
            }
            _ => (CalendarAccountStatus::Error, "the last sync failed; it is retried at the next poll"),
        };
        let message = e.to_string();
        if let Err(db) = store::set_account_status(&self.inner.db, id, status.stored_name(), reason, Some(&message), None).await {
            tracing::error!(error = ?db, calendar_account_id = %id.0, "cannot record a calendar account's status");
        }
        tracing::warn!(calendar_account_id = %id.0, code = e.code(), "calendar sync failed");
        if status == CalendarAccountStatus::NeedsReauth && a.status() != CalendarAccountStatus::NeedsReauth {
            self.notify(a.account_id, "calendar-reauth-title", "calendar-reauth-body", &a.username, &format!("calendar-reauth:{}", id.0))
                .await;
        }
    }

    /// A synced calendar disappeared from the server: its events are gone with it; the user
    /// hears of it (their primary calendar may need choosing again).
    async fn calendar_removed(&self, a: &CalendarAccount, calendar: &Calendar) {
        tracing::info!(calendar_id = %calendar.calendar_id.0, primary = calendar.is_primary, "a synced calendar was removed on the server");
        self.notify(
            a.account_id,
            "calendar-removed-title",
            "calendar-removed-body",
            &calendar.name,
            &format!("calendar-removed:{}", calendar.calendar_id.0),
        )
        .await;
    }

    async fn notify(&self, account_id: crate::identity::model::AccountId, title: &str, body: &str, what: &str, key: &str) {
        let language = match crate::identity::store::find_accounts(&self.inner.db, &[account_id]).await {
            Ok(found) => found.into_iter().next().map(|a| a.language).unwrap_or_else(|| "en".into()),
            Err(_) => "en".into(),
        };
        let notice = Notice {
            dedupe_key: Some(key.to_owned()),
            ..Notice::new(
                account_id,
                NotificationEvent::CalendarError,
                text(&language, title, &[("what", what)]),
                text(&language, body, &[("what", what)]),
            )
        };
        if let Err(e) = self.inner.notifications.notify(notice).await {
            tracing::warn!(error = ?e, "cannot notify about a calendar");
        }
    }

    // --- appointments ---------------------------------------------------------------

    /// Writes (or removes) the appointments whose time has come, one claim at a time; how
    /// many it attempted.
    async fn write_due(&self) -> Result<usize> {
        let due = store::due_writes(&self.inner.db, self.inner.clock.now(), Utc::now(), WRITES_PER_ROUND).await?;
        let mut sessions: HashMap<CalendarAccountId, Box<dyn CalendarSession>> = HashMap::new();
        let mut attempted = 0;
        // Each write is claimed for a lease, renewed while it runs: a write left by a process
        // that died goes back to the others when the lease runs out.
        let (db, process, length) = (&self.inner.db, self.inner.process, self.inner.settings.lease);
        for w in due {
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(length).unwrap_or_default();
            if !store::claim_write(db, &w, now, until, process).await? {
                continue;
            }
            attempted += 1;
            let write = self.write_one(&w, &mut sessions);
            if let Err(e) = claims::while_held(db, claims::APPOINTMENT_WRITE, process, length, Utc::now, write).await {
                tracing::error!(error = ?e, "an appointment write stopped on the database");
            }
        }
        for (_, session) in sessions {
            session.close().await;
        }
        Ok(attempted)
    }

    /// Who organises an appointment the platform named no organiser for: the calendar's
    /// owner, by their login email and shown name (not the CalDAV login, which may be a bare
    /// user name).
    async fn organizer(&self, calendar_account: CalendarAccountId) -> ical::Party {
        let Ok(Some(login)) = store::find_account(&self.inner.db, calendar_account).await else {
            return ical::Party { email: String::new(), name: None };
        };
        match crate::identity::store::find_accounts(&self.inner.db, &[login.account_id]).await.ok().and_then(|mut v| v.pop()) {
            Some(user) => ical::Party { name: Some(user.shown_name()).filter(|n| !n.trim().is_empty()), email: user.email },
            // The user is gone (deleted while the write waited): the login is all there is.
            None => ical::Party { email: login.username, name: None },
        }
    }

    async fn write_one(&self, w: &AppointmentWrite, sessions: &mut HashMap<CalendarAccountId, Box<dyn CalendarSession>>) -> Result<()> {
        let db = &self.inner.db;
        // Where it was written before, if that calendar still exists; else the primary.
        let previous = match w.calendar_id {
            Some(id) => store::find_calendar(db, id).await?,
            None => None,
        };
        let target = match previous.clone() {
            Some(c) => Some(c),
            None => store::primary_of(db, w.account_id).await?,
        };
        let existing = if previous.is_some() { w.remote_id.clone() } else { None };
        if w.cancelled && existing.is_none() {
            // Never written: nothing to remove.
            store::write_done(db, w, None, None).await?;
            return Ok(());
        }
        let Some(calendar) = target else {
            let next = self.inner.clock.now() + chrono::Duration::from_std(NO_CALENDAR_RETRY).unwrap_or_default();
            store::write_failed(db, w, w.attempts, next, "no primary calendar is chosen").await?;
            return Ok(());
        };
        let outcome = self.write_to(w, &calendar, existing.as_deref(), sessions).await;
        match outcome {
            Ok(remote_id) => {
                store::write_done(db, w, Some(calendar.calendar_id), remote_id.as_deref()).await?;
                if calendar.status() == CalendarStatus::WriteFailed
                    && store::failing_writes(db, calendar.calendar_id, w.account_id).await? == 0
                {
                    store::set_calendar_status(db, calendar.calendar_id, CalendarStatus::Ok.stored_name(), None).await?;
                }
                tracing::info!(calendar_id = %calendar.calendar_id.0, cancelled = w.cancelled, "appointment written to a calendar");
            }
            Err(e) => {
                sessions.remove(&calendar.calendar_account_id);
                let attempts = w.attempts.saturating_add(1);
                let delay = retry_delay(self.inner.settings.retry, attempts);
                let next = self.inner.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default();
                let message = e.to_string();
                store::write_failed(db, w, attempts, next, &message).await?;
                let reason = format!("an appointment could not be written ({message}); retrying");
                store::set_calendar_status(db, calendar.calendar_id, CalendarStatus::WriteFailed.stored_name(), Some(&reason)).await?;
                tracing::warn!(calendar_id = %calendar.calendar_id.0, attempts, code = e.code(), "appointment write failed");
                if attempts == 1 {
                    let title: Appointment = serde_json::from_str(&w.appointment).map_err(anyhow::Error::from)?;
                    self.notify(
                        w.account_id,
                        "calendar-write-failed-title",
                        "calendar-write-failed-body",
                        &title.title,
                        &format!("calendar-write:{}:{}", w.appointment_key, w.version),
                    )
                    .await;
                }
            }
        }
        Ok(())
    }

    /// Puts or removes the appointment in `calendar`; the object's id on success.
    async fn write_to(
        &self,
        w: &AppointmentWrite,
        calendar: &Calendar,
        existing: Option<&str>,
        sessions: &mut HashMap<CalendarAccountId, Box<dyn CalendarSession>>,
    ) -> std::result::Result<Option<String>, ConnectorError> {
        if !calendar.writable {
            return Err(ConnectorError::Settings(concierge_connector_sdk::FieldError::new("calendar", "is read-only")));
        }
        let session = match sessions.entry(calendar.calendar_account_id) {
            std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let account = store::find_account(&self.inner.db, calendar.calendar_account_id)
                    .await
                    .map_err(|e| ConnectorError::Protocol { message: format!("database: {e}") })?
                    .ok_or_else(|| ConnectorError::Gone { what: "the calendar's account".into() })?;
                slot.insert(self.open(&account).await?)
            }
        };
        if w.cancelled {
            if let Some(id) = existing {
                session.delete(&calendar.remote_id, id).await?;
                if let Err(e) = store::own_write(&self.inner.db, calendar.calendar_id, id, None).await {
                    tracing::warn!(error = ?e, "the removed appointment stays in the local copy until the next sync");
                }
            }
            return Ok(None);
        }
        let appointment: Appointment =
            serde_json::from_str(&w.appointment).map_err(|e| ConnectorError::Protocol { message: format!("stored appointment: {e}") })?;
        let owner = self.organizer(calendar.calendar_account_id).await;
        let text = ical::appointment(&appointment_ical(&w.uid, w.version, &appointment, owner));
        let receipt = session.put(&calendar.remote_id, &w.uid, &text, existing).await?;
        // Free/busy reads the local copy: it holds the appointment now, not at the next poll.
        // (The etag is the server's, when it said; the next sync refreshes the copy anyway.)
        if let Some(event) = stored_event(calendar, &receipt.id, receipt.etag.clone(), &text)
            && let Err(e) = store::own_write(&self.inner.db, calendar.calendar_id, &receipt.id, Some(&event)).await
        {
            tracing::warn!(error = ?e, "the written appointment is not in the local copy until the next sync");
        }
        Ok(Some(receipt.id))
    }
}

/// The iCalendar form of an appointment: its SEQUENCE is the write's version. Without an
/// organiser named by the platform, the calendar's owner organises it.
fn appointment_ical(uid: &str, version: i64, a: &Appointment, owner: ical::Party) -> ical::AppointmentIcal {
    let party = |p: &super::model::Person| ical::Party { email: p.email.clone(), name: p.name.clone() };
    ical::AppointmentIcal {
        uid: uid.to_owned(),
        sequence: u32::try_from(version).unwrap_or(u32::MAX),
        stamp: Utc::now(),
        start: a.starts_at,
        end: a.ends_at,
        summary: a.title.clone(),
        description: a.description.clone(),
        location: a.location.clone(),
        organizer: a.organizer.as_ref().map(party).unwrap_or(owner),
        attendees: a.attendees.iter().map(party).collect(),
    }
}

/// A user without a primary calendar gets their first writable one, as calendar
/// schedulers do; they can choose another at any time. Waiting writes become due: true when
/// one was chosen (then wake the writer).
pub async fn choose_default_primary(db: &Db, account_id: crate::identity::model::AccountId) -> Result<bool> {
    if store::primary_of(db, account_id).await?.is_some() {
        return Ok(false);
    }
    let calendars = store::calendars_of(db, account_id).await?;
    let Some(first) = calendars.iter().find(|c| c.writable) else { return Ok(false) };
    let mut tx = db.begin().await?;
    store::set_primary(&mut tx, account_id, first.calendar_id).await?;
    tx.commit().await?;
    store::retry_writes_now(db, account_id).await?;
    Ok(true)
}

/// Stepping the appointment writes: every write due now is attempted once. The background
/// loop ([`CalendarSync::run`]) does this between syncs, and wakes when a failed write's retry
/// falls due.
impl Worker for CalendarSync {
    const NAME: &'static str = "appointment writes";

    async fn run_once(&self) -> anyhow::Result<usize> {
        self.write_due().await.map_err(|e| anyhow::anyhow!("{e:?}"))
    }

    async fn next_due(&self) -> Option<chrono::DateTime<Utc>> {
        store::next_retry_at(&self.inner.db).await.ok().flatten()
    }
}

/// The calendar loop as one worker: a pass syncs the accounts whose poll is due (a process
/// that died mid-sync left its account due, so this is also the takeover), then does the
/// appointment writes due. The next pass comes when the next poll or write retry falls due,
/// or when an account another process was syncing is free again.
pub struct Rounds {
    sync: CalendarSync,
    /// When the first account seen held by another process at the last pass is free.
    held_until: Mutex<Option<chrono::DateTime<Utc>>>,
}

impl Worker for Rounds {
    const NAME: &'static str = "calendar sync";

    async fn run_once(&self) -> anyhow::Result<usize> {
        let (synced, held_until) = self.sync.sync_due_accounts().await;
        *self.held_until.lock().unwrap_or_else(|e| e.into_inner()) = held_until;
        let written = self.sync.write_due().await.map_err(|e| anyhow::anyhow!("cannot write appointments: {e:?}"))?;
        Ok(synced + written)
    }

    async fn next_due(&self) -> Option<chrono::DateTime<Utc>> {
        let db = &self.sync.inner.db;
        // Asked a little after the holder's lease runs out, for clocks a little apart.
        let free = *self.held_until.lock().unwrap_or_else(|e| e.into_inner());
        let free = free.map(|at| at + chrono::Duration::milliseconds(100));
        let poll = store::next_sync_due(db, Utc::now()).await.unwrap_or_else(|e| {
            tracing::error!(error = ?e, "cannot read when calendar accounts are due");
            None
        });
        let write = store::next_retry_at(db).await.unwrap_or_else(|e| {
            tracing::error!(error = ?e, "cannot read when appointment writes are due");
            None
        });
        [free, poll, write].into_iter().flatten().min()
    }
}

/// The retry after `attempts` failures: `base`, doubling, at most an hour, jittered
/// ([`Retry`]).
fn retry_delay(base: Duration, attempts: i32) -> Duration {
    Retry::Doubling { base, cap: Duration::from_secs(3600) }.delay(Retry::failures(attempts).max(1)).unwrap_or(base)
}

/// One synced object as stored: parsed once, with the span free/busy reads by. `None` when
/// it holds no readable event.
pub fn stored_event(calendar: &Calendar, remote_id: &str, etag: Option<String>, text: &str) -> Option<StoredEvent> {
    let parsed = ical::parse_object(text).ok()?;
    let (start, end) = recurrence::span(&parsed);
    let recurring = parsed.series.rule.is_some() || !parsed.series.rdates.is_empty();
    Some(StoredEvent {
        calendar_id: calendar.calendar_id,
        remote_id: remote_id.to_owned(),
        etag,
        uid: parsed.uid.clone(),
        summary: parsed.summary.clone(),
        span_start: start.timestamp(),
        span_end: end.map(|e| e.timestamp()),
        recurring,
        parsed: serde_json::to_string(&parsed).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_an_hour() {
        let base = Duration::from_secs(30);
        let within = |d: Duration, planned: u64| d >= Duration::from_secs(planned) && d <= Duration::from_secs(planned * 6 / 5);
        assert!(within(retry_delay(base, 1), 30));
        assert!(within(retry_delay(base, 4), 240));
        assert!(within(retry_delay(base, 12), 3600));
    }
}
