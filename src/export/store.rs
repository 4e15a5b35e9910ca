//! SQL for data exports.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::DataExport;
use crate::db::Db;
use crate::identity::model::AccountId;
use crate::on_pool;

const COLUMNS: &str = "data_export_id, account_id, session_id, status, created_at, ready_at, expires_at, size_bytes";

pub async fn insert(db: &Db, id: Uuid, account_id: AccountId, session_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO data_export (data_export_id, account_id, session_id, status, created_at) VALUES ($1, $2, $3, 'PENDING', $4)")
        .bind(id)
        .bind(account_id)
        .bind(session_id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// The account's exports, newest first.
pub async fn list(db: &Db, account_id: AccountId) -> Result<Vec<DataExport>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM data_export WHERE account_id = $1 ORDER BY data_export_id DESC");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).fetch_all(p).await)
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<DataExport>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM data_export WHERE data_export_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

/// Exports the account asked for since `since`.
pub async fn count_since(db: &Db, account_id: AccountId, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM data_export WHERE account_id = $1 AND created_at > $2")
        .bind(account_id)
        .bind(since)
        .fetch_one(p)
        .await)
}

/// Claims the oldest export waiting to be built (or whose builder died before `stale`).
pub async fn claim(db: &Db, now: DateTime<Utc>, stale: DateTime<Utc>) -> Result<Option<DataExport>, sqlx::Error> {
    let next: Option<Uuid> = on_pool!(db, p => sqlx::query_scalar(
        "SELECT data_export_id FROM data_export WHERE status = 'PENDING' OR (status = 'BUILDING' AND claimed_at < $1) \
         ORDER BY data_export_id LIMIT 1")
        .bind(stale)
        .fetch_optional(p)
        .await)?;
    let Some(id) = next else { return Ok(None) };
    // Conditional: of two processes that picked the same row, one claims it.
    let n = on_pool!(db, p => sqlx::query(
        "UPDATE data_export SET status = 'BUILDING', claimed_at = $2 \
         WHERE data_export_id = $1 AND (status = 'PENDING' OR (status = 'BUILDING' AND claimed_at < $3))")
        .bind(id)
        .bind(now)
        .bind(stale)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    if n == 1 { find(db, id).await } else { Ok(None) }
}

pub async fn finish(db: &Db, id: Uuid, now: DateTime<Utc>, expires_at: DateTime<Utc>, size: i64) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE data_export SET status = 'READY', ready_at = $2, expires_at = $3, size_bytes = $4 WHERE data_export_id = $1")
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .bind(size)
        .execute(p)
        .await
        .map(drop))
}

pub async fn fail(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE data_export SET status = 'FAILED' WHERE data_export_id = $1").bind(id).execute(p).await.map(drop))
}

/// Exports to sweep: ready ones past their time, and failed ones asked for before `failed_before`.
pub async fn expired(db: &Db, now: DateTime<Utc>, failed_before: DateTime<Utc>) -> Result<Vec<DataExport>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM data_export WHERE (expires_at IS NOT NULL AND expires_at <= $1) OR (status = 'FAILED' AND created_at <= $2)"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(now).bind(failed_before).fetch_all(p).await)
}

pub async fn delete(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM data_export WHERE data_export_id = $1").bind(id).execute(p).await.map(drop))
}
