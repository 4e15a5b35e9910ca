//! Fan-out of committed changes to live subscribers.
//!
//! Subscribers listen to a [`Topic`] (a user, a workspace's activity, a mailbox). Each topic that
//! has listeners in this process has one bounded `broadcast` channel, so publishing is one
//! send per topic however many clients listen, a slow client never slows the others (it
//! lags instead, and is told), and memory stays bounded. Only ids travel: subscribers reload
//! what they show from the store, once per change in each process ([`Loads`]), except in the
//! process that wrote it, which hands its listeners the row it has in hand
//! ([`Fanout::publish_loaded`]).
//!
//! How a change reaches the other gateway processes is a [`Carrier`]: in-process only on
//! SQLite (one process), PostgreSQL `NOTIFY` otherwise. Resolvers see neither: they call
//! [`Fanout::publish`] and [`Fanout::subscribe`].

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, broadcast};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;

use crate::activity::model::EventId;
use crate::contacts::model::ContactId;
use crate::db::{Db, Pool};
use crate::identity::model::AccountId;
use crate::mailboxes::model::MailboxId;
use crate::workspace::model::WorkspaceId;

/// Something committed that live clients may need to see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Change {
    /// The account's profile, status or memberships changed.
    Account { account_id: AccountId },
    /// Some of the account's credentials ended (log-out, session or token revocation,
    /// password change): open connections re-check theirs.
    Sessions { account_id: AccountId },
    /// A new in-app notification for the account.
    Notification { account_id: AccountId, notification_id: uuid::Uuid },
    /// An activity event was recorded in the workspace (on this contact, if any).
    Activity { workspace_id: WorkspaceId, event_id: EventId, contact_id: Option<ContactId> },
    /// The account's presence (shown status) may have changed; heard by a workspace it
    /// belongs to.
    Presence { workspace_id: WorkspaceId, account_id: AccountId },
    /// A member's membership of the workspace changed (deactivated, reactivated): live
    /// subscriptions on the workspace re-check their viewer's access, so a member who lost
    /// it stops hearing at once.
    Membership { workspace_id: WorkspaceId, account_id: AccountId },
    /// The mailbox's status, counts or health changed.
    Mailbox { mailbox_id: MailboxId },
    /// The mailbox's sync recorded `done` of the `total` messages it found to record.
    SyncProgress { mailbox_id: MailboxId, done: u64, total: u64 },
}

impl Change {
    /// The topics whose listeners hear this change.
    pub fn topic(&self) -> Topic {
        match self {
            Change::Account { account_id } | Change::Sessions { account_id } | Change::Notification { account_id, .. } => {
                Topic::Account(*account_id)
            }
            Change::Activity { workspace_id, .. } | Change::Presence { workspace_id, .. } | Change::Membership { workspace_id, .. } => {
                Topic::Workspace(*workspace_id)
            }
            Change::Mailbox { mailbox_id } | Change::SyncProgress { mailbox_id, .. } => Topic::Mailbox(*mailbox_id),
        }
    }
}

/// What a subscriber listens to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everything about one user: profile, credentials, notifications.
    Account(AccountId),
    /// A workspace's activity and its members' presence.
    Workspace(WorkspaceId),
    /// One mailbox's status and sync progress.
    Mailbox(MailboxId),
}

/// Changes buffered per topic before its slowest listener counts as lagging. A lagging
/// listener skips ahead and is told how many changes it missed.
const TOPIC_CAPACITY: usize = 32;

/// The in-process side: one broadcast channel per topic that has listeners.
#[derive(Default)]
pub struct Topics {
    channels: Mutex<HashMap<Topic, broadcast::Sender<Change>>>,
}

impl Topics {
    pub fn subscribe(self: &Arc<Self>, topic: Topic) -> TopicStream {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
            channels.entry(topic).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0).subscribe()
        };
        TopicStream { inner: Some(BroadcastStream::new(receiver)), topic, topics: self.clone() }
    }

    /// Hands a change to this process's listeners of its topic (none: nothing to do).
    pub fn dispatch(&self, change: Change) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = channels.get(&change.topic()) {
            let _ = sender.send(change);
        }
    }

    /// How many listeners this process has for `topic`.
    pub fn listeners(&self, topic: Topic) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.get(&topic).map_or(0, |sender| sender.receiver_count())
    }

    /// Topics with at least one listener in this process.
    pub fn len(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn release(&self, topic: Topic) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if channels.get(&topic).is_some_and(|s| s.receiver_count() == 0) {
            channels.remove(&topic);
        }
    }
}

/// One listener's stream of a topic's changes. `Err(Lagged(n))` means `n` changes were
/// skipped because this listener fell behind. Dropping it frees the topic's channel when it
/// was the last listener.
pub struct TopicStream {
    inner: Option<BroadcastStream<Change>>,
    topic: Topic,
    topics: Arc<Topics>,
}

/// A listener fell behind and `0` changes were dropped for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl Stream for TopicStream {
    type Item = Result<Change, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        Pin::new(inner).poll_next(cx).map(|item| item.map(|r| r.map_err(|BroadcastStreamRecvError::Lagged(n)| Lagged(n))))
    }
}

impl Drop for TopicStream {
    fn drop(&mut self) {
        // Drop the receiver first, so the count the release checks no longer includes it.
        self.inner.take();
        self.topics.release(self.topic);
    }
}

/// How a published change reaches every gateway process's [`Topics`].
#[async_trait::async_trait]
pub trait Carrier: Send + Sync {
    async fn carry(&self, change: &Change);

    /// Carries several changes, in order; a carrier with a round trip per change makes it one.
    async fn carry_all(&self, changes: &[Change]) {
        for change in changes {
            self.carry(change).await;
        }
    }
}

/// One process: straight to the local topics.
struct InProcess(Arc<Topics>);

#[async_trait::async_trait]
impl Carrier for InProcess {
    async fn carry(&self, change: &Change) {
        // Heard the moment it is published: the lag is nil, recorded so the metric exists.
        metrics::histogram!(FANOUT_LAG).record(0.0);
        self.0.dispatch(change.clone());
    }
}

/// Seconds from a change being published to this replica hearing it (a histogram).
pub const FANOUT_LAG: &str = "concierge_fanout_lag_seconds";

/// A change as it travels in a `NOTIFY` payload: the change's own fields, and when it was
/// published (microseconds since the epoch, on the publisher's clock), so each listener can
/// tell how late it hears it. A payload without the time (an older gateway's) still reads;
/// an older gateway reading this one ignores the field it does not know.
#[derive(Serialize, Deserialize)]
struct Notice {
    #[serde(flatten)]
    change: Change,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_us: Option<i64>,
}

impl Notice {
    fn encode(change: &Change, sent_us: i64) -> serde_json::Result<String> {
        serde_json::to_string(&Notice { change: change.clone(), sent_us: Some(sent_us) })
    }

    /// Seconds between publishing and `now_us`; a publisher's clock ahead of this one's
    /// reads as no lag rather than a negative one.
    fn lag_seconds(&self, now_us: i64) -> Option<f64> {
        self.sent_us.map(|sent| (now_us.saturating_sub(sent).max(0) as f64) / 1e6)
    }
}

/// Several processes on one PostgreSQL: `NOTIFY` on a channel every process `LISTEN`s to;
/// each process's listener task dispatches to its own topics (this one's included).
struct PgNotify {
    pool: sqlx::PgPool,
    channel: String,
}

#[async_trait::async_trait]
impl Carrier for PgNotify {
    async fn carry(&self, change: &Change) {
        let payload = match Notice::encode(change, chrono::Utc::now().timestamp_micros()) {
            Ok(p) => p,
            Err(e) => return tracing::error!(error = %e, "cannot encode a change"),
        };
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(&self.channel).bind(payload).execute(&self.pool).await {
            // The change is committed; only its live delivery is lost. Clients catch up on reload.
            tracing::warn!(error = %e, "cannot notify subscribers of a change");
        }
    }

    /// One statement for the lot: a mail sync's batch of a few hundred events would
    /// otherwise cost a round trip each.
    async fn carry_all(&self, changes: &[Change]) {
        let sent_us = chrono::Utc::now().timestamp_micros();
        let payloads: Vec<String> = changes.iter().filter_map(|c| Notice::encode(c, sent_us).ok()).collect();
        let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n")
            .bind(&self.channel)
            .bind(&payloads)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, changes = payloads.len(), "cannot notify subscribers of changes");
        }
    }
}

/// What listeners load for a change, loaded once in this process however many of them ask.
///
/// Every listener of a topic hears each change, and each usually reloads what the change names
/// (a notification, an activity event): with a user's five tabs, or a workspace's members all
/// watching its activity, that is the same read many times. The first to ask loads it; the
/// others wait for that load and share its result. Only the last [`Loads::KEPT`], and only
/// for [`Loads::KEPT_FOR`], are kept, so memory stays bounded (a message's event can be large)
/// and a listener far behind loads again.
pub struct Loads {
    recent: Mutex<RecentLoads>,
    kept_for: Duration,
}

impl Default for Loads {
    fn default() -> Self {
        Loads { recent: Mutex::default(), kept_for: Self::KEPT_FOR }
    }
}

type LoadKey = (TypeId, uuid::Uuid);

#[derive(Default)]
struct RecentLoads {
    /// Each an `Arc<OnceCell<V>>` for the `V` in its key.
    cells: HashMap<LoadKey, Arc<dyn Any + Send + Sync>>,
    /// Oldest first, with when each was asked for first.
    order: VecDeque<(LoadKey, Instant)>,
}

impl Loads {
    pub const KEPT: usize = 256;
    /// Long enough for every listener of a change to get to it.
    pub const KEPT_FOR: Duration = Duration::from_secs(10);

    /// `load`'s result for the thing with this `id`, shared with everyone who asks for a `V`
    /// with the same id while it is kept. Only for what is the same whoever asks: check the
    /// asker's access first.
    pub async fn once<V, F>(&self, id: uuid::Uuid, load: F) -> V
    where
        V: Clone + Send + Sync + 'static,
        F: Future<Output = V>,
    {
        let cell = self.cell::<V>((TypeId::of::<V>(), id));
        cell.get_or_init(|| load).await.clone()
    }

    /// What a load of the thing with this `id` would give, known already (the process that
    /// wrote it has it in hand): its listeners here need not read it back.
    pub fn put<V>(&self, id: uuid::Uuid, value: V)
    where
        V: Clone + Send + Sync + 'static,
    {
        // Loaded already: the value is the same.
        let _ = self.cell::<V>((TypeId::of::<V>(), id)).set(value);
    }

    fn cell<V: Send + Sync + 'static>(&self, key: LoadKey) -> Arc<OnceCell<V>> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&(oldest, at)) = recent.order.front() {
            if recent.order.len() <= Self::KEPT && now.duration_since(at) < self.kept_for {
                break;
            }
            recent.order.pop_front();
            recent.cells.remove(&oldest);
        }
        if let Some(cell) = recent.cells.get(&key).and_then(|c| c.clone().downcast::<OnceCell<V>>().ok()) {
            return cell;
        }
        let cell = Arc::new(OnceCell::new());
        if recent.cells.insert(key, cell.clone()).is_none() {
            recent.order.push_back((key, now));
        }
        if recent.order.len() > Self::KEPT
            && let Some((oldest, _)) = recent.order.pop_front()
        {
            recent.cells.remove(&oldest);
        }
        cell
    }
}

/// A new LISTEN connection on `channel`, tried every half second until one works.
async fn listen_again(pool: &sqlx::PgPool, channel: &str) -> sqlx::postgres::PgListener {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut listener) => match listener.listen(channel).await {
                Ok(()) => return listener,
                Err(e) => tracing::warn!(error = %e, "the change listener cannot listen yet"),
            },
            Err(e) => tracing::warn!(error = %e, "the change listener cannot connect yet"),
        }
    }
}

#[derive(Clone)]
pub struct Fanout {
    topics: Arc<Topics>,
    carrier: Arc<dyn Carrier>,
    loads: Arc<Loads>,
    /// Whether changes from other processes are heard: on PostgreSQL, while the LISTEN
    /// connection is up; always on SQLite (there are no other processes).
    hearing: Arc<AtomicBool>,
}

impl Fanout {
    /// Starts the fan-out. On PostgreSQL it listens on a channel named after the current
    /// schema, so deployments (and tests) sharing a database do not hear each other.
    pub async fn start(db: Db, stop: CancellationToken) -> anyhow::Result<Fanout> {
        let topics = Arc::new(Topics::default());
        let hearing = Arc::new(AtomicBool::new(false));
        let carrier: Arc<dyn Carrier> = match &db.pool {
            Pool::Sqlite(_) => {
                hearing.store(true, Ordering::Relaxed);
                Arc::new(InProcess(topics.clone()))
            }
            Pool::Postgres(pool) => {
                let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(pool).await?;
                let channel = format!("concierge_{schema}");
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(&channel).await?;
                hearing.store(true, Ordering::Relaxed);
                let (local, heard, listen_pool, channel_name) = (topics.clone(), hearing.clone(), pool.clone(), channel.clone());
                let closing = db.closing();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = closing.cancelled() => break,
                            // `try_recv` says when the connection was lost (`recv` would
                            // reconnect silently, changes sent meanwhile unheard).
                            msg = listener.try_recv() => match msg {
                                Ok(Some(n)) => match serde_json::from_str::<Notice>(n.payload()) {
                                    Ok(notice) => {
                                        if let Some(lag) = notice.lag_seconds(chrono::Utc::now().timestamp_micros()) {
                                            metrics::histogram!(FANOUT_LAG).record(lag);
                                        }
                                        local.dispatch(notice.change)
                                    }
                                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed change notification"),
                                },
                                // Not ready until a new connection listens again (`/readyz` says so).
                                lost => {
                                    heard.store(false, Ordering::Relaxed);
                                    let why = lost.err().map_or_else(|| "the connection closed".to_owned(), |e| e.to_string());
                                    tracing::warn!(error = %why, "change listener lost its connection; reconnecting");
                                    listener = tokio::select! {
                                        _ = stop.cancelled() => break,
                                        _ = closing.cancelled() => break,
                                        again = listen_again(&listen_pool, &channel_name) => again,
                                    };
                                    heard.store(true, Ordering::Relaxed);
                                    tracing::info!("change listener listening again");
                                }
                            },
                        }
                    }
                });
                Arc::new(PgNotify { pool: pool.clone(), channel })
            }
        };
        Ok(Fanout { topics, carrier, loads: Arc::default(), hearing })
    }

    /// Whether changes published by other processes reach this one's subscribers now (on
    /// PostgreSQL, the LISTEN connection is up).
    pub fn hearing(&self) -> bool {
        self.hearing.load(Ordering::Relaxed)
    }

    /// Announces a committed change. Call after the commit.
    pub async fn publish(&self, change: Change) {
        self.carrier.carry(&change).await;
    }

    /// Announces several committed changes, in order.
    pub async fn publish_all(&self, changes: &[Change]) {
        if !changes.is_empty() {
            self.carrier.carry_all(changes).await;
        }
    }

    pub fn subscribe(&self, topic: Topic) -> TopicStream {
        self.topics.subscribe(topic)
    }

    /// What a change names, loaded once for all its listeners in this process ([`Loads`]).
    pub async fn load_once<V, F>(&self, id: uuid::Uuid, load: F) -> V
    where
        V: Clone + Send + Sync + 'static,
        F: Future<Output = V>,
    {
        self.loads.once(id, load).await
    }

    /// Announces committed changes whose listeners in this process would each load what the
    /// change names: `loaded` gives it for each (in hand where it was written), so they load
    /// nothing. Listeners in other processes load it as usual.
    pub async fn publish_loaded<V>(&self, changes: &[(Change, uuid::Uuid, V)])
    where
        V: Clone + Send + Sync + 'static,
    {
        for (change, id, value) in changes {
            if self.topics.listeners(change.topic()) > 0 {
                self.loads.put(*id, value.clone());
            }
        }
        let changes: Vec<Change> = changes.iter().map(|(change, _, _)| change.clone()).collect();
        self.publish_all(&changes).await;
    }

    /// How many listeners this process has for `topic` (live subscriptions, connections
    /// watching their credentials).
    pub fn listeners(&self, topic: Topic) -> usize {
        self.topics.listeners(topic)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use uuid::Uuid;

    use super::*;

    fn account() -> AccountId {
        AccountId::new()
    }

    fn note(account_id: AccountId) -> Change {
        Change::Notification { account_id, notification_id: Uuid::now_v7() }
    }

    #[test]
    fn a_notice_carries_its_publish_time_and_reads_without_it() {
        let change = Change::Activity { workspace_id: WorkspaceId::new(), event_id: EventId(Uuid::now_v7()), contact_id: None };
        let encoded = Notice::encode(&change, 1_000_000).unwrap();
        // What an older gateway reads: the change itself, the extra field ignored.
        assert_eq!(serde_json::from_str::<Change>(&encoded).unwrap(), change);
        let notice: Notice = serde_json::from_str(&encoded).unwrap();
        assert_eq!(notice.change, change);
        assert_eq!(notice.lag_seconds(3_500_000), Some(2.5));
        assert_eq!(notice.lag_seconds(0), Some(0.0), "a publisher's clock ahead of ours is no negative lag");
        // What an older gateway sends: no time, no lag.
        let old: Notice = serde_json::from_str(&serde_json::to_string(&change).unwrap()).unwrap();
        assert_eq!(old.change, change);
        assert_eq!(old.lag_seconds(3_500_000), None);
    }

    #[tokio::test]
    async fn a_listener_hears_its_topic_and_no_other() {
        let topics = Arc::new(Topics::default());
        let (alice, bob) = (account(), account());
        let mut hers = topics.subscribe(Topic::Account(alice));
        let mut his = topics.subscribe(Topic::Account(bob));
        let change = note(alice);
        topics.dispatch(change.clone());
        assert_eq!(hers.next().await, Some(Ok(change)));
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), his.next()).await.is_err());
    }

    #[tokio::test]
    async fn every_listener_of_a_topic_hears_each_change() {
        let topics = Arc::new(Topics::default());
        let alice = account();
        let mut listeners: Vec<_> = (0..5).map(|_| topics.subscribe(Topic::Account(alice))).collect();
        assert_eq!(topics.len(), 1, "one channel per topic, not per listener");
        let change = note(alice);
        topics.dispatch(change.clone());
        for l in &mut listeners {
            assert_eq!(l.next().await, Some(Ok(change.clone())));
        }
    }

    #[tokio::test]
    async fn a_slow_listener_is_told_it_lagged_and_does_not_hold_back_the_others() {
        let topics = Arc::new(Topics::default());
        let alice = account();
        let mut slow = topics.subscribe(Topic::Account(alice));
        let mut fast = topics.subscribe(Topic::Account(alice));
        let sent: Vec<_> = (0..TOPIC_CAPACITY + 10).map(|_| note(alice)).collect();
        for c in &sent {
            topics.dispatch(c.clone());
            assert_eq!(fast.next().await, Some(Ok(c.clone())));
        }
        assert_eq!(slow.next().await, Some(Err(Lagged(10))));
        // It then goes on with what is still buffered.
        assert_eq!(slow.next().await, Some(Ok(sent[10].clone())));
    }

    #[tokio::test]
    async fn the_last_listener_leaving_frees_the_topic() {
        let topics = Arc::new(Topics::default());
        let alice = account();
        let a = topics.subscribe(Topic::Account(alice));
        let b = topics.subscribe(Topic::Account(alice));
        drop(a);
        assert_eq!(topics.len(), 1);
        drop(b);
        assert_eq!(topics.len(), 0);
        // Publishing to a topic nobody listens to is a no-op.
        topics.dispatch(note(alice));
        assert!(topics.is_empty());
    }

    #[tokio::test]
    async fn listeners_asking_for_the_same_thing_at_once_share_one_load() {
        let loads = Arc::new(Loads::default());
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let id = Uuid::now_v7();
        let askers = (0..50).map(|_| {
            let (loads, calls) = (loads.clone(), calls.clone());
            tokio::spawn(async move {
                loads
                    .once(id, async {
                        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        String::from("loaded")
                    })
                    .await
            })
        });
        for asker in askers.collect::<Vec<_>>() {
            assert_eq!(asker.await.unwrap(), "loaded");
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Another id, or another kind of value for the same id, is a load of its own.
        assert_eq!(loads.once(Uuid::now_v7(), async { String::from("other") }).await, "other");
        assert_eq!(loads.once(id, async { 7u32 }).await, 7);
    }

    #[tokio::test]
    async fn only_the_most_recent_loads_are_kept() {
        let loads = Loads::default();
        let first = Uuid::now_v7();
        assert_eq!(loads.once(first, async { 1u32 }).await, 1);
        assert_eq!(loads.once(first, async { 2u32 }).await, 1, "kept");
        for _ in 0..Loads::KEPT {
            loads.once(Uuid::now_v7(), async { 0u32 }).await;
        }
        assert_eq!(loads.once(first, async { 3u32 }).await, 3, "pushed out by newer ones, so loaded again");
        assert!(loads.recent.lock().unwrap().cells.len() <= Loads::KEPT);
    }

    #[tokio::test]
    async fn a_load_is_kept_only_for_a_while() {
        let loads = Loads { kept_for: std::time::Duration::from_millis(500), ..Loads::default() };
        let id = Uuid::now_v7();
        assert_eq!(loads.once(id, async { 1u32 }).await, 1);
        assert_eq!(loads.once(id, async { 2u32 }).await, 1, "still kept");
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(loads.once(id, async { 3u32 }).await, 3, "expired, so loaded again");
    }
}
