//! All identity SQL: accounts and sessions. One function per statement; the same text runs on
//! SQLite and PostgreSQL (both accept `$N` placeholders).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Account, AccountId, AccountStatus, Email, NewAccount};
use crate::db::StoredEnum as _;
use crate::db::{Db, Tx, UniqueKey};
use crate::{on_pool, on_tx};

/// One account per login email (stored lower-cased).
pub const EMAIL_KEY: UniqueKey = UniqueKey { name: "account_email_key", columns: "account.email" };

const ACCOUNT_COLUMNS: &str = "account_id, email, first_name, last_name, status, created_at, updated_at, \
     display_name, phone, phone_e164, job_title, language, photo_key, email_verified_at, time_zone";
/// The same columns of `account a`, for joins.
pub const ACCOUNT_COLUMNS_A: &str = "a.account_id, a.email, a.first_name, a.last_name, a.status, a.created_at, a.updated_at, \
     a.display_name, a.phone, a.phone_e164, a.job_title, a.language, a.photo_key, a.email_verified_at, a.time_zone";

/// The person's time zone as set on the profile (None: not set; a stored name no longer
/// known reads as not set).
pub async fn time_zone(db: &Db, id: AccountId) -> Result<Option<chrono_tz::Tz>, sqlx::Error> {
    let zone: Option<Option<String>> = on_pool!(db, p => sqlx::query_scalar("SELECT time_zone FROM account WHERE account_id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(zone.flatten().and_then(|z| z.parse().ok()))
}

pub async fn insert_account(
    tx: &mut Tx,
    id: AccountId,
    new: &NewAccount,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO account (account_id, email, password_hash, first_name, last_name, status, created_at, updated_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, 'ACTIVE', $6, $6, $6)")
        .bind(id)
        .bind(new.email.as_str())
        .bind(password_hash)
        .bind(new.first_name.as_str())
        .bind(new.last_name.as_str())
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}

/// Marks the login email proven (an invitation's emailed token was used to sign up).
pub async fn set_email_verified(tx: &mut Tx, id: AccountId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE account SET email_verified_at = $2 WHERE account_id = $1").bind(id).bind(now).execute(c).await.map(drop))
}

/// What log-in needs of an account: the account, its password hash, whether 2FA is on.
#[derive(sqlx::FromRow)]
pub struct LoginRow {
    #[sqlx(flatten)]
    pub account: Account,
    pub password_hash: String,
    pub two_factor: bool,
}

/// The account with this login email, as log-in needs it.
pub async fn find_login(db: &Db, email: &Email) -> Result<Option<LoginRow>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS}, password_hash, (totp_secret IS NOT NULL) AS two_factor FROM account WHERE email = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(email.as_str())
        .fetch_optional(p)
        .await)
}

pub async fn find_accounts(db: &Db, ids: &[AccountId]) -> Result<Vec<Account>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // One statement for the whole batch: `IN ($1, …, $n)` works on both backends.
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE account_id IN ({})", crate::db::placeholders(1, ids.len()));
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

pub async fn find_account_by_email(tx: &mut Tx, email: &Email) -> Result<Option<Account>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE email = $1");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(email.as_str()).fetch_optional(c).await)
}

pub async fn set_account_status(tx: &mut Tx, id: AccountId, status: AccountStatus, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE account SET status = $2, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(status.stored_name())
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}

/// A session, as the authenticator needs it: the session and its account in one statement.
#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub account: Account,
}

pub struct NewSession<'a> {
    pub session_id: Uuid,
    pub account_id: AccountId,
    pub token_hash: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn insert_session(db: &Db, s: NewSession<'_>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO session (session_id, account_id, token_hash, created_at, last_seen_at, expires_at, ip, user_agent) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7)")
        .bind(s.session_id)
        .bind(s.account_id)
        .bind(s.token_hash)
        .bind(s.now)
        .bind(s.expires_at)
        .bind(s.ip)
        .bind(s.user_agent)
        .execute(p)
        .await
        .map(drop))?;
    Ok(())
}

pub async fn find_session(db: &Db, token_hash: &[u8]) -> Result<Option<SessionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT s.session_id, s.expires_at, s.revoked_at, s.last_seen_at, {ACCOUNT_COLUMNS_A} \
         FROM session s JOIN account a ON a.account_id = s.account_id WHERE s.token_hash = $1"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(token_hash)
        .fetch_optional(p)
        .await)
}

pub async fn touch_session(db: &Db, session_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE session SET last_seen_at = $2 WHERE session_id = $1")
        .bind(session_id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))?;
    Ok(())
}

pub async fn revoke_session(db: &Db, session_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE session SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))?;
    Ok(())
}

pub async fn account_is_active(tx: &mut Tx, id: AccountId) -> Result<bool, sqlx::Error> {
    let status: Option<String> = on_tx!(tx, c => sqlx::query_scalar("SELECT status FROM account WHERE account_id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(status.as_deref() == Some("ACTIVE"))
}

/// Ends every live session of the account (deactivation, and later password changes).
pub async fn revoke_account_sessions(tx: &mut Tx, account_id: AccountId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE session SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL")
        .bind(account_id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))
}

#[derive(sqlx::FromRow)]
pub struct SessionInfo {
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The account's sessions not revoked (expired ones are filtered by the caller).
pub async fn list_sessions(db: &Db, account_id: AccountId) -> Result<Vec<SessionInfo>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT session_id, created_at, last_seen_at, expires_at, ip, user_agent FROM session \
         WHERE account_id = $1 AND revoked_at IS NULL ORDER BY session_id DESC")
        .bind(account_id)
        .fetch_all(p)
        .await)
}

/// Revokes one of the account's sessions; false if it has none such.
pub async fn revoke_own_session(db: &Db, account_id: AccountId, session_id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, p => sqlx::query("UPDATE session SET revoked_at = $3 WHERE account_id = $1 AND session_id = $2 AND revoked_at IS NULL")
        .bind(account_id)
        .bind(session_id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Ends every session of the account but `keep` (password change, "sign out elsewhere").
/// Returns how many ended.
pub async fn revoke_other_sessions(tx: &mut Tx, id: AccountId, keep: Uuid, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE session SET revoked_at = $3 WHERE account_id = $1 AND session_id <> $2 AND revoked_at IS NULL")
        .bind(id)
        .bind(keep)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
}
