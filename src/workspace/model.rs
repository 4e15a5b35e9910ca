//! Workspaces, roles and the permissions each role carries.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Stored;
use crate::error::{Error, Result};
use crate::identity::model::AccountId;

crate::ids::id_type!(WorkspaceId, "a workspace");

/// What a member may do in a workspace. A role is a fixed set of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum Permission {
    /// See the workspace's members and their roles.
    ViewMembers,
    /// Invite people to the workspace and manage its pending invitations.
    ManageMembers,
    /// Change members' roles (never above one's own).
    ManageRoles,
    /// Deactivate and reactivate members' memberships of this workspace (never their accounts).
    DeactivateMembers,
    /// Rename the workspace.
    ManageWorkspace,
    /// Create and manage the workspace's service accounts and webhooks (integrations).
    ManageIntegrations,
}

/// A member's role. Ordered by rank: MEMBER < ADMIN < OWNER.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, async_graphql::Enum)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Owner => &[ViewMembers, ManageMembers, ManageRoles, DeactivateMembers, ManageWorkspace, ManageIntegrations],
            Role::Admin => &[ViewMembers, ManageMembers, ManageRoles, DeactivateMembers, ManageIntegrations],
            Role::Member => &[ViewMembers],
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Workspace {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Membership {
    pub membership_id: Uuid,
    pub workspace_id: WorkspaceId,
    pub account_id: AccountId,
    pub role: Stored<Role>,
    pub status: Stored<MembershipStatus>,
    pub created_at: DateTime<Utc>,
}

/// Whether a membership counts: an INACTIVE member is no member of that workspace (they see
/// and do nothing in it) until reactivated, while their account, and their other
/// workspaces, are untouched. Not the account's own status (`User.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum MembershipStatus {
    Active,
    Inactive,
}

impl Membership {
    pub fn role(&self) -> Role {
        self.role.0
    }

    pub fn status(&self) -> MembershipStatus {
        self.status.0
    }

    pub fn is_active(&self) -> bool {
        self.status.0 == MembershipStatus::Active
    }
}

crate::ids::id_type!(
    /// An invitation's id.
    InvitationId,
    "an invitation"
);

/// An invitation to join a workspace, addressed to an email.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invitation {
    pub workspace_invitation_id: InvitationId,
    pub workspace_id: WorkspaceId,
    /// The invitee's address, lower-cased as login emails are.
    pub email: String,
    pub role: Stored<Role>,
    pub invited_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "InvitationState")]
pub enum InvitationState {
    /// Waiting for the invitee.
    Pending,
    Accepted,
    Declined,
    /// Withdrawn by the workspace.
    Revoked,
    /// Not answered in time.
    Expired,
}

impl Invitation {
    pub fn role(&self) -> Role {
        self.role.0
    }

    pub fn state(&self, now: DateTime<Utc>) -> InvitationState {
        if self.accepted_at.is_some() {
            InvitationState::Accepted
        } else if self.declined_at.is_some() {
            InvitationState::Declined
        } else if self.revoked_at.is_some() {
            InvitationState::Revoked
        } else if self.expires_at <= now {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        }
    }
}

/// A workspace name: trimmed, 1–100 characters, no control characters.
pub fn parse_workspace_name(field: &'static str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "cannot be empty"));
    }
    if name.chars().count() > 100 {
        return Err(Error::invalid(field, "at most 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "cannot contain control characters"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ranked_and_higher_roles_hold_every_lower_permission() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        for lower in [Role::Member, Role::Admin] {
            for higher in [Role::Admin, Role::Owner].into_iter().filter(|h| *h > lower) {
                for p in lower.permissions() {
                    assert!(higher.allows(*p), "{higher:?} lacks {p:?} that {lower:?} has");
                }
            }
        }
        assert!(!Role::Member.allows(Permission::ManageRoles));
    }
}
