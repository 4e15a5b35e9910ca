//! SQL for mailed links and the verified mark.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Link, Purpose};
use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

pub struct NewLink<'a> {
    pub account_id: AccountId,
    pub purpose: Purpose,
    pub email: &'a str,
    pub token_hash: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Records a link; earlier unused links of the same purpose stop working, so only the newest
/// email's link does.
pub async fn insert_link(tx: &mut Tx, l: &NewLink<'_>) -> Result<(), sqlx::Error> {
    retire_links(tx, l.account_id, l.purpose, l.now).await?;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO account_link (account_link_id, account_id, purpose, email, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(Uuid::now_v7())
        .bind(l.account_id)
        .bind(l.purpose.as_str())
        .bind(l.email)
        .bind(l.token_hash)
        .bind(l.now)
        .bind(l.expires_at)
        .execute(c)
        .await
        .map(drop))
}

/// Marks every unused link of `purpose` of the account as used.
pub async fn retire_links(tx: &mut Tx, account_id: AccountId, purpose: Purpose, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE account_link SET used_at = $3 WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(account_id)
        .bind(purpose.as_str())
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

pub async fn find_link(db: &Db, token_hash: &[u8]) -> Result<Option<Link>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT account_link_id, account_id, purpose, email, expires_at, used_at FROM account_link WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(p)
        .await)
}

/// Spends a link; false when another request spent it first.
pub async fn use_link(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE account_link SET used_at = $2 WHERE account_link_id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Marks the login email verified, if it still is `email`; false when it changed since.
pub async fn mark_verified(tx: &mut Tx, account_id: AccountId, email: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE account SET email_verified_at = COALESCE(email_verified_at, $3), updated_at = $3 WHERE account_id = $1 AND email = $2")
        .bind(account_id)
        .bind(email)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
