//! Appointments from platform events into users' primary calendars. An `appointment.*`
//! event records, in the transaction that stores it, the wanted state of the appointment in
//! the calendar of each user it names; the calendar worker writes it, retrying until it
//! lands. The event's subject id is the appointment: booking, moving and cancelling the
//! same one touch the same calendar event (one UID).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{Appointment, Person};
use super::store;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::identity::model::AccountId;
use crate::workspace::model::WorkspaceId;

/// What the calendars need of an `appointment.*` event a platform service published (the
/// platform events domain owns the event and hands this over; calendars never import it).
pub struct AppointmentEvent<'a> {
    pub kind: &'a str,
    /// The appointment's id in the publishing service: one calendar event per id.
    pub subject_id: &'a str,
    pub title: &'a str,
    pub url: Option<&'a str>,
    /// The event's data, already checked against the kind's schema.
    pub data: &'a Value,
    /// The users it is written for.
    pub user_ids: &'a [AccountId],
}

/// How the UIDs of the events Concierge writes end.
pub const UID_SUFFIX: &str = "@concierge";

/// Whether this kind of event changes a calendar.
pub fn is_appointment(kind: &str) -> bool {
    matches!(kind, "appointment.booked" | "appointment.rescheduled" | "appointment.cancelled")
}

/// The calendar event's UID for an appointment: stable, opaque, and the same for every user
/// it is written for (they are attendees of one meeting).
pub fn uid(workspace_id: WorkspaceId, appointment_id: &str) -> String {
    let digest = Sha256::digest(format!("{}\n{appointment_id}", workspace_id.0).as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}{UID_SUFFIX}")
}

/// Reads the appointment out of an event whose data passed the catalogue's schema. `at` is
/// the event's place in the request (`events[3]`), for errors.
pub fn appointment_of(at: &str, event: &AppointmentEvent<'_>) -> Result<Appointment> {
    let time = |key: &str| -> Result<DateTime<Utc>> {
        event
            .data
            .get(key)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| Error::invalid(format!("{at}.data/{key}"), "must be a date-time"))
    };
    let starts_at = time("startsAt")?;
    let ends_at = time("endsAt")?;
    if ends_at <= starts_at {
        return Err(Error::invalid(format!("{at}.data/endsAt"), "must be after startsAt"));
    }
    let text = |key: &str| event.data.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let person = |v: &Value| -> Option<Person> {
        let email = v.get("email")?.as_str()?.trim().to_owned();
        let name = v.get("name").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        Some(Person { name, email })
    };
    Ok(Appointment {
        title: event.title.to_owned(),
        starts_at,
        ends_at,
        location: text("location"),
        description: text("reason"),
        url: event.url.map(str::to_owned),
        organizer: event.data.get("organizer").and_then(person),
        attendees: event.data.get("attendees").and_then(Value::as_array).map(|a| a.iter().filter_map(person).collect()).unwrap_or_default(),
    })
}

/// Records the appointment's wanted state for each named user, in the event's transaction.
/// Returns whether anything was recorded.
pub async fn want(tx: &mut Tx, at: &str, workspace_id: WorkspaceId, event: &AppointmentEvent<'_>, now: DateTime<Utc>) -> Result<bool> {
    if !is_appointment(event.kind) || event.user_ids.is_empty() {
        return Ok(false);
    }
    let appointment = appointment_of(at, event)?;
    let cancelled = event.kind == "appointment.cancelled";
    let text = serde_json::to_string(&appointment).map_err(anyhow::Error::from)?;
    let key = format!("{}\n{}", workspace_id.0, event.subject_id);
    let uid = uid(workspace_id, event.subject_id);
    for user in dedup(event.user_ids) {
        store::want_appointment(tx, user, &key, &uid, cancelled, &text, now).await?;
    }
    Ok(true)
}

fn dedup(ids: &[AccountId]) -> Vec<AccountId> {
    let mut out = ids.to_vec();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appointment_keeps_its_uid_across_changes_and_workspaces_do_not_share_one() {
        let w1 = WorkspaceId(uuid::Uuid::now_v7());
        let w2 = WorkspaceId(uuid::Uuid::now_v7());
        assert_eq!(uid(w1, "apt-1"), uid(w1, "apt-1"));
        assert_ne!(uid(w1, "apt-1"), uid(w1, "apt-2"));
        assert_ne!(uid(w1, "apt-1"), uid(w2, "apt-1"));
        assert!(uid(w1, "a/../b c").chars().all(|c| c.is_ascii_alphanumeric() || c == '@'));
    }
}
