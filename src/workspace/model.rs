//! Workspaces, roles and the permissions each role carries.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::identity::model::AccountId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(transparent)]
pub struct WorkspaceId(pub Uuid);

impl WorkspaceId {
    pub fn new() -> Self {
        WorkspaceId(Uuid::now_v7())
    }

    pub fn parse(field: &'static str, raw: &str) -> Result<Self> {
        raw.parse().map(WorkspaceId).map_err(|_| Error::invalid(field, "not a valid id"))
    }
}

/// What a member may do in a workspace. A role is a fixed set of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum Permission {
    /// See the workspace's members and their roles.
    ViewMembers,
    /// Add existing accounts to the workspace.
    ManageMembers,
    /// Change members' roles (never above one's own).
    ManageRoles,
    /// Deactivate and reactivate members' accounts.
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

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
        }
    }

    pub fn from_db(s: &str) -> Role {
        match s {
            "OWNER" => Role::Owner,
            "ADMIN" => Role::Admin,
            _ => Role::Member,
        }
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
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleColumn(pub Role);

impl TryFrom<String> for RoleColumn {
    type Error = std::convert::Infallible;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        Ok(RoleColumn(Role::from_db(&s)))
    }
}

impl Membership {
    pub fn role(&self) -> Role {
        self.role.0
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
