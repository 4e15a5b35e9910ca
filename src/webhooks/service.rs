//! Webhook rules: who may manage a workspace's webhooks, and creating, changing, rotating
//! and deleting them. Every operation takes a [`WebhookScope`], a workspace the caller has
//! already been authorised for: a member whose role allows MANAGE_INTEGRATIONS
//! ([`Webhooks::authorize`]), or a caller authorised another way (a service account with the
//! `webhooks:manage` scope, [`WebhookScope::authorized`]). Operations on one webhook or
//! delivery check that it belongs to the scope's workspace, and say NOT_FOUND otherwise.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tracing::instrument;

use super::model::{
    Attempt, Delivery, DeliveryId, DisabledReason, MAX_WEBHOOKS_PER_WORKSPACE, Webhook, WebhookId, parse_description, parse_event_kinds,
};
use super::{signature, store};
use crate::clock::SharedClock;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use crate::notifications::service::NotificationService;
use crate::outbound as safe_url;
use crate::service_accounts::model::{ServiceAccountPrincipal, ServiceScope};
use crate::workspace::model::{Permission, WorkspaceId};
use crate::workspace::service::WorkspaceService;
use concierge_connector_sdk::OutboundPolicy;

/// How long the secret before a rotation keeps signing, so receivers can switch over.
pub const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Tuning of webhook delivery; the defaults suit production, tests shorten the retries.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// The first retry's delay; the whole schedule scales with it (see [`super::delivery::SCHEDULE`]).
    pub retry_base: Duration,
    /// Which addresses webhook URLs may reach (`CONCIERGE_OUTBOUND_ALLOW`).
    pub policy: OutboundPolicy,
    /// Longest an attempt may take, connecting and reading the answer included.
    pub timeout: Duration,
    /// Most of the receiver's answer that is read.
    pub max_response_bytes: usize,
    /// This process, as the holder of the deliveries it attempts ([`crate::instance::Instance`]).
    pub process: uuid::Uuid,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry_base: super::delivery::SCHEDULE[0],
            policy: OutboundPolicy::strict(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            process: uuid::Uuid::new_v4(),
        }
    }
}

/// Who manages a workspace's webhooks: a member (a session, or a personal token with the
/// workspaces scopes), or the workspace's service account.
#[expect(clippy::large_enum_variant, reason = "one per request, moved rarely: boxing would add an allocation for nothing")]
pub enum Manager {
    User(Viewer),
    Service(ServiceAccountPrincipal),
}

/// A workspace whose webhooks the holder may manage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookScope {
    workspace_id: WorkspaceId,
    /// The account acting, when a person is (recorded as the creator, notified if the
    /// webhook is disabled).
    actor: Option<AccountId>,
}

impl WebhookScope {
    /// For callers that authorised the caller themselves (a service account whose token
    /// carries `webhooks:manage` for this workspace). People go through [`Webhooks::authorize`].
    pub fn authorized(workspace_id: WorkspaceId, actor: Option<AccountId>) -> Self {
        WebhookScope { workspace_id, actor }
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }
}

/// A new webhook as asked for.
pub struct NewWebhook {
    pub url: String,
    pub event_kinds: Vec<String>,
    pub description: Option<String>,
}

/// Changes to a webhook (`None`: unchanged).
#[derive(Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_kinds: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A webhook with its signing secret, shown this once.
pub struct WithSecret {
    pub webhook: Webhook,
    /// `whsec_…`
    pub secret: String,
}

/// The webhooks service and its delivery worker (see [`super::delivery`]). Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) db: Db,
    pub(super) secrets: SecretBox,
    pub(super) workspaces: WorkspaceService,
    pub(super) notifications: NotificationService,
    pub(super) clock: SharedClock,
    pub(super) settings: WebhookSettings,
    /// Poked after a producer commits deliveries.
    pub(super) wake: Notify,
}

impl Webhooks {
    pub fn new(
        db: Db,
        secrets: SecretBox,
        workspaces: WorkspaceService,
        notifications: NotificationService,
        clock: SharedClock,
        settings: WebhookSettings,
    ) -> Self {
        Webhooks { inner: Arc::new(Inner { db, secrets, workspaces, notifications, clock, settings, wake: Notify::new() }) }
    }

    /// Tells the delivery worker that deliveries were committed: it sends them now instead of
    /// at its next periodic look. Cheap; call it after every commit that queued some.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Whether `manager` may manage the workspace's webhooks: a member whose role allows
    /// MANAGE_INTEGRATIONS, or the workspace's own service account with `webhooks:manage`.
    /// Not a member (another workspace's service account): NOT_FOUND; a member without the
    /// permission, or a token without the scope: FORBIDDEN.
    pub async fn authorize(&self, manager: &Manager, workspace_id: WorkspaceId) -> Result<WebhookScope> {
        match manager {
            Manager::User(viewer) => {
                let membership = self.inner.workspaces.membership_of(viewer, workspace_id).await?;
                if !membership.role().allows(Permission::ManageIntegrations) {
                    return Err(Error::forbidden("your role does not allow managing integrations"));
                }
                Ok(WebhookScope { workspace_id, actor: Some(viewer.account_id()) })
            }
            Manager::Service(account) => {
                if account.workspace_id != workspace_id {
                    return Err(Error::NotFound("workspace"));
                }
                account.require(ServiceScope::WebhooksManage)?;
                Ok(WebhookScope { workspace_id, actor: None })
            }
        }
    }

    /// [`Webhooks::authorize`] for the workspace of webhook `id` (NOT_FOUND when the manager
    /// is not of it).
    pub async fn authorize_webhook(&self, manager: &Manager, id: WebhookId) -> Result<WebhookScope> {
        let workspace_id = store::workspace_of_webhook(&self.inner.db, id).await?.ok_or(Error::NotFound("webhook"))?;
        self.authorize(manager, workspace_id).await.map_err(|e| not_found_as(e, "webhook"))
    }

    /// [`Webhooks::authorize`] for the workspace of delivery `id`.
    pub async fn authorize_delivery(&self, manager: &Manager, id: DeliveryId) -> Result<WebhookScope> {
        let workspace_id = store::workspace_of_delivery(&self.inner.db, id).await?.ok_or(Error::NotFound("webhook delivery"))?;
        self.authorize(manager, workspace_id).await.map_err(|e| not_found_as(e, "webhook delivery"))
    }

    /// The workspace's webhooks, oldest first.
    pub async fn list(&self, scope: &WebhookScope) -> Result<Vec<Webhook>> {
        Ok(store::webhooks_of(&self.inner.db, scope.workspace_id).await?)
    }

    pub async fn get(&self, scope: &WebhookScope, id: WebhookId) -> Result<Webhook> {
        store::find_webhook(&self.inner.db, id).await?.filter(|w| w.workspace_id == scope.workspace_id).ok_or(Error::NotFound("webhook"))
    }

    /// Checks a URL as a webhook would be sent to it now (its form, then every address its
    /// host resolves to): BAD_USER_INPUT on `url` when refused. Returns it normalised.
    async fn check_url(&self, raw: &str) -> Result<String> {
        let target = safe_url::resolve(raw, &self.inner.settings.policy).await.map_err(|why| Error::invalid("url", why))?;
        Ok(target.url.to_string())
    }

    /// Creates an enabled webhook and returns it with its signing secret (shown this once).
    #[instrument(skip_all, fields(workspace_id = %scope.workspace_id.0))]
    pub async fn create(&self, scope: &WebhookScope, input: NewWebhook) -> Result<WithSecret> {
        let kinds = parse_event_kinds(&input.event_kinds)?;
        let description = parse_description("description", input.description.as_deref().unwrap_or_default())?;
        // Resolving can take seconds: done before the transaction, which holds a lock.
        let url = self.check_url(&input.url).await?;
        let now = Utc::now();
        let webhook = Webhook {
            webhook_id: WebhookId::new(),
            workspace_id: scope.workspace_id,
            url,
            description,
            event_kinds: kinds.join(" "),
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            previous_secret_expires_at: None,
            created_by: scope.actor,
            created_at: now,
            updated_at: now,
        };
        let secret = signature::generate();
        let sealed = self.seal(webhook.webhook_id, &secret)?;
        let mut tx = self.inner.db.begin().await?;
        // Counted under the workspace's lock, so two creations at once cannot both pass.
        if !crate::workspace::store::lock_workspace(&mut tx, scope.workspace_id).await? {
            return Err(Error::NotFound("workspace"));
        }
        if store::count_webhooks(&mut tx, scope.workspace_id).await? >= MAX_WEBHOOKS_PER_WORKSPACE {
            return Err(Error::invalid("workspaceId", format!("a workspace can have at most {MAX_WEBHOOKS_PER_WORKSPACE} webhooks")));
        }
        store::insert_webhook(&mut tx, &webhook, &sealed).await?;
        tx.commit().await?;
        tracing::info!(webhook_id = %webhook.webhook_id.0, "webhook created");
        Ok(WithSecret { webhook, secret: signature::display(&secret) })
    }

    /// Changes a webhook's URL, event kinds or description, or turns it off or on. Turned on
    /// again, the deliveries it kept while off go out at once, in order.
    #[instrument(skip_all, fields(webhook_id = %id.0))]
    pub async fn update(&self, scope: &WebhookScope, id: WebhookId, changes: WebhookChanges) -> Result<Webhook> {
        let kinds = changes.event_kinds.as_deref().map(parse_event_kinds).transpose()?;
        let description = changes.description.as_deref().map(|d| parse_description("description", d)).transpose()?;
        let url = match &changes.url {
            Some(u) => Some(self.check_url(u).await?),
            None => None,
        };
        let now = Utc::now();
        let mut tx = self.inner.db.begin().await?;
        let mut webhook = store::find_webhook_tx(&mut tx, id)
            .await?
            .filter(|w| w.workspace_id == scope.workspace_id)
            .ok_or(Error::NotFound("webhook"))?;
        if let Some(url) = url {
            webhook.url = url;
        }
        if let Some(kinds) = kinds {
            webhook.event_kinds = kinds.join(" ");
        }
        if let Some(description) = description {
            webhook.description = description;
        }
        let enabling = changes.enabled == Some(true) && !webhook.enabled;
        match changes.enabled {
            Some(true) => {
                webhook.enabled = true;
                webhook.disabled_reason = None;
                webhook.disabled_at = None;
            }
            Some(false) if webhook.enabled => {
                webhook.enabled = false;
                webhook.disabled_reason = Some(DisabledReason::ByUser.stored_name().to_owned());
                webhook.disabled_at = Some(now);
            }
            _ => {}
        }
        webhook.updated_at = now;
        store::update_webhook(&mut tx, &webhook).await?;
        if enabling {
            store::expedite(&mut tx, id, self.inner.clock.now()).await?;
        }
        tx.commit().await?;
        if enabling {
            self.wake();
        }
        Ok(webhook)
    }

    /// Deletes a webhook and every delivery queued for it.
    #[instrument(skip_all, fields(webhook_id = %id.0))]
    pub async fn delete(&self, scope: &WebhookScope, id: WebhookId) -> Result<()> {
        self.get(scope, id).await?;
        if !store::delete_webhook(&self.inner.db, id).await? {
            return Err(Error::NotFound("webhook"));
        }
        tracing::info!("webhook deleted");
        Ok(())
    }

    /// A new signing secret, shown this once. For [`ROTATION_GRACE`] deliveries are signed
    /// with both, so a receiver verifying with either keeps working while it switches. (A
    /// second rotation within that time drops the oldest secret.)
    #[instrument(skip_all, fields(webhook_id = %id.0))]
    pub async fn rotate_secret(&self, scope: &WebhookScope, id: WebhookId) -> Result<WithSecret> {
        let now = Utc::now();
        let secret = signature::generate();
        let sealed = self.seal(id, &secret)?;
        let mut tx = self.inner.db.begin().await?;
        let mut webhook = store::find_webhook_tx(&mut tx, id)
            .await?
            .filter(|w| w.workspace_id == scope.workspace_id)
            .ok_or(Error::NotFound("webhook"))?;
        let current = store::secrets_tx(&mut tx, id).await?.ok_or(Error::NotFound("webhook"))?;
        // Sealed for this webhook already: it moves as it is.
        let expires = now + ROTATION_GRACE;
        store::rotate_secret(&mut tx, id, &sealed, &current.secret, expires, now).await?;
        tx.commit().await?;
        webhook.previous_secret_expires_at = Some(expires);
        webhook.updated_at = now;
        tracing::info!("webhook secret rotated");
        Ok(WithSecret { webhook, secret: signature::display(&secret) })
    }

    /// One page of the webhook's deliveries, newest first, before the delivery `before`.
    pub async fn deliveries(
        &self,
        scope: &WebhookScope,
        id: WebhookId,
        before: Option<DeliveryId>,
        first: usize,
    ) -> Result<(Vec<Delivery>, bool)> {
        self.get(scope, id).await?;
        let rows = store::deliveries_page(&self.inner.db, id, before, first as i64 + 1).await?;
        Ok(crate::db::split_page(rows, first))
    }

    /// The attempts at these deliveries of the scope's workspace, in order.
    pub async fn attempts(&self, scope: &WebhookScope, deliveries: &[DeliveryId]) -> Result<Vec<Attempt>> {
        Ok(store::attempts_of(&self.inner.db, scope.workspace_id, deliveries).await?)
    }

    /// Queues a delivery again, with the same `webhook-id`: a delivered or failed one starts
    /// a new round of the retry schedule; a pending one waiting to retry is tried now. The
    /// webhook must be enabled (CONFLICT otherwise).
    #[instrument(skip_all, fields(delivery_id = %id.0))]
    pub async fn redeliver(&self, scope: &WebhookScope, id: DeliveryId) -> Result<Delivery> {
        let delivery = store::find_delivery(&self.inner.db, id).await?.ok_or(Error::NotFound("webhook delivery"))?;
        let webhook = self.get(scope, delivery.webhook_id).await.map_err(|e| not_found_as(e, "webhook delivery"))?;
        if !webhook.enabled {
            return Err(Error::conflict("id", "the webhook is disabled; enable it first"));
        }
        let queued = store::requeue(&self.inner.db, id, self.inner.clock.now()).await?.ok_or(Error::NotFound("webhook delivery"))?;
        self.wake();
        Ok(queued)
    }

    fn seal(&self, id: WebhookId, secret: &[u8]) -> Result<Vec<u8>> {
        Ok(self.inner.secrets.seal(secret, &binding(id))?)
    }

    /// The secrets that sign a delivery now: the current one, and the previous one during
    /// its grace period.
    pub(super) async fn signing_secrets(&self, id: WebhookId) -> anyhow::Result<Vec<Vec<u8>>> {
        let sealed = store::secrets(&self.inner.db, id).await?.ok_or_else(|| anyhow::anyhow!("the webhook is gone"))?;
        let mut secrets = vec![self.inner.secrets.open(&sealed.secret, &binding(id))?];
        if let (Some(previous), Some(until)) = (&sealed.previous_secret, sealed.previous_secret_expires_at)
            && until > Utc::now()
        {
            secrets.push(self.inner.secrets.open(previous, &binding(id))?);
        }
        Ok(secrets)
    }
}

/// What a webhook's secrets are sealed to: they open only as that webhook's.
pub fn binding(id: WebhookId) -> Vec<u8> {
    [b"webhook-secret:".as_slice(), id.0.as_bytes()].concat()
}

/// A stranger learns nothing about what exists in a workspace they do not belong to.
fn not_found_as(e: Error, what: &'static str) -> Error {
    match e {
        Error::NotFound(_) => Error::NotFound(what),
        other => other,
    }
}
