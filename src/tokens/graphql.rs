//! Access tokens over GraphQL: created, listed, revoked and regenerated from a session.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::AccessToken;
use super::service::NewToken;
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::input::input_or_flat;

/// A personal access token, without its secret.
pub struct AccessTokenNode(pub AccessToken);

#[Object(name = "AccessToken")]
impl AccessTokenNode {
    async fn id(&self) -> ID {
        ID(self.0.access_token_id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The token's first characters (e.g. `cpat_AbCd`), to tell tokens apart.
    async fn prefix(&self) -> &str {
        &self.0.display_prefix
    }

    /// What the token may do, e.g. `profile:read`.
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes().into_iter().map(|s| s.as_str()).collect()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Whether the token is past its `expiresAt` (it no longer works; revoke it to tidy up).
    async fn expired(&self) -> bool {
        self.0.expires_at.is_some_and(|at| at <= Utc::now())
    }

    /// When the token was last used (kept to the minute).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

#[derive(InputObject)]
pub struct CreateAccessTokenInput {
    pub name: String,
    /// Scopes by name, such as `profile:read` or `webhooks:read` (the README lists them all).
    pub scopes: Vec<String>,
    /// When the token stops working; never, if omitted.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token's secret, shown only in this payload.
#[derive(SimpleObject)]
pub struct AccessTokenSecretPayload {
    /// Send as `Authorization: Bearer <token>`. It cannot be shown again.
    pub token: String,
    pub access_token: AccessTokenNode,
}

fn parse_id(id: &ID) -> Result<Uuid> {
    id.parse::<Uuid>().map_err(|_| Error::invalid("id", "not a valid id"))
}

#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Creates a personal access token (from a session only).
    async fn create_access_token(&self, ctx: &Context<'_>, input: CreateAccessTokenInput) -> Result<AccessTokenSecretPayload> {
        let viewer = ctx.viewer().await?;
        let new = NewToken::parse(&input.name, &input.scopes, input.expires_at)?;
        let (token, access_token) = ctx.services()?.tokens.create(&viewer, new).await?;
        Ok(AccessTokenSecretPayload { token, access_token: AccessTokenNode(access_token) })
    }

    /// Revokes a token; it stops working at once.
    async fn revoke_access_token(
        &self,
        ctx: &Context<'_>,
        input: Option<AccessTokenInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<AccessTokenNode> {
        let input = input_or_flat!(input, [id] => AccessTokenInput { id });
        let viewer = ctx.viewer().await?;
        Ok(AccessTokenNode(ctx.services()?.tokens.revoke(&viewer, parse_id(&input.id)?).await?))
    }

    /// Replaces a token's secret, keeping its name, scopes and expiry.
    async fn regenerate_access_token(
        &self,
        ctx: &Context<'_>,
        input: Option<AccessTokenInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<AccessTokenSecretPayload> {
        let input = input_or_flat!(input, [id] => AccessTokenInput { id });
        let viewer = ctx.viewer().await?;
        let (token, access_token) = ctx.services()?.tokens.regenerate(&viewer, parse_id(&input.id)?).await?;
        Ok(AccessTokenSecretPayload { token, access_token: AccessTokenNode(access_token) })
    }
}

#[derive(InputObject)]
pub struct AccessTokenInput {
    pub id: ID,
}
