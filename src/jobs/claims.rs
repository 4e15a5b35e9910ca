//! Claims on queued work: an email or push job, an appointment write. A worker takes a row
//! for itself (its process's identity in the holder column, an expiry in the other), renews
//! every claim it holds every third of the claim's length while the attempt runs, and clears
//! both when the attempt ends. A process that dies leaves its claims to run out, and the rows
//! go back to every worker at most one claim length later. The claim itself is each queue's
//! own statement (what makes a row due differs); renewing is this one.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::on_pool;

/// A queue whose rows carry a holder and a claim expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    table: &'static str,
    holder: &'static str,
    until: &'static str,
}

/// Email and push jobs (`delivery_job`).
pub const DELIVERY_JOB: Claimed = Claimed { table: "delivery_job", holder: "locked_by", until: "locked_until" };
/// Appointment writes to users' calendars.
pub const APPOINTMENT_WRITE: Claimed = Claimed { table: "appointment_write", holder: "claimed_by", until: "claimed_until" };

/// Moves every live claim `holder` has in the queue to `until`.
pub async fn renew(db: &Db, what: Claimed, holder: Uuid, until: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let Claimed { table, holder: by, until: column } = what;
    let sql = format!("UPDATE {table} SET {column} = $2 WHERE {by} = $1 AND {column} IS NOT NULL");
    on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(holder).bind(until).execute(p).await.map(drop))
}

/// Runs `work`, renewing `holder`'s claims in the queue to `now() + length` every third of
/// `length` until it ends. A renewal the database refuses is logged; the next may get through
/// before the claims run out.
pub async fn while_held<F: Future>(
    db: &Db,
    what: Claimed,
    holder: Uuid,
    length: Duration,
    now: impl Fn() -> DateTime<Utc>,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(length / 3) => {
                let until = now() + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::seconds(15));
                if let Err(e) = renew(db, what, holder, until).await {
                    tracing::warn!(error = %e, table = what.table, "cannot renew this process's claims");
                }
            }
        }
    }
}
