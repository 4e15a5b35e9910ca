//! Publishing platform events: each event of a batch is checked, stored once per idempotency
//! key and routed to its recipients through their notification matrix. A request's events
//! share one transaction and are written together, a few multi-row statements for the whole
//! request; should that fail, they are written again each in a part of its own. So one bad
//! event is rejected without touching the others, a rejected event stores nothing, and an
//! accepted one is stored with its recipients, webhook deliveries, calendar writes and
//! notifications, or not at all.

use std::collections::HashMap;

use chrono::Utc;
use tracing::instrument;
use uuid::Uuid;

use super::model::{NewPlatformEvent, RawEvent};
use super::store::{self, EventRow};
use crate::calendars::sync::CalendarSync;
use crate::db::StoredEnum as _;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::identity::model::{AccountId, AccountStatus};
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService, Queued, Routing};
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
        let rejected = |index: usize, e: Error| PublishOutcome { index, status: PublishStatus::Rejected, event_id: None, error: Some(e) };
        // Checked and resolved first, outside the transaction.
        let mut outcomes: Vec<Option<PublishOutcome>> = Vec::with_capacity(raw.len());
        let mut parsed: Vec<(usize, NewPlatformEvent)> = Vec::with_capacity(raw.len());
        for (index, raw) in raw.into_iter().enumerate() {
            match NewPlatformEvent::parse(index, raw) {
                Ok(event) => {
                    outcomes.push(None);
                    parsed.push((index, event));
                }
                Err(e) => outcomes.push(Some(rejected(index, e))),
            }
        }
        let members = if parsed.is_empty() { Members(HashMap::new()) } else { self.members(principal.workspace_id, &parsed).await? };
        let mut ready: Vec<Ready> = Vec::new();
        for (index, event) in parsed {
            match members.resolve(index, &event) {
                Ok(recipients) => ready.push(Ready { index, event, recipients }),
                Err(e) => outcomes[index] = Some(rejected(index, e)),
            }
        }
        if ready.is_empty() {
            return Ok(outcomes.into_iter().flatten().collect());
        }
        // Each recipient's notification settings, read once per request and kind.
        let mut wanted: HashMap<NotificationEvent, Vec<AccountId>> = HashMap::new();
        for r in &ready {
            let Some(matrix_row) = r.event.kind.notification else { continue };
            wanted.entry(matrix_row).or_default().extend(r.recipients.iter().filter(|(_, active)| *active).map(|(id, _)| *id));
        }
        let mut routings: HashMap<(AccountId, NotificationEvent), Routing> = HashMap::new();
        for (matrix_row, mut accounts) in wanted {
            accounts.sort();
            accounts.dedup();
            let found = self.notifications.routings(&accounts, matrix_row).await?;
            routings.extend(found.into_iter().map(|(account_id, routing)| ((account_id, matrix_row), routing)));
        }

        let mut tx = self.db.begin().await?;
        let mut notified: Vec<Queued> = Vec::new();
        let (mut webhooks, mut calendars) = (false, false);
        // The whole request first, in one part and a few multi-row statements. Should any of
        // its writes fail, the part is undone and the events are stored again one part each,
        // so that only the event at fault is rejected.
        tx.begin_part().await?;
        match self.store_all(&mut tx, principal, &ready, &routings).await {
            Ok(batch) => {
                tx.end_part().await?;
                webhooks = batch.webhook;
                calendars = batch.calendar;
                notified = batch.notified;
                for (Ready { index, event, recipients }, stored) in ready.iter().zip(batch.stored) {
                    outcomes[*index] = Some(match stored {
                        Stored::New { id, .. } => {
                            tracing::info!(platform_event_id = %id, kind = event.kind.kind, recipients = recipients.len(), "platform event stored");
                            PublishOutcome { index: *index, status: PublishStatus::Accepted, event_id: Some(id), error: None }
                        }
                        Stored::Duplicate(id) => {
                            PublishOutcome { index: *index, status: PublishStatus::Duplicate, event_id: id, error: None }
                        }
                    });
                }
            }
            Err(e) => {
                tx.undo_part().await?;
                let why = match &e {
                    Error::Internal(inner) => format!("{inner:#}"),
                    other => format!("{other:?}"),
                };
                tracing::warn!(error = why, events = ready.len(), "a batch of platform events is stored again one event at a time");
                for Ready { index, event, recipients } in ready {
                    tx.begin_part().await?;
                    let mut queued = Vec::new();
                    let stored = self.store(&mut tx, principal, index, &event, &recipients, &routings, &mut queued).await;
                    let outcome = match stored {
                        Ok(Stored::New { id, webhook, calendar }) => {
                            tx.end_part().await?;
                            webhooks |= webhook;
                            calendars |= calendar;
                            notified.append(&mut queued);
                            tracing::info!(platform_event_id = %id, kind = event.kind.kind, recipients = recipients.len(), "platform event stored");
                            PublishOutcome { index, status: PublishStatus::Accepted, event_id: Some(id), error: None }
                        }
                        Ok(Stored::Duplicate(id)) => {
                            tx.end_part().await?;
                            PublishOutcome { index, status: PublishStatus::Duplicate, event_id: id, error: None }
                        }
                        Err(e) => {
                            tx.undo_part().await?;
                            if let Error::Internal(inner) = &e {
                                tracing::error!(error = format!("{inner:#}"), index, "cannot store a platform event");
                            }
                            rejected(index, e)
                        }
                    };
                    outcomes[index] = Some(outcome);
                }
            }
        }
        tx.commit().await?;
        if webhooks {
            self.webhooks.wake();
        }
        if calendars {
            self.calendars.wake();
        }
        self.notifications.announce(&notified).await;
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// The members the events can reach: those they name, or every member when one of them
    /// goes to roles.
    async fn members(&self, workspace_id: WorkspaceId, events: &[(usize, NewPlatformEvent)]) -> Result<Members> {
        let rows = if events.iter().any(|(_, e)| !e.roles.is_empty()) {
            store::members(&self.db, workspace_id).await?
        } else {
            let mut named: Vec<AccountId> = events.iter().flat_map(|(_, e)| e.user_ids.iter().copied()).collect();
            named.sort();
            named.dedup();
            store::members_among(&self.db, workspace_id, &named).await?
        };
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

    /// Stores the event, its recipients, its webhook deliveries, its calendar writes and its
    /// recipients' notifications (into `notified`) inside `tx`, unless its key was seen.
    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        tx: &mut Tx,
        principal: &ServiceAccountPrincipal,
        index: usize,
        event: &NewPlatformEvent,
        recipients: &[(AccountId, bool)],
        routings: &HashMap<(AccountId, NotificationEvent), Routing>,
        notified: &mut Vec<Queued>,
    ) -> Result<Stored> {
        let id = Uuid::now_v7();
        let row = event_row(principal, event, id);
        if !store::insert_event(tx, &row).await? {
            return Ok(Stored::Duplicate(store::find_by_key(tx, principal.workspace_id, &event.idempotency_key).await?));
        }
        let accounts: Vec<AccountId> = recipients.iter().map(|(id, _)| *id).collect();
        store::insert_recipients(tx, id, &accounts).await?;
        let queued = if event.kind.webhook {
            crate::webhooks::enqueue(tx, principal.workspace_id, &outgoing(id, event, &accounts)).await?
        } else {
            0
        };
        // An appointment also goes into the calendars of the users it names; written by
        // the calendar worker, so a calendar that is down delays it but never loses it.
        let calendar = crate::calendars::appointments::want(
            tx,
            &format!("events[{index}]"),
            principal.workspace_id,
            &event.appointment(),
            row.created_at,
        )
        .await?;
        self.route(tx, id, event, recipients, routings, notified).await?;
        Ok(Stored::New { id, webhook: queued > 0, calendar })
    }

    /// Notifies each active recipient through their matrix, like Concierge's own events.
    async fn route(
        &self,
        tx: &mut Tx,
        id: Uuid,
        event: &NewPlatformEvent,
        recipients: &[(AccountId, bool)],
        routings: &HashMap<(AccountId, NotificationEvent), Routing>,
        notified: &mut Vec<Queued>,
    ) -> Result<()> {
        for (routing, notice) in notices(id, event, recipients, routings) {
            notified.extend(self.notifications.record(tx, routing, notice).await?);
        }
        Ok(())
    }

    /// [`Self::store`] for every event of the request at once, in a few multi-row statements:
    /// the events (a key the workspace has, or one repeated within the request, is a
    /// duplicate of the event stored first with it), their recipients, their webhook
    /// deliveries, their calendar writes and their notifications. One outcome per event of
    /// `ready`, in order; all or nothing.
    async fn store_all(
        &self,
        tx: &mut Tx,
        principal: &ServiceAccountPrincipal,
        ready: &[Ready],
        routings: &HashMap<(AccountId, NotificationEvent), Routing>,
    ) -> Result<Batch> {
        // The first event of the request with each key is the one inserted.
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut rows = Vec::with_capacity(ready.len());
        for (i, r) in ready.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(slot) = first.entry(r.event.idempotency_key.as_str()) {
                slot.insert(i);
                rows.push(event_row(principal, &r.event, Uuid::now_v7()));
            }
        }
        let inserted: std::collections::HashSet<Uuid> = store::insert_events(tx, &rows).await?.into_iter().collect();
        let ids: HashMap<&str, Uuid> = rows.iter().map(|row| (row.idempotency_key, row.platform_event_id)).collect();
        let seen: Vec<&str> = rows.iter().filter(|row| !inserted.contains(&row.platform_event_id)).map(|row| row.idempotency_key).collect();
        let stored_before: HashMap<String, Uuid> = if seen.is_empty() {
            HashMap::new()
        } else {
            store::find_by_keys(tx, principal.workspace_id, &seen).await?.into_iter().collect()
        };

        let mut stored = Vec::with_capacity(ready.len());
        let mut recipient_rows: Vec<(Uuid, AccountId)> = Vec::new();
        let mut outgoing_events = Vec::new();
        let mut notices_of_all = Vec::new();
        let mut calendar = false;
        for (i, Ready { index, event, recipients }) in ready.iter().enumerate() {
            let key = event.idempotency_key.as_str();
            let id = ids[key];
            if !inserted.contains(&id) {
                stored.push(Stored::Duplicate(stored_before.get(key).copied()));
                continue;
            }
            if first[key] != i {
                stored.push(Stored::Duplicate(Some(id)));
                continue;
            }
            let accounts: Vec<AccountId> = recipients.iter().map(|(account, _)| *account).collect();
            recipient_rows.extend(accounts.iter().map(|account| (id, *account)));
            if event.kind.webhook {
                outgoing_events.push(outgoing(id, event, &accounts));
            }
            if crate::calendars::appointments::is_appointment(event.kind.kind) {
                calendar |= crate::calendars::appointments::want(
                    tx,
                    &format!("events[{index}]"),
                    principal.workspace_id,
                    &event.appointment(),
                    Utc::now(),
                )
                .await?;
            }
            notices_of_all.extend(notices(id, event, recipients, routings));
            stored.push(Stored::New { id, webhook: false, calendar: false });
        }
        store::insert_recipients_of(tx, &recipient_rows).await?;
        let queued = crate::webhooks::enqueue_all(tx, principal.workspace_id, &outgoing_events).await?;
        let notified = self.notifications.record_many(tx, notices_of_all).await?;
        Ok(Batch { stored, webhook: queued > 0, calendar, notified })
    }

    /// Events the workspace holds (for tests and operators).
    pub async fn count(&self, workspace_id: WorkspaceId) -> Result<i64> {
        Ok(store::count(&self.db, workspace_id).await?)
    }
}

/// An event checked and resolved, to store.
struct Ready {
    index: usize,
    event: NewPlatformEvent,
    recipients: Vec<(AccountId, bool)>,
}

enum Stored {
    /// Stored now; whether it queued webhook deliveries and calendar writes.
    New {
        id: Uuid,
        webhook: bool,
        calendar: bool,
    },
    Duplicate(Option<Uuid>),
}

/// What [`PlatformEventService::store_all`] did.
struct Batch {
    /// One per event, in order.
    stored: Vec<Stored>,
    /// Whether webhook deliveries and calendar writes were queued.
    webhook: bool,
    calendar: bool,
    notified: Vec<Queued>,
}

/// The event as stored, under `id`.
fn event_row<'a>(principal: &ServiceAccountPrincipal, event: &'a NewPlatformEvent, id: Uuid) -> EventRow<'a> {
    EventRow {
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
    }
}

/// The event as the workspace's webhooks receive it. Receivers need to know what it is about
/// and who did it, not only its data.
fn outgoing(id: Uuid, event: &NewPlatformEvent, accounts: &[AccountId]) -> OutgoingEvent<'static> {
    let payload = serde_json::json!({
        "subject": { "type": event.subject.kind, "id": event.subject.id, "title": event.subject.title, "url": event.subject.url },
        "actor": event.actor.as_ref().map(|a| serde_json::json!({ "type": a.kind, "id": a.id, "name": a.name })),
        "recipients": accounts.iter().map(|a| a.0.to_string()).collect::<Vec<_>>(),
        "data": event.data,
    });
    OutgoingEvent { id, kind: event.kind.kind, occurred_at: event.occurred_at, data: payload }
}

/// The notices of event `id` for each active recipient its kind's matrix row reaches, with
/// the routing read for each.
fn notices<'r>(
    id: Uuid,
    event: &NewPlatformEvent,
    recipients: &[(AccountId, bool)],
    routings: &'r HashMap<(AccountId, NotificationEvent), Routing>,
) -> Vec<(&'r Routing, Notice)> {
    let Some(matrix_row) = event.kind.notification else { return Vec::new() };
    // The platform wrote the subject's title (in the workspace's language); the body says
    // who did it, when known.
    let body = event.actor.as_ref().and_then(|a| a.name.clone()).unwrap_or_default();
    let contact = event.contact();
    recipients
        .iter()
        .filter(|(_, active)| *active)
        .filter_map(|(account_id, _)| {
            let routing = routings.get(&(*account_id, matrix_row))?;
            let notice = Notice {
                account_id: *account_id,
                event: matrix_row,
                title: event.subject.title.clone(),
                body: body.clone(),
                assigned_to_me: event.assigned_to(*account_id),
                dedupe_key: Some(format!("platform:{id}")),
                contact: contact.clone(),
            };
            Some((routing, notice))
        })
        .collect()
}
