//! Recovery over GraphQL: "forgot password", the reset itself, and email verification.

use async_graphql::{Context, Object};

use crate::error::Result;
use crate::graphql::context::ContextExt;
use crate::identity::service::ClientMeta;

fn meta(ctx: &Context<'_>) -> ClientMeta {
    ctx.auth().map(|a| a.meta.clone()).unwrap_or_default()
}

#[derive(Default)]
pub struct RecoveryMutation;

#[Object]
impl RecoveryMutation {
    /// Emails a single-use link that sets a new password, if an account has this address.
    /// The answer is `true` either way (and takes as long), so it tells nobody whether the
    /// address has an account. Throttled per address and per client (RATE_LIMITED).
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        ctx.services()?.recovery.request_password_reset(&email, &meta(ctx)).await?;
        Ok(true)
    }

    /// Sets a new password with the emailed link's token. The password policy applies (every
    /// unmet rule at once, as `changePassword`); the token works once; every session ends.
    /// Two-factor stays on: the next log-in still asks for the code.
    async fn reset_password(&self, ctx: &Context<'_>, token: String, new_password: String, confirm_password: String) -> Result<bool> {
        ctx.services()?.recovery.reset_password(&token, new_password, confirm_password, &meta(ctx)).await?;
        Ok(true)
    }

    /// Marks the login email verified with the emailed link's token (no sign-in needed: the
    /// token proves the address).
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        ctx.services()?.recovery.verify_email(&token, &meta(ctx)).await?;
        Ok(true)
    }

    /// Sends a new verification link: to the signed-in user's address, or to `email` for a
    /// log-in page that refused an unverified account. `true` whether or not anything was
    /// sent (nothing is for an unknown or verified address). Throttled like password resets.
    async fn resend_verification_email(&self, ctx: &Context<'_>, email: Option<String>) -> Result<bool> {
        let services = ctx.services()?;
        let viewer = match ctx.auth() {
            Some(_) => ctx.viewer().await.ok(),
            None => None,
        };
        services.recovery.resend_verification(viewer.as_ref(), email.as_deref(), &meta(ctx)).await?;
        Ok(true)
    }
}
