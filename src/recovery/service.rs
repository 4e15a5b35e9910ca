//! Recovery rules. A reset or verification request answers the same, after the same work,
//! whether or not the address has an account: the lookup and the email happen in the
//! background. A link works once, before it expires, and only the newest of its kind works.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use tracing::instrument;

use super::model::{Link, Purpose, VERIFY_TTL};
use super::store::{self, NewLink};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::{Account, Email};
use crate::identity::password::{self, Policy};
use crate::identity::service::{ClientMeta, Viewer, random_token, token_hash};
use crate::identity::store as identity_store;
use crate::mail::{Mailer, SystemEmail};
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::security::throttle::Throttle;

/// Where links point and how long they last.
#[derive(Clone, Debug)]
pub struct RecoverySettings {
    /// The gateway's public URL (its own pages).
    pub public_url: String,
    /// The platform's reset page, when it has one.
    pub reset_url: Option<String>,
    pub reset_ttl: TimeDelta,
}

#[derive(Clone)]
pub struct RecoveryService {
    db: Db,
    fanout: Fanout,
    mailer: Mailer,
    log: SecurityLog,
    /// Emails asked for, per address and per client.
    throttle: Arc<Throttle>,
    settings: Arc<RecoverySettings>,
}

impl RecoveryService {
    pub fn new(db: Db, fanout: Fanout, mailer: Mailer, log: SecurityLog, throttle: Arc<Throttle>, settings: RecoverySettings) -> Self {
        RecoveryService { db, fanout, mailer, log, throttle, settings: Arc::new(settings) }
    }

    /// "Forgot password": mails a reset link to the address if an account has it. The answer
    /// (and its timing) is the same either way; only the throttle can refuse, and it counts
    /// the address whether or not it has an account.
    #[instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &str, meta: &ClientMeta) -> Result<()> {
        let email = Email::parse("email", email)?;
        self.throttle.attempt(email.as_str(), meta.ip.as_deref()).await?;
        let this = self.clone();
        let ip = meta.ip.clone().unwrap_or_else(|| "?".into());
        tokio::spawn(async move {
            if let Err(e) = this.send_reset(&email, &ip).await {
                tracing::error!(error = ?e, "password-reset email not sent");
            }
        });
        Ok(())
    }

    async fn send_reset(&self, email: &Email, ip: &str) -> Result<()> {
        let Some(account) = identity_store::find_login(&self.db, email).await?.map(|row| row.account) else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        let minutes = self.settings.reset_ttl.num_minutes();
        let token = self.new_link(&mut tx, &account, Purpose::PasswordReset, self.settings.reset_ttl).await?;
        tx.commit().await?;
        let link = self.reset_link(&token);
        let mail = SystemEmail::PasswordReset { link: &link, minutes, ip };
        self.mailer.send(&account.email, &account.shown_name(), &account.language, mail).await
    }

    fn reset_link(&self, token: &str) -> String {
        match &self.settings.reset_url {
            Some(page) => format!("{page}{}token={token}", if page.contains('?') { '&' } else { '?' }),
            None => format!("{}/reset-password?token={token}", self.settings.public_url),
        }
    }

    /// Sets a new password with a reset link's token: the policy applies (every unmet rule at
    /// once), the token works once, and every session ends. Two-factor stays as it was, so the
    /// next log-in still asks for the second factor.
    #[instrument(skip_all)]
    /// Sets the new password; the answer is the account's login email.
    pub async fn reset_password(&self, token: &str, new: String, confirm: String, meta: &ClientMeta) -> Result<String> {
        let token = token.trim();
        let invalid = || Error::invalid("token", "this link is unknown, used or expired; ask for a new one");
        if !Purpose::PasswordReset.could_be(token) {
            return Err(invalid());
        }
        let hash = token_hash(token);
        let now = Utc::now();
        // Checked before the token is spent, so a refused password leaves the link usable.
        let (link, account) = self.live_link(&hash, Purpose::PasswordReset).await?.ok_or_else(invalid)?;
        let mut unmet = Policy::unmet(&new, &[&account.email, &account.first_name, &account.last_name]);
        if new != confirm {
            unmet.push(crate::error::PasswordRule::ConfirmationMismatch);
        }
        if !unmet.is_empty() {
            return Err(Error::WeakPassword { field: "newPassword", unmet });
        }
        let password_hash = password::hash(new).await?;
        let mut tx = self.db.begin().await?;
        if !store::use_link(&mut tx, link.account_link_id, now).await? {
            return Err(invalid());
        }
        crate::security::store::set_password(&mut tx, account.account_id, &password_hash, now).await?;
        identity_store::revoke_account_sessions(&mut tx, account.account_id, now).await?;
        // The link was opened from the login address: that proves it.
        store::mark_verified(&mut tx, account.account_id, &link.email, now).await?;
        tx.commit().await?;
        tracing::info!(account_id = %account.account_id, "password reset");
        self.fanout.publish(Change::Sessions { account_id: account.account_id }).await;
        self.log.record(account.account_id, SecurityEventKind::PasswordReset, meta, None).await;
        let time = now.format("%Y-%m-%d %H:%M").to_string();
        let ip = meta.ip.clone().unwrap_or_else(|| "?".into());
        let notice = SystemEmail::PasswordResetDone { time: &time, ip: &ip };
        if let Err(e) = self.mailer.send(&account.email, &account.shown_name(), &account.language, notice).await {
            tracing::warn!(error = ?e, "password-reset notice not sent");
        }
        Ok(account.email)
    }

    /// Mails a verification link for the account's login email (after sign-up).
    pub async fn send_verification(&self, account: &Account) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let token = self.new_link(&mut tx, account, Purpose::VerifyEmail, VERIFY_TTL).await?;
        tx.commit().await?;
        let link = format!("{}/verify-email?token={token}", self.settings.public_url);
        let mail = SystemEmail::VerifyEmail { email: &account.email, link: &link, days: VERIFY_TTL.num_days() };
        self.mailer.send(&account.email, &account.shown_name(), &account.language, mail).await
    }

    /// A new verification link, for the signed-in viewer or for `email` (anonymous, as a
    /// log-in page that refused an unverified account asks). Same answer either way, nothing
    /// sent for a verified or unknown address.
    pub async fn resend_verification(&self, viewer: Option<&Viewer>, email: Option<&str>, meta: &ClientMeta) -> Result<()> {
        let email = match (viewer, email) {
            (Some(v), _) => Email::parse("email", &v.account.email)?,
            (None, Some(raw)) => Email::parse("email", raw)?,
            (None, None) => return Err(Error::invalid("email", "sign in, or give the address to verify")),
        };
        self.throttle.attempt(email.as_str(), meta.ip.as_deref()).await?;
        let this = self.clone();
        tokio::spawn(async move {
            match identity_store::find_login(&this.db, &email).await.map(|row| row.map(|r| r.account)) {
                Ok(Some(account)) if account.email_verified_at.is_none() => {
                    if let Err(e) = this.send_verification(&account).await {
                        tracing::error!(error = ?e, "verification email not sent");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "verification email not sent"),
            }
        });
        Ok(())
    }

    /// Marks the address verified with a verification link's token (once, before it expires,
    /// while the login email is still the one it was sent to).
    #[instrument(skip_all)]
    pub async fn verify_email(&self, token: &str, meta: &ClientMeta) -> Result<Account> {
        let token = token.trim();
        let invalid = || Error::invalid("token", "this link is unknown, used or expired; ask for a new one");
        if !Purpose::VerifyEmail.could_be(token) {
            return Err(invalid());
        }
        let now = Utc::now();
        let (link, account) = self.live_link(&token_hash(token), Purpose::VerifyEmail).await?.ok_or_else(invalid)?;
        let mut tx = self.db.begin().await?;
        if !store::use_link(&mut tx, link.account_link_id, now).await?
            || !store::mark_verified(&mut tx, account.account_id, &link.email, now).await?
        {
            return Err(invalid());
        }
        tx.commit().await?;
        self.log.record(account.account_id, SecurityEventKind::EmailVerified, meta, Some(&link.email)).await;
        self.fanout.publish(Change::Account { account_id: account.account_id }).await;
        let mut account = account;
        account.email_verified_at = Some(now);
        Ok(account)
    }

    /// Someone tried to sign up with an address that has an account (while verified addresses
    /// are required, the answer did not say so): the owner hears of it.
    pub async fn tell_owner_of_sign_up(&self, owner: &Account) {
        let link = self.reset_link_page();
        let mail = SystemEmail::SignUpAttempt { email: &owner.email, reset: &link };
        if let Err(e) = self.mailer.send(&owner.email, &owner.shown_name(), &owner.language, mail).await {
            tracing::warn!(error = ?e, "sign-up attempt notice not sent");
        }
    }

    fn reset_link_page(&self) -> String {
        self.settings.reset_url.clone().unwrap_or_else(|| format!("{}/reset-password", self.settings.public_url))
    }

    async fn new_link(&self, tx: &mut crate::db::Tx, account: &Account, purpose: Purpose, ttl: TimeDelta) -> Result<String> {
        let token = random_token(purpose.prefix());
        let now = Utc::now();
        let new = NewLink {
            account_id: account.account_id,
            purpose,
            email: &account.email,
            token_hash: &token_hash(&token),
            now,
            expires_at: now + ttl,
        };
        store::insert_link(tx, &new).await?;
        Ok(token)
    }

    /// The usable link with this hash and its account (which must still be active).
    async fn live_link(&self, hash: &[u8], purpose: Purpose) -> Result<Option<(Link, Account)>> {
        let link = store::find_link(&self.db, hash).await?;
        let Some(link) = link.filter(|l| l.usable(purpose, Utc::now())) else { return Ok(None) };
        let account = identity_store::find_accounts(&self.db, &[link.account_id]).await?.pop();
        Ok(account.filter(|a| a.status() == crate::identity::model::AccountStatus::Active).map(|a| (link, a)))
    }
}
