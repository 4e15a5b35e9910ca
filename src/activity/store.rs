//! All activity SQL.

use chrono::{DateTime, Utc};

use super::model::{ActivityEvent, EventId, Thread, ThreadId};
use crate::contacts::model::ContactId;
use crate::db::{Db, Tx};
use crate::db::{anonymous_rows, placeholders};
use crate::workspace::model::WorkspaceId;
use crate::{in_list, on_pool, on_tx};

const COLUMNS: &str =
    "event_id, workspace_id, contact_id, mailbox_id, kind, occurred_at, dedupe_key, data, malformed, created_at, thread_id, message_id";
const THREAD_COLUMNS: &str = "thread_id, workspace_id, subject, last_activity_at, created_at";

/// Records many events; returns the ids of those recorded (the others the workspace had
/// already, by kind and dedupe key). On PostgreSQL one statement whose columns are arrays
/// (UNNEST): its text does not depend on the count, so each connection prepares it once; a
/// VALUES list of as many rows as events would be a new statement (parsed and planned
/// again) at almost every batch. SQLite prepares cheaply in process: one VALUES statement
/// per 200 events.
pub async fn insert_events(tx: &mut Tx, events: &[ActivityEvent]) -> Result<Vec<EventId>, sqlx::Error> {
    const CONFLICT: &str = "ON CONFLICT (workspace_id, kind, dedupe_key) DO NOTHING RETURNING event_id";
    if let Tx::Postgres(c) = tx {
        let sql = format!(
            "INSERT INTO activity_event ({COLUMNS}) SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], \
               $6::timestamptz[], $7::text[], $8::text[], $9::boolean[], $10::timestamptz[], $11::uuid[], $12::text[]) {CONFLICT}"
        );
        return sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.workspace_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.contact_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.mailbox_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.dedupe_key.as_str()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| &*e.data).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.malformed).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.thread_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.message_id.as_deref()).collect::<Vec<_>>())
            .fetch_all(&mut **c)
            .await;
    }
    let mut inserted = Vec::with_capacity(events.len());
    for chunk in events.chunks(200) {
        let sql = format!("INSERT INTO activity_event ({COLUMNS}) VALUES {} {CONFLICT}", anonymous_rows(chunk.len(), 12));
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
    const SELECT: &str = "SELECT dedupe_key, event_id FROM activity_event WHERE workspace_id = $1 AND kind = $2 AND dedupe_key";
    in_list!(fetch_all tx, keys, 3, |list| format!("{SELECT} {list}"), |sql| sqlx::query_as(sql).bind(workspace_id).bind(kind))
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
    in_list!(fetch_all tx, ids, 2,
        |list| format!("SELECT message_id, thread_id FROM activity_event WHERE workspace_id = $1 AND message_id {list} \
            AND thread_id IS NOT NULL ORDER BY event_id"),
        |sql| sqlx::query_as(sql).bind(workspace_id))
}

/// Starts threads: on PostgreSQL in one statement of arrays (see [`insert_events`]), on
/// SQLite 200 per statement.
pub async fn insert_threads(tx: &mut Tx, threads: &[Thread]) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(c) = tx {
        let sql = format!(
            "INSERT INTO thread ({THREAD_COLUMNS}) SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[])"
        );
        return sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(threads.iter().map(|t| t.thread_id).collect::<Vec<_>>())
            .bind(threads.iter().map(|t| t.workspace_id).collect::<Vec<_>>())
            .bind(threads.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>())
            .bind(threads.iter().map(|t| t.last_activity_at).collect::<Vec<_>>())
            .bind(threads.iter().map(|t| t.created_at).collect::<Vec<_>>())
            .execute(&mut **c)
            .await
            .map(drop);
    }
    for chunk in threads.chunks(200) {
        let sql = format!("INSERT INTO thread ({THREAD_COLUMNS}) VALUES {}", anonymous_rows(chunk.len(), 5));
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
    in_list!(execute tx, ids, 1, |list| format!("DELETE FROM thread WHERE thread_id {list}"), |sql| sqlx::query(sql))
}

/// Sets each thread's `last_activity_at` to its latest event's time, from the events
/// themselves (so mail recorded late, older than the thread's last, changes nothing).
pub async fn refresh_threads(tx: &mut Tx, ids: &[ThreadId]) -> Result<(), sqlx::Error> {
    in_list!(execute tx, ids, 1,
        |list| format!(
            "UPDATE thread SET last_activity_at = COALESCE((SELECT MAX(e.occurred_at) FROM activity_event e \
               WHERE e.workspace_id = thread.workspace_id AND e.thread_id = thread.thread_id), last_activity_at) \
             WHERE thread_id {list}"),
        |sql| sqlx::query(sql))
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
