//! SQL for account deletion.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

pub async fn schedule(tx: &mut Tx, id: AccountId, at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE account SET deletion_scheduled_at = $2, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(at)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

pub async fn scheduled_at(db: &Db, id: AccountId) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let at: Option<Option<DateTime<Utc>>> = on_pool!(db, p => sqlx::query_scalar("SELECT deletion_scheduled_at FROM account WHERE account_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(at.flatten())
}

/// Accounts whose grace period is over.
pub async fn due(db: &Db, now: DateTime<Utc>) -> Result<Vec<(AccountId, DateTime<Utc>)>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as("SELECT account_id, deletion_scheduled_at FROM account WHERE deletion_scheduled_at <= $1")
        .bind(now)
        .fetch_all(p)
        .await)
}

/// The workspaces where the account is the only active owner (by the rule the workspace
/// domain keeps: an active owner membership of an active account), each with how many other
/// active members it has.
pub async fn sole_ownerships(tx: &mut Tx, id: AccountId) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT m.workspace_id, (SELECT COUNT(*) FROM membership o WHERE o.workspace_id = m.workspace_id AND o.account_id <> $1 AND o.status = 'ACTIVE') \
         FROM membership m \
         WHERE m.account_id = $1 AND m.role = 'OWNER' AND m.status = 'ACTIVE' AND NOT EXISTS ( \
             SELECT 1 FROM membership o JOIN account a ON a.account_id = o.account_id \
             WHERE o.workspace_id = m.workspace_id AND o.account_id <> $1 AND o.role = 'OWNER' AND o.status = 'ACTIVE' AND a.status = 'ACTIVE')")
        .bind(id)
        .fetch_all(c)
        .await)
}

pub async fn delete_workspace(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("DELETE FROM workspace WHERE workspace_id = $1").bind(id).execute(c).await.map(drop))
}

pub async fn mailboxes_of(tx: &mut Tx, id: AccountId) -> Result<Vec<Uuid>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_scalar("SELECT mailbox_id FROM mailbox WHERE account_id = $1").bind(id).fetch_all(c).await)
}

/// Removes the account; sessions, tokens, two-factor, push subscriptions, mailboxes and
/// calendar accounts (with their sealed credentials) go with it by their foreign keys, and
/// recorded mail activity loses its mailbox (so it no longer names the account).
pub async fn delete_account(tx: &mut Tx, id: AccountId, requested_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("INSERT INTO deleted_account (account_id, requested_at, deleted_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(requested_at)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(drop))?;
    on_tx!(tx, c => sqlx::query("DELETE FROM account WHERE account_id = $1").bind(id).execute(c).await.map(drop))
}
