//! Workspace rules: who may see members, invite them, change roles and deactivate
//! memberships. Every decision is made from the actor's role in that workspace, inside the
//! transaction that applies it. Invitations live in `invitations.rs`.

use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use super::model::{Membership, MembershipStatus, Permission, Role, Workspace, WorkspaceId};
use super::store;
use crate::db::StoredEnum as _;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::i18n::text;
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use crate::identity::store as identity_store;
use crate::mail::Mailer;
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService};
use crate::security::throttle::Throttle;

/// How invitations are made.
#[derive(Clone, Debug)]
pub struct InvitationSettings {
    /// How long an invitation (and each resent link) stays valid.
    pub ttl: chrono::TimeDelta,
    /// The page links open, the token appended as `?token=…`.
    pub link: String,
    /// Invitations one account may send (new or resent) in 15 minutes: an open sign-up must
    /// not make the gateway a mail cannon.
    pub per_inviter: u32,
}

#[derive(Clone)]
pub struct WorkspaceService {
    pub(super) db: Db,
    pub(super) fanout: Fanout,
    pub(super) notifications: NotificationService,
    pub(super) mailer: Mailer,
    pub(super) invitations: InvitationSettings,
    pub(super) invite_throttle: Arc<Throttle>,
}

impl WorkspaceService {
    pub fn new(db: Db, fanout: Fanout, notifications: NotificationService, mailer: Mailer, invitations: InvitationSettings) -> Self {
        let invite_throttle = Arc::new(Throttle::new(invitations.per_inviter, u32::MAX).shared(&db, "invitation"));
        WorkspaceService { db, fanout, notifications, mailer, invitations, invite_throttle }
    }

    /// The viewer's active membership in `workspace_id`. Not a member, or an inactive one:
    /// NOT_FOUND, so a stranger cannot tell a workspace exists and a deactivated member sees
    /// nothing of it.
    pub async fn membership_of(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<Membership> {
        store::find_active_membership(&self.db, workspace_id, viewer.account_id()).await?.ok_or(Error::NotFound("workspace"))
    }

    pub async fn workspace(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<Workspace> {
        self.membership_of(viewer, workspace_id).await?;
        store::find_workspaces(&self.db, &[workspace_id]).await?.pop().ok_or(Error::NotFound("workspace"))
    }

    /// One page of members (active and inactive) in join order, after the membership
    /// `after`; fetches one extra row to tell whether another page follows.
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
        target.role = crate::db::Stored(role);
        self.fanout.publish(Change::Account { account_id }).await;
        Ok(target)
    }

    /// Activates or deactivates a membership of this workspace. An inactive member is no
    /// member here from the next request on (their live subscriptions on the workspace end),
    /// but still signs in and uses their other workspaces; they are told. The account's own
    /// status is never touched here.
    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn set_member_status(
        &self,
        viewer: &Viewer,
        workspace_id: WorkspaceId,
        account_id: AccountId,
        status: MembershipStatus,
    ) -> Result<Membership> {
        if account_id == viewer.account_id() {
            return Err(Error::forbidden("you cannot change your own status"));
        }
        let mut tx = self.db.begin().await?;
        let actor = self.actor(&mut tx, viewer, workspace_id, Permission::DeactivateMembers).await?;
        let mut target = member(&mut tx, workspace_id, account_id).await?;
        if target.role() > actor.role() {
            return Err(Error::forbidden("you cannot change the status of someone ranked above you"));
        }
        if target.status() == status {
            return Ok(target);
        }
        if status == MembershipStatus::Inactive && target.role() == Role::Owner {
            ensure_another_owner(&mut tx, workspace_id, account_id).await?;
        }
        store::set_membership_status(&mut tx, target.membership_id, status).await?;
        tx.commit().await?;
        target.status = crate::db::Stored(status);
        tracing::info!(account_id = %account_id, status = status.stored_name(), "membership status changed");
        self.fanout.publish(Change::Account { account_id }).await;
        // Live subscriptions on the workspace re-check their viewer's membership on this.
        self.fanout.publish(Change::Membership { workspace_id, account_id }).await;
        if status == MembershipStatus::Inactive {
            self.tell_deactivated(workspace_id, account_id).await;
        }
        Ok(target)
    }

    /// In the app and (by default) by email: which workspace, and that nothing else changed.
    async fn tell_deactivated(&self, workspace_id: WorkspaceId, account_id: AccountId) {
        let (Ok(mut accounts), Ok(mut workspaces)) =
            (identity_store::find_accounts(&self.db, &[account_id]).await, store::find_workspaces(&self.db, &[workspace_id]).await)
        else {
            return tracing::warn!("cannot load whom to tell about a deactivated membership");
        };
        let (Some(account), Some(workspace)) = (accounts.pop(), workspaces.pop()) else { return };
        let lang = &account.language;
        let notice = Notice::new(
            account_id,
            NotificationEvent::MembershipDeactivated,
            text(lang, "membership-deactivated-title", &[("workspace", &workspace.name)]),
            text(lang, "membership-deactivated-body", &[("workspace", &workspace.name)]),
        );
        if let Err(e) = self.notifications.notify(notice).await {
            tracing::warn!(error = ?e, "cannot notify about a deactivated membership");
        }
    }

    /// The actor's active membership, locked with its workspace, if it holds `permission`.
    pub(super) async fn actor(
        &self,
        tx: &mut Tx,
        viewer: &Viewer,
        workspace_id: WorkspaceId,
        permission: Permission,
    ) -> Result<Membership> {
        if !store::lock_workspace(tx, workspace_id).await? {
            return Err(Error::NotFound("workspace"));
        }
        let actor = store::find_membership_tx(tx, workspace_id, viewer.account_id())
            .await?
            .filter(Membership::is_active)
            .ok_or(Error::NotFound("workspace"))?;
        require(actor.role(), permission)?;
        Ok(actor)
    }

    /// The viewer's workspace when they belong to exactly one (so clients may leave
    /// `workspaceId` out); BAD_USER_INPUT on `workspaceId` otherwise.
    pub async fn only_workspace(&self, viewer: &Viewer) -> Result<WorkspaceId> {
        let mut mine = store::memberships_of_accounts(&self.db, &[viewer.account_id()]).await?;
        mine.retain(Membership::is_active);
        match mine.as_slice() {
            [one] => Ok(one.workspace_id),
            [] => Err(Error::invalid("workspaceId", "you belong to no workspace")),
            _ => Err(Error::invalid("workspaceId", "you belong to several workspaces; name one")),
        }
    }

    /// The accounts' memberships, inactive ones included (each says its status).
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

pub(super) fn grantable(actor: Role, role: Role) -> Result<()> {
    if role > actor { Err(Error::forbidden("you cannot grant a role above your own")) } else { Ok(()) }
}

pub(super) async fn member(tx: &mut Tx, workspace_id: WorkspaceId, account_id: AccountId) -> Result<Membership> {
    store::find_membership_tx(tx, workspace_id, account_id).await?.ok_or(Error::NotFound("member"))
}

/// Refuses a change that would leave the workspace without an active owner besides
/// `leaving`: an owner whose membership and account are both active.
async fn ensure_another_owner(tx: &mut Tx, workspace_id: WorkspaceId, leaving: AccountId) -> Result<()> {
    if store::count_other_active_owners(tx, workspace_id, leaving).await? < 1 {
        return Err(Error::conflict("userId", "a workspace needs at least one active owner"));
    }
    Ok(())
}
