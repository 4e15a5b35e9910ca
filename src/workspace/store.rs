//! All workspace and membership SQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Invitation, InvitationId, Membership, MembershipStatus, Role, Workspace, WorkspaceId};
use crate::db::StoredEnum as _;
use crate::db::placeholders;
use crate::db::{Db, Stored, Tx, UniqueKey};
use crate::identity::model::AccountId;
use crate::{on_pool, on_tx};

/// One open invitation per address and workspace.
pub const OPEN_INVITATION_KEY: UniqueKey =
    UniqueKey { name: "workspace_invitation_open_key", columns: "workspace_invitation.workspace_id, workspace_invitation.email" };

const MEMBERSHIP_COLUMNS: &str = "membership_id, workspace_id, account_id, role, status, created_at";

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
        role: Stored(role),
        status: Stored(MembershipStatus::Active),
        created_at: now,
    };
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO membership (membership_id, workspace_id, account_id, role, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(m.membership_id)
        .bind(workspace_id)
        .bind(account_id)
        .bind(role.stored_name())
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
    let sql = format!("SELECT workspace_id, name, created_at FROM workspace WHERE workspace_id IN ({})", placeholders(1, ids.len()));
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

pub async fn find_workspace_tx(tx: &mut Tx, id: WorkspaceId) -> Result<Option<Workspace>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT workspace_id, name, created_at FROM workspace WHERE workspace_id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// Locks the workspace for the rest of the transaction, so checks such as "is this the last
/// owner" cannot race. SQLite's BEGIN IMMEDIATE already serialises writers.
pub async fn lock_workspace(tx: &mut Tx, id: WorkspaceId) -> Result<bool, sqlx::Error> {
    let found: Option<Uuid> = match tx {
        Tx::Sqlite(t) => {
            sqlx::query_scalar("SELECT workspace_id FROM workspace WHERE workspace_id = $1").bind(id).fetch_optional(&mut **t).await?
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

/// The account's membership of the workspace if it is active: the check every
/// workspace-scoped read makes.
pub async fn find_active_membership(db: &Db, workspace_id: WorkspaceId, account_id: AccountId) -> Result<Option<Membership>, sqlx::Error> {
    let sql = format!("SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE workspace_id = $1 AND account_id = $2 AND status = 'ACTIVE'");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(account_id).fetch_optional(p).await)
}

/// The account's membership of the workspace, whatever its status.
pub async fn find_membership_tx(tx: &mut Tx, workspace_id: WorkspaceId, account_id: AccountId) -> Result<Option<Membership>, sqlx::Error> {
    let sql = format!("SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE workspace_id = $1 AND account_id = $2");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(account_id).fetch_optional(c).await)
}

/// Memberships of several accounts at once (for `User.memberships` through a DataLoader).
pub async fn memberships_of_accounts(db: &Db, ids: &[AccountId]) -> Result<Vec<Membership>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql =
        format!("SELECT {MEMBERSHIP_COLUMNS} FROM membership WHERE account_id IN ({}) ORDER BY membership_id", placeholders(1, ids.len()));
    on_pool!(db, p => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// One page of a workspace's members in join order, starting after `after` (keyset pagination).
pub async fn members_page(db: &Db, workspace_id: WorkspaceId, after: Option<Uuid>, limit: i64) -> Result<Vec<Membership>, sqlx::Error> {
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

/// The workspace's active owners: owner memberships that are active, of accounts that are
/// active (an owner who deactivated their account cannot act for the workspace either).
/// `leaving` is left out of the count.
pub async fn count_other_active_owners(tx: &mut Tx, workspace_id: WorkspaceId, leaving: AccountId) -> Result<i64, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM membership m JOIN account a ON a.account_id = m.account_id \
         WHERE m.workspace_id = $1 AND m.account_id <> $2 AND m.role = 'OWNER' AND m.status = 'ACTIVE' AND a.status = 'ACTIVE'")
        .bind(workspace_id)
        .bind(leaving)
        .fetch_one(c)
        .await)
}

pub async fn set_membership_status(tx: &mut Tx, membership_id: Uuid, status: MembershipStatus) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE membership SET status = $2 WHERE membership_id = $1")
        .bind(membership_id)
        .bind(status.stored_name())
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}

/// Workspaces the account is the last active owner of while others are active members in
/// them: the account holder may not walk away from those.
pub async fn workspaces_only_owned_by(tx: &mut Tx, account_id: AccountId) -> Result<Vec<WorkspaceId>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_scalar(
        "SELECT m.workspace_id FROM membership m \
         WHERE m.account_id = $1 AND m.role = 'OWNER' AND m.status = 'ACTIVE' \
           AND NOT EXISTS (SELECT 1 FROM membership o JOIN account a ON a.account_id = o.account_id \
               WHERE o.workspace_id = m.workspace_id AND o.account_id <> $1 AND o.role = 'OWNER' AND o.status = 'ACTIVE' AND a.status = 'ACTIVE') \
           AND EXISTS (SELECT 1 FROM membership x JOIN account b ON b.account_id = x.account_id \
               WHERE x.workspace_id = m.workspace_id AND x.account_id <> $1 AND x.status = 'ACTIVE' AND b.status = 'ACTIVE') \
         ORDER BY m.workspace_id")
        .bind(account_id)
        .fetch_all(c)
        .await)
}

// --- invitations ----------------------------------------------------------------------------

const INVITATION_COLUMNS: &str = "workspace_invitation_id, workspace_id, email, role, invited_by, created_at, sent_at, expires_at, \
     accepted_at, declined_at, revoked_at";
/// Still open: neither accepted, declined nor revoked (it may have expired).
const OPEN: &str = "accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL";

pub async fn insert_invitation(tx: &mut Tx, i: &Invitation, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO workspace_invitation (workspace_invitation_id, workspace_id, email, role, invited_by, token_hash, created_at, sent_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)")
        .bind(i.workspace_invitation_id)
        .bind(i.workspace_id)
        .bind(&i.email)
        .bind(i.role().stored_name())
        .bind(i.invited_by)
        .bind(token_hash)
        .bind(i.created_at)
        .bind(i.expires_at)
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}

pub async fn find_invitation(tx: &mut Tx, id: InvitationId) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!("SELECT {INVITATION_COLUMNS} FROM workspace_invitation WHERE workspace_invitation_id = $1");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(c).await)
}

pub async fn find_invitation_by_token(tx: &mut Tx, token_hash: &[u8]) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!("SELECT {INVITATION_COLUMNS} FROM workspace_invitation WHERE token_hash = $1");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(token_hash).fetch_optional(c).await)
}

/// The open invitation of `email` to the workspace, if any (expired or not).
pub async fn open_invitation(tx: &mut Tx, workspace_id: WorkspaceId, email: &str) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = format!("SELECT {INVITATION_COLUMNS} FROM workspace_invitation WHERE workspace_id = $1 AND email = $2 AND {OPEN}");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(email).fetch_optional(c).await)
}

/// The workspace's invitations still waiting for an answer, oldest first (at most 500).
pub async fn pending_invitations_of_workspace(
    db: &Db,
    workspace_id: WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Vec<Invitation>, sqlx::Error> {
    let sql = format!(
        "SELECT {INVITATION_COLUMNS} FROM workspace_invitation WHERE workspace_id = $1 AND {OPEN} AND expires_at > $2 \
         ORDER BY workspace_invitation_id LIMIT 500"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(workspace_id).bind(now).fetch_all(p).await)
}

/// The invitations addressed to `email` still waiting for an answer, oldest first.
pub async fn pending_invitations_for(db: &Db, email: &str, now: DateTime<Utc>) -> Result<Vec<Invitation>, sqlx::Error> {
    let sql = format!(
        "SELECT {INVITATION_COLUMNS} FROM workspace_invitation WHERE email = $1 AND {OPEN} AND expires_at > $2 \
         ORDER BY workspace_invitation_id LIMIT 500"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(email).bind(now).fetch_all(p).await)
}

/// How an open invitation ends.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Accepted,
    Declined,
    Revoked,
}

/// Ends an invitation that is still open; false when it was not (a race lost, a reuse).
pub async fn close_invitation(tx: &mut Tx, id: InvitationId, outcome: Outcome, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let column = match outcome {
        Outcome::Accepted => "accepted_at",
        Outcome::Declined => "declined_at",
        Outcome::Revoked => "revoked_at",
    };
    let sql = format!("UPDATE workspace_invitation SET {column} = $2 WHERE workspace_invitation_id = $1 AND {OPEN}");
    let n = on_tx!(tx, c => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A new token and expiry for an open invitation (a resend): the old link stops working.
pub async fn renew_invitation(
    tx: &mut Tx,
    id: InvitationId,
    token_hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE workspace_invitation SET token_hash = $2, sent_at = $3, expires_at = $4 WHERE workspace_invitation_id = $1 AND {OPEN}"
    );
    let n = on_tx!(tx, c => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn set_role(tx: &mut Tx, membership_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query("UPDATE membership SET role = $2 WHERE membership_id = $1")
        .bind(membership_id)
        .bind(role.stored_name())
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}
