//! All profile SQL: personal data, the signature, the photo key and pending email changes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::ProfileChanges;
use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

/// Applies the changes given; fields not given keep their value (`COALESCE` on a flag).
pub async fn update_profile(tx: &mut Tx, id: AccountId, c: &ProfileChanges, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let phone = c.phone.as_ref().map(|p| p.as_ref().map(|p| p.as_entered.as_str()));
    let phone_e164 = c.phone.as_ref().map(|p| p.as_ref().and_then(|p| p.e164.as_deref()));
    on_tx!(tx, conn => sqlx::query(
        "UPDATE account SET \
           first_name   = COALESCE($2, first_name), \
           last_name    = COALESCE($3, last_name), \
           display_name = CASE WHEN $4 THEN $5 ELSE display_name END, \
           phone        = CASE WHEN $6 THEN $7 ELSE phone END, \
           phone_e164   = CASE WHEN $6 THEN $8 ELSE phone_e164 END, \
           job_title    = CASE WHEN $9 THEN $10 ELSE job_title END, \
           language     = COALESCE($11, language), \
           updated_at   = $12, \
           time_zone    = COALESCE($13, time_zone) \
         WHERE account_id = $1")
        .bind(id)
        .bind(c.first_name.as_ref().map(|n| n.as_str()))
        .bind(c.last_name.as_ref().map(|n| n.as_str()))
        .bind(c.display_name.is_some())
        .bind(c.display_name.clone().flatten())
        .bind(phone.is_some())
        .bind(phone.flatten())
        .bind(phone_e164.flatten())
        .bind(c.job_title.is_some())
        .bind(c.job_title.clone().flatten())
        .bind(c.language.as_deref())
        .bind(now)
        .bind(c.time_zone.map(|z| z.name()))
        .execute(conn)
        .await
        .map(drop))
}

pub async fn signature(db: &Db, id: AccountId) -> Result<Option<String>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT signature_html FROM account WHERE account_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
}

pub async fn set_signature(db: &Db, id: AccountId, html: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE account SET signature_html = $2, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(html)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Sets (or clears) the photo; returns the key it replaced.
pub async fn swap_photo(tx: &mut Tx, id: AccountId, key: Option<&str>, now: DateTime<Utc>) -> Result<Option<String>, sqlx::Error> {
    let old: Option<Option<String>> = on_tx!(tx, c => sqlx::query_scalar("SELECT photo_key FROM account WHERE account_id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?;
    on_tx!(tx, c => sqlx::query("UPDATE account SET photo_key = $2, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(key)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    Ok(old.flatten())
}

pub struct NewEmailChange<'a> {
    pub id: Uuid,
    pub account_id: AccountId,
    pub new_email: &'a str,
    pub token_hash: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Records a pending change; any earlier pending change of the account is voided.
pub async fn insert_email_change(tx: &mut Tx, e: &NewEmailChange<'_>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE email_change SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL")
        .bind(e.account_id)
        .bind(e.now)
        .execute(c)
        .await
        .map(drop))?;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO email_change (email_change_id, account_id, new_email, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(e.id)
        .bind(e.account_id)
        .bind(e.new_email)
        .bind(e.token_hash)
        .bind(e.now)
        .bind(e.expires_at)
        .execute(c)
        .await
        .map(drop))
}

#[derive(sqlx::FromRow)]
pub struct EmailChange {
    pub email_change_id: Uuid,
    pub account_id: AccountId,
    pub new_email: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn find_email_change(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<EmailChange>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT email_change_id, account_id, new_email, expires_at, used_at FROM email_change WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(c)
        .await)
}

pub async fn use_email_change(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE email_change SET used_at = $2 WHERE email_change_id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn set_email(tx: &mut Tx, id: AccountId, email: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    // The link that made the change was opened from the new address: it is verified.
    on_tx!(tx, c => sqlx::query("UPDATE account SET email = $2, email_verified_at = $3, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(email)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}
