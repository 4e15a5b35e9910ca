//! Workspaces over GraphQL: `workspace(id)`, its members as a Relay connection, invitations,
//! and the membership mutations.

use async_graphql::connection::{Connection, Edge, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::invitations::InvitationRef;
use super::model::{Invitation, InvitationId, InvitationState, Membership, MembershipStatus, Permission, Role, Workspace, WorkspaceId};
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::graphql::paging::page_args;
use crate::identity::graphql::User;
use crate::identity::model::{AccountId, Email};
use crate::identity::service::Viewer;
use crate::input::input_or_flat;
use crate::service_accounts::graphql::ServiceAccountNode;
use crate::tokens::model::Scope;

/// A team's space, with its members.
pub struct WorkspaceNode(pub Workspace);

/// An account's place in a workspace.
pub struct MembershipNode(pub Membership);

pub type MemberConnection = Connection<OpaqueCursor<Uuid>, MembershipNode, MemberConnectionFields>;

#[derive(async_graphql::SimpleObject)]
#[graphql(name = "MemberConnectionFields")]
pub struct MemberConnectionFields {
    /// Members in the workspace (or memberships of the user), across all pages.
    pub total_count: i64,
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
    async fn members(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<MemberConnection> {
        let viewer = ctx.viewer_for(Scope::WorkspacesRead).await?;
        let (first, after) = page_args(first, after)?;
        let services = ctx.services()?;
        let id = self.0.workspace_id;
        let (page, more) = services.workspaces.members(&viewer, id, after, first).await?;
        let total = services.workspaces.count_members(id).await?;
        let mut connection = Connection::with_additional_fields(after.is_some(), more, MemberConnectionFields { total_count: total });
        connection.edges.extend(page.into_iter().map(|m| Edge::new(OpaqueCursor(m.membership_id), MembershipNode(m))));
        Ok(connection)
    }

    /// Invitations waiting for an answer, oldest first (needs MANAGE_MEMBERS).
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<InvitationNode>> {
        let viewer = ctx.viewer_for(Scope::WorkspacesRead).await?;
        let found = ctx.services()?.workspaces.workspace_invitations(&viewer, self.0.workspace_id).await?;
        Ok(found.into_iter().map(InvitationNode).collect())
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

    /// Whether this membership counts: an INACTIVE member sees and does nothing in this
    /// workspace until reactivated. Their account (`User.status`) and their other
    /// workspaces are not affected.
    async fn status(&self) -> MembershipStatus {
        self.0.status()
    }

    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn workspace(&self, ctx: &Context<'_>) -> Result<WorkspaceNode> {
        let w = ctx.loaders()?.workspaces.load_one(self.0.workspace_id).await.map_err(unshare)?;
        w.map(WorkspaceNode).ok_or(Error::NotFound("workspace"))
    }

    /// The member's status as others see it, with their time zone and out-of-office period.
    async fn availability(&self, ctx: &Context<'_>) -> Result<crate::availability::graphql::MemberAvailability> {
        let shown = ctx.loaders()?.presence.load_one(self.0.account_id).await.map_err(unshare)?;
        Ok(shown.map(crate::availability::graphql::MemberAvailability::from).unwrap_or_default())
    }

    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        let a = ctx.loaders()?.accounts.load_one(self.0.account_id).await.map_err(unshare)?;
        a.map(User).ok_or(Error::NotFound("user"))
    }
}

/// An invitation to join a workspace. The invitee sees the workspace's name and the
/// inviter's name, nothing else of the workspace, until they accept.
pub struct InvitationNode(pub Invitation);

#[Object(name = "WorkspaceInvitation")]
impl InvitationNode {
    async fn id(&self) -> ID {
        ID(self.0.workspace_invitation_id.0.to_string())
    }

    /// The invited address (lower-cased).
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// The role the invitee gets on accepting.
    async fn role(&self) -> Role {
        self.0.role()
    }

    async fn state(&self) -> InvitationState {
        self.0.state(Utc::now())
    }

    async fn workspace_name(&self, ctx: &Context<'_>) -> Result<String> {
        let w = ctx.loaders()?.workspaces.load_one(self.0.workspace_id).await.map_err(unshare)?;
        Ok(w.map(|w| w.name).unwrap_or_default())
    }

    /// The shown name of whoever invited (null when that account is gone).
    async fn invited_by_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let Some(id) = self.0.invited_by else { return Ok(None) };
        let a = ctx.loaders()?.accounts.load_one(id).await.map_err(unshare)?;
        Ok(a.map(|a| a.shown_name()))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the link was last sent (`resendInvitation` sends a new one).
    async fn sent_at(&self) -> DateTime<Utc> {
        self.0.sent_at
    }

    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
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
pub struct InviteWorkspaceMemberInput {
    pub workspace_id: ID,
    /// The invitee's email, whether or not it has an account yet.
    pub email: String,
    /// At most the inviter's own role.
    #[graphql(default_with = "Role::Member")]
    pub role: Role,
}

#[derive(InputObject)]
pub struct AddWorkspaceMemberInput {
    pub workspace_id: ID,
    /// The invitee's email, whether or not it has an account yet.
    pub email: String,
    /// At most the inviter's own role.
    #[graphql(default_with = "Role::Member")]
    pub role: Role,
}

#[derive(Default)]
pub struct WorkspaceMutation;

#[Object]
impl WorkspaceMutation {
    /// Invites an email address to the workspace (needs MANAGE_MEMBERS; the role at most
    /// the inviter's own). The address gets an email with a link, and an account with that
    /// login email also an in-app notification; nobody joins until they accept. The answer is
    /// the same whether or not the address has an account. An address that is a member
    /// already is a CONFLICT, as is one with an invitation waiting (resend that one).
    async fn invite_workspace_member(&self, ctx: &Context<'_>, input: InviteWorkspaceMemberInput) -> Result<InvitationNode> {
        invite(ctx, input.workspace_id, input.email, input.role).await
    }

    /// Invites, exactly as `inviteWorkspaceMember`: nobody is added without accepting.
    #[graphql(deprecation = "use inviteWorkspaceMember: this only invites too")]
    async fn add_workspace_member(&self, ctx: &Context<'_>, input: AddWorkspaceMemberInput) -> Result<InvitationNode> {
        invite(ctx, input.workspace_id, input.email, input.role).await
    }

    /// A new link (new token, new expiry) for an unanswered invitation; the old link stops
    /// working. At most once a minute per invitation (needs MANAGE_MEMBERS).
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        input: Option<InvitationInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<InvitationNode> {
        let input = input_or_flat!(input, [id] => InvitationInput { id });
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let id = InvitationId::parse("id", &input.id)?;
        Ok(InvitationNode(ctx.services()?.workspaces.resend_invitation(&viewer, id).await?.invitation))
    }

    /// Withdraws an unanswered invitation (needs MANAGE_MEMBERS).
    #[graphql(deprecation = "use cancelInvitation, which answers with the invitation")]
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        self.cancel_invitation(ctx, InvitationInput { id }).await.map(|_| true)
    }

    /// Withdraws an unanswered invitation (needs MANAGE_MEMBERS); its link stops working.
    async fn cancel_invitation(&self, ctx: &Context<'_>, input: InvitationInput) -> Result<InvitationNode> {
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let id = InvitationId::parse("id", &input.id)?;
        Ok(InvitationNode(ctx.services()?.workspaces.revoke_invitation(&viewer, id).await?))
    }

    /// Joins the invitation's workspace with its role. Give `id` (signed in with the invited
    /// login email: see `me.invitations`) or the emailed link's `token` (signed in as the
    /// invited address, or not signed in). A token works once.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: Option<AnswerInvitationInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] token: Option<String>,
    ) -> Result<MembershipNode> {
        let input = input_or_flat!(input, [], [id, token] => AnswerInvitationInput { id, token });
        let (viewer, by) = answer(ctx, input).await?;
        Ok(MembershipNode(ctx.services()?.workspaces.accept_invitation(viewer.as_ref(), by).await?))
    }

    /// Turns an invitation down, by `id` or the link's `token`, as `acceptInvitation`.
    #[graphql(deprecation = "use rejectInvitation")]
    async fn decline_invitation(&self, ctx: &Context<'_>, id: Option<ID>, token: Option<String>) -> Result<bool> {
        self.reject_invitation(ctx, AnswerInvitationInput { id, token }).await.map(|_| true)
    }

    /// Turns an invitation down, by `id` or the link's `token`, as `acceptInvitation`.
    async fn reject_invitation(&self, ctx: &Context<'_>, input: AnswerInvitationInput) -> Result<RejectInvitationPayload> {
        let (viewer, by) = answer(ctx, input).await?;
        let id = ctx.services()?.workspaces.decline_invitation(viewer.as_ref(), by).await?;
        Ok(RejectInvitationPayload { invitation_id: ID(id.to_string()) })
    }

    /// Changes a member's role (needs MANAGE_ROLES; never above one's own; the last owner stays).
    async fn assign_role(
        &self,
        ctx: &Context<'_>,
        input: Option<AssignRoleInput>,
        #[graphql(deprecation = "pass it in `input`")] workspace_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] user_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] role: Option<Role>,
    ) -> Result<MembershipNode> {
        let input = input_or_flat!(input, [workspace_id, user_id, role] => AssignRoleInput { workspace_id, user_id, role });
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        let user_id = AccountId::parse("userId", &input.user_id)?;
        let m = ctx.services()?.workspaces.assign_role(&viewer, workspace_id, user_id, input.role).await?;
        Ok(MembershipNode(m))
    }

    /// Activates or deactivates a member's membership of this workspace (needs
    /// DEACTIVATE_MEMBERS; never someone ranked above you; the last active owner stays). An
    /// inactive member loses access to this workspace at once, live subscriptions included,
    /// and is told; they still sign in and use their other workspaces. Accounts are
    /// deactivated only by their holder (`deactivateMyAccount`) or the operator.
    async fn set_member_status(
        &self,
        ctx: &Context<'_>,
        input: Option<SetMemberStatusInput>,
        #[graphql(deprecation = "pass it in `input`")] workspace_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] user_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] status: Option<MembershipStatus>,
    ) -> Result<MembershipNode> {
        let input = input_or_flat!(input, [workspace_id, user_id, status] => SetMemberStatusInput { workspace_id, user_id, status });
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        let user_id = AccountId::parse("userId", &input.user_id)?;
        let m = ctx.services()?.workspaces.set_member_status(&viewer, workspace_id, user_id, input.status).await?;
        Ok(MembershipNode(m))
    }
}

#[derive(InputObject)]
pub struct InvitationInput {
    pub id: ID,
}

/// Which invitation: exactly one of `id` and `token`.
#[derive(InputObject)]
pub struct AnswerInvitationInput {
    /// An invitation of `me.invitations` (signed in with the invited login email).
    pub id: Option<ID>,
    /// The emailed link's token.
    pub token: Option<String>,
}

#[derive(SimpleObject)]
pub struct RejectInvitationPayload {
    /// The invitation turned down.
    pub invitation_id: ID,
}

#[derive(InputObject)]
pub struct AssignRoleInput {
    pub workspace_id: ID,
    pub user_id: ID,
    pub role: Role,
}

#[derive(InputObject)]
pub struct SetMemberStatusInput {
    pub workspace_id: ID,
    pub user_id: ID,
    pub status: MembershipStatus,
}

async fn invite(ctx: &Context<'_>, workspace_id: ID, email: String, role: Role) -> Result<InvitationNode> {
    let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
    let workspace_id = WorkspaceId::parse("workspaceId", &workspace_id)?;
    let email = Email::parse("email", &email)?;
    let view = ctx.services()?.workspaces.invite(&viewer, workspace_id, email, role).await?;
    Ok(InvitationNode(view.invitation))
}

/// Who answers an invitation, and which one: exactly one of `id` and `token`. A request
/// with a bearer credential answers as it (with the `workspaces:write` scope); without one,
/// only the token can answer.
async fn answer(ctx: &Context<'_>, input: AnswerInvitationInput) -> Result<(Option<Viewer>, InvitationRef)> {
    let by = match (input.id, input.token) {
        (Some(id), None) => InvitationRef::Id(InvitationId::parse("id", &id)?),
        (None, Some(token)) => InvitationRef::Token(token),
        _ => return Err(Error::invalid("id", "give either id or token")),
    };
    let signed_in = ctx.auth().is_some_and(|a| a.token().is_some());
    let viewer = if signed_in { Some(ctx.viewer_for(Scope::WorkspacesWrite).await?) } else { None };
    Ok((viewer, by))
}
