//! Webhook types: the ids, the stored rows, and parsing what a client sends (the event kinds
//! a webhook subscribes to, its description). URLs are checked in [`crate::outbound`].

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::catalogue;
use crate::identity::model::AccountId;
use crate::workspace::model::WorkspaceId;

crate::ids::id_type!(WebhookId, "a webhook");

crate::ids::id_type!(
    /// One delivery of one event to one webhook. Time-ordered (UUIDv7): a webhook's deliveries
    /// go out in this order.
    DeliveryId,
    "a webhook delivery"
);

/// A webhook as stored, without its secrets (they are read only to sign).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Webhook {
    pub webhook_id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub url: String,
    pub description: String,
    /// Space-separated event kinds.
    pub event_kinds: String,
    pub enabled: bool,
    /// `BY_USER` or `FAILING` while disabled.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.event_kinds.split_whitespace()
    }

    pub fn subscribes_to(&self, kind: &str) -> bool {
        self.kinds().any(|k| k == kind)
    }
}

/// Why a webhook is disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "WebhookDisabledReason")]
pub enum DisabledReason {
    /// Someone turned it off (`updateWebhook(enabled: false)`).
    ByUser,
    /// A delivery kept failing through the whole retry schedule.
    Failing,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "WebhookDeliveryStatus")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt (or for an earlier delivery of the webhook).
    Pending,
    /// Attempted and failed; another attempt is scheduled (`nextAttemptAt`).
    Retrying,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt of the schedule failed; given up (`redeliverWebhookDelivery` queues it again).
    Failed,
}

/// A delivery as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Delivery {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    /// The event's id: the `webhook-id` header, the same on every attempt and redelivery.
    pub event_id: Uuid,
    pub event_type: String,
    /// The exact JSON body sent.
    pub payload: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    /// Attempts in the current round of the retry schedule (a redelivery starts a new round).
    pub attempts: i32,
    /// Attempts over all rounds.
    pub total_attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Delivery {
    pub fn status(&self) -> DeliveryStatus {
        match self.status.as_str() {
            "DELIVERED" => DeliveryStatus::Delivered,
            "FAILED" => DeliveryStatus::Failed,
            _ if self.attempts > 0 => DeliveryStatus::Retrying,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// One attempt at a delivery, as recorded.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt of the delivery, counting across redeliveries.
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; `None` when no answer came (refused, unreachable, timed out).
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
}

/// Most webhooks one workspace may have: each event is delivered once per webhook.
pub const MAX_WEBHOOKS_PER_WORKSPACE: i64 = 20;
const MAX_KINDS: usize = 100;
const MAX_DESCRIPTION: usize = 500;

/// The event kinds a webhook subscribes to: each must be in the catalogue and deliverable
/// by webhook. A bad one is named by its place (`eventKinds[2]`). Duplicates are dropped.
pub fn parse_event_kinds(raw: &[String]) -> Result<Vec<&'static str>> {
    if raw.is_empty() {
        return Err(Error::invalid("eventKinds", "name at least one event kind"));
    }
    if raw.len() > MAX_KINDS {
        return Err(Error::invalid("eventKinds", format!("at most {MAX_KINDS} event kinds")));
    }
    let mut kinds: Vec<&'static str> = Vec::with_capacity(raw.len());
    for (i, k) in raw.iter().enumerate() {
        let kind =
            catalogue::find(k.trim()).ok_or_else(|| Error::invalid(format!("eventKinds[{i}]"), format!("unknown event kind {k:?}")))?;
        if !kind.webhook {
            return Err(Error::invalid(format!("eventKinds[{i}]"), format!("{} events are not delivered to webhooks", kind.kind)));
        }
        if !kinds.contains(&kind.kind) {
            kinds.push(kind.kind);
        }
    }
    Ok(kinds)
}

/// A description: trimmed, at most 500 characters, no control characters but newlines.
pub fn parse_description(field: &'static str, raw: &str) -> Result<String> {
    let d = raw.trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(field, format!("at most {MAX_DESCRIPTION} characters")));
    }
    if d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(field, "cannot contain control characters"));
    }
    Ok(d.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_must_be_known_and_webhook_deliverable_and_errors_name_the_place() {
        let kinds = parse_event_kinds(&["contact.created".into(), " message.receive ".into(), "contact.created".into()]).unwrap();
        assert_eq!(kinds, ["contact.created", "message.receive"]);
        let field = |r: Result<Vec<&str>>| match r {
            Err(Error::Invalid { field, .. }) => field.into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(parse_event_kinds(&["contact.created".into(), "no.such".into()])), "eventKinds[1]");
        assert_eq!(field(parse_event_kinds(&["security.event".into()])), "eventKinds[0]");
        assert_eq!(field(parse_event_kinds(&[])), "eventKinds");
    }

    #[test]
    fn descriptions_are_trimmed_and_bounded() {
        assert_eq!(parse_description("description", "  CRM sync \n").unwrap(), "CRM sync");
        assert!(parse_description("description", &"x".repeat(501)).is_err());
        assert!(parse_description("description", "bell\u{7}").is_err());
    }
}
