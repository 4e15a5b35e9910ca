//! All webhook SQL: the webhooks, their deliveries (the outbox) and the attempts at them.
//!
//! A webhook's deliveries go out one at a time, oldest first: only its *head*, the oldest
//! PENDING delivery, may be claimed. Claiming is one conditional UPDATE (due, unleased, still
//! the head, the webhook enabled) whose RETURNING says who won, so any number of workers on
//! one PostgreSQL share the queue, and the same SQL serves SQLite. Outcomes are written only
//! under the claim's `lock_token`, so a worker whose lease ran out cannot overwrite the
//! attempt of the one that took over.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Attempt, Delivery, DeliveryId, Webhook, WebhookId};
use crate::db::{Db, Tx};
use crate::db::{placeholders, row_placeholders};
use crate::identity::model::AccountId;
use crate::workspace::model::WorkspaceId;
use crate::{on_pool, on_tx};

const WEBHOOK_COLUMNS: &str = "webhook_id, workspace_id, url, description, event_kinds, enabled, disabled_reason, disabled_at, \
    previous_secret_expires_at, created_by, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "delivery_id, webhook_id, event_id, event_type, payload, status, attempts, total_attempts, \
    next_attempt_at, last_status_code, last_duration_ms, last_error, last_attempt_at, delivered_at, created_at";

/// The head of a webhook's queue: its oldest pending delivery (`$outer` names the webhook id).
macro_rules! head_of {
    ($outer:literal) => {
        concat!(
            "(SELECT e.delivery_id FROM webhook_delivery e WHERE e.webhook_id = ",
            $outer,
            " AND e.status = 'PENDING' ORDER BY e.delivery_id LIMIT 1)"
        )
    };
}

// --- webhooks ----------------------------------------------------------------------------------

pub async fn insert_webhook(tx: &mut Tx, w: &Webhook, sealed_secret: &[u8]) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO webhook (webhook_id, workspace_id, url, description, event_kinds, enabled, secret, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(w.webhook_id)
        .bind(w.workspace_id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(&w.event_kinds)
        .bind(w.enabled)
        .bind(sealed_secret)
        .bind(w.created_by)
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(c)
        .await
        .map(drop))
}

pub async fn count_webhooks(tx: &mut Tx, workspace_id: WorkspaceId) -> Result<i64, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM webhook WHERE workspace_id = $1").bind(workspace_id).fetch_one(c).await)
}

pub async fn find_webhook(db: &Db, id: WebhookId) -> Result<Option<Webhook>, sqlx::Error> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhook WHERE webhook_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

pub async fn find_webhook_tx(tx: &mut Tx, id: WebhookId) -> Result<Option<Webhook>, sqlx::Error> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhook WHERE webhook_id = $1");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(c).await)
}

/// A workspace's webhooks, oldest first.
pub async fn webhooks_of(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<Webhook>, sqlx::Error> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhook WHERE workspace_id = $1 ORDER BY webhook_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).fetch_all(p).await)
}

/// Saves the editable fields (URL, kinds, description, enabled and why not).
pub async fn update_webhook(tx: &mut Tx, w: &Webhook) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE webhook SET url = $2, description = $3, event_kinds = $4, enabled = $5, disabled_reason = $6, disabled_at = $7, \
           updated_at = $8 WHERE webhook_id = $1")
        .bind(w.webhook_id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(&w.event_kinds)
        .bind(w.enabled)
        .bind(&w.disabled_reason)
        .bind(w.disabled_at)
        .bind(w.updated_at)
        .execute(c)
        .await
        .map(drop))
}

pub async fn delete_webhook(db: &Db, id: WebhookId) -> Result<bool, sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM webhook WHERE webhook_id = $1").bind(id).execute(p).await.map(|r| r.rows_affected() == 1))
}

/// A new secret; the one it replaces keeps signing until `previous_expires_at`.
pub async fn rotate_secret(
    tx: &mut Tx,
    id: WebhookId,
    sealed: &[u8],
    sealed_previous: &[u8],
    previous_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE webhook SET secret = $2, previous_secret = $3, previous_secret_expires_at = $4, updated_at = $5 WHERE webhook_id = $1")
        .bind(id)
        .bind(sealed)
        .bind(sealed_previous)
        .bind(previous_expires_at)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

/// The sealed secret, and the previous one with when it stops signing.
#[derive(sqlx::FromRow)]
pub struct SealedSecrets {
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

pub async fn secrets(db: &Db, id: WebhookId) -> Result<Option<SealedSecrets>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as("SELECT secret, previous_secret, previous_secret_expires_at FROM webhook WHERE webhook_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
}

pub async fn secrets_tx(tx: &mut Tx, id: WebhookId) -> Result<Option<SealedSecrets>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT secret, previous_secret, previous_secret_expires_at FROM webhook WHERE webhook_id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)
}

pub async fn workspace_of_webhook(db: &Db, id: WebhookId) -> Result<Option<WorkspaceId>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT workspace_id FROM webhook WHERE webhook_id = $1").bind(id).fetch_optional(p).await)
}

pub async fn workspace_of_delivery(db: &Db, id: DeliveryId) -> Result<Option<WorkspaceId>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar(
        "SELECT w.workspace_id FROM webhook_delivery d JOIN webhook w ON w.webhook_id = d.webhook_id WHERE d.delivery_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
}

/// Turns off a webhook whose delivery failed for good; returns who created it and its URL,
/// or None when it was off already.
pub async fn disable_failing(
    db: &Db,
    id: WebhookId,
    now: DateTime<Utc>,
) -> Result<Option<(Option<AccountId>, WorkspaceId, String)>, sqlx::Error> {
    on_pool!(db, c => sqlx::query_as(
        "UPDATE webhook SET enabled = FALSE, disabled_reason = 'FAILING', disabled_at = $2, updated_at = $2 \
         WHERE webhook_id = $1 AND enabled RETURNING created_by, workspace_id, url")
        .bind(id)
        .bind(now)
        .fetch_optional(c)
        .await)
}

// --- the outbox ---------------------------------------------------------------------------------

/// An enabled webhook of a workspace and the kinds it takes.
#[derive(sqlx::FromRow)]
pub struct Subscriber {
    pub webhook_id: WebhookId,
    pub event_kinds: String,
}

pub async fn subscribers(tx: &mut Tx, workspace_id: WorkspaceId) -> Result<Vec<Subscriber>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT webhook_id, event_kinds FROM webhook WHERE workspace_id = $1 AND enabled ORDER BY webhook_id")
        .bind(workspace_id)
        .fetch_all(c)
        .await)
}

pub struct NewDelivery<'a> {
    pub webhook_id: WebhookId,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub payload: &'a str,
}

/// Queues deliveries, 100 per statement; one already queued for the same webhook and event
/// is left alone. Returns how many were queued.
pub async fn insert_deliveries(tx: &mut Tx, rows: &[NewDelivery<'_>], now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let mut queued = 0;
    for chunk in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO webhook_delivery (delivery_id, webhook_id, event_id, event_type, payload, next_attempt_at, created_at) \
             VALUES {} ON CONFLICT DO NOTHING",
            row_placeholders(chunk.len(), 7)
        );
        let n = on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for d in chunk {
                q = q.bind(DeliveryId::new()).bind(d.webhook_id).bind(d.event_id).bind(d.event_type).bind(d.payload).bind(now).bind(now);
            }
            q.execute(c).await.map(|r| r.rows_affected())
        })?;
        queued += n as usize;
    }
    Ok(queued)
}

// Schedules (`next_attempt_at`) follow the gateway's clock, which tests move by hand; leases
// (`locked_until`) follow the wall clock, since they bound how long a real attempt may hold a
// delivery. With the system clock the two are the same.

/// The heads of enabled webhooks' queues that are due at `now` and nobody holds at `wall`,
/// soonest first.
pub async fn due_heads(db: &Db, now: DateTime<Utc>, wall: DateTime<Utc>, limit: i64) -> Result<Vec<DeliveryId>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT d.delivery_id FROM webhook w JOIN webhook_delivery d ON d.delivery_id = ",
        head_of!("w.webhook_id"),
        " WHERE w.enabled AND d.next_attempt_at <= $1 AND (d.locked_until IS NULL OR d.locked_until <= $2) \
         ORDER BY d.next_attempt_at LIMIT $3"
    );
    on_pool!(db, p => sqlx::query_scalar(SQL).bind(now).bind(wall).bind(limit).fetch_all(p).await)
}

/// When the next head falls due: one nobody holds at its next attempt, a held one (being
/// attempted) when its lease runs out, so a delivery held by a process that died is taken
/// over the moment its lease ends.
pub async fn next_due(db: &Db, wall: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT MIN(CASE WHEN d.locked_until > $1 AND d.locked_until > d.next_attempt_at THEN d.locked_until ELSE d.next_attempt_at END) \
         FROM webhook w JOIN webhook_delivery d ON d.delivery_id = ",
        head_of!("w.webhook_id"),
        " WHERE w.enabled"
    );
    on_pool!(db, p => sqlx::query_scalar(SQL).bind(wall).fetch_one(p).await)
}

/// Takes the delivery for `holder` (this process) for an attempt until `until` (wall clock),
/// counting the attempt; None
/// when it is not due, someone else holds it, it is no longer its webhook's head, or the
/// webhook is off.
pub async fn claim(
    db: &Db,
    id: DeliveryId,
    token: Uuid,
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
    until: DateTime<Utc>,
    holder: Uuid,
) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!(
        "UPDATE webhook_delivery SET locked_until = $4, lock_token = $3, locked_by = $6, attempts = attempts + 1, total_attempts = total_attempts + 1 \
         WHERE delivery_id = $1 AND status = 'PENDING' AND next_attempt_at <= $2 AND (locked_until IS NULL OR locked_until <= $5) \
           AND delivery_id = {} \
           AND EXISTS (SELECT 1 FROM webhook w WHERE w.webhook_id = webhook_delivery.webhook_id AND w.enabled) \
         RETURNING {DELIVERY_COLUMNS}",
        head_of!("webhook_delivery.webhook_id")
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .bind(now)
        .bind(token)
        .bind(until)
        .bind(wall)
        .bind(holder)
        .fetch_optional(p)
        .await)
}

/// How an attempt ended, as recorded.
pub struct Outcome<'a> {
    /// `PENDING` (another attempt at `next_attempt_at`), `DELIVERED` or `FAILED`.
    pub status: &'static str,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<&'a str>,
    pub attempted_at: DateTime<Utc>,
    pub attempt: i32,
}

/// Records the attempt and releases the claim; false (and nothing written) when the claim
/// was lost to another worker. Two statements, each on its own (no transaction is held open
/// across them): the attempt first, then the delivery's new state. A crash in between leaves
/// the attempt logged and the delivery held until its lease runs out; then it is retried.
pub async fn finish(db: &Db, id: DeliveryId, token: Uuid, o: &Outcome<'_>, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO webhook_attempt (delivery_id, attempt, attempted_at, status_code, duration_ms, error) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM webhook_delivery WHERE delivery_id = $1 AND lock_token = $7) \
         ON CONFLICT DO NOTHING")
        .bind(id)
        .bind(o.attempt)
        .bind(o.attempted_at)
        .bind(o.status_code)
        .bind(o.duration_ms)
        .bind(o.error)
        .bind(token)
        .execute(p)
        .await
        .map(drop))?;
    let delivered_at = (o.status == "DELIVERED").then_some(now);
    on_pool!(db, p => sqlx::query(
        "UPDATE webhook_delivery SET status = $3, next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, \
           last_status_code = $6, last_duration_ms = $7, last_error = $8, last_attempt_at = $9, locked_until = NULL, lock_token = NULL, locked_by = NULL \
         WHERE delivery_id = $1 AND lock_token = $2")
        .bind(id)
        .bind(token)
        .bind(o.status)
        .bind(o.next_attempt_at)
        .bind(delivered_at)
        .bind(o.status_code)
        .bind(o.duration_ms)
        .bind(o.error)
        .bind(o.attempted_at)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// Queues a delivery again: a finished one starts a new round of the retry schedule now; a
/// pending one that waits for a retry is tried now. Returns it, or None when it is gone.
pub async fn requeue(db: &Db, id: DeliveryId, now: DateTime<Utc>) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!(
        "UPDATE webhook_delivery SET \
           attempts = CASE WHEN status = 'PENDING' THEN attempts ELSE 0 END, \
           status = 'PENDING', next_attempt_at = $2, delivered_at = NULL \
         WHERE delivery_id = $1 RETURNING {DELIVERY_COLUMNS}"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(now).fetch_optional(p).await)
}

/// A re-enabled webhook's waiting deliveries are due at once.
pub async fn expedite(tx: &mut Tx, id: WebhookId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE webhook_delivery SET next_attempt_at = $2 WHERE webhook_id = $1 AND status = 'PENDING' AND next_attempt_at > $2")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

pub async fn find_delivery(db: &Db, id: DeliveryId) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE delivery_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

/// One page of a webhook's deliveries, newest first, before `before` (keyset pagination).
pub async fn deliveries_page(db: &Db, webhook_id: WebhookId, before: Option<DeliveryId>, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_delivery WHERE webhook_id = $1 AND ($2 IS NULL OR delivery_id < $2) \
         ORDER BY delivery_id DESC LIMIT $3"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(webhook_id).bind(before).bind(limit).fetch_all(p).await)
}

/// The attempts at these deliveries of the workspace's webhooks, in order.
pub async fn attempts_of(db: &Db, workspace_id: WorkspaceId, ids: &[DeliveryId]) -> Result<Vec<Attempt>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.delivery_id, a.attempt, a.attempted_at, a.status_code, a.duration_ms, a.error FROM webhook_attempt a \
         JOIN webhook_delivery d ON d.delivery_id = a.delivery_id JOIN webhook w ON w.webhook_id = d.webhook_id \
         WHERE w.workspace_id = $1 AND a.delivery_id IN ({}) ORDER BY a.delivery_id, a.attempt",
        placeholders(2, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// Forgets finished deliveries (and their attempts) created before `before`.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM webhook_delivery WHERE status <> 'PENDING' AND created_at < $1")
        .bind(before)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
}

/// Deliveries of enabled webhooks that should have gone by `now` and have not (pending and
/// due, or waiting for a retry after a failed attempt), and when the oldest was queued
/// (`/metrics`). A turned-off webhook's deliveries wait for it to be turned on and are not
/// counted.
pub async fn backlog(db: &Db, now: DateTime<Utc>) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT COUNT(*), MIN(d.created_at) FROM webhook w JOIN webhook_delivery d ON d.webhook_id = w.webhook_id \
         WHERE w.enabled AND d.status = 'PENDING' AND (d.next_attempt_at <= $1 OR d.attempts > 0)")
        .bind(now)
        .fetch_one(p)
        .await)
}
