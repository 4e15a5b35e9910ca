//! Workspaces over GraphQL: `workspace(id)`, its members as a Relay connection, and the
//! membership mutations.

use async_graphql::connection::{Connection, Edge, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Membership, Permission, Role, Workspace, WorkspaceId};
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::graphql::paging::page_args;
use crate::identity::graphql::{User, loaders};
use crate::identity::model::{AccountId, AccountStatus, Email};
use crate::service_accounts::graphql::ServiceAccountNode;
use crate::tokens::model::Scope;

/// A team's space, with its members.
pub struct WorkspaceNode(pub Workspace);

/// An account's place in a workspace.
pub struct MembershipNode(pub Membership);

type MemberConnection = Connection<OpaqueCursor<Uuid>, MembershipNode, MemberConnectionFields>;

#[derive(async_graphql::SimpleObject)]
#[graphql(name = "MemberConnectionFields")]
pub struct MemberConnectionFields {
    /// Members in the workspace, across all pages.
    total_count: i64,
}

#[Object(name = "Workspace")]
impl WorkspaceNode {
    async fn id(&self) -> ID {
        ID(self.0.workspace_id.0.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Members in the order they joined. `first` is 1–100 (default 20); `after` is a cursor
    /// from a previous page.
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<MemberConnection> {
        let viewer = ctx.viewer_for(Scope::WorkspacesRead).await?;
        let (first, after) = page_args(first, after)?;
        let services = ctx.services()?;
        let id = self.0.workspace_id;
        let (page, more) = services.workspaces.members(&viewer, id, after, first).await?;
        let total = services.workspaces.count_members(id).await?;
        let mut connection = Connection::with_additional_fields(after.is_some(), more, MemberConnectionFields { total_count: total });
        connection
            .edges
            .extend(page.into_iter().map(|m| Edge::new(OpaqueCursor(m.membership_id), MembershipNode(m))));
        Ok(connection)
    }

    /// The workspace's webhooks, oldest first (needs MANAGE_INTEGRATIONS).
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<crate::webhooks::graphql::WebhookNode>> {
        crate::webhooks::graphql::workspace_webhooks(ctx, self.0.workspace_id).await
    }

    /// The workspace's service accounts, oldest first (needs MANAGE_INTEGRATIONS).
    async fn service_accounts(&self, ctx: &Context<'_>) -> Result<Vec<ServiceAccountNode>> {
        let viewer = ctx.viewer_for(Scope::ServiceAccountsRead).await?;
        let accounts = ctx.services()?.service_accounts.list(&viewer, self.0.workspace_id).await?;
        Ok(accounts.into_iter().map(ServiceAccountNode).collect())
    }
}

#[Object(name = "Membership")]
impl MembershipNode {
    async fn id(&self) -> ID {
        ID(self.0.membership_id.to_string())
    }

    async fn role(&self) -> Role {
        self.0.role()
    }

    /// What this role allows in the workspace.
    async fn permissions(&self) -> Vec<Permission> {
        self.0.role().permissions().to_vec()
    }

    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn workspace(&self, ctx: &Context<'_>) -> Result<WorkspaceNode> {
        let w = loaders(ctx)?.workspaces.load_one(self.0.workspace_id).await.map_err(unshare)?;
        w.map(WorkspaceNode).ok_or(Error::NotFound("workspace"))
    }

    /// The member's status as others see it.
    async fn availability(&self, ctx: &Context<'_>) -> Result<crate::availability::graphql::MemberAvailability> {
        let status = loaders(ctx)?.presence.load_one(self.0.account_id).await.map_err(unshare)?;
        Ok(crate::availability::graphql::MemberAvailability { status: status.unwrap_or(crate::availability::model::PresenceStatus::Offline) })
    }

    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        let a = loaders(ctx)?.accounts.load_one(self.0.account_id).await.map_err(unshare)?;
        a.map(User).ok_or(Error::NotFound("user"))
    }
}

#[derive(Default)]
pub struct WorkspaceQuery;

#[Object]
impl WorkspaceQuery {
    /// A workspace the viewer belongs to (NOT_FOUND otherwise).
    async fn workspace(&self, ctx: &Context<'_>, id: ID) -> Result<WorkspaceNode> {
        let viewer = ctx.viewer_for(Scope::WorkspacesRead).await?;
        let id = WorkspaceId::parse("id", &id)?;
        Ok(WorkspaceNode(ctx.services()?.workspaces.workspace(&viewer, id).await?))
    }
}

#[derive(InputObject)]
pub struct AddWorkspaceMemberInput {
    pub workspace_id: ID,
    /// The login email of an existing account.
    pub email: String,
    /// At most the inviter's own role.
    #[graphql(default_with = "Role::Member")]
    pub role: Role,
}

#[derive(Default)]
pub struct WorkspaceMutation;

#[Object]
impl WorkspaceMutation {
    /// Adds an existing account to a workspace (needs MANAGE_MEMBERS).
    async fn add_workspace_member(&self, ctx: &Context<'_>, input: AddWorkspaceMemberInput) -> Result<MembershipNode> {
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        let email = Email::parse("email", &input.email)?;
        let m = ctx.services()?.workspaces.add_member(&viewer, workspace_id, email, input.role).await?;
        Ok(MembershipNode(m))
    }

    /// Changes a member's role (needs MANAGE_ROLES; never above one's own; the last owner stays).
    async fn assign_role(&self, ctx: &Context<'_>, workspace_id: ID, user_id: ID, role: Role) -> Result<MembershipNode> {
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &workspace_id)?;
        let user_id = AccountId::parse("userId", &user_id)?;
        let m = ctx.services()?.workspaces.assign_role(&viewer, workspace_id, user_id, role).await?;
        Ok(MembershipNode(m))
    }

    /// Activates or deactivates a member's account (needs DEACTIVATE_MEMBERS). An inactive
    /// account cannot log in and its sessions stop working at once.
    async fn set_member_status(
        &self,
        ctx: &Context<'_>,
        workspace_id: ID,
        user_id: ID,
        status: AccountStatus,
    ) -> Result<MembershipNode> {
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &workspace_id)?;
        let user_id = AccountId::parse("userId", &user_id)?;
        let m = ctx.services()?.workspaces.set_member_status(&viewer, workspace_id, user_id, status).await?;
        Ok(MembershipNode(m))
    }
}
