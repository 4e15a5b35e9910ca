//! Deleting an account. The holder asks (password, and the second factor when on); the
//! account is deleted when the grace period ends, unless they cancel first, and logging in
//! meanwhile still works so they can. Refused while they are the only active owner of a
//! workspace that has other members (ownership moves first); a workspace with nobody else
//! goes with them. A worker deletes what is due; several gateways may race for the same
//! account, and the delete is idempotent.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::store;
use crate::blob::SharedBlobStore;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use crate::jobs::worker::{self, Pace, Worker};
use crate::mail::{Mailer, SystemEmail};
use crate::mailboxes::model::MailboxId;
use crate::mailboxes::sync::MailSync;
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::security::service::SecurityService;

const IDLE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct DeletionService {
    db: Db,
    fanout: Fanout,
    mailer: Mailer,
    log: SecurityLog,
    security: SecurityService,
    mail_sync: MailSync,
    blobs: SharedBlobStore,
    grace: TimeDelta,
    wake: Arc<Notify>,
}

impl DeletionService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        fanout: Fanout,
        mailer: Mailer,
        log: SecurityLog,
        security: SecurityService,
        mail_sync: MailSync,
        blobs: SharedBlobStore,
        grace: TimeDelta,
    ) -> Self {
        DeletionService { db, fanout, mailer, log, security, mail_sync, blobs, grace, wake: Arc::new(Notify::new()) }
    }

    /// Schedules the viewer's account for deletion; returns when it will happen.
    pub async fn schedule(&self, viewer: &Viewer, password: String, code: Option<&str>) -> Result<DateTime<Utc>> {
        self.security.confirm_holder(viewer, password, code).await?;
        let id = viewer.account_id();
        let now = Utc::now();
        // In whole microseconds, as both databases keep it: the answer is what is stored.
        let at = (now + self.grace).trunc_subsecs(6);
        let mut tx = self.db.begin().await?;
        refuse_if_last_owner(&mut tx, id).await?;
        store::schedule(&mut tx, id, Some(at), now).await?;
        tx.commit().await?;
        self.log.record(id, SecurityEventKind::AccountDeletionScheduled, &viewer.meta, Some(&at.to_rfc3339())).await;
        let when = at.format("%Y-%m-%d %H:%M").to_string();
        let notice = SystemEmail::AccountDeletionScheduled { when: &when };
        if let Err(e) = self.mailer.send(&viewer.account.email, &viewer.account.shown_name(), &viewer.account.language, notice).await {
            tracing::warn!(error = ?e, "account-deletion notice not sent");
        }
        self.fanout.publish(Change::Account { account_id: id }).await;
        if at <= now {
            self.delete(id, now).await?;
        } else {
            self.wake.notify_one();
        }
        Ok(at)
    }

    /// Calls a scheduled deletion off.
    pub async fn cancel(&self, viewer: &Viewer) -> Result<()> {
        viewer.require_session()?;
        let id = viewer.account_id();
        if store::scheduled_at(&self.db, id).await?.is_none() {
            return Err(Error::invalid("account", "no deletion is scheduled"));
        }
        let mut tx = self.db.begin().await?;
        store::schedule(&mut tx, id, None, Utc::now()).await?;
        tx.commit().await?;
        self.log.record(id, SecurityEventKind::AccountDeletionCancelled, &viewer.meta, None).await;
        self.fanout.publish(Change::Account { account_id: id }).await;
        Ok(())
    }

    pub async fn scheduled_at(&self, id: AccountId) -> Result<Option<DateTime<Utc>>> {
        Ok(store::scheduled_at(&self.db, id).await?)
    }

    /// Deletes what is due until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let pace = Pace { clock: &crate::clock::SystemClock, wake: &self.wake, recheck: IDLE };
        worker::run(&self, pace, stop).await;
    }

    /// One pass over the accounts whose grace period is over; how many it deleted.
    async fn delete_due(&self) -> Result<usize> {
        let now = Utc::now();
        let mut deleted = 0;
        for (id, requested) in store::due(&self.db, now).await? {
            match self.delete(id, requested).await {
                Ok(()) => deleted += 1,
                Err(e) => tracing::error!(error = ?e, account_id = %id, "deleting an account"),
            }
        }
        Ok(deleted)
    }

    async fn delete(&self, id: AccountId, requested_at: DateTime<Utc>) -> Result<()> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        // Checked again: someone may have joined a workspace they own since they asked.
        if let Err(e) = refuse_if_last_owner(&mut tx, id).await {
            store::schedule(&mut tx, id, None, now).await?;
            tx.commit().await?;
            tracing::warn!(account_id = %id, "deletion called off: the account is again the last owner of a shared workspace");
            return Err(e);
        }
        for (workspace, _) in store::sole_ownerships(&mut tx, id).await? {
            store::delete_workspace(&mut tx, workspace).await?;
        }
        let mailboxes = store::mailboxes_of(&mut tx, id).await?;
        store::delete_account(&mut tx, id, requested_at, now).await?;
        tx.commit().await?;
        for mailbox in mailboxes {
            self.mail_sync.stop(MailboxId(mailbox));
        }
        if let Err(e) = self.blobs.delete_prefix(&format!("photos/{id}/")).await {
            tracing::warn!(error = ?e, "a deleted account's photos were not removed");
        }
        if let Err(e) = self.blobs.delete_prefix(&format!("exports/{id}/")).await {
            tracing::warn!(error = ?e, "a deleted account's exports were not removed");
        }
        tracing::info!(account_id = %id, "account deleted");
        self.fanout.publish(Change::Sessions { account_id: id }).await;
        Ok(())
    }
}

impl Worker for DeletionService {
    const NAME: &'static str = "account deletion";

    async fn run_once(&self) -> anyhow::Result<usize> {
        self.delete_due().await.map_err(|e| anyhow::anyhow!("{e:?}"))
    }
}

/// CONFLICT when the account is the only active owner of a workspace with other members.
async fn refuse_if_last_owner(tx: &mut crate::db::Tx, id: AccountId) -> Result<()> {
    if store::sole_ownerships(tx, id).await?.iter().any(|(_, others)| *others > 0) {
        return Err(Error::conflict(
            "account",
            "you are the only owner of a workspace with other members: make someone else an owner first",
        ));
    }
    Ok(())
}
