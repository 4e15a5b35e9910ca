//! Publishing platform events: each event of a batch is checked, stored once per idempotency
//! key and routed to its recipients through their notification matrix, on its own. One bad
//! event is rejected without touching the others, and a rejected event stores nothing.

use std::collections::HashMap;

use chrono::Utc;
use tracing::instrument;
use uuid::Uuid;

use super::model::{NewPlatformEvent, RawEvent};
use super::store::{self, EventRow};
use crate::calendars::sync::CalendarSync;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::identity::model::{AccountId, AccountStatus};
use crate::notifications::service::{Notice, NotificationService};
use crate::service_accounts::model::ServiceAccountPrincipal;
use crate::webhooks::{OutgoingEvent, Webhooks};
use crate::workspace::model::{Role, WorkspaceId};

#[derive(Clone, Copy, Debug)]
pub struct PublishSettings {
    /// Most events per request (`CONCIERGE_PUBLISH_BATCH_MAX`).
    pub batch_max: usize,
}

/// What became of one event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum PublishStatus {
    /// Stored and routed to its recipients.
    Accepted,
    /// The workspace already has an event with this idempotency key: nothing was done.
    Duplicate,
    /// Refused (see `error`): nothing was stored.
    Rejected,
}

pub struct PublishOutcome {
    pub index: usize,
    pub status: PublishStatus,
    /// The stored event (for a duplicate, the one stored first).
    pub event_id: Option<Uuid>,
    pub error: Option<Error>,
}

/// The workspace's members, read once per batch.
struct Members(HashMap<AccountId, (Role, bool)>);

impl Members {
    /// The accounts an event goes to: the named users (each must be a member) and every
    /// active member holding one of the roles. Named members who are inactive are kept as
    /// recipients but not notified (`active`).
    fn resolve(&self, index: usize, event: &NewPlatformEvent) -> Result<Vec<(AccountId, bool)>> {
        let mut out: Vec<(AccountId, bool)> = Vec::new();
        for (i, id) in event.user_ids.iter().enumerate() {
            let Some((_, active)) = self.0.get(id) else {
                // The same answer whether or not the account exists elsewhere, named by the
                // list the caller put it in.
                let field = match event.assignee_ids.iter().position(|a| a == id) {
                    Some(k) if i >= event.named_user_ids => format!("assigneeIds[{k}]"),
                    _ => format!("userIds[{i}]"),
                };
                return Err(Error::invalid(format!("events[{index}].recipients.{field}"), "not a member of this workspace"));
            };
            out.push((*id, *active));
        }
        if !event.roles.is_empty() {
            let mut by_role: Vec<AccountId> = self
                .0
                .iter()
                .filter(|(id, (role, active))| *active && event.roles.contains(role) && !event.user_ids.contains(id))
                .map(|(id, _)| *id)
                .collect();
            by_role.sort();
            out.extend(by_role.into_iter().map(|id| (id, true)));
        }
        Ok(out)
    }
}

#[derive(Clone)]
pub struct PlatformEventService {
    db: Db,
    notifications: NotificationService,
    webhooks: Webhooks,
    calendars: CalendarSync,
    settings: PublishSettings,
}

impl PlatformEventService {
    pub fn new(db: Db, notifications: NotificationService, webhooks: Webhooks, calendars: CalendarSync, settings: PublishSettings) -> Self {
        PlatformEventService { db, notifications, webhooks, calendars, settings }
    }

    /// Publishes a batch for the service account's workspace; one outcome per event, in
    /// order. A batch over the limit is refused whole (BAD_USER_INPUT on `events`).
    #[instrument(skip_all, fields(service_account_id = %principal.id, events = raw.len()))]
    pub async fn publish(&self, principal: &ServiceAccountPrincipal, raw: Vec<RawEvent>) -> Result<Vec<PublishOutcome>> {
        if raw.len() > self.settings.batch_max {
            return Err(Error::invalid("events", format!("at most {} events per request", self.settings.batch_max)));
        }
        let mut members: Option<Members> = None;
        let mut outcomes = Vec::with_capacity(raw.len());
        for (index, raw) in raw.into_iter().enumerate() {
            let outcome = match NewPlatformEvent::parse(index, raw) {
                Err(e) => PublishOutcome { index, status: PublishStatus::Rejected, event_id: None, error: Some(e) },
                Ok(event) => {
                    if members.is_none() {
                        members = Some(self.members(principal.workspace_id).await?);
                    }
                    let Some(members) = &members else { continue };
                    self.publish_one(principal, members, index, event).await
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn members(&self, workspace_id: WorkspaceId) -> Result<Members> {
        let rows = store::members(&self.db, workspace_id).await?;
        Ok(Members(
            rows.into_iter()
                .map(|m| {
                    (
                        m.account_id,
                        (
                            Role::from_stored(&m.role).unwrap_or(Role::Member),
                            AccountStatus::from_stored(&m.status).unwrap_or(AccountStatus::Inactive) == AccountStatus::Active,
                        ),
                    )
                })
                .collect(),
        ))
    }

    async fn publish_one(
        &self,
        principal: &ServiceAccountPrincipal,
        members: &Members,
        index: usize,
        event: NewPlatformEvent,
    ) -> PublishOutcome {
        let rejected = |e: Error| PublishOutcome { index, status: PublishStatus::Rejected, event_id: None, error: Some(e) };
        let recipients = match members.resolve(index, &event) {
            Ok(r) => r,
            Err(e) => return rejected(e),
        };
        match self.store(principal, index, &event, &recipients).await {
            Ok(Stored::New(id)) => {
                self.route(id, &event, &recipients).await;
                PublishOutcome { index, status: PublishStatus::Accepted, event_id: Some(id), error: None }
            }
            Ok(Stored::Duplicate(id)) => PublishOutcome { index, status: PublishStatus::Duplicate, event_id: id, error: None },
            Err(e) => {
                if let Error::Internal(inner) = &e {
                    tracing::error!(error = format!("{inner:#}"), index, "cannot store a platform event");
                }
                rejected(e)
            }
        }
    }

    /// Stores the event, its recipients and its webhook deliveries in one transaction, unless
    /// its key was seen.
    async fn store(
        &self,
        principal: &ServiceAccountPrincipal,
        index: usize,
        event: &NewPlatformEvent,
        recipients: &[(AccountId, bool)],
    ) -> Result<Stored> {
        let id = Uuid::now_v7();
        let row = EventRow {
            platform_event_id: id,
            workspace_id: principal.workspace_id,
            service_account_id: principal.id,
            kind: event.kind.kind,
            idempotency_key: &event.idempotency_key,
            subject_type: &event.subject.kind,
            subject_id: &event.subject.id,
            subject_title: &event.subject.title,
            subject_url: event.subject.url.as_deref(),
            actor_type: event.actor.as_ref().map(|a| a.kind.as_str()),
            actor_id: event.actor.as_ref().and_then(|a| a.id.as_deref()),
            actor_name: event.actor.as_ref().and_then(|a| a.name.as_deref()),
            data: &event.data_text,
            scheduled_at: event.scheduled_at,
            occurred_at: event.occurred_at,
            created_at: Utc::now(),
        };
        let mut tx = self.db.begin().await?;
        if !store::insert_event(&mut tx, &row).await? {
            drop(tx);
            return Ok(Stored::Duplicate(store::find_by_key(&self.db, principal.workspace_id, &event.idempotency_key).await?));
        }
        let accounts: Vec<AccountId> = recipients.iter().map(|(id, _)| *id).collect();
        store::insert_recipients(&mut tx, id, &accounts).await?;
        let queued = if event.kind.webhook {
            // Receivers need to know what it is about and who did it, not only its data.
            let payload = serde_json::json!({
                "subject": { "type": event.subject.kind, "id": event.subject.id, "title": event.subject.title, "url": event.subject.url },
                "actor": event.actor.as_ref().map(|a| serde_json::json!({ "type": a.kind, "id": a.id, "name": a.name })),
                "recipients": accounts.iter().map(|a| a.0.to_string()).collect::<Vec<_>>(),
                "data": event.data,
            });
            let outgoing = OutgoingEvent { id, kind: event.kind.kind, occurred_at: event.occurred_at, data: payload };
            crate::webhooks::enqueue(&mut tx, principal.workspace_id, &outgoing).await?
        } else {
            0
        };
        // An appointment also goes into the calendars of the users it names; written by
        // the calendar worker, so a calendar that is down delays it but never loses it.
        let calendar_write = crate::calendars::appointments::want(
            &mut tx,
            &format!("events[{index}]"),
            principal.workspace_id,
            &event.appointment(),
            row.created_at,
        )
        .await?;
        tx.commit().await?;
        if queued > 0 {
            self.webhooks.wake();
        }
        if calendar_write {
            self.calendars.wake();
        }
        tracing::info!(platform_event_id = %id, kind = event.kind.kind, recipients = accounts.len(), "platform event stored");
        Ok(Stored::New(id))
    }

    /// Notifies each active recipient through their matrix, like Concierge's own events. A
    /// failure is logged: the event is stored, and a retry of the publish is a duplicate.
    async fn route(&self, id: Uuid, event: &NewPlatformEvent, recipients: &[(AccountId, bool)]) {
        let Some(matrix_row) = event.kind.notification else { return };
        // The platform wrote the subject's title (in the workspace's language); the body
        // says who did it, when known.
        let body = event.actor.as_ref().and_then(|a| a.name.clone()).unwrap_or_default();
        let contact = event.contact();
        for (account_id, active) in recipients {
            if !active {
                continue;
            }
            let notice = Notice {
                account_id: *account_id,
                event: matrix_row,
                title: event.subject.title.clone(),
                body: body.clone(),
                assigned_to_me: event.assigned_to(*account_id),
                dedupe_key: Some(format!("platform:{id}")),
                contact: contact.clone(),
            };
            if let Err(e) = self.notifications.notify(notice).await {
                tracing::error!(error = ?e, account_id = %account_id, platform_event_id = %id, "cannot notify a platform event");
            }
        }
    }

    /// Events the workspace holds (for tests and operators).
    pub async fn count(&self, workspace_id: WorkspaceId) -> Result<i64> {
        Ok(store::count(&self.db, workspace_id).await?)
    }
}

enum Stored {
    New(Uuid),
    Duplicate(Option<Uuid>),
}
