//! Identity over GraphQL: `me`, `signUp`, `logIn`, `signOut`, and the live `meUpdated`.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::model::{Account, NewAccount};
use super::service::{IssuedSession, LogInOutcome, SignUp, SignedUp};
use crate::error::{Error, Result};
use crate::fanout::{Change, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::input::input_or_flat;
use crate::tokens::model::Scope;

/// A person with an account. Its fields come from every domain that keeps something of the
/// user's, so they are resolved in `crate::graphql::user`, above them all; the domains that
/// return a user (`me`, `updateProfile`, sign-in payloads) need only this type.
pub struct User(pub Account);

/// A signed-in browser or app.
pub struct SessionNode {
    pub info: super::store::SessionInfo,
    pub current: bool,
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
    /// Set when the account is due to be deleted (`scheduleAccountDeletion`): offer to keep it with
    /// `stopAccountDeletion`, which the session just opened may call until then.
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
        ctx.services()?.identity.admit_sign_up(&meta).await?;
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
    async fn log_in(
        &self,
        ctx: &Context<'_>,
        input: Option<LogInInput>,
        #[graphql(deprecation = "pass it in `input`")] email: Option<String>,
        #[graphql(deprecation = "pass it in `input`")] password: Option<String>,
    ) -> Result<LogInPayload> {
        let input = input_or_flat!(input, [email, password] => LogInInput { email, password });
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        Ok(match ctx.services()?.identity.log_in(&input.email, input.password, meta).await? {
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
    #[graphql(deprecation = "use endSession, which answers with your remaining sessions")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        self.end_session(ctx, EndSessionInput { id }).await.map(|_| true)
    }

    /// Ends one of your sessions; its next request fails and its subscriptions close.
    /// The payload's `user` shows the sessions left.
    async fn end_session(&self, ctx: &Context<'_>, input: EndSessionInput) -> Result<EndSessionPayload> {
        let viewer = ctx.viewer().await?;
        let id = input.id.parse::<uuid::Uuid>().map_err(|_| Error::invalid("id", "not a valid id"))?;
        ctx.services()?.identity.revoke_session(&viewer, id).await?;
        Ok(EndSessionPayload { session_id: input.id, user: User(viewer.account) })
    }

    /// Ends every session but this one.
    #[graphql(deprecation = "use endOtherSessions, which answers with your remaining sessions")]
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> Result<bool> {
        self.end_other_sessions(ctx).await.map(|_| true)
    }

    /// Ends every session but this one. The payload's `user` shows the one left.
    async fn end_other_sessions(&self, ctx: &Context<'_>) -> Result<EndOtherSessionsPayload> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.identity.revoke_other_sessions(&viewer).await?;
        Ok(EndOtherSessionsPayload { user: User(viewer.account) })
    }

    /// Deactivates your own account (from a session, with your password): every session
    /// ends and you can no longer log in; the operator can reactivate it. Refused
    /// (CONFLICT) while you are the last active owner of a workspace with other members.
    #[graphql(deprecation = "use deactivateMyAccount")]
    async fn deactivate_account(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        self.deactivate_my_account(ctx, DeactivateMyAccountInput { password }).await.map(|_| true)
    }

    /// Deactivates your own account (from a session, with your password): every session
    /// ends and you can no longer log in; the operator can reactivate it. Refused
    /// (CONFLICT) while you are the last active owner of a workspace with other members.
    async fn deactivate_my_account(&self, ctx: &Context<'_>, input: DeactivateMyAccountInput) -> Result<DeactivateMyAccountPayload> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.identity.deactivate_account(&viewer, input.password).await?;
        Ok(DeactivateMyAccountPayload { user_id: ID(viewer.account_id().to_string()) })
    }

    /// Ends the current session; its token stops working at once.
    #[graphql(deprecation = "use signOut")]
    async fn log_out(&self, ctx: &Context<'_>) -> Result<bool> {
        self.sign_out(ctx).await.map(|_| true)
    }

    /// Ends the current session; its token stops working at once.
    async fn sign_out(&self, ctx: &Context<'_>) -> Result<SignOutPayload> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.identity.log_out(&viewer).await?;
        Ok(SignOutPayload { user_id: ID(viewer.account_id().to_string()) })
    }
}

#[derive(InputObject)]
pub struct LogInInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct EndSessionInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct EndSessionPayload {
    /// The session that ended.
    pub session_id: ID,
    /// You, with the sessions left.
    pub user: User,
}

#[derive(SimpleObject)]
pub struct EndOtherSessionsPayload {
    /// You, with the one session left.
    pub user: User,
}

#[derive(InputObject)]
pub struct DeactivateMyAccountInput {
    pub password: String,
}

#[derive(SimpleObject)]
pub struct DeactivateMyAccountPayload {
    /// The account deactivated; it is signed out everywhere.
    pub user_id: ID,
}

#[derive(SimpleObject)]
pub struct SignOutPayload {
    /// Who signed out.
    pub user_id: ID,
}

#[derive(Default)]
pub struct IdentitySubscription;

#[Subscription]
impl IdentitySubscription {
    /// The signed-in user, each time their account, status or memberships change.
    async fn me_updated(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = async_graphql::Result<User>> + use<>> {
        let viewer = ctx.viewer_for(Scope::ProfileRead).await?;
        let services = ctx.shared_services()?;
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
