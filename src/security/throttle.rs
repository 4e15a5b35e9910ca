//! Rate limits on guessing secrets: password log-ins and second-factor codes, each counted per
//! account and per client address (GCRA, from governor). A refusal carries a retry-after.
//!
//! The per-account key is the submitted email (normalised), whether or not an account has
//! it, so a refusal says nothing about which accounts exist. While an account is throttled
//! even the right password is refused without being checked, so a throttled answer reveals
//! nothing about the password either.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{Error, Result};

/// The window the configured attempt counts refer to.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, forget the ones whose limit has fully recovered.
const PRUNE_ABOVE: usize = 10_000;

/// One guarded action (log-in, second factor), limited per account and per address.
pub struct Throttle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl Throttle {
    /// `per_account` and `per_address` attempts in any 15 minutes, refilled evenly.
    pub fn new(per_account: u32, per_address: u32) -> Throttle {
        Throttle {
            per_account: RateLimiter::keyed(quota(per_account)),
            per_address: RateLimiter::keyed(quota(per_address)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts an attempt on `account` (any stable key: a normalised email, an account id) from
    /// `address`; RATE_LIMITED with the wait when either has run out.
    pub fn attempt(&self, account: &str, address: Option<&str>) -> Result<()> {
        for limiter in [&self.per_account, &self.per_address] {
            if limiter.len() > PRUNE_ABOVE {
                limiter.retain_recent();
            }
        }
        // The address is checked first: a flood from one address does not use up the
        // account's allowance and lock its owner out.
        if let Some(address) = address
            && let Err(wait) = self.per_address.check_key(&address.to_owned())
        {
            return Err(self.refusal(wait.wait_time_from(self.clock.now())));
        }
        if let Err(wait) = self.per_account.check_key(&account.to_lowercase()) {
            return Err(self.refusal(wait.wait_time_from(self.clock.now())));
        }
        Ok(())
    }

    fn refusal(&self, wait: Duration) -> Error {
        metrics::counter!("concierge_rate_limited_total").increment(1);
        Error::RateLimited { retry_after_secs: wait.as_secs().max(1) }
    }
}

fn quota(attempts: u32) -> Quota {
    let attempts = NonZeroU32::new(attempts.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = WINDOW / attempts.get();
    Quota::with_period(period.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_refused_after_its_attempts_with_a_retry_after() {
        let t = Throttle::new(3, 100);
        for _ in 0..3 {
            t.attempt("ada@example.com", Some("10.0.0.1")).unwrap();
        }
        match t.attempt("ADA@example.com", Some("10.0.0.2")) {
            Err(Error::RateLimited { retry_after_secs }) => assert!((1..=300).contains(&retry_after_secs)),
            other => panic!("not throttled: {other:?}"),
        }
        t.attempt("grace@example.com", Some("10.0.0.2")).expect("other accounts are unaffected");
    }

    #[test]
    fn an_address_is_refused_across_accounts() {
        let t = Throttle::new(100, 2);
        t.attempt("a@example.com", Some("10.0.0.1")).unwrap();
        t.attempt("b@example.com", Some("10.0.0.1")).unwrap();
        assert!(matches!(t.attempt("c@example.com", Some("10.0.0.1")), Err(Error::RateLimited { .. })));
        t.attempt("c@example.com", Some("10.0.0.9")).expect("other addresses are unaffected");
    }
}
