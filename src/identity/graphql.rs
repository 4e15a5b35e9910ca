//! Identity over GraphQL: `me`, `signUp`, `logIn`, `logOut`, and the live `meUpdated`.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::model::{Account, AccountStatus, NewAccount};
use super::service::{IssuedSession, LogInOutcome, SignUp, SignedUp};
use crate::error::{Error, Result};
use crate::fanout::{Change, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::graphql::loaders::{Loaders, unshare};
use crate::security::graphql::SecurityOverview;
use crate::tokens::graphql::AccessTokenNode;
use crate::tokens::model::Scope;
use crate::workspace::graphql::MembershipNode;

/// A person with an account.
pub struct User(pub Account);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.account_id.to_string())
    }

    /// The login email (lower-cased).
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// When your account will be deleted (after `deleteAccount`, until `cancelAccountDeletion`;
    /// yourself only).
    async fn deletion_scheduled_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        own(ctx, &self.0).await?;
        ctx.services()?.deletion.scheduled_at(self.0.account_id).await
    }

    /// Your data exports, newest first (yourself only, from a session).
    async fn data_exports(&self, ctx: &Context<'_>) -> Result<Vec<crate::export::graphql::DataExportNode>> {
        own(ctx, &self.0).await?;
        crate::export::graphql::data_exports(ctx).await
    }

    /// Whether the login email was proven to be this user's (a verification, password-reset
    /// or email-change link opened from it).
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }

    async fn first_name(&self) -> &str {
        &self.0.first_name
    }

    async fn last_name(&self) -> &str {
        &self.0.last_name
    }

    /// First and last name.
    async fn full_name(&self) -> String {
        self.0.full_name()
    }

    /// The account's own status, across every workspace: an INACTIVE account cannot log in.
    /// Only its holder (`deactivateAccount`) or the operator changes it. A workspace
    /// deactivating a member changes `Membership.status` instead.
    async fn status(&self) -> AccountStatus {
        self.0.status()
    }

    /// The name shown to others; falls back to first and last name when not set.
    async fn display_name(&self) -> String {
        self.0.shown_name()
    }

    /// The phone as entered.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    /// The phone in E.164 form (`+48221234567`), when it has an international prefix.
    async fn phone_e164(&self) -> Option<&str> {
        self.0.phone_e164.as_deref()
    }

    /// How the user describes their role in the company.
    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }

    /// The language (BCP 47 tag) Concierge writes to this user in.
    async fn language(&self) -> &str {
        &self.0.language
    }

    async fn photo(&self) -> Option<crate::profile::graphql::Photo> {
        self.0.photo_key.clone().map(|key| crate::profile::graphql::Photo { key })
    }

    /// The email signature (yourself only).
    async fn signature(&self, ctx: &Context<'_>) -> Result<crate::profile::graphql::Signature> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::ProfileRead)?;
        Ok(ctx.services()?.profile.signature(&viewer.account).await?.into())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Two-factor and password state (yourself only).
    async fn security(&self, ctx: &Context<'_>) -> Result<SecurityOverview> {
        let viewer = own(ctx, &self.0).await?;
        let o = ctx.services()?.security.overview(&viewer).await?;
        Ok(SecurityOverview {
            two_factor_enabled: o.two_factor_enabled,
            recovery_codes_remaining: o.recovery_codes_remaining,
            password_changed_at: o.password_changed_at,
        })
    }

    /// Your passkeys, oldest first (yourself only, from a session).
    async fn passkeys(&self, ctx: &Context<'_>) -> Result<Vec<crate::passkeys::graphql::PasskeyNode>> {
        let viewer = own(ctx, &self.0).await?;
        crate::passkeys::graphql::passkeys(ctx, &viewer).await
    }

    /// Your live sessions, newest first (yourself only, from a session).
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionNode>> {
        let viewer = own(ctx, &self.0).await?;
        let current = viewer.session_id();
        let sessions = ctx.services()?.identity.sessions(&viewer).await?;
        Ok(sessions.into_iter().map(|s| SessionNode { current: Some(s.session_id) == current, info: s }).collect())
    }

    /// Your security log, newest first: sign-ins, password and two-factor changes, sessions
    /// and tokens revoked, with the address and user agent of each (yourself only, from a session).
    async fn security_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<crate::security::graphql::SecurityEventConnection> {
        let viewer = own(ctx, &self.0).await?;
        crate::security::graphql::security_events(ctx, &viewer, first, after).await
    }

    /// Notification settings: the event × channel matrix, audio alerts, the daily summary
    /// (yourself only).
    async fn preferences(&self, ctx: &Context<'_>) -> Result<crate::notifications::graphql::PreferencesNode> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::ProfileRead)?;
        Ok(crate::notifications::graphql::PreferencesNode(ctx.services()?.notifications.preferences(viewer.account_id()).await?))
    }

    /// Your in-app notifications, newest first; `unreadOnly` skips the read ones.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        unread_only: Option<bool>,
    ) -> Result<crate::notifications::graphql::NotificationConnection> {
        let viewer = own(ctx, &self.0).await?;
        crate::notifications::graphql::notifications(ctx, &viewer, first, after, unread_only.unwrap_or(false)).await
    }

    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::NotificationsRead)?;
        ctx.services()?.notifications.unread_count(viewer.account_id()).await
    }

    /// Your status and working hours (yourself only).
    async fn availability(&self, ctx: &Context<'_>) -> Result<crate::availability::graphql::AvailabilityNode> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::ProfileRead)?;
        crate::availability::graphql::availability_of(ctx, viewer.account_id()).await
    }

    /// Your free intervals in `[from, to)` (at most 62 days), in UTC: working hours minus
    /// the busy events of your primary and conflict calendars, minus out of office
    /// (yourself only).
    async fn free_busy(&self, ctx: &Context<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<crate::availability::graphql::FreeBusy> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::ProfileRead)?;
        Ok(ctx.services()?.availability.free_busy(&viewer, from, to, &ctx.services()?.calendars).await?.into())
    }

    /// Your connected calendar accounts (yourself only).
    async fn calendar_accounts(&self, ctx: &Context<'_>) -> Result<Vec<crate::calendars::graphql::CalendarAccountNode>> {
        let viewer = own(ctx, &self.0).await?;
        crate::calendars::graphql::calendar_accounts(ctx, &viewer).await
    }

    /// Every calendar of your connected accounts, with its colour, time zone, whether it can
    /// be written, and whether it is your primary or a conflict calendar (yourself only).
    async fn calendars(&self, ctx: &Context<'_>) -> Result<Vec<crate::calendars::graphql::CalendarNode>> {
        let viewer = own(ctx, &self.0).await?;
        crate::calendars::graphql::calendars(ctx, &viewer).await
    }

    /// The occurrences in `[from, to)` (at most 62 days) of the events of your primary and
    /// conflict calendars, recurring ones expanded, in order (yourself only).
    async fn calendar_events(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<crate::calendars::graphql::CalendarEventOccurrence>> {
        let viewer = own(ctx, &self.0).await?;
        crate::calendars::graphql::calendar_events(ctx, &viewer, from, to).await
    }

    /// Your connected mailboxes (yourself only).
    async fn mailboxes(&self, ctx: &Context<'_>) -> Result<Vec<crate::mailboxes::graphql::MailboxNode>> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::MailboxesRead)?;
        let found = ctx.services()?.mailboxes.mailboxes(&viewer).await?;
        Ok(found.into_iter().map(crate::mailboxes::graphql::MailboxNode).collect())
    }

    /// Your personal access tokens (yourself only, from a session).
    async fn access_tokens(&self, ctx: &Context<'_>) -> Result<Vec<AccessTokenNode>> {
        let viewer = own(ctx, &self.0).await?;
        Ok(ctx.services()?.tokens.list(&viewer).await?.into_iter().map(AccessTokenNode).collect())
    }

    /// Invitations to workspaces waiting for your answer, addressed to your login email
    /// (yourself only). Each shows the workspace's and the inviter's names; accept or
    /// decline them by id.
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<crate::workspace::graphql::InvitationNode>> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::WorkspacesRead)?;
        let found = ctx.services()?.workspaces.my_invitations(&viewer).await?;
        Ok(found.into_iter().map(|v| crate::workspace::graphql::InvitationNode(v.invitation)).collect())
    }

    /// The workspaces this user belongs to, with their role and membership status in each
    /// (yours include inactive memberships). For another user, only the workspaces where
    /// both of you are active members.
    async fn memberships(&self, ctx: &Context<'_>) -> Result<Vec<MembershipNode>> {
        let viewer = ctx.viewer_for(Scope::ProfileRead).await?;
        let loaders = loaders(ctx)?;
        let theirs = loaders.memberships.load_one(self.0.account_id).await.map_err(unshare)?.unwrap_or_default();
        if viewer.account_id() == self.0.account_id {
            return Ok(theirs.into_iter().map(MembershipNode).collect());
        }
        let mine = loaders.memberships.load_one(viewer.account_id()).await.map_err(unshare)?.unwrap_or_default();
        Ok(theirs
            .into_iter()
            .filter(|m| m.is_active() && mine.iter().any(|v| v.is_active() && v.workspace_id == m.workspace_id))
            .map(MembershipNode)
            .collect())
    }
}

/// The viewer, when the user being resolved is the viewer: private fields are for oneself.
async fn own(ctx: &Context<'_>, account: &Account) -> Result<crate::identity::service::Viewer> {
    let viewer = ctx.viewer().await?;
    if viewer.account_id() != account.account_id {
        return Err(Error::forbidden("only visible to the user themself"));
    }
    Ok(viewer)
}

pub fn loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders> {
    ctx.data::<Loaders>().map_err(|e| Error::Internal(anyhow::anyhow!("loaders missing: {}", e.message)))
}

/// A signed-in browser or app.
pub struct SessionNode {
    info: super::store::SessionInfo,
    current: bool,
}

#[Object(name = "Session")]
impl SessionNode {
    async fn id(&self) -> ID {
        ID(self.info.session_id.to_string())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.info.created_at
    }

    /// Refreshed at most once a minute.
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.info.last_seen_at
    }

    async fn expires_at(&self) -> DateTime<Utc> {
        self.info.expires_at
    }

    async fn ip(&self) -> Option<&str> {
        self.info.ip.as_deref()
    }

    async fn user_agent(&self) -> Option<&str> {
        self.info.user_agent.as_deref()
    }

    /// Whether this is the session making the request.
    async fn current(&self) -> bool {
        self.current
    }
}

#[derive(InputObject)]
pub struct SignUpInput {
    /// The login email.
    pub email: String,
    /// Must meet `passwordPolicy`.
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    /// The token of an invitation's link, addressed to this email: the new account joins
    /// that workspace too.
    pub invitation_token: Option<String>,
}

#[derive(SimpleObject)]
pub struct SignUpPayload {
    pub user: User,
}

/// The outcome of a log-in: a session, or (with two-factor on) a challenge to complete with
/// `completeTwoFactorLogIn`. The token is shown only here: send it as
/// `Authorization: Bearer <token>`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LogInPayload {
    /// The session token; null while a second factor is needed.
    pub token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Null while a second factor is needed.
    pub user: Option<User>,
    pub two_factor_challenge: Option<TwoFactorChallenge>,
}

/// A log-in that passed the password and waits for a TOTP or recovery code.
#[derive(SimpleObject)]
pub struct TwoFactorChallenge {
    pub challenge: String,
    pub expires_at: DateTime<Utc>,
}

#[ComplexObject]
impl LogInPayload {
    /// Set when the account is due to be deleted (`deleteAccount`): offer to keep it with
    /// `cancelAccountDeletion`, which the session just opened may call until then.
    async fn deletion_scheduled_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        match &self.user {
            Some(user) => ctx.services()?.deletion.scheduled_at(user.0.account_id).await,
            None => Ok(None),
        }
    }
}

impl LogInPayload {
    pub fn signed_in(ctx: &Context<'_>, issued: IssuedSession) -> Self {
        if let Some(auth) = ctx.auth() {
            auth.sign_in(issued.viewer);
        }
        LogInPayload {
            token: Some(issued.token),
            expires_at: Some(issued.expires_at),
            user: Some(User(issued.account)),
            two_factor_challenge: None,
        }
    }
}

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User(ctx.viewer_for(Scope::ProfileRead).await?.account))
    }
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    /// Creates an active account and a personal workspace it owns; with `invitationToken`,
    /// it joins the invitation's workspace too. Log in afterwards.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<SignUpPayload> {
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        ctx.services()?.identity.admit_sign_up(&meta)?;
        let new = NewAccount::try_from(SignUp {
            email: input.email,
            password: input.password,
            first_name: input.first_name,
            last_name: input.last_name,
        })?;
        let services = ctx.services()?;
        let account = match services.identity.sign_up(new, input.invitation_token.as_deref()).await? {
            // An invited sign-up proved its address with the invitation's token.
            SignedUp::Created(account) if account.email_verified_at.is_some() => account,
            SignedUp::Created(account) => {
                if let Err(e) = services.recovery.send_verification(&account).await {
                    tracing::warn!(error = ?e, "verification email not sent");
                }
                account
            }
            SignedUp::AddressTaken { shown, owner } => {
                services.recovery.tell_owner_of_sign_up(&owner).await;
                shown
            }
        };
        Ok(SignUpPayload { user: User(account) })
    }

    /// Opens a session. Wrong email and wrong password get the same UNAUTHENTICATED answer.
    async fn log_in(&self, ctx: &Context<'_>, email: String, password: String) -> Result<LogInPayload> {
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        Ok(match ctx.services()?.identity.log_in(&email, password, meta).await? {
            LogInOutcome::Session(issued) => LogInPayload::signed_in(ctx, *issued),
            LogInOutcome::Challenge { challenge, expires_at } => LogInPayload {
                token: None,
                expires_at: None,
                user: None,
                two_factor_challenge: Some(TwoFactorChallenge { challenge, expires_at }),
            },
        })
    }

    /// Ends one of your sessions; its next request fails and its subscriptions close.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let viewer = ctx.viewer().await?;
        let id = id.parse::<uuid::Uuid>().map_err(|_| Error::invalid("id", "not a valid id"))?;
        ctx.services()?.identity.revoke_session(&viewer, id).await?;
        Ok(true)
    }

    /// Ends every session but this one.
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> Result<bool> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.identity.revoke_other_sessions(&viewer).await?;
        Ok(true)
    }

    /// Deactivates your own account (from a session, with your password): every session
    /// ends and you can no longer log in; the operator can reactivate it. Refused
    /// (CONFLICT) while you are the last active owner of a workspace with other members.
    async fn deactivate_account(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.identity.deactivate_account(&viewer, password).await?;
        Ok(true)
    }

    /// Ends the current session; its token stops working at once.
    async fn log_out(&self, ctx: &Context<'_>) -> Result<bool> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.identity.log_out(&viewer).await?;
        Ok(true)
    }
}

#[derive(Default)]
pub struct IdentitySubscription;

#[Subscription]
impl IdentitySubscription {
    /// The signed-in user, each time their account, status or memberships change.
    async fn me_updated(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = async_graphql::Result<User>> + use<>> {
        let viewer = ctx.viewer_for(Scope::ProfileRead).await?;
        let services = ctx.services()?.clone();
        let me = viewer.account_id();
        // A lag (Err): some changes were dropped; reloading shows the latest state anyway.
        live::feed(
            ctx,
            Topic::Account(me),
            (),
            |c| matches!(c, Change::Account { .. }),
            move |_, _| {
                let services = services.clone();
                async move {
                    let account = services.identity.accounts(&[me]).await.map_err(async_graphql::Error::from);
                    Some(account.and_then(|mut a| a.pop().map(User).ok_or_else(|| Error::Unauthenticated.into())))
                }
            },
        )
    }
}
