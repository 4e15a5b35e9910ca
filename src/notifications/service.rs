//! Notification rules: each user's preference matrix, audio and daily-summary settings, and
//! turning domain events into notifications on the channels the matrix allows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use concierge_connector_sdk::OutboundPolicy;
use tokio::sync::Notify;
use uuid::Uuid;

use super::model::{
    AudioAlerts, CHANNELS, EVENTS, NotificationChannel, NotificationEvent, SummarySchedule, parse_time_of_day, parse_time_zone,
};
use super::store::{self, Notification, PreferenceRow};
use super::{delivery, digest, outbox};
use crate::clock::SharedClock;
use crate::db::StoredEnum as _;
use crate::db::{Db, Tx};
use crate::error::{Checks, Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub event: NotificationEvent,
    pub channel: NotificationChannel,
    pub enabled: bool,
    /// Whether the user left it at its default.
    pub is_default: bool,
}

pub struct Preferences {
    pub matrix: Vec<Cell>,
    pub audio: AudioAlerts,
    pub summary: SummarySchedule,
}

/// A daily-summary change as sent: each part optional.
pub struct SummaryChange {
    pub enabled: Option<bool>,
    pub delivery_time: Option<String>,
    /// A zone for the summary alone.
    pub time_zone: Option<String>,
    /// Back to the profile's zone.
    pub follow_profile_time_zone: Option<bool>,
}

/// A domain event addressed to one user.
pub struct Notice {
    pub account_id: AccountId,
    pub event: NotificationEvent,
    pub title: String,
    pub body: String,
    /// Whether it concerns a conversation assigned to (or a mailbox owned by) the user.
    pub assigned_to_me: bool,
    /// Names the domain event, so one that is repeated (a producer's retry, a mail fetched
    /// twice) notifies once.
    pub dedupe_key: Option<String>,
    /// Who it is about (a contact's name or address), for grouping in the daily summary.
    pub contact: Option<String>,
}

impl Notice {
    pub fn new(account_id: AccountId, event: NotificationEvent, title: impl Into<String>, body: impl Into<String>) -> Notice {
        Notice { account_id, event, title: title.into(), body: body.into(), assigned_to_me: false, dedupe_key: None, contact: None }
    }
}

/// Where one user wants one kind of notice, read before the transaction that records it
/// ([`NotificationService::routing`]).
#[derive(Clone, Debug)]
pub struct Routing {
    account_id: AccountId,
    event: NotificationEvent,
    in_app: bool,
    email: bool,
    push: bool,
    /// The browsers push goes to: none when push is off or alerts are held.
    browsers: Vec<Uuid>,
    /// BUSY with alerts held: no push, no sound.
    held: bool,
    audio: AudioAlerts,
}

impl Routing {
    /// Whether no channel wants it.
    pub fn is_silent(&self) -> bool {
        !(self.in_app || self.email || self.push)
    }
}

/// A notification recorded inside a transaction, to announce once it commits.
/// What the live `notifications` subscribers of a process share for one notification
/// ([`crate::fanout::Loads`]): it, or why it could not be read.
pub type LiveLoad = std::result::Result<Option<Notification>, async_graphql::Error>;

#[derive(Clone, Debug)]
pub struct Queued {
    pub notification: Notification,
    /// Email and push jobs queued with it.
    pub jobs: usize,
}

/// Wakes the background workers when there is work for them.
#[derive(Clone, Default)]
pub struct Wakers {
    /// The delivery worker: a job was queued.
    pub delivery: Arc<Notify>,
    /// The daily-summary scheduler: someone's schedule changed.
    pub schedule: Arc<Notify>,
}

#[derive(Clone)]
pub struct NotificationService {
    db: Db,
    fanout: Fanout,
    clock: SharedClock,
    wakers: Wakers,
    /// How long high-volume emails wait for company.
    batch_window: Duration,
    /// Which addresses push endpoints may reach (`CONCIERGE_OUTBOUND_ALLOW`).
    outbound: OutboundPolicy,
    /// Whether the user holds alerts now (availability answers).
    hold: Arc<dyn super::sources::AlertHold>,
}

impl NotificationService {
    pub fn new(
        db: Db,
        fanout: Fanout,
        clock: SharedClock,
        wakers: Wakers,
        batch_window: Duration,
        outbound: OutboundPolicy,
        hold: Arc<dyn super::sources::AlertHold>,
    ) -> Self {
        NotificationService { db, fanout, clock, wakers, batch_window, outbound, hold }
    }

    pub async fn preferences(&self, account_id: AccountId) -> Result<Preferences> {
        let matrix = self.matrix(account_id).await?;
        let (audio, summary) = self.settings(account_id).await?;
        Ok(Preferences { matrix, audio, summary })
    }

    /// Every cell, the user's overrides over the defaults.
    async fn matrix(&self, account_id: AccountId) -> Result<Vec<Cell>> {
        let overrides: HashMap<(String, String), bool> =
            store::overrides(&self.db, account_id).await?.into_iter().map(|(e, c, on)| ((e, c), on)).collect();
        Ok(EVENTS
            .iter()
            .flat_map(|&event| CHANNELS.iter().map(move |&channel| (event, channel)))
            .map(|(event, channel)| match overrides.get(&(event.stored_name().to_owned(), channel.stored_name().to_owned())) {
                Some(&enabled) => Cell { event, channel, enabled, is_default: enabled == event.default_for(channel) },
                None => Cell { event, channel, enabled: event.default_for(channel), is_default: true },
            })
            .collect())
    }

    /// The audio choice and the daily-summary schedule (defaults when never set).
    async fn settings(&self, account_id: AccountId) -> Result<(AudioAlerts, SummarySchedule)> {
        let profile_zone = crate::identity::store::time_zone(&self.db, account_id).await?;
        Ok(match store::preference(&self.db, account_id).await? {
            Some(row) => {
                let own = parse_time_zone("timeZone", &row.summary_time_zone).unwrap_or(chrono_tz::Tz::UTC);
                let follows_profile = !row.summary_time_zone_overridden;
                (
                    AudioAlerts::from_stored(&row.audio).unwrap_or_default(),
                    SummarySchedule {
                        enabled: row.summary_enabled,
                        time: parse_time_of_day("deliveryTime", &row.summary_time).unwrap_or(SummarySchedule::default().time),
                        time_zone: if follows_profile { profile_zone.unwrap_or(own) } else { own },
                        follows_profile,
                    },
                )
            }
            None => (
                AudioAlerts::default(),
                SummarySchedule { time_zone: profile_zone.unwrap_or(chrono_tz::Tz::UTC), ..SummarySchedule::default() },
            ),
        })
    }

    /// After the profile's time zone changed: the next summary is due at its time in the
    /// zone now in effect.
    pub async fn reschedule_summary(&self, account_id: AccountId) -> Result<()> {
        let (_, schedule) = self.settings(account_id).await?;
        let next = schedule.enabled.then(|| digest::next_due(schedule.time, schedule.time_zone, self.clock.now()));
        store::set_summary_next(&self.db, account_id, next).await?;
        self.wakers.schedule.notify_one();
        self.fanout.publish(Change::Account { account_id }).await;
        Ok(())
    }

    /// Sets any cells at once, in one transaction.
    pub async fn update_matrix(&self, viewer: &Viewer, changes: &[(NotificationEvent, NotificationChannel, bool)]) -> Result<Preferences> {
        self.update_matrix_of(viewer.account_id(), changes).await
    }

    async fn update_matrix_of(&self, id: AccountId, changes: &[(NotificationEvent, NotificationChannel, bool)]) -> Result<Preferences> {
        if changes.len() > EVENTS.len() * CHANNELS.len() {
            return Err(Error::invalid("changes", "more changes than the matrix has cells"));
        }
        let mut tx = self.db.begin().await?;
        for (event, channel, enabled) in changes {
            store::set_override(&mut tx, id, event.stored_name(), channel.stored_name(), *enabled).await?;
        }
        tx.commit().await?;
        // A settings page open elsewhere hears of it through `meUpdated`.
        self.fanout.publish(Change::Account { account_id: id }).await;
        self.preferences(id).await
    }

    /// Changes the audio choice and the daily summary; every part is checked first.
    pub async fn update_preferences(
        &self,
        viewer: &Viewer,
        audio: Option<AudioAlerts>,
        summary: Option<SummaryChange>,
    ) -> Result<Preferences> {
        self.update_preferences_of(viewer.account_id(), audio, summary).await
    }

    /// What an email's signed one-click link turns off: the email channel of its kinds, or
    /// the daily summary. Doing it twice changes nothing more.
    pub async fn unsubscribe(&self, account_id: AccountId, what: &super::links::Unsubscribe) -> Result<()> {
        match what {
            super::links::Unsubscribe::Events(events) => {
                let changes: Vec<_> = events.iter().map(|e| (*e, NotificationChannel::Email, false)).collect();
                self.update_matrix_of(account_id, &changes).await?;
            }
            super::links::Unsubscribe::Digest => {
                let off = SummaryChange { enabled: Some(false), delivery_time: None, time_zone: None, follow_profile_time_zone: None };
                self.update_preferences_of(account_id, None, Some(off)).await?;
            }
        }
        tracing::info!(account_id = %account_id, ?what, "emails turned off from a link");
        Ok(())
    }

    async fn update_preferences_of(
        &self,
        id: AccountId,
        audio: Option<AudioAlerts>,
        summary: Option<SummaryChange>,
    ) -> Result<Preferences> {
        let (current_audio, mut schedule) = self.settings(id).await?;
        if let Some(change) = summary {
            // Both refused fields are reported at once.
            let mut checks = Checks::default();
            let time = change.delivery_time.and_then(|t| checks.take(parse_time_of_day("deliveryTime", &t)));
            let time_zone = change.time_zone.and_then(|z| checks.take(parse_time_zone("timeZone", &z)));
            if time_zone.is_some() && change.follow_profile_time_zone == Some(true) {
                checks.check(Err(Error::invalid("followProfileTimeZone", "set a time zone or follow the profile's, not both")));
            }
            checks.finish()?;
            schedule.time = time.unwrap_or(schedule.time);
            if let Some(zone) = time_zone {
                schedule.time_zone = zone;
                schedule.follows_profile = false;
            }
            if change.follow_profile_time_zone == Some(true) {
                schedule.follows_profile = true;
                if let Some(zone) = crate::identity::store::time_zone(&self.db, id).await? {
                    schedule.time_zone = zone;
                }
            }
            if let Some(on) = change.enabled {
                schedule.enabled = on;
            }
        }
        let row = PreferenceRow {
            audio: audio.unwrap_or(current_audio).stored_name().to_owned(),
            summary_enabled: schedule.enabled,
            summary_time: schedule.time.format("%H:%M").to_string(),
            summary_time_zone: schedule.time_zone.name().to_owned(),
            summary_time_zone_overridden: !schedule.follows_profile,
        };
        store::set_preference(&self.db, id, &row).await?;
        let next = schedule.enabled.then(|| digest::next_due(schedule.time, schedule.time_zone, self.clock.now()));
        store::set_summary_next(&self.db, id, next).await?;
        self.wakers.schedule.notify_one();
        self.fanout.publish(Change::Account { account_id: id }).await;
        self.preferences(id).await
    }

    /// Records a notice and queues it on the channels the user's matrix allows: in-app ones
    /// are pushed live to the user's open clients at once; email and push become jobs in the
    /// outbox, in the same transaction. Returns the recorded notification, or None when no
    /// channel wants it or the same notice was recorded before.
    pub async fn notify(&self, notice: Notice) -> Result<Option<Notification>> {
        let routing = self.routing(notice.account_id, notice.event).await?;
        if routing.is_silent() {
            return Ok(None);
        }
        let mut tx = self.db.begin().await?;
        let queued = self.record(&mut tx, &routing, notice).await?;
        tx.commit().await?;
        let Some(queued) = queued else { return Ok(None) };
        self.announce(std::slice::from_ref(&queued)).await;
        Ok(Some(queued.notification))
    }

    /// What the user's settings say about one kind of notice now: the channels, whether
    /// alerts are held, their browsers and their audio choice. Read before the transaction
    /// that records the notice ([`Self::record`]), so that transaction stays short.
    pub async fn routing(&self, account_id: AccountId, event: NotificationEvent) -> Result<Routing> {
        let mut all = self.routings(&[account_id], event).await?;
        all.remove(&account_id).ok_or_else(|| Error::Internal(anyhow::anyhow!("no routing for the account")))
    }

    /// [`Self::routing`] for several users at once, in four statements whatever their number.
    pub async fn routings(&self, accounts: &[AccountId], event: NotificationEvent) -> Result<HashMap<AccountId, Routing>> {
        let mut routings: HashMap<AccountId, Routing> = accounts
            .iter()
            .map(|&account_id| {
                let default = |channel| event.default_for(channel);
                let routing = Routing {
                    account_id,
                    event,
                    in_app: default(NotificationChannel::InApp),
                    email: default(NotificationChannel::Email),
                    push: default(NotificationChannel::Push),
                    browsers: Vec::new(),
                    held: false,
                    audio: AudioAlerts::default(),
                };
                (account_id, routing)
            })
            .collect();
        for (account_id, channel, enabled) in store::overrides_for(&self.db, accounts, event.stored_name()).await? {
            let Some(r) = routings.get_mut(&account_id) else { continue };
            match NotificationChannel::from_stored(&channel) {
                Some(NotificationChannel::InApp) => r.in_app = enabled,
                Some(NotificationChannel::Email) => r.email = enabled,
                Some(NotificationChannel::Push) => r.push = enabled,
                None => {}
            }
        }
        let heard: Vec<AccountId> = routings.values().filter(|r| !r.is_silent()).map(|r| r.account_id).collect();
        if heard.is_empty() {
            return Ok(routings);
        }
        // BUSY with alerts held: no push and no sound; in-app and email still arrive.
        for account_id in self.hold.holding_alerts(&heard).await? {
            if let Some(r) = routings.get_mut(&account_id) {
                r.held = true;
            }
        }
        let pushed: Vec<AccountId> = heard.iter().copied().filter(|a| routings.get(a).is_some_and(|r| r.push && !r.held)).collect();
        if !pushed.is_empty() {
            for (account_id, browser) in store::browsers_of(&self.db, &pushed).await? {
                if let Some(r) = routings.get_mut(&account_id) {
                    r.browsers.push(browser);
                }
            }
        }
        for (account_id, audio) in store::audio_of(&self.db, &heard).await? {
            if let Some(r) = routings.get_mut(&account_id) {
                r.audio = AudioAlerts::from_stored(&audio).unwrap_or_default();
            }
        }
        Ok(routings)
    }

    /// Records `notice` inside `tx`, the transaction of what caused it, with its email and
    /// push jobs, as `routing` (read for the same account and event) says. None when no
    /// channel wants it or the same notice was recorded before. Once `tx` commits, pass what
    /// it returned to [`Self::announce`].
    pub async fn record(&self, tx: &mut Tx, routing: &Routing, notice: Notice) -> Result<Option<Queued>> {
        let Some(prepared) = self.prepare(routing, notice, self.clock.now()) else { return Ok(None) };
        if !store::insert_notification(tx, &prepared.notification).await? {
            return Ok(None);
        }
        let jobs = prepared.jobs();
        for job in &jobs {
            outbox::enqueue(tx, job).await?;
        }
        Ok(Some(Queued { jobs: jobs.len(), notification: prepared.notification }))
    }

    /// [`Self::record`] for many notices at once, in a few multi-row statements whatever
    /// their number: the notifications, then the jobs of those recorded now. Returns what was
    /// recorded, in the order of `notices`.
    pub async fn record_many(&self, tx: &mut Tx, notices: Vec<(&Routing, Notice)>) -> Result<Vec<Queued>> {
        let now = self.clock.now();
        let prepared: Vec<Prepared> = notices.into_iter().filter_map(|(routing, notice)| self.prepare(routing, notice, now)).collect();
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Notification> = prepared.iter().map(|p| p.notification.clone()).collect();
        let inserted: std::collections::HashSet<Uuid> = store::insert_notifications(tx, &rows).await?.into_iter().collect();
        let recorded: Vec<Prepared> = prepared.into_iter().filter(|p| inserted.contains(&p.notification.notification_id)).collect();
        let counts: Vec<usize> = recorded.iter().map(|p| p.jobs.len()).collect();
        let jobs: Vec<outbox::NewJob<'_>> = recorded.iter().flat_map(Prepared::jobs).collect();
        store::enqueue_jobs(tx, &jobs).await?;
        drop(jobs);
        Ok(recorded.into_iter().zip(counts).map(|(p, jobs)| Queued { notification: p.notification, jobs }).collect())
    }

    /// The notification `notice` becomes and the jobs that go with it, as `routing` says;
    /// None when no channel wants it. Shared by [`Self::record`] and [`Self::record_many`].
    fn prepare(&self, routing: &Routing, notice: Notice, now: chrono::DateTime<chrono::Utc>) -> Option<Prepared> {
        debug_assert!(routing.account_id == notice.account_id && routing.event == notice.event);
        if routing.is_silent() {
            return None;
        }
        let notification = Notification {
            notification_id: Uuid::now_v7(),
            account_id: notice.account_id,
            event: notice.event.stored_name().to_owned(),
            title: notice.title,
            body: notice.body,
            audible: !routing.held && routing.audio.audible(notice.event, notice.assigned_to_me),
            // As the store keeps it (microseconds), so the copy live subscribers get from
            // the writer is the row they would read.
            created_at: chrono::SubsecRound::trunc_subsecs(now, 6),
            read_at: None,
            in_app: routing.in_app,
            dedupe_key: notice.dedupe_key,
            contact: notice.contact,
        };
        let id = notification.notification_id;
        let batchable = notice.event.high_volume();
        let mut jobs = Vec::new();
        if routing.email {
            let run_after = delivery::first_run(now, batchable, self.batch_window);
            jobs.push(JobSpec { channel: outbox::EMAIL, push_subscription_id: None, key: format!("{id}:EMAIL"), batchable, run_after });
        }
        for b in &routing.browsers {
            jobs.push(JobSpec {
                channel: outbox::PUSH,
                push_subscription_id: Some(*b),
                key: format!("{id}:PUSH:{b}"),
                batchable: false,
                run_after: now,
            });
        }
        Some(Prepared { notification, jobs, now })
    }

    /// After the transaction that recorded them committed: in-app notifications go live to
    /// the user's open clients, and the delivery worker wakes for the jobs.
    pub async fn announce(&self, queued: &[Queued]) {
        // The live subscribers in this process get the notification as written, not read back.
        let changes: Vec<(Change, Uuid, LiveLoad)> = queued
            .iter()
            .filter(|q| q.notification.in_app)
            .map(|q| {
                let n = &q.notification;
                let change = Change::Notification { account_id: n.account_id, notification_id: n.notification_id };
                (change, n.notification_id, Ok(Some(n.clone())))
            })
            .collect();
        if !changes.is_empty() {
            self.fanout.publish_loaded(&changes).await;
        }
        if queued.iter().any(|q| q.jobs > 0) {
            self.wakers.delivery.notify_one();
        }
    }

    /// The outbox jobs queued for the account, oldest first (for tests and operators).
    pub async fn deliveries(&self, account_id: AccountId) -> Result<Vec<outbox::JobState>> {
        Ok(outbox::jobs_of(&self.db, account_id).await?)
    }

    pub async fn find(&self, account_id: AccountId, id: Uuid) -> Result<Option<Notification>> {
        Ok(store::find_notification(&self.db, account_id, id).await?)
    }

    /// A notification a live `notifications` subscriber of `account_id` heard of: read once in
    /// this process for all its listeners, or not at all when it was written here.
    pub async fn live(&self, account_id: AccountId, id: Uuid) -> LiveLoad {
        let load = async { self.find(account_id, id).await.map_err(async_graphql::Error::from) };
        let found = self.fanout.load_once(id, load).await;
        found.map(|n| n.filter(|n| n.account_id == account_id))
    }

    /// One page of the in-app list: `limit + 1` rows older than `cursor` newest first, or
    /// (`newer`) newer than it oldest first.
    pub async fn page(
        &self,
        account_id: AccountId,
        cursor: Option<Uuid>,
        newer: bool,
        unread_only: bool,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        Ok(store::notifications_page(&self.db, account_id, cursor, newer, unread_only, limit as i64 + 1).await?)
    }

    pub async fn unread_count(&self, account_id: AccountId) -> Result<i64> {
        Ok(store::unread_count(&self.db, account_id).await?)
    }

    pub async fn mark_read(&self, viewer: &Viewer, ids: &[Uuid]) -> Result<u64> {
        if ids.len() > 500 {
            return Err(Error::invalid("ids", "at most 500 at once"));
        }
        Ok(store::mark_read(&self.db, viewer.account_id(), ids, self.clock.now()).await?)
    }

    /// Marks read the account's notices about something dealt with elsewhere (their dedupe
    /// keys start with `prefix`).
    pub async fn settled(&self, account_id: AccountId, prefix: &str) -> Result<u64> {
        Ok(store::mark_read_by_key_prefix(&self.db, account_id, prefix, self.clock.now()).await?)
    }

    pub async fn mark_all_read(&self, viewer: &Viewer) -> Result<u64> {
        Ok(store::mark_all_read(&self.db, viewer.account_id(), self.clock.now()).await?)
    }

    /// Registers a browser's Web Push subscription. The endpoint must be https (plain http
    /// only to this machine, for local tests) and resolve only to addresses the outbound
    /// policy allows (checked now, without connecting, and again at every send, so a name
    /// that does not resolve yet is accepted); the keys are
    /// the browser's P-256 public key (65 bytes, uncompressed) and its 16-byte auth secret,
    /// base64url as the Push API gives them.
    pub async fn register_push(&self, viewer: &Viewer, endpoint: &str, p256dh: &str, auth: &str) -> Result<()> {
        let endpoint =
            crate::outbound::check_rechecked(endpoint, &self.outbound).await.map_err(|why| Error::invalid("endpoint", why))?.to_string();
        // A key that is not a point on the curve could never be encrypted to: refused now,
        // not at the first send.
        let p256dh = decode_key("p256dh", p256dh, 65).and_then(|k| {
            let on_curve = k[0] == 4 && web_push_native::p256::PublicKey::from_sec1_bytes(&k).is_ok();
            if on_curve { Ok(k) } else { Err(Error::invalid("p256dh", "not an uncompressed P-256 public key (a point on the curve)")) }
        })?;
        let auth = decode_key("auth", auth, 16)?;
        store::upsert_push_subscription(
            &self.db,
            &store::NewPushSubscription {
                id: Uuid::now_v7(),
                account_id: viewer.account_id(),
                endpoint: &endpoint,
                p256dh: &p256dh,
                auth: &auth,
                now: self.clock.now(),
            },
        )
        .await?;
        Ok(())
    }

    pub async fn unregister_push(&self, viewer: &Viewer, endpoint: &str) -> Result<()> {
        if store::delete_push_subscription(&self.db, viewer.account_id(), endpoint.trim()).await? {
            Ok(())
        } else {
            Err(Error::NotFound("push subscription"))
        }
    }

    /// The viewer's registered browsers, newest first.
    pub async fn push_devices(&self, viewer: &Viewer) -> Result<Vec<store::PushDevice>> {
        Ok(store::push_devices(&self.db, viewer.account_id()).await?)
    }

    /// Removes one of the viewer's browsers (another account's is NOT_FOUND).
    pub async fn remove_push_device(&self, viewer: &Viewer, id: Uuid) -> Result<()> {
        if store::delete_push_device(&self.db, viewer.account_id(), id).await? { Ok(()) } else { Err(Error::NotFound("push subscription")) }
    }

    pub async fn push_subscription_count(&self, account_id: AccountId) -> Result<i64> {
        Ok(store::count_push_subscriptions(&self.db, account_id).await?)
    }
}

/// A notice turned into its notification and jobs, not yet written.
struct Prepared {
    notification: Notification,
    jobs: Vec<JobSpec>,
    now: chrono::DateTime<chrono::Utc>,
}

/// One email or push job of a [`Prepared`] notice.
struct JobSpec {
    channel: &'static str,
    push_subscription_id: Option<Uuid>,
    key: String,
    batchable: bool,
    run_after: chrono::DateTime<chrono::Utc>,
}

impl Prepared {
    /// Its jobs, as the outbox queues them.
    fn jobs(&self) -> Vec<outbox::NewJob<'_>> {
        self.jobs
            .iter()
            .map(|j| outbox::NewJob {
                account_id: self.notification.account_id,
                channel: j.channel,
                kind: outbox::NOTIFICATION,
                notification_id: Some(self.notification.notification_id),
                push_subscription_id: j.push_subscription_id,
                payload: "{}",
                idempotency_key: &j.key,
                batchable: j.batchable,
                run_after: j.run_after,
                now: self.now,
            })
            .collect()
    }
}

fn decode_key(field: &'static str, raw: &str, len: usize) -> Result<Vec<u8>> {
    let trimmed = raw.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed).map_err(|_| Error::invalid(field, "not base64url"))?;
    if bytes.len() != len {
        return Err(Error::invalid(field, format!("must be {len} bytes")));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_decode_to_their_size() {
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(decode_key("p256dh", &key, 65).unwrap().len(), 65);
        assert!(decode_key("p256dh", "%%%", 65).is_err());
        assert!(decode_key("auth", &key, 16).is_err());
    }
}
