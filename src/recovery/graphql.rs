//! Recovery over GraphQL: "forgot password", the reset itself, and email verification.

use async_graphql::{Context, InputObject, Object, SimpleObject};

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
    #[graphql(deprecation = "use sendPasswordResetEmail")]
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        self.send_password_reset_email(ctx, EmailInput { email }).await.map(|_| true)
    }

    /// Emails a single-use link that sets a new password, if an account has this address.
    /// The answer is the same either way (and takes as long), so it tells nobody whether the
    /// address has an account. Throttled per address and per client (RATE_LIMITED).
    async fn send_password_reset_email(&self, ctx: &Context<'_>, input: EmailInput) -> Result<EmailSentPayload> {
        ctx.services()?.recovery.request_password_reset(&input.email, &meta(ctx)).await?;
        Ok(EmailSentPayload { email: Some(input.email.trim().to_owned()) })
    }

    /// Sets a new password with the emailed link's token. The password policy applies (every
    /// unmet rule at once, as `updatePassword`); the token works once; every session ends.
    /// Two-factor stays on: the next log-in still asks for the code.
    #[graphql(deprecation = "use completePasswordReset")]
    async fn reset_password(&self, ctx: &Context<'_>, token: String, new_password: String, confirm_password: String) -> Result<bool> {
        let input = CompletePasswordResetInput { token, new_password, confirm_password };
        self.complete_password_reset(ctx, input).await.map(|_| true)
    }

    /// Sets a new password with the emailed link's token. The password policy applies (every
    /// unmet rule at once, as `updatePassword`); the token works once; every session ends.
    /// Two-factor stays on: the next log-in still asks for the code. The payload names the
    /// login email to sign in with.
    async fn complete_password_reset(&self, ctx: &Context<'_>, input: CompletePasswordResetInput) -> Result<LoginEmailPayload> {
        let CompletePasswordResetInput { token, new_password, confirm_password } = input;
        let email = ctx.services()?.recovery.reset_password(&token, new_password, confirm_password, &meta(ctx)).await?;
        Ok(LoginEmailPayload { email })
    }

    /// Marks the login email verified with the emailed link's token (no sign-in needed: the
    /// token proves the address).
    #[graphql(deprecation = "use confirmEmailAddress")]
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        self.confirm_email_address(ctx, TokenInput { token }).await.map(|_| true)
    }

    /// Marks the login email verified with the emailed link's token (no sign-in needed: the
    /// token proves the address). The payload names the address verified.
    async fn confirm_email_address(&self, ctx: &Context<'_>, input: TokenInput) -> Result<LoginEmailPayload> {
        let account = ctx.services()?.recovery.verify_email(&input.token, &meta(ctx)).await?;
        Ok(LoginEmailPayload { email: account.email })
    }

    /// Sends a new verification link: to the signed-in user's address, or to `email` for a
    /// log-in page that refused an unverified account. `true` whether or not anything was
    /// sent (nothing is for an unknown or verified address). Throttled like password resets.
    #[graphql(deprecation = "use sendVerificationEmail")]
    async fn resend_verification_email(&self, ctx: &Context<'_>, email: Option<String>) -> Result<bool> {
        self.send_verification_email(ctx, Some(VerificationEmailInput { email })).await.map(|_| true)
    }

    /// Sends a new verification link: to the signed-in user's address, or to `input.email`
    /// for a log-in page that refused an unverified account. The answer is the same whether
    /// or not anything was sent (nothing is for an unknown or verified address). Throttled
    /// like password resets.
    async fn send_verification_email(&self, ctx: &Context<'_>, input: Option<VerificationEmailInput>) -> Result<EmailSentPayload> {
        let email = input.and_then(|i| i.email);
        let services = ctx.services()?;
        let viewer = match ctx.auth() {
            Some(_) => ctx.viewer().await.ok(),
            None => None,
        };
        services.recovery.resend_verification(viewer.as_ref(), email.as_deref(), &meta(ctx)).await?;
        let email = viewer.map(|v| v.account.email).or_else(|| email.map(|e| e.trim().to_owned()));
        Ok(EmailSentPayload { email })
    }
}

#[derive(InputObject)]
pub struct EmailInput {
    pub email: String,
}

#[derive(InputObject)]
pub struct CompletePasswordResetInput {
    /// From the emailed link.
    pub token: String,
    pub new_password: String,
    /// The new password again.
    pub confirm_password: String,
}

#[derive(InputObject)]
pub struct TokenInput {
    /// From the emailed link.
    pub token: String,
}

#[derive(InputObject)]
pub struct VerificationEmailInput {
    /// Signed out: the address a log-in page refused as unverified.
    pub email: Option<String>,
}

/// An email that goes out only where an account has the address: the answer is the same
/// either way.
#[derive(SimpleObject)]
pub struct EmailSentPayload {
    /// The address, as given (or yours, signed in).
    pub email: Option<String>,
}

#[derive(SimpleObject)]
pub struct LoginEmailPayload {
    /// The account's login email.
    pub email: String,
}
