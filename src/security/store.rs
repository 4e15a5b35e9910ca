//! All two-factor, password and security-log SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::log::SecurityEvent;
use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

#[derive(sqlx::FromRow)]
pub struct SecurityRow {
    pub password_hash: String,
    pub password_changed_at: Option<DateTime<Utc>>,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_pending_secret: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
}

pub async fn security_row(db: &Db, id: AccountId) -> Result<Option<SecurityRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT password_hash, password_changed_at, totp_secret, totp_pending_secret, totp_last_step FROM account WHERE account_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)
}

pub async fn set_pending_secret(db: &Db, id: AccountId, sealed: &[u8]) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE account SET totp_pending_secret = $2 WHERE account_id = $1")
        .bind(id)
        .bind(sealed)
        .execute(p)
        .await
        .map(drop))
}

pub async fn enable_totp(tx: &mut Tx, id: AccountId, step: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE account SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_enabled_at = $2, totp_last_step = $3 \
         WHERE account_id = $1")
        .bind(id)
        .bind(now)
        .bind(step)
        .execute(c)
        .await
        .map(drop))
}

pub async fn disable_totp(tx: &mut Tx, id: AccountId) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE account SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL WHERE account_id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(drop))?;
    on_tx!(tx, c => sqlx::query("DELETE FROM recovery_code WHERE account_id = $1").bind(id).execute(c).await.map(drop))
}

/// Accepts a TOTP step once: only a step later than the last one used moves the marker.
pub async fn claim_step(db: &Db, id: AccountId, step: i64) -> Result<bool, sqlx::Error> {
    let r = on_pool!(db, p => sqlx::query(
        "UPDATE account SET totp_last_step = $2 WHERE account_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)")
        .bind(id)
        .bind(step)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn replace_recovery_codes(tx: &mut Tx, id: AccountId, hashes: &[Vec<u8>], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("DELETE FROM recovery_code WHERE account_id = $1").bind(id).execute(c).await.map(drop))?;
    for hash in hashes {
        on_tx!(tx, c => sqlx::query("INSERT INTO recovery_code (recovery_code_id, account_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(hash.as_slice())
            .bind(now)
            .execute(c)
            .await
            .map(drop))?;
    }
    Ok(())
}

/// Spends a recovery code: true only the first time.
pub async fn spend_recovery_code(db: &Db, id: AccountId, hash: &[u8], now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let r = on_pool!(db, p => sqlx::query(
        "UPDATE recovery_code SET used_at = $3 WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn recovery_codes_left(db: &Db, id: AccountId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM recovery_code WHERE account_id = $1 AND used_at IS NULL")
        .bind(id)
        .fetch_one(p)
        .await)
}

pub async fn insert_challenge(
    db: &Db,
    id: AccountId,
    token_hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO login_challenge (login_challenge_id, account_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(p)
        .await
        .map(drop))
}

#[derive(sqlx::FromRow)]
pub struct ChallengeRow {
    pub login_challenge_id: Uuid,
    pub account_id: AccountId,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub attempts: i32,
}

pub async fn find_challenge(db: &Db, token_hash: &[u8]) -> Result<Option<ChallengeRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT login_challenge_id, account_id, expires_at, used_at, attempts FROM login_challenge WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(p)
        .await)
}

pub async fn count_failed_attempt(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE login_challenge SET attempts = attempts + 1 WHERE login_challenge_id = $1")
        .bind(id)
        .execute(p)
        .await
        .map(drop))
}

/// Marks the challenge used; false if someone else completed it first.
pub async fn use_challenge(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let r = on_pool!(db, p => sqlx::query("UPDATE login_challenge SET used_at = $2 WHERE login_challenge_id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn set_password(tx: &mut Tx, id: AccountId, hash: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE account SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

pub struct NewSecurityEvent<'a> {
    pub event_id: Uuid,
    pub account_id: AccountId,
    pub kind: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: Option<&'a str>,
}

pub async fn insert_security_event(db: &Db, e: &NewSecurityEvent<'_>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO security_event (event_id, account_id, kind, occurred_at, ip, user_agent, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(e.event_id)
        .bind(e.account_id)
        .bind(e.kind)
        .bind(e.occurred_at)
        .bind(e.ip)
        .bind(e.user_agent)
        .bind(e.detail)
        .execute(p)
        .await
        .map(drop))
}

/// Newest first, keyset-paginated on the (time-ordered) event id.
/// Security events older than `cursor` newest first, or (`newer`) newer than it oldest first.
pub async fn security_events(
    db: &Db,
    account_id: AccountId,
    cursor: Option<Uuid>,
    newer: bool,
    limit: i64,
) -> Result<Vec<SecurityEvent>, sqlx::Error> {
    let sql = if newer {
        "SELECT event_id, kind, occurred_at, ip, user_agent, detail FROM security_event \
         WHERE account_id = $1 AND ($2 IS NULL OR event_id > $2) ORDER BY event_id ASC LIMIT $3"
    } else {
        "SELECT event_id, kind, occurred_at, ip, user_agent, detail FROM security_event \
         WHERE account_id = $1 AND ($2 IS NULL OR event_id < $2) ORDER BY event_id DESC LIMIT $3"
    };
    on_pool!(db, p => sqlx::query_as(sql)
        .bind(account_id)
        .bind(cursor)
        .bind(limit)
        .fetch_all(p)
        .await)
}
