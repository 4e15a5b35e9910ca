//! Gauges read when `/metrics` is scraped: this replica's leases and how far behind its
//! mailboxes are, the outboxes' backlog, and the database pool. Reading them at scrape time
//! (a handful of indexed counts) keeps nothing stale between scrapes: a mailbox this replica
//! let go simply stops being listed.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::jobs::lease;
use crate::services::Services;

/// Longest the database part of a scrape may take; past it (or on an error) this scrape
/// leaves those gauges out and says so in `concierge_scrape_database_ok`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Mailboxes given a lag series of their own: this replica's longest behind. It bounds the
/// series per replica however many mailboxes it syncs.
pub const LAGGING_MAILBOXES: i64 = 100;

/// Appends the gauges to `out` in the Prometheus text format.
pub async fn render(services: &Services, out: &mut String) {
    pool(services, out);
    let read = tokio::time::timeout(SCRAPE_TIMEOUT, from_database(services)).await;
    let ok = match read {
        Ok(Ok(text)) => {
            out.push_str(&text);
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the gauges for /metrics");
            false
        }
        Err(_) => {
            tracing::warn!(timeout_secs = SCRAPE_TIMEOUT.as_secs(), "reading the gauges for /metrics took too long");
            false
        }
    };
    family(
        out,
        "concierge_scrape_database_ok",
        "gauge",
        "1 when this scrape could read the database gauges (leases, lag, outboxes); 0 when they were left out.",
    );
    sample(out, "concierge_scrape_database_ok", &[], if ok { 1.0 } else { 0.0 });
}

fn pool(services: &Services, out: &mut String) {
    let pool = services.db.pool_use();
    family(out, "concierge_db_pool_connections", "gauge", "Database connections this replica has open, by state.");
    sample(out, "concierge_db_pool_connections", &[("state", "in_use")], f64::from(pool.in_use));
    sample(out, "concierge_db_pool_connections", &[("state", "idle")], f64::from(pool.idle));
    family(out, "concierge_db_pool_max_connections", "gauge", "The most database connections this replica's pool opens.");
    sample(out, "concierge_db_pool_max_connections", &[], f64::from(pool.max));
}

async fn from_database(services: &Services) -> Result<String, sqlx::Error> {
    let db = &services.db;
    let process = services.instance.id();
    // Leases run on the wall clock; schedules and queue times on the gateway's clock (tests
    // move it by hand; in production the two are the same).
    let wall = Utc::now();
    let now = services.clock.now();
    let mut out = String::new();

    let mailboxes = lease::count_held(db, lease::MAILBOX, process, wall).await?;
    let calendars = lease::count_held(db, lease::CALENDAR_ACCOUNT, process, wall).await?;
    family(&mut out, "concierge_leases_held", "gauge", "Sync leases this replica holds and that have not run out, by kind.");
    sample(&mut out, "concierge_leases_held", &[("kind", "mailbox")], mailboxes as f64);
    sample(&mut out, "concierge_leases_held", &[("kind", "calendar_account")], calendars as f64);

    let lagging = crate::mailboxes::store::held_caught_up_at(db, process, wall, LAGGING_MAILBOXES).await?;
    family(
        &mut out,
        "concierge_mailbox_sync_lag_seconds",
        "gauge",
        "Per mailbox this replica syncs (its longest behind, at most 100): seconds since its sync last caught up with the server.",
    );
    for (mailbox_id, caught_up_at) in &lagging {
        sample(
            &mut out,
            "concierge_mailbox_sync_lag_seconds",
            &[("mailbox_id", &mailbox_id.0.to_string())],
            seconds_since(wall, *caught_up_at),
        );
    }

    let mut outboxes: Vec<(&str, i64, Option<DateTime<Utc>>)> = Vec::with_capacity(4);
    let jobs = crate::notifications::outbox::backlog(db, now).await?;
    for (label, channel) in [("email", crate::notifications::outbox::EMAIL), ("push", crate::notifications::outbox::PUSH)] {
        let (depth, oldest) = jobs.iter().find(|(c, _, _)| c == channel).map_or((0, None), |(_, d, o)| (*d, *o));
        outboxes.push((label, depth, oldest));
    }
    let (depth, oldest) = crate::webhooks::store::backlog(db, now).await?;
    outboxes.push(("webhook", depth, oldest));
    let (depth, oldest) = crate::calendars::store::write_backlog(db).await?;
    outboxes.push(("calendar_write", depth, oldest));
    family(
        &mut out,
        "concierge_outbox_depth",
        "gauge",
        "Jobs that should have gone by now and have not (due, or waiting for a retry), per outbox.",
    );
    for (outbox, depth, _) in &outboxes {
        sample(&mut out, "concierge_outbox_depth", &[("outbox", outbox)], *depth as f64);
    }
    family(
        &mut out,
        "concierge_outbox_oldest_job_age_seconds",
        "gauge",
        "Seconds since the oldest of those jobs was queued (0 when there are none), per outbox.",
    );
    for (outbox, _, oldest) in &outboxes {
        sample(&mut out, "concierge_outbox_oldest_job_age_seconds", &[("outbox", outbox)], oldest.map_or(0.0, |at| seconds_since(now, at)));
    }
    Ok(out)
}

fn seconds_since(now: DateTime<Utc>, then: DateTime<Utc>) -> f64 {
    ((now - then).num_milliseconds().max(0) as f64) / 1000.0
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_in_the_text_format_with_their_labels_escaped() {
        let mut out = String::new();
        family(&mut out, "concierge_x", "gauge", "An example.");
        sample(&mut out, "concierge_x", &[], 3.0);
        sample(&mut out, "concierge_x", &[("a", "b"), ("c", "q\"u\\o\nte")], 1.5);
        assert_eq!(
            out,
            "# HELP concierge_x An example.\n# TYPE concierge_x gauge\nconcierge_x 3\nconcierge_x{a=\"b\",c=\"q\\\"u\\\\o\\nte\"} 1.5\n"
        );
    }

    #[test]
    fn an_age_is_never_negative() {
        let now = Utc::now();
        assert_eq!(seconds_since(now, now + chrono::Duration::seconds(5)), 0.0);
        assert_eq!(seconds_since(now, now - chrono::Duration::milliseconds(2500)), 2.5);
    }
}
