//! All notification SQL: preferences, in-app notifications and push subscriptions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

/// The cells a user changed: (event, channel, enabled).
pub async fn overrides(db: &Db, account_id: AccountId) -> Result<Vec<(String, String, bool)>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as("SELECT event, channel, enabled FROM notification_preference WHERE account_id = $1")
        .bind(account_id)
        .fetch_all(p)
        .await)
}

/// The overrides `accounts` made for `event`: (account, channel, enabled).
pub async fn overrides_for(db: &Db, accounts: &[AccountId], event: &str) -> Result<Vec<(AccountId, String, bool)>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in accounts.chunks(500) {
        let sql = format!(
            "SELECT account_id, channel, enabled FROM notification_preference WHERE event = $1 AND account_id IN ({})",
            crate::db::placeholders(2, chunk.len())
        );
        let rows: Vec<(AccountId, String, bool)> = on_pool!(db, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(event);
            for a in chunk {
                q = q.bind(*a);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The audio choice of those of `accounts` who made one.
pub async fn audio_of(db: &Db, accounts: &[AccountId]) -> Result<Vec<(AccountId, String)>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in accounts.chunks(500) {
        let sql = format!("SELECT account_id, audio FROM preference WHERE account_id IN ({})", crate::db::placeholders(1, chunk.len()));
        let rows: Vec<(AccountId, String)> = on_pool!(db, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for a in chunk {
                q = q.bind(*a);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The browsers of `accounts`: (account, subscription), by subscription.
pub async fn browsers_of(db: &Db, accounts: &[AccountId]) -> Result<Vec<(AccountId, Uuid)>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in accounts.chunks(500) {
        let sql = format!(
            "SELECT account_id, push_subscription_id FROM push_subscription WHERE account_id IN ({}) ORDER BY push_subscription_id",
            crate::db::placeholders(1, chunk.len())
        );
        let rows: Vec<(AccountId, Uuid)> = on_pool!(db, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for a in chunk {
                q = q.bind(*a);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

pub async fn set_override(tx: &mut Tx, account_id: AccountId, event: &str, channel: &str, enabled: bool) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO notification_preference (account_id, event, channel, enabled) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, event, channel) DO UPDATE SET enabled = excluded.enabled")
        .bind(account_id)
        .bind(event)
        .bind(channel)
        .bind(enabled)
        .execute(c)
        .await
        .map(drop))
}

#[derive(sqlx::FromRow)]
pub struct PreferenceRow {
    pub audio: String,
    pub summary_enabled: bool,
    pub summary_time: String,
    pub summary_time_zone: String,
    /// The summary has a zone of its own, not the profile's.
    pub summary_time_zone_overridden: bool,
}

pub async fn preference(db: &Db, account_id: AccountId) -> Result<Option<PreferenceRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT audio, summary_enabled, summary_time, summary_time_zone, summary_time_zone_overridden FROM preference WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(p)
        .await)
}

pub async fn set_preference(db: &Db, account_id: AccountId, row: &PreferenceRow) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO preference (account_id, audio, summary_enabled, summary_time, summary_time_zone, summary_time_zone_overridden) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (account_id) DO UPDATE SET audio = excluded.audio, summary_enabled = excluded.summary_enabled, \
           summary_time = excluded.summary_time, summary_time_zone = excluded.summary_time_zone, \
           summary_time_zone_overridden = excluded.summary_time_zone_overridden")
        .bind(account_id)
        .bind(&row.audio)
        .bind(row.summary_enabled)
        .bind(&row.summary_time)
        .bind(&row.summary_time_zone)
        .bind(row.summary_time_zone_overridden)
        .execute(p)
        .await
        .map(drop))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Notification {
    pub notification_id: Uuid,
    pub account_id: AccountId,
    pub event: String,
    pub title: String,
    pub body: String,
    pub audible: bool,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    /// Shown in the app (else it went out by email or push only).
    pub in_app: bool,
    pub dedupe_key: Option<String>,
    /// Who it is about, for grouping in the daily summary.
    pub contact: Option<String>,
}

const COLUMNS: &str = "notification_id, account_id, event, title, body, audible, created_at, read_at, in_app, dedupe_key, contact";

/// Records a notice; false when one with the same dedupe key was recorded before.
pub async fn insert_notification(tx: &mut Tx, n: &Notification) -> Result<bool, sqlx::Error> {
    Ok(!insert_notifications(tx, std::slice::from_ref(n)).await?.is_empty())
}

/// Rows per multi-row INSERT on SQLite (11 binds at most each).
const ROW_CHUNK: usize = 200;

/// [`insert_notification`] for many at once: one already recorded (same id, or same account
/// and dedupe key, also within `rows`) is skipped. Returns the ids inserted. On PostgreSQL one
/// statement whatever the count (arrays through `UNNEST`, so its text is prepared once); on
/// SQLite multi-row VALUES per 200.
pub async fn insert_notifications(tx: &mut Tx, rows: &[Notification]) -> Result<Vec<Uuid>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    const INSERT: &str = "INSERT INTO notification (notification_id, account_id, event, title, body, audible, created_at, in_app, \
                          dedupe_key, contact)";
    match tx {
        Tx::Postgres(t) => {
            let sql = format!(
                "{INSERT} SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bool[], \
                   $7::timestamptz[], $8::bool[], $9::text[], $10::text[]) \
                 ON CONFLICT DO NOTHING RETURNING notification_id"
            );
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(rows.iter().map(|n| n.notification_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.account_id.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.event.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.title.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.body.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.audible).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.created_at).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.in_app).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.dedupe_key.as_deref()).collect::<Vec<_>>())
                .bind(rows.iter().map(|n| n.contact.as_deref()).collect::<Vec<_>>())
                .fetch_all(&mut **t)
                .await
        }
        Tx::Sqlite(t) => {
            let mut inserted = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(ROW_CHUNK) {
                let sql = format!(
                    "{INSERT} VALUES {} ON CONFLICT DO NOTHING RETURNING notification_id",
                    crate::db::anonymous_rows(chunk.len(), 10)
                );
                let mut q = sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql));
                for n in chunk {
                    q = q
                        .bind(n.notification_id)
                        .bind(n.account_id)
                        .bind(&n.event)
                        .bind(&n.title)
                        .bind(&n.body)
                        .bind(n.audible)
                        .bind(n.created_at)
                        .bind(n.in_app)
                        .bind(&n.dedupe_key)
                        .bind(&n.contact);
                }
                inserted.extend(q.fetch_all(&mut **t).await?);
            }
            Ok(inserted)
        }
    }
}

/// Queues delivery jobs (`outbox::enqueue` is this for one): one with an idempotency key
/// already queued is skipped. Returns how many were queued.
pub async fn enqueue_jobs(tx: &mut Tx, jobs: &[super::outbox::NewJob<'_>]) -> Result<u64, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(0);
    }
    const INSERT: &str = "INSERT INTO delivery_job (job_id, account_id, channel, kind, notification_id, push_subscription_id, payload, \
                          idempotency_key, batchable, run_after, created_at)";
    match tx {
        Tx::Postgres(t) => {
            let sql = format!(
                "{INSERT} SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[], \
                   $8::text[], $9::bool[], $10::timestamptz[], $11::timestamptz[]) \
                 ON CONFLICT DO NOTHING"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(jobs.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.account_id.0).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.channel).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.kind).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.notification_id).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.push_subscription_id).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.payload).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.idempotency_key).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.batchable).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.run_after).collect::<Vec<_>>())
                .bind(jobs.iter().map(|j| j.now).collect::<Vec<_>>())
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected())
        }
        Tx::Sqlite(t) => {
            let mut queued = 0;
            for chunk in jobs.chunks(ROW_CHUNK) {
                let sql = format!("{INSERT} VALUES {} ON CONFLICT DO NOTHING", crate::db::anonymous_rows(chunk.len(), 11));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for j in chunk {
                    q = q
                        .bind(Uuid::now_v7())
                        .bind(j.account_id)
                        .bind(j.channel)
                        .bind(j.kind)
                        .bind(j.notification_id)
                        .bind(j.push_subscription_id)
                        .bind(j.payload)
                        .bind(j.idempotency_key)
                        .bind(j.batchable)
                        .bind(j.run_after)
                        .bind(j.now);
                }
                queued += q.execute(&mut **t).await?.rows_affected();
            }
            Ok(queued)
        }
    }
}

pub async fn find_notification(db: &Db, account_id: AccountId, id: Uuid) -> Result<Option<Notification>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notification WHERE account_id = $1 AND notification_id = $2");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).bind(id).fetch_optional(p).await)
}

/// Newest first, before `before` (keyset on the time-ordered id).
/// In-app notifications older than `cursor` newest first, or (`newer`) newer than it oldest
/// first.
pub async fn notifications_page(
    db: &Db,
    account_id: AccountId,
    cursor: Option<Uuid>,
    newer: bool,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let (compare, order) = if newer { (">", "ASC") } else { ("<", "DESC") };
    let sql = format!(
        "SELECT {COLUMNS} FROM notification WHERE account_id = $1 AND in_app AND ($2 IS NULL OR notification_id {compare} $2) \
         AND (NOT $3 OR read_at IS NULL) ORDER BY notification_id {order} LIMIT $4"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(account_id)
        .bind(cursor)
        .bind(unread_only)
        .bind(limit)
        .fetch_all(p)
        .await)
}

pub async fn unread_count(db: &Db, account_id: AccountId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM notification WHERE account_id = $1 AND in_app AND read_at IS NULL")
        .bind(account_id)
        .fetch_one(p)
        .await)
}

/// Marks the given notifications of the account read; returns how many changed.
pub async fn mark_read(db: &Db, account_id: AccountId, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE notification SET read_at = $2 WHERE account_id = $1 AND read_at IS NULL AND notification_id IN ({})",
        crate::db::placeholders(3, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).bind(now);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(p).await.map(|r| r.rows_affected())
    })
}

pub async fn mark_all_read(db: &Db, account_id: AccountId, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE notification SET read_at = $2 WHERE account_id = $1 AND read_at IS NULL")
        .bind(account_id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
}

/// Marks read the account's notifications whose dedupe key starts with `prefix` (the
/// notices of one thing that has since been dealt with, like an answered invitation).
pub async fn mark_read_by_key_prefix(db: &Db, account_id: AccountId, prefix: &str, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE notification SET read_at = $3 WHERE account_id = $1 AND read_at IS NULL AND dedupe_key LIKE $2")
        .bind(account_id)
        .bind(format!("{prefix}%"))
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
}

pub struct NewPushSubscription<'a> {
    pub id: Uuid,
    pub account_id: AccountId,
    pub endpoint: &'a str,
    pub p256dh: &'a [u8],
    pub auth: &'a [u8],
    pub now: DateTime<Utc>,
}

/// Registers an endpoint; an endpoint registered before (this browser, maybe another user)
/// now belongs to this account with these keys.
pub async fn upsert_push_subscription(db: &Db, s: &NewPushSubscription<'_>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO push_subscription (push_subscription_id, account_id, endpoint, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (endpoint) DO UPDATE SET account_id = excluded.account_id, p256dh = excluded.p256dh, auth = excluded.auth")
        .bind(s.id)
        .bind(s.account_id)
        .bind(s.endpoint)
        .bind(s.p256dh)
        .bind(s.auth)
        .bind(s.now)
        .execute(p)
        .await
        .map(drop))
}

pub async fn delete_push_subscription(db: &Db, account_id: AccountId, endpoint: &str) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, p => sqlx::query("DELETE FROM push_subscription WHERE account_id = $1 AND endpoint = $2")
        .bind(account_id)
        .bind(endpoint)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn count_push_subscriptions(db: &Db, account_id: AccountId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM push_subscription WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(p)
        .await)
}

/// The account's notifications among `ids`, oldest first.
pub async fn find_notifications(db: &Db, account_id: AccountId, ids: &[Uuid]) -> Result<Vec<Notification>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM notification WHERE account_id = $1 AND notification_id IN ({}) ORDER BY notification_id",
        crate::db::placeholders(2, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// Everything recorded for the account at or after `since`, oldest first (at most `limit`).
pub async fn notifications_since(
    db: &Db,
    account_id: AccountId,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM notification WHERE account_id = $1 AND created_at >= $2 ORDER BY notification_id LIMIT $3");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).bind(since).bind(limit).fetch_all(p).await)
}

#[derive(sqlx::FromRow)]
pub struct PushSubscription {
    pub push_subscription_id: Uuid,
    pub endpoint: String,
    pub p256dh: Vec<u8>,
    pub auth: Vec<u8>,
}

pub async fn find_push_subscription(db: &Db, id: Uuid) -> Result<Option<PushSubscription>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT push_subscription_id, endpoint, p256dh, auth FROM push_subscription WHERE push_subscription_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
}

/// A registered browser as its owner sees it (no keys).
#[derive(sqlx::FromRow)]
pub struct PushDevice {
    pub push_subscription_id: Uuid,
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub failure_count: i32,
}

pub async fn push_devices(db: &Db, account_id: AccountId) -> Result<Vec<PushDevice>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT push_subscription_id, endpoint, created_at, last_success_at, last_failure_at, failure_count \
         FROM push_subscription WHERE account_id = $1 ORDER BY push_subscription_id DESC")
        .bind(account_id)
        .fetch_all(p)
        .await)
}

/// Records a push attempt's outcome: a success clears the failure count.
pub async fn record_push_attempt(db: &Db, id: Uuid, delivered: bool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let sql = if delivered {
        "UPDATE push_subscription SET last_success_at = $2, failure_count = 0 WHERE push_subscription_id = $1"
    } else {
        "UPDATE push_subscription SET last_failure_at = $2, failure_count = failure_count + 1 WHERE push_subscription_id = $1"
    };
    on_pool!(db, p => sqlx::query(sql).bind(id).bind(now).execute(p).await.map(drop))
}

/// Removes one of the account's browsers; false when it has no such one.
pub async fn delete_push_device(db: &Db, account_id: AccountId, id: Uuid) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, p => sqlx::query("DELETE FROM push_subscription WHERE push_subscription_id = $1 AND account_id = $2")
        .bind(id).bind(account_id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn delete_push_subscription_by_id(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM push_subscription WHERE push_subscription_id = $1").bind(id).execute(p).await.map(drop))
}

#[derive(sqlx::FromRow)]
pub struct DueSummary {
    pub account_id: AccountId,
    pub summary_time: String,
    pub summary_time_zone: String,
    pub summary_next_at: DateTime<Utc>,
}

pub async fn summaries_due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<DueSummary>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        // The zone in effect: the summary's own, else the profile's, else the one stored.
        "SELECT p.account_id, p.summary_time, \
           CASE WHEN p.summary_time_zone_overridden THEN p.summary_time_zone ELSE COALESCE(a.time_zone, p.summary_time_zone) END \
             AS summary_time_zone, \
           p.summary_next_at \
         FROM preference p JOIN account a ON a.account_id = p.account_id \
         WHERE p.summary_enabled AND p.summary_next_at IS NOT NULL AND p.summary_next_at <= $1 ORDER BY p.summary_next_at LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await)
}

pub async fn next_summary_at(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar(
        "SELECT summary_next_at FROM preference WHERE summary_enabled AND summary_next_at IS NOT NULL ORDER BY summary_next_at LIMIT 1")
        .fetch_optional(p)
        .await)
}

pub async fn set_summary_next(db: &Db, account_id: AccountId, at: Option<DateTime<Utc>>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE preference SET summary_next_at = $2 WHERE account_id = $1")
        .bind(account_id)
        .bind(at)
        .execute(p)
        .await
        .map(drop))
}

/// Moves a due summary on to its next time, unless another process already did.
pub async fn advance_summary(tx: &mut Tx, account_id: AccountId, was: DateTime<Utc>, next: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE preference SET summary_next_at = $3 WHERE account_id = $1 AND summary_next_at = $2")
        .bind(account_id)
        .bind(was)
        .bind(next)
        .execute(c)
        .await
        .map(drop))
}

/// Takes on the user's summary for `local_date`; false when it was taken before.
pub async fn claim_digest(
    tx: &mut Tx,
    account_id: AccountId,
    local_date: chrono::NaiveDate,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    on_tx!(tx, c => sqlx::query("INSERT INTO digest_claim (account_id, local_date, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(account_id)
        .bind(local_date.format("%Y-%m-%d").to_string())
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))
}
