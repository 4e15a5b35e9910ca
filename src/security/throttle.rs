//! Rate limits on guessing secrets and on automation: password log-ins and second-factor
//! codes, each counted per account and per client address; sign-ups per client address; and
//! failed token checks per client address (GCRA). A refusal carries a retry-after.
//!
//! One gateway counts in its own memory (governor). Replicas sharing a PostgreSQL count in
//! its `rate_limit` table instead, so an attacker gets the quota once, not once per replica:
//! each check is one statement (the GCRA step as an upsert), and fully recovered keys are
//! swept now and then.
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
use sqlx::PgPool;

use crate::db::{Db, Pool};
use crate::error::{Error, Result};

/// The window the configured attempt counts refer to.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, forget the ones whose limit has fully recovered.
const PRUNE_ABOVE: usize = 10_000;
/// How often one process sweeps recovered keys out of the shared table.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// One keyed limit: `attempts` in any `window`, refilled evenly (GCRA).
enum Bucket {
    Local { limiter: DefaultKeyedRateLimiter<String>, clock: DefaultClock },
    Shared(Shared),
}

/// A limit kept in PostgreSQL, under `name:` keys. Times are seconds since the epoch.
struct Shared {
    pool: PgPool,
    name: &'static str,
    /// Seconds between two attempts at the steady rate.
    period: f64,
    /// How far ahead of now the theoretical arrival time may run: a burst of `attempts`.
    tolerance: f64,
    last_sweep: Mutex<Option<Instant>>,
}

impl Bucket {
    fn local(attempts: u32, window: Duration) -> Bucket {
        Bucket::Local { limiter: RateLimiter::keyed(quota_over(attempts, window)), clock: DefaultClock::default() }
    }

    /// The same limit in the shared table, when `db` is PostgreSQL.
    fn shared(self, db: &Db, name: &'static str, attempts: u32, window: Duration) -> Bucket {
        match &db.pool {
            Pool::Postgres(pool) => {
                let attempts = attempts.max(1);
                let period = (window / attempts).as_secs_f64().max(0.001);
                Bucket::Shared(Shared {
                    pool: pool.clone(),
                    name,
                    period,
                    tolerance: period * f64::from(attempts),
                    last_sweep: Mutex::new(None),
                })
            }
            Pool::Sqlite(_) => self,
        }
    }

    /// Counts one attempt on `key`; the wait when the limit has run out.
    async fn take(&self, key: &str) -> Result<(), Duration> {
        match self {
            Bucket::Local { limiter, clock } => {
                if limiter.len() > PRUNE_ABOVE {
                    limiter.retain_recent();
                }
                limiter.check_key(&key.to_owned()).map_err(|wait| wait.wait_time_from(clock.now()))
            }
            Bucket::Shared(shared) => shared.take(key).await,
        }
    }
}

impl Shared {
    async fn take(&self, key: &str) -> Result<(), Duration> {
        self.sweep().await;
        let key = format!("{}:{key}", self.name);
        // The GCRA step in one statement: a new key is allowed; an existing one moves its
        // theoretical arrival time on by one period if that stays within the tolerance, and
        // otherwise is left as it is and no row comes back. "Now" is the database's clock
        // (`rate_limit_clock()`), read once the row is locked: replicas' clocks may disagree, and requests arriving
        // together reach the row in an order of their own, so a time taken before the
        // statement could be earlier than one already counted and refuse an attempt within
        // the quota. The millisecond of slack absorbs rounding; it is far below a period.
        let allowed: std::result::Result<Option<f64>, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO rate_limit AS r (key, tat) VALUES ($1, rate_limit_clock() + $2) \
             ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, rate_limit_clock()) + $2 \
               WHERE GREATEST(r.tat, rate_limit_clock()) + $2 - $3 <= rate_limit_clock() + 0.001 \
             RETURNING tat",
        )
        .bind(&key)
        .bind(self.period)
        .bind(self.tolerance)
        .fetch_optional(&self.pool)
        .await;
        match allowed {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let ahead: Option<f64> = sqlx::query_scalar("SELECT tat - rate_limit_clock() FROM rate_limit WHERE key = $1")
                    .bind(&key)
                    .fetch_optional(&self.pool)
                    .await
                    .ok()
                    .flatten();
                let wait = ahead.map_or(self.period, |ahead| ahead + self.period - self.tolerance);
                Err(Duration::from_secs_f64(wait.max(0.001)))
            }
            // The database is down: the request fails anyway at its next statement; a limit
            // that cannot be read does not lock everyone out.
            Err(e) => {
                tracing::warn!(error = ?e, limit = self.name, "the shared rate limit could not be read");
                Ok(())
            }
        }
    }

    /// Forgets keys whose limit has fully recovered (their arrival time is past), at most
    /// once a minute per process.
    async fn sweep(&self) {
        {
            let Ok(mut last) = self.last_sweep.lock() else { return };
            if last.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let swept = sqlx::query("DELETE FROM rate_limit WHERE tat < rate_limit_clock()").execute(&self.pool).await;
        if let Err(e) = swept {
            tracing::warn!(error = ?e, "the shared rate limits could not be swept");
        }
    }
}

/// One guarded action (log-in, second factor), limited per account and per address.
pub struct Throttle {
    per_account: Bucket,
    per_address: Bucket,
    quotas: (u32, u32),
}

impl Throttle {
    /// `per_account` and `per_address` attempts in any 15 minutes, refilled evenly.
    pub fn new(per_account: u32, per_address: u32) -> Throttle {
        Throttle {
            per_account: Bucket::local(per_account, WINDOW),
            per_address: Bucket::local(per_address, WINDOW),
            quotas: (per_account, per_address),
        }
    }

    /// Counted in the database every replica shares, under `name`, when it is PostgreSQL.
    pub fn shared(self, db: &Db, name: &'static str) -> Throttle {
        let (per_account, per_address) = self.quotas;
        Throttle {
            per_account: self.per_account.shared(db, name, per_account, WINDOW),
            per_address: self.per_address.shared(db, name, per_address, WINDOW),
            quotas: self.quotas,
        }
    }

    /// Counts an attempt on `account` (any stable key: a normalised email, an account id) from
    /// `address`; RATE_LIMITED with the wait when either has run out.
    pub async fn attempt(&self, account: &str, address: Option<&str>) -> Result<()> {
        // The address is checked first: a flood from one address does not use up the
        // account's allowance and lock its owner out.
        if let Some(address) = address
            && let Err(wait) = self.per_address.take(&format!("address:{address}")).await
        {
            return Err(refusal(wait));
        }
        self.per_account.take(&format!("account:{}", account.to_lowercase())).await.map_err(refusal)
    }
}

/// An action limited per client address only (sign-ups): every attempt counts, aliases and
/// the operations of a batch one by one, since each runs the resolver.
pub struct AddressLimit {
    per_address: Bucket,
    quota: (u32, Duration),
}

impl AddressLimit {
    /// `attempts` in any `window`, refilled evenly.
    pub fn new(attempts: u32, window: Duration) -> AddressLimit {
        AddressLimit { per_address: Bucket::local(attempts, window), quota: (attempts, window) }
    }

    /// Counted in the database every replica shares, under `name`, when it is PostgreSQL.
    pub fn shared(self, db: &Db, name: &'static str) -> AddressLimit {
        let (attempts, window) = self.quota;
        AddressLimit { per_address: self.per_address.shared(db, name, attempts, window), quota: self.quota }
    }

    /// Counts an attempt from `address` (none known: not limited, as for log-ins).
    pub async fn attempt(&self, address: Option<&str>) -> Result<()> {
        let Some(address) = address else { return Ok(()) };
        self.per_address.take(&format!("address:{address}")).await.map_err(refusal)
    }
}

/// Failed guesses at tokens (bearer tokens, email-change links), per client address. Only
/// failures are counted, so a client using its good token never runs out. Once an address has
/// used up its failures, every token check from it is refused unchecked (even a good token)
/// until the window has room again: as with log-ins, a throttled guess learns nothing.
pub struct FailureLimit {
    failures: Bucket,
    blocked: Blocked,
    quota: u32,
}

/// The addresses that ran out of failures, and until when they are refused.
enum Blocked {
    Local(Mutex<HashMap<String, Instant>>),
    /// In the shared table, as `name:blocked:<address>` with the end as its time.
    Shared {
        pool: PgPool,
        name: &'static str,
    },
}

impl FailureLimit {
    /// `failures` in any 15 minutes, refilled evenly.
    pub fn new(failures: u32) -> FailureLimit {
        FailureLimit { failures: Bucket::local(failures, WINDOW), blocked: Blocked::Local(Mutex::default()), quota: failures }
    }

    /// Counted in the database every replica shares, under `name`, when it is PostgreSQL.
    pub fn shared(self, db: &Db, name: &'static str) -> FailureLimit {
        let blocked = match &db.pool {
            Pool::Postgres(pool) => Blocked::Shared { pool: pool.clone(), name },
            Pool::Sqlite(_) => self.blocked,
        };
        FailureLimit { failures: self.failures.shared(db, name, self.quota, WINDOW), blocked, quota: self.quota }
    }

    /// Before a token is checked: RATE_LIMITED while `address` is blocked.
    pub async fn check(&self, address: Option<&str>) -> Result<()> {
        let Some(address) = address else { return Ok(()) };
        match &self.blocked {
            Blocked::Local(blocked) => {
                let now = Instant::now();
                let Ok(mut blocked) = blocked.lock() else { return Ok(()) };
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
            Blocked::Shared { pool, name } => {
                let left: Option<f64> =
                    sqlx::query_scalar("SELECT tat - rate_limit_clock() FROM rate_limit WHERE key = $1 AND tat > rate_limit_clock()")
                        .bind(format!("{name}:blocked:{address}"))
                        .fetch_optional(pool)
                        .await
                        .ok()
                        .flatten();
                match left {
                    Some(left) => Err(refusal(Duration::from_secs_f64(left.max(0.001)))),
                    None => Ok(()),
                }
            }
        }
    }

    /// After a token did not check out: counts the failure; RATE_LIMITED (and the address
    /// blocked) when it was one too many.
    pub async fn failed(&self, address: Option<&str>) -> Result<()> {
        let Some(address) = address else { return Ok(()) };
        let Err(wait) = self.failures.take(&format!("failed:{address}")).await else { return Ok(()) };
        match &self.blocked {
            Blocked::Local(blocked) => {
                if let Ok(mut blocked) = blocked.lock() {
                    blocked.insert(address.to_owned(), Instant::now() + wait);
                }
            }
            Blocked::Shared { pool, name } => {
                let blocked = sqlx::query(
                    "INSERT INTO rate_limit AS r (key, tat) VALUES ($1, rate_limit_clock() + $2) \
                     ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, EXCLUDED.tat)",
                )
                .bind(format!("{name}:blocked:{address}"))
                .bind(wait.as_secs_f64())
                .execute(pool)
                .await;
                if let Err(e) = blocked {
                    tracing::warn!(error = ?e, "a blocked address could not be recorded");
                }
            }
        }
        Err(refusal(wait))
    }
}

fn refusal(wait: Duration) -> Error {
    metrics::counter!("concierge_rate_limited_total").increment(1);
    Error::RateLimited { retry_after_secs: wait.as_secs().max(1) }
}

fn quota_over(attempts: u32, window: Duration) -> Quota {
    let attempts = NonZeroU32::new(attempts.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = window / attempts.get();
    Quota::with_period(period.max(Duration::from_millis(1))).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_is_refused_after_its_attempts_with_a_retry_after() {
        let t = Throttle::new(3, 100);
        for _ in 0..3 {
            t.attempt("ada@example.com", Some("10.0.0.1")).await.unwrap();
        }
        match t.attempt("ADA@example.com", Some("10.0.0.2")).await {
            Err(Error::RateLimited { retry_after_secs }) => assert!((1..=300).contains(&retry_after_secs)),
            other => panic!("not throttled: {other:?}"),
        }
        t.attempt("grace@example.com", Some("10.0.0.2")).await.expect("other accounts are unaffected");
    }

    #[tokio::test]
    async fn an_address_is_refused_across_accounts() {
        let t = Throttle::new(100, 2);
        t.attempt("a@example.com", Some("10.0.0.1")).await.unwrap();
        t.attempt("b@example.com", Some("10.0.0.1")).await.unwrap();
        assert!(matches!(t.attempt("c@example.com", Some("10.0.0.1")).await, Err(Error::RateLimited { .. })));
        t.attempt("c@example.com", Some("10.0.0.9")).await.expect("other addresses are unaffected");
    }

    #[tokio::test]
    async fn sign_ups_are_limited_per_address() {
        let limit = AddressLimit::new(2, Duration::from_secs(3600));
        limit.attempt(Some("10.0.0.1")).await.unwrap();
        limit.attempt(Some("10.0.0.1")).await.unwrap();
        match limit.attempt(Some("10.0.0.1")).await {
            Err(Error::RateLimited { retry_after_secs }) => assert!((1..=1800).contains(&retry_after_secs)),
            other => panic!("not throttled: {other:?}"),
        }
        limit.attempt(Some("10.0.0.2")).await.expect("other addresses are unaffected");
    }

    #[tokio::test]
    async fn an_address_out_of_token_failures_is_refused_before_any_check() {
        let limit = FailureLimit::new(2);
        for _ in 0..2 {
            limit.check(Some("10.0.0.1")).await.unwrap();
            limit.failed(Some("10.0.0.1")).await.unwrap();
        }
        assert!(matches!(limit.failed(Some("10.0.0.1")).await, Err(Error::RateLimited { .. })), "one failure too many");
        assert!(matches!(limit.check(Some("10.0.0.1")).await, Err(Error::RateLimited { .. })), "blocked, even for a good token");
        limit.check(Some("10.0.0.2")).await.expect("other addresses are unaffected");
    }
}
