//! Time, for what is scheduled (deliveries, retries, daily summaries): the system clock in
//! the gateway, a hand-moved one in tests, so a test can stand at 01:59 on a night the
//! clocks go forward without waiting for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once the clock reads `at` or later.
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

pub type SharedClock = Arc<dyn Clock>;

/// How a background worker idles between passes: until `next` (but no later than `recheck`
/// from now, to catch work other processes queued), until `wake` is notified, or until
/// `stop`. Returns false when stopped.
pub async fn idle(clock: &dyn Clock, stop: &CancellationToken, wake: &Notify, next: Option<DateTime<Utc>>, recheck: Duration) -> bool {
    let latest = clock.now() + chrono::Duration::from_std(recheck).unwrap_or_default();
    let until = next.map_or(latest, |at| at.min(latest));
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = wake.notified() => true,
        _ = clock.sleep_until(until) => true,
    }
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'_, ()> {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to; sleepers wake when it passes their time.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock { now: Mutex::new(at), moved: Notify::new() })
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
        self.moved.notify_waiters();
    }

    pub fn advance(&self, by: chrono::Duration) {
        let at = self.now() + by;
        self.set(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let moved = self.moved.notified();
                tokio::pin!(moved);
                // Register before reading, so a move between the two is not missed.
                moved.as_mut().enable();
                if self.now() >= at {
                    return;
                }
                moved.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_when_the_clock_passes_its_time() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(start + chrono::Duration::hours(1)).await })
        };
        tokio::task::yield_now().await;
        clock.advance(chrono::Duration::minutes(59));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "woke before its time");
        clock.advance(chrono::Duration::minutes(1));
        tokio::time::timeout(Duration::from_secs(1), sleeper).await.expect("woke").expect("joined");
    }
}
