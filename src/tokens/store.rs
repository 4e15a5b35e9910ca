//! All access-token SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::AccessToken;
use crate::db::Db;
use crate::identity::model::{Account, AccountId};
use crate::on_pool;

const COLUMNS: &str = "access_token_id, account_id, name, display_prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

pub async fn insert(db: &Db, t: &AccessToken, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO access_token (access_token_id, account_id, name, token_hash, display_prefix, scopes, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(t.access_token_id)
        .bind(t.account_id)
        .bind(&t.name)
        .bind(token_hash)
        .bind(&t.display_prefix)
        .bind(&t.scopes)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(p)
        .await
        .map(drop))
}

/// The token with this hash and its account, in one statement (the authenticator's read).
pub async fn find_by_hash(db: &Db, token_hash: &[u8]) -> Result<Option<(AccessToken, Account)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        access_token_id: Uuid,
        name: String,
        display_prefix: String,
        scopes: String,
        token_created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
        #[sqlx(flatten)]
        account: Account,
    }
    let sql = format!(
        "SELECT t.access_token_id, t.name, t.display_prefix, t.scopes, t.created_at AS token_created_at, \
                t.expires_at, t.last_used_at, t.revoked_at, {} \
         FROM access_token t JOIN account a ON a.account_id = t.account_id WHERE t.token_hash = $1",
        crate::identity::store::ACCOUNT_COLUMNS_A
    );
    let row: Option<Row> = on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(token_hash)
        .fetch_optional(p)
        .await)?;
    Ok(row.map(|r| {
        let token = AccessToken {
            access_token_id: r.access_token_id,
            account_id: r.account.account_id,
            name: r.name,
            display_prefix: r.display_prefix,
            scopes: r.scopes,
            created_at: r.token_created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        };
        (token, r.account)
    }))
}

pub async fn list(db: &Db, account_id: AccountId) -> Result<Vec<AccessToken>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM access_token WHERE account_id = $1 AND revoked_at IS NULL ORDER BY access_token_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).fetch_all(p).await)
}

pub async fn find(db: &Db, account_id: AccountId, id: Uuid) -> Result<Option<AccessToken>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM access_token WHERE account_id = $1 AND access_token_id = $2 AND revoked_at IS NULL");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account_id).bind(id).fetch_optional(p).await)
}

pub async fn revoke(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE access_token SET revoked_at = $2 WHERE access_token_id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// A new secret for the same token settings.
pub async fn replace_secret(db: &Db, id: Uuid, token_hash: &[u8], display_prefix: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE access_token SET token_hash = $2, display_prefix = $3, last_used_at = NULL WHERE access_token_id = $1")
        .bind(id)
        .bind(token_hash)
        .bind(display_prefix)
        .execute(p)
        .await
        .map(drop))
}

pub async fn touch(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE access_token SET last_used_at = $2 WHERE access_token_id = $1")
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}
