//! All activity SQL.

use chrono::{DateTime, Utc};

use super::model::{ActivityEvent, EventId, Thread, ThreadId};
use crate::contacts::model::ContactId;
use crate::db::{Db, Tx};
use crate::db::{placeholders, row_placeholders};
use crate::workspace::model::WorkspaceId;
use crate::{on_pool, on_tx};

const COLUMNS: &str =
    "event_id, workspace_id, contact_id, mailbox_id, kind, occurred_at, dedupe_key, data, malformed, created_at, thread_id, message_id";
const THREAD_COLUMNS: &str = "thread_id, workspace_id, subject, last_activity_at, created_at";

/// Records many events in one statement per 200; returns the ids of those recorded (the
/// others the workspace had already, by kind and dedupe key).
pub async fn insert_events(tx: &mut Tx, events: &[ActivityEvent]) -> Result<Vec<EventId>, sqlx::Error> {
    let mut inserted = Vec::with_capacity(events.len());
    for chunk in events.chunks(200) {
        let sql = format!(
            "INSERT INTO activity_event ({COLUMNS}) VALUES {} ON CONFLICT (workspace_id, kind, dedupe_key) DO NOTHING RETURNING event_id",
            row_placeholders(chunk.len(), 12)
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
                    // By value: SQLite then shares the text instead of copying it per row.
                    .bind(e.data.clone())
                    .bind(e.malformed)
                    .bind(e.created_at)
                    .bind(e.thread_id)
                    .bind(&e.message_id);
            }
            q.fetch_all(c).await
        })?;
        inserted.extend(ids);
    }
    Ok(inserted)
}

/// The ids of the workspace's events of `kind` with these dedupe keys.
pub async fn events_by_keys(
    tx: &mut Tx,
    workspace_id: WorkspaceId,
    kind: &str,
    keys: &[&str],
) -> Result<Vec<(String, EventId)>, sqlx::Error> {
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
pub async fn events_page(
    db: &Db,
    feed: Feed,
    kinds: &[&str],
    before: Option<Position>,
    limit: i64,
) -> Result<Vec<ActivityEvent>, sqlx::Error> {
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

/// The threads of the workspace's mail events with these Message-IDs (in `id_key` form):
/// (Message-ID, thread). An id may come back more than once (a message sent to several
/// contacts is an event on each).
pub async fn threads_by_message_ids(tx: &mut Tx, workspace_id: WorkspaceId, ids: &[&str]) -> Result<Vec<(String, ThreadId)>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT message_id, thread_id FROM activity_event WHERE workspace_id = $1 AND message_id IN ({}) AND thread_id IS NOT NULL \
             ORDER BY event_id",
            placeholders(2, chunk.len())
        );
        let rows: Vec<(String, ThreadId)> = on_tx!(tx, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// Starts threads, 200 per statement.
pub async fn insert_threads(tx: &mut Tx, threads: &[Thread]) -> Result<(), sqlx::Error> {
    for chunk in threads.chunks(200) {
        let sql = format!("INSERT INTO thread ({THREAD_COLUMNS}) VALUES {}", row_placeholders(chunk.len(), 5));
        on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for t in chunk {
                q = q.bind(t.thread_id).bind(t.workspace_id).bind(&t.subject).bind(t.last_activity_at).bind(t.created_at);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

pub async fn delete_threads(tx: &mut Tx, ids: &[ThreadId]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!("DELETE FROM thread WHERE thread_id IN ({})", placeholders(1, chunk.len()));
        on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

/// Sets each thread's `last_activity_at` to its latest event's time, from the events
/// themselves (so mail recorded late, older than the thread's last, changes nothing).
pub async fn refresh_threads(tx: &mut Tx, ids: &[ThreadId]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE thread SET last_activity_at = COALESCE((SELECT MAX(e.occurred_at) FROM activity_event e \
               WHERE e.workspace_id = thread.workspace_id AND e.thread_id = thread.thread_id), last_activity_at) \
             WHERE thread_id IN ({})",
            placeholders(1, chunk.len())
        );
        on_tx!(tx, c => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

pub async fn find_threads(db: &Db, ids: &[ThreadId]) -> Result<Vec<Thread>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM thread WHERE thread_id IN ({})", placeholders(1, chunk.len()));
        let rows: Vec<Thread> = on_pool!(db, p => {
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

/// A thread's events, oldest first (by when they happened, then by id), after `after`.
pub async fn thread_events_page(db: &Db, thread: &Thread, after: Option<Position>, limit: i64) -> Result<Vec<ActivityEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM activity_event WHERE workspace_id = $1 AND thread_id = $2 \
         AND ($3 IS NULL OR occurred_at > $3 OR (occurred_at = $3 AND event_id > $4)) \
         ORDER BY occurred_at, event_id LIMIT $5"
    );
    let (at, last) = (after.map(|a| a.0), after.map(|a| a.1));
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(thread.workspace_id)
        .bind(thread.thread_id)
        .bind(at)
        .bind(last)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// Where a page of threads starts: after the thread last active at this time with this id.
pub type ThreadPosition = (DateTime<Utc>, ThreadId);

/// The threads with an event on the contact, most recently active first (then by id), after
/// `before`.
pub async fn contact_threads_page(
    db: &Db,
    contact_id: ContactId,
    before: Option<ThreadPosition>,
    limit: i64,
) -> Result<Vec<Thread>, sqlx::Error> {
    let sql = format!(
        "SELECT {THREAD_COLUMNS} FROM thread WHERE thread_id IN \
           (SELECT thread_id FROM activity_event WHERE contact_id = $1 AND thread_id IS NOT NULL) \
         AND ($2 IS NULL OR last_activity_at < $2 OR (last_activity_at = $2 AND thread_id < $3)) \
         ORDER BY last_activity_at DESC, thread_id DESC LIMIT $4"
    );
    let (at, last) = (before.map(|b| b.0), before.map(|b| b.1));
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(contact_id)
        .bind(at)
        .bind(last)
        .bind(limit)
        .fetch_all(p)
        .await)
}
