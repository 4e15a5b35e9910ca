//! The delivery worker: sends due deliveries, each webhook's strictly in order (its next
//! delivery waits until the earlier one was delivered or given up), at least once, retrying
//! failures on a schedule with jitter that lasts more than a day. A webhook whose delivery
//! fails through the whole schedule is turned off and the people who manage it are notified;
//! the deliveries it holds wait, and go out when it is turned on again.
//!
//! Deliveries of different webhooks go out concurrently (up to [`MAX_IN_FLIGHT`]), so one
//! slow receiver does not hold up the others. The worker sleeps until the next attempt is
//! due, until a producer wakes it, or at most [`RECHECK`] (deliveries queued by another
//! gateway process, or without a wake).

use std::error::Error as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use super::model::{Delivery, WebhookId};
use super::service::Webhooks;
use super::signature;
use super::store::{self, Outcome};
use crate::i18n::text;
use crate::identity::model::AccountId;
use crate::jobs::retry::Retry;
use crate::jobs::worker::Worker;
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::Notice;
use crate::outbound as safe_url;
use crate::workspace::model::{Permission, WorkspaceId};

/// The waits after the 1st, 2nd, … failed attempt (with up to 20% added at random, so
/// receivers coming back are not hit by everyone at once): 9 attempts over about 28 hours.
/// `CONCIERGE_WEBHOOK_RETRY_MS` scales the whole schedule (its default is the first step).
pub const SCHEDULE: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = SCHEDULE.len() as i32 + 1;
/// How long a claimed delivery is held beyond the longest an attempt can take (the request
/// timeout): 20 s at the default 10 s timeout. A crashed worker's claim runs out after this,
/// and another process, which wakes for that moment, retries it.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// The longest the worker sleeps without looking at the queue.
pub const RECHECK: Duration = Duration::from_secs(10);
/// Attempts in progress at once (each to a different webhook).
pub const MAX_IN_FLIGHT: usize = 16;
/// Finished deliveries are kept this long, then forgotten.
const RETENTION: chrono::Duration = chrono::Duration::days(30);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Stepping the queue: every delivery due now is attempted (up to [`MAX_IN_FLIGHT`] at once,
/// each webhook's in order) and the pass returns once they have all been recorded. The
/// background loop ([`Webhooks::run`]) does the same work but keeps claiming while attempts
/// are in flight, so one slow receiver does not hold up the others.
impl Worker for Webhooks {
    const NAME: &'static str = "webhook deliveries";

    async fn run_once(&self) -> anyhow::Result<usize> {
        let mut attempted = 0;
        loop {
            let claimed = self.claim_due(MAX_IN_FLIGHT).await?;
            if claimed.is_empty() {
                return Ok(attempted);
            }
            attempted += claimed.len();
            futures_util::future::join_all(claimed.into_iter().map(|c| self.clone().attempt_traced(c))).await;
        }
    }

    async fn next_due(&self) -> Option<chrono::DateTime<Utc>> {
        store::next_due(&self.inner.db, Utc::now()).await.ok().flatten()
    }
}

/// The wait after `failed` attempts of a round, or None when the round is over (give up):
/// [`SCHEDULE`] scaled so its first step is `base`, jittered ([`Retry`]).
pub fn retry_delay(base: Duration, failed: i32) -> Option<Duration> {
    Retry::Steps { steps: &SCHEDULE, first: base }.delay(u32::try_from(failed).ok()?)
}

/// A delivery this worker holds.
struct Claimed {
    delivery: Delivery,
    token: Uuid,
}

/// What the receiver made of one attempt.
struct Sent {
    ok: bool,
    status_code: Option<i32>,
    error: Option<String>,
}

impl Sent {
    fn failed(error: impl Into<String>) -> Sent {
        Sent { ok: false, status_code: None, error: Some(error.into()) }
    }
}

impl Webhooks {
    /// Works the queue until `stop`; attempts in progress then finish (each is bounded by
    /// the request timeout).
    pub async fn run(self, stop: CancellationToken) {
        let mut flying: JoinSet<()> = JoinSet::new();
        let mut pruned: Option<Instant> = None;
        loop {
            if stop.is_cancelled() {
                break;
            }
            while let Some(done) = flying.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a webhook attempt panicked");
                }
            }
            let free = MAX_IN_FLIGHT.saturating_sub(flying.len());
            if free > 0 {
                match self.claim_due(free).await {
                    Ok(claimed) => {
                        for c in claimed {
                            flying.spawn(self.clone().attempt_traced(c));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the webhook queue; retrying shortly"),
                }
            }
            if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned = Some(Instant::now());
                if let Err(e) = store::prune(&self.inner.db, self.inner.clock.now() - RETENTION).await {
                    tracing::warn!(error = %e, "cannot prune old webhook deliveries");
                }
            }
            let clock = &self.inner.clock;
            let latest = clock.now() + chrono::Duration::from_std(RECHECK).unwrap_or_default();
            // While every slot is busy, only a finished attempt frees one: no point waking
            // for a due delivery.
            let next = if flying.len() < MAX_IN_FLIGHT { store::next_due(&self.inner.db, Utc::now()).await.ok().flatten() } else { None };
            let until = next.map_or(latest, |at| at.min(latest));
            tokio::select! {
                () = stop.cancelled() => break,
                Some(_) = flying.join_next(), if !flying.is_empty() => {}
                () = self.inner.wake.notified() => {}
                () = clock.sleep_until(until) => {}
            }
        }
        while flying.join_next().await.is_some() {}
    }

    /// Claims up to `limit` due deliveries (each its webhook's head).
    async fn claim_due(&self, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let now = self.inner.clock.now();
        let wall = Utc::now();
        let lease = self.inner.settings.timeout + LEASE_MARGIN;
        let until = wall + chrono::Duration::from_std(lease).unwrap_or_default();
        let holder = self.inner.settings.process;
        let mut claimed = Vec::new();
        for id in store::due_heads(&self.inner.db, now, wall, limit as i64).await? {
            let token = Uuid::new_v4();
            if let Some(delivery) = store::claim(&self.inner.db, id, token, now, wall, until, holder).await? {
                claimed.push(Claimed { delivery, token });
            }
        }
        Ok(claimed)
    }

    /// [`Self::attempt`] in a span of its own (a trace of its own when traces are on): ids,
    /// event type and outcome, never the body or the secrets.
    async fn attempt_traced(self, c: Claimed) {
        let span = tracing::info_span!(
            "webhook_delivery",
            delivery_id = %c.delivery.delivery_id.0,
            webhook_id = %c.delivery.webhook_id.0,
            event_type = %c.delivery.event_type,
            attempt = c.delivery.total_attempts,
            outcome = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        self.attempt(c).instrument(span).await;
    }

    /// Makes one attempt and records how it went.
    async fn attempt(self, claimed: Claimed) {
        let Claimed { delivery, token } = claimed;
        let started = Instant::now();
        let sent = match self.send(&delivery).await {
            Ok(sent) => sent,
            Err(e) => {
                tracing::warn!(error = ?e, "a webhook attempt failed inside the gateway");
                Sent::failed("internal error in the gateway; retrying")
            }
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = self.record(&delivery, token, &sent, duration_ms).await {
            // The claim runs out and the delivery is attempted again: at least once.
            tracing::warn!(error = ?e, "cannot record a webhook attempt");
        }
    }

    async fn record(&self, delivery: &Delivery, token: Uuid, sent: &Sent, duration_ms: i64) -> crate::error::Result<()> {
        let now = self.inner.clock.now();
        // `attempts` already counts this one (claiming counted it).
        let (status, next) = if sent.ok {
            ("DELIVERED", None)
        } else {
            match retry_delay(self.inner.settings.retry_base, delivery.attempts) {
                Some(wait) => ("PENDING", Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(10)))),
                None => ("FAILED", None),
            }
        };
        let outcome = Outcome {
            status,
            next_attempt_at: next,
            status_code: sent.status_code,
            duration_ms,
            error: sent.error.as_deref(),
            attempted_at: now,
            attempt: delivery.total_attempts,
        };
        if !store::finish(&self.inner.db, delivery.delivery_id, token, &outcome, now).await? {
            tracing::warn!(delivery_id = %delivery.delivery_id.0, "lost the claim on a webhook delivery before recording it");
            return Ok(());
        }
        let disabled = if status == "FAILED" { store::disable_failing(&self.inner.db, delivery.webhook_id, now).await? } else { None };
        metrics::counter!("concierge_webhook_attempts_total", "outcome" => if sent.ok { "delivered" } else { "failed" }).increment(1);
        let span = tracing::Span::current();
        span.record(
            "outcome",
            match status {
                "DELIVERED" => "delivered",
                "PENDING" => "retrying",
                _ => "failed",
            },
        );
        if let Some(code) = sent.status_code {
            span.record("http.response.status_code", code);
        }
        match status {
            "DELIVERED" => tracing::debug!(delivery_id = %delivery.delivery_id.0, "webhook delivered"),
            "PENDING" => tracing::info!(
                delivery_id = %delivery.delivery_id.0,
                attempt = delivery.attempts,
                error = sent.error.as_deref().unwrap_or_default(),
                retry_at = %next.unwrap_or(now),
                "webhook attempt failed; will retry"
            ),
            _ => tracing::warn!(
                delivery_id = %delivery.delivery_id.0,
                error = sent.error.as_deref().unwrap_or_default(),
                "webhook delivery failed through the whole retry schedule; given up"
            ),
        }
        if let Some((creator, workspace_id, url)) = disabled {
            tracing::warn!(webhook_id = %delivery.webhook_id.0, "webhook disabled: its deliveries kept failing");
            self.notify_disabled(delivery.webhook_id, creator, workspace_id, &url, now).await;
        }
        Ok(())
    }

    /// Sends the delivery once: check the URL afresh, connect to the address checked, sign,
    /// POST, read at most `max_response_bytes` of the answer. Only a 2xx answer delivers.
    async fn send(&self, delivery: &Delivery) -> anyhow::Result<Sent> {
        let settings = &self.inner.settings;
        let Some(webhook) = store::find_webhook(&self.inner.db, delivery.webhook_id).await? else {
            return Ok(Sent::failed("the webhook was deleted"));
        };
        let secrets = self.signing_secrets(delivery.webhook_id).await?;
        let target = match safe_url::resolve(&webhook.url, &settings.policy).await {
            Ok(t) => t,
            Err(why) => return Ok(Sent::failed(format!("refused: {why}"))),
        };
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("Concierge-Webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(domain) = &target.domain {
            // The connection goes to the address just checked, whatever DNS says next.
            client = client.resolve(domain, target.addr);
        }
        let client = client.build()?;
        let id = delivery.event_id.to_string();
        let timestamp = Utc::now().timestamp();
        let keys: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
        let sent = client
            .post(target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature::header(&keys, &id, timestamp, &delivery.payload))
            .body(delivery.payload.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return Ok(Sent::failed(describe(&e, settings.timeout))),
        };
        let status = response.status();
        let mut body = Vec::new();
        while body.len() < settings.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(settings.max_response_bytes - body.len())]),
                Ok(None) | Err(_) => break,
            }
        }
        let code = Some(i32::from(status.as_u16()));
        if status.is_success() {
            return Ok(Sent { ok: true, status_code: code, error: None });
        }
        let error = if status.is_redirection() {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("nowhere");
            format!("HTTP {status}: redirects are not followed (to {})", crate::identity::service::truncate(location, 200))
        } else {
            let answer = String::from_utf8_lossy(&body);
            let answer = crate::identity::service::truncate(answer.trim(), 300);
            if answer.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {answer}") }
        };
        Ok(Sent { ok: false, status_code: code, error: Some(error) })
    }

    /// Tells the webhook's creator (or, when no person created it, the workspace's members
    /// who may manage integrations) that it was turned off.
    async fn notify_disabled(
        &self,
        id: WebhookId,
        creator: Option<AccountId>,
        workspace_id: WorkspaceId,
        url: &str,
        now: chrono::DateTime<Utc>,
    ) {
        let recipients: Vec<AccountId> = match creator {
            Some(account) => vec![account],
            None => match crate::workspace::store::members_page(&self.inner.db, workspace_id, None, 200).await {
                Ok(members) => members
                    .into_iter()
                    .filter(|m| m.is_active() && m.role().allows(Permission::ManageIntegrations))
                    .map(|m| m.account_id)
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot find whom to tell about a disabled webhook");
                    return;
                }
            },
        };
        let accounts = crate::identity::store::find_accounts(&self.inner.db, &recipients).await.unwrap_or_default();
        for account in accounts {
            let notice = Notice {
                dedupe_key: Some(format!("webhook-disabled:{}:{}", id.0, now.timestamp())),
                ..Notice::new(
                    account.account_id,
                    NotificationEvent::WebhookDisabled,
                    text(&account.language, "webhook-disabled-title", &[]),
                    text(&account.language, "webhook-disabled-body", &[("url", url)]),
                )
            };
            if let Err(e) = self.inner.notifications.notify(notice).await {
                tracing::warn!(error = ?e, "cannot notify about a disabled webhook");
            }
        }
    }
}

/// Why no answer came, for `lastError`: the cause chain, without the URL's query.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs());
    }
    let mut out = if e.is_connect() { "cannot connect".to_owned() } else { "the request failed".to_owned() };
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    crate::identity::service::truncate(&out, 500).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_lasts_more_than_a_day_and_scales_with_the_base() {
        let base = SCHEDULE[0];
        let total: Duration = (1..MAX_ATTEMPTS).map(|n| retry_delay(base, n).unwrap()).sum();
        assert!(total >= Duration::from_secs(24 * 3600), "{total:?}");
        assert!(total <= Duration::from_secs(34 * 3600), "{total:?}");
        assert_eq!(retry_delay(base, MAX_ATTEMPTS), None, "given up after the last attempt");
        assert_eq!(retry_delay(base, 0), None);
        for n in 1..MAX_ATTEMPTS {
            let d = retry_delay(base, n).unwrap();
            let step = SCHEDULE[(n - 1) as usize];
            assert!(d >= step && d <= step.mul_f64(1.2), "attempt {n}: {d:?}");
        }
        let fast = retry_delay(Duration::from_millis(50), 2).unwrap();
        assert!(fast >= Duration::from_millis(600) && fast <= Duration::from_millis(720), "{fast:?}");
        let spread: std::collections::HashSet<Duration> = (0..20).map(|_| retry_delay(base, 3).unwrap()).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
