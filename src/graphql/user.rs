//! The `User` object's fields. A user's data lives in many domains (profile, security,
//! passkeys, notifications, calendars, mailboxes, tokens, workspaces), so the object is
//! resolved here, above them all: each domain is asked through its own service or resolver
//! helpers, and no domain imports another's GraphQL types to show a user.

use async_graphql::connection::{Connection, Edge, OpaqueCursor};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::graphql::paging::{Direction, slice, two_way_page_args};
use crate::identity::graphql::{SessionNode, User};
use crate::identity::model::{Account, AccountStatus};
use crate::identity::service::Viewer;
use crate::security::graphql::SecurityOverview;
use crate::tokens::graphql::AccessTokenNode;
use crate::tokens::model::Scope;
use crate::workspace::graphql::MembershipNode;

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.account_id.to_string())
    }

    /// The login email (lower-cased).
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// When your account will be deleted (after `scheduleAccountDeletion`, until `stopAccountDeletion`;
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
    /// Only its holder (`deactivateMyAccount`) or the operator changes it. A workspace
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

    /// The person's IANA time zone, if set (`updateProfile(input: {timeZone})`). Their
    /// availability and daily summary follow it unless given a zone of their own.
    async fn time_zone(&self) -> Option<&str> {
        self.0.time_zone.as_deref()
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
        Ok(crate::profile::graphql::Signature::of(viewer.account_id(), ctx.services()?.profile.signature(&viewer.account).await?))
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
    #[graphql(deprecation = "page through sessionsConnection; this list stays for one release")]
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionNode>> {
        self.session_nodes(ctx).await
    }

    /// Your live sessions, newest first, by pages both ways (yourself only, from a session).
    async fn sessions_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<OpaqueCursor<Uuid>, SessionNode>> {
        let direction = two_way_page_args(first, after, last, before)?;
        paged(self.session_nodes(ctx).await?, |s| s.info.session_id, direction)
    }

    /// Your security log, newest first: sign-ins, password and two-factor changes, sessions
    /// and tokens revoked, with the address and user agent of each (yourself only, from a session).
    async fn security_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<crate::security::graphql::SecurityEventConnection> {
        let viewer = own(ctx, &self.0).await?;
        let direction = two_way_page_args(first, after, last, before)?;
        crate::security::graphql::security_events(ctx, &viewer, direction).await
    }

    /// Notification settings: the event × channel matrix, audio alerts, the daily summary
    /// (yourself only).
    async fn preferences(&self, ctx: &Context<'_>) -> Result<crate::notifications::graphql::PreferencesNode> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::ProfileRead)?;
        let preferences = ctx.services()?.notifications.preferences(viewer.account_id()).await?;
        Ok(crate::notifications::graphql::PreferencesNode(viewer.account_id(), preferences))
    }

    /// Your in-app notifications, newest first; `unreadOnly` skips the read ones.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        unread_only: Option<bool>,
    ) -> Result<crate::notifications::graphql::NotificationConnection> {
        let viewer = own(ctx, &self.0).await?;
        let direction = two_way_page_args(first, after, last, before)?;
        crate::notifications::graphql::notifications(ctx, &viewer, direction, unread_only.unwrap_or(false)).await
    }

    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::NotificationsRead)?;
        ctx.services()?.notifications.unread_count(viewer.account_id()).await
    }

    /// The browsers you registered for Web Push, newest first, with how delivery to each is
    /// going (yourself only).
    async fn push_subscriptions(&self, ctx: &Context<'_>) -> Result<Vec<crate::notifications::graphql::PushSubscriptionNode>> {
        let viewer = own(ctx, &self.0).await?;
        crate::notifications::graphql::push_subscriptions(ctx, &viewer).await
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
    #[graphql(deprecation = "page through mailboxesConnection; this list stays for one release")]
    async fn mailboxes(&self, ctx: &Context<'_>) -> Result<Vec<crate::mailboxes::graphql::MailboxNode>> {
        self.mailbox_nodes(ctx).await
    }

    /// Your connected mailboxes, by pages both ways (yourself only).
    async fn mailboxes_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<OpaqueCursor<Uuid>, crate::mailboxes::graphql::MailboxNode>> {
        let direction = two_way_page_args(first, after, last, before)?;
        paged(self.mailbox_nodes(ctx).await?, |m| m.0.mailbox_id.0, direction)
    }

    /// Your personal access tokens (yourself only, from a session).
    #[graphql(deprecation = "page through accessTokensConnection; this list stays for one release")]
    async fn access_tokens(&self, ctx: &Context<'_>) -> Result<Vec<AccessTokenNode>> {
        self.token_nodes(ctx).await
    }

    /// Your personal access tokens, oldest first, by pages both ways (yourself only, from a
    /// session).
    async fn access_tokens_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<OpaqueCursor<Uuid>, AccessTokenNode>> {
        let direction = two_way_page_args(first, after, last, before)?;
        paged(self.token_nodes(ctx).await?, |t| t.0.access_token_id, direction)
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
    #[graphql(deprecation = "page through membershipsConnection; this list stays for one release")]
    async fn memberships(&self, ctx: &Context<'_>) -> Result<Vec<MembershipNode>> {
        self.membership_nodes(ctx).await
    }

    /// `memberships` by pages both ways, with their total count.
    async fn memberships_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<crate::workspace::graphql::MemberConnection> {
        let direction = two_way_page_args(first, after, last, before)?;
        let all = self.membership_nodes(ctx).await?;
        let total_count = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let (page, previous, next) = slice(all, |m| m.0.membership_id, direction)?;
        let mut connection =
            Connection::with_additional_fields(previous, next, crate::workspace::graphql::MemberConnectionFields { total_count });
        connection.edges.extend(page.into_iter().map(|m| Edge::new(OpaqueCursor(m.0.membership_id), m)));
        Ok(connection)
    }
}

/// The lists a user's connections page through, loaded whole (each is short: a person's own
/// sessions, tokens, mailboxes, memberships).
impl User {
    async fn session_nodes(&self, ctx: &Context<'_>) -> Result<Vec<SessionNode>> {
        let viewer = own(ctx, &self.0).await?;
        let current = viewer.session_id();
        let sessions = ctx.services()?.identity.sessions(&viewer).await?;
        Ok(sessions.into_iter().map(|s| SessionNode { current: Some(s.session_id) == current, info: s }).collect())
    }

    async fn mailbox_nodes(&self, ctx: &Context<'_>) -> Result<Vec<crate::mailboxes::graphql::MailboxNode>> {
        let viewer = own(ctx, &self.0).await?;
        viewer.require(Scope::MailboxesRead)?;
        let found = ctx.services()?.mailboxes.mailboxes(&viewer).await?;
        Ok(found.into_iter().map(crate::mailboxes::graphql::MailboxNode).collect())
    }

    async fn token_nodes(&self, ctx: &Context<'_>) -> Result<Vec<AccessTokenNode>> {
        let viewer = own(ctx, &self.0).await?;
        Ok(ctx.services()?.tokens.list(&viewer).await?.into_iter().map(AccessTokenNode).collect())
    }

    async fn membership_nodes(&self, ctx: &Context<'_>) -> Result<Vec<MembershipNode>> {
        let viewer = ctx.viewer_for(Scope::ProfileRead).await?;
        let loaders = ctx.loaders()?;
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
async fn own(ctx: &Context<'_>, account: &Account) -> Result<Viewer> {
    let viewer = ctx.viewer().await?;
    if viewer.account_id() != account.account_id {
        return Err(Error::forbidden("only visible to the user themself"));
    }
    Ok(viewer)
}

/// A page of an in-memory list as a connection whose cursors are the items' ids.
fn paged<T: async_graphql::OutputType>(
    items: Vec<T>,
    id: impl Fn(&T) -> Uuid,
    direction: Direction,
) -> Result<Connection<OpaqueCursor<Uuid>, T>> {
    let (page, previous, next) = slice(items, &id, direction)?;
    let mut connection = Connection::new(previous, next);
    connection.edges.extend(page.into_iter().map(|item| Edge::new(OpaqueCursor(id(&item)), item)));
    Ok(connection)
}
