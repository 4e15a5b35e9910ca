//! Service accounts over GraphQL: listed by workspace, created, renamed, disabled, enabled and
//! deleted from a session by members who manage integrations; their tokens created (shown
//! once) and revoked.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{ServiceAccount, ServiceAccountId, ServiceAccountToken};
use super::service::NewServiceToken;
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::input::input_or_flat;
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
        input: Option<CreateServiceAccountInput>,
        #[graphql(deprecation = "pass it in `input`")] workspace_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] name: Option<String>,
        #[graphql(deprecation = "pass it in `input`")] scopes: Option<Vec<String>>,
    ) -> Result<ServiceAccountNode> {
        let input = input_or_flat!(input, [workspace_id, name, scopes] => CreateServiceAccountInput { workspace_id, name, scopes });
        let viewer = ctx.viewer().await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        let created = ctx.services()?.service_accounts.create(&viewer, workspace_id, &input.name, &input.scopes).await?;
        Ok(ServiceAccountNode(created))
    }

    async fn rename_service_account(
        &self,
        ctx: &Context<'_>,
        input: Option<RenameServiceAccountInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] name: Option<String>,
    ) -> Result<ServiceAccountNode> {
        let input = input_or_flat!(input, [id, name] => RenameServiceAccountInput { id, name });
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("id", &input.id)?;
        Ok(ServiceAccountNode(ctx.services()?.service_accounts.rename(&viewer, id, &input.name).await?))
    }

    /// Its tokens are refused until it is enabled again.
    async fn disable_service_account(
        &self,
        ctx: &Context<'_>,
        input: Option<ServiceAccountInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<ServiceAccountNode> {
        let input = input_or_flat!(input, [id] => ServiceAccountInput { id });
        set_enabled(ctx, &input.id, false).await
    }

    async fn enable_service_account(
        &self,
        ctx: &Context<'_>,
        input: Option<ServiceAccountInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<ServiceAccountNode> {
        let input = input_or_flat!(input, [id] => ServiceAccountInput { id });
        set_enabled(ctx, &input.id, true).await
    }

    /// Deletes it and its tokens; the events it published stay.
    #[graphql(deprecation = "use removeServiceAccount")]
    async fn delete_service_account(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        self.remove_service_account(ctx, ServiceAccountInput { id }).await.map(|_| true)
    }

    /// Deletes it and its tokens; the events it published stay.
    async fn remove_service_account(&self, ctx: &Context<'_>, input: ServiceAccountInput) -> Result<RemoveServiceAccountPayload> {
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("id", &input.id)?;
        ctx.services()?.service_accounts.delete(&viewer, id).await?;
        Ok(RemoveServiceAccountPayload { service_account_id: input.id })
    }

    /// Creates a token for a service account; the secret (`csat_…`) is shown only here.
    /// `scopes` must be among the account's; `expiresAt` is never, if omitted.
    async fn create_service_account_token(
        &self,
        ctx: &Context<'_>,
        input: Option<CreateServiceAccountTokenInput>,
        #[graphql(deprecation = "pass it in `input`")] service_account_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] name: Option<String>,
        #[graphql(deprecation = "pass it in `input`")] scopes: Option<Vec<String>>,
        #[graphql(deprecation = "pass it in `input`")] expires_at: Option<DateTime<Utc>>,
    ) -> Result<ServiceAccountTokenSecretPayload> {
        let input = input_or_flat!(input, [service_account_id, name, scopes], [expires_at] =>
            CreateServiceAccountTokenInput { service_account_id, name, scopes, expires_at });
        let viewer = ctx.viewer().await?;
        let id = ServiceAccountId::parse("serviceAccountId", &input.service_account_id)?;
        let new = NewServiceToken::parse(&input.name, &input.scopes, input.expires_at)?;
        let (token, created) = ctx.services()?.service_accounts.create_token(&viewer, id, new).await?;
        Ok(ServiceAccountTokenSecretPayload { token, service_account_token: ServiceAccountTokenNode(created) })
    }

    /// Revokes a service-account token; its next request is refused.
    async fn revoke_service_account_token(
        &self,
        ctx: &Context<'_>,
        input: Option<ServiceAccountTokenInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<ServiceAccountTokenNode> {
        let input = input_or_flat!(input, [id] => ServiceAccountTokenInput { id });
        let viewer = ctx.viewer().await?;
        let id = token_id(&input.id)?;
        Ok(ServiceAccountTokenNode(ctx.services()?.service_accounts.revoke_token(&viewer, id).await?))
    }
}

async fn set_enabled(ctx: &Context<'_>, id: &ID, enabled: bool) -> Result<ServiceAccountNode> {
    let viewer = ctx.viewer().await?;
    let id = ServiceAccountId::parse("id", id)?;
    Ok(ServiceAccountNode(ctx.services()?.service_accounts.set_enabled(&viewer, id, enabled).await?))
}

#[derive(InputObject)]
pub struct CreateServiceAccountInput {
    pub workspace_id: ID,
    pub name: String,
    /// What its tokens may carry at most: `events:publish`, `webhooks:manage`.
    pub scopes: Vec<String>,
}

#[derive(InputObject)]
pub struct RenameServiceAccountInput {
    pub id: ID,
    pub name: String,
}

#[derive(InputObject)]
pub struct ServiceAccountInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveServiceAccountPayload {
    /// The service account deleted.
    pub service_account_id: ID,
}

#[derive(InputObject)]
pub struct CreateServiceAccountTokenInput {
    pub service_account_id: ID,
    pub name: String,
    /// Among the account's.
    pub scopes: Vec<String>,
    /// Never, if omitted.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct ServiceAccountTokenInput {
    pub id: ID,
}
