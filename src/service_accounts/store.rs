//! All service-account SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{ServiceAccount, ServiceAccountId, ServiceAccountToken};
use crate::db::{Db, Tx, UniqueKey};
use crate::workspace::model::WorkspaceId;
use crate::{on_pool, on_tx};

/// Service-account names are unique within a workspace.
pub const NAME_KEY: UniqueKey =
    UniqueKey { name: "service_account_workspace_name_key", columns: "service_account.workspace_id, service_account.name" };

const ACCOUNT_COLUMNS: &str = "service_account_id, workspace_id, name, scopes, created_by, created_at, updated_at, disabled_at";
const TOKEN_COLUMNS: &str = "service_account_token_id, service_account_id, name, display_prefix, scopes, created_by, \
     created_at, expires_at, last_used_at, revoked_at";

/// The constraint a second account with the same name in a workspace breaks.
pub const NAME_CONSTRAINT: &str = "service_account_workspace_name_key";

pub async fn insert(db: &Db, a: &ServiceAccount) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO service_account (service_account_id, workspace_id, name, scopes, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(a.service_account_id)
        .bind(a.workspace_id)
        .bind(&a.name)
        .bind(&a.scopes)
        .bind(a.created_by)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(p)
        .await
        .map(drop))
}

pub async fn find(db: &Db, id: ServiceAccountId) -> Result<Option<ServiceAccount>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM service_account WHERE service_account_id = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

pub async fn list(db: &Db, workspace_id: WorkspaceId) -> Result<Vec<ServiceAccount>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM service_account WHERE workspace_id = $1 ORDER BY service_account_id");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).fetch_all(p).await)
}

pub async fn rename(db: &Db, id: ServiceAccountId, name: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE service_account SET name = $2, updated_at = $3 WHERE service_account_id = $1")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Disables (with the time) or enables (None) the account.
pub async fn set_disabled(
    db: &Db,
    id: ServiceAccountId,
    disabled_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE service_account SET disabled_at = $2, updated_at = $3 WHERE service_account_id = $1")
        .bind(id)
        .bind(disabled_at)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Deletes the account and (by cascade) its tokens; its published events stay.
pub async fn delete(tx: &mut Tx, id: ServiceAccountId) -> Result<bool, sqlx::Error> {
    on_tx!(tx, c => sqlx::query("DELETE FROM service_account WHERE service_account_id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected() > 0))
}

pub async fn insert_token(db: &Db, t: &ServiceAccountToken, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO service_account_token (service_account_token_id, service_account_id, name, token_hash, display_prefix, \
           scopes, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(t.service_account_token_id)
        .bind(t.service_account_id)
        .bind(&t.name)
        .bind(token_hash)
        .bind(&t.display_prefix)
        .bind(&t.scopes)
        .bind(t.created_by)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(p)
        .await
        .map(drop))
}

/// The account's tokens that were not revoked, oldest first.
pub async fn tokens(db: &Db, id: ServiceAccountId) -> Result<Vec<ServiceAccountToken>, sqlx::Error> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM service_account_token WHERE service_account_id = $1 AND revoked_at IS NULL \
         ORDER BY service_account_token_id"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_all(p).await)
}

pub async fn find_token(db: &Db, id: Uuid) -> Result<Option<ServiceAccountToken>, sqlx::Error> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM service_account_token WHERE service_account_token_id = $1 AND revoked_at IS NULL");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

pub async fn revoke_token(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE service_account_token SET revoked_at = $2 WHERE service_account_token_id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// The token with this hash and its account, in one statement (the authenticator's read).
pub async fn find_by_hash(db: &Db, token_hash: &[u8]) -> Result<Option<(ServiceAccountToken, ServiceAccount)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        service_account_token_id: Uuid,
        token_name: String,
        display_prefix: String,
        token_scopes: String,
        token_created_by: Option<crate::identity::model::AccountId>,
        token_created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
        #[sqlx(flatten)]
        account: ServiceAccount,
    }
    let sql = "SELECT t.service_account_token_id, t.name AS token_name, t.display_prefix, t.scopes AS token_scopes, \
                 t.created_by AS token_created_by, t.created_at AS token_created_at, t.expires_at, t.last_used_at, t.revoked_at, \
                 a.service_account_id, a.workspace_id, a.name, a.scopes, a.created_by, a.created_at, a.updated_at, a.disabled_at \
               FROM service_account_token t JOIN service_account a ON a.service_account_id = t.service_account_id \
               WHERE t.token_hash = $1";
    let row: Option<Row> = on_pool!(db, p => sqlx::query_as(sql).bind(token_hash).fetch_optional(p).await)?;
    Ok(row.map(|r| {
        let token = ServiceAccountToken {
            service_account_token_id: r.service_account_token_id,
            service_account_id: r.account.service_account_id,
            name: r.token_name,
            display_prefix: r.display_prefix,
            scopes: r.token_scopes,
            created_by: r.token_created_by,
            created_at: r.token_created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        };
        (token, r.account)
    }))
}

pub async fn touch_token(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE service_account_token SET last_used_at = $2 WHERE service_account_token_id = $1")
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}
