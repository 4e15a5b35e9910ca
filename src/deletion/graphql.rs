//! Leaving over GraphQL.

use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::graphql::context::ContextExt;

#[derive(Default)]
pub struct DeletionMutation;

#[Object]
impl DeletionMutation {
    /// Deletes your account after the grace period (`CONCIERGE_ACCOUNT_DELETION_GRACE_HOURS`);
    /// returns when. Needs your password, and `code` (TOTP or recovery code) when two-factor
    /// is on. CONFLICT on `account` while you are the only owner of a workspace with other
    /// members. `cancelAccountDeletion` calls it off until then.
    async fn delete_account(&self, ctx: &Context<'_>, password: String, code: Option<String>) -> Result<DateTime<Utc>> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.deletion.schedule(&viewer, password, code.as_deref()).await
    }

    /// Calls off a scheduled deletion of your account.
    async fn cancel_account_deletion(&self, ctx: &Context<'_>) -> Result<bool> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.deletion.cancel(&viewer).await?;
        Ok(true)
    }
}
