//! Leaving over GraphQL.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::identity::graphql::User;

#[derive(Default)]
pub struct DeletionMutation;

#[Object]
impl DeletionMutation {
    /// Deletes your account after the grace period (`CONCIERGE_ACCOUNT_DELETION_GRACE_HOURS`);
    /// returns when. Needs your password, and `code` (TOTP or recovery code) when two-factor
    /// is on. CONFLICT on `account` while you are the only owner of a workspace with other
    /// members. `cancelAccountDeletion` calls it off until then.
    #[graphql(deprecation = "use scheduleAccountDeletion")]
    async fn delete_account(&self, ctx: &Context<'_>, password: String, code: Option<String>) -> Result<DateTime<Utc>> {
        let scheduled = self.schedule_account_deletion(ctx, ScheduleAccountDeletionInput { password, code }).await?;
        scheduled.deletion_scheduled_at.ok_or_else(|| Error::Internal(anyhow::anyhow!("a deletion scheduled without a time")))
    }

    /// Deletes your account after the grace period (`CONCIERGE_ACCOUNT_DELETION_GRACE_HOURS`).
    /// Needs your password, and `code` (TOTP or recovery code) when two-factor is on.
    /// CONFLICT on `account` while you are the only owner of a workspace with other members.
    /// `stopAccountDeletion` calls it off until then.
    async fn schedule_account_deletion(&self, ctx: &Context<'_>, input: ScheduleAccountDeletionInput) -> Result<AccountDeletionPayload> {
        let viewer = ctx.viewer().await?;
        let at = ctx.services()?.deletion.schedule(&viewer, input.password, input.code.as_deref()).await?;
        Ok(AccountDeletionPayload { deletion_scheduled_at: Some(at), user: User(viewer.account) })
    }

    /// Calls off a scheduled deletion of your account.
    #[graphql(deprecation = "use stopAccountDeletion")]
    async fn cancel_account_deletion(&self, ctx: &Context<'_>) -> Result<bool> {
        self.stop_account_deletion(ctx).await.map(|_| true)
    }

    /// Calls off a scheduled deletion of your account.
    async fn stop_account_deletion(&self, ctx: &Context<'_>) -> Result<AccountDeletionPayload> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.deletion.cancel(&viewer).await?;
        Ok(AccountDeletionPayload { deletion_scheduled_at: None, user: User(viewer.account) })
    }
}

#[derive(InputObject)]
pub struct ScheduleAccountDeletionInput {
    pub password: String,
    /// A TOTP or recovery code, when two-factor is on.
    pub code: Option<String>,
}

#[derive(SimpleObject)]
pub struct AccountDeletionPayload {
    /// When the account will be deleted; null once called off.
    pub deletion_scheduled_at: Option<DateTime<Utc>>,
    /// You.
    pub user: User,
}
