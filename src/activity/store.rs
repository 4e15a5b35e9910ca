//! All activity SQL.

use chrono::{DateTime, Utc};

use super::model::{ActivityEvent, EventId};
use crate::contacts::model::ContactId;
use crate::db::{Db, Tx};
use crate::identity::store::{placeholders, row_placeholders};
use crate::workspace::model::WorkspaceId;
use crate::{on_pool, on_tx};

const COLUMNS: &str = "event_id, workspace_id, contact_id, mailbox_id, kind, occurred_at, dedupe_key, data, malformed, created_at";

/// Records many events in one statement per 200; returns the ids of those recorded (the
/// others the workspace had already, by kind and dedupe key).
pub async fn insert_events(tx: &mut Tx, events: &[ActivityEvent]) -> Result<Vec<EventId>, sqlx::Error> {
    let mut inserted = Vec::with_capacity(events.len());
    for chunk in events.chunks(200) {
        let sql = format!(
            "INSERT INTO activity_event (event_id, workspace_id, contact_id, mailbox_id, kind, occurred_at, dedupe_key, data, malformed, created_at) \
             VALUES {} ON CONFLICT (workspace_id, kind, dedupe_key) DO NOTHING RETURNING event_id",
            row_placeholders(chunk.len(), 10)
        );
        let ids: Vec<EventId> = on_tx!(tx, c => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()));
            for e in chunk {
                q = q
                    .bind(e.event_id)
                    .bind(e.workspace_id)
                    .bind(e.contact_id)
                    .bind(e.mailbox_id)
                    .bind(&e.kind)
                    .bind(e.occurred_at)
                    .bind(&e.dedupe_key)
                    .bind(&e.data)
                    .bind(e.malformed)
                    .bind(e.created_at);
            }
            q.fetch_all(c).await
        })?;
        inserted.extend(ids);
    }
    Ok(inserted)
}

/// The ids of the workspace's events of `kind` with these dedupe keys.
pub async fn events_by_keys(tx: &mut Tx, workspace_id: WorkspaceId, kind: &str, keys: &[&str]) -> Result<Vec<(String, EventId)>, sqlx::Error> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let sql = format!(
            "SELECT dedupe_key, event_id FROM activity_event WHERE workspace_id = $1 AND kind = $2 AND dedupe_key IN ({})",
            placeholders(3, chunk.len())
        );
        let rows: Vec<(String, EventId)> = on_tx!(tx, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(kind);
            for k in chunk {
                q = q.bind(*k);
            }
            q.fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

pub async fn find_events(db: &Db, ids: &[EventId]) -> Result<Vec<ActivityEvent>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT {COLUMNS} FROM activity_event WHERE event_id IN ({})", placeholders(1, chunk.len()));
        let rows: Vec<ActivityEvent> = on_pool!(db, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// Which events a page holds: one contact's, or the whole workspace's.
#[derive(Clone, Copy, Debug)]
pub enum Feed {
    Contact(ContactId),
    Workspace(WorkspaceId),
}

/// Where a page of a feed starts: after the event that happened at this time with this id.
pub type Position = (DateTime<Utc>, EventId);

/// Most recent first (by when it happened, then by id), after `before`, of the given kinds
/// (all when empty).
pub async fn events_page(db: &Db, feed: Feed, kinds: &[&str], before: Option<Position>, limit: i64) -> Result<Vec<ActivityEvent>, sqlx::Error> {
    let (column, id) = match feed {
        Feed::Contact(c) => ("contact_id", c.0),
        Feed::Workspace(w) => ("workspace_id", w.0),
    };
    let kinds_filter = if kinds.is_empty() { String::new() } else { format!(" AND kind IN ({})", placeholders(5, kinds.len())) };
    let sql = format!(
        "SELECT {COLUMNS} FROM activity_event WHERE {column} = $1 \
         AND ($2 IS NULL OR occurred_at < $2 OR (occurred_at = $2 AND event_id < $3)){kinds_filter} \
         ORDER BY occurred_at DESC, event_id DESC LIMIT $4"
    );
    let (at, last) = (before.map(|b| b.0), before.map(|b| b.1));
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(at).bind(last).bind(limit);
        for k in kinds {
            q = q.bind(*k);
        }
        q.fetch_all(p).await
    })
}
