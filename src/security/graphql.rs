//! Security over GraphQL: the password policy, password change, two-factor enrolment and
//! log-in completion, recovery codes.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::log::{SecurityEvent, SecurityEventKind};
use crate::db::StoredEnum as _;
use crate::error::{PasswordRule, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::paging::{Direction, settle};
use crate::identity::graphql::{LogInPayload, User};
use crate::identity::password::Policy;
use crate::identity::service::Viewer;
use crate::input::input_or_flat;

/// The password rules, for a frontend checklist; the server enforces the same.
#[derive(SimpleObject)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Passwords are also limited in bytes (UTF-8), so hashing cannot be made expensive.
    pub max_bytes: usize,
    pub special_characters: String,
    pub rules: Vec<PasswordRuleInfo>,
}

#[derive(SimpleObject)]
pub struct PasswordRuleInfo {
    /// The code errors use in `extensions.unmet`.
    pub code: PasswordRule,
    pub description: String,
}

/// What an authenticator app needs. Nothing is on until `confirmTotpEnrollment`.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_code_svg: String,
    pub qr_code_png_data_url: String,
}

/// Single-use recovery codes, shown only here.
#[derive(SimpleObject)]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
}

#[derive(SimpleObject)]
pub struct SecurityOverview {
    pub two_factor_enabled: bool,
    pub recovery_codes_remaining: i64,
    pub password_changed_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct SecurityQuery;

#[Object]
impl SecurityQuery {
    /// The rules a new password must meet.
    async fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: Policy::MIN_CHARS,
            max_length: Policy::MAX_CHARS,
            max_bytes: Policy::MAX_BYTES,
            special_characters: Policy::SPECIALS.to_owned(),
            rules: Policy::rules().into_iter().map(|(code, description)| PasswordRuleInfo { code, description }).collect(),
        }
    }
}

#[derive(Default)]
pub struct SecurityMutation;

#[Object]
impl SecurityMutation {
    /// Changes the password: the current one is checked, every unmet rule of the new one is
    /// reported at once, and every other session ends.
    #[graphql(deprecation = "use updatePassword")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
        confirm_password: String,
    ) -> Result<bool> {
        let input = UpdatePasswordInput { current_password, new_password, confirm_password };
        self.update_password(ctx, input).await.map(|_| true)
    }

    /// Changes the password: the current one is checked, every unmet rule of the new one is
    /// reported at once, and every other session ends (the payload's `user` shows the one left).
    async fn update_password(&self, ctx: &Context<'_>, input: UpdatePasswordInput) -> Result<UpdatePasswordPayload> {
        let viewer = ctx.viewer().await?;
        let UpdatePasswordInput { current_password, new_password, confirm_password } = input;
        ctx.services()?.security.change_password(&viewer, current_password, new_password, confirm_password).await?;
        Ok(UpdatePasswordPayload { user: User(viewer.account) })
    }

    /// Starts two-factor enrolment with a new secret.
    async fn begin_totp_enrollment(&self, ctx: &Context<'_>) -> Result<TotpEnrollment> {
        let viewer = ctx.viewer().await?;
        let e = ctx.services()?.security.begin_enrollment(&viewer).await?;
        Ok(TotpEnrollment {
            secret: e.secret_base32,
            otpauth_uri: e.otpauth_uri,
            qr_code_svg: e.qr_svg,
            qr_code_png_data_url: e.qr_png_data_url,
        })
    }

    /// Turns two-factor on with a code from the app; returns ten recovery codes.
    async fn confirm_totp_enrollment(
        &self,
        ctx: &Context<'_>,
        input: Option<TotpCodeInput>,
        #[graphql(deprecation = "pass it in `input`")] code: Option<String>,
    ) -> Result<RecoveryCodes> {
        let input = input_or_flat!(input, [code] => TotpCodeInput { code });
        let viewer = ctx.viewer().await?;
        Ok(RecoveryCodes { codes: ctx.services()?.security.confirm_enrollment(&viewer, &input.code).await? })
    }

    /// Turns two-factor off (password and a current code or recovery code).
    #[graphql(deprecation = "use removeTotp")]
    async fn disable_totp(&self, ctx: &Context<'_>, password: String, code: String) -> Result<bool> {
        self.remove_totp(ctx, RemoveTotpInput { password, code }).await.map(|_| true)
    }

    /// Turns two-factor off (password and a current code or recovery code).
    async fn remove_totp(&self, ctx: &Context<'_>, input: RemoveTotpInput) -> Result<RemoveTotpPayload> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.security.disable(&viewer, input.password, &input.code).await?;
        Ok(RemoveTotpPayload { user: User(viewer.account) })
    }

    /// Replaces the recovery codes (needs a current TOTP code).
    async fn regenerate_recovery_codes(
        &self,
        ctx: &Context<'_>,
        input: Option<TotpCodeInput>,
        #[graphql(deprecation = "pass it in `input`")] code: Option<String>,
    ) -> Result<RecoveryCodes> {
        let input = input_or_flat!(input, [code] => TotpCodeInput { code });
        let viewer = ctx.viewer().await?;
        Ok(RecoveryCodes { codes: ctx.services()?.security.regenerate_recovery_codes(&viewer, &input.code).await? })
    }

    /// Completes a log-in that asked for a second factor: a TOTP code or a recovery code.
    async fn complete_two_factor_log_in(
        &self,
        ctx: &Context<'_>,
        input: Option<CompleteTwoFactorLogInInput>,
        #[graphql(deprecation = "pass it in `input`")] challenge: Option<String>,
        #[graphql(deprecation = "pass it in `input`")] code: Option<String>,
    ) -> Result<LogInPayload> {
        let input = input_or_flat!(input, [challenge, code] => CompleteTwoFactorLogInInput { challenge, code });
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        let issued = ctx.services()?.security.complete_log_in(&input.challenge, &input.code, meta).await?;
        Ok(LogInPayload::signed_in(ctx, issued))
    }
}

#[derive(InputObject)]
pub struct UpdatePasswordInput {
    pub current_password: String,
    pub new_password: String,
    /// The new password again.
    pub confirm_password: String,
}

#[derive(SimpleObject)]
pub struct UpdatePasswordPayload {
    /// You, with the one session left.
    pub user: User,
}

#[derive(InputObject)]
pub struct TotpCodeInput {
    /// A current code from the authenticator app.
    pub code: String,
}

#[derive(InputObject)]
pub struct RemoveTotpInput {
    pub password: String,
    /// A current code or a recovery code.
    pub code: String,
}

#[derive(SimpleObject)]
pub struct RemoveTotpPayload {
    /// You, with two-factor off.
    pub user: User,
}

#[derive(InputObject)]
pub struct CompleteTwoFactorLogInInput {
    /// From `logIn`'s `twoFactorChallenge`.
    pub challenge: String,
    /// A TOTP code or a recovery code.
    pub code: String,
}

/// One entry of the security log.
pub struct SecurityEventNode(pub SecurityEvent);

#[Object(name = "SecurityEvent")]
impl SecurityEventNode {
    async fn id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }

    /// What happened (null for a kind this version does not know).
    async fn kind(&self) -> Option<SecurityEventKind> {
        SecurityEventKind::from_stored(&self.0.kind)
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The client address the request came from.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// A short note: a token's name, a session's id, why a sign-in failed.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

pub type SecurityEventConnection = Connection<OpaqueCursor<Uuid>, SecurityEventNode, EmptyFields>;

/// A page of the viewer's security log, newest first.
pub async fn security_events(ctx: &Context<'_>, viewer: &Viewer, direction: Direction) -> Result<SecurityEventConnection> {
    viewer.require_session()?;
    let (cursor, newer) = direction.keyset();
    let rows = ctx.services()?.security_log.page(viewer.account_id(), cursor, newer, direction.limit()).await?;
    let (page, previous, next) = settle(direction, rows);
    let mut connection = Connection::new(previous, next);
    connection.edges.extend(page.into_iter().map(|e| Edge::new(OpaqueCursor(e.event_id), SecurityEventNode(e))));
    Ok(connection)
}
