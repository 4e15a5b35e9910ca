//! All platform-event SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::db::{anonymous_rows, placeholders, row_placeholders};
use crate::identity::model::AccountId;
use crate::service_accounts::model::ServiceAccountId;
use crate::workspace::model::WorkspaceId;
use crate::{on_pool, on_tx};

/// One event, as stored.
pub struct EventRow<'a> {
    pub platform_event_id: Uuid,
    pub workspace_id: WorkspaceId,
    pub service_account_id: ServiceAccountId,
    pub kind: &'a str,
    pub idempotency_key: &'a str,
    pub subject_type: &'a str,
    pub subject_id: &'a str,
    pub subject_title: &'a str,
    pub subject_url: Option<&'a str>,
    pub actor_type: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub actor_name: Option<&'a str>,
    pub data: &'a str,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Inserts the event unless the workspace already has one with its idempotency key; returns
/// whether it was inserted. The unique key settles a race between two retries.
pub async fn insert_event(tx: &mut Tx, e: &EventRow<'_>) -> Result<bool, sqlx::Error> {
    Ok(!insert_events(tx, std::slice::from_ref(e)).await?.is_empty())
}

/// The columns of `platform_event`, in the order [`EventRow`] binds them.
const EVENT_COLUMNS: &str = "platform_event_id, workspace_id, service_account_id, kind, idempotency_key, subject_type, subject_id, \
     subject_title, subject_url, actor_type, actor_id, actor_name, data, scheduled_at, occurred_at, created_at";

/// Rows per multi-row INSERT of events on SQLite (16 binds each).
const EVENT_CHUNK: usize = 200;

/// [`insert_event`] for many events at once: those whose idempotency key the workspace
/// already has are skipped, as is a later row repeating an earlier row's key. Returns the
/// ids of the events inserted. On PostgreSQL one statement whatever the count (arrays through
/// `UNNEST`, so its text is prepared once); on SQLite multi-row VALUES per 200.
pub async fn insert_events(tx: &mut Tx, rows: &[EventRow<'_>]) -> Result<Vec<Uuid>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match tx {
        Tx::Postgres(t) => {
            let sql = format!(
                "INSERT INTO platform_event ({EVENT_COLUMNS}) \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], \
                   $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], \
                   $15::timestamptz[], $16::timestamptz[]) \
                 ON CONFLICT (workspace_id, idempotency_key) DO NOTHING RETURNING platform_event_id"
            );
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(rows.iter().map(|e| e.platform_event_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.workspace_id.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.service_account_id.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.kind).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.idempotency_key).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.subject_type).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.subject_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.subject_title).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.subject_url).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.actor_type).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.actor_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.actor_name).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.data).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.scheduled_at).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
                .bind(rows.iter().map(|e| e.created_at).collect::<Vec<_>>())
                .fetch_all(&mut **t)
                .await
        }
        Tx::Sqlite(t) => {
            let mut inserted = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(EVENT_CHUNK) {
                let sql = format!(
                    "INSERT INTO platform_event ({EVENT_COLUMNS}) VALUES {} \
                     ON CONFLICT (workspace_id, idempotency_key) DO NOTHING RETURNING platform_event_id",
                    anonymous_rows(chunk.len(), 16)
                );
                let mut q = sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql));
                for e in chunk {
                    q = q
                        .bind(e.platform_event_id)
                        .bind(e.workspace_id)
                        .bind(e.service_account_id)
                        .bind(e.kind)
                        .bind(e.idempotency_key)
                        .bind(e.subject_type)
                        .bind(e.subject_id)
                        .bind(e.subject_title)
                        .bind(e.subject_url)
                        .bind(e.actor_type)
                        .bind(e.actor_id)
                        .bind(e.actor_name)
                        .bind(e.data)
                        .bind(e.scheduled_at)
                        .bind(e.occurred_at)
                        .bind(e.created_at);
                }
                inserted.extend(q.fetch_all(&mut **t).await?);
            }
            Ok(inserted)
        }
    }
}

/// The ids of the workspace's events with these idempotency keys: (key, id).
pub async fn find_by_keys(tx: &mut Tx, workspace_id: WorkspaceId, keys: &[&str]) -> Result<Vec<(String, Uuid)>, sqlx::Error> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(RECIPIENT_CHUNK) {
        let sql = format!(
            "SELECT idempotency_key, platform_event_id FROM platform_event WHERE workspace_id = $1 AND idempotency_key IN ({})",
            placeholders(2, chunk.len())
        );
        let rows: Vec<(String, Uuid)> = on_tx!(tx, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id);
            for key in chunk {
                q = q.bind(*key);
            }
            q.fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The recipients of many events: (event, account) pairs, each pair once.
pub async fn insert_recipients_of(tx: &mut Tx, rows: &[(Uuid, AccountId)]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(t) => {
            sqlx::query("INSERT INTO platform_event_recipient (platform_event_id, account_id) SELECT * FROM UNNEST($1::uuid[], $2::uuid[])")
                .bind(rows.iter().map(|(e, _)| *e).collect::<Vec<_>>())
                .bind(rows.iter().map(|(_, a)| a.0).collect::<Vec<_>>())
                .execute(&mut **t)
                .await
                .map(drop)
        }
        Tx::Sqlite(t) => {
            for chunk in rows.chunks(RECIPIENT_CHUNK) {
                let sql = format!(
                    "INSERT INTO platform_event_recipient (platform_event_id, account_id) VALUES {}",
                    anonymous_rows(chunk.len(), 2)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (event, account) in chunk {
                    q = q.bind(*event).bind(*account);
                }
                q.execute(&mut **t).await?;
            }
            Ok(())
        }
    }
}

/// Rows per INSERT of recipients (two binds each; well under both backends' bind limits).
const RECIPIENT_CHUNK: usize = 500;

pub async fn insert_recipients(tx: &mut Tx, event_id: Uuid, accounts: &[AccountId]) -> Result<(), sqlx::Error> {
    for chunk in accounts.chunks(RECIPIENT_CHUNK) {
        let sql =
            format!("INSERT INTO platform_event_recipient (platform_event_id, account_id) VALUES {}", row_placeholders(chunk.len(), 2));
        on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for account in chunk {
                q = q.bind(event_id).bind(*account);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

/// The id of the workspace's event with this idempotency key.
pub async fn find_by_key(tx: &mut Tx, workspace_id: WorkspaceId, key: &str) -> Result<Option<Uuid>, sqlx::Error> {
    on_tx!(tx, p => sqlx::query_scalar("SELECT platform_event_id FROM platform_event WHERE workspace_id = $1 AND idempotency_key = $2")
        .bind(workspace_id)
        .bind(key)
        .fetch_optional(p)
        .await)
}

/// Events the workspace holds (for tests and operators).
pub async fn count(db: &Db, workspace_id: WorkspaceId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM platform_event WHERE workspace_id = $1")
        .bind(workspace_id)
        .fetch_one(p)
        .await)
}

/// An active member of the workspace, as recipients are resolved against (an inactive
/// membership is no membership).
#[derive(sqlx::FromRow)]
pub struct MemberRow {
    pub account_id: AccountId,
    pub role: String,
    pub status: String,
}

pub async fn members(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<MemberRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT m.account_id, m.role, a.status FROM membership m JOIN account a ON a.account_id = m.account_id \
         WHERE m.workspace_id = $1 AND m.status = 'ACTIVE'")
        .bind(workspace_id)
        .fetch_all(p)
        .await)
}

/// [`members`] among `accounts` only: what a request that names its recipients (and no roles)
/// needs, not the whole workspace.
pub async fn members_among(db: &Db, workspace_id: WorkspaceId, accounts: &[AccountId]) -> Result<Vec<MemberRow>, sqlx::Error> {
    const SELECT: &str = "SELECT m.account_id, m.role, a.status FROM membership m JOIN account a ON a.account_id = m.account_id \
                          WHERE m.workspace_id = $1 AND m.status = 'ACTIVE' AND m.account_id";
    match &db.pool {
        crate::db::Pool::Postgres(p) => {
            let ids: Vec<uuid::Uuid> = accounts.iter().map(|a| a.0).collect();
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} = ANY($2)"))).bind(workspace_id).bind(ids).fetch_all(p).await
        }
        crate::db::Pool::Sqlite(p) => {
            let mut rows = Vec::with_capacity(accounts.len());
            for chunk in accounts.chunks(crate::db::IN_CHUNK) {
                let sql = format!("{SELECT} IN ({})", placeholders(2, chunk.len()));
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(workspace_id);
                for account in chunk {
                    q = q.bind(*account);
                }
                rows.extend(q.fetch_all(p).await?);
            }
            Ok(rows)
        }
    }
}

/// A task or an appointment on someone's day.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AgendaRow {
    pub kind: String,
    pub subject_title: String,
    pub scheduled_at: DateTime<Utc>,
}

/// The account's tasks and appointments scheduled in `[from, to)`, each subject once: an
/// event counts only if it is the latest the account got about its subject, so a task moved
/// to tomorrow (or completed) leaves today. Earliest first.
pub async fn agenda(db: &Db, account_id: AccountId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<AgendaRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT e.kind, e.subject_title, e.scheduled_at \
         FROM platform_event e JOIN platform_event_recipient r ON r.platform_event_id = e.platform_event_id \
         WHERE r.account_id = $1 AND e.scheduled_at >= $2 AND e.scheduled_at < $3 \
           AND NOT EXISTS ( \
             SELECT 1 FROM platform_event l JOIN platform_event_recipient lr ON lr.platform_event_id = l.platform_event_id \
             WHERE lr.account_id = $1 AND l.workspace_id = e.workspace_id \
               AND l.subject_type = e.subject_type AND l.subject_id = e.subject_id \
               AND (l.occurred_at > e.occurred_at OR (l.occurred_at = e.occurred_at AND l.platform_event_id > e.platform_event_id))) \
         ORDER BY e.scheduled_at, e.subject_title \
         LIMIT 200")
        .bind(account_id)
        .bind(from)
        .bind(to)
        .fetch_all(p)
        .await)
}
