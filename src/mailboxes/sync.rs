//! The sync: one task per mailbox that signs in, records everything since the sync-from
//! date, then waits for new mail (IMAP IDLE, or polling) and records it as it arrives.
//!
//! Failures are typed by the connector: a refused password stops the sync and asks the
//! user to sign in again (NEEDS_REAUTH, with a notification); a checkpoint that no longer
//! applies (UIDVALIDITY changed) restarts the listing from the sync-from date, and the
//! unique keys keep events from repeating; anything else retries with exponential backoff
//! and jitter, and a throttling server is left alone for at least as long as it asked.
//! Every status change is stored with its reason and published.
//!
//! A periodic reconciliation lists everything the server holds since the sync-from date,
//! compares it with what was recorded, and backfills the gap, so mail cannot go missing
//! silently while the mailbox shows healthy.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveTime, TimeZone as _, Utc};
use concierge_connector_sdk::{
    Account, Checkpoint, ConnectorError, Credentials, Disposition, MailSession, MessageRef, Secret, SharedConnector,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, info_span, warn};

use super::ingest::{self, News, Owner};
use super::model::{Mailbox, MailboxEventKind, MailboxId, MailboxStatus};
use super::oauth::{MailboxTokens, OAuthApps, StoredTokens};
use super::store;
use crate::accounts::registry::Registry;
use crate::clock::SystemClock;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::i18n::text;
use crate::jobs::lease::{self, Claim};
use crate::jobs::retry::Retry;
use crate::jobs::worker::{self, Pace};
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService};
use crate::webhooks::Webhooks;

/// Tuning of the sync; the defaults suit production, tests shorten them.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// First retry delay after a failure; doubles up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often the server's listing is compared with what was recorded.
    pub reconcile_every: Duration,
    /// Longest single wait for new mail before listing again anyway.
    pub wait_max: Duration,
    /// Messages fetched and recorded per transaction.
    pub batch: usize,
    /// Longest a sign-in may take.
    pub connect_timeout: Duration,
    /// How long a process's claim on a mailbox lasts unless renewed (renewed every third of it).
    pub lease: Duration,
    /// This process as a lease holder ([`crate::instance::Instance`]): the same after a
    /// restart, so its own leases are taken back at once.
    pub process: uuid::Uuid,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(30 * 60),
            reconcile_every: Duration::from_secs(15 * 60),
            wait_max: Duration::from_secs(25 * 60),
            batch: 250,
            connect_timeout: Duration::from_secs(30),
            lease: crate::jobs::lease::DEFAULT_LEASE,
            process: uuid::Uuid::new_v4(),
        }
    }
}

/// Starts, stops and nudges the per-mailbox sync tasks.
#[derive(Clone)]
pub struct MailSync {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    registry: Registry,
    secrets: SecretBox,
    fanout: Fanout,
    notifications: NotificationService,
    /// Woken after a batch or a status change queued webhook deliveries.
    webhooks: Webhooks,
    settings: SyncSettings,
    workers: Mutex<HashMap<MailboxId, Worker>>,
    /// This process, as the holder of mailbox leases.
    process: uuid::Uuid,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

struct Worker {
    stop: CancellationToken,
    kick: Arc<Notify>,
}

/// The sealed form of a mailbox's credentials.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredCredentials {
    Password {
        username: String,
        password: String,
    },
    /// Signed in at the provider: the refresh token, and the last access token.
    OAuth2 {
        username: String,
        tokens: StoredTokens,
    },
}

impl StoredCredentials {
    pub fn seal(&self, secrets: &SecretBox, id: MailboxId) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(self).map_err(anyhow::Error::from)?;
        Ok(secrets.seal(&plain, id.0.as_bytes())?)
    }

    fn open(secrets: &SecretBox, id: MailboxId, sealed: &[u8]) -> Result<StoredCredentials> {
        let plain = secrets.open(sealed, id.0.as_bytes())?;
        Ok(serde_json::from_slice(&plain).map_err(anyhow::Error::from)?)
    }

    /// The credentials a connector signs in with. OAuth ones hand out access tokens through
    /// [`MailboxTokens`], which refreshes them with the connector kind's app.
    pub fn into_credentials(self, inner: &TokenContext<'_>) -> Credentials {
        match self {
            StoredCredentials::Password { username, password } => Credentials::Password { username, password: Secret::new(password) },
            StoredCredentials::OAuth2 { username, tokens } => {
                let source = MailboxTokens::new(
                    inner.apps.clone(),
                    inner.kind,
                    inner.db.clone(),
                    inner.secrets.clone(),
                    inner.mailbox_id,
                    username.clone(),
                    tokens,
                );
                Credentials::OAuth2 { username, tokens: Arc::new(source) }
            }
        }
    }
}

/// What OAuth credentials need to refresh and store their tokens.
pub struct TokenContext<'a> {
    pub apps: &'a OAuthApps,
    pub kind: &'a str,
    pub db: &'a Db,
    pub secrets: &'a SecretBox,
    pub mailbox_id: MailboxId,
}

/// How one run of a mailbox's sync ended.
enum Ended {
    /// Deleted, paused or stopped: the task ends.
    Stop,
    /// Kicked while waiting for mail: sign in afresh (an interrupted IDLE leaves the
    /// connection in an unknown state) and list again at once.
    Restart,
    /// The connector failed: the caller decides from its disposition.
    Failed(ConnectorError),
}

impl MailSync {
    pub fn new(
        db: Db,
        registry: Registry,
        secrets: SecretBox,
        fanout: Fanout,
        notifications: NotificationService,
        webhooks: Webhooks,
        settings: SyncSettings,
    ) -> Self {
        let process = settings.process;
        MailSync {
            inner: Arc::new(Inner {
                db,
                registry,
                secrets,
                fanout,
                notifications,
                webhooks,
                settings,
                workers: Mutex::new(HashMap::new()),
                process,
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The account a connector signs in to for `mailbox` (its credentials unsealed).
    pub async fn account(&self, mailbox: &Mailbox, connector: &SharedConnector) -> Result<Account> {
        account_of(&self.inner, mailbox, connector).await
    }

    /// Tells the webhook worker that deliveries were committed (after mail sent through the
    /// gateway was recorded).
    pub fn wake_webhooks(&self) {
        self.inner.webhooks.wake();
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Starts the sync of every mailbox that should be syncing (at boot), and from then on
    /// looks every third of a lease for mailboxes no process holds (see [`Self::adopt`]).
    pub async fn start_all(&self) -> Result<()> {
        for id in store::runnable(&self.inner.db).await? {
            self.start(id);
        }
        let (this, stop) = (self.clone(), self.inner.shutdown.clone());
        self.inner.tasks.spawn(
            async move {
                let recheck = this.inner.settings.lease / 3;
                // Nothing in this process wakes it: a mailbox connected here is started here.
                let wake = Notify::new();
                worker::run(&Adoption(this), Pace { clock: &SystemClock, wake: &wake, recheck }, stop).await;
            }
            .instrument(info_span!("mailbox_adoption")),
        );
        Ok(())
    }

    /// Starts the sync of each mailbox that should be syncing and that no process holds: one
    /// connected through another gateway process (only that one started its sync) whose
    /// process died (its lease ran out) or stopped (it released it). Without this, such a
    /// mailbox would wait for a gateway to restart. Returns how many were started here.
    pub async fn adopt(&self) -> Result<usize> {
        let free: HashSet<uuid::Uuid> = lease::claimable(&self.inner.db, lease::MAILBOX, Utc::now()).await?.into_iter().collect();
        if free.is_empty() {
            return Ok(0);
        }
        let mut started = 0;
        for id in store::runnable(&self.inner.db).await?.into_iter().filter(|id| free.contains(&id.0)) {
            let running = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()).get(&id).is_some_and(|w| !w.stop.is_cancelled());
            if !running {
                self.start(id);
                started += 1;
            }
        }
        Ok(started)
    }

    /// Starts the mailbox's sync unless it is running.
    pub fn start(&self, id: MailboxId) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let mut workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
        if workers.get(&id).is_some_and(|w| !w.stop.is_cancelled()) {
            return;
        }
        let stop = self.inner.shutdown.child_token();
        let kick = Arc::new(Notify::new());
        workers.insert(id, Worker { stop: stop.clone(), kick: kick.clone() });
        let inner = self.inner.clone();
        let span = info_span!("mailbox_sync", mailbox_id = %id.0);
        self.inner.tasks.spawn(
            async move {
                run(&inner, id, &stop, &kick).await;
                let mut workers = inner.workers.lock().unwrap_or_else(|e| e.into_inner());
                if workers.get(&id).is_some_and(|w| Arc::ptr_eq(&w.kick, &kick)) {
                    workers.remove(&id);
                }
            }
            .instrument(span),
        );
    }

    /// Stops the mailbox's sync (it finishes the batch it is recording).
    pub fn stop(&self, id: MailboxId) {
        if let Some(w) = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
            w.stop.cancel();
        }
    }

    /// Makes a running sync list again now (settings changed, resync asked); starts it if
    /// it is not running.
    pub fn kick(&self, id: MailboxId) {
        let running = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner()).get(&id).map(|w| w.kick.clone());
        match running {
            Some(kick) => kick.notify_one(),
            None => self.start(id),
        }
    }

    /// Stops every sync and waits for them to end.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// The look for mailboxes no process holds, on the shared worker loop: a pass is
/// [`MailSync::adopt`], every third of a lease.
struct Adoption(MailSync);

impl worker::Worker for Adoption {
    const NAME: &'static str = "mailbox adoption";

    async fn run_once(&self) -> anyhow::Result<usize> {
        self.0.adopt().await.map_err(|e| anyhow::anyhow!("cannot look for mailboxes no gateway is syncing: {e:?}"))
    }
}

async fn run(inner: &Arc<Inner>, id: MailboxId, stop: &CancellationToken, kick: &Notify) {
    leased(inner, id, stop, kick).await;
    // Whichever way the sync ended, another process may take the mailbox over at once.
    if let Err(e) = lease::release(&inner.db, lease::MAILBOX, id.0, inner.process).await {
        warn!(error = %e, "cannot release the mailbox lease");
    }
}

/// Runs the sync while this process holds the mailbox's lease, renewing it every third of
/// its length. Another process holding it (on a shared PostgreSQL) syncs it instead: this one
/// asks again the moment that lease runs out, so it takes over within a lease of that
/// process dying.
async fn leased(inner: &Arc<Inner>, id: MailboxId, stop: &CancellationToken, kick: &Notify) {
    let length = inner.settings.lease;
    let mut failures: u32 = 0;
    loop {
        let wait = match lease::claim(&inner.db, lease::MAILBOX, id.0, inner.process, Utc::now(), length).await {
            Ok(Claim::Taken) => None,
            // Deleted: nothing left to sync.
            Ok(Claim::Missing) => return,
            Ok(Claim::HeldUntil(until)) => Some(lease::wait_for(until, Utc::now(), length)),
            Err(e) => {
                warn!(error = %e, "cannot take the mailbox lease; trying again");
                Some(length / 3)
            }
        };
        if let Some(wait) = wait {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                () = kick.notified() => {}
            }
            continue;
        }
        // Renewed while the session runs and while a backoff is waited out (so no other
        // process hammers the server meanwhile); losing it (this process stalled past the
        // lease and another took over) ends the session.
        let held = lease::Held::renew(inner.db.clone(), lease::MAILBOX, id.0, inner.process, length);
        let ended = tokio::select! {
            () = stop.cancelled() => Ok(Ended::Stop),
            () = held.lost().cancelled() => Ok(Ended::Restart),
            ended = session(inner, id, stop, kick, &mut failures) => ended,
        };
        let error = match ended {
            Ok(Ended::Stop) => return,
            Ok(Ended::Restart) => continue,
            Ok(Ended::Failed(e)) => e,
            Err(e) => {
                // The database failed us, not the server: retry like a transient failure.
                warn!(error = ?e, "mailbox sync failed");
                ConnectorError::Unreachable { message: "internal error; retrying".into() }
            }
        };
        let delay = match error.disposition() {
            Disposition::Reauthorize => {
                needs_reauth(inner, id, "the server refused the credentials; connect the mailbox again", &error.to_string()).await;
                return;
            }
            Disposition::Resync => {
                let _ = store::reset_checkpoint(&inner.db, id, Utc::now()).await;
                set_status(
                    inner,
                    id,
                    MailboxStatus::Syncing,
                    "the server renumbered the folder; listing again from the sync-from date",
                    None,
                )
                .await;
                continue;
            }
            Disposition::BackOff => backoff(&inner.settings, failures),
            Disposition::WaitAtLeast(at_least) => backoff(&inner.settings, failures).max(at_least),
            // Fix: the settings must change; GiveUp concerns one outgoing message, which a
            // sync never sends: either way, retry rarely.
            Disposition::Fix | Disposition::GiveUp => inner.settings.backoff_max,
        };
        failures = failures.saturating_add(1);
        if failures == FAILING_AFTER {
            add_history(inner, id, MailboxEventKind::Failing, Some(&error.to_string())).await;
        }
        let reason = format!("{}; retrying in {}s", error, delay.as_secs().max(1));
        set_status(inner, id, MailboxStatus::Error, &reason, Some(&error.to_string())).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
            () = kick.notified() => {}
            () = held.lost().cancelled() => {}
        }
    }
}

/// The wait after `failures` earlier failures in a row and this one: the doubling schedule
/// from the settings, jittered ([`Retry`]).
fn backoff(settings: &SyncSettings, failures: u32) -> Duration {
    let retry = Retry::Doubling { base: settings.backoff_base, cap: settings.backoff_max };
    retry.delay(failures.saturating_add(1)).unwrap_or(settings.backoff_max)
}

/// One signed-in run: catch up, then wait for mail, until something fails or stops it.
async fn session(inner: &Arc<Inner>, id: MailboxId, stop: &CancellationToken, kick: &Notify, failures: &mut u32) -> Result<Ended> {
    let Some(mailbox) = store::find_mailbox(&inner.db, id).await? else { return Ok(Ended::Stop) };
    if mailbox.paused {
        set_status(inner, id, MailboxStatus::Paused, "paused by the user", None).await;
        return Ok(Ended::Stop);
    }
    let Some(connector) = inner.registry.get(&mailbox.connector).cloned() else {
        set_status(inner, id, MailboxStatus::Error, &format!("connector {} is not available in this gateway", mailbox.connector), None)
            .await;
        return Ok(Ended::Stop);
    };
    let account = match account_of(inner, &mailbox, &connector).await {
        Ok(a) => a,
        // Sealed under another key (CONCIERGE_SECRET_KEY changed) or damaged: only the
        // user can supply the password again.
        Err(e) if crate::crypto::Unreadable::caused(&e) => {
            warn!(error = ?e, "cannot open the mailbox's saved credentials");
            needs_reauth(inner, id, UNREADABLE_CREDENTIALS, "the saved credentials do not open with this gateway's secret key").await;
            return Ok(Ended::Stop);
        }
        Err(e) => return Err(e),
    };
    set_status(inner, id, MailboxStatus::Connecting, "signing in", None).await;
    let opened = tokio::time::timeout(inner.settings.connect_timeout, connector.open(&account)).await;
    let mut session = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Ok(Ended::Failed(e)),
        Err(_) => return Ok(Ended::Failed(ConnectorError::Unreachable { message: "signing in timed out".into() })),
    };
    let owner = Owner {
        mailbox_id: id,
        account_id: mailbox.account_id,
        workspace_id: mailbox.workspace_id,
        address: mailbox.email_address.clone(),
    };
    let result = follow(inner, &owner, session.as_mut(), stop, kick, failures).await;
    session.close().await;
    result
}

async fn account_of(inner: &Inner, mailbox: &Mailbox, connector: &SharedConnector) -> Result<Account> {
    let sealed = store::credentials(&inner.db, mailbox.mailbox_id).await?.ok_or(Error::NotFound("mailbox"))?;
    let context = TokenContext {
        apps: inner.registry.oauth(),
        kind: &mailbox.connector,
        db: &inner.db,
        secrets: &inner.secrets,
        mailbox_id: mailbox.mailbox_id,
    };
    let credentials = StoredCredentials::open(&inner.secrets, mailbox.mailbox_id, &sealed)?.into_credentials(&context);
    let settings: concierge_connector_sdk::Settings = serde_json::from_str(&mailbox.settings).map_err(anyhow::Error::from)?;
    // Settings were validated when saved; validating again fills defaults a newer connector added.
    let settings = connector.validate(&settings).unwrap_or(settings);
    Ok(Account { address: mailbox.email_address.clone(), settings, credentials })
}

/// Catch up, reconcile when due, wait for news; repeat.
async fn follow(
    inner: &Arc<Inner>,
    owner: &Owner,
    session: &mut dyn MailSession,
    stop: &CancellationToken,
    kick: &Notify,
    failures: &mut u32,
) -> Result<Ended> {
    let mut last_reconcile: Option<tokio::time::Instant> = None;
    loop {
        let Some(mailbox) = store::find_mailbox(&inner.db, owner.mailbox_id).await? else { return Ok(Ended::Stop) };
        if mailbox.paused {
            set_status(inner, owner.mailbox_id, MailboxStatus::Paused, "paused by the user", None).await;
            return Ok(Ended::Stop);
        }
        let since = Utc.from_utc_datetime(&mailbox.sync_from.and_time(NaiveTime::MIN));
        let checkpoint = mailbox.checkpoint.clone().map(Checkpoint);
        let refs = match session.list(since, checkpoint.as_ref()).await {
            Ok(refs) => refs,
            Err(e) => return Ok(Ended::Failed(e)),
        };
        let listed_last = refs.last().map(|r| r.checkpoint.0.clone());
        // A full listing (first sync, or after a reset) skips what this mailbox recorded.
        let refs = if checkpoint.is_none() { unrecorded(inner, owner.mailbox_id, refs).await? } else { refs };
        // A live mailbox records new mail. The first sync, and a sync started over (a moved
        // sync-from date, a resync, a renumbered folder: each clears `initial_synced_at`),
        // list from the sync-from date: of that, only mail that arrived after the mailbox was
        // connected is news (it may have come in while the listing ran).
        let news = if mailbox.initial_synced_at.is_some() { News::All } else { News::ArrivedAfter(mailbox.created_at) };
        if !refs.is_empty() {
            let reason = if news == News::All { "recording new mail" } else { "recording mail since the sync-from date" };
            set_status(inner, owner.mailbox_id, MailboxStatus::Syncing, reason, None).await;
            if let Err(e) = record(inner, owner, session, &refs, true, news, stop).await? {
                return Ok(Ended::Failed(e));
            }
            if stop.is_cancelled() {
                return Ok(Ended::Stop);
            }
        }
        if checkpoint.is_none()
            && let Some(last) = listed_last
        {
            // Everything listed is recorded now: the next listing can start after it.
            store::set_checkpoint(&inner.db, owner.mailbox_id, &last).await?;
        }
        let now = Utc::now();
        store::mark_synced(&inner.db, owner.mailbox_id, now).await?;
        if *failures >= FAILING_AFTER {
            add_history(inner, owner.mailbox_id, MailboxEventKind::Recovered, None).await;
        }
        *failures = 0;
        if last_reconcile.is_none_or(|t| t.elapsed() >= inner.settings.reconcile_every) {
            last_reconcile = Some(tokio::time::Instant::now());
            if let Err(e) = reconcile(inner, owner, session, since, mailbox.created_at, stop).await? {
                return Ok(Ended::Failed(e));
            }
        }
        set_status(inner, owner.mailbox_id, MailboxStatus::Live, "up to date; waiting for new mail", None).await;
        let until_reconcile = inner.settings.reconcile_every.saturating_sub(last_reconcile.map(|t| t.elapsed()).unwrap_or_default());
        let wait = inner.settings.wait_max.min(until_reconcile).max(Duration::from_secs(1));
        tokio::select! {
            () = stop.cancelled() => return Ok(Ended::Stop),
            () = kick.notified() => return Ok(Ended::Restart),
            woke = session.wait(wait) => if let Err(e) = woke { return Ok(Ended::Failed(e)) },
        }
    }
}

/// The listed messages this mailbox has not recorded yet.
async fn unrecorded(inner: &Inner, id: MailboxId, refs: Vec<MessageRef>) -> Result<Vec<MessageRef>> {
    if refs.is_empty() {
        return Ok(refs);
    }
    let known: HashSet<String> = store::recorded_ids(&inner.db, id).await?.into_iter().collect();
    Ok(refs.into_iter().filter(|r| !known.contains(&r.id)).collect())
}

/// Fetches and records `refs` batch by batch, publishing progress. With `advance`, each
/// batch moves the checkpoint to its last message (listing order is oldest first).
///
/// Fetching and recording overlap: while batch k is parsed and committed (on its own task),
/// batch k+1 is fetched. Commits stay in order: batch k+1 is recorded only after batch k.
async fn record(
    inner: &Arc<Inner>,
    owner: &Owner,
    session: &mut dyn MailSession,
    refs: &[MessageRef],
    advance: bool,
    news: News,
    stop: &CancellationToken,
) -> Result<Result<(), ConnectorError>> {
    let total = refs.len() as u64;
    let mut done = 0u64;
    inner.fanout.publish(Change::SyncProgress { mailbox_id: owner.mailbox_id, done, total }).await;
    let mut recording: Option<tokio::task::JoinHandle<Result<u64>>> = None;
    for batch in refs.chunks(inner.settings.batch.max(1)) {
        if stop.is_cancelled() {
            break;
        }
        // A trace of its own per batch (the worker's span lasts as long as the sync runs).
        let span = info_span!(parent: None, "mail_sync_batch", mailbox_id = %owner.mailbox_id.0, messages = batch.len());
        let fetch_started = std::time::Instant::now();
        let fetched = session.fetch(batch).instrument(span.clone()).await;
        tracing::debug!(messages = batch.len(), fetch_ms = fetch_started.elapsed().as_secs_f64() * 1e3, "fetched a batch");
        if let Some(previous) = recording.take() {
            done += previous.await??;
            inner.fanout.publish(Change::SyncProgress { mailbox_id: owner.mailbox_id, done, total }).await;
        }
        let messages = match fetched {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let checkpoint = advance.then(|| batch.last().map(|r| r.checkpoint.0.clone())).flatten();
        let (inner, owner) = (inner.clone(), owner.clone());
        let handled = batch.len() as u64;
        recording = Some(crate::telemetry::spawn_in(span, async move {
            // The owner's settings are read before the batch's transaction, which records
            // their notifications of news with the mail.
            let notifier = ingest::Notifier {
                service: &inner.notifications,
                routing: inner.notifications.routing(owner.account_id, NotificationEvent::MessageReceived).await?,
                language: language_of(&inner, owner.account_id).await,
            };
            let outcome = ingest::ingest(&inner.db, &owner, messages, checkpoint.as_deref(), news, Some(&notifier), Utc::now()).await?;
            let mut changes: Vec<Change> = outcome
                .recorded
                .iter()
                .map(|r| Change::Activity { workspace_id: owner.workspace_id, event_id: r.event_id, contact_id: r.contact_id })
                .collect();
            changes.push(Change::Mailbox { mailbox_id: owner.mailbox_id });
            inner.fanout.publish_all(&changes).await;
            // The batch may have queued webhook deliveries (new contacts, news).
            inner.webhooks.wake();
            inner.notifications.announce(&outcome.notified).await;
            Ok(handled)
        }));
    }
    if let Some(last) = recording.take() {
        done += last.await??;
        inner.fanout.publish(Change::SyncProgress { mailbox_id: owner.mailbox_id, done, total }).await;
    }
    Ok(Ok(()))
}

async fn language_of(inner: &Inner, account_id: crate::identity::model::AccountId) -> String {
    match crate::identity::store::find_accounts(&inner.db, &[account_id]).await {
        Ok(mut found) => found.pop().map(|a| a.language).unwrap_or_else(|| "en".into()),
        Err(_) => "en".into(),
    }
}

/// Compares the server's messages since the sync-from date with what was recorded, and
/// records any that are missing.
async fn reconcile(
    inner: &Arc<Inner>,
    owner: &Owner,
    session: &mut dyn MailSession,
    since: chrono::DateTime<Utc>,
    connected_at: chrono::DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Result<(), ConnectorError>> {
    let listed = match session.list(since, None).await {
        Ok(l) => l,
        Err(e) => return Ok(Err(e)),
    };
    let server = listed.len() as i64;
    let missing = unrecorded(inner, owner.mailbox_id, listed).await?;
    store::set_health(&inner.db, owner.mailbox_id, server, missing.len() as i64, Utc::now()).await?;
    if !missing.is_empty() {
        warn!(missing = missing.len(), "reconciliation found messages the sync had not recorded; backfilling");
        set_status(inner, owner.mailbox_id, MailboxStatus::Syncing, &format!("backfilling {} messages found missing", missing.len()), None)
            .await;
        // What arrived after the mailbox was connected is news, whichever path records it.
        if let Err(e) = record(inner, owner, session, &missing, false, News::ArrivedAfter(connected_at), stop).await? {
            return Ok(Err(e));
        }
        let left = unrecorded(inner, owner.mailbox_id, missing).await?;
        store::set_health(&inner.db, owner.mailbox_id, server, left.len() as i64, Utc::now()).await?;
    }
    inner.fanout.publish(Change::Mailbox { mailbox_id: owner.mailbox_id }).await;
    Ok(Ok(()))
}

/// Records and publishes a status change; the same status for the same reason is no change.
async fn set_status(inner: &Inner, id: MailboxId, status: MailboxStatus, reason: &str, error: Option<&str>) {
    match store::set_status(&inner.db, id, status, Some(reason), error, Utc::now()).await {
        Ok(true) => {
            inner.webhooks.wake();
            inner.fanout.publish(Change::Mailbox { mailbox_id: id }).await;
        }
        Ok(false) => {}
        Err(e) => warn!(error = ?e, "cannot record the mailbox status"),
    }
}

/// Why a mailbox whose saved credentials no longer open needs its owner: the server is not
/// to blame.
const UNREADABLE_CREDENTIALS: &str =
    "the gateway cannot read the saved credentials (its secret key changed without `concierge rekey`); connect the mailbox again";

/// Failures in a row after which the history says the sync is failing: a session the server
/// closed once (Dovecot does so when it renumbers a folder) and that the next try recovers
/// is not worth a line; an outage is.
const FAILING_AFTER: u32 = 2;

/// Adds a line to the mailbox's history; a failure to is logged, not the sync's failure.
async fn add_history(inner: &Inner, id: MailboxId, kind: MailboxEventKind, detail: Option<&str>) {
    if let Err(e) = store::record_event(&inner.db, id, kind, detail, Utc::now()).await {
        warn!(error = ?e, "cannot add to the mailbox's history");
    }
}

async fn needs_reauth(inner: &Inner, id: MailboxId, reason: &str, error: &str) {
    set_status(inner, id, MailboxStatus::NeedsReauth, reason, Some(error)).await;
    add_history(inner, id, MailboxEventKind::NeedsReauth, Some(reason)).await;
    let Ok(Some(mailbox)) = store::find_mailbox(&inner.db, id).await else { return };
    let language = language_of(inner, mailbox.account_id).await;
    let notice = Notice {
        assigned_to_me: true,
        dedupe_key: Some(format!("mailbox-reauth:{}:{}", id.0, mailbox.status_changed_at.timestamp())),
        ..Notice::new(
            mailbox.account_id,
            NotificationEvent::MailboxError,
            text(&language, "mailbox-reauth-title", &[("address", &mailbox.email_address)]),
            text(&language, "mailbox-reauth-body", &[]),
        )
    };
    if let Err(e) = inner.notifications.notify(notice).await {
        warn!(error = ?e, "cannot notify a mailbox needing re-authorisation");
    }
}

#[async_trait::async_trait]
impl crate::accounts::credentials::MailboxCredentials for MailSync {
    async fn credentials(&self, mailbox_id: MailboxId) -> Result<concierge_connector_sdk::Credentials> {
        let mailbox = store::find_mailbox(&self.inner.db, mailbox_id).await?.ok_or(Error::NotFound("mailbox"))?;
        let connector = self.inner.registry.get(&mailbox.connector).cloned().ok_or(Error::NotFound("connector"))?;
        Ok(account_of(&self.inner, &mailbox, &connector).await?.credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_waits_the_base_and_later_ones_the_settings_cap() {
        let s = SyncSettings { backoff_base: Duration::from_secs(5), backoff_max: Duration::from_secs(300), ..SyncSettings::default() };
        let first = backoff(&s, 0);
        assert!(first >= Duration::from_secs(5) && first <= Duration::from_secs(6), "{first:?}");
        let late = backoff(&s, 25);
        assert!(late >= Duration::from_secs(300) && late <= Duration::from_secs(360), "{late:?}");
    }
}
