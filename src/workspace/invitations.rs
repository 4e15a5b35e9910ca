//! Invitations: joining a workspace takes the invitee's consent. A member who may manage
//! members invites an email address; the invitee accepts or declines, by the emailed link's
//! token or, signed in with that login email, by the invitation's id.
//!
//! Whether the address has an account changes nothing the inviter sees (the same answer,
//! the same invitation), so inviting cannot be used to test which emails have accounts. The
//! invitee sees only the workspace's name and the inviter's name until they accept.

use chrono::Utc;
use tracing::instrument;
use uuid::Uuid;

use super::model::{Invitation, InvitationId, InvitationState, Membership, Permission, Role, Workspace, WorkspaceId};
use super::service::{WorkspaceService, grantable};
use super::store::{self, Outcome};
use crate::db::StoredEnum as _;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::fanout::Change;
use crate::i18n::{DEFAULT_LANGUAGE, text};
use crate::identity::model::{Account, AccountStatus, Email};
use crate::identity::service::{Viewer, random_token, token_hash};
use crate::identity::store as identity_store;
use crate::mail::SystemEmail;
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::Notice;

/// Invitation tokens start with this, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "cwi_";
/// A link is not resent more often than this.
const RESEND_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How the invitee names the invitation they answer.
pub enum InvitationRef {
    /// Its id: the signed-in invitee, whose login email is the invitation's.
    Id(InvitationId),
    /// The token of the emailed link: whoever holds it speaks for the invited address.
    Token(String),
}

/// What an invitee is shown of an invitation: the workspace's and the inviter's names, no more.
#[derive(Clone, Debug)]
pub struct InvitationView {
    pub invitation: Invitation,
    pub workspace_name: String,
    pub invited_by_name: Option<String>,
}

impl WorkspaceService {
    /// Invites `email` to the workspace with `role` (at most the inviter's own), mails the
    /// link and, when the address has an account, tells it in the app. An existing member is
    /// a CONFLICT (the inviter may see the members anyway); whether the address has an
    /// account is never told.
    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn invite(&self, viewer: &Viewer, workspace_id: WorkspaceId, email: Email, role: Role) -> Result<InvitationView> {
        self.invite_throttle.attempt(&viewer.account_id().to_string(), None).await?;
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let actor = self.actor(&mut tx, viewer, workspace_id, Permission::ManageMembers).await?;
        grantable(actor.role(), role)?;
        let invitee = identity_store::find_account_by_email(&mut tx, &email).await?;
        if let Some(account) = &invitee
            && store::find_membership_tx(&mut tx, workspace_id, account.account_id).await?.is_some()
        {
            return Err(Error::conflict("email", "this address belongs to a member of the workspace already"));
        }
        if let Some(open) = store::open_invitation(&mut tx, workspace_id, email.as_str()).await? {
            if open.state(now) == InvitationState::Pending {
                return Err(Error::conflict("email", "an invitation to this address is waiting for an answer; resend it instead"));
            }
            // Expired unanswered: it gives way to the new one.
            store::close_invitation(&mut tx, open.workspace_invitation_id, Outcome::Revoked, now).await?;
        }
        let token = random_token(TOKEN_PREFIX);
        let invitation = Invitation {
            workspace_invitation_id: InvitationId(Uuid::now_v7()),
            workspace_id,
            email: email.as_str().to_owned(),
            role: crate::db::Stored(role),
            invited_by: Some(viewer.account_id()),
            created_at: now,
            sent_at: now,
            expires_at: now + self.invitations.ttl,
            accepted_at: None,
            declined_at: None,
            revoked_at: None,
        };
        store::insert_invitation(&mut tx, &invitation, &token_hash(&token)).await.map_err(|e| {
            if store::OPEN_INVITATION_KEY.violated_by(&e) {
                Error::conflict("email", "an invitation to this address is waiting for an answer; resend it instead")
            } else {
                e.into()
            }
        })?;
        let workspace = find_workspace(&mut tx, workspace_id).await?;
        tx.commit().await?;
        tracing::info!(invitation_id = %invitation.workspace_invitation_id.0, "invitation sent");
        self.deliver(&invitation, &token, &workspace, &viewer.account, invitee.as_ref()).await;
        Ok(InvitationView { invitation, workspace_name: workspace.name, invited_by_name: Some(viewer.account.shown_name()) })
    }

    /// A new link (new token, new expiry) for an unanswered invitation, expired or not; the
    /// old link stops working. At most once a minute per invitation.
    #[instrument(skip_all)]
    pub async fn resend_invitation(&self, viewer: &Viewer, id: InvitationId) -> Result<InvitationView> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let invitation = self.managed_invitation(&mut tx, viewer, id).await?;
        if !matches!(invitation.state(now), InvitationState::Pending | InvitationState::Expired) {
            return Err(Error::invalid("id", "this invitation was answered or revoked; invite again"));
        }
        let wait = invitation.sent_at + RESEND_EVERY - now;
        if wait > chrono::TimeDelta::zero() {
            return Err(Error::RateLimited { retry_after_secs: wait.num_seconds().max(1) as u64 });
        }
        self.invite_throttle.attempt(&viewer.account_id().to_string(), None).await?;
        let token = random_token(TOKEN_PREFIX);
        let expires_at = now + self.invitations.ttl;
        if !store::renew_invitation(&mut tx, id, &token_hash(&token), now, expires_at).await? {
            return Err(Error::NotFound("invitation"));
        }
        let workspace = find_workspace(&mut tx, invitation.workspace_id).await?;
        let email = Email::parse("email", &invitation.email)?;
        let invitee = identity_store::find_account_by_email(&mut tx, &email).await?;
        tx.commit().await?;
        let invitation = Invitation { sent_at: now, expires_at, ..invitation };
        self.deliver(&invitation, &token, &workspace, &viewer.account, invitee.as_ref()).await;
        Ok(InvitationView { invitation, workspace_name: workspace.name, invited_by_name: Some(viewer.account.shown_name()) })
    }

    /// Withdraws an unanswered invitation: its link stops working.
    #[instrument(skip_all)]
    pub async fn revoke_invitation(&self, viewer: &Viewer, id: InvitationId) -> Result<Invitation> {
        let mut tx = self.db.begin().await?;
        let mut invitation = self.managed_invitation(&mut tx, viewer, id).await?;
        let now = Utc::now();
        if !store::close_invitation(&mut tx, id, Outcome::Revoked, now).await? {
            return Err(Error::invalid("id", "this invitation was already answered or revoked"));
        }
        tx.commit().await?;
        invitation.revoked_at = Some(now);
        Ok(invitation)
    }

    /// The workspace's invitations waiting for an answer (needs MANAGE_MEMBERS).
    pub async fn workspace_invitations(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<Vec<Invitation>> {
        let mine = self.membership_of(viewer, workspace_id).await?;
        if !mine.role().allows(Permission::ManageMembers) {
            return Err(Error::forbidden("your role does not allow this"));
        }
        Ok(store::pending_invitations_of_workspace(&self.db, workspace_id, Utc::now()).await?)
    }

    /// The invitations waiting for the viewer's answer (addressed to their login email).
    pub async fn my_invitations(&self, viewer: &Viewer) -> Result<Vec<InvitationView>> {
        let pending = store::pending_invitations_for(&self.db, &viewer.account.email, Utc::now()).await?;
        let mut workspace_ids: Vec<WorkspaceId> = pending.iter().map(|i| i.workspace_id).collect();
        workspace_ids.sort();
        workspace_ids.dedup();
        let workspaces = store::find_workspaces(&self.db, &workspace_ids).await?;
        let mut inviter_ids: Vec<_> = pending.iter().filter_map(|i| i.invited_by).collect();
        inviter_ids.sort();
        inviter_ids.dedup();
        let inviters = identity_store::find_accounts(&self.db, &inviter_ids).await?;
        Ok(pending
            .into_iter()
            .map(|invitation| InvitationView {
                workspace_name: workspaces
                    .iter()
                    .find(|w| w.workspace_id == invitation.workspace_id)
                    .map(|w| w.name.clone())
                    .unwrap_or_default(),
                invited_by_name: invitation.invited_by.and_then(|id| inviters.iter().find(|a| a.account_id == id)).map(Account::shown_name),
                invitation,
            })
            .collect())
    }

    /// Joins the workspace the invitation is for, with its role. By id: the signed-in
    /// invitee only. By token: the account with the invited login email (signed in as it, or
    /// not signed in at all).
    #[instrument(skip_all)]
    pub async fn accept_invitation(&self, viewer: Option<&Viewer>, by: InvitationRef) -> Result<Membership> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let (invitation, field) = answerable(&mut tx, viewer, &by, now).await?;
        let account = match viewer {
            Some(v) => v.account.clone(),
            None => {
                let email = Email::parse(field, &invitation.email)?;
                identity_store::find_account_by_email(&mut tx, &email)
                    .await?
                    .ok_or_else(|| Error::invalid(field, "sign up with the invited address to accept (signUp with invitationToken)"))?
            }
        };
        if account.status() != AccountStatus::Active {
            return Err(Error::invalid(field, "this account is inactive"));
        }
        if !store::lock_workspace(&mut tx, invitation.workspace_id).await? {
            return Err(unusable(field));
        }
        if store::find_membership_tx(&mut tx, invitation.workspace_id, account.account_id).await?.is_some() {
            return Err(Error::conflict(field, "you are a member of this workspace already"));
        }
        if !store::close_invitation(&mut tx, invitation.workspace_invitation_id, Outcome::Accepted, now).await? {
            return Err(unusable(field));
        }
        let membership = store::insert_membership(&mut tx, invitation.workspace_id, account.account_id, invitation.role(), now).await?;
        if matches!(by, InvitationRef::Token(_)) && account.email == invitation.email {
            // The token came by email to this address: using it proves the address.
            identity_store::set_email_verified(&mut tx, account.account_id, now).await?;
        }
        tx.commit().await?;
        tracing::info!(account_id = %account.account_id, workspace_id = %invitation.workspace_id.0, "invitation accepted");
        self.fanout.publish(Change::Account { account_id: account.account_id }).await;
        self.settle_notice(account.account_id, invitation.workspace_invitation_id).await;
        Ok(membership)
    }

    /// Turns the invitation down: nothing of the workspace changes for the invitee.
    #[instrument(skip_all)]
    pub async fn decline_invitation(&self, viewer: Option<&Viewer>, by: InvitationRef) -> Result<InvitationId> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let (invitation, field) = answerable(&mut tx, viewer, &by, now).await?;
        if !store::close_invitation(&mut tx, invitation.workspace_invitation_id, Outcome::Declined, now).await? {
            return Err(unusable(field));
        }
        let email = Email::parse(field, &invitation.email)?;
        let invitee = identity_store::find_account_by_email(&mut tx, &email).await?;
        tx.commit().await?;
        if let Some(account) = invitee {
            self.settle_notice(account.account_id, invitation.workspace_invitation_id).await;
        }
        Ok(invitation.workspace_invitation_id)
    }

    /// What the page an invitation link opens shows: the workspace's and inviter's names,
    /// and whether the invited address has an account yet (the token holder owns it).
    pub async fn invitation_by_token(&self, token: &str) -> Result<(InvitationView, bool)> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let (invitation, _) = answerable(&mut tx, None, &InvitationRef::Token(token.to_owned()), now).await?;
        let workspace = find_workspace(&mut tx, invitation.workspace_id).await?;
        let inviter = match invitation.invited_by {
            Some(id) => identity_store::find_accounts(&self.db, &[id]).await?.pop().map(|a| a.shown_name()),
            None => None,
        };
        let email = Email::parse("token", &invitation.email)?;
        let has_account = identity_store::find_account_by_email(&mut tx, &email).await?.is_some();
        drop(tx); // read only: nothing to commit
        Ok((InvitationView { invitation, workspace_name: workspace.name, invited_by_name: inviter }, has_account))
    }

    /// An answered invitation's in-app notices stop counting as unread.
    async fn settle_notice(&self, account_id: crate::identity::model::AccountId, id: InvitationId) {
        if let Err(e) = self.notifications.settled(account_id, &notice_key(id)).await {
            tracing::warn!(error = ?e, "cannot mark an answered invitation's notice read");
        }
    }

    /// The invitation `id` of a workspace where the viewer manages members. Anyone else:
    /// NOT_FOUND, as if it did not exist.
    async fn managed_invitation(&self, tx: &mut Tx, viewer: &Viewer, id: InvitationId) -> Result<Invitation> {
        let invitation = store::find_invitation(tx, id).await?.ok_or(Error::NotFound("invitation"))?;
        match self.actor(tx, viewer, invitation.workspace_id, Permission::ManageMembers).await {
            Ok(_) => Ok(invitation),
            Err(Error::NotFound(_)) => Err(Error::NotFound("invitation")),
            Err(e) => Err(e),
        }
    }

    /// Mails the link (in the invitee's language when they have an account, else the
    /// inviter's) and tells an existing account in the app. Failures are logged: the
    /// invitation stands, and the inviter can resend it.
    async fn deliver(&self, invitation: &Invitation, token: &str, workspace: &Workspace, inviter: &Account, invitee: Option<&Account>) {
        let link = format!("{}?token={token}", self.invitations.link);
        let language = invitee.map_or(inviter.language.as_str(), |a| a.language.as_str());
        let language = if language.is_empty() { DEFAULT_LANGUAGE } else { language };
        let name = invitee.map_or_else(|| invitation.email.clone(), Account::shown_name);
        let inviter_name = inviter.shown_name();
        let role = invitation.role().stored_name().to_lowercase();
        let hours = self.invitations.ttl.num_hours();
        let email = SystemEmail::WorkspaceInvitation {
            workspace: &workspace.name,
            inviter: &inviter_name,
            role: &role,
            link: &link,
            hours,
            has_account: invitee.is_some(),
        };
        if let Err(e) = self.mailer.send(&invitation.email, &name, language, email).await {
            tracing::warn!(error = ?e, "invitation email not sent");
        }
        if let Some(account) = invitee {
            let lang = &account.language;
            let args = [("workspace", workspace.name.as_str()), ("name", inviter_name.as_str())];
            let notice = Notice {
                dedupe_key: Some(format!("{}{}", notice_key(invitation.workspace_invitation_id), invitation.sent_at.timestamp())),
                ..Notice::new(
                    account.account_id,
                    NotificationEvent::WorkspaceInvitation,
                    text(lang, "invitation-received-title", &args),
                    text(lang, "invitation-received-body", &args),
                )
            };
            if let Err(e) = self.notifications.notify(notice).await {
                tracing::warn!(error = ?e, "cannot notify about an invitation");
            }
        }
    }
}

/// The invitation `by` names, if it is still waiting and the caller may answer it, with the
/// input field a refusal names. Someone else's invitation (by id) is NOT_FOUND.
async fn answerable(
    tx: &mut Tx,
    viewer: Option<&Viewer>,
    by: &InvitationRef,
    now: chrono::DateTime<Utc>,
) -> Result<(Invitation, &'static str)> {
    let (invitation, field) = match by {
        InvitationRef::Id(id) => {
            let viewer = viewer.ok_or(Error::Unauthenticated)?;
            let found = store::find_invitation(tx, *id).await?.filter(|i| i.email == viewer.account.email);
            (found.ok_or(Error::NotFound("invitation"))?, "id")
        }
        InvitationRef::Token(token) => {
            let token = token.trim();
            if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
                return Err(unusable("token"));
            }
            let found = store::find_invitation_by_token(tx, &token_hash(token)).await?.ok_or_else(|| unusable("token"))?;
            if viewer.is_some_and(|v| v.account.email != found.email) {
                return Err(Error::invalid("token", "this invitation is for another address; sign in with it"));
            }
            (found, "token")
        }
    };
    if invitation.state(now) != InvitationState::Pending {
        return Err(unusable(field));
    }
    Ok((invitation, field))
}

/// The start of the dedupe keys of an invitation's in-app notices (one per link sent).
fn notice_key(id: InvitationId) -> String {
    format!("invitation:{}:", id.0)
}

fn unusable(field: &'static str) -> Error {
    Error::invalid(field, "this invitation was answered, revoked or has expired; ask for a new one")
}

async fn find_workspace(tx: &mut Tx, id: WorkspaceId) -> Result<Workspace> {
    store::find_workspace_tx(tx, id).await?.ok_or(Error::NotFound("workspace"))
}

/// Checks a sign-up's invitation token inside the sign-up's transaction: the invitation
/// must wait for an answer and be addressed to the email signing up. Returns it, to be
/// accepted once the account exists.
pub async fn invitation_for_sign_up(tx: &mut Tx, token: &str, email: &Email) -> Result<Invitation> {
    let field = "invitationToken";
    let token = token.trim();
    let refuse = || Error::invalid(field, "this invitation was answered, revoked or has expired; ask for a new one");
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
        return Err(refuse());
    }
    let invitation = store::find_invitation_by_token(tx, &token_hash(token)).await?.ok_or_else(refuse)?;
    if invitation.state(Utc::now()) != InvitationState::Pending {
        return Err(refuse());
    }
    if invitation.email != email.as_str() {
        return Err(Error::invalid(field, "this invitation is for another address; sign up with the invited one"));
    }
    Ok(invitation)
}

/// Accepts a sign-up's invitation for the account just created, in the same transaction.
pub async fn join_on_sign_up(tx: &mut Tx, invitation: &Invitation, account_id: crate::identity::model::AccountId) -> Result<()> {
    let now = Utc::now();
    if !store::close_invitation(tx, invitation.workspace_invitation_id, Outcome::Accepted, now).await? {
        return Err(Error::invalid("invitationToken", "this invitation was answered, revoked or has expired; ask for a new one"));
    }
    store::insert_membership(tx, invitation.workspace_id, account_id, invitation.role(), now).await?;
    Ok(())
}
