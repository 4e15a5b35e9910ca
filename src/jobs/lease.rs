//! The one lease on work that only one gateway process may do at a time (a mailbox's sync, a
//! calendar account's sync), when several processes share one PostgreSQL.
//!
//! A lease is a row's holder and an expiry (`sync_owner`, `sync_lease_until`). The holder is
//! the process's identity ([`crate::instance::Instance`]), which survives a restart, so a
//! gateway started again after a crash takes its own leases back at once. [`claim`] takes a
//! free lease, renews one the caller holds, or steals one whose holder let it run out (it
//! died or stalled); [`release`] gives it up when the work ends, so another process may start
//! at once; [`Held`] renews it every third of its length while the work runs and says when it
//! was lost.
//!
//! After a holder is killed, its lease runs out at most one lease length later, and the other
//! processes, which wait for exactly that instant ([`Claim::HeldUntil`]), take the work over.
//! With the default [`DEFAULT_LEASE`] that is within 15 s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::Db;
use crate::on_pool;

/// The lease length unless configured otherwise (`CONCIERGE_MAIL_LEASE_SECS` for mailboxes):
/// short enough that a killed holder's work is taken over within 15 s, long enough that a
/// holder renewing every 5 s does not lose it to a slow database.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// What can be leased: a table whose rows carry `sync_owner` and `sync_lease_until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leased {
    table: &'static str,
    key: &'static str,
}

/// A mailbox's sync.
pub const MAILBOX: Leased = Leased { table: "mailbox", key: "mailbox_id" };
/// A calendar account's sync.
pub const CALENDAR_ACCOUNT: Leased = Leased { table: "calendar_account", key: "calendar_account_id" };

/// What [`claim`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lease until `now + lease`.
    Taken,
    /// Another process holds it until this instant (by its own clock); ask again then.
    HeldUntil(DateTime<Utc>),
    /// The row is gone.
    Missing,
}

/// Takes the lease on row `id` for `holder` until `now + lease`: free, held by `holder`
/// already (a renewal), or run out (stolen from a holder that died or stalled).
pub async fn claim(db: &Db, what: Leased, id: Uuid, holder: Uuid, now: DateTime<Utc>, lease: Duration) -> Result<Claim, sqlx::Error> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(15));
    let Leased { table, key } = what;
    let sql = format!(
        "UPDATE {table} SET sync_owner = $2, sync_lease_until = $4 WHERE {key} = $1 \
           AND (sync_owner IS NULL OR sync_owner = $2 OR sync_lease_until IS NULL OR sync_lease_until < $3)"
    );
    let taken = on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id)
        .bind(holder)
        .bind(now)
        .bind(until)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))?;
    if taken {
        return Ok(Claim::Taken);
    }
    Ok(match holder_of(db, what, id).await? {
        None => Claim::Missing,
        Some((_, Some(until))) => Claim::HeldUntil(until),
        // Released between the two statements: free now.
        Some((_, None)) => Claim::HeldUntil(now),
    })
}

/// Who holds row `id`'s lease and until when; None when the row is gone.
pub async fn holder_of(db: &Db, what: Leased, id: Uuid) -> Result<Option<(Option<Uuid>, Option<DateTime<Utc>>)>, sqlx::Error> {
    let Leased { table, key } = what;
    let sql = format!("SELECT sync_owner, sync_lease_until FROM {table} WHERE {key} = $1");
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)
}

/// The rows nobody holds a live lease on at `now`: free (released when the work ended, or
/// never taken) or run out (the holder died). What a process that never started the work
/// (it was set up through another process) sweeps for, to take it over.
pub async fn claimable(db: &Db, what: Leased, now: DateTime<Utc>) -> Result<Vec<Uuid>, sqlx::Error> {
    let Leased { table, key } = what;
    let sql = format!("SELECT {key} FROM {table} WHERE sync_owner IS NULL OR sync_lease_until IS NULL OR sync_lease_until < $1");
    on_pool!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(now).fetch_all(p).await)
}

/// The rows whose holder let the lease run out at `now` (it died, or stalled past it).
pub async fn expired(db: &Db, what: Leased, now: DateTime<Utc>) -> Result<Vec<Uuid>, sqlx::Error> {
    let Leased { table, key } = what;
    let sql = format!("SELECT {key} FROM {table} WHERE sync_owner IS NOT NULL AND sync_lease_until < $1");
    on_pool!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(now).fetch_all(p).await)
}

/// How many rows `holder` holds a live lease on at `now` (`/metrics`).
pub async fn count_held(db: &Db, what: Leased, holder: Uuid, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    let Leased { table, .. } = what;
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE sync_owner = $1 AND sync_lease_until > $2");
    on_pool!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(holder).bind(now).fetch_one(p).await)
}

/// Gives the lease up, if `holder` still holds it, so another process may take the work at once.
pub async fn release(db: &Db, what: Leased, id: Uuid, holder: Uuid) -> Result<(), sqlx::Error> {
    let Leased { table, key } = what;
    let sql = format!("UPDATE {table} SET sync_owner = NULL, sync_lease_until = NULL WHERE {key} = $1 AND sync_owner = $2");
    on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id).bind(holder).execute(p).await.map(drop))
}

/// How long to wait before asking for a lease held elsewhere until `until`: until it runs out
/// (and a moment more, for clocks a little apart), but no longer than one lease, so a lease
/// released early is noticed too.
pub fn wait_for(until: DateTime<Utc>, now: DateTime<Utc>, lease: Duration) -> Duration {
    let left = (until - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(100);
    left.min(lease)
}

/// A lease this process holds while its work runs: renewed every third of its length on a
/// task of its own. Dropping it stops the renewal (the lease then runs out unless released).
pub struct Held {
    lost: CancellationToken,
    renewal: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Renews the lease (taken already with [`claim`]) every third of `lease` until dropped.
    pub fn renew(db: Db, what: Leased, id: Uuid, holder: Uuid, lease: Duration) -> Held {
        let lost = CancellationToken::new();
        let renewal = tokio::spawn({
            let lost = lost.clone();
            async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match claim(&db, what, id, holder, Utc::now(), lease).await {
                        Ok(Claim::Taken) => {}
                        // A database error is not a lost lease yet: the next renewal may get
                        // through before the lease runs out.
                        Err(e) => tracing::warn!(error = %e, table = what.table, "cannot renew a lease; trying again"),
                        Ok(Claim::HeldUntil(_) | Claim::Missing) => {
                            tracing::warn!(table = what.table, %id, "lost a lease to another process (this one stalled past it)");
                            lost.cancel();
                            return;
                        }
                    }
                }
            }
        });
        Held { lost, renewal }
    }

    /// Cancelled when another process took the lease over (this one stalled past it), or the
    /// row is gone: the work must stop.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_asks_again_when_the_lease_runs_out_but_within_one_lease() {
        let now = Utc::now();
        let lease = Duration::from_secs(15);
        assert_eq!(wait_for(now + chrono::Duration::seconds(4), now, lease), Duration::from_millis(4100));
        assert_eq!(wait_for(now - chrono::Duration::seconds(4), now, lease), Duration::from_millis(100), "run out already");
        assert_eq!(wait_for(now + chrono::Duration::hours(1), now, lease), lease, "a far expiry is looked at again within a lease");
    }
}
