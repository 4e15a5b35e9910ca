//! Connecting, changing and disconnecting mailboxes. A mailbox is saved only after its
//! settings really signed in; its credentials are sealed at once and never read back out.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use concierge_connector_sdk::{Account, ConnectorError, Credentials, Descriptor, Secret, Settings};
use tracing::instrument;

use super::model::{Mailbox, MailboxEvent, MailboxEventKind, MailboxId, MailboxStatus};
use super::store;
use super::sync::{MailSync, StoredCredentials};
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::AccountId;
use crate::identity::service::{ClientMeta, Viewer};
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::workspace::model::WorkspaceId;
use crate::workspace::service::WorkspaceService;

/// What `connectMailbox` asks for.
pub struct ConnectInput {
    pub connector: String,
    pub email_address: String,
    pub settings: Settings,
    pub password: String,
    pub sync_from: NaiveDate,
    pub workspace_id: Option<WorkspaceId>,
}

#[derive(Clone)]
pub struct MailboxService {
    pub(super) db: Db,
    pub(super) secrets: SecretBox,
    pub(super) sync: MailSync,
    pub(super) fanout: Fanout,
    pub(super) workspaces: WorkspaceService,
    log: SecurityLog,
    /// Largest message `sendEmail` sends.
    pub(super) max_send_bytes: usize,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl MailboxService {
    pub fn new(
        db: Db,
        secrets: SecretBox,
        sync: MailSync,
        fanout: Fanout,
        workspaces: WorkspaceService,
        log: SecurityLog,
        max_send_bytes: usize,
    ) -> Self {
        MailboxService { db, secrets, sync, fanout, workspaces, log, max_send_bytes }
    }

    pub fn max_send_bytes(&self) -> usize {
        self.max_send_bytes
    }

    pub fn sync(&self) -> &MailSync {
        &self.sync
    }

    /// Checks the settings by signing in, then saves the mailbox and starts its sync.
    #[instrument(skip_all, fields(connector = %input.connector))]
    pub async fn connect(&self, viewer: &Viewer, input: ConnectInput) -> Result<Mailbox> {
        let connector = self
            .sync
            .registry()
            .get(input.connector.trim())
            .cloned()
            .ok_or_else(|| Error::invalid("connector", format!("no connector {:?}; see mailConnectors", input.connector)))?;
        if connector.oauth().is_some() {
            return Err(Error::invalid("connector", "this connector signs in at its provider: use startMailboxAuthorization"));
        }
        let address = input.email_address.trim();
        if !email_address::EmailAddress::is_valid(address) || address.len() > 254 {
            return Err(Error::invalid("emailAddress", "must be an email address"));
        }
        if input.password.is_empty() {
            return Err(Error::invalid("password", "must not be empty"));
        }
        if input.password.len() > 1024 {
            return Err(Error::invalid("password", "must be at most 1024 bytes"));
        }
        check_sync_from(input.sync_from)?;
        let workspace_id = self.workspace_for(viewer, input.workspace_id).await?;
        let settings = connector.validate(&input.settings).map_err(|e| Error::invalid(format!("settings.{}", e.field), e.message))?;
        let username = settings.get("username").and_then(|v| v.as_str()).filter(|u| !u.is_empty()).unwrap_or(address).to_owned();
        let account = Account {
            address: address.to_owned(),
            settings: settings.clone(),
            credentials: Credentials::Password { username: username.clone(), password: Secret::new(input.password.clone()) },
        };
        // Really sign in: a wrong password, host, port or TLS type fails here, and nothing is saved.
        let silent = || Error::Connector {
            code: "UNREACHABLE",
            field: "settings".into(),
            message: format!("the server did not answer within {} s", CONNECT_TIMEOUT.as_secs()),
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connector.open(&account)).await {
            Ok(Ok(session)) => session.close().await,
            Ok(Err(e)) => return Err(connect_error(&e, connector.descriptor(), Side::Receiving)),
            Err(_) => return Err(silent()),
        }
        // And the sending side (connect, TLS, EHLO, AUTH; nothing is sent): a wrong SMTP port,
        // TLS type or password is refused now, not at the first send.
        if connector.descriptor().capabilities.send {
            match tokio::time::timeout(CONNECT_TIMEOUT, connector.check_send(&account)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(connect_error(&e, connector.descriptor(), Side::Sending)),
                Err(_) => return Err(silent()),
            }
        }
        let kind = connector.descriptor().kind;
        let credentials = StoredCredentials::Password { username, password: input.password };
        let id = self.save(viewer.account_id(), workspace_id, kind, address, settings, credentials, input.sync_from, &viewer.meta).await?;
        self.mailbox(viewer, id).await
    }

    /// Saves a mailbox that just signed in, with its sealed credentials, and starts its sync.
    /// One already connected (same account, connector and address) is signed in again
    /// instead: new credentials, unpaused, and what it synced kept, checkpoint included.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn save(
        &self,
        account_id: AccountId,
        workspace_id: WorkspaceId,
        kind: &str,
        address: &str,
        settings: Settings,
        credentials: StoredCredentials,
        sync_from: NaiveDate,
        meta: &ClientMeta,
    ) -> Result<MailboxId> {
        let settings = serde_json::Value::Object(settings).to_string();
        if let Some(existing) = store::find_by_address(&self.db, account_id, kind, address).await? {
            let sealed = credentials.seal(&self.secrets, existing.mailbox_id)?;
            store::reconnect(&self.db, existing.mailbox_id, &settings, &sealed, Utc::now()).await?;
            store::record_event(&self.db, existing.mailbox_id, MailboxEventKind::SignedInAgain, None, Utc::now()).await?;
            self.log.record(account_id, SecurityEventKind::MailboxConnected, meta, Some(address)).await;
            self.sync.stop(existing.mailbox_id);
            if sync_from != existing.sync_from {
                check_sync_from(sync_from)?;
                store::update_settings(&self.db, existing.mailbox_id, sync_from, false, sync_from < existing.sync_from).await?;
            }
            self.sync.start(existing.mailbox_id);
            self.fanout.publish(Change::Mailbox { mailbox_id: existing.mailbox_id }).await;
            return Ok(existing.mailbox_id);
        }
        let now = Utc::now();
        let mailbox = Mailbox {
            mailbox_id: MailboxId::new(),
            account_id,
            workspace_id,
            connector: kind.to_owned(),
            email_address: address.to_owned(),
            settings,
            sync_from,
            paused: false,
            status: MailboxStatus::Connecting.stored_name().to_owned(),
            status_reason: Some("connected; starting the sync".into()),
            status_changed_at: now,
            last_error: None,
            last_synced_at: None,
            initial_synced_at: None,
            checkpoint: None,
            message_count: 0,
            skipped_count: 0,
            server_count: None,
            missing_count: None,
            last_reconciled_at: None,
            last_checkpoint_reset_at: None,
            created_at: now,
        };
        let sealed = credentials.seal(&self.secrets, mailbox.mailbox_id)?;
        let mut tx = self.db.begin().await?;
        store::insert_mailbox(&mut tx, &mailbox, &sealed).await.map_err(|e| {
            if store::ADDRESS_KEY.violated_by(&e) { Error::conflict("emailAddress", "this mailbox is already connected") } else { e.into() }
        })?;
        store::record_event_in(&mut tx, mailbox.mailbox_id, MailboxEventKind::Connected, None, now).await?;
        tx.commit().await?;
        self.log.record(account_id, SecurityEventKind::MailboxConnected, meta, Some(address)).await;
        self.sync.start(mailbox.mailbox_id);
        Ok(mailbox.mailbox_id)
    }

    /// The workspace a new mailbox records into: the one named, or the viewer's only one.
    pub(super) async fn workspace_for(&self, viewer: &Viewer, named: Option<WorkspaceId>) -> Result<WorkspaceId> {
        match named {
            Some(id) => {
                self.workspaces.membership_of(viewer, id).await.map_err(|_| Error::invalid("workspaceId", "not a workspace of yours"))?;
                Ok(id)
            }
            None => self.workspaces.only_workspace(viewer).await,
        }
    }

    pub async fn mailboxes(&self, viewer: &Viewer) -> Result<Vec<Mailbox>> {
        Ok(store::mailboxes_of(&self.db, viewer.account_id()).await?)
    }

    /// The viewer's own mailbox (NOT_FOUND for anyone else's).
    pub async fn mailbox(&self, viewer: &Viewer, id: MailboxId) -> Result<Mailbox> {
        store::find_mailbox(&self.db, id).await?.filter(|m| m.account_id == viewer.account_id()).ok_or(Error::NotFound("mailbox"))
    }

    /// Changes the sync-from date and pauses or resumes. An earlier date lists again from
    /// it (what was recorded is not recorded twice).
    #[instrument(skip_all, fields(mailbox_id = %id.0))]
    pub async fn update(&self, viewer: &Viewer, id: MailboxId, sync_from: Option<NaiveDate>, paused: Option<bool>) -> Result<Mailbox> {
        let mailbox = self.mailbox(viewer, id).await?;
        let sync_from_new = sync_from.unwrap_or(mailbox.sync_from);
        check_sync_from(sync_from_new)?;
        let paused_new = paused.unwrap_or(mailbox.paused);
        let earlier = sync_from_new < mailbox.sync_from;
        store::update_settings(&self.db, id, sync_from_new, paused_new, earlier).await?;
        let now = Utc::now();
        if earlier {
            let detail = format!("from {sync_from_new}");
            store::record_event(&self.db, id, MailboxEventKind::ListedAgain, Some(&detail), now).await?;
        }
        if paused_new && !mailbox.paused {
            self.sync.stop(id);
            store::set_status(&self.db, id, MailboxStatus::Paused, Some("paused by the user"), None, now).await?;
            store::record_event(&self.db, id, MailboxEventKind::Paused, None, now).await?;
        } else if !paused_new && mailbox.paused {
            store::set_status(&self.db, id, MailboxStatus::Connecting, Some("resumed by the user"), None, now).await?;
            store::record_event(&self.db, id, MailboxEventKind::Resumed, None, now).await?;
            self.sync.start(id);
        } else if !paused_new && earlier {
            self.sync.kick(id);
        }
        self.fanout.publish(Change::Mailbox { mailbox_id: id }).await;
        self.mailbox(viewer, id).await
    }

    /// Lists everything since the sync-from date again and records what is missing.
    #[instrument(skip_all, fields(mailbox_id = %id.0))]
    pub async fn resync(&self, viewer: &Viewer, id: MailboxId) -> Result<Mailbox> {
        let mailbox = self.mailbox(viewer, id).await?;
        if mailbox.paused {
            return Err(Error::invalid("id", "the mailbox is paused; resume it first"));
        }
        if mailbox.status() == MailboxStatus::NeedsReauth {
            return Err(Error::invalid("id", "the mailbox needs you to connect it again"));
        }
        store::list_again(&self.db, id).await?;
        store::record_event(&self.db, id, MailboxEventKind::ListedAgain, Some("asked by the user"), Utc::now()).await?;
        self.sync.kick(id);
        self.mailbox(viewer, id).await
    }

    /// Stops the sync and deletes the mailbox with its credentials; its events stay.
    #[instrument(skip_all, fields(mailbox_id = %id.0))]
    pub async fn disconnect(&self, viewer: &Viewer, id: MailboxId) -> Result<()> {
        let mailbox = self.mailbox(viewer, id).await?;
        self.sync.stop(id);
        store::delete_mailbox(&self.db, id).await?;
        self.log.record(viewer.account_id(), SecurityEventKind::MailboxDisconnected, &viewer.meta, Some(&mailbox.email_address)).await;
        self.fanout.publish(Change::Mailbox { mailbox_id: id }).await;
        Ok(())
    }

    /// The mailbox's latest `limit` lines of history, newest first.
    pub async fn history(&self, id: MailboxId, limit: i64) -> Result<Vec<MailboxEvent>> {
        Ok(store::history(&self.db, id, limit).await?)
    }

    pub async fn recorded_count(&self, id: MailboxId) -> Result<i64> {
        Ok(store::recorded_count(&self.db, id).await?)
    }
}

/// A sync-from date must be a real one: not in the future, not before 1990.
pub(super) fn check_sync_from(date: NaiveDate) -> Result<()> {
    let today = Utc::now().date_naive();
    if date > today {
        return Err(Error::invalid("syncFrom", "must not be in the future"));
    }
    if date < NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(today) {
        return Err(Error::invalid("syncFrom", "must be 1990-01-01 or later"));
    }
    Ok(())
}

/// A failed sign-in as the client sees it: typed, and naming the input most likely wrong
/// (a field of this connector's form, else `settings` as a whole).
/// Which server of a mailbox refused: the one mail is read from (IMAP) or sent through (SMTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Receiving,
    Sending,
}

pub(super) fn connect_error(e: &ConnectorError, form: &Descriptor, side: Side) -> Error {
    let prefix = match side {
        Side::Receiving => "imap",
        Side::Sending => "smtp",
    };
    let setting = |key: &str| -> std::borrow::Cow<'static, str> {
        let key = format!("{prefix}{key}");
        if form.field(&key).is_some() { format!("settings.{key}").into() } else { "settings".into() }
    };
    let field = match e {
        ConnectorError::Authentication { .. } => "password".into(),
        ConnectorError::Tls { .. } | ConnectorError::UntrustedCertificate { .. } => setting("Security"),
        // The host answered, but nothing listens on the port.
        e @ ConnectorError::Unreachable { .. } if e.is_connection_refused() => setting("Port"),
        ConnectorError::Unreachable { .. } => setting("Host"),
        ConnectorError::Settings(f) => format!("settings.{}", f.field).into(),
        _ => "settings".into(),
    };
    let message = match e {
        ConnectorError::Authentication { .. } if side == Side::Sending => {
            "the sending (SMTP) server refused the email address or password".to_owned()
        }
        ConnectorError::Authentication { .. } => "the server refused the email address or password".to_owned(),
        other => other.to_string(),
    };
    match e {
        ConnectorError::Settings(f) => Error::invalid(field, f.message.clone()),
        ConnectorError::UntrustedCertificate { certificate, .. } => {
            Error::UntrustedCertificate { field, message, certificate: crate::accounts::trust::shown(certificate) }
        }
        _ => Error::Connector { code: e.code(), field, message },
    }
}
