//! All contact SQL.

use chrono::{DateTime, Utc};

use super::model::{Contact, ContactEmail, ContactId};
use crate::db::{Db, Tx};
use crate::workspace::model::WorkspaceId;
use crate::{on_pool, on_tx};

const COLUMNS: &str = "contact_id, workspace_id, name, created_at, updated_at";

pub async fn insert_contact(tx: &mut Tx, c: &Contact) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO contact (contact_id, workspace_id, name, name_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(c.contact_id)
        .bind(c.workspace_id)
        .bind(&c.name)
        .bind(c.name.to_lowercase())
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(conn)
        .await
        .map(drop))
}

pub async fn update_name(tx: &mut Tx, id: ContactId, name: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("UPDATE contact SET name = $2, name_key = $3, updated_at = $4 WHERE contact_id = $1")
        .bind(id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(now)
        .execute(conn)
        .await
        .map(drop))
}

/// Adds an address; false when another contact of the workspace has it.
pub async fn insert_email(
    tx: &mut Tx,
    workspace_id: WorkspaceId,
    id: ContactId,
    address: &str,
    position: i32,
) -> Result<bool, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO contact_email (contact_id, workspace_id, address, address_key, position) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, address_key) DO NOTHING")
        .bind(id)
        .bind(workspace_id)
        .bind(address)
        .bind(super::model::address_key(address))
        .bind(position)
        .execute(conn)
        .await
        .map(|r| r.rows_affected() == 1))
}

pub async fn delete_contact(tx: &mut Tx, id: ContactId) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM contact WHERE contact_id = $1").bind(id).execute(conn).await.map(drop))
}

pub async fn delete_emails(tx: &mut Tx, id: ContactId) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM contact_email WHERE contact_id = $1").bind(id).execute(conn).await.map(drop))
}

/// The contact of the workspace with this address (compared case-insensitively).
pub async fn contact_by_address(tx: &mut Tx, workspace_id: WorkspaceId, address: &str) -> Result<Option<ContactId>, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query_scalar("SELECT contact_id FROM contact_email WHERE workspace_id = $1 AND address_key = $2")
        .bind(workspace_id)
        .bind(super::model::address_key(address))
        .fetch_optional(conn)
        .await)
}

/// The contacts of the workspace with these address keys: (address key, contact).
pub async fn contacts_by_address_keys(
    tx: &mut Tx,
    workspace_id: WorkspaceId,
    keys: &[&str],
) -> Result<Vec<(String, ContactId)>, sqlx::Error> {
    crate::in_list!(fetch_all tx, keys, 2,
        |list| format!("SELECT address_key, contact_id FROM contact_email WHERE workspace_id = $1 AND address_key {list}"),
        |sql| sqlx::query_as(sql).bind(workspace_id))
}

pub async fn find_contacts(db: &Db, ids: &[ContactId]) -> Result<Vec<Contact>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT {COLUMNS} FROM contact WHERE contact_id IN ({})", crate::db::placeholders(1, chunk.len()));
        let rows: Vec<Contact> = on_pool!(db, p => {
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

pub async fn find_contact_tx(tx: &mut Tx, id: ContactId) -> Result<Option<Contact>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM contact WHERE contact_id = $1");
    on_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(conn).await)
}

/// The addresses of these contacts, each contact's in its order.
pub async fn emails_of(db: &Db, ids: &[ContactId]) -> Result<Vec<ContactEmail>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT contact_id, address FROM contact_email WHERE contact_id IN ({}) ORDER BY contact_id, position",
            crate::db::placeholders(1, chunk.len())
        );
        let rows: Vec<ContactEmail> = on_pool!(db, p => {
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

/// A page of the workspace's contacts, oldest first, after `after`; `search` matches a
/// name or an address (case-insensitive substring).
pub async fn contacts_page(
    db: &Db,
    workspace_id: WorkspaceId,
    search: Option<&str>,
    after: Option<ContactId>,
    limit: i64,
) -> Result<Vec<Contact>, sqlx::Error> {
    let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    let sql = format!(
        "SELECT {COLUMNS} FROM contact c WHERE workspace_id = $1 AND ($2 IS NULL OR contact_id > $2) \
         AND ($3 IS NULL OR name_key LIKE $3 ESCAPE '\\' OR EXISTS (SELECT 1 FROM contact_email e \
              WHERE e.contact_id = c.contact_id AND e.address_key LIKE $3 ESCAPE '\\')) \
         ORDER BY contact_id LIMIT $4"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(workspace_id)
        .bind(after)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(p)
        .await)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Moves `from`'s addresses and activity to `into`, then deletes `from`.
pub async fn merge_into(tx: &mut Tx, from: ContactId, into: ContactId) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE contact_email SET contact_id = $2, position = position + 1000 WHERE contact_id = $1")
            .bind(from)
            .bind(into)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE activity_event SET contact_id = $2 WHERE contact_id = $1").bind(from).bind(into).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM contact WHERE contact_id = $1").bind(from).execute(&mut *conn).await.map(drop)
    })
}

pub async fn contact_matching(tx: &mut Tx, workspace_id: WorkspaceId) -> Result<Option<String>, sqlx::Error> {
    on_tx!(tx, conn => sqlx::query_scalar("SELECT contact_matching FROM workspace WHERE workspace_id = $1")
        .bind(workspace_id)
        .fetch_optional(conn)
        .await)
}

pub async fn set_contact_matching(db: &Db, workspace_id: WorkspaceId, value: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE workspace SET contact_matching = $2 WHERE workspace_id = $1")
        .bind(workspace_id)
        .bind(value)
        .execute(p)
        .await
        .map(drop))
}
