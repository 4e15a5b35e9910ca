//! The event catalogue: every kind of event Concierge knows, defined once. Each kind has
//! its category (the seeds' five), a description, who produces it (the platform's other
//! services through `publishEvents`, or Concierge itself), the notification-matrix row it
//! routes through (and so its default channels), whether it counts for "assigned to me"
//! audio alerts, whether webhooks can subscribe to it, and the JSON Schema of its `data`.
//!
//! The notification matrix is drawn from here, so it can never list a kind the gateway
//! doesn't know; a test keeps every matrix row backed by a kind.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::notifications::model::{CHANNELS, NotificationCategory, NotificationChannel, NotificationEvent};

/// Who produces events of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum EventSource {
    /// Another service of the platform, through `publishEvents`.
    Platform,
    /// Concierge itself (mail, mailboxes, contacts, security).
    Concierge,
}

/// One kind of event.
pub struct EventKind {
    /// The stable name: `task.assigned`.
    pub kind: &'static str,
    pub category: NotificationCategory,
    pub description: &'static str,
    pub source: EventSource,
    /// The matrix row users choose channels for; `None` when the kind never notifies anyone
    /// (it is for webhooks and timelines).
    pub notification: Option<NotificationEvent>,
    /// It concerns something assigned to the recipient: it sounds with audio alerts set to
    /// ASSIGNED_TO_ME (and ALL), not only ALL.
    pub audio_assigned: bool,
    /// Webhooks can subscribe to it.
    pub webhook: bool,
    schema: fn() -> Value,
}

impl EventKind {
    /// The JSON Schema (draft 2020-12) its `data` must satisfy.
    pub fn schema(&self) -> Value {
        (self.schema)()
    }

    /// The channels a user who changed nothing gets it on.
    pub fn default_channels(&self) -> Vec<NotificationChannel> {
        match self.notification {
            Some(event) => CHANNELS.into_iter().filter(|c| event.default_for(*c)).collect(),
            None => Vec::new(),
        }
    }

    /// Checks `data` against the kind's schema. Each error names the JSON pointer at fault
    /// (`/dueAt: "tomorrow" is not a "date-time"`).
    pub fn validate(&self, data: &Value) -> Result<(), Vec<String>> {
        let index = all().iter().position(|k| k.kind == self.kind).unwrap_or(0);
        let Some(validator) = VALIDATORS.get(index).and_then(Option::as_ref) else {
            return Err(vec![format!("the schema of {} cannot be used", self.kind)]);
        };
        let errors: Vec<String> = validator
            .iter_errors(data)
            .take(10)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { at.as_str() })
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// The compiled schemas, in catalogue order.
static VALIDATORS: LazyLock<Vec<Option<jsonschema::Validator>>> = LazyLock::new(|| {
    all()
        .iter()
        .map(|k| match jsonschema::options().should_validate_formats(true).build(&k.schema()) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(kind = k.kind, error = %e, "an event schema does not compile");
                None
            }
        })
        .collect()
});

/// Every kind, in the order a frontend lists them (by category).
pub fn all() -> &'static [EventKind] {
    &CATALOGUE
}

pub fn find(kind: &str) -> Option<&'static EventKind> {
    CATALOGUE.iter().find(|k| k.kind == kind)
}

/// The kind a matrix row stands for (its first kind in the catalogue).
pub fn for_notification(event: NotificationEvent) -> Option<&'static EventKind> {
    CATALOGUE.iter().find(|k| k.notification == Some(event))
}

// --- schemas ------------------------------------------------------------------------------

fn object(required: &[&str], properties: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": required,
        "properties": properties,
    })
}

fn person() -> Value {
    json!({ "type": "object", "required": ["email"], "properties": {
        "email": { "type": "string", "format": "email" },
        "name": { "type": "string", "maxLength": 200 },
    } })
}

fn conversation() -> Value {
    object(
        &[],
        json!({
            "channel": { "type": "string", "enum": ["email", "sms", "chat", "whatsapp", "call", "social", "other"] },
            "preview": { "type": "string", "maxLength": 2000 },
            "contactName": { "type": "string", "maxLength": 200 },
        }),
    )
}

fn task() -> Value {
    object(
        &[],
        json!({
            "dueAt": { "type": "string", "format": "date-time" },
            "priority": { "type": "string", "enum": ["low", "normal", "high"] },
            "assignedBy": { "type": "string", "maxLength": 200 },
        }),
    )
}

fn task_reminder() -> Value {
    object(
        &["dueAt"],
        json!({
            "dueAt": { "type": "string", "format": "date-time" },
            "priority": { "type": "string", "enum": ["low", "normal", "high"] },
        }),
    )
}

/// What an appointment is: enough to write it into a calendar.
fn appointment() -> Value {
    object(
        &["startsAt", "endsAt"],
        json!({
            "startsAt": { "type": "string", "format": "date-time" },
            "endsAt": { "type": "string", "format": "date-time" },
            "timeZone": { "type": "string", "maxLength": 64 },
            "location": { "type": "string", "maxLength": 500 },
            "calendarId": { "type": "string", "maxLength": 200 },
            "organizer": person(),
            "attendees": { "type": "array", "maxItems": 100, "items": person() },
            "previousStartsAt": { "type": "string", "format": "date-time" },
            "reason": { "type": "string", "maxLength": 1000 },
        }),
    )
}

fn opportunity(required: &[&str]) -> Value {
    object(
        required,
        json!({
            "pipeline": { "type": "string", "maxLength": 200 },
            "fromStage": { "type": "string", "maxLength": 200 },
            "toStage": { "type": "string", "maxLength": 200 },
            "value": { "type": "number" },
            "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
        }),
    )
}

fn workflow() -> Value {
    object(
        &["workflow"],
        json!({
            "workflow": { "type": "string", "maxLength": 200 },
            "status": { "type": "string", "enum": ["succeeded", "failed"] },
        }),
    )
}

fn campaign() -> Value {
    object(
        &["campaign"],
        json!({
            "campaign": { "type": "string", "maxLength": 200 },
            "sent": { "type": "integer", "minimum": 0 },
            "delivered": { "type": "integer", "minimum": 0 },
            "opened": { "type": "integer", "minimum": 0 },
            "clicked": { "type": "integer", "minimum": 0 },
        }),
    )
}

fn billing() -> Value {
    object(
        &["status"],
        json!({
            "status": { "type": "string", "enum": ["paid", "payment_failed", "plan_changed", "trial_ending", "invoice_available"] },
            "amount": { "type": "number" },
            "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
            "plan": { "type": "string", "maxLength": 200 },
        }),
    )
}

fn mail_message() -> Value {
    object(
        &["eventId"],
        json!({
            "eventId": { "type": "string", "format": "uuid" },
            "contactId": { "type": ["string", "null"] },
            "mailboxId": { "type": ["string", "null"] },
            "threadId": { "type": ["string", "null"] },
            "title": { "type": "string" },
        }),
    )
}

fn mailbox() -> Value {
    object(
        &["mailboxId", "status"],
        json!({
            "mailboxId": { "type": "string", "format": "uuid" },
            "status": { "type": "string" },
            "reason": { "type": ["string", "null"] },
        }),
    )
}

fn contact() -> Value {
    object(
        &["contactId"],
        json!({
            "contactId": { "type": "string", "format": "uuid" },
            "name": { "type": "string" },
            "emails": { "type": "array", "items": { "type": "string" } },
        }),
    )
}

fn security() -> Value {
    object(&["event"], json!({ "event": { "type": "string" } }))
}

fn calendar() -> Value {
    object(
        &["reason"],
        json!({
            "calendarAccountId": { "type": "string", "format": "uuid" },
            "calendarId": { "type": "string", "format": "uuid" },
            "reason": { "type": "string", "enum": ["needs_reauth", "write_failed", "removed"] },
        }),
    )
}

fn invitation() -> Value {
    object(&["workspace"], json!({ "workspace": { "type": "string" }, "invitedBy": { "type": "string" } }))
}

fn membership() -> Value {
    object(&["workspace"], json!({ "workspace": { "type": "string" } }))
}

fn webhook() -> Value {
    object(&["webhookId"], json!({ "webhookId": { "type": "string", "format": "uuid" }, "url": { "type": "string" } }))
}

// --- the kinds ------------------------------------------------------------------------------

macro_rules! kind {
    ($kind:literal, $category:ident, $source:ident, $notification:expr, $audio:literal, $webhook:literal, $schema:expr, $description:literal) => {
        EventKind {
            kind: $kind,
            category: NotificationCategory::$category,
            description: $description,
            source: EventSource::$source,
            notification: $notification,
            audio_assigned: $audio,
            webhook: $webhook,
            schema: $schema,
        }
    };
}

use NotificationEvent as N;

static CATALOGUE: LazyLock<Vec<EventKind>> = LazyLock::new(|| {
    vec![
        // Messages
        kind!(
            "conversation.message_received",
            Messages,
            Platform,
            Some(N::MessageReceived),
            true,
            true,
            conversation,
            "A new incoming message in a conversation of yours (SMS, chat, social, …)."
        ),
        kind!(
            "conversation.mention",
            Messages,
            Platform,
            Some(N::Mention),
            true,
            true,
            conversation,
            "Someone mentioned you in a conversation or an internal comment."
        ),
        kind!(
            "conversation.assigned",
            Messages,
            Platform,
            Some(N::ConversationAssigned),
            true,
            true,
            conversation,
            "A conversation was assigned to you."
        ),
        kind!(
            "message.receive",
            Messages,
            Concierge,
            Some(N::MessageReceived),
            true,
            true,
            mail_message,
            "An email arrived in a mailbox you connected."
        ),
        kind!(
            "message.send",
            Messages,
            Concierge,
            None,
            false,
            true,
            mail_message,
            "An email was sent from a connected mailbox (one event per recipient's contact)."
        ),
        // Tasks
        kind!("task.reminder", Tasks, Platform, Some(N::TaskReminder), true, true, task_reminder, "A task of yours is due soon."),
        kind!("task.assigned", Tasks, Platform, Some(N::TaskAssigned), true, true, task, "A task was assigned to you."),
        kind!(
            "task.completed",
            Tasks,
            Platform,
            Some(N::TaskCompleted),
            false,
            true,
            task,
            "Someone else completed a task you created or follow."
        ),
        // Appointments
        kind!(
            "appointment.booked",
            Appointments,
            Platform,
            Some(N::AppointmentBooked),
            true,
            true,
            appointment,
            "An appointment was booked on a calendar assigned to you."
        ),
        kind!(
            "appointment.rescheduled",
            Appointments,
            Platform,
            Some(N::AppointmentRescheduled),
            true,
            true,
            appointment,
            "An appointment on a calendar assigned to you moved."
        ),
        kind!(
            "appointment.cancelled",
            Appointments,
            Platform,
            Some(N::AppointmentCancelled),
            true,
            true,
            appointment,
            "An appointment on a calendar assigned to you was cancelled."
        ),
        // Opportunities
        kind!(
            "opportunity.moved",
            Opportunities,
            Platform,
            Some(N::OpportunityMoved),
            false,
            true,
            || opportunity(&["pipeline", "toStage"]),
            "An opportunity in a pipeline you own or follow changed stage."
        ),
        kind!(
            "opportunity.won",
            Opportunities,
            Platform,
            Some(N::OpportunityWon),
            false,
            true,
            || opportunity(&["pipeline"]),
            "An opportunity in a pipeline you own or follow was won."
        ),
        kind!(
            "opportunity.lost",
            Opportunities,
            Platform,
            Some(N::OpportunityLost),
            false,
            true,
            || opportunity(&["pipeline"]),
            "An opportunity in a pipeline you own or follow was lost."
        ),
        // Account
        kind!("workflow.completed", Account, Platform, Some(N::WorkflowCompleted), false, true, workflow, "A workflow you own finished."),
        kind!(
            "campaign.finished",
            Account,
            Platform,
            Some(N::CampaignResult),
            false,
            true,
            campaign,
            "A campaign finished sending; its results."
        ),
        kind!(
            "billing.updated",
            Account,
            Platform,
            Some(N::BillingUpdate),
            false,
            true,
            billing,
            "Something changed in the workspace's billing (a payment, the plan, an invoice)."
        ),
        kind!(
            "security.event",
            Account,
            Concierge,
            Some(N::SecurityEvent),
            false,
            false,
            security,
            "Something changed in your account's security (password, two-factor, login email, tokens, sign-ins)."
        ),
        kind!(
            "mailbox.needs_reauth",
            Account,
            Concierge,
            Some(N::MailboxError),
            false,
            true,
            mailbox,
            "A connected mailbox needs you to sign in to it again."
        ),
        kind!("mailbox.status_changed", Account, Concierge, None, false, true, mailbox, "A connected mailbox's sync status changed."),
        kind!("contact.created", Account, Concierge, None, false, true, contact, "A contact was created (by hand, or for a new sender)."),
        kind!(
            "calendar.needs_attention",
            Account,
            Concierge,
            Some(N::CalendarError),
            false,
            false,
            calendar,
            "A connected calendar needs attention: sign in to it again, an appointment could not be written to it, or it was deleted on its server."
        ),
        kind!(
            "webhook.disabled",
            Account,
            Concierge,
            Some(N::WebhookDisabled),
            false,
            false,
            webhook,
            "A webhook was disabled after its deliveries kept failing."
        ),
        kind!(
            "workspace.invitation_received",
            Account,
            Concierge,
            Some(N::WorkspaceInvitation),
            false,
            false,
            invitation,
            "Someone invited you to join a workspace; you are not a member until you accept."
        ),
        kind!(
            "workspace.membership_deactivated",
            Account,
            Concierge,
            Some(N::MembershipDeactivated),
            false,
            false,
            membership,
            "Your membership of a workspace was deactivated; your account and other workspaces are not affected."
        ),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::model::EVENTS;

    #[test]
    fn every_matrix_row_is_a_kind_of_the_catalogue() {
        for event in EVENTS {
            assert!(for_notification(event).is_some(), "{event:?} has no kind in the catalogue");
        }
    }

    #[test]
    fn kinds_are_unique_and_every_schema_compiles() {
        let mut names: Vec<&str> = all().iter().map(|k| k.kind).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a kind is listed twice");
        for (kind, validator) in all().iter().zip(VALIDATORS.iter()) {
            assert!(validator.is_some(), "the schema of {} does not compile", kind.kind);
        }
    }

    #[test]
    fn data_is_checked_against_the_kinds_schema_and_errors_name_the_place() {
        let booked = find("appointment.booked").expect("a kind");
        assert_eq!(booked.validate(&json!({ "startsAt": "2026-12-01T10:00:00Z", "endsAt": "2026-12-01T11:00:00Z" })), Ok(()));
        let errors = booked.validate(&json!({ "startsAt": "tomorrow", "endsAt": "2026-12-01T11:00:00Z" })).unwrap_err();
        assert!(errors.iter().any(|e| e.starts_with("/startsAt")), "{errors:?}");
        let errors = booked.validate(&json!({ "endsAt": "2026-12-01T11:00:00Z" })).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("startsAt")), "{errors:?}");
        let errors = find("billing.updated").expect("a kind").validate(&json!("not an object")).unwrap_err();
        assert!(errors[0].starts_with("/:"), "{errors:?}");
    }

    #[test]
    fn platform_kinds_cover_the_seeds_five_categories() {
        use NotificationCategory::*;
        for category in [Messages, Tasks, Appointments, Opportunities, Account] {
            assert!(all().iter().any(|k| k.category == category && k.source == EventSource::Platform), "{category:?}");
        }
    }
}
