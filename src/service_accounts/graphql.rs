//! Service accounts over GraphQL: listed by workspace, created, renamed, disabled, enabled and
//! deleted from a session by members who manage integrations; their tokens created (shown
//! once) and revoked.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{ServiceAccount, ServiceAccountId, ServiceAccountToken};
use super::service::NewServiceToken;
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::tokens::model::Scope;
use crate::workspace::graphql::WorkspaceNode;
use crate::workspace::model::WorkspaceId;

/// A workspace's non-human principal: another service of the platform. It cannot log in and
/// never acts as a user; it authenticates with its own tokens.
pub struct ServiceAccountNode(pub ServiceAccount);

#[Object(name = "ServiceAccount")]
impl ServiceAccountNode {
    async fn id(&self) -> ID {
        ID(self.0.service_account_id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn workspace(&self, ctx: &Context<'_>) -> Result<WorkspaceNode> {
        let w = ctx.loaders()?.workspaces.load_one(self.0.workspace_id).await.map_err(unshare)?;
        w.map(WorkspaceNode).ok_or(Error::NotFound("workspace"))
    }

    /// What its tokens may carry at most: `events:publish`, `webhooks:manage`.
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes().into_iter().map(|s| s.as_str()).collect()
    }

    /// A disabled account's tokens are refused.
    async fn enabled(&self) -> bool {
        self.0.disabled_at.is_none()
    }

    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Its tokens that were not revoked (expired ones included), oldest first.
    async fn tokens(&self, ctx: &Context<'_>) -> Result<Vec<ServiceAccountTokenNode>> {
        let tokens = ctx.services()?.service_accounts.tokens(self.0.service_account_id).await?;
        Ok(tokens.into_iter().map(ServiceAccountTokenNode).collect())
    }
}

/// A service-account token, without its secret.
pub struct ServiceAccountTokenNode(pub ServiceAccountToken);

#[Object(name = "ServiceAccountToken")]
impl ServiceAccountTokenNode {
    async fn id(&self) -> ID {
        ID(self.0.service_account_token_id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The token's first characters (e.g. `csat_AbCd`), to tell tokens apart.
    async fn prefix(&self) -> &str {
        &self.0.display_prefix
    }

    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes().into_iter().map(|s| s.as_str()).collect()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// When the token was last used (kept to the minute).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// A service-account token's secret, shown only in this payload.
#[derive(SimpleObject)]
pub struct ServiceAccountTokenSecretPayload {
    /// Send as `Authorization: Bearer <token>`. It cannot be shown again.
    pub token: String,
    pub service_account_token: ServiceAccountTokenNode,
}

fn token_id(id: &ID) -> Result<Uuid> {
    id.parse::<Uuid>().map_err(|_| Error::invalid("id", "not a valid id"))
}

#[derive(Default)]
pub struct ServiceAccountQuery;

#[Object]
impl ServiceAccountQuery {
    /// The workspace's service accounts (needs MANAGE_INTEGRATIONS; a personal token needs
    /// `service_accounts:read`), oldest first.
    async fn service_accounts(&self, ctx: &Context<'_>, workspace_id: ID) -> Result<Vec<ServiceAccountNode>> {
        let viewer = ctx.viewer_for(Scope::ServiceAccountsRead).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &workspace_id)?;
        let accounts = ctx.services()?.service_accounts.list(&viewer, workspace_id).await?;
        Ok(accounts.into_iter().map(ServiceAccountNode).collect())
    }

    /// One service account of a workspace whose integrations the viewer manages.
    async fn service_account(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAccountNode> {
        let viewer = ctx.viewer_for(Scope::ServiceAccountsRead).await?;
        let id = ServiceAccountId::parse("id", &id)?;
        Ok(ServiceAccountNode(ctx.services()?.service_accounts.get(&viewer, id).await?))
    }
}

#[derive(Default)]
pub struct ServiceAccountMutation;

#[Object]
impl ServiceAccountMutation {
    /// Creates a service account in a workspace (from a session, needs MANAGE_INTEGRATIONS).
    /// `scopes` are what its tokens may carry at most: `events:publish`, `webhooks:manage`.
    async fn create_service_account(
        &self,
        ctx: &Context<'_>,
        workspace_id: ID,
        name: String,
        scopes: Vec<String>,
    ) -> Result<ServiceAccountNode> {
        let viewer = ctx.viewer().await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &workspace_id)?;
        Ok(ServiceAccountNode(ctx.services()?.service_accounts.create(&viewer, workspace_id, &name, &scopes).await?))
    }

    async fn rename_service_account(&self, ctx: &Context<'_>, id: ID, name: String) -> Result<ServiceAccountNode> {
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("id", &id)?;
        Ok(ServiceAccountNode(ctx.services()?.service_accounts.rename(&viewer, id, &name).await?))
    }

    /// Its tokens are refused until it is enabled again.
    async fn disable_service_account(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAccountNode> {
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("id", &id)?;
        Ok(ServiceAccountNode(ctx.services()?.service_accounts.set_enabled(&viewer, id, false).await?))
    }

    async fn enable_service_account(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAccountNode> {
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("id", &id)?;
        Ok(ServiceAccountNode(ctx.services()?.service_accounts.set_enabled(&viewer, id, true).await?))
    }

    /// Deletes it and its tokens; the events it published stay.
    async fn delete_service_account(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("id", &id)?;
        ctx.services()?.service_accounts.delete(&viewer, id).await?;
        Ok(true)
    }

    /// Creates a token for a service account; the secret (`csat_…`) is shown only here.
    /// `scopes` must be among the account's; `expiresAt` is never, if omitted.
    async fn create_service_account_token(
        &self,
        ctx: &Context<'_>,
        service_account_id: ID,
        name: String,
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ServiceAccountTokenSecretPayload> {
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("serviceAccountId", &service_account_id)?;
        let new = NewServiceToken::parse(&name, &scopes, expires_at)?;
        let (token, created) = ctx.services()?.service_accounts.create_token(&viewer, id, new).await?;
        Ok(ServiceAccountTokenSecretPayload { token, service_account_token: ServiceAccountTokenNode(created) })
    }

    /// Revokes a service-account token; its next request is refused.
    async fn revoke_service_account_token(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAccountTokenNode> {
        let viewer = ctx.viewer().await?;
        Ok(ServiceAccountTokenNode(ctx.services()?.service_accounts.revoke_token(&viewer, token_id(&id)?).await?))
    }
}
