//! Profile rules: personal data, language, the login-email change, the photo and the signature.
//! Every change is checked in full before anything is written, and announced on `meUpdated`.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use tracing::instrument;
use uuid::Uuid;

use super::model::ProfileChanges;
use super::photo::{self, PhotoLimits, Rendition};
use super::signature::{self, Sanitizer, Values};
use super::store;
use crate::blob::{BlobKey, SharedBlobStore};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::{Account, AccountId, Email};
use crate::identity::password;
use crate::identity::service::{Viewer, random_token, token_hash};
use crate::mail::{Mailer, SystemEmail};
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::security::throttle::FailureLimit;
use crate::workspace::store as workspace_store;

/// Email-change links start with this and last this long.
const EMAIL_CHANGE_PREFIX: &str = "cec_";
const EMAIL_CHANGE_TTL: TimeDelta = TimeDelta::hours(24);

/// A user's signature in its three forms.
pub struct SignatureView {
    /// As stored: sanitised, custom values not rendered.
    pub html: String,
    /// Custom values rendered, ready to append to a message.
    pub rendered: String,
    /// A plain-text version of `rendered`.
    pub text: String,
}

#[derive(Clone)]
pub struct ProfileService {
    db: Db,
    fanout: Fanout,
    mailer: Mailer,
    blobs: SharedBlobStore,
    log: SecurityLog,
    public_url: Arc<str>,
    sanitizer: Arc<Sanitizer>,
    photo_limits: PhotoLimits,
    /// Email-change links that do not check out, per client address (shared with bearer tokens).
    token_failures: Arc<FailureLimit>,
}

impl ProfileService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        fanout: Fanout,
        mailer: Mailer,
        blobs: SharedBlobStore,
        log: SecurityLog,
        public_url: &str,
        photo_limits: PhotoLimits,
        token_failures: Arc<FailureLimit>,
    ) -> Self {
        let public_url: Arc<str> = public_url.trim_end_matches('/').into();
        ProfileService {
            sanitizer: Arc::new(Sanitizer::new(&public_url)),
            db,
            fanout,
            mailer,
            blobs,
            log,
            public_url,
            photo_limits,
            token_failures,
        }
    }

    pub fn photo_limits(&self) -> &PhotoLimits {
        &self.photo_limits
    }

    async fn reload(&self, id: AccountId) -> Result<Account> {
        crate::identity::store::find_accounts(&self.db, &[id]).await?.pop().ok_or(Error::Unauthenticated)
    }

    async fn changed(&self, id: AccountId) {
        self.fanout.publish(Change::Account { account_id: id }).await;
    }

    /// Applies an already-validated set of changes and returns the updated account.
    #[instrument(skip_all)]
    pub async fn update(&self, viewer: &Viewer, changes: ProfileChanges) -> Result<Account> {
        let id = viewer.account_id();
        if changes.is_empty() {
            return self.reload(id).await;
        }
        let mut tx = self.db.begin().await?;
        store::update_profile(&mut tx, id, &changes, Utc::now()).await?;
        tx.commit().await?;
        self.changed(id).await;
        self.reload(id).await
    }

    /// Checks the password and that the address is free, then mails a confirmation link to the
    /// new address and a notice to the current one. Nothing changes until the link is used.
    #[instrument(skip_all)]
    pub async fn request_email_change(&self, viewer: &Viewer, new_email: &str, password_given: String) -> Result<()> {
        viewer.require_session()?;
        let account = &viewer.account;
        let new_email = Email::parse("newEmail", new_email)?;
        if new_email.as_str() == account.email {
            return Err(Error::invalid("newEmail", "this is already your login email"));
        }
        let row = crate::security::store::security_row(&self.db, account.account_id).await?.ok_or(Error::Unauthenticated)?;
        if !password::verify(password_given, Some(row.password_hash)).await? {
            return Err(Error::invalid("password", "the password is wrong"));
        }
        let mut tx = self.db.begin().await?;
        if crate::identity::store::find_account_by_email(&mut tx, &new_email).await?.is_some() {
            return Err(email_taken());
        }
        let token = random_token(EMAIL_CHANGE_PREFIX);
        let now = Utc::now();
        store::insert_email_change(
            &mut tx,
            &store::NewEmailChange {
                id: Uuid::now_v7(),
                account_id: account.account_id,
                new_email: new_email.as_str(),
                token_hash: &token_hash(&token),
                now,
                expires_at: now + EMAIL_CHANGE_TTL,
            },
        )
        .await?;
        tx.commit().await?;
        let name = account.shown_name();
        let link = format!("{}/confirm-email?token={token}", self.public_url);
        let verify = SystemEmail::EmailChangeVerify { new_email: new_email.as_str(), link: &link, hours: EMAIL_CHANGE_TTL.num_hours() };
        self.mailer.send(new_email.as_str(), &name, &account.language, verify).await?;
        let ip = viewer.meta.ip.clone().unwrap_or_else(|| "?".into());
        let notice = SystemEmail::EmailChangeNotice { new_email: new_email.as_str(), ip: &ip };
        if let Err(e) = self.mailer.send(&account.email, &name, &account.language, notice).await {
            tracing::warn!(error = ?e, "email-change notice to the current address not sent");
        }
        self.log.record(account.account_id, SecurityEventKind::EmailChangeRequested, &viewer.meta, Some(new_email.as_str())).await;
        Ok(())
    }

    /// Switches the login email with a link's token: once, before it expires, if the address
    /// is still free. Returns the account with its new email.
    #[instrument(skip_all)]
    pub async fn confirm_email_change(&self, token: &str, meta: &crate::identity::service::ClientMeta) -> Result<Account> {
        // Guessing links is throttled per address like guessing bearer tokens: checked before
        // the lookup, and every link that does not check out counts.
        let address = meta.ip.as_deref();
        self.token_failures.check(address).await?;
        match self.apply_email_change(token, meta).await {
            Err(e @ Error::Invalid { .. }) => {
                self.token_failures.failed(address).await?;
                Err(e)
            }
            other => other,
        }
    }

    async fn apply_email_change(&self, token: &str, meta: &crate::identity::service::ClientMeta) -> Result<Account> {
        let invalid = || Error::invalid("token", "this link is unknown, used or expired; ask for a new one");
        if !token.starts_with(EMAIL_CHANGE_PREFIX) || token.len() > 100 {
            return Err(invalid());
        }
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        let change = store::find_email_change(&mut tx, &token_hash(token)).await?.ok_or_else(invalid)?;
        if change.used_at.is_some() || change.expires_at <= now {
            return Err(invalid());
        }
        let before = crate::identity::store::find_accounts(&self.db, &[change.account_id]).await?.pop().ok_or_else(invalid)?;
        if !store::use_email_change(&mut tx, change.email_change_id, now).await? {
            return Err(invalid());
        }
        store::set_email(&mut tx, change.account_id, &change.new_email, now)
            .await
            .map_err(|e| if crate::identity::store::EMAIL_KEY.violated_by(&e) { email_taken() } else { e.into() })?;
        tx.commit().await?;
        tracing::info!(account_id = %change.account_id, "login email changed");
        self.log.record(change.account_id, SecurityEventKind::EmailChanged, meta, Some(&change.new_email)).await;
        let notice = SystemEmail::EmailChanged { new_email: &change.new_email };
        if let Err(e) = self.mailer.send(&before.email, &before.shown_name(), &before.language, notice).await {
            tracing::warn!(error = ?e, "email-changed notice to the old address not sent");
        }
        self.changed(change.account_id).await;
        self.reload(change.account_id).await
    }

    /// Decodes, strips and resizes an uploaded photo, stores its renditions under a fresh key
    /// and then removes the previous photo's files.
    #[instrument(skip_all)]
    pub async fn upload_photo(&self, viewer: &Viewer, data: Vec<u8>) -> Result<Account> {
        let id = viewer.account_id();
        let limits = self.photo_limits.clone();
        let renditions: Vec<Rendition> = tokio::task::spawn_blocking(move || photo::process(&data, &limits)).await??;
        let version = Uuid::new_v4().simple().to_string();
        let ext = renditions.first().map(|r| r.extension).unwrap_or("jpg");
        let key = format!("{id}/{version}.{ext}");
        for r in &renditions {
            self.blobs.put(&blob_key(&key, r.size)?, r.bytes.clone()).await?;
        }
        let mut tx = self.db.begin().await?;
        let old = store::swap_photo(&mut tx, id, Some(&key), Utc::now()).await?;
        tx.commit().await?;
        if let Some(old) = old {
            self.delete_photo_files(&old).await;
        }
        self.changed(id).await;
        self.reload(id).await
    }

    pub async fn remove_photo(&self, viewer: &Viewer) -> Result<Account> {
        let id = viewer.account_id();
        let mut tx = self.db.begin().await?;
        let old = store::swap_photo(&mut tx, id, None, Utc::now()).await?;
        tx.commit().await?;
        if let Some(old) = old {
            self.delete_photo_files(&old).await;
            self.changed(id).await;
        }
        self.reload(id).await
    }

    async fn delete_photo_files(&self, key: &str) {
        let (stem, _) = key.rsplit_once('.').unwrap_or((key, ""));
        if let Err(e) = self.blobs.delete_prefix(&format!("photos/{stem}/")).await {
            tracing::warn!(error = ?e, "a replaced photo's files were not deleted");
        }
    }

    /// The URL of the smallest rendition at least `size` pixels wide (the largest if none is).
    /// The URL of the rendition of `size` pixels (one of [`photo::SIZES`]).
    pub fn photo_url(&self, key: &str, size: u32) -> String {
        let (stem, ext) = key.rsplit_once('.').unwrap_or((key, "jpg"));
        format!("{}/media/photos/{stem}/{size}.{ext}", self.public_url)
    }

    /// A photo file for `GET /media/photos/{account}/{version}/{size}.{ext}`.
    pub async fn photo_file(&self, account: &str, version: &str, file: &str) -> Result<Option<(Vec<u8>, &'static str)>> {
        let Some((size, ext)) = file.split_once('.') else { return Ok(None) };
        let content_type = match ext {
            "jpg" => "image/jpeg",
            "png" => "image/png",
            _ => return Ok(None),
        };
        let (Ok(size), Ok(account), Ok(_)) = (size.parse::<u32>(), Uuid::parse_str(account), Uuid::parse_str(version)) else {
            return Ok(None);
        };
        if !photo::SIZES.contains(&size) {
            return Ok(None);
        }
        let key = format!("{}/{version}.{ext}", account.hyphenated());
        let bytes = self.blobs.get(&blob_key(&key, size)?).await.map_err(Error::Internal)?;
        Ok(bytes.map(|b| (b, content_type)))
    }

    /// Sanitises and stores the signature; an unknown custom value is refused by name.
    pub async fn update_signature(&self, viewer: &Viewer, html: &str) -> Result<SignatureView> {
        let clean = self.sanitizer.clean(html)?;
        store::set_signature(&self.db, viewer.account_id(), &clean, Utc::now()).await?;
        self.changed(viewer.account_id()).await;
        self.view_signature(&viewer.account, clean).await
    }

    pub async fn signature(&self, account: &Account) -> Result<SignatureView> {
        let html = store::signature(&self.db, account.account_id).await?.unwrap_or_default();
        self.view_signature(account, html).await
    }

    /// Renders `html` for the viewer without saving it.
    pub async fn preview_signature(&self, viewer: &Viewer, html: &str) -> Result<SignatureView> {
        let clean = self.sanitizer.clean(html)?;
        self.view_signature(&viewer.account, clean).await
    }

    async fn view_signature(&self, account: &Account, html: String) -> Result<SignatureView> {
        let values = self.signature_values(account).await?;
        let rendered = signature::render_html(&html, &values);
        let text = signature::to_text(&rendered);
        Ok(SignatureView { html, rendered, text })
    }

    async fn signature_values(&self, account: &Account) -> Result<Values> {
        // The workspace a user joined first (their own, for most).
        let memberships = workspace_store::memberships_of_accounts(&self.db, &[account.account_id]).await?;
        let first = memberships.iter().min_by_key(|m| m.membership_id).map(|m| m.workspace_id);
        let workspace_name = match first {
            Some(w) => workspace_store::find_workspaces(&self.db, &[w]).await?.pop().map(|w| w.name).unwrap_or_default(),
            None => String::new(),
        };
        Ok(Values {
            full_name: account.full_name(),
            first_name: account.first_name.clone(),
            last_name: account.last_name.clone(),
            display_name: account.shown_name(),
            email: account.email.clone(),
            phone: account.phone.clone().unwrap_or_default(),
            job_title: account.job_title.clone().unwrap_or_default(),
            workspace_name,
        })
    }
}

/// Where the `size` rendition of a photo is stored.
pub fn blob_key(photo_key: &str, size: u32) -> Result<BlobKey> {
    let (stem, ext) = photo_key.rsplit_once('.').unwrap_or((photo_key, "jpg"));
    BlobKey::new(format!("photos/{stem}/{size}.{ext}")).map_err(Error::Internal)
}

fn email_taken() -> Error {
    Error::conflict("newEmail", "another account uses this email")
}
