//! All calendar SQL: accounts, their calendars, the synced events, and the appointment
//! writes waiting for a calendar.

use chrono::{DateTime, Utc};
use concierge_connector_sdk::RemoteCalendar;

use super::model::{AppointmentWrite, Calendar, CalendarAccount, CalendarAccountId, CalendarId, StoredEvent};
use crate::accounts::model::MailboxId;
use crate::db::placeholders;
use crate::db::{Db, Tx, UniqueKey};

/// A user connects a login through a connector once.
pub const LOGIN_KEY: UniqueKey = UniqueKey {
    name: "calendar_account_login_key",
    columns: "calendar_account.account_id, calendar_account.connector, calendar_account.username",
};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

const ACCOUNT_COLUMNS: &str = "calendar_account_id, account_id, connector, username, settings, mailbox_id, status, status_reason, \
    last_error, last_synced_at, created_at";
const CALENDAR_COLUMNS: &str = "calendar_id, calendar_account_id, account_id, remote_id, name, colour, time_zone, writable, is_primary, \
    check_conflicts, sync_token, status, status_reason, last_synced_at";
const EVENT_COLUMNS: &str = "calendar_id, remote_id, etag, uid, summary, span_start, span_end, recurring, parsed";
const WRITE_COLUMNS: &str =
    "account_id, appointment_key, uid, cancelled, appointment, version, calendar_id, remote_id, attempts, last_error";

// --- accounts -----------------------------------------------------------------

pub async fn insert_account(db: &Db, a: &CalendarAccount, credentials: Option<&[u8]>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO calendar_account (calendar_account_id, account_id, connector, username, settings, credentials, mailbox_id, \
           status, status_reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(a.calendar_account_id)
        .bind(a.account_id)
        .bind(&a.connector)
        .bind(&a.username)
        .bind(&a.settings)
        .bind(credentials)
        .bind(a.mailbox_id)
        .bind(&a.status)
        .bind(&a.status_reason)
        .bind(a.created_at)
        .execute(p)
        .await
        .map(drop))
}

/// New settings and credentials for an account connected again; its sync starts over.
pub async fn reconnect_account(db: &Db, id: CalendarAccountId, settings: &str, credentials: Option<&[u8]>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE calendar_account SET settings = $2, credentials = $3, status = 'CONNECTING', status_reason = 'signed in again', \
           last_error = NULL, sync_due_at = NULL WHERE calendar_account_id = $1")
        .bind(id)
        .bind(settings)
        .bind(credentials)
        .execute(p)
        .await
        .map(drop))
}

pub async fn find_account(db: &Db, id: CalendarAccountId) -> Result<Option<CalendarAccount>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM calendar_account WHERE calendar_account_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

pub async fn find_login(db: &Db, account_id: AccountId, connector: &str, username: &str) -> Result<Option<CalendarAccount>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM calendar_account WHERE account_id = $1 AND connector = $2 AND username = $3");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).bind(connector).bind(username).fetch_optional(p).await)
}

pub async fn accounts_of(db: &Db, account_id: AccountId) -> Result<Vec<CalendarAccount>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM calendar_account WHERE account_id = $1 ORDER BY calendar_account_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).fetch_all(p).await)
}

/// Accounts whose sync runs (not waiting for the user to sign in again).
pub async fn runnable_accounts(db: &Db, now: DateTime<Utc>) -> Result<Vec<CalendarAccount>, sqlx::Error> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM calendar_account WHERE status <> 'NEEDS_REAUTH' \
           AND (sync_due_at IS NULL OR sync_due_at <= $1) ORDER BY calendar_account_id"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(now).fetch_all(p).await)
}

/// The next time after `now` an account's poll falls due (accounts due already are listed by
/// [`runnable_accounts`]; those another process is syncing come back when its lease runs out).
pub async fn next_sync_due(db: &Db, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar(
        "SELECT MIN(sync_due_at) FROM calendar_account WHERE status <> 'NEEDS_REAUTH' AND sync_due_at > $1")
        .bind(now)
        .fetch_one(p)
        .await)
}

/// Whether the account's sync is due at `now` (None: the account is gone). Read again once a
/// process holds the lease: another may have synced it since the list was read.
pub async fn sync_due(db: &Db, id: CalendarAccountId, now: DateTime<Utc>) -> Result<Option<bool>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar(
        "SELECT sync_due_at IS NULL OR sync_due_at <= $2 FROM calendar_account WHERE calendar_account_id = $1")
        .bind(id)
        .bind(now)
        .fetch_optional(p)
        .await)
}

/// The account's next sync falls due at `at`, or at once (None).
pub async fn set_sync_due(db: &Db, id: CalendarAccountId, at: Option<DateTime<Utc>>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE calendar_account SET sync_due_at = $2 WHERE calendar_account_id = $1")
        .bind(id)
        .bind(at)
        .execute(p)
        .await
        .map(drop))
}

/// Every calendar account of the user is synced at the next round (its choice of calendars
/// changed).
pub async fn sync_accounts_soon(db: &Db, account_id: AccountId) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE calendar_account SET sync_due_at = NULL WHERE account_id = $1")
        .bind(account_id)
        .execute(p)
        .await
        .map(drop))
}

/// Mailboxes of these connector kinds that have no calendar account yet: `(mailbox, user,
/// address)`.
pub async fn unlinked_mailboxes(db: &Db, kinds: &[&str]) -> Result<Vec<(MailboxId, AccountId, String, String)>, sqlx::Error> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT m.mailbox_id, m.account_id, m.connector, m.email_address FROM mailbox m WHERE m.connector IN ({}) \
           AND NOT EXISTS (SELECT 1 FROM calendar_account c WHERE c.mailbox_id = m.mailbox_id)",
        placeholders(1, kinds.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for k in kinds {
            q = q.bind(*k);
        }
        q.fetch_all(p).await
    })
}

pub async fn credentials(db: &Db, id: CalendarAccountId) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let found: Option<Option<Vec<u8>>> = on_pool!(db, p => sqlx::query_scalar("SELECT credentials FROM calendar_account WHERE calendar_account_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(found.flatten())
}

pub async fn account_for_mailbox(db: &Db, mailbox_id: MailboxId) -> Result<Option<CalendarAccount>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM calendar_account WHERE mailbox_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(mailbox_id).fetch_optional(p).await)
}

/// The mailbox was signed in again: a calendar account sharing its grant that was waiting for
/// that syncs again.
pub async fn mailbox_reauthorized(db: &Db, mailbox_id: MailboxId) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE calendar_account SET status = 'CONNECTING', status_reason = 'its mailbox was signed in again', last_error = NULL, \
           sync_due_at = NULL WHERE mailbox_id = $1 AND status = 'NEEDS_REAUTH'")
        .bind(mailbox_id)
        .execute(p)
        .await
        .map(drop))
}

/// Records where the account's sync stands. `synced_at` is set after a good sync.
pub async fn set_account_status(
    db: &Db,
    id: CalendarAccountId,
    status: &str,
    reason: &str,
    last_error: Option<&str>,
    synced_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE calendar_account SET status = $2, status_reason = $3, last_error = $4, last_synced_at = COALESCE($5, last_synced_at) \
         WHERE calendar_account_id = $1")
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(last_error)
        .bind(synced_at)
        .execute(p)
        .await
        .map(drop))
}

pub async fn delete_account(db: &Db, account_id: AccountId, id: CalendarAccountId) -> Result<bool, sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM calendar_account WHERE calendar_account_id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected() > 0))
}

// --- calendars ----------------------------------------------------------------

pub async fn calendars_of(db: &Db, account_id: AccountId) -> Result<Vec<Calendar>, sqlx::Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendar WHERE account_id = $1 ORDER BY calendar_account_id, name, calendar_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).fetch_all(p).await)
}

pub async fn calendars_in(db: &Db, calendar_account_id: CalendarAccountId) -> Result<Vec<Calendar>, sqlx::Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendar WHERE calendar_account_id = $1 ORDER BY name, calendar_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(calendar_account_id).fetch_all(p).await)
}

pub async fn find_calendar(db: &Db, id: CalendarId) -> Result<Option<Calendar>, sqlx::Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendar WHERE calendar_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

pub async fn primary_of(db: &Db, account_id: AccountId) -> Result<Option<Calendar>, sqlx::Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendar WHERE account_id = $1 AND is_primary");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).fetch_optional(p).await)
}

/// Brings an account's calendars in line with the server's list: new ones are added, known
/// ones take the server's name, colour, time zone and rights, and the others are removed
/// (their events with them). Returns the removed ones.
pub async fn reconcile_calendars(tx: &mut Tx, owner: &CalendarAccount, remote: &[RemoteCalendar]) -> Result<Vec<Calendar>, sqlx::Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendar WHERE calendar_account_id = $1");
    let known: Vec<Calendar> =
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(owner.calendar_account_id).fetch_all(c).await)?;
    for r in remote {
        if let Some(k) = known.iter().find(|k| k.remote_id == r.id) {
            on_tx!(tx, c => sqlx::query("UPDATE calendar SET name = $2, colour = $3, time_zone = $4, writable = $5 WHERE calendar_id = $1")
                .bind(k.calendar_id)
                .bind(&r.name)
                .bind(&r.colour)
                .bind(&r.time_zone)
                .bind(r.writable)
                .execute(c)
                .await.map(drop))?;
        } else {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO calendar (calendar_id, calendar_account_id, account_id, remote_id, name, colour, time_zone, writable, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'OK')")
                .bind(CalendarId::new())
                .bind(owner.calendar_account_id)
                .bind(owner.account_id)
                .bind(&r.id)
                .bind(&r.name)
                .bind(&r.colour)
                .bind(&r.time_zone)
                .bind(r.writable)
                .execute(c)
                .await.map(drop))?;
        }
    }
    let removed: Vec<Calendar> = known.into_iter().filter(|k| !remote.iter().any(|r| r.id == k.remote_id)).collect();
    for gone in &removed {
        delete_calendar(tx, gone.calendar_id).await?;
    }
    Ok(removed)
}

pub async fn delete_calendar(tx: &mut Tx, id: CalendarId) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("DELETE FROM calendar WHERE calendar_id = $1").bind(id).execute(c).await.map(drop))
}

/// Makes `id` the account's only primary calendar.
pub async fn set_primary(tx: &mut Tx, account_id: AccountId, id: CalendarId) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE calendar SET is_primary = FALSE WHERE account_id = $1 AND is_primary AND calendar_id <> $2")
        .bind(account_id)
        .bind(id)
        .execute(c)
        .await.map(drop))?;
    on_tx!(tx, c => sqlx::query("UPDATE calendar SET is_primary = TRUE WHERE calendar_id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(c)
        .await
        .map(drop))
}

/// Exactly `ids` (all the account's) are checked for conflicts.
pub async fn set_conflicts(tx: &mut Tx, account_id: AccountId, ids: &[CalendarId]) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE calendar SET check_conflicts = FALSE WHERE account_id = $1 AND check_conflicts")
        .bind(account_id)
        .execute(c)
        .await.map(drop))?;
    if ids.is_empty() {
        return Ok(());
    }
    let sql =
        format!("UPDATE calendar SET check_conflicts = TRUE WHERE account_id = $1 AND calendar_id IN ({})", placeholders(2, ids.len()));
    on_tx!(tx, c => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(account_id);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(c).await.map(drop)
    })
}

/// Forgets the events of the account's calendars that are no longer synced (neither primary
/// nor checked for conflicts), and their sync tokens.
pub async fn drop_unsynced(tx: &mut Tx, account_id: AccountId) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "DELETE FROM calendar_event WHERE calendar_id IN \
           (SELECT calendar_id FROM calendar WHERE account_id = $1 AND NOT is_primary AND NOT check_conflicts)")
        .bind(account_id)
        .execute(c)
        .await.map(drop))?;
    on_tx!(tx, c => sqlx::query("UPDATE calendar SET sync_token = NULL, last_synced_at = NULL WHERE account_id = $1 AND NOT is_primary AND NOT check_conflicts")
        .bind(account_id)
        .execute(c)
        .await
        .map(drop))
}

pub async fn set_calendar_status(db: &Db, id: CalendarId, status: &str, reason: Option<&str>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE calendar SET status = $2, status_reason = $3 WHERE calendar_id = $1")
        .bind(id)
        .bind(status)
        .bind(reason)
        .execute(p)
        .await
        .map(drop))
}

// --- events -------------------------------------------------------------------

/// `(remote_id, etag)` of every object held for the calendar.
pub async fn known_objects(db: &Db, id: CalendarId) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as("SELECT remote_id, etag FROM calendar_event WHERE calendar_id = $1").bind(id).fetch_all(p).await)
}

/// One sync's result for a calendar, in one transaction with its new token: a complete
/// listing replaces everything held; otherwise changed objects are upserted and removed
/// ones deleted.
pub async fn apply_changes(
    db: &Db,
    id: CalendarId,
    changed: &[StoredEvent],
    removed: &[String],
    complete: bool,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    if complete {
        on_tx!(&mut tx, c => sqlx::query("DELETE FROM calendar_event WHERE calendar_id = $1").bind(id).execute(c).await.map(drop))?;
    }
    for gone in removed {
        on_tx!(&mut tx, c => sqlx::query("DELETE FROM calendar_event WHERE calendar_id = $1 AND remote_id = $2")
            .bind(id)
            .bind(gone)
            .execute(c)
            .await.map(drop))?;
    }
    for e in changed {
        upsert_event(&mut tx, id, e).await?;
    }
    on_tx!(&mut tx, c => sqlx::query("UPDATE calendar SET sync_token = $2, last_synced_at = $3, \
           status = CASE WHEN status = 'SYNC_FAILED' THEN 'OK' ELSE status END, \
           status_reason = CASE WHEN status = 'SYNC_FAILED' THEN NULL ELSE status_reason END WHERE calendar_id = $1")
        .bind(id)
        .bind(token)
        .bind(now)
        .execute(c)
        .await.map(drop))?;
    tx.commit().await
}

async fn upsert_event(tx: &mut Tx, id: CalendarId, e: &StoredEvent) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO calendar_event (calendar_id, remote_id, etag, uid, summary, span_start, span_end, recurring, parsed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (calendar_id, remote_id) DO UPDATE SET etag = excluded.etag, uid = excluded.uid, summary = excluded.summary, \
           span_start = excluded.span_start, span_end = excluded.span_end, recurring = excluded.recurring, parsed = excluded.parsed")
        .bind(id)
        .bind(&e.remote_id)
        .bind(&e.etag)
        .bind(&e.uid)
        .bind(&e.summary)
        .bind(e.span_start)
        .bind(e.span_end)
        .bind(e.recurring)
        .bind(&e.parsed)
        .execute(c)
        .await.map(drop))
}

/// An object the gateway itself just wrote (`Some`) or removed (`None`), so the local copy
/// (what free/busy reads) has it before the next sync. The calendar's sync state is left
/// alone: the next sync sees the object as the server has it.
pub async fn own_write(db: &Db, id: CalendarId, remote_id: &str, event: Option<&StoredEvent>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    match event {
        Some(e) => upsert_event(&mut tx, id, e).await?,
        None => on_tx!(&mut tx, c => sqlx::query("DELETE FROM calendar_event WHERE calendar_id = $1 AND remote_id = $2")
            .bind(id)
            .bind(remote_id)
            .execute(c)
            .await
            .map(drop))?,
    }
    tx.commit().await
}

/// Objects of the calendars that may have an occurrence in `[from, to)` (Unix seconds).
pub async fn events_overlapping(db: &Db, calendars: &[CalendarId], from: i64, to: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    if calendars.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM calendar_event WHERE calendar_id IN ({}) AND span_start < $1 AND (span_end IS NULL OR span_end > $2)",
        placeholders(3, calendars.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(to).bind(from);
        for id in calendars {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

// --- appointment writes ---------------------------------------------------------

/// Records the latest wanted state of an appointment in a user's calendar; a newer change
/// supersedes one not yet written.
pub async fn want_appointment(
    tx: &mut Tx,
    account_id: AccountId,
    key: &str,
    uid: &str,
    cancelled: bool,
    appointment: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO appointment_write (account_id, appointment_key, uid, cancelled, appointment, version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6) \
         ON CONFLICT (account_id, appointment_key) DO UPDATE SET cancelled = excluded.cancelled, appointment = excluded.appointment, \
           version = appointment_write.version + 1, attempts = 0, next_attempt_at = NULL, last_error = NULL, updated_at = excluded.updated_at")
        .bind(account_id)
        .bind(key)
        .bind(uid)
        .bind(cancelled)
        .bind(appointment)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

/// Writes not yet done whose time has come at `now` (the worker's clock), unclaimed at `wall`;
/// at most `limit`.
pub async fn due_writes(db: &Db, now: DateTime<Utc>, wall: DateTime<Utc>, limit: i64) -> Result<Vec<AppointmentWrite>, sqlx::Error> {
    let sql = format!(
        "SELECT {WRITE_COLUMNS} FROM appointment_write WHERE (written_version IS NULL OR written_version < version) \
           AND (next_attempt_at IS NULL OR next_attempt_at <= $1) AND (claimed_until IS NULL OR claimed_until < $3) \
         ORDER BY updated_at LIMIT $2"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(now).bind(limit).bind(wall).fetch_all(p).await)
}

/// Takes a write for `holder` (this process) until `until`, unless another process holds it
/// or it changed since it was read.
pub async fn claim_write(
    db: &Db,
    w: &AppointmentWrite,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    holder: uuid::Uuid,
) -> Result<bool, sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE appointment_write SET claimed_until = $4, claimed_by = $6 WHERE account_id = $1 AND appointment_key = $2 AND version = $3 \
           AND (claimed_until IS NULL OR claimed_until < $5)")
        .bind(w.account_id)
        .bind(&w.appointment_key)
        .bind(w.version)
        .bind(until)
        .bind(now)
        .bind(holder)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// The calendar has this version of the appointment (or, cancelled, no longer has it).
pub async fn write_done(db: &Db, w: &AppointmentWrite, calendar: Option<CalendarId>, remote_id: Option<&str>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE appointment_write SET written_version = $3, calendar_id = $4, remote_id = $5, attempts = 0, next_attempt_at = NULL, \
           claimed_until = NULL, claimed_by = NULL, last_error = NULL WHERE account_id = $1 AND appointment_key = $2")
        .bind(w.account_id)
        .bind(&w.appointment_key)
        .bind(w.version)
        .bind(calendar)
        .bind(remote_id)
        .execute(p)
        .await
        .map(drop))
}

/// The write failed (or cannot be done yet): try again at `next`.
pub async fn write_failed(db: &Db, w: &AppointmentWrite, attempts: i32, next: DateTime<Utc>, error: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE appointment_write SET attempts = $3, next_attempt_at = $4, last_error = $5, claimed_until = NULL, claimed_by = NULL \
         WHERE account_id = $1 AND appointment_key = $2")
        .bind(w.account_id)
        .bind(&w.appointment_key)
        .bind(attempts)
        .bind(next)
        .bind(error)
        .execute(p)
        .await
        .map(drop))
}

/// When the next retry of a waiting write falls due, if any waits.
pub async fn next_retry_at(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM appointment_write WHERE (written_version IS NULL OR written_version < version)")
        .fetch_one(p)
        .await)
}

/// Makes the account's waiting writes due now (a primary calendar was just chosen).
pub async fn retry_writes_now(db: &Db, account_id: AccountId) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE appointment_write SET next_attempt_at = NULL WHERE account_id = $1 AND (written_version IS NULL OR written_version < version)")
        .bind(account_id)
        .execute(p)
        .await
        .map(drop))
}

/// Writes to this calendar still failing.
pub async fn failing_writes(db: &Db, calendar: CalendarId, account_id: AccountId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM appointment_write WHERE account_id = $1 AND attempts > 0 \
           AND (written_version IS NULL OR written_version < version) AND (calendar_id = $2 OR calendar_id IS NULL)")
        .bind(account_id)
        .bind(calendar)
        .fetch_one(p)
        .await)
}

/// The appointment writes waiting for a calendar (not yet written, whether new or retrying),
/// and when the longest waiting one was last changed (`/metrics`).
pub async fn write_backlog(db: &Db) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT COUNT(*), MIN(updated_at) FROM appointment_write WHERE written_version IS NULL OR written_version < version")
        .fetch_one(p)
        .await)
}
