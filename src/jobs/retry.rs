//! When background work tries again after a failure: one schedule for every kind of work
//! (mailbox and calendar syncs, emails and pushes, webhook deliveries, calendar writes).
//!
//! A schedule is either a doubling from a base up to a cap, or a fixed list of waits (the
//! webhooks' published schedule), scaled by its first step. Either way the wait used has up
//! to a fifth added at random, so work that failed together (a receiver or a mail server
//! that was down for everyone) does not come back all at the same moment.

use std::time::Duration;

/// How long to wait after the n-th failure in a row, and when to stop trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// `base`, then twice as long after each further failure, never more than `cap`; never
    /// gives up (the caller may, after so many attempts).
    Doubling { base: Duration, cap: Duration },
    /// The waits after the 1st, 2nd, … failure, scaled so that the first one is `first`; gives
    /// up after the last.
    Steps { steps: &'static [Duration], first: Duration },
}

/// The most added at random to a planned wait, as a fraction of it.
const JITTER: f64 = 0.2;

impl Retry {
    /// The wait planned after `failures` failures in a row (1: after the first), before the
    /// jitter; None when the schedule has given up (or no failure has happened).
    pub fn planned(&self, failures: u32) -> Option<Duration> {
        let n = failures.checked_sub(1)?;
        match *self {
            Retry::Doubling { base, cap } => Some(base.saturating_mul(2u32.saturating_pow(n.min(31))).min(cap)),
            Retry::Steps { steps, first } => {
                let step = *steps.get(usize::try_from(n).ok()?)?;
                let unit = steps.first()?.as_secs_f64();
                Some(if unit > 0.0 { step.mul_f64(first.as_secs_f64() / unit) } else { step })
            }
        }
    }

    /// The wait to use after `failures` failures in a row: the planned one with up to a fifth
    /// added at random; None when the schedule has given up.
    pub fn delay(&self, failures: u32) -> Option<Duration> {
        self.planned(failures).map(|planned| planned.mul_f64(1.0 + JITTER * rand::random::<f64>()))
    }

    /// For a count of failures as stored (a database integer): negative counts as none.
    pub fn failures(stored: i32) -> u32 {
        u32::try_from(stored).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const STEPS: [Duration; 3] = [Duration::from_secs(5), Duration::from_secs(60), Duration::from_secs(600)];

    #[test]
    fn doubling_starts_at_the_base_and_stops_growing_at_the_cap() {
        let retry = Retry::Doubling { base: Duration::from_secs(30), cap: Duration::from_secs(3600) };
        assert_eq!(retry.planned(0), None, "no failure, no wait");
        assert_eq!(retry.planned(1), Some(Duration::from_secs(30)));
        assert_eq!(retry.planned(2), Some(Duration::from_secs(60)));
        assert_eq!(retry.planned(4), Some(Duration::from_secs(240)));
        assert_eq!(retry.planned(8), Some(Duration::from_secs(3600)));
        assert_eq!(retry.planned(u32::MAX), Some(Duration::from_secs(3600)), "no overflow however many failures");
    }

    #[test]
    fn steps_follow_the_list_scaled_by_the_first_and_then_give_up() {
        let retry = Retry::Steps { steps: &STEPS, first: Duration::from_secs(5) };
        assert_eq!(retry.planned(2), Some(Duration::from_secs(60)));
        assert_eq!(retry.planned(3), Some(Duration::from_secs(600)));
        assert_eq!(retry.planned(4), None, "given up after the last step");
        assert_eq!(retry.delay(4), None);
        let fast = Retry::Steps { steps: &STEPS, first: Duration::from_millis(50) };
        assert_eq!(fast.planned(2), Some(Duration::from_millis(600)));
    }

    #[test]
    fn the_wait_used_adds_up_to_a_fifth_at_random() {
        let retry = Retry::Doubling { base: Duration::from_secs(5), cap: Duration::from_secs(300) };
        for failures in 1..40 {
            let planned = retry.planned(failures).expect("never gives up");
            let d = retry.delay(failures).expect("never gives up");
            assert!(d >= planned && d <= planned.mul_f64(1.2), "failure {failures}: {d:?} against {planned:?}");
        }
        let spread: HashSet<Duration> = (0..20).map(|_| retry.delay(3).expect("a wait")).collect();
        assert!(spread.len() > 1, "work failing together does not retry together");
        let at_cap: HashSet<Duration> = (0..20).map(|_| retry.delay(30).expect("a wait")).collect();
        assert!(at_cap.len() > 1, "spread at the cap too");
    }
}
