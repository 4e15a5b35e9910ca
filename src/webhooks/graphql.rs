//! Webhooks over GraphQL: list and read a workspace's webhooks with their deliveries, create
//! one (its secret shown once), change, rotate, delete, and redeliver.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Attempt, Delivery, DeliveryId, DeliveryStatus, DisabledReason, Webhook, WebhookId};
use super::service::{Manager, NewWebhook, WebhookChanges, WebhookScope, WithSecret};
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::graphql::paging::page_args;
use crate::input::input_or_flat;
use crate::service_accounts::model::Principal;
use crate::tokens::model::Scope;
use crate::workspace::model::WorkspaceId;

/// An HTTPS endpoint that receives the workspace's events, signed the Standard Webhooks way.
pub struct WebhookNode {
    webhook: Webhook,
    /// Reaching this node proved the viewer may manage the workspace's webhooks.
    scope: WebhookScope,
}

pub type WebhookDeliveryConnection = Connection<OpaqueCursor<Uuid>, WebhookDeliveryNode>;

#[Object(name = "Webhook")]
impl WebhookNode {
    async fn id(&self) -> ID {
        ID(self.webhook.webhook_id.0.to_string())
    }

    async fn workspace_id(&self) -> ID {
        ID(self.webhook.workspace_id.0.to_string())
    }

    async fn url(&self) -> &str {
        &self.webhook.url
    }

    async fn description(&self) -> &str {
        &self.webhook.description
    }

    /// The event kinds it receives (see the event catalogue).
    async fn event_kinds(&self) -> Vec<&str> {
        self.webhook.kinds().collect()
    }

    async fn enabled(&self) -> bool {
        self.webhook.enabled
    }

    /// Why it is off (None while on).
    async fn disabled_reason(&self) -> Option<DisabledReason> {
        self.webhook.disabled_reason.as_deref().and_then(DisabledReason::from_stored)
    }

    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.webhook.disabled_at
    }

    /// Until when the secret before the last rotation still signs deliveries too.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.webhook.previous_secret_expires_at.filter(|at| *at > Utc::now())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.webhook.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.webhook.updated_at
    }

    /// Its deliveries, newest first. `first` is 1–100 (default 20); `after` is a cursor
    /// from a previous page.
    async fn deliveries(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<WebhookDeliveryConnection> {
        let (first, after) = page_args(first, after)?;
        let webhooks = &ctx.services()?.webhooks;
        let (page, more) = webhooks.deliveries(&self.scope, self.webhook.webhook_id, after.map(DeliveryId), first).await?;
        // The attempts of the whole page in one query, when they are asked for.
        let mut attempts: Option<HashMap<DeliveryId, Vec<Attempt>>> =
            if ctx.look_ahead().field("edges").field("node").field("attempts").exists() {
                let ids: Vec<DeliveryId> = page.iter().map(|d| d.delivery_id).collect();
                let mut by_delivery: HashMap<DeliveryId, Vec<Attempt>> = HashMap::new();
                for a in webhooks.attempts(&self.scope, &ids).await? {
                    by_delivery.entry(a.delivery_id).or_default().push(a);
                }
                Some(by_delivery)
            } else {
                None
            };
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(page.into_iter().map(|d| {
            let mine = attempts.as_mut().map(|all| all.remove(&d.delivery_id).unwrap_or_default());
            Edge::new(OpaqueCursor(d.delivery_id.0), WebhookDeliveryNode { delivery: d, attempts: mine, scope: self.scope })
        }));
        Ok(connection)
    }
}

/// One event sent (or to be sent) to one webhook.
pub struct WebhookDeliveryNode {
    delivery: Delivery,
    /// Loaded with the page, when asked for.
    attempts: Option<Vec<Attempt>>,
    scope: WebhookScope,
}

/// One try at a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// 1 for the first attempt, counting across redeliveries.
    attempt: i32,
    attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; none when no answer came.
    status_code: Option<i32>,
    duration_ms: i32,
    error: Option<String>,
}

impl From<Attempt> for WebhookAttempt {
    fn from(a: Attempt) -> Self {
        WebhookAttempt {
            attempt: a.attempt,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            duration_ms: i32::try_from(a.duration_ms).unwrap_or(i32::MAX),
            error: a.error,
        }
    }
}

#[Object(name = "WebhookDelivery")]
impl WebhookDeliveryNode {
    async fn id(&self) -> ID {
        ID(self.delivery.delivery_id.0.to_string())
    }

    async fn webhook_id(&self) -> ID {
        ID(self.delivery.webhook_id.0.to_string())
    }

    /// The event's id: the `webhook-id` header, the same on every attempt and redelivery.
    async fn event_id(&self) -> ID {
        ID(self.delivery.event_id.to_string())
    }

    async fn event_type(&self) -> &str {
        &self.delivery.event_type
    }

    /// Attempts made so far.
    async fn attempt(&self) -> i32 {
        self.delivery.total_attempts
    }

    async fn status(&self) -> DeliveryStatus {
        self.delivery.status()
    }

    /// The receiver's HTTP status at the last attempt; none when no answer came.
    async fn status_code(&self) -> Option<i32> {
        self.delivery.last_status_code
    }

    /// How long the last attempt took.
    async fn duration_ms(&self) -> Option<i32> {
        self.delivery.last_duration_ms.map(|d| i32::try_from(d).unwrap_or(i32::MAX))
    }

    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.delivery.last_error.as_deref()
    }

    async fn last_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.delivery.last_attempt_at
    }

    /// When the next attempt is due (while PENDING or RETRYING; a delivery also waits for
    /// the webhook's earlier ones).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        matches!(self.delivery.status(), DeliveryStatus::Pending | DeliveryStatus::Retrying).then_some(self.delivery.next_attempt_at)
    }

    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.delivery.delivered_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.delivery.created_at
    }

    /// The exact JSON body sent: `{"type", "timestamp", "data"}`. It carries the event's
    /// data, so a personal token reads it only with `activity:read` as well.
    async fn payload(&self, ctx: &Context<'_>) -> Result<&str> {
        if let Manager::User(viewer) = manager(ctx, Scope::WebhooksRead).await? {
            viewer.require(Scope::ActivityRead)?;
        }
        Ok(&self.delivery.payload)
    }

    /// Every attempt, in order.
    async fn attempts(&self, ctx: &Context<'_>) -> Result<Vec<WebhookAttempt>> {
        let attempts = match &self.attempts {
            Some(loaded) => loaded.clone(),
            None => ctx.services()?.webhooks.attempts(&self.scope, &[self.delivery.delivery_id]).await?,
        };
        Ok(attempts.into_iter().map(WebhookAttempt::from).collect())
    }
}

/// A webhook and its signing secret. The secret is shown this once: store it now.
#[derive(SimpleObject)]
pub struct WebhookWithSecret {
    webhook: WebhookNode,
    /// `whsec_` and base64: give it to a Standard Webhooks library to verify deliveries.
    secret: String,
}

impl WebhookWithSecret {
    fn new(w: WithSecret, scope: WebhookScope) -> Self {
        WebhookWithSecret { webhook: WebhookNode { webhook: w.webhook, scope }, secret: w.secret }
    }
}

#[derive(InputObject)]
pub struct CreateWebhookInput {
    pub workspace_id: ID,
    /// An https URL whose host resolves to public addresses only (unless the operator opens
    /// more ranges with `CONCIERGE_OUTBOUND_ALLOW`).
    pub url: String,
    /// Kinds of the event catalogue that webhooks can receive (`message.receive`, …).
    pub event_kinds: Vec<String>,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// The webhook (required; the flat `id` argument is deprecated).
    pub id: Option<ID>,
    pub url: Option<String>,
    /// Replaces the kinds.
    pub event_kinds: Option<Vec<String>>,
    pub description: Option<String>,
    /// Off: nothing is queued for it; on again: what it kept goes out, in order.
    pub enabled: Option<bool>,
}

/// A workspace's webhooks, oldest first (needs MANAGE_INTEGRATIONS): `webhooks(workspaceId)`,
/// and what the `Workspace` type's `webhooks` field resolves with.
/// Who is asking to manage webhooks: the workspace's service account (its token needs
/// `webhooks:manage`), or a user whose credential carries `scope`.
async fn manager(ctx: &Context<'_>, scope: Scope) -> Result<Manager> {
    let auth = ctx.auth().ok_or(Error::Unauthenticated)?;
    match auth.principal(ctx.services()?).await? {
        Some(Principal::ServiceAccount(account)) => Ok(Manager::Service(account)),
        _ => Ok(Manager::User(ctx.viewer_for(scope).await?)),
    }
}

/// A manager allowed to change webhooks. A personal token needs `webhooks:write` and
/// `activity:read`: a webhook it makes receives the events' data (contacts' names and
/// addresses among them) for as long as it lives, so making one must need what reading that
/// data directly needs.
async fn writer(ctx: &Context<'_>) -> Result<Manager> {
    let manager = manager(ctx, Scope::WebhooksWrite).await?;
    if let Manager::User(viewer) = &manager {
        viewer.require(Scope::ActivityRead)?;
    }
    Ok(manager)
}

pub async fn workspace_webhooks(ctx: &Context<'_>, workspace_id: WorkspaceId) -> Result<Vec<WebhookNode>> {
    let manager = manager(ctx, Scope::WebhooksRead).await?;
    let webhooks = &ctx.services()?.webhooks;
    let scope = webhooks.authorize(&manager, workspace_id).await?;
    Ok(webhooks.list(&scope).await?.into_iter().map(|webhook| WebhookNode { webhook, scope }).collect())
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// A workspace's webhooks, oldest first (needs MANAGE_INTEGRATIONS; a personal token
    /// needs `webhooks:read`).
    async fn webhooks(&self, ctx: &Context<'_>, workspace_id: ID) -> Result<Vec<WebhookNode>> {
        workspace_webhooks(ctx, WorkspaceId::parse("workspaceId", &workspace_id)?).await
    }

    /// A webhook of a workspace whose webhooks you may manage.
    async fn webhook(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookNode> {
        let manager = manager(ctx, Scope::WebhooksRead).await?;
        let id = WebhookId::parse("id", &id)?;
        let webhooks = &ctx.services()?.webhooks;
        let scope = webhooks.authorize_webhook(&manager, id).await?;
        Ok(WebhookNode { webhook: webhooks.get(&scope, id).await?, scope })
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates a webhook (needs MANAGE_INTEGRATIONS); its signing secret is in the answer,
    /// and never again.
    async fn create_webhook(&self, ctx: &Context<'_>, input: CreateWebhookInput) -> Result<WebhookWithSecret> {
        let manager = writer(ctx).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        let webhooks = &ctx.services()?.webhooks;
        let scope = webhooks.authorize(&manager, workspace_id).await?;
        let new = NewWebhook { url: input.url, event_kinds: input.event_kinds, description: input.description };
        Ok(WebhookWithSecret::new(webhooks.create(&scope, new).await?, scope))
    }

    /// Changes a webhook's URL, kinds or description, or turns it off or on.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
        input: UpdateWebhookInput,
    ) -> Result<WebhookNode> {
        let id = WebhookId::parse("id", &crate::input::id_in_or_beside(id, input.id.clone())?)?;
        let manager = writer(ctx).await?;
        let webhooks = &ctx.services()?.webhooks;
        let scope = webhooks.authorize_webhook(&manager, id).await?;
        let changes =
            WebhookChanges { url: input.url, event_kinds: input.event_kinds, description: input.description, enabled: input.enabled };
        Ok(WebhookNode { webhook: webhooks.update(&scope, id, changes).await?, scope })
    }

    /// Deletes a webhook with its queued deliveries.
    #[graphql(deprecation = "use removeWebhook")]
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        self.remove_webhook(ctx, WebhookInput { id }).await.map(|_| true)
    }

    /// Deletes a webhook with its queued deliveries.
    async fn remove_webhook(&self, ctx: &Context<'_>, input: WebhookInput) -> Result<RemoveWebhookPayload> {
        let manager = writer(ctx).await?;
        let id = WebhookId::parse("id", &input.id)?;
        let webhooks = &ctx.services()?.webhooks;
        let scope = webhooks.authorize_webhook(&manager, id).await?;
        webhooks.delete(&scope, id).await?;
        Ok(RemoveWebhookPayload { webhook_id: input.id })
    }

    /// A new signing secret, shown this once. For 24 hours deliveries carry a signature by
    /// the previous secret too, so the receiver can switch without missing any.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: Option<WebhookInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<WebhookWithSecret> {
        let input = input_or_flat!(input, [id] => WebhookInput { id });
        let manager = writer(ctx).await?;
        let id = WebhookId::parse("id", &input.id)?;
        let webhooks = &ctx.services()?.webhooks;
        let scope = webhooks.authorize_webhook(&manager, id).await?;
        Ok(WebhookWithSecret::new(webhooks.rotate_secret(&scope, id).await?, scope))
    }

    /// Sends a delivery again, with the same `webhook-id`, so the receiver can tell it is one
    /// it may have seen.
    async fn redeliver_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        input: Option<WebhookDeliveryInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<WebhookDeliveryNode> {
        let input = input_or_flat!(input, [id] => WebhookDeliveryInput { id });
        let manager = writer(ctx).await?;
        let id = DeliveryId::parse("id", &input.id)?;
        let webhooks = &ctx.services()?.webhooks;
        let scope = webhooks.authorize_delivery(&manager, id).await?;
        Ok(WebhookDeliveryNode { delivery: webhooks.redeliver(&scope, id).await?, attempts: None, scope })
    }
}

#[derive(InputObject)]
pub struct WebhookInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct WebhookDeliveryInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveWebhookPayload {
    /// The webhook deleted.
    pub webhook_id: ID,
}
