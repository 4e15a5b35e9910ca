//! Platform events as published: each checked once, into a `NewPlatformEvent`, before
//! anything is stored. Every error names the place in the request (`events[3].data/dueAt`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::events::catalogue::{self, EventKind, EventSource};
use crate::identity::model::AccountId;
use crate::workspace::model::Role;

/// The largest `data`, serialised.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_KEY_CHARS: usize = 200;
pub const MAX_URL_CHARS: usize = 2048;
/// Recipients named one by one in one event.
pub const MAX_USER_IDS: usize = 1000;

/// One event as the client sent it.
pub struct RawEvent {
    pub kind: String,
    pub user_ids: Vec<String>,
    pub roles: Vec<Role>,
    /// Members who are the subject's assignee.
    pub assignee_ids: Vec<String>,
    pub subject: RawSubject,
    pub actor: Option<RawActor>,
    pub occurred_at: DateTime<Utc>,
    pub data: Option<Value>,
    pub idempotency_key: String,
}

pub struct RawSubject {
    pub kind: String,
    pub id: String,
    pub title: String,
    pub url: Option<String>,
}

pub struct RawActor {
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// What the event is about: a task, an appointment, an opportunity…
#[derive(Clone, Debug)]
pub struct Subject {
    pub kind: String,
    pub id: String,
    pub title: String,
    pub url: Option<String>,
}

/// Who did it: a user of the platform, an automation…
#[derive(Clone, Debug)]
pub struct Actor {
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// An event that passed every check but the workspace ones (recipients are resolved against
/// the members when it is published).
pub struct NewPlatformEvent {
    pub kind: &'static EventKind,
    /// The named recipients: `userIds` as sent (the first `named_user_ids`), then the
    /// assignees not among them.
    pub user_ids: Vec<AccountId>,
    pub named_user_ids: usize,
    pub roles: Vec<Role>,
    /// The recipients who are the subject's assignee: for them the event is "assigned to
    /// me" (audio alerts set to ASSIGNED_TO_ME sound for them alone).
    pub assignee_ids: Vec<AccountId>,
    pub subject: Subject,
    pub actor: Option<Actor>,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
    /// `data` as stored.
    pub data_text: String,
    pub idempotency_key: String,
    /// A task's due time or an appointment's start: what the daily summary's "today" reads.
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// The place in the request: `events[3]` + `.subject.title`.
struct At(usize);

impl At {
    fn field(&self, rest: &str) -> String {
        format!("events[{}]{rest}", self.0)
    }

    fn invalid(&self, rest: &str, message: impl Into<String>) -> Error {
        Error::invalid(self.field(rest), message.into())
    }

    /// Trimmed text of `min..=max` characters with no control characters.
    fn text(&self, rest: &str, raw: &str, min: usize, max: usize) -> Result<String> {
        let value = raw.trim();
        let n = value.chars().count();
        if n < min {
            return Err(self.invalid(rest, "cannot be empty"));
        }
        if n > max {
            return Err(self.invalid(rest, format!("at most {max} characters")));
        }
        if value.chars().any(char::is_control) {
            return Err(self.invalid(rest, "cannot contain control characters"));
        }
        Ok(value.to_owned())
    }

    fn optional(&self, rest: &str, raw: Option<&str>, max: usize) -> Result<Option<String>> {
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => self.text(rest, v, 1, max).map(Some),
        }
    }
}

impl NewPlatformEvent {
    /// What the calendars need of it, if it is an appointment.
    pub fn appointment(&self) -> crate::calendars::appointments::AppointmentEvent<'_> {
        crate::calendars::appointments::AppointmentEvent {
            kind: self.kind.kind,
            subject_id: &self.subject.id,
            title: &self.subject.title,
            url: self.subject.url.as_deref(),
            data: &self.data,
            user_ids: &self.user_ids,
        }
    }

    /// Whether `account` is the subject's assignee: named in `assigneeIds`, or, when the
    /// event names none, named in `userIds` of a kind that is about assigning.
    pub fn assigned_to(&self, account: AccountId) -> bool {
        if self.assignee_ids.is_empty() {
            self.kind.audio_assigned && self.user_ids.contains(&account)
        } else {
            self.assignee_ids.contains(&account)
        }
    }

    /// Checks the event at `index` of the request.
    pub fn parse(index: usize, raw: RawEvent) -> Result<NewPlatformEvent> {
        let at = At(index);
        let kind = catalogue::find(raw.kind.trim()).ok_or_else(|| at.invalid(".kind", format!("unknown event kind {:?}", raw.kind)))?;
        if kind.source != EventSource::Platform {
            return Err(at.invalid(".kind", format!("{} events are produced by Concierge itself", kind.kind)));
        }
        // The key is compared exactly as sent: no trimming.
        let key = raw.idempotency_key;
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_KEY_CHARS || key.chars().any(char::is_control) {
            return Err(at.invalid(".idempotencyKey", format!("1–{MAX_KEY_CHARS} characters, no control characters")));
        }
        if raw.user_ids.is_empty() && raw.roles.is_empty() && raw.assignee_ids.is_empty() {
            return Err(at.invalid(".recipients", "name userIds, assigneeIds, roles or any of them"));
        }
        if raw.assignee_ids.len() > MAX_USER_IDS {
            return Err(at.invalid(".recipients.assigneeIds", format!("at most {MAX_USER_IDS} assignees per event")));
        }
        if raw.user_ids.len() > MAX_USER_IDS {
            return Err(at.invalid(".recipients.userIds", format!("at most {MAX_USER_IDS} users per event; use roles for more")));
        }
        let mut user_ids = Vec::with_capacity(raw.user_ids.len());
        for (i, id) in raw.user_ids.iter().enumerate() {
            let id = id.parse().map(AccountId).map_err(|_| at.invalid(&format!(".recipients.userIds[{i}]"), "not a valid id"))?;
            if !user_ids.contains(&id) {
                user_ids.push(id);
            }
        }
        let mut assignee_ids = Vec::with_capacity(raw.assignee_ids.len());
        for (i, id) in raw.assignee_ids.iter().enumerate() {
            let id = id.parse().map(AccountId).map_err(|_| at.invalid(&format!(".recipients.assigneeIds[{i}]"), "not a valid id"))?;
            if !assignee_ids.contains(&id) {
                assignee_ids.push(id);
            }
        }
        let named_user_ids = user_ids.len();
        // An assignee is a recipient too (and must be a member, as every named one).
        if user_ids.len() + assignee_ids.iter().filter(|a| !user_ids.contains(a)).count() > MAX_USER_IDS {
            return Err(at.invalid(".recipients", format!("at most {MAX_USER_IDS} users per event; use roles for more")));
        }
        for id in &assignee_ids {
            if !user_ids.contains(id) {
                user_ids.push(*id);
            }
        }
        let mut roles = raw.roles;
        roles.sort();
        roles.dedup();
        let subject = Subject {
            kind: at.text(".subject.type", &raw.subject.kind, 1, 100)?,
            id: at.text(".subject.id", &raw.subject.id, 1, 200)?,
            title: at.text(".subject.title", &raw.subject.title, 1, MAX_TITLE_CHARS)?,
            url: match raw.subject.url.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(url) => Some(parse_url(&at, url)?),
            },
        };
        let actor = match raw.actor {
            None => None,
            Some(a) => Some(Actor {
                kind: at.text(".actor.type", &a.kind, 1, 100)?,
                id: at.optional(".actor.id", a.id.as_deref(), 200)?,
                name: at.optional(".actor.name", a.name.as_deref(), 200)?,
            }),
        };
        let data = raw.data.unwrap_or_else(|| Value::Object(Default::default()));
        let data_text = serde_json::to_string(&data).map_err(|_| at.invalid(".data", "not JSON"))?;
        if data_text.len() > MAX_DATA_BYTES {
            return Err(at.invalid(".data", format!("at most {MAX_DATA_BYTES} bytes of JSON")));
        }
        if let Err(errors) = kind.validate(&data) {
            return Err(schema_error(&at, &errors));
        }
        let scheduled_at = scheduled_at(kind.kind, &data);
        Ok(NewPlatformEvent {
            kind,
            user_ids,
            named_user_ids,
            assignee_ids,
            roles,
            subject,
            actor,
            occurred_at: raw.occurred_at,
            data,
            data_text,
            idempotency_key: key,
            scheduled_at,
        })
    }

    /// Who the event is about, for grouping new messages in the daily summary.
    pub fn contact(&self) -> Option<String> {
        match self.data.get("contactName").and_then(Value::as_str) {
            Some(name) if !name.trim().is_empty() => Some(name.trim().to_owned()),
            _ => self.actor.as_ref().and_then(|a| a.name.clone()),
        }
    }
}

/// An absolute http(s) URL.
fn parse_url(at: &At, raw: &str) -> Result<String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(at.invalid(".subject.url", format!("at most {MAX_URL_CHARS} characters")));
    }
    let url = url::Url::parse(raw).map_err(|_| at.invalid(".subject.url", "not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(at.invalid(".subject.url", "must be an http or https URL"));
    }
    Ok(url.to_string())
}

/// The catalogue's messages read `<JSON pointer>: <what is wrong>`; the first one's pointer
/// goes into the field (`events[3].data/dueAt`), and every message into the text.
fn schema_error(at: &At, errors: &[String]) -> Error {
    let pointer = errors.first().and_then(|e| e.split_once(": ")).map(|(p, _)| p).unwrap_or("/");
    let field = if pointer == "/" || !pointer.starts_with('/') { at.field(".data") } else { at.field(&format!(".data{pointer}")) };
    Error::invalid(field, format!("data does not match the kind's schema: {}", errors.join("; ")))
}

/// `data.dueAt` of a task, `data.startsAt` of an appointment.
fn scheduled_at(kind: &str, data: &Value) -> Option<DateTime<Utc>> {
    let key = if kind.starts_with("task.") {
        "dueAt"
    } else if kind.starts_with("appointment.") {
        "startsAt"
    } else {
        return None;
    };
    let raw = data.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc))
}

/// Kinds after which a task or an appointment is no longer on anyone's day.
pub fn ends_the_subject(kind: &str) -> bool {
    matches!(kind, "task.completed" | "appointment.cancelled")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(kind: &str, data: Value) -> RawEvent {
        RawEvent {
            kind: kind.into(),
            user_ids: vec![uuid::Uuid::now_v7().to_string()],
            roles: vec![],
            assignee_ids: vec![],
            subject: RawSubject {
                kind: "task".into(),
                id: "t-1".into(),
                title: "Call Bob back".into(),
                url: Some("https://crm.example/t/1".into()),
            },
            actor: Some(RawActor { kind: "user".into(), id: Some("u-9".into()), name: Some("Eve".into()) }),
            occurred_at: Utc::now(),
            data: Some(data),
            idempotency_key: "task-1-assigned".into(),
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field.into_owned(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn a_good_task_passes_and_its_due_time_is_kept() {
        let Ok(e) = NewPlatformEvent::parse(0, raw("task.assigned", json!({ "dueAt": "2026-11-23T15:00:00+01:00" }))) else {
            panic!("refused")
        };
        assert_eq!(e.kind.kind, "task.assigned");
        assert_eq!(e.scheduled_at, Some(DateTime::parse_from_rfc3339("2026-11-23T14:00:00Z").unwrap().with_timezone(&Utc)));
        assert_eq!(e.contact().as_deref(), Some("Eve"));
    }

    #[test]
    fn errors_name_the_event_and_the_place() {
        let cases: Vec<(RawEvent, &str)> = vec![
            (raw("task.exploded", json!({})), "events[2].kind"),
            (raw("message.receive", json!({})), "events[2].kind"),
            (raw("task.assigned", json!({ "dueAt": "tomorrow" })), "events[2].data/dueAt"),
            (raw("task.reminder", json!({})), "events[2].data"),
            (RawEvent { idempotency_key: String::new(), ..raw("task.assigned", json!({})) }, "events[2].idempotencyKey"),
            (RawEvent { idempotency_key: "k".repeat(201), ..raw("task.assigned", json!({})) }, "events[2].idempotencyKey"),
            (RawEvent { user_ids: vec![], ..raw("task.assigned", json!({})) }, "events[2].recipients"),
            (RawEvent { user_ids: vec!["x".into()], ..raw("task.assigned", json!({})) }, "events[2].recipients.userIds[0]"),
            (
                RawEvent {
                    subject: RawSubject { kind: "task".into(), id: "1".into(), title: "t".repeat(501), url: None },
                    ..raw("task.assigned", json!({}))
                },
                "events[2].subject.title",
            ),
            (
                RawEvent {
                    subject: RawSubject { kind: "task".into(), id: "1".into(), title: "t".into(), url: Some("javascript:alert(1)".into()) },
                    ..raw("task.assigned", json!({}))
                },
                "events[2].subject.url",
            ),
            (raw("task.assigned", json!({ "assignedBy": "x".repeat(MAX_DATA_BYTES) })), "events[2].data"),
        ];
        for (event, field) in cases {
            let Err(e) = NewPlatformEvent::parse(2, event) else { panic!("{field}: accepted") };
            assert_eq!(field_of(e), field);
        }
    }
}
