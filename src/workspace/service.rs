//! Workspace rules: who may see members, add them, change roles and deactivate accounts.
//! Every decision is made from the actor's role in that workspace, inside the transaction
//! that applies it.

use chrono::Utc;
use tracing::instrument;
use uuid::Uuid;

use super::model::{Membership, Permission, Role, Workspace, WorkspaceId};
use super::store;
use crate::db::{Db, Tx, is_unique_violation};
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::{AccountId, AccountStatus, Email};
use crate::identity::service::Viewer;
use crate::identity::store as identity_store;

#[derive(Clone)]
pub struct WorkspaceService {
    db: Db,
    fanout: Fanout,
}

impl WorkspaceService {
    pub fn new(db: Db, fanout: Fanout) -> Self {
        WorkspaceService { db, fanout }
    }

    /// The viewer's membership in `workspace_id`. Not a member: NOT_FOUND, so a stranger
    /// cannot tell a workspace exists.
    pub async fn membership_of(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<Membership> {
        store::find_membership(&self.db, workspace_id, viewer.account_id())
            .await?
            .ok_or(Error::NotFound("workspace"))
    }

    pub async fn workspace(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<Workspace> {
        self.membership_of(viewer, workspace_id).await?;
        store::find_workspaces(&self.db, &[workspace_id])
            .await?
            .pop()
            .ok_or(Error::NotFound("workspace"))
    }

    /// One page of members in join order, after the membership `after`; fetches one extra
    /// row to tell whether another page follows.
    pub async fn members(
        &self,
        viewer: &Viewer,
        workspace_id: WorkspaceId,
        after: Option<Uuid>,
        first: usize,
    ) -> Result<(Vec<Membership>, bool)> {
        let mine = self.membership_of(viewer, workspace_id).await?;
        require(mine.role(), Permission::ViewMembers)?;
        let page = store::members_page(&self.db, workspace_id, after, first as i64 + 1).await?;
        Ok(crate::db::split_page(page, first))
    }

    pub async fn count_members(&self, workspace_id: WorkspaceId) -> Result<i64> {
        Ok(store::count_members(&self.db, workspace_id).await?)
    }

    /// Adds an existing account to the workspace with `role` (at most the actor's own).
    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn add_member(&self, viewer: &Viewer, workspace_id: WorkspaceId, email: Email, role: Role) -> Result<Membership> {
        let mut tx = self.db.begin().await?;
        let actor = self.actor(&mut tx, viewer, workspace_id, Permission::ManageMembers).await?;
        grantable(actor.role(), role)?;
        let account = identity_store::find_account_by_email(&mut tx, &email)
            .await?
            .ok_or(Error::NotFound("account"))?;
        let membership = store::insert_membership(&mut tx, workspace_id, account.account_id, role, Utc::now())
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::conflict("email", "this account is already a member")
                } else {
                    e.into()
                }
            })?;
        tx.commit().await?;
        self.fanout.publish(Change::Account { account_id: account.account_id }).await;
        Ok(membership)
    }

    /// Gives a member another role. Nobody grants a role above their own or changes the role
    /// of someone ranked above them, and the last active owner stays an owner.
    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn assign_role(&self, viewer: &Viewer, workspace_id: WorkspaceId, account_id: AccountId, role: Role) -> Result<Membership> {
        let mut tx = self.db.begin().await?;
        let actor = self.actor(&mut tx, viewer, workspace_id, Permission::ManageRoles).await?;
        grantable(actor.role(), role)?;
        let mut target = member(&mut tx, workspace_id, account_id).await?;
        if target.role() > actor.role() {
            return Err(Error::forbidden("you cannot change the role of someone ranked above you"));
        }
        if target.role() == Role::Owner && role != Role::Owner {
            ensure_another_owner(&mut tx, workspace_id, account_id).await?;
        }
        store::set_role(&mut tx, target.membership_id, role).await?;
        tx.commit().await?;
        target.role = super::model::RoleColumn(role);
        self.fanout.publish(Change::Account { account_id }).await;
        Ok(target)
    }

    /// Activates or deactivates a member's account. A deactivated account cannot log in and
    /// its sessions stop working at once.
    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn set_member_status(
        &self,
        viewer: &Viewer,
        workspace_id: WorkspaceId,
        account_id: AccountId,
        status: AccountStatus,
    ) -> Result<Membership> {
        if account_id == viewer.account_id() {
            return Err(Error::forbidden("you cannot change your own status"));
        }
        let mut tx = self.db.begin().await?;
        let actor = self.actor(&mut tx, viewer, workspace_id, Permission::DeactivateMembers).await?;
        let target = member(&mut tx, workspace_id, account_id).await?;
        if target.role() > actor.role() {
            return Err(Error::forbidden("you cannot change the status of someone ranked above you"));
        }
        if status == AccountStatus::Inactive && target.role() == Role::Owner {
            ensure_another_owner(&mut tx, workspace_id, account_id).await?;
        }
        let now = Utc::now();
        identity_store::set_account_status(&mut tx, account_id, status, now).await?;
        if status == AccountStatus::Inactive {
            // Reactivation must not bring old sessions back: they end here, for good.
            identity_store::revoke_account_sessions(&mut tx, account_id, now).await?;
        }
        tx.commit().await?;
        tracing::info!(account_id = %account_id, status = status.as_str(), "member status changed");
        self.fanout.publish(Change::Account { account_id }).await;
        if status == AccountStatus::Inactive {
            self.fanout.publish(Change::Sessions { account_id }).await;
        }
        Ok(target)
    }

    /// The actor's membership, locked with its workspace, if it holds `permission`.
    async fn actor(&self, tx: &mut Tx, viewer: &Viewer, workspace_id: WorkspaceId, permission: Permission) -> Result<Membership> {
        if !store::lock_workspace(tx, workspace_id).await? {
            return Err(Error::NotFound("workspace"));
        }
        let actor = store::find_membership_tx(tx, workspace_id, viewer.account_id())
            .await?
            .ok_or(Error::NotFound("workspace"))?;
        require(actor.role(), permission)?;
        Ok(actor)
    }

    /// The viewer's workspace when they belong to exactly one (so clients may leave
    /// `workspaceId` out); BAD_USER_INPUT on `workspaceId` otherwise.
    pub async fn only_workspace(&self, viewer: &Viewer) -> Result<WorkspaceId> {
        let mine = store::memberships_of_accounts(&self.db, &[viewer.account_id()]).await?;
        match mine.as_slice() {
            [one] => Ok(one.workspace_id),
            [] => Err(Error::invalid("workspaceId", "you belong to no workspace")),
            _ => Err(Error::invalid("workspaceId", "you belong to several workspaces; name one")),
        }
    }

    pub async fn memberships_of(&self, ids: &[AccountId]) -> Result<Vec<Membership>> {
        Ok(store::memberships_of_accounts(&self.db, ids).await?)
    }

    pub async fn workspaces(&self, ids: &[WorkspaceId]) -> Result<Vec<Workspace>> {
        Ok(store::find_workspaces(&self.db, ids).await?)
    }
}

fn require(role: Role, permission: Permission) -> Result<()> {
    if role.allows(permission) { Ok(()) } else { Err(Error::forbidden("your role does not allow this")) }
}

fn grantable(actor: Role, role: Role) -> Result<()> {
    if role > actor { Err(Error::forbidden("you cannot grant a role above your own")) } else { Ok(()) }
}

async fn member(tx: &mut Tx, workspace_id: WorkspaceId, account_id: AccountId) -> Result<Membership> {
    store::find_membership_tx(tx, workspace_id, account_id).await?.ok_or(Error::NotFound("member"))
}

/// Refuses a change that would leave the workspace without an active owner besides `leaving`.
async fn ensure_another_owner(tx: &mut Tx, workspace_id: WorkspaceId, leaving: AccountId) -> Result<()> {
    let owners = store::count_active_owners(tx, workspace_id).await?;
    let leaving_counts = identity_store::account_is_active(tx, leaving).await?;
    if owners - i64::from(leaving_counts) < 1 {
        return Err(Error::conflict("userId", "a workspace needs at least one active owner"));
    }
    Ok(())
}
