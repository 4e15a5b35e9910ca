//! All availability and presence SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::db::placeholders;
use crate::identity::model::AccountId;
use crate::on_pool;

#[derive(sqlx::FromRow)]
pub struct AvailabilityRow {
    pub status: String,
    pub hold_while_busy: bool,
    pub time_zone: String,
    pub weekly_schedule: String,
    pub date_overrides: String,
    pub ooo_from: Option<DateTime<Utc>>,
    pub ooo_to: Option<DateTime<Utc>>,
    pub ooo_message: Option<String>,
    /// The schedule has a zone of its own, not the profile's.
    pub time_zone_overridden: bool,
}

/// Of `accounts`, those whose status is `busy` and who hold alerts while busy.
pub async fn holding_alerts(db: &Db, busy: &str, accounts: &[AccountId]) -> Result<Vec<AccountId>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in accounts.chunks(500) {
        let sql = format!(
            "SELECT account_id FROM availability WHERE status = $1 AND hold_while_busy AND account_id IN ({})",
            crate::db::placeholders(2, chunk.len())
        );
        let rows: Vec<AccountId> = on_pool!(db, p => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(busy);
            for a in chunk {
                q = q.bind(*a);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

pub async fn find(db: &Db, account_id: AccountId) -> Result<Option<AvailabilityRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT status, hold_while_busy, time_zone, weekly_schedule, date_overrides, ooo_from, ooo_to, ooo_message, \
           time_zone_overridden \
         FROM availability WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(p)
        .await)
}

/// A part of the row a change writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Status,
    HoldWhileBusy,
    TimeZone,
    Weekly,
    Overrides,
    OutOfOffice,
}

impl Part {
    fn columns(self) -> &'static [&'static str] {
        match self {
            Part::Status => &["status"],
            Part::HoldWhileBusy => &["hold_while_busy"],
            Part::TimeZone => &["time_zone", "time_zone_overridden"],
            Part::Weekly => &["weekly_schedule"],
            Part::Overrides => &["date_overrides"],
            Part::OutOfOffice => &["ooo_from", "ooo_to", "ooo_message"],
        }
    }
}

/// Writes `parts` of the row in one statement (the whole row when the account has none
/// yet). Only those columns change, so two changes at once to different parts (a status
/// and working hours) both stay.
pub async fn upsert(db: &Db, account_id: AccountId, row: &AvailabilityRow, parts: &[Part], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut set: Vec<String> = parts.iter().flat_map(|p| p.columns()).map(|c| format!("{c} = excluded.{c}")).collect();
    set.push("updated_at = excluded.updated_at".into());
    let sql = format!(
        "INSERT INTO availability (account_id, status, hold_while_busy, time_zone, weekly_schedule, date_overrides, \
         ooo_from, ooo_to, ooo_message, updated_at, time_zone_overridden) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (account_id) DO UPDATE SET {}",
        set.join(", ")
    );
    on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(account_id)
        .bind(&row.status)
        .bind(row.hold_while_busy)
        .bind(&row.time_zone)
        .bind(&row.weekly_schedule)
        .bind(&row.date_overrides)
        .bind(row.ooo_from)
        .bind(row.ooo_to)
        .bind(&row.ooo_message)
        .bind(now)
        .bind(row.time_zone_overridden)
        .execute(p)
        .await
        .map(drop))
}

/// One more open connection of the account in this process.
pub async fn connection_opened(db: &Db, process_id: Uuid, account_id: AccountId) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO presence_connection (process_id, account_id, connections, last_closed_at) VALUES ($1, $2, 1, NULL) \
         ON CONFLICT (process_id, account_id) DO UPDATE SET connections = presence_connection.connections + 1")
        .bind(process_id)
        .bind(account_id)
        .execute(p)
        .await
        .map(drop))
}

/// One connection fewer; stamps when it closed.
pub async fn connection_closed(db: &Db, process_id: Uuid, account_id: AccountId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE presence_connection SET connections = CASE WHEN connections > 0 THEN connections - 1 ELSE 0 END, \
         last_closed_at = $3 WHERE process_id = $1 AND account_id = $2")
        .bind(process_id)
        .bind(account_id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// The chosen status of each of these accounts that has saved one.
pub async fn statuses(db: &Db, ids: &[AccountId]) -> Result<Vec<(AccountId, String)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT account_id, status FROM availability WHERE account_id IN ({})", placeholders(1, ids.len()));
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// What colleagues see of each account besides its status: time zone and out-of-office period.
pub async fn shared(
    db: &Db,
    ids: &[AccountId],
) -> Result<Vec<(AccountId, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql =
        // The zone in effect: the schedule's own, else the profile's, else the one stored.
        format!(
            "SELECT a.account_id, \
               CASE WHEN v.time_zone_overridden THEN v.time_zone ELSE COALESCE(a.time_zone, v.time_zone, 'UTC') END AS time_zone, \
               v.ooo_from, v.ooo_to \
             FROM account a LEFT JOIN availability v ON v.account_id = a.account_id WHERE a.account_id IN ({})",
            placeholders(1, ids.len())
        );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// Each process's open connections of these accounts, and when its last one closed.
pub async fn connections(db: &Db, ids: &[AccountId]) -> Result<Vec<(AccountId, i32, Option<DateTime<Utc>>)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT account_id, connections, last_closed_at FROM presence_connection WHERE account_id IN ({})",
        placeholders(1, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// This process is alive at `now`.
pub async fn heartbeat(db: &Db, process_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO presence_process (process_id, seen_at) VALUES ($1, $2) \
         ON CONFLICT (process_id) DO UPDATE SET seen_at = excluded.seen_at")
        .bind(process_id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Deletes the connection counts of processes not seen since `cutoff` (or never), and those
/// processes; returns the accounts whose presence may have changed.
pub async fn sweep(db: &Db, cutoff: DateTime<Utc>) -> Result<Vec<AccountId>, sqlx::Error> {
    const STALE: &str =
        "NOT EXISTS (SELECT 1 FROM presence_process p WHERE p.process_id = presence_connection.process_id AND p.seen_at >= $1)";
    let accounts: Vec<AccountId> = on_pool!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT account_id FROM presence_connection WHERE {STALE}")))
        .bind(cutoff)
        .fetch_all(p)
        .await)?;
    if !accounts.is_empty() {
        on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM presence_connection WHERE {STALE}")))
            .bind(cutoff)
            .execute(p)
            .await
            .map(drop))?;
    }
    on_pool!(db, p => sqlx::query("DELETE FROM presence_process WHERE seen_at < $1").bind(cutoff).execute(p).await.map(drop))?;
    Ok(accounts)
}
