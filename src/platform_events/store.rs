//! All platform-event SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::row_placeholders;
use crate::db::{Db, Tx};
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
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO platform_event (platform_event_id, workspace_id, service_account_id, kind, idempotency_key, \
           subject_type, subject_id, subject_title, subject_url, actor_type, actor_id, actor_name, data, scheduled_at, \
           occurred_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (workspace_id, idempotency_key) DO NOTHING")
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
        .bind(e.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))
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
