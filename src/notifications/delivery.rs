//! The delivery worker: takes due jobs from the outbox and sends them (email over SMTP, Web
//! Push), retrying failures with a growing delay. It sleeps until the next job is due or a
//! new one is queued in this process; jobs queued by another gateway process are picked up
//! at the latest after [`IDLE_RECHECK`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use super::digest;
use super::email;
use super::links::Unsubscribe;
use super::model::NotificationEvent;
use super::outbox::{self, DIGEST, EMAIL, Job, NOTIFICATION, PUSH};
use super::push::{PushOutcome, PushSender};
use super::store::{self, Notification};
use crate::clock::SharedClock;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::identity::model::Account;
use crate::jobs::claims;
use crate::jobs::retry::Retry;
use crate::jobs::worker::{self, Pace, Worker};
use crate::mail::{Mailer, SendFailure};

/// How long a claim on a job lasts unless renewed (every third of it, while the attempt
/// runs): a crashed worker's jobs come back to the others within this.
const LEASE: Duration = Duration::from_secs(15);
/// The longest the worker sleeps without looking at the queue: a job queued by another
/// process, or held by one that died, is looked at within this (and a held one is then taken
/// over the moment its claim runs out).
pub const IDLE_RECHECK: Duration = Duration::from_secs(10);
/// How many batchable emails one message carries at most.
const MAX_BATCH: i64 = 500;

#[derive(Clone)]
pub struct DeliverySettings {
    /// The first retry waits this long; each further one twice as long, up to an hour.
    pub retry_base: Duration,
    /// Attempts before a job is given up as FAILED.
    pub max_attempts: i32,
    /// Where links in emails point.
    /// Where the emails link.
    pub links: super::links::EmailLinks,
    /// What the daily summary says of the user's day.
    pub day: Arc<dyn super::sources::DaySources>,
    /// This process, as the holder of the jobs it attempts ([`crate::instance::Instance`]).
    pub process: Uuid,
}

#[derive(Clone)]
pub struct Delivery {
    db: Db,
    mailer: Mailer,
    push: PushSender,
    clock: SharedClock,
    settings: Arc<DeliverySettings>,
    wake: Arc<Notify>,
}

/// How one attempt ended.
enum Outcome {
    Sent,
    Skipped(&'static str),
    Retry(String),
    Failed(String),
}

impl Delivery {
    /// Where emails link, and the checker of their signed links.
    pub fn links(&self) -> &super::links::EmailLinks {
        &self.settings.links
    }

    pub fn new(db: Db, mailer: Mailer, push: PushSender, clock: SharedClock, settings: DeliverySettings, wake: Arc<Notify>) -> Self {
        Delivery { db, mailer, push, clock, settings: Arc::new(settings), wake }
    }

    /// The VAPID key browsers pass to `pushManager.subscribe` as `applicationServerKey`.
    pub fn push_public_key(&self) -> &str {
        self.push.vapid().public_key()
    }

    /// Works the queue until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let pace = Pace { clock: &*self.clock, wake: &self.wake, recheck: IDLE_RECHECK };
        worker::run(&self, pace, stop).await;
    }

    /// Sends every job due now; returns how many attempts were made.
    async fn run_due(&self) -> anyhow::Result<usize> {
        let mut attempts = 0;
        loop {
            let now = self.clock.now();
            let due = outbox::due(&self.db, now, 20).await?;
            if due.is_empty() {
                return Ok(attempts);
            }
            for job in due {
                if outbox::claim(&self.db, job.job_id, now, now + LEASE, self.settings.process).await? {
                    attempts += 1;
                    // One span per attempt, a trace of its own (not the caller's), with
                    // what it was and how it ended; never the message or the address.
                    let span = tracing::info_span!(
                        parent: None,
                        "notification_delivery",
                        job_id = %job.job_id,
                        channel = %job.channel,
                        kind = %job.kind,
                        attempt = job.attempts + 1,
                        outcome = tracing::field::Empty,
                    );
                    self.attempt_held(job).instrument(span).await?;
                }
            }
        }
    }

    /// [`Self::attempt`], renewing this process's claims every third of the lease meanwhile
    /// (a slow mail server does not let another process send the same job).
    async fn attempt_held(&self, job: Job) -> anyhow::Result<()> {
        let now = || self.clock.now();
        claims::while_held(&self.db, claims::DELIVERY_JOB, self.settings.process, LEASE, now, self.attempt(job)).await
    }

    async fn attempt(&self, job: Job) -> anyhow::Result<()> {
        let mut carried = vec![job.job_id];
        let outcome = match (job.channel.as_str(), job.kind.as_str()) {
            (EMAIL, NOTIFICATION) => self.email_notifications(&job, &mut carried).await?,
            (EMAIL, DIGEST) => self.email_digest(&job).await?,
            (PUSH, NOTIFICATION) => self.push_notification(&job).await?,
            _ => Outcome::Failed(format!("unknown job {}/{}", job.channel, job.kind)),
        };
        // A failure on the last allowed attempt is final.
        let outcome = match outcome {
            Outcome::Retry(why) if job.attempts + 1 >= self.settings.max_attempts => Outcome::Failed(why),
            other => other,
        };
        let now = self.clock.now();
        tracing::Span::current().record(
            "outcome",
            match &outcome {
                Outcome::Sent => "sent",
                Outcome::Skipped(_) => "skipped",
                Outcome::Retry(_) => "retrying",
                Outcome::Failed(_) => "failed",
            },
        );
        match outcome {
            Outcome::Sent => outbox::close(&self.db, &carried, "SENT", Some(job.job_id), None, now).await?,
            Outcome::Skipped(why) => outbox::close(&self.db, &carried, "SKIPPED", None, Some(why), now).await?,
            Outcome::Failed(why) => {
                tracing::warn!(job_id = %job.job_id, channel = %job.channel, attempts = job.attempts + 1, error = %why, "delivery failed for good");
                metrics::counter!("concierge_deliveries_failed_total", "channel" => job.channel.clone()).increment(1);
                outbox::close(&self.db, &carried, "FAILED", None, Some(&why), now).await?
            }
            Outcome::Retry(why) => {
                let at = now + backoff(self.settings.retry_base, job.attempts + 1);
                tracing::info!(job_id = %job.job_id, channel = %job.channel, error = %why, retry_at = %at, "delivery failed; will retry");
                outbox::retry_later(&self.db, &carried, at, &why).await?
            }
        }
        Ok(())
    }

    async fn account(&self, job: &Job) -> anyhow::Result<Option<Account>> {
        Ok(crate::identity::store::find_accounts(&self.db, &[job.account_id]).await?.pop())
    }

    /// One email for this job and, when it is a high-volume kind, every other such email of
    /// the user still waiting: a burst of messages becomes one email.
    async fn email_notifications(&self, job: &Job, carried: &mut Vec<Uuid>) -> anyhow::Result<Outcome> {
        let Some(account) = self.account(job).await? else { return Ok(Outcome::Skipped("account gone")) };
        if job.batchable {
            let now = self.clock.now();
            for mate in outbox::batch_mates(&self.db, job.account_id, job.job_id, now, MAX_BATCH).await? {
                if outbox::claim(&self.db, mate.job_id, now, now + LEASE, self.settings.process).await? {
                    carried.push(mate.job_id);
                }
            }
        }
        let ids = outbox::notification_ids(&self.db, carried).await?;
        let items = store::find_notifications(&self.db, job.account_id, &ids).await?;
        if items.is_empty() {
            return Ok(Outcome::Skipped("notification gone"));
        }
        let mut events: Vec<NotificationEvent> = items.iter().filter_map(|n| NotificationEvent::from_stored(&n.event)).collect();
        events.dedup();
        let links = self.settings.links.for_email(account.account_id, &Unsubscribe::Events(events));
        let mail = email::notifications(&account.language, &account.shown_name(), &items, &links);
        Ok(self.send_email(job, &account, &mail).await)
    }

    async fn email_digest(&self, job: &Job) -> anyhow::Result<Outcome> {
        let Some(account) = self.account(job).await? else { return Ok(Outcome::Skipped("account gone")) };
        let Some(plan) = digest::DigestJob::from_payload(&job.payload) else {
            return Ok(Outcome::Failed("unreadable digest job".into()));
        };
        let content = digest::gather(&self.db, self.settings.day.as_ref(), job.account_id, &plan).await?;
        if content.is_empty() {
            return Ok(Outcome::Skipped("nothing to report"));
        }
        let links = self.settings.links.for_email(account.account_id, &Unsubscribe::Digest);
        let mail = email::digest(&account.language, &account.shown_name(), &content, &links);
        Ok(self.send_email(job, &account, &mail).await)
    }

    async fn send_email(&self, job: &Job, account: &Account, mail: &crate::mail::Composed) -> Outcome {
        let message_id = format!("<{}@{}>", job.job_id, self.mailer.domain());
        match self.mailer.deliver(&account.email, &account.shown_name(), mail, &message_id).await {
            Ok(()) => Outcome::Sent,
            Err(SendFailure { permanent: true, reason }) => Outcome::Failed(reason),
            Err(SendFailure { permanent: false, reason }) => Outcome::Retry(reason),
        }
    }

    async fn push_notification(&self, job: &Job) -> anyhow::Result<Outcome> {
        let (Some(subscription_id), Some(notification_id)) = (job.push_subscription_id, job.notification_id) else {
            return Ok(Outcome::Failed("push job without a subscription".into()));
        };
        let Some(sub) = store::find_push_subscription(&self.db, subscription_id).await? else {
            return Ok(Outcome::Skipped("subscription gone"));
        };
        let Some(n) = store::find_notifications(&self.db, job.account_id, &[notification_id]).await?.pop() else {
            return Ok(Outcome::Skipped("notification gone"));
        };
        let payload = push_payload(&n);
        let urgency = if n.event == "SECURITY_EVENT" { "high" } else { "normal" };
        let outcome = self
            .push
            .send(
                &sub.endpoint,
                &sub.p256dh,
                &sub.auth,
                payload.as_bytes(),
                &job.job_id.to_string(),
                Duration::from_secs(24 * 3600),
                urgency,
            )
            .await;
        let now = self.clock.now();
        match &outcome {
            PushOutcome::Delivered => store::record_push_attempt(&self.db, subscription_id, true, now).await?,
            PushOutcome::Retry(_) | PushOutcome::Rejected(_) => store::record_push_attempt(&self.db, subscription_id, false, now).await?,
            PushOutcome::Gone => {}
        }
        Ok(match outcome {
            PushOutcome::Delivered => Outcome::Sent,
            PushOutcome::Gone => {
                // The browser unsubscribed or the push service forgot it: stop sending there.
                store::delete_push_subscription_by_id(&self.db, subscription_id).await?;
                Outcome::Skipped("subscription gone (404/410); removed")
            }
            PushOutcome::Retry(why) => Outcome::Retry(why),
            PushOutcome::Rejected(why) => Outcome::Failed(why),
        })
    }
}

/// What a push message carries: enough for the service worker to show it without a fetch.
/// Title and body are cut so the whole fits in one push record (under 4 KiB).
fn push_payload(n: &Notification) -> String {
    use crate::identity::service::truncate;
    serde_json::json!({
        "id": n.notification_id,
        "event": n.event,
        "title": truncate(&n.title, 200),
        "body": truncate(&n.body, 600),
        "audible": n.audible,
        "createdAt": n.created_at,
    })
    .to_string()
}

impl Worker for Delivery {
    const NAME: &'static str = "delivery";

    async fn run_once(&self) -> anyhow::Result<usize> {
        self.run_due().await
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        outbox::next_due(&self.db).await.ok().flatten()
    }
}

/// The wait after a job's `failures`-th failed attempt: the retry base doubling up to an
/// hour, jittered ([`Retry`]).
pub fn backoff(base: Duration, failures: i32) -> chrono::Duration {
    let wait = Retry::Doubling { base, cap: Duration::from_secs(3600) }.delay(Retry::failures(failures)).unwrap_or(base);
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
}

/// When a job queued now should first run.
pub fn first_run(now: DateTime<Utc>, batchable: bool, window: Duration) -> DateTime<Utc> {
    if batchable { now + chrono::Duration::from_std(window).unwrap_or_default() } else { now }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_doubling_schedule_up_to_an_hour() {
        let base = Duration::from_secs(30);
        let within =
            |d: chrono::Duration, planned: i64| d >= chrono::Duration::seconds(planned) && d <= chrono::Duration::seconds(planned * 6 / 5);
        assert!(within(backoff(base, 1), 30));
        assert!(within(backoff(base, 4), 240));
        assert!(within(backoff(base, 1000), 3600));
    }

    #[test]
    fn a_push_payload_fits_one_record_however_long_the_notice() {
        let n = Notification {
            notification_id: Uuid::now_v7(),
            account_id: crate::identity::model::AccountId::new(),
            event: "MESSAGE_RECEIVED".into(),
            title: "ü".repeat(5000),
            body: "😀".repeat(5000),
            audible: true,
            created_at: Utc::now(),
            read_at: None,
            in_app: true,
            dedupe_key: None,
            contact: None,
        };
        assert!(push_payload(&n).len() < 3993, "{}", push_payload(&n).len());
    }

    #[test]
    fn only_high_volume_emails_wait_for_company() {
        let now = Utc::now();
        assert_eq!(first_run(now, false, Duration::from_secs(60)), now);
        assert_eq!(first_run(now, true, Duration::from_secs(60)), now + chrono::Duration::seconds(60));
    }
}
