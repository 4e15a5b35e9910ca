//! Security rules: password change, two-factor enrolment and log-in completion, recovery codes.

use chrono::Utc;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use tracing::instrument;

use std::sync::Arc;

use super::log::{SecurityEventKind, SecurityLog};
use super::store;
use super::throttle::Throttle;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::error::{Error, PasswordRule, Result};
use crate::identity::model::{Account, AccountId};
use crate::identity::password::{self, Policy};
use crate::identity::service::{ClientMeta, IdentityService, IssuedSession, Viewer, token_hash};
use crate::mail::{Mailer, SystemEmail};

/// Recovery codes issued at enrolment (and on regeneration).
pub const RECOVERY_CODES: usize = 10;
/// Wrong codes a log-in challenge tolerates before it is void.
pub const MAX_CHALLENGE_ATTEMPTS: i32 = 5;
const ISSUER: &str = "Concierge";

pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
    pub qr_png_data_url: String,
}

pub struct Overview {
    pub two_factor_enabled: bool,
    pub recovery_codes_remaining: i64,
    pub password_changed_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Clone)]
pub struct SecurityService {
    db: Db,
    secrets: SecretBox,
    identity: IdentityService,
    log: SecurityLog,
    /// Second-factor codes: per account and per address.
    throttle: Arc<Throttle>,
    mailer: Mailer,
}

impl SecurityService {
    pub fn new(db: Db, secrets: SecretBox, identity: IdentityService, log: SecurityLog, throttle: Arc<Throttle>, mailer: Mailer) -> Self {
        SecurityService { db, secrets, identity, log, throttle, mailer }
    }

    async fn row(&self, id: AccountId) -> Result<store::SecurityRow> {
        store::security_row(&self.db, id).await?.ok_or(Error::Unauthenticated)
    }

    pub async fn overview(&self, viewer: &Viewer) -> Result<Overview> {
        let row = self.row(viewer.account_id()).await?;
        Ok(Overview {
            two_factor_enabled: row.totp_secret.is_some(),
            recovery_codes_remaining: store::recovery_codes_left(&self.db, viewer.account_id()).await?,
            password_changed_at: row.password_changed_at,
        })
    }

    /// Checks the current password, reports every unmet rule of the new one at once, then
    /// re-hashes and ends every other session.
    #[instrument(skip_all)]
    pub async fn change_password(&self, viewer: &Viewer, current: String, new: String, confirm: String) -> Result<()> {
        let session = viewer.require_session()?;
        let account = &viewer.account;
        let mut unmet = Policy::unmet(&new, &[&account.email, &account.first_name, &account.last_name]);
        if new != confirm {
            unmet.push(PasswordRule::ConfirmationMismatch);
        }
        let row = self.row(account.account_id).await?;
        if !password::verify(current, Some(row.password_hash)).await? {
            return Err(Error::invalid("currentPassword", "the current password is wrong"));
        }
        if !unmet.is_empty() {
            return Err(Error::WeakPassword { field: "newPassword", unmet });
        }
        let hash = password::hash(new).await?;
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        store::set_password(&mut tx, account.account_id, &hash, now).await?;
        crate::identity::store::revoke_other_sessions(&mut tx, account.account_id, session, now).await?;
        tx.commit().await?;
        self.identity.sessions_ended(account.account_id).await;
        tracing::info!(account_id = %account.account_id, "password changed");
        self.log.record(account.account_id, SecurityEventKind::PasswordChanged, &viewer.meta, None).await;
        self.notify_password_changed(viewer, now);
        Ok(())
    }

    /// Tells the account's owner, in their language, that the password changed. Sent in the
    /// background: the change has happened whether or not the mail server answers.
    fn notify_password_changed(&self, viewer: &Viewer, at: chrono::DateTime<Utc>) {
        let mailer = self.mailer.clone();
        let account = viewer.account.clone();
        let ip = viewer.meta.ip.clone().unwrap_or_else(|| "?".into());
        tokio::spawn(async move {
            let time = at.format("%Y-%m-%d %H:%M").to_string();
            let name = account.shown_name();
            let email = SystemEmail::PasswordChanged { time: &time, ip: &ip };
            if let Err(e) = mailer.send(&account.email, &name, &account.language, email).await {
                tracing::warn!(account_id = %account.account_id, error = ?e, "password-change notice not sent");
            }
        });
    }

    /// A new secret, waiting for a first code; nothing is enabled yet.
    pub async fn begin_enrollment(&self, viewer: &Viewer) -> Result<Enrollment> {
        viewer.require_session()?;
        let account = &viewer.account;
        if self.row(account.account_id).await?.totp_secret.is_some() {
            return Err(Error::conflict("twoFactor", "two-factor authentication is already on; disable it first"));
        }
        let secret = Secret::generate();
        let totp = totp(secret.as_bytes(), &account.email)?;
        let uri = totp.to_url().map_err(|e| Error::Internal(anyhow::anyhow!("otpauth URI: {e}")))?;
        let png = totp.to_qr_base64().map_err(|e| Error::Internal(anyhow::anyhow!("QR code: {e}")))?;
        let sealed = self.secrets.seal(secret.as_bytes(), &bound(account.account_id))?;
        store::set_pending_secret(&self.db, account.account_id, &sealed).await?;
        Ok(Enrollment {
            secret_base32: secret.to_base32(),
            qr_svg: qr_svg(&uri)?,
            otpauth_uri: uri,
            qr_png_data_url: format!("data:image/png;base64,{png}"),
        })
    }

    /// Turns two-factor on with a first valid code; returns the recovery codes, shown only now.
    pub async fn confirm_enrollment(&self, viewer: &Viewer, code: &str) -> Result<Vec<String>> {
        viewer.require_session()?;
        let id = viewer.account_id();
        let row = self.row(id).await?;
        if row.totp_secret.is_some() {
            return Err(Error::conflict("twoFactor", "two-factor authentication is already on"));
        }
        let sealed = row.totp_pending_secret.ok_or_else(|| Error::invalid("code", "begin enrolment first"))?;
        // Guessing the enrolment code is guessing a second factor: same limit, same buckets.
        self.throttle.attempt(&id.to_string(), viewer.meta.ip.as_deref()).await?;
        let secret = self.secrets.open(&sealed, &bound(id))?;
        let step = totp(&secret, &viewer.account.email)?
            .check_current(code.trim())
            .ok_or_else(|| Error::invalid("code", "the code is wrong or expired"))?;
        let (codes, hashes) = new_recovery_codes();
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        store::enable_totp(&mut tx, id, step as i64, now).await?;
        store::replace_recovery_codes(&mut tx, id, &hashes, now).await?;
        tx.commit().await?;
        tracing::info!(account_id = %id, "two-factor enabled");
        self.log.record(id, SecurityEventKind::TwoFactorEnabled, &viewer.meta, None).await;
        Ok(codes)
    }

    pub async fn disable(&self, viewer: &Viewer, password_given: String, code: &str) -> Result<()> {
        viewer.require_session()?;
        let id = viewer.account_id();
        let row = self.row(id).await?;
        if row.totp_secret.is_none() {
            return Err(Error::conflict("twoFactor", "two-factor authentication is not on"));
        }
        if !password::verify(password_given, Some(row.password_hash.clone())).await? {
            return Err(Error::invalid("password", "the password is wrong"));
        }
        self.verify_second_factor(&viewer.account, &row, code, &viewer.meta).await?;
        let mut tx = self.db.begin().await?;
        store::disable_totp(&mut tx, id).await?;
        tx.commit().await?;
        tracing::info!(account_id = %id, "two-factor disabled");
        self.log.record(id, SecurityEventKind::TwoFactorDisabled, &viewer.meta, None).await;
        Ok(())
    }

    pub async fn regenerate_recovery_codes(&self, viewer: &Viewer, code: &str) -> Result<Vec<String>> {
        viewer.require_session()?;
        let id = viewer.account_id();
        let row = self.row(id).await?;
        let sealed = row.totp_secret.as_deref().ok_or_else(|| Error::conflict("twoFactor", "two-factor authentication is not on"))?;
        self.throttle.attempt(&id.to_string(), viewer.meta.ip.as_deref()).await?;
        self.check_totp(&viewer.account, sealed, code).await?;
        let (codes, hashes) = new_recovery_codes();
        let mut tx = self.db.begin().await?;
        store::replace_recovery_codes(&mut tx, id, &hashes, Utc::now()).await?;
        tx.commit().await?;
        self.log.record(id, SecurityEventKind::RecoveryCodesRegenerated, &viewer.meta, None).await;
        Ok(codes)
    }

    /// Completes a log-in waiting for its second factor: a TOTP code or a recovery code.
    #[instrument(skip_all)]
    pub async fn complete_log_in(&self, challenge: &str, code: &str, meta: ClientMeta) -> Result<IssuedSession> {
        let invalid = || Error::invalid("challenge", "the log-in challenge is unknown, used or expired; log in again");
        let found = self.live_challenge(challenge).await?.ok_or_else(invalid)?;
        let account = self.identity.accounts(&[found.account_id]).await?.pop().ok_or_else(invalid)?;
        let row = self.row(account.account_id).await?;
        if let Err(e) = self.verify_second_factor(&account, &row, code, &meta).await {
            store::count_failed_attempt(&self.db, found.login_challenge_id).await?;
            if matches!(e, Error::Invalid { .. }) {
                self.log.record(account.account_id, SecurityEventKind::SignInFailed, &meta, Some("wrong second-factor code")).await;
            }
            return Err(e);
        }
        if !store::use_challenge(&self.db, found.login_challenge_id, Utc::now()).await? {
            return Err(invalid());
        }
        self.identity.issue_session(account, meta).await
    }

    /// Proves it is the holder, for the gravest steps (deleting the account): the password,
    /// and the second factor (`code`) when two-factor is on. Counted like log-in attempts.
    pub async fn confirm_holder(&self, viewer: &Viewer, password_given: String, code: Option<&str>) -> Result<()> {
        viewer.require_session()?;
        let account = &viewer.account;
        let row = self.row(account.account_id).await?;
        self.check_password(viewer, &row, password_given).await?;
        if row.totp_secret.is_some() {
            let code = code.ok_or_else(|| Error::invalid("code", "two-factor authentication is on: give a code"))?;
            self.verify_second_factor(account, &row, code, &viewer.meta).await?;
        }
        Ok(())
    }

    /// Proves it is the holder with either the password or a second-factor code, for steps
    /// a lost password must not block (removing a passkey). Counted like log-in attempts.
    pub async fn confirm_password_or_code(&self, viewer: &Viewer, password_given: Option<String>, code: Option<&str>) -> Result<()> {
        viewer.require_session()?;
        let account = &viewer.account;
        let row = self.row(account.account_id).await?;
        match (password_given, code) {
            (Some(given), _) => self.check_password(viewer, &row, given).await,
            (None, Some(code)) => self.verify_second_factor(account, &row, code, &viewer.meta).await,
            (None, None) => Err(Error::invalid("password", "give your password or a second-factor code")),
        }
    }

    /// The viewer's password, counted like a log-in attempt; a wrong one is logged.
    async fn check_password(&self, viewer: &Viewer, row: &store::SecurityRow, given: String) -> Result<()> {
        let account = &viewer.account;
        self.throttle.attempt(&account.email, viewer.meta.ip.as_deref()).await?;
        if !password::verify(given, Some(row.password_hash.clone())).await? {
            self.log.record(account.account_id, SecurityEventKind::SignInFailed, &viewer.meta, Some("wrong password")).await;
            return Err(Error::invalid("password", "the password is wrong"));
        }
        Ok(())
    }

    /// Whether a log-in challenge can still be completed; its row when so.
    pub async fn live_challenge(&self, challenge: &str) -> Result<Option<store::ChallengeRow>> {
        let found = store::find_challenge(&self.db, &token_hash(challenge)).await?;
        Ok(found.filter(|c| c.used_at.is_none() && c.expires_at > Utc::now() && c.attempts < MAX_CHALLENGE_ATTEMPTS))
    }

    /// A TOTP code (once per step) or an unspent recovery code (then spent).
    async fn verify_second_factor(&self, account: &Account, row: &store::SecurityRow, code: &str, meta: &ClientMeta) -> Result<()> {
        let sealed = row.totp_secret.as_deref().ok_or_else(|| Error::invalid("code", "two-factor authentication is not on"))?;
        self.throttle.attempt(&account.account_id.to_string(), meta.ip.as_deref()).await?;
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return self.check_totp(account, sealed, &digits).await;
        }
        let normalised = normalise_recovery_code(code);
        if store::spend_recovery_code(&self.db, account.account_id, &hash_code(&normalised), Utc::now()).await? {
            tracing::info!(account_id = %account.account_id, "recovery code used");
            self.log.record(account.account_id, SecurityEventKind::RecoveryCodeUsed, meta, None).await;
            return Ok(());
        }
        Err(Error::invalid("code", "the code is wrong, expired or already used"))
    }

    async fn check_totp(&self, account: &Account, sealed: &[u8], code: &str) -> Result<()> {
        let secret = self.secrets.open(sealed, &bound(account.account_id))?;
        let wrong = || Error::invalid("code", "the code is wrong, expired or already used");
        let step = totp(&secret, &account.email)?.check_current(code.trim()).ok_or_else(wrong)?;
        // A code is good once: a replay inside its 30 seconds is refused.
        if store::claim_step(&self.db, account.account_id, step as i64).await? { Ok(()) } else { Err(wrong()) }
    }
}

/// SHA-1, 6 digits, 30-second steps, one step of drift: what authenticator apps expect.
fn totp(secret: &[u8], email: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(email)
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("TOTP: {e}")))
}

/// What a sealed TOTP secret is bound to.
pub fn bound(id: AccountId) -> Vec<u8> {
    format!("totp:{id}").into_bytes()
}

/// Ten codes like `ABCD-EFGH-JKLM-NPQR` (80 random bits each) and their hashes.
fn new_recovery_codes() -> (Vec<String>, Vec<Vec<u8>>) {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw: String = (0..16).map(|_| ALPHABET[(rng.next_u32() % 32) as usize] as char).collect();
            format!("{}-{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12], &raw[12..16])
        })
        .collect();
    let hashes = codes.iter().map(|c| hash_code(&normalise_recovery_code(c))).collect();
    (codes, hashes)
}

fn normalise_recovery_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

fn hash_code(normalised: &str) -> Vec<u8> {
    Sha256::digest(normalised.as_bytes()).to_vec()
}

/// The otpauth URI as an SVG QR code (the encoding is qrcodegen's; this only draws modules).
fn qr_svg(uri: &str) -> Result<String> {
    let qr = qrcodegen::QrCode::encode_text(uri, qrcodegen::QrCodeEcc::Medium)
        .map_err(|e| Error::Internal(anyhow::anyhow!("QR code: {e:?}")))?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_match_their_hashes_however_typed() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), 10);
        let typed = codes[3].to_lowercase().replace('-', " ");
        assert_eq!(hash_code(&normalise_recovery_code(&typed)), hashes[3]);
    }

    #[test]
    fn rfc_6238_test_vector_is_accepted() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); its last 6 digits at 6 digits.
        let totp = totp(b"12345678901234567890", "test@example.com").unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert!(totp.check("287082", 59 + 30).is_some(), "one step of drift is accepted");
        assert!(totp.check("287082", 59 + 90).is_none());
    }

    #[test]
    fn the_qr_code_is_an_svg() {
        let svg = qr_svg("otpauth://totp/Concierge:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Concierge").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    }
}
