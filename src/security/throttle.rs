//! Rate limits on guessing secrets and on automation: password log-ins and second-factor
//! codes, each counted per account and per client address; sign-ups per client address; and
//! failed token checks per client address (GCRA, from governor). A refusal carries a retry-after.
//!
//! The per-account key is the submitted email (normalised), whether or not an account has
//! it, so a refusal says nothing about which accounts exist. While an account is throttled
//! even the right password is refused without being checked, so a throttled answer reveals
//! nothing about the password either.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
            return Err(refusal(wait.wait_time_from(self.clock.now())));
        }
        if let Err(wait) = self.per_account.check_key(&account.to_lowercase()) {
            return Err(refusal(wait.wait_time_from(self.clock.now())));
        }
        Ok(())
    }
}

/// An action limited per client address only (sign-ups): every attempt counts, aliases and
/// the operations of a batch one by one, since each runs the resolver.
pub struct AddressLimit {
    per_address: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl AddressLimit {
    /// `attempts` in any `window`, refilled evenly.
    pub fn new(attempts: u32, window: Duration) -> AddressLimit {
        AddressLimit { per_address: RateLimiter::keyed(quota_over(attempts, window)), clock: DefaultClock::default() }
    }

    /// Counts an attempt from `address` (none known: not limited, as for log-ins).
    pub fn attempt(&self, address: Option<&str>) -> Result<()> {
        if self.per_address.len() > PRUNE_ABOVE {
            self.per_address.retain_recent();
        }
        let Some(address) = address else { return Ok(()) };
        self.per_address.check_key(&address.to_owned()).map_err(|wait| refusal(wait.wait_time_from(self.clock.now())))
    }
}

/// Failed guesses at tokens (bearer tokens, email-change links), per client address. Only
/// failures are counted, so a client using its good token never runs out. Once an address has
/// used up its failures, every token check from it is refused unchecked (even a good token)
/// until the window has room again: as with log-ins, a throttled guess learns nothing.
pub struct FailureLimit {
    failures: DefaultKeyedRateLimiter<String>,
    /// Addresses that ran out, and until when they are refused.
    blocked: Mutex<HashMap<String, Instant>>,
    clock: DefaultClock,
}

impl FailureLimit {
    /// `failures` in any 15 minutes, refilled evenly.
    pub fn new(failures: u32) -> FailureLimit {
        FailureLimit { failures: RateLimiter::keyed(quota(failures)), blocked: Mutex::default(), clock: DefaultClock::default() }
    }

    /// Before a token is checked: RATE_LIMITED while `address` is blocked.
    pub fn check(&self, address: Option<&str>) -> Result<()> {
        let Some(address) = address else { return Ok(()) };
        let now = Instant::now();
        let Ok(mut blocked) = self.blocked.lock() else { return Ok(()) };
        if blocked.len() > PRUNE_ABOVE {
            blocked.retain(|_, until| *until > now);
        }
        match blocked.get(address) {
            Some(until) if *until > now => Err(refusal(*until - now)),
            Some(_) => {
                blocked.remove(address);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// After a token did not check out: counts the failure; RATE_LIMITED (and the address
    /// blocked) when it was one too many.
    pub fn failed(&self, address: Option<&str>) -> Result<()> {
        if self.failures.len() > PRUNE_ABOVE {
            self.failures.retain_recent();
        }
        let Some(address) = address else { return Ok(()) };
        match self.failures.check_key(&address.to_owned()) {
            Ok(()) => Ok(()),
            Err(wait) => {
                let wait = wait.wait_time_from(self.clock.now());
                if let Ok(mut blocked) = self.blocked.lock() {
                    blocked.insert(address.to_owned(), Instant::now() + wait);
                }
                Err(refusal(wait))
            }
        }
    }
}

fn refusal(wait: Duration) -> Error {
    metrics::counter!("concierge_rate_limited_total").increment(1);
    Error::RateLimited { retry_after_secs: wait.as_secs().max(1) }
}

fn quota(attempts: u32) -> Quota {
    quota_over(attempts, WINDOW)
}

fn quota_over(attempts: u32, window: Duration) -> Quota {
    let attempts = NonZeroU32::new(attempts.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = window / attempts.get();
    Quota::with_period(period.max(Duration::from_millis(1))).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(attempts)
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

    #[test]
    fn sign_ups_are_limited_per_address() {
        let limit = AddressLimit::new(2, Duration::from_secs(3600));
        limit.attempt(Some("10.0.0.1")).unwrap();
        limit.attempt(Some("10.0.0.1")).unwrap();
        match limit.attempt(Some("10.0.0.1")) {
            Err(Error::RateLimited { retry_after_secs }) => assert!((1..=1800).contains(&retry_after_secs)),
            other => panic!("not throttled: {other:?}"),
        }
        limit.attempt(Some("10.0.0.2")).expect("other addresses are unaffected");
    }

    #[test]
    fn an_address_out_of_token_failures_is_refused_before_any_check() {
        let limit = FailureLimit::new(2);
        for _ in 0..2 {
            limit.check(Some("10.0.0.1")).unwrap();
            limit.failed(Some("10.0.0.1")).unwrap();
        }
        assert!(matches!(limit.failed(Some("10.0.0.1")), Err(Error::RateLimited { .. })), "one failure too many");
        assert!(matches!(limit.check(Some("10.0.0.1")), Err(Error::RateLimited { .. })), "blocked, even for a good token");
        limit.check(Some("10.0.0.2")).expect("other addresses are unaffected");
    }
}
