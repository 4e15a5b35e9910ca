//! The outbox's SQL: delivery jobs queued with a notice (or a daily summary), claimed by a
//! delivery worker with a lease, and closed as sent, skipped or failed.
//!
//! Claiming is a conditional update (`… WHERE locked_until is free`) whose row count says
//! who won, so any number of workers on one PostgreSQL share the queue without two of them
//! attempting a job at once, and the same SQL serves SQLite. The claim names its holder
//! (`locked_by`, the process's instance id) and is renewed while the attempt runs; a holder
//! that died leaves its jobs to the others when the claim runs out. A holder that died after
//! the mail server took a message and before closing its job has sent it: the next attempt
//! sends it again, with the same `Message-ID` (at least once).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::identity::model::AccountId;
use crate::on_pool;

pub const EMAIL: &str = "EMAIL";
pub const PUSH: &str = "PUSH";
pub const NOTIFICATION: &str = "NOTIFICATION";
pub const DIGEST: &str = "DIGEST";

pub struct NewJob<'a> {
    pub account_id: AccountId,
    pub channel: &'static str,
    pub kind: &'static str,
    pub notification_id: Option<Uuid>,
    pub push_subscription_id: Option<Uuid>,
    pub payload: &'a str,
    pub idempotency_key: &'a str,
    pub batchable: bool,
    pub run_after: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Queues a job; false when one with the same idempotency key exists already.
pub async fn enqueue(tx: &mut Tx, job: &NewJob<'_>) -> Result<bool, sqlx::Error> {
    Ok(super::store::enqueue_jobs(tx, std::slice::from_ref(job)).await? == 1)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub job_id: Uuid,
    pub account_id: AccountId,
    pub channel: String,
    pub kind: String,
    pub notification_id: Option<Uuid>,
    pub push_subscription_id: Option<Uuid>,
    pub payload: String,
    pub batchable: bool,
    pub attempts: i32,
    pub run_after: DateTime<Utc>,
}

const JOB_COLUMNS: &str =
    "job_id, account_id, channel, kind, notification_id, push_subscription_id, payload, batchable, attempts, run_after";

/// Pending jobs due at `now` that nobody holds, oldest first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM delivery_job WHERE state = 'PENDING' AND run_after <= $1 \
         AND (locked_until IS NULL OR locked_until <= $1) ORDER BY run_after, job_id LIMIT $2"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(now).bind(limit).fetch_all(p).await)
}

/// Other pending batchable email jobs of the account nobody holds, whatever their time:
/// they ride along with one that is due.
pub async fn batch_mates(db: &Db, account_id: AccountId, except: Uuid, now: DateTime<Utc>, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM delivery_job WHERE account_id = $1 AND channel = 'EMAIL' AND kind = 'NOTIFICATION' \
         AND batchable AND state = 'PENDING' AND job_id <> $2 AND (locked_until IS NULL OR locked_until <= $3) \
         ORDER BY job_id LIMIT $4"
    );
    on_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(account_id)
        .bind(except)
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// Takes a job for `holder` (this process) until `until`, counting an attempt; false when
/// another worker has it.
pub async fn claim(db: &Db, job_id: Uuid, now: DateTime<Utc>, until: DateTime<Utc>, holder: Uuid) -> Result<bool, sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "UPDATE delivery_job SET locked_until = $3, locked_by = $4, attempts = attempts + 1 \
         WHERE job_id = $1 AND state = 'PENDING' AND (locked_until IS NULL OR locked_until <= $2)")
        .bind(job_id)
        .bind(now)
        .bind(until)
        .bind(holder)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// Closes jobs as SENT, SKIPPED or FAILED; `sent_with` names the job whose message carried them.
pub async fn close(
    db: &Db,
    ids: &[Uuid],
    state: &str,
    sent_with: Option<Uuid>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE delivery_job SET state = $1, sent_with = $2, last_error = $3, done_at = $4, locked_until = NULL, locked_by = NULL \
         WHERE job_id IN ({})",
        crate::db::placeholders(5, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(state).bind(sent_with).bind(error).bind(now);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(p).await.map(drop)
    })
}

/// Puts jobs back for another try at `run_after`.
pub async fn retry_later(db: &Db, ids: &[Uuid], run_after: DateTime<Utc>, error: &str) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE delivery_job SET run_after = $1, last_error = $2, locked_until = NULL, locked_by = NULL WHERE job_id IN ({})",
        crate::db::placeholders(3, ids.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(run_after).bind(error);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(p).await.map(drop)
    })
}

/// When the next pending job falls due (held ones count from their lease's end).
pub async fn next_due(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = on_pool!(db, p => sqlx::query_as(
        "SELECT run_after, locked_until FROM delivery_job WHERE state = 'PENDING' ORDER BY run_after LIMIT 50")
        .fetch_all(p)
        .await)?;
    Ok(rows.into_iter().map(|(run, lock)| lock.map_or(run, |l| l.max(run))).min())
}

/// A job's state, for tests and operators.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobState {
    pub job_id: Uuid,
    pub channel: String,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_with: Option<Uuid>,
}

pub async fn jobs_of(db: &Db, account_id: AccountId) -> Result<Vec<JobState>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT job_id, channel, kind, state, attempts, last_error, sent_with FROM delivery_job WHERE account_id = $1 ORDER BY job_id")
        .bind(account_id)
        .fetch_all(p)
        .await)
}

/// The notifications the given jobs deliver.
pub async fn notification_ids(db: &Db, jobs: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT notification_id FROM delivery_job WHERE notification_id IS NOT NULL AND job_id IN ({})",
        crate::db::placeholders(1, jobs.len())
    );
    on_pool!(db, p => {
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()));
        for id in jobs {
            q = q.bind(*id);
        }
        q.fetch_all(p).await
    })
}

/// Per channel: the jobs that should have gone by `now` and have not (pending and due, or
/// waiting for a retry after a failed attempt), and when the oldest of them was queued
/// (`/metrics`). Jobs scheduled for later (a daily summary, an email waiting for company)
/// count once their time comes.
pub async fn backlog(db: &Db, now: DateTime<Utc>) -> Result<Vec<(String, i64, Option<DateTime<Utc>>)>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT channel, COUNT(*), MIN(created_at) FROM delivery_job \
         WHERE state = 'PENDING' AND (run_after <= $1 OR attempts > 0) GROUP BY channel")
        .bind(now)
        .fetch_all(p)
        .await)
}
