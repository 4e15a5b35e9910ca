//! The daily summary: when each user's is due, claiming a user's local day so it goes out
//! once however many gateway processes share the database, and what it reports.
//!
//! Each user's next due instant is stored (`preference.summary_next_at`), so the scheduler
//! sleeps until the earliest one instead of looking at everyone every second. A due summary
//! becomes an email job in the outbox, in the same transaction as the day's claim.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::email::DigestContent;
use super::model::{NotificationEvent, parse_time_of_day, parse_time_zone};
use super::outbox::{self, DIGEST, EMAIL, NewJob};
use super::sources::{AgendaKind, DaySources};
use super::store;
use crate::clock::SharedClock;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::identity::model::AccountId;
use crate::jobs::worker::{self, Pace, Worker};

/// A summary more than this late (the gateway was down at the time) is not sent: the next
/// day's comes instead.
const STALE_AFTER: chrono::Duration = chrono::Duration::hours(12);
/// The longest the scheduler sleeps without looking (catches changes other processes made:
/// a delivery time set through a replica that then died is still kept, at most this late).
const IDLE_RECHECK: Duration = Duration::from_secs(30);

/// The first instant after `after` at which the local clock in `zone` shows `time`.
///
/// On a day the clocks skip `time` (spring forward), it is the first minute after the gap;
/// on a day `time` happens twice (fall back), it is the first of the two, and the second is
/// not "after" it on the same day, so the day still gets one.
pub fn next_due(time: NaiveTime, zone: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let mut day = after.with_timezone(&zone).date_naive();
    loop {
        let at = local_instant(day, time, zone);
        if at > after {
            return at;
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => return at,
        };
    }
}

fn local_instant(day: NaiveDate, time: NaiveTime, zone: Tz) -> DateTime<Utc> {
    let naive = day.and_time(time);
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => (1..=24 * 60)
            .find_map(|m| zone.from_local_datetime(&(naive + chrono::Duration::minutes(m))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
    }
}

/// What a queued summary job knows: whose day and which window it reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestJob {
    pub date: NaiveDate,
    pub since: DateTime<Utc>,
    pub time: String,
    pub zone: String,
}

impl DigestJob {
    pub fn from_payload(payload: &str) -> Option<DigestJob> {
        serde_json::from_str(payload).ok()
    }
}

/// Reads what the summary reports: the day's appointments and tasks due, messages by
/// contact, other unread notifications and mailbox problems since the window opened.
pub async fn gather<'a>(db: &Db, sources: &dyn DaySources, account_id: AccountId, job: &'a DigestJob) -> anyhow::Result<DigestContent<'a>> {
    let recorded = store::notifications_since(db, account_id, job.since, 5000).await?;
    let message = NotificationEvent::MessageReceived.stored_name();
    let problem = NotificationEvent::MailboxError.stored_name();
    let mut by_contact: HashMap<String, usize> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut unread = Vec::new();
    for n in recorded {
        if n.event == message {
            *by_contact.entry(n.contact.clone().unwrap_or_else(|| n.title.clone())).or_default() += 1;
        } else if n.event == problem {
            let line = format!("{}: {}", n.title, n.body);
            if !problems.contains(&line) {
                problems.push(line);
            }
        } else if n.in_app && n.read_at.is_none() {
            unread.push(n);
        }
    }
    let mut messages_by_contact: Vec<(String, usize)> = by_contact.into_iter().collect();
    messages_by_contact.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    unread.reverse();
    let (tasks_today, appointments_today) = agenda(sources, account_id, job).await?;
    let calendar_today = calendar_day(sources, account_id, job).await?;
    Ok(DigestContent {
        date: job.date.format("%Y-%m-%d").to_string(),
        messages_by_contact,
        unread,
        mailbox_problems: problems,
        tasks_today,
        appointments_today,
        calendar_today,
        time: &job.time,
        zone: &job.zone,
    })
}

/// (title, local time) lines for the summary's day.
type Agenda = Vec<(String, String)>;

/// The tasks due and the appointments on the user's local day, at local times, earliest
/// first (a task completed or an appointment cancelled since is left out by the source).
async fn agenda(sources: &dyn DaySources, account_id: AccountId, job: &DigestJob) -> anyhow::Result<(Agenda, Agenda)> {
    let zone: Tz = job.zone.parse().unwrap_or(Tz::UTC);
    let (from, to) = local_day(job.date, zone);
    let mut tasks = Vec::new();
    let mut appointments = Vec::new();
    for item in sources.agenda(account_id, from, to).await? {
        let line = (item.title, item.at.with_timezone(&zone).format("%H:%M").to_string());
        match item.kind {
            AgendaKind::Task => tasks.push(line),
            AgendaKind::Appointment => appointments.push(line),
        }
    }
    Ok((tasks, appointments))
}

/// The events of the user's primary and conflict calendars on the summary's day, with local
/// `start–end` times (empty for all-day events).
async fn calendar_day(sources: &dyn DaySources, account_id: AccountId, job: &DigestJob) -> anyhow::Result<Agenda> {
    let zone: Tz = job.zone.parse().unwrap_or(Tz::UTC);
    let (from, to) = local_day(job.date, zone);
    Ok(sources
        .calendar(account_id, from, to, zone)
        .await?
        .into_iter()
        .map(|e| {
            let time = if e.all_day {
                String::new()
            } else {
                format!("{}–{}", e.start.with_timezone(&zone).format("%H:%M"), e.end.with_timezone(&zone).format("%H:%M"))
            };
            (e.title, time)
        })
        .collect())
}

/// The instants a local day in `zone` starts and ends (23 or 25 hours across a clock change).
fn local_day(date: NaiveDate, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_instant(date, NaiveTime::MIN, zone);
    let end = date.succ_opt().map(|next| local_instant(next, NaiveTime::MIN, zone)).unwrap_or(start + chrono::Duration::days(1));
    (start, end)
}

#[derive(Clone)]
pub struct DigestScheduler {
    db: Db,
    clock: SharedClock,
    /// Woken when someone changes their schedule in this process.
    changed: Arc<Notify>,
    /// Wakes the delivery worker when a summary is queued.
    delivery: Arc<Notify>,
}

impl DigestScheduler {
    pub fn new(db: Db, clock: SharedClock, changed: Arc<Notify>, delivery: Arc<Notify>) -> Self {
        DigestScheduler { db, clock, changed, delivery }
    }

    /// Queues summaries as they fall due, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let pace = Pace { clock: &*self.clock, wake: &self.changed, recheck: IDLE_RECHECK };
        worker::run(&self, pace, stop).await;
    }

    /// Queues every summary due now; returns how many this call queued (a summary another
    /// process claimed first is not counted).
    async fn run_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut queued = 0;
        let due = store::summaries_due(&self.db, now, 200).await?;
        // Summaries were due: whichever process queued them, this one's delivery worker looks
        // at the queue now, so it knows when the sender's claim ends and can take the job over
        // at that moment should the sender die (instead of at its next periodic look).
        let any_due = !due.is_empty();
        for due in due {
            let (Ok(time), Ok(zone)) =
                (parse_time_of_day("deliveryTime", &due.summary_time), parse_time_zone("timeZone", &due.summary_time_zone))
            else {
                store::set_summary_next(&self.db, due.account_id, None).await?;
                continue;
            };
            let local_date = due.summary_next_at.with_timezone(&zone).date_naive();
            let following = next_due(time, zone, due.summary_next_at.max(now));
            let mut tx = self.db.begin().await?;
            if now - due.summary_next_at <= STALE_AFTER && store::claim_digest(&mut tx, due.account_id, local_date, now).await? {
                let job = DigestJob {
                    date: local_date,
                    since: due.summary_next_at - chrono::Duration::days(1),
                    time: due.summary_time.clone(),
                    zone: zone.name().to_owned(),
                };
                let payload = serde_json::to_string(&job)?;
                let key = format!("digest:{}:{local_date}", due.account_id);
                outbox::enqueue(
                    &mut tx,
                    &NewJob {
                        account_id: due.account_id,
                        channel: EMAIL,
                        kind: DIGEST,
                        notification_id: None,
                        push_subscription_id: None,
                        payload: &payload,
                        idempotency_key: &key,
                        batchable: false,
                        run_after: now,
                        now,
                    },
                )
                .await?;
                queued += 1;
            }
            store::advance_summary(&mut tx, due.account_id, due.summary_next_at, following).await?;
            tx.commit().await?;
        }
        if any_due {
            self.delivery.notify_one();
        }
        Ok(queued)
    }
}

impl Worker for DigestScheduler {
    const NAME: &'static str = "daily summaries";

    async fn run_once(&self) -> anyhow::Result<usize> {
        self.run_due().await
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        store::next_summary_at(&self.db).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    #[test]
    fn a_local_day_spans_midnight_to_midnight_in_the_users_zone() {
        let warsaw: Tz = "Europe/Warsaw".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(local_day(day, warsaw), (utc("2026-11-22T23:00:00Z"), utc("2026-11-23T23:00:00Z")));
        // The day the clocks go forward has 23 hours.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let (start, end) = local_day(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(), berlin);
        assert_eq!(end - start, chrono::Duration::hours(23));
    }

    #[test]
    fn the_days_tasks_and_appointments_are_listed_in_the_users_language() {
        let d = DigestContent {
            date: "2026-11-23".into(),
            messages_by_contact: vec![],
            unread: vec![],
            mailbox_problems: vec![],
            tasks_today: vec![("Call Bob back".into(), "15:00".into())],
            appointments_today: vec![("Demo with Acme".into(), "10:30".into())],
            calendar_today: vec![("Dentist".into(), "12:00–12:45".into()), ("Team offsite".into(), String::new())],
            time: "08:00",
            zone: "Europe/Warsaw",
        };
        assert!(!d.is_empty(), "a day with only tasks still sends");
        let en = super::super::email::digest("en", "Ann", &d, &super::super::email::tests::app_links());
        for part in [&en.html, &en.text] {
            assert!(part.contains("Tasks due today") && part.contains("Call Bob back (due 15:00)"), "{part}");
            assert!(part.contains("Appointments today") && part.contains("10:30 – Demo with Acme"), "{part}");
            assert!(part.contains("On your calendar today") && part.contains("12:00–12:45 – Dentist"), "{part}");
            assert!(part.contains("All day – Team offsite"), "{part}");
        }
        let pl = super::super::email::digest("pl", "Ann", &d, &super::super::email::tests::app_links());
        assert!(pl.text.contains("Zadania na dziś") && pl.text.contains("Call Bob back (termin 15:00)"), "{}", pl.text);
        assert!(pl.text.contains("Cały dzień – Team offsite"), "{}", pl.text);
        for lang in ["de", "fr", "pl"] {
            for id in ["digest-tasks", "digest-appointments", "digest-calendar", "digest-all-day"] {
                assert_ne!(crate::i18n::text(lang, id, &[]), crate::i18n::text("en", id, &[]), "{lang} lacks {id}");
            }
        }
    }

    #[test]
    fn the_next_summary_is_today_if_its_time_is_still_ahead_else_tomorrow() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(next_due(hm("08:00"), berlin, utc("2026-11-23T06:00:00Z")), utc("2026-11-23T07:00:00Z"));
        assert_eq!(next_due(hm("08:00"), berlin, utc("2026-11-23T07:00:00Z")), utc("2026-11-24T07:00:00Z"));
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // 23:30 UTC on the 23rd is already the 24th in Tokyo.
        assert_eq!(next_due(hm("09:00"), tokyo, utc("2026-11-23T23:30:00Z")), utc("2026-11-24T00:00:00Z"));
    }

    #[test]
    fn a_time_the_clocks_skip_sends_right_after_the_gap() {
        // 2026-03-29: Berlin goes from 02:00 CET straight to 03:00 CEST.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let due = next_due(hm("02:30"), berlin, utc("2026-03-28T12:00:00Z"));
        assert_eq!(due, utc("2026-03-29T01:00:00Z"), "03:00 CEST");
        // And the day after, back to 02:30 CEST.
        assert_eq!(next_due(hm("02:30"), berlin, due), utc("2026-03-30T00:30:00Z"));
    }

    #[test]
    fn a_time_that_happens_twice_sends_at_the_first_and_not_again_that_day() {
        // 2026-10-25: Berlin's 02:00–03:00 happens in CEST, then again in CET.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let first = next_due(hm("02:30"), berlin, utc("2026-10-24T12:00:00Z"));
        assert_eq!(first, utc("2026-10-25T00:30:00Z"), "02:30 CEST");
        let after = next_due(hm("02:30"), berlin, first);
        assert_eq!(after, utc("2026-10-26T01:30:00Z"), "the next is the 26th, 02:30 CET");
        // Even looking from between the two 02:30s, the next one is the next day's.
        assert_eq!(next_due(hm("02:30"), berlin, utc("2026-10-25T01:00:00Z")), after);
    }
}
