//! One shape for the background workers that drain a queue (emails and pushes, daily
//! summaries, webhook deliveries, appointment writes, account deletions, calendar polls, the
//! look for mailboxes no process holds): a [`Worker`] does
//! the work due now in [`Worker::run_once`], and [`run`] repeats that, sleeping until the next
//! job is due, a producer in this process wakes it, or a recheck interval has passed (work
//! queued by another gateway process, or left by one that died).
//!
//! Tests step a worker with `run_once` and look at what it did, instead of sleeping and
//! hoping the background loop got there.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// A queue's worker.
pub trait Worker: Send + Sync {
    /// What it is called in the logs.
    const NAME: &'static str;

    /// Does every job due now (claiming each, so processes sharing the queue never do one
    /// twice) and returns how many it attempted.
    fn run_once(&self) -> impl Future<Output = anyhow::Result<usize>> + Send;

    /// When the next job falls due, when the worker can tell (None: only a wake or the
    /// recheck interval brings it back).
    fn next_due(&self) -> impl Future<Output = Option<DateTime<Utc>>> + Send {
        async { None }
    }
}

/// How a worker's loop waits between passes.
pub struct Pace<'a> {
    pub clock: &'a dyn Clock,
    /// Notified by producers in this process.
    pub wake: &'a Notify,
    /// The longest it sleeps without looking at the queue.
    pub recheck: Duration,
}

/// Runs `worker` until `stop`: a pass, then a sleep until the next job is due, a wake or the
/// recheck interval. A failed pass is logged and the next one comes after the same sleep.
///
/// A job that was due when a pass began and that the pass did not take (another process
/// holds it, or the pass failed) is not a reason to pass again at once: the loop then waits for a wake or the
/// recheck, instead of spinning on it.
pub async fn run<W: Worker>(worker: &W, pace: Pace<'_>, stop: CancellationToken) {
    loop {
        let started = pace.clock.now();
        let did = match worker.run_once().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(worker = W::NAME, error = %e, "a pass over the queue failed; retrying shortly");
                0
            }
        };
        // Due after the pass began: the pass may not have seen it, so it is not one the pass
        // failed to take.
        let next = worker.next_due().await.filter(|at| did > 0 || *at > started);
        if !crate::clock::idle(pace.clock, &stop, pace.wake, next, pace.recheck).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    /// Counts its passes, fails every other one, and never takes the job it says is due.
    struct Counting {
        passes: AtomicUsize,
        due: DateTime<Utc>,
    }

    impl Worker for Counting {
        const NAME: &'static str = "counting";

        async fn run_once(&self) -> anyhow::Result<usize> {
            let n = self.passes.fetch_add(1, Ordering::SeqCst);
            // A real pass waits on the database: a loop that spun would yield here, and the
            // test would see the extra passes (instead of hanging).
            tokio::task::yield_now().await;
            anyhow::ensure!(n.is_multiple_of(2), "pass {n} fails");
            Ok(0)
        }

        async fn next_due(&self) -> Option<DateTime<Utc>> {
            Some(self.due)
        }
    }

    #[tokio::test]
    async fn the_loop_passes_again_when_woken_or_due_and_never_spins() {
        let start = "2026-12-06T12:00:00Z".parse::<DateTime<Utc>>().expect("a time");
        let clock = ManualClock::new(start);
        let wake = Arc::new(Notify::new());
        let worker = Arc::new(Counting { passes: AtomicUsize::new(0), due: start + chrono::Duration::seconds(30) });
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (clock, wake, worker, stop) = (clock.clone(), wake.clone(), worker.clone(), stop.clone());
            async move { run(&*worker, Pace { clock: &*clock, wake: &wake, recheck: Duration::from_secs(600) }, stop).await }
        });
        let passes = || worker.passes.load(Ordering::SeqCst);
        let settle = || async {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        };

        settle().await;
        assert_eq!(passes(), 1, "one pass at the start");
        wake.notify_one();
        settle().await;
        assert_eq!(passes(), 2, "a wake brings a pass (the failed one did not stop the loop)");
        clock.set(start + chrono::Duration::seconds(29));
        settle().await;
        assert_eq!(passes(), 2, "not before the next job is due");
        clock.set(start + chrono::Duration::seconds(30));
        settle().await;
        assert_eq!(passes(), 3, "when it is due");
        // The job stays due but the pass did not take it: no pass again until the recheck.
        settle().await;
        assert_eq!(passes(), 3, "a job it cannot take does not make it spin");
        clock.set(start + chrono::Duration::seconds(30 + 600));
        settle().await;
        assert_eq!(passes(), 4, "the recheck");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("the loop ends when stopped").expect("no panic");
    }

    /// Its first pass takes long enough for the clock to reach a job that falls due meanwhile.
    struct Slow {
        clock: Arc<ManualClock>,
        passes: AtomicUsize,
        due: DateTime<Utc>,
    }

    impl Worker for Slow {
        const NAME: &'static str = "slow";

        async fn run_once(&self) -> anyhow::Result<usize> {
            if self.passes.fetch_add(1, Ordering::SeqCst) == 0 {
                self.clock.set(self.due);
            }
            tokio::task::yield_now().await;
            Ok(0)
        }

        async fn next_due(&self) -> Option<DateTime<Utc>> {
            Some(self.due)
        }
    }

    #[tokio::test]
    async fn a_job_that_fell_due_during_a_pass_gets_a_pass_of_its_own() {
        let start = "2026-12-06T12:00:00Z".parse::<DateTime<Utc>>().expect("a time");
        let clock = ManualClock::new(start);
        let worker = Arc::new(Slow { clock: clock.clone(), passes: AtomicUsize::new(0), due: start + chrono::Duration::seconds(1) });
        let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        let task = tokio::spawn({
            let (clock, wake, worker, stop) = (clock.clone(), wake.clone(), worker.clone(), stop.clone());
            async move { run(&*worker, Pace { clock: &*clock, wake: &wake, recheck: Duration::from_secs(600) }, stop).await }
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(worker.passes.load(Ordering::SeqCst), 2, "the first pass began before the job was due, so a second one looks");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("the loop ends when stopped").expect("no panic");
    }
}
