//! Identity rules: sign-up, log-in, log-out and turning a bearer token into a viewer.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use tracing::instrument;
use uuid::Uuid;

use super::model::{Account, AccountId, AccountStatus, Email, NewAccount, PersonName};
use super::password::{self, Policy};
use super::store::{self, NewSession};
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::security::throttle::{AddressLimit, Throttle};
use crate::tokens::model::Scope;
use crate::workspace::invitations;
use crate::workspace::model::{Role, Workspace, WorkspaceId};
use crate::workspace::store as workspace_store;

/// Session tokens start with this, so a leaked one is recognisable (and scanners can find it).
const SESSION_PREFIX: &str = "cs_";
/// 256 random bits, base64url without padding.
const SESSION_RANDOM_BYTES: usize = 32;
/// Last-use times (sessions' `last_seen_at`, tokens' `last_used_at`) are written at most this
/// often, so authenticating is a read, not a write.
pub const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Who is making a request: an active account, through one of its sessions or a personal
/// access token.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub account: Account,
    pub credential: Credential,
    /// Where the request came from (for the security log).
    pub meta: ClientMeta,
}

/// How the viewer authenticated.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A log-in session: may do everything the account may.
    Session(Uuid),
    /// A personal access token: only what its scopes allow, and never security operations.
    AccessToken { id: Uuid, scopes: Vec<Scope> },
}

impl Viewer {
    pub fn account_id(&self) -> AccountId {
        self.account.account_id
    }

    pub fn session_id(&self) -> Option<Uuid> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::AccessToken { .. } => None,
        }
    }

    /// Refuses a token whose scopes do not include `scope` (sessions hold every scope).
    pub fn require(&self, scope: Scope) -> Result<()> {
        match &self.credential {
            Credential::Session(_) => Ok(()),
            Credential::AccessToken { scopes, .. } if scopes.contains(&scope) => Ok(()),
            Credential::AccessToken { .. } => Err(Error::forbidden(format!("this access token lacks the {} scope", scope.as_str()))),
        }
    }

    /// The session, for operations no token may perform (password, two-factor, sessions, tokens).
    pub fn require_session(&self) -> Result<Uuid> {
        self.session_id().ok_or_else(|| Error::forbidden("this needs a signed-in session, not an access token"))
    }
}

/// Where a request came from, recorded on the session it creates.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The `Accept-Language` header: error messages follow it for a caller who is not signed in.
    pub accept_language: Option<String>,
}

pub struct SignUp {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

impl TryFrom<SignUp> for NewAccount {
    type Error = Error;
    fn try_from(input: SignUp) -> Result<NewAccount> {
        let email = Email::parse("email", &input.email)?;
        let first_name = PersonName::parse("firstName", &input.first_name)?;
        let last_name = PersonName::parse("lastName", &input.last_name)?;
        Policy::check("password", &input.password, &[email.as_str(), first_name.as_str(), last_name.as_str()])?;
        Ok(NewAccount { email, password: input.password, first_name, last_name })
    }
}

/// What a correct password leads to.
pub enum LogInOutcome {
    /// Signed in.
    Session(Box<IssuedSession>),
    /// Two-factor is on: complete with a code and this challenge.
    Challenge { challenge: String, expires_at: chrono::DateTime<Utc> },
}

/// Challenges last this long.
const CHALLENGE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A new session's bearer token, shown once.
pub struct IssuedSession {
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
    pub account: Account,
    /// The new session as a viewer: the rest of the request that signed in acts as it.
    pub viewer: Viewer,
}

#[derive(Clone)]
pub struct IdentityService {
    db: Db,
    fanout: Fanout,
    session_ttl: Duration,
    log: SecurityLog,
    throttle: Arc<Throttle>,
    /// Log-in needs a verified address (`CONCIERGE_REQUIRE_VERIFIED_EMAIL`).
    require_verified_email: bool,
    /// Sign-ups per client address.
    signups: Arc<AddressLimit>,
}

/// What a sign-up did.
pub enum SignedUp {
    /// A new account, with its personal workspace.
    Created(Account),
    /// Verified addresses are required and this one has an account: the answer shows `shown`
    /// (what a new account would look like, saved nowhere) so it reveals nothing, and the
    /// owner is told instead.
    AddressTaken { shown: Account, owner: Box<Account> },
}

impl IdentityService {
    pub fn new(
        db: Db,
        fanout: Fanout,
        session_ttl: Duration,
        log: SecurityLog,
        throttle: Arc<Throttle>,
        signups: Arc<AddressLimit>,
    ) -> Self {
        IdentityService { db, fanout, session_ttl, log, throttle, signups, require_verified_email: false }
    }

    /// Refuses log-in to accounts whose address is not verified.
    pub fn requiring_verified_email(mut self, required: bool) -> Self {
        self.require_verified_email = required;
        self
    }

    /// Counts a sign-up attempt from the client's address, before its input is even read:
    /// RATE_LIMITED once the address has used its hourly allowance. Aliases and batches run
    /// the resolver once each, so each counts.
    pub async fn admit_sign_up(&self, meta: &ClientMeta) -> Result<()> {
        self.signups.attempt(meta.ip.as_deref()).await
    }

    /// Tells live connections that sessions of `account_id` ended (they re-check theirs).
    pub async fn sessions_ended(&self, account_id: AccountId) {
        self.fanout.publish(Change::Sessions { account_id }).await;
    }

    /// Creates an ACTIVE account and its personal workspace, which it owns. With an
    /// invitation's token (addressed to this email, still waiting), the account also joins
    /// the invitation's workspace, in the same transaction.
    #[instrument(skip_all)]
    pub async fn sign_up(&self, new: NewAccount, invitation_token: Option<&str>) -> Result<SignedUp> {
        // A cheap look first, so a duplicate does not cost a hash; the unique constraint
        // still settles a race between two sign-ups.
        if let Some(existing) = store::find_login(&self.db, &new.email).await? {
            if !self.require_verified_email {
                return Err(email_taken());
            }
            // The same work as a real sign-up, so the time taken says nothing either.
            password::hash(new.password.clone()).await?;
            let shown = fresh_account(AccountId::new(), &new, Utc::now());
            return Ok(SignedUp::AddressTaken { shown, owner: Box::new(existing.account) });
        }
        let hash = password::hash(new.password.clone()).await?;
        let now = Utc::now();
        let account_id = AccountId::new();
        let workspace =
            Workspace { workspace_id: WorkspaceId::new(), name: format!("{}'s workspace", new.first_name.as_str()), created_at: now };
        let mut tx = self.db.begin().await?;
        let invitation = match invitation_token {
            Some(token) => Some(invitations::invitation_for_sign_up(&mut tx, token, &new.email).await?),
            None => None,
        };
        store::insert_account(&mut tx, account_id, &new, &hash, now)
            .await
            .map_err(|e| if store::EMAIL_KEY.violated_by(&e) { email_taken() } else { e.into() })?;
        workspace_store::insert_workspace(&mut tx, &workspace).await?;
        workspace_store::insert_membership(&mut tx, workspace.workspace_id, account_id, Role::Owner, now).await?;
        if let Some(invitation) = &invitation {
            invitations::join_on_sign_up(&mut tx, invitation, account_id).await?;
            // The token came by email to this address: that proves it.
            store::set_email_verified(&mut tx, account_id, now).await?;
        }
        tx.commit().await?;
        tracing::info!(account_id = %account_id, invited = invitation.is_some(), "account created");
        let mut account = fresh_account(account_id, &new, now);
        if invitation.is_some() {
            account.email_verified_at = Some(now);
        }
        Ok(SignedUp::Created(account))
    }

    /// Checks the credentials and opens a session. "No such account" and "wrong password"
    /// get the same answer after the same work (a hash is verified either way).
    #[instrument(skip_all)]
    pub async fn log_in(&self, email: &str, password: String, meta: ClientMeta) -> Result<LogInOutcome> {
        // One answer for every credential failure, so it reveals nothing.
        let wrong = || Error::Unauthenticated;
        // Counted before anything is checked: a throttled attempt learns nothing.
        self.throttle.attempt(email.trim(), meta.ip.as_deref()).await?;
        if password.len() > Policy::MAX_BYTES * 2 {
            return Err(wrong());
        }
        let found = match Email::parse("email", email) {
            Ok(email) => store::find_login(&self.db, &email).await?,
            Err(_) => None,
        };
        let (account, hash, two_factor) = match found {
            Some(row) => (Some(row.account), Some(row.password_hash), row.two_factor),
            None => (None, None, false),
        };
        let matches = password::verify(password, hash).await?;
        let account = match account {
            Some(account) if matches => account,
            Some(account) => {
                self.log.record(account.account_id, SecurityEventKind::SignInFailed, &meta, Some("wrong password")).await;
                return Err(wrong());
            }
            None => return Err(wrong()),
        };
        self.admit(&account)?;
        if two_factor {
            let challenge = random_token(CHALLENGE_PREFIX);
            let now = Utc::now();
            let expires_at = now + CHALLENGE_TTL;
            crate::security::store::insert_challenge(&self.db, account.account_id, &token_hash(&challenge), now, expires_at).await?;
            return Ok(LogInOutcome::Challenge { challenge, expires_at });
        }
        Ok(LogInOutcome::Session(Box::new(self.issue_session(account, meta).await?)))
    }

    /// Whether an account that proved who it is may have a session: it is active, and its
    /// address is verified when the gateway asks for that.
    pub fn admit(&self, account: &Account) -> Result<()> {
        if account.status() != AccountStatus::Active {
            return Err(Error::forbidden("this account is inactive"));
        }
        if self.require_verified_email && account.email_verified_at.is_none() {
            return Err(Error::forbidden(
                "confirm your email address first: open the link we sent, or ask for a new one (sendVerificationEmail)",
            ));
        }
        Ok(())
    }

    /// Opens a session for an account that has proven who it is.
    pub async fn issue_session(&self, account: Account, meta: ClientMeta) -> Result<IssuedSession> {
        let token = new_token();
        let now = Utc::now();
        let expires_at = now + chrono::TimeDelta::from_std(self.session_ttl).unwrap_or(chrono::TimeDelta::days(30));
        let session_id = Uuid::now_v7();
        store::insert_session(
            &self.db,
            NewSession {
                session_id,
                account_id: account.account_id,
                token_hash: &token_hash(&token),
                now,
                expires_at,
                ip: meta.ip.as_deref(),
                user_agent: meta.user_agent.as_deref().map(|ua| truncate(ua, 512)),
            },
        )
        .await?;
        tracing::info!(account_id = %account.account_id, "logged in");
        self.log.record(account.account_id, SecurityEventKind::SignInSucceeded, &meta, None).await;
        let viewer = Viewer { account: account.clone(), credential: Credential::Session(session_id), meta };
        Ok(IssuedSession { token, expires_at, account, viewer })
    }

    pub async fn log_out(&self, viewer: &Viewer) -> Result<()> {
        store::revoke_session(&self.db, viewer.require_session()?, Utc::now()).await?;
        self.fanout.publish(Change::Sessions { account_id: viewer.account_id() }).await;
        Ok(())
    }

    /// The viewer's live sessions, newest first.
    pub async fn sessions(&self, viewer: &Viewer) -> Result<Vec<store::SessionInfo>> {
        viewer.require_session()?;
        let now = Utc::now();
        let mut sessions = store::list_sessions(&self.db, viewer.account_id()).await?;
        sessions.retain(|s| s.expires_at > now);
        Ok(sessions)
    }

    /// Ends one of the viewer's sessions; its next request fails and its WebSockets close.
    pub async fn revoke_session(&self, viewer: &Viewer, session_id: Uuid) -> Result<()> {
        viewer.require_session()?;
        if !store::revoke_own_session(&self.db, viewer.account_id(), session_id, Utc::now()).await? {
            return Err(Error::NotFound("session"));
        }
        self.log.record(viewer.account_id(), SecurityEventKind::SessionRevoked, &viewer.meta, Some(&session_id.to_string())).await;
        self.fanout.publish(Change::Sessions { account_id: viewer.account_id() }).await;
        Ok(())
    }

    /// Ends every session of the viewer but the current one.
    pub async fn revoke_other_sessions(&self, viewer: &Viewer) -> Result<()> {
        let current = viewer.require_session()?;
        let mut tx = self.db.begin().await?;
        let ended = store::revoke_other_sessions(&mut tx, viewer.account_id(), current, Utc::now()).await?;
        tx.commit().await?;
        if ended > 0 {
            let detail = format!("{ended} other session(s)");
            self.log.record(viewer.account_id(), SecurityEventKind::SessionRevoked, &viewer.meta, Some(&detail)).await;
        }
        self.fanout.publish(Change::Sessions { account_id: viewer.account_id() }).await;
        Ok(())
    }

    /// The account holder closes their account for now: every session ends and it can no
    /// longer log in (the operator can reactivate it). Refused (CONFLICT) while they are the
    /// last active owner of a workspace that has other active members: those would be left
    /// without anyone who can manage it.
    #[instrument(skip_all)]
    pub async fn deactivate_account(&self, viewer: &Viewer, password_given: String) -> Result<()> {
        viewer.require_session()?;
        let account_id = viewer.account_id();
        self.throttle.attempt(&viewer.account.email, viewer.meta.ip.as_deref()).await?;
        let row = crate::security::store::security_row(&self.db, account_id).await?.ok_or(Error::Unauthenticated)?;
        if !password::verify(password_given, Some(row.password_hash)).await? {
            return Err(Error::invalid("password", "the password is wrong"));
        }
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        if !workspace_store::workspaces_only_owned_by(&mut tx, account_id).await?.is_empty() {
            return Err(Error::conflict(
                "account",
                "you are the last active owner of a workspace with other members; make one of them an owner first",
            ));
        }
        store::set_account_status(&mut tx, account_id, AccountStatus::Inactive, now).await?;
        store::revoke_account_sessions(&mut tx, account_id, now).await?;
        tx.commit().await?;
        tracing::info!(account_id = %account_id, "account deactivated by its holder");
        self.fanout.publish_all(&[Change::Account { account_id }, Change::Sessions { account_id }]).await;
        Ok(())
    }

    /// The viewer a session token stands for, if it is a live session of an active account.
    pub async fn authenticate_session(&self, token: &str) -> Result<Option<Viewer>> {
        if !looks_like_session_token(token) {
            return Ok(None);
        }
        let Some(row) = store::find_session(&self.db, &token_hash(token)).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if row.revoked_at.is_some() || row.expires_at <= now || row.account.status() != AccountStatus::Active {
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY {
            store::touch_session(&self.db, row.session_id, now).await?;
        }
        Ok(Some(Viewer { account: row.account, credential: Credential::Session(row.session_id), meta: ClientMeta::default() }))
    }

    pub async fn accounts(&self, ids: &[AccountId]) -> Result<Vec<Account>> {
        Ok(store::find_accounts(&self.db, ids).await?)
    }
}

/// An account as `insert_account` writes it.
fn fresh_account(account_id: AccountId, new: &NewAccount, now: chrono::DateTime<Utc>) -> Account {
    Account {
        account_id,
        email: new.email.as_str().to_owned(),
        first_name: new.first_name.as_str().to_owned(),
        last_name: new.last_name.as_str().to_owned(),
        status: crate::db::Stored(AccountStatus::Active),
        created_at: now,
        updated_at: now,
        display_name: None,
        phone: None,
        phone_e164: None,
        job_title: None,
        language: crate::i18n::DEFAULT_LANGUAGE.to_owned(),
        photo_key: None,
        email_verified_at: None,
        time_zone: None,
    }
}

/// The operator's switch (`concierge admin set-account-status`): activates or deactivates
/// the account with this login email. Deactivating ends its sessions, for good: reactivation
/// does not bring them back. Returns the account's id.
pub async fn operator_set_account_status(db: &Db, fanout: &Fanout, email: &Email, status: AccountStatus) -> Result<AccountId> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let account = store::find_account_by_email(&mut tx, email).await?.ok_or(Error::NotFound("account"))?;
    let account_id = account.account_id;
    store::set_account_status(&mut tx, account_id, status, now).await?;
    if status == AccountStatus::Inactive {
        store::revoke_account_sessions(&mut tx, account_id, now).await?;
    }
    tx.commit().await?;
    tracing::info!(account_id = %account_id, status = status.stored_name(), "account status set by the operator");
    fanout.publish_all(&[Change::Account { account_id }, Change::Sessions { account_id }]).await;
    Ok(account_id)
}

fn email_taken() -> Error {
    Error::conflict("email", "an account with this email already exists")
}

/// Two-factor challenges start with this.
pub const CHALLENGE_PREFIX: &str = "ctc_";

fn new_token() -> String {
    random_token(SESSION_PREFIX)
}

pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; SESSION_RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn looks_like_session_token(token: &str) -> bool {
    token.len() == SESSION_PREFIX.len() + 43
        && token.starts_with(SESSION_PREFIX)
        && token[SESSION_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Tokens are stored only as SHA-256: 256 random bits need no slow hash.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_carry_256_random_bits_and_a_recognisable_prefix() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(looks_like_session_token(&a), "{a}");
        assert!(!looks_like_session_token("not-a-real-token"));
        assert!(!looks_like_session_token(&a[..a.len() - 1]));
    }
}
