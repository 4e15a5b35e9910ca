//! All mailbox SQL: the mailbox rows, their sync state, and the messages each has handled.

use chrono::{DateTime, NaiveDate, Utc};

use super::model::{Mailbox, MailboxEvent, MailboxEventKind, MailboxId, MailboxStatus};
use crate::activity::model::EventId;
use crate::db::StoredEnum as _;
use crate::db::anonymous_rows;
use crate::db::{Db, Stored, Tx, UniqueKey};
use crate::identity::model::AccountId;
use crate::workspace::model::WorkspaceId;
use crate::{in_list, on_pool, on_tx};

/// A user connects an address through a connector once.
pub const ADDRESS_KEY: UniqueKey =
    UniqueKey { name: "mailbox_account_address_key", columns: "mailbox.account_id, mailbox.connector, mailbox.email_address" };

const COLUMNS: &str = "mailbox_id, account_id, workspace_id, connector, email_address, settings, sync_from, paused, status, \
    status_reason, status_changed_at, last_error, last_synced_at, initial_synced_at, checkpoint, message_count, skipped_count, \
    server_count, missing_count, last_reconciled_at, last_checkpoint_reset_at, created_at";

pub async fn insert_mailbox(tx: &mut Tx, m: &Mailbox, credentials: &[u8]) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO mailbox (mailbox_id, account_id, workspace_id, connector, email_address, settings, credentials, sync_from, \
           paused, status, status_reason, status_changed_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
        .bind(m.mailbox_id)
        .bind(m.account_id)
        .bind(m.workspace_id)
        .bind(&m.connector)
        .bind(&m.email_address)
        .bind(&m.settings)
        .bind(credentials)
        .bind(m.sync_from)
        .bind(m.paused)
        .bind(&m.status)
        .bind(&m.status_reason)
        .bind(m.status_changed_at)
        .bind(m.created_at)
        .execute(c)
        .await
        .map(drop))
}

pub async fn find_mailbox(db: &Db, id: MailboxId) -> Result<Option<Mailbox>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM mailbox WHERE mailbox_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

pub async fn find_by_address(db: &Db, account_id: AccountId, connector: &str, address: &str) -> Result<Option<Mailbox>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM mailbox WHERE account_id = $1 AND connector = $2 AND email_address = $3");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).bind(connector).bind(address).fetch_optional(p).await)
}

/// New settings and credentials for a connected mailbox; its sync starts over from CONNECTING
/// (unpaused), keeping its checkpoint.
pub async fn reconnect(db: &Db, id: MailboxId, settings: &str, sealed: &[u8], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE mailbox SET settings = $2, credentials = $3, paused = FALSE, status = 'CONNECTING', \
           status_reason = 'signed in again; restarting the sync', status_changed_at = $4 WHERE mailbox_id = $1")
        .bind(id)
        .bind(settings)
        .bind(sealed)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

pub async fn credentials(db: &Db, id: MailboxId) -> Result<Option<Vec<u8>>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT credentials FROM mailbox WHERE mailbox_id = $1").bind(id).fetch_optional(p).await)
}

pub async fn mailboxes_of(db: &Db, account_id: AccountId) -> Result<Vec<Mailbox>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM mailbox WHERE account_id = $1 ORDER BY mailbox_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).fetch_all(p).await)
}

/// Mailboxes whose sync should run (not paused, not waiting for the user to sign in again).
pub async fn runnable(db: &Db) -> Result<Vec<MailboxId>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT mailbox_id FROM mailbox WHERE NOT paused AND status <> 'NEEDS_REAUTH' ORDER BY mailbox_id")
        .fetch_all(p)
        .await)
}

/// Records a status and why; false when the mailbox already had that status for that reason
/// (then nothing is written, and its time stays when it began). When a webhook of the
/// mailbox's workspace takes `mailbox.status_changed`, a change queues that event in the same
/// transaction (the caller wakes the webhook worker, or it finds the event at its next look);
/// otherwise the change is one statement, as cheap as before webhooks.
pub async fn set_status(
    db: &Db,
    id: MailboxId,
    status: MailboxStatus,
    reason: Option<&str>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> crate::error::Result<bool> {
    const UPDATE: &str = "UPDATE mailbox SET status = $2, status_reason = $3, status_changed_at = $4, last_error = COALESCE($5, last_error) \
         WHERE mailbox_id = $1 AND (status <> $2 OR COALESCE(status_reason, '') <> COALESCE($3, '')) RETURNING workspace_id";
    // A mailbox that needs its user also raises `mailbox.needs_reauth`, for receivers that
    // only want to hear about that.
    let kinds: &[&str] = if status == MailboxStatus::NeedsReauth { &[STATUS_CHANGED, NEEDS_REAUTH] } else { &[STATUS_CHANGED] };
    // The change and its webhook deliveries (if any webhook takes them) commit together.
    let mut tx = db.begin().await?;
    let changed: Option<WorkspaceId> = on_tx!(&mut tx, c => sqlx::query_scalar(UPDATE)
        .bind(id)
        .bind(status.stored_name())
        .bind(reason)
        .bind(now)
        .bind(error)
        .fetch_optional(c)
        .await)?;
    if let Some(workspace_id) = changed {
        let data = serde_json::json!({ "mailboxId": id.0, "status": status.stored_name(), "reason": reason });
        let events: Vec<crate::webhooks::OutgoingEvent> = kinds
            .iter()
            .map(|kind| crate::webhooks::OutgoingEvent { id: uuid::Uuid::now_v7(), kind, occurred_at: now, data: data.clone() })
            .collect();
        crate::webhooks::enqueue_all(&mut tx, workspace_id, &events).await?;
    }
    tx.commit().await?;
    Ok(changed.is_some())
}

const STATUS_CHANGED: &str = "mailbox.status_changed";
const NEEDS_REAUTH: &str = "mailbox.needs_reauth";

/// Whether the mailbox finished its first sync: only mail recorded after that is news.
pub async fn update_settings(
    db: &Db,
    id: MailboxId,
    sync_from: NaiveDate,
    paused: bool,
    reset_checkpoint: bool,
) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE mailbox SET sync_from = $2, paused = $3, checkpoint = CASE WHEN $4 THEN NULL ELSE checkpoint END, \
           initial_synced_at = CASE WHEN $4 THEN NULL ELSE initial_synced_at END WHERE mailbox_id = $1")
        .bind(id)
        .bind(sync_from)
        .bind(paused)
        .bind(reset_checkpoint)
        .execute(p)
        .await
        .map(drop))
}

/// Starts the sync over from the sync-from date: what it records until it is caught up
/// again is old mail, not news.
/// Lists again from the sync-from date (a resync the user asked for): what is missing is
/// recorded; what was recorded stays recorded.
pub async fn list_again(db: &Db, id: MailboxId) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE mailbox SET checkpoint = NULL, initial_synced_at = NULL WHERE mailbox_id = $1")
        .bind(id)
        .execute(p)
        .await
        .map(drop))
}

/// The server renumbered the folder (the checkpoint means nothing now): list again from the
/// sync-from date, and remember when. The server ids recorded under the old numbering are
/// forgotten (they can never come back); their events stay, and the listing points the new
/// ids at them, so `recordedCount` counts what the server holds now.
pub async fn reset_checkpoint(db: &Db, id: MailboxId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, c => sqlx::query(
        "UPDATE mailbox SET checkpoint = NULL, initial_synced_at = NULL, last_checkpoint_reset_at = $2 WHERE mailbox_id = $1")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM mail_message WHERE mailbox_id = $1").bind(id).execute(c).await.map(drop))?;
    record_event_in(&mut tx, id, MailboxEventKind::FolderRenumbered, None, now).await?;
    tx.commit().await
}

/// Lines of history kept per mailbox; older ones are trimmed as new ones come.
const HISTORY_KEPT: i64 = 200;

/// Adds a line to the mailbox's history (and trims the oldest beyond [`HISTORY_KEPT`]).
pub async fn record_event(
    db: &Db,
    id: MailboxId,
    kind: MailboxEventKind,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    record_event_in(&mut tx, id, kind, detail, at).await?;
    tx.commit().await
}

/// [`record_event`] inside the transaction of what caused it.
pub async fn record_event_in(
    tx: &mut Tx,
    id: MailboxId,
    kind: MailboxEventKind,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let detail = detail.map(|d| d.chars().take(500).collect::<String>());
    on_tx!(tx, c => sqlx::query("INSERT INTO mailbox_event (mailbox_event_id, mailbox_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::now_v7())
        .bind(id)
        .bind(at)
        .bind(Stored(kind))
        .bind(detail)
        .execute(c)
        .await
        .map(drop))?;
    on_tx!(tx, c => sqlx::query(
        "DELETE FROM mailbox_event WHERE mailbox_id = $1 AND mailbox_event_id NOT IN \
         (SELECT mailbox_event_id FROM mailbox_event WHERE mailbox_id = $1 ORDER BY at DESC, mailbox_event_id DESC LIMIT $2)")
        .bind(id)
        .bind(HISTORY_KEPT)
        .execute(c)
        .await
        .map(drop))
}

/// The mailbox's latest `limit` lines of history, newest first.
pub async fn history(db: &Db, id: MailboxId, limit: i64) -> Result<Vec<MailboxEvent>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT at, kind, detail FROM mailbox_event WHERE mailbox_id = $1 ORDER BY at DESC, mailbox_event_id DESC LIMIT $2")
        .bind(id)
        .bind(limit)
        .fetch_all(p)
        .await)
}

pub async fn set_checkpoint(db: &Db, id: MailboxId, checkpoint: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE mailbox SET checkpoint = $2 WHERE mailbox_id = $1").bind(id).bind(checkpoint).execute(p).await.map(drop))
}

pub async fn delete_mailbox(db: &Db, id: MailboxId) -> Result<bool, sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM mailbox WHERE mailbox_id = $1").bind(id).execute(p).await.map(|r| r.rows_affected() == 1))
}

/// Which of these server ids the mailbox has handled already.
pub async fn known_messages(tx: &mut Tx, id: MailboxId, remote_ids: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    in_list!(fetch_all tx, remote_ids, 2,
        |list| format!("SELECT remote_id FROM mail_message WHERE mailbox_id = $1 AND remote_id {list}"),
        |sql| sqlx::query_scalar(sql).bind(id))
}

/// Records handled server messages: on PostgreSQL in one statement of arrays, whose text
/// does not depend on the count (so each connection prepares it once); on SQLite 200 per
/// VALUES statement.
pub async fn insert_messages(tx: &mut Tx, id: MailboxId, rows: &[(&str, EventId)], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(c) = tx {
        let (remote_ids, event_ids): (Vec<&str>, Vec<EventId>) = rows.iter().copied().unzip();
        return sqlx::query(
            "INSERT INTO mail_message (mailbox_id, remote_id, event_id, recorded_at) \
             SELECT $1, r.remote_id, r.event_id, $4 FROM UNNEST($2::text[], $3::uuid[]) AS r (remote_id, event_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(remote_ids)
        .bind(event_ids)
        .bind(now)
        .execute(&mut **c)
        .await
        .map(drop);
    }
    for chunk in rows.chunks(200) {
        let sql = format!(
            "INSERT INTO mail_message (mailbox_id, remote_id, event_id, recorded_at) VALUES {} ON CONFLICT DO NOTHING",
            anonymous_rows(chunk.len(), 4)
        );
        on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (remote_id, event_id) in chunk {
                q = q.bind(id).bind(*remote_id).bind(*event_id).bind(now);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

/// Advances the checkpoint with the batch it covers, and counts what was recorded.
pub async fn advance(
    tx: &mut Tx,
    id: MailboxId,
    checkpoint: Option<&str>,
    recorded: i64,
    skipped: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE mailbox SET checkpoint = COALESCE($2, checkpoint), message_count = message_count + $3, \
           skipped_count = skipped_count + $4, last_synced_at = $5 WHERE mailbox_id = $1")
        .bind(id)
        .bind(checkpoint)
        .bind(recorded)
        .bind(skipped)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

pub async fn mark_synced(db: &Db, id: MailboxId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE mailbox SET last_synced_at = $2, initial_synced_at = COALESCE(initial_synced_at, $2) WHERE mailbox_id = $1")
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// The server ids the mailbox has handled.
pub async fn recorded_ids(db: &Db, id: MailboxId) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT remote_id FROM mail_message WHERE mailbox_id = $1").bind(id).fetch_all(p).await)
}

pub async fn set_health(db: &Db, id: MailboxId, server: i64, missing: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE mailbox SET server_count = $2, missing_count = $3, last_reconciled_at = $4 WHERE mailbox_id = $1")
        .bind(id)
        .bind(server)
        .bind(missing)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Messages handled for each mailbox (the health's `recordedCount`).
pub async fn recorded_count(db: &Db, id: MailboxId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM mail_message WHERE mailbox_id = $1").bind(id).fetch_one(p).await)
}

/// New sealed credentials (a refreshed access token); nothing else changes.
pub async fn update_credentials(db: &Db, id: MailboxId, sealed: &[u8]) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE mailbox SET credentials = $2 WHERE mailbox_id = $1").bind(id).bind(sealed).execute(p).await.map(drop))
}

/// A started mailbox authorisation, as stored (the state itself only hashed).
#[derive(Debug, sqlx::FromRow)]
pub struct OAuthRequest {
    pub account_id: AccountId,
    pub workspace_id: crate::workspace::model::WorkspaceId,
    pub connector: String,
    pub mailbox_id: Option<MailboxId>,
    pub sync_from: NaiveDate,
    pub verifier: Vec<u8>,
}

pub async fn insert_oauth_request(
    db: &Db,
    state_hash: &[u8],
    request: &OAuthRequest,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO oauth_request (state_hash, account_id, workspace_id, connector, mailbox_id, sync_from, verifier, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(state_hash)
        .bind(request.account_id)
        .bind(request.workspace_id)
        .bind(&request.connector)
        .bind(request.mailbox_id)
        .bind(request.sync_from)
        .bind(&request.verifier)
        .bind(now)
        .bind(expires_at)
        .execute(p)
        .await
        .map(drop))
}

/// Uses up the authorisation with this state for `connector`: it is returned once, if it
/// exists, has not expired and was not used before; the check and the marking are one
/// statement, so two callbacks racing with one state cannot both win. Old ones are pruned.
pub async fn take_oauth_request(
    db: &Db,
    state_hash: &[u8],
    connector: &str,
    now: DateTime<Utc>,
) -> Result<Option<OAuthRequest>, sqlx::Error> {
    let taken = on_pool!(db, p => sqlx::query_as(
        "UPDATE oauth_request SET used_at = $3 WHERE state_hash = $1 AND connector = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING account_id, workspace_id, connector, mailbox_id, sync_from, verifier")
        .bind(state_hash)
        .bind(connector)
        .bind(now)
        .fetch_optional(p)
        .await)?;
    let day_ago = now - chrono::Duration::days(1);
    on_pool!(db, p => sqlx::query("DELETE FROM oauth_request WHERE expires_at < $1").bind(day_ago).execute(p).await.map(drop))?;
    Ok(taken)
}

/// The mailboxes `owner` holds at `now`, each with when its sync last caught up with the
/// server (or, never caught up yet, when it was connected): the longest behind first, at
/// most `limit` (`/metrics` shows each one's lag).
pub async fn held_caught_up_at(
    db: &Db,
    owner: uuid::Uuid,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(MailboxId, DateTime<Utc>)>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT mailbox_id, COALESCE(last_synced_at, created_at) AS caught_up_at FROM mailbox \
         WHERE sync_owner = $1 AND sync_lease_until > $2 ORDER BY caught_up_at, mailbox_id LIMIT $3")
        .bind(owner)
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await)
}
