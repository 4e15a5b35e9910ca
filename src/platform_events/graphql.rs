//! `publishEvents` over GraphQL: a service-account token with `events:publish` sends a batch,
//! and the answer reports each event by its index.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::model::{RawActor, RawEvent, RawSubject};
use super::service::{PublishOutcome, PublishStatus};
use crate::error::Result;
use crate::graphql::context::ContextExt;
use crate::input::input_or_flat;
use crate::service_accounts::model::ServiceScope;
use crate::workspace::model::Role;

/// Who an event is for, within the service account's workspace: members named by id, every
/// active member holding one of the roles, or both.
#[derive(InputObject)]
#[graphql(name = "PlatformEventRecipientsInput")]
pub struct RecipientsInput {
    /// Members of the workspace; an id that is not one rejects the event.
    pub user_ids: Option<Vec<ID>>,
    pub roles: Option<Vec<Role>>,
    /// Members who are the subject's assignee (the conversation's, task's or appointment's
    /// owner); they are recipients too. Audio alerts set to ASSIGNED_TO_ME sound for them
    /// alone. Without it, an "assigned" kind (`audioAssignedToMe` in the catalogue) counts
    /// the members named in `userIds` as its assignees.
    pub assignee_ids: Option<Vec<ID>>,
}

/// What the event is about.
#[derive(InputObject)]
#[graphql(name = "PlatformEventSubjectInput")]
pub struct SubjectInput {
    /// E.g. `task`, `appointment`, `opportunity`.
    #[graphql(name = "type")]
    pub kind: String,
    /// The subject's id in the publishing service.
    pub id: String,
    /// Shown as the notification's title (1–500 characters).
    pub title: String,
    /// Where to open it: an http(s) URL.
    pub url: Option<String>,
}

/// Who caused the event.
#[derive(InputObject)]
#[graphql(name = "PlatformEventActorInput")]
pub struct ActorInput {
    /// E.g. `user`, `automation`.
    #[graphql(name = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// One event a platform service publishes.
#[derive(InputObject)]
pub struct PlatformEventInput {
    /// A kind of the event catalogue produced by platform services, e.g. `task.assigned`.
    pub kind: String,
    pub recipients: RecipientsInput,
    pub subject: SubjectInput,
    pub actor: Option<ActorInput>,
    pub occurred_at: DateTime<Utc>,
    /// Checked against the kind's JSON Schema; at most 64 KiB. `{}` if omitted.
    pub data: Option<Json<serde_json::Value>>,
    /// 1–200 characters, unique per workspace: publishing the same key again does nothing.
    pub idempotency_key: String,
}

impl From<PlatformEventInput> for RawEvent {
    fn from(i: PlatformEventInput) -> RawEvent {
        RawEvent {
            kind: i.kind,
            user_ids: i.recipients.user_ids.unwrap_or_default().into_iter().map(|id| id.0).collect(),
            roles: i.recipients.roles.unwrap_or_default(),
            assignee_ids: i.recipients.assignee_ids.unwrap_or_default().into_iter().map(|id| id.0).collect(),
            subject: RawSubject { kind: i.subject.kind, id: i.subject.id, title: i.subject.title, url: i.subject.url },
            actor: i.actor.map(|a| RawActor { kind: a.kind, id: a.id, name: a.name }),
            occurred_at: i.occurred_at,
            data: i.data.map(|d| d.0),
            idempotency_key: i.idempotency_key,
        }
    }
}

/// Why an event was rejected.
#[derive(SimpleObject)]
pub struct PublishEventError {
    /// As `extensions.code` would be: BAD_USER_INPUT, INTERNAL, …
    pub code: String,
    /// The input at fault, e.g. `events[3].data/dueAt`.
    pub field: Option<String>,
    pub message: String,
}

/// What became of one event of the batch.
#[derive(SimpleObject)]
pub struct PublishEventResult {
    /// Its position in `events`.
    pub index: i32,
    pub status: PublishStatus,
    /// The stored event (for DUPLICATE, the one stored first).
    pub event_id: Option<ID>,
    pub error: Option<PublishEventError>,
}

impl From<PublishOutcome> for PublishEventResult {
    fn from(o: PublishOutcome) -> Self {
        PublishEventResult {
            index: i32::try_from(o.index).unwrap_or(i32::MAX),
            status: o.status,
            event_id: o.event_id.map(|id| ID(id.to_string())),
            error: o.error.map(|e| PublishEventError {
                code: e.code().to_owned(),
                field: match &e {
                    crate::error::Error::Invalid { field, .. } | crate::error::Error::Conflict { field, .. } => Some(field.to_string()),
                    _ => None,
                },
                message: e.message(),
            }),
        }
    }
}

#[derive(SimpleObject)]
pub struct PublishEventsPayload {
    /// One per event, in the order sent.
    pub results: Vec<PublishEventResult>,
}

#[derive(InputObject)]
pub struct PublishEventsInput {
    pub events: Vec<PlatformEventInput>,
}

#[derive(Default)]
pub struct PlatformEventMutation;

#[Object]
impl PlatformEventMutation {
    /// Publishes events into the service account's workspace (a service-account token with
    /// `events:publish`). Each is checked, stored and routed to its recipients' notification
    /// matrix on its own; a rejected one stores nothing. More than
    /// `CONCIERGE_PUBLISH_BATCH_MAX` events (default 100) are refused whole.
    async fn publish_events(
        &self,
        ctx: &Context<'_>,
        input: Option<PublishEventsInput>,
        #[graphql(deprecation = "pass it in `input`")] events: Option<Vec<PlatformEventInput>>,
    ) -> Result<PublishEventsPayload> {
        let PublishEventsInput { events } = input_or_flat!(input, [events] => PublishEventsInput { events });
        let principal = ctx.service_account(ServiceScope::EventsPublish).await?;
        let raw = events.into_iter().map(RawEvent::from).collect();
        let outcomes = ctx.services()?.platform_events.publish(&principal, raw).await?;
        Ok(PublishEventsPayload { results: outcomes.into_iter().map(PublishEventResult::from).collect() })
    }
}
