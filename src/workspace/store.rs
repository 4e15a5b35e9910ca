//! All workspace and membership SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Membership, Role, Workspace, WorkspaceId};
use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::identity::store::placeholders;
use crate::{on_pool, on_tx};

const MEMBERSHIP_COLUMNS: &str = "membership_id, workspace_id, account_id, role, created_at";

pub async fn insert_workspace(tx: &mut Tx, w: &Workspace) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("INSERT INTO workspace (workspace_id, name, created_at) VALUES ($1, $2, $3)")
        .bind(w.workspace_id)
        .bind(&w.name)
        .bind(w.created_at)
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}

pub async fn insert_membership(
    tx: &mut Tx,
    workspace_id: WorkspaceId,
    account_id: AccountId,
    role: Role,
    now: DateTime<Utc>,
) -> Result<Membership, sqlx::Error> {
    let m = Membership {
        membership_id: Uuid::now_v7(),
        workspace_id,
        account_id,
        role: super::model::RoleColumn(role),
        created_at: now,
    };
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO membership (membership_id, workspace_id, account_id, role, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(m.membership_id)
        .bind(workspace_id)
        .bind(account_id)
        .bind(role.as_str())
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    Ok(m)
}

pub async fn find_workspaces(db: &Db, ids: &[WorkspaceId]) -> Result<Vec<Workspace>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT workspace_id, name, created_at FROM workspace WHERE workspace_id IN ({})",
        placeholders(1, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// Locks the workspace for the rest of the transaction, so checks such as "is this the last
/// owner" cannot race. SQLite's BEGIN IMMEDIATE already serialises writers.
pub async fn lock_workspace(tx: &mut Tx, id: WorkspaceId) -> Result<bool, sqlx::Error> {
    let found: Option<Uuid> = match tx {
        Tx::Sqlite(t) => {
            sqlx::query_scalar("SELECT workspace_id FROM workspace WHERE workspace_id = $1")
                .bind(id)
                .fetch_optional(&mut **t)
                .await?
        }
        Tx::Postgres(t) => {
            sqlx::query_scalar("SELECT workspace_id FROM workspace WHERE workspace_id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut **t)
                .await?
        }
    };
    Ok(found.is_some())
}

pub async fn find_membership(db: &Db, workspace_id: WorkspaceId, account_id: AccountId) -> Result<Option<Membership>, sqlx::Error> {
    let sql = format!("SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE workspace_id = $1 AND account_id = $2");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(account_id).fetch_optional(p).await)
}

pub async fn find_membership_tx(tx: &mut Tx, workspace_id: WorkspaceId, account_id: AccountId) -> Result<Option<Membership>, sqlx::Error> {
    let sql = format!("SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE workspace_id = $1 AND account_id = $2");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(account_id).fetch_optional(c).await)
}

/// Memberships of several accounts at once (for `User.memberships` through a DataLoader).
pub async fn memberships_of_accounts(db: &Db, ids: &[AccountId]) -> Result<Vec<Membership>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE account_id IN ({}) ORDER BY membership_id",
        placeholders(1, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// One page of a workspace's members in join order, starting after `after` (keyset pagination).
pub async fn members_page(
    db: &Db,
    workspace_id: WorkspaceId,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Membership>, sqlx::Error> {
    let sql = format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE workspace_id = $1 AND ($2 IS NULL OR membership_id > $2) \
         ORDER BY membership_id LIMIT $3"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(workspace_id)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)
}

pub async fn count_members(db: &Db, workspace_id: WorkspaceId) -> Result<i64, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM membership WHERE workspace_id = $1")
        .bind(workspace_id)
        .fetch_one(p)
        .await)
}

/// Owners of the workspace whose accounts are active.
pub async fn count_active_owners(tx: &mut Tx, workspace_id: WorkspaceId) -> Result<i64, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership m JOIN account a ON a.account_id = m.account_id \
         WHERE m.workspace_id = $1 AND m.role = 'OWNER' AND a.status = 'ACTIVE'")
        .bind(workspace_id)
        .fetch_one(c)
        .await)
}

pub async fn set_role(tx: &mut Tx, membership_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE membership SET role = $2 WHERE membership_id = $1")
        .bind(membership_id)
        .bind(role.as_str())
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}
