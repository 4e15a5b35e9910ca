//! Notifications over GraphQL: `me.preferences`, `me.notifications`, the preference and read
//! mutations, push subscriptions, and the live `notifications` subscription.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{AudioAlerts, NotificationCategory, NotificationChannel, NotificationEvent};
use super::service::{Cell, Preferences, SummaryChange};
use super::store::Notification;
use crate::db::StoredEnum as _;
use crate::error::{Error, Result};
use crate::fanout::{Change, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::graphql::paging::{Direction, settle};
use crate::identity::graphql::User;
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use crate::input::input_or_flat;
use crate::tokens::model::Scope;

/// A user's notification preferences; `id` is the owner's, so client caches keep one copy.
pub struct PreferencesNode(pub AccountId, pub Preferences);

#[Object(name = "Preferences")]
impl PreferencesNode {
    /// The owner's user id.
    async fn id(&self) -> ID {
        ID(self.0.to_string())
    }

    /// Every event kind × channel, defaults filled in.
    async fn notifications(&self) -> Vec<NotificationPreference> {
        self.1.matrix.iter().map(|c| NotificationPreference(*c)).collect()
    }

    /// Which new-message notifications make a sound in the client.
    async fn audio(&self) -> AudioAlerts {
        self.1.audio
    }

    async fn daily_summary(&self) -> DailySummary {
        DailySummary {
            enabled: self.1.summary.enabled,
            delivery_time: self.1.summary.time.format("%H:%M").to_string(),
            time_zone: self.1.summary.time_zone.name().to_owned(),
            time_zone_follows_profile: self.1.summary.follows_profile,
        }
    }
}

pub struct NotificationPreference(Cell);

#[Object]
impl NotificationPreference {
    async fn event(&self) -> NotificationEvent {
        self.0.event
    }

    async fn category(&self) -> NotificationCategory {
        self.0.event.category()
    }

    async fn channel(&self) -> NotificationChannel {
        self.0.channel
    }

    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// True while the user has left this cell at its default.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
}

/// The daily summary email: at `deliveryTime` (HH:MM) in `timeZone` (IANA), once a day.
#[derive(SimpleObject)]
pub struct DailySummary {
    pub enabled: bool,
    pub delivery_time: String,
    /// The zone in effect: the profile's, unless the summary has one of its own.
    pub time_zone: String,
    /// Whether `timeZone` is the profile's.
    pub time_zone_follows_profile: bool,
}

pub struct NotificationNode(pub Notification);

#[Object(name = "Notification")]
impl NotificationNode {
    async fn id(&self) -> ID {
        ID(self.0.notification_id.to_string())
    }

    /// The event kind (null for a kind this version does not know).
    async fn event(&self) -> Option<NotificationEvent> {
        NotificationEvent::from_stored(&self.0.event)
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    /// Whether the client should play a sound, by the user's audio choice.
    async fn audible(&self) -> bool {
        self.0.audible
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }

    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
}

pub type NotificationConnection = Connection<OpaqueCursor<Uuid>, NotificationNode, EmptyFields>;

/// A page of the viewer's in-app notifications, newest first.
pub async fn notifications(ctx: &Context<'_>, viewer: &Viewer, direction: Direction, unread_only: bool) -> Result<NotificationConnection> {
    viewer.require(Scope::NotificationsRead)?;
    let (cursor, newer) = direction.keyset();
    let rows = ctx.services()?.notifications.page(viewer.account_id(), cursor, newer, unread_only, direction.limit()).await?;
    let (page, previous, next) = settle(direction, rows);
    let mut connection = Connection::new(previous, next);
    connection.edges.extend(page.into_iter().map(|n| Edge::new(OpaqueCursor(n.notification_id), NotificationNode(n))));
    Ok(connection)
}

#[derive(InputObject)]
pub struct NotificationPreferenceChange {
    pub event: NotificationEvent,
    pub channel: NotificationChannel,
    pub enabled: bool,
}

#[derive(InputObject)]
pub struct DailySummaryInput {
    pub enabled: Option<bool>,
    /// HH:MM, 24-hour, local to `timeZone`.
    pub delivery_time: Option<String>,
    /// An IANA name, e.g. `Europe/Warsaw`: a zone for the summary alone (the profile's
    /// `timeZone` no longer moves it).
    pub time_zone: Option<String>,
    /// `true`: the summary follows the profile's time zone again.
    pub follow_profile_time_zone: Option<bool>,
}

#[derive(InputObject)]
pub struct UpdatePreferencesInput {
    pub audio: Option<AudioAlerts>,
    pub daily_summary: Option<DailySummaryInput>,
}

/// The keys of a browser's `PushSubscription` (base64url, as `toJSON()` gives them).
#[derive(InputObject)]
pub struct PushKeysInput {
    #[graphql(name = "p256dh")]
    pub p256dh: String,
    pub auth: String,
}

/// A browser registered for Web Push, as its owner sees it (never its keys).
pub struct PushSubscriptionNode(pub super::store::PushDevice);

#[Object(name = "PushSubscription")]
impl PushSubscriptionNode {
    async fn id(&self) -> ID {
        ID(self.0.push_subscription_id.to_string())
    }

    /// The push service the browser uses (`https://fcm.googleapis.com`): enough to tell
    /// devices apart without showing the endpoint's secret path.
    async fn endpoint_origin(&self) -> String {
        url::Url::parse(&self.0.endpoint).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When a notification last reached the push service for this browser.
    async fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_success_at
    }

    async fn last_failure_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_failure_at
    }

    /// Attempts that failed since the last success.
    async fn failure_count(&self) -> i32 {
        self.0.failure_count
    }
}

/// The viewer's registered browsers, newest first.
pub async fn push_subscriptions(ctx: &Context<'_>, viewer: &Viewer) -> Result<Vec<PushSubscriptionNode>> {
    viewer.require(Scope::ProfileRead)?;
    Ok(ctx.services()?.notifications.push_devices(viewer).await?.into_iter().map(PushSubscriptionNode).collect())
}

fn parse_ids(ids: &[ID]) -> Result<Vec<Uuid>> {
    ids.iter().map(|id| Uuid::parse_str(id).map_err(|_| Error::invalid("ids", format!("not a notification id: {}", id.as_str())))).collect()
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The gateway's Web Push (VAPID) public key, base64url: what a browser passes to
    /// `pushManager.subscribe({ applicationServerKey })` before `addPushSubscription`.
    async fn push_public_key(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(ctx.services()?.delivery.push_public_key().to_owned())
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Changes any cells of the matrix at once; returns the whole of it.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: Option<UpdateNotificationPreferencesInput>,
        #[graphql(deprecation = "pass it in `input`")] changes: Option<Vec<NotificationPreferenceChange>>,
    ) -> Result<PreferencesNode> {
        let input = input_or_flat!(input, [changes] => UpdateNotificationPreferencesInput { changes });
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let changes: Vec<_> = input.changes.into_iter().map(|c| (c.event, c.channel, c.enabled)).collect();
        let preferences = ctx.services()?.notifications.update_matrix(&viewer, &changes).await?;
        Ok(PreferencesNode(viewer.account_id(), preferences))
    }

    /// Changes the audio choice and the daily summary; a bad part refuses the whole.
    async fn update_preferences(&self, ctx: &Context<'_>, input: UpdatePreferencesInput) -> Result<PreferencesNode> {
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let summary = input.daily_summary.map(|s| SummaryChange {
            enabled: s.enabled,
            delivery_time: s.delivery_time,
            time_zone: s.time_zone,
            follow_profile_time_zone: s.follow_profile_time_zone,
        });
        let preferences = ctx.services()?.notifications.update_preferences(&viewer, input.audio, summary).await?;
        Ok(PreferencesNode(viewer.account_id(), preferences))
    }

    /// Marks the viewer's notifications read; returns how many were unread.
    #[graphql(deprecation = "use readNotifications, which answers with the notifications")]
    async fn mark_notifications_read(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<u64> {
        let viewer = ctx.viewer_for(Scope::NotificationsRead).await?;
        let ids = parse_ids(&ids)?;
        ctx.services()?.notifications.mark_read(&viewer, &ids).await
    }

    /// Marks some of your notifications read (at most 500 at once). The payload holds them,
    /// and `user` the unread count left.
    async fn read_notifications(&self, ctx: &Context<'_>, input: ReadNotificationsInput) -> Result<ReadNotificationsPayload> {
        let viewer = ctx.viewer_for(Scope::NotificationsRead).await?;
        let ids = parse_ids(&input.ids)?;
        let services = ctx.services()?;
        let marked_count = services.notifications.mark_read(&viewer, &ids).await?;
        let mut notifications = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(n) = services.notifications.find(viewer.account_id(), id).await? {
                notifications.push(NotificationNode(n));
            }
        }
        Ok(ReadNotificationsPayload { marked_count, notifications, user: User(viewer.account) })
    }

    #[graphql(deprecation = "use readAllNotifications")]
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> Result<u64> {
        let viewer = ctx.viewer_for(Scope::NotificationsRead).await?;
        ctx.services()?.notifications.mark_all_read(&viewer).await
    }

    /// Marks every notification of yours read; `user` shows none unread.
    async fn read_all_notifications(&self, ctx: &Context<'_>) -> Result<ReadAllNotificationsPayload> {
        let viewer = ctx.viewer_for(Scope::NotificationsRead).await?;
        let marked_count = ctx.services()?.notifications.mark_all_read(&viewer).await?;
        Ok(ReadAllNotificationsPayload { marked_count, user: User(viewer.account) })
    }

    /// Registers this browser for Web Push (the endpoint and keys of its `PushSubscription`).
    #[graphql(deprecation = "use addPushSubscription")]
    async fn register_push_subscription(&self, ctx: &Context<'_>, endpoint: String, keys: PushKeysInput) -> Result<bool> {
        self.add_push_subscription(ctx, AddPushSubscriptionInput { endpoint, keys }).await.map(|_| true)
    }

    /// Registers this browser for Web Push (the endpoint and keys of its `PushSubscription`);
    /// `user.pushSubscriptions` lists it.
    async fn add_push_subscription(&self, ctx: &Context<'_>, input: AddPushSubscriptionInput) -> Result<PushSubscriptionPayload> {
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let keys = &input.keys;
        ctx.services()?.notifications.register_push(&viewer, &input.endpoint, &keys.p256dh, &keys.auth).await?;
        Ok(PushSubscriptionPayload { user: User(viewer.account) })
    }

    /// Removes one of your registered browsers by its id (from `me.pushSubscriptions`).
    #[graphql(deprecation = "use deletePushSubscription")]
    async fn remove_push_subscription(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        self.delete_push_subscription(ctx, DeletePushSubscriptionInput { id: Some(id), endpoint: None }).await.map(|_| true)
    }

    #[graphql(deprecation = "use deletePushSubscription")]
    async fn unregister_push_subscription(&self, ctx: &Context<'_>, endpoint: String) -> Result<bool> {
        let input = DeletePushSubscriptionInput { id: None, endpoint: Some(endpoint) };
        self.delete_push_subscription(ctx, input).await.map(|_| true)
    }

    /// Removes one of your registered browsers: by its `id` (from `me.pushSubscriptions`), or
    /// by the `endpoint` the browser knows. `user.pushSubscriptions` lists those left.
    async fn delete_push_subscription(&self, ctx: &Context<'_>, input: DeletePushSubscriptionInput) -> Result<PushSubscriptionPayload> {
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let notifications = &ctx.services()?.notifications;
        match (input.id, input.endpoint) {
            (Some(id), None) => {
                let id = Uuid::parse_str(id.trim()).map_err(|_| Error::invalid("id", "not a push subscription id"))?;
                notifications.remove_push_device(&viewer, id).await?;
            }
            (None, Some(endpoint)) => notifications.unregister_push(&viewer, &endpoint).await?,
            _ => return Err(Error::invalid("id", "give either id or endpoint")),
        }
        Ok(PushSubscriptionPayload { user: User(viewer.account) })
    }
}

#[derive(InputObject)]
pub struct UpdateNotificationPreferencesInput {
    pub changes: Vec<NotificationPreferenceChange>,
}

#[derive(InputObject)]
pub struct ReadNotificationsInput {
    pub ids: Vec<ID>,
}

#[derive(SimpleObject)]
pub struct ReadNotificationsPayload {
    /// How many of them were unread.
    pub marked_count: u64,
    /// The notifications named, now read (ids that are not yours are left out).
    pub notifications: Vec<NotificationNode>,
    /// You, with the unread count left.
    pub user: User,
}

#[derive(SimpleObject)]
pub struct ReadAllNotificationsPayload {
    /// How many were unread.
    pub marked_count: u64,
    /// You, with nothing unread.
    pub user: User,
}

#[derive(InputObject)]
pub struct AddPushSubscriptionInput {
    /// The `PushSubscription`'s endpoint.
    pub endpoint: String,
    pub keys: PushKeysInput,
}

/// Which browser: exactly one of `id` and `endpoint`.
#[derive(InputObject)]
pub struct DeletePushSubscriptionInput {
    pub id: Option<ID>,
    pub endpoint: Option<String>,
}

#[derive(SimpleObject)]
pub struct PushSubscriptionPayload {
    /// You, with `pushSubscriptions` as they are now.
    pub user: User,
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// The viewer's new in-app notifications, as they happen. A client that falls behind gets
    /// an error item and can catch up from `me.notifications`.
    async fn notifications(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = async_graphql::Result<NotificationNode>> + use<>> {
        let viewer = ctx.viewer_for(Scope::NotificationsRead).await?;
        let services = ctx.shared_services()?;
        let me = viewer.account_id();
        live::feed(
            ctx,
            Topic::Account(me),
            (),
            |c| matches!(c, Change::Notification { .. }),
            move |_, change| {
                let services = services.clone();
                async move {
                    let id = match change {
                        Ok(Change::Notification { notification_id, .. }) => notification_id,
                        Ok(_) => return None,
                        Err(missed) => return Some(Err(live::lagged(missed, "notifications", "reload me.notifications"))),
                    };
                    // Every open client of the user loads the same notification: once is enough.
                    let mine = services.notifications.live(me, id).await;
                    Some(mine.and_then(|n| {
                        n.map(NotificationNode).ok_or_else(|| async_graphql::Error::from(crate::error::Error::NotFound("notification")))
                    }))
                }
            },
        )
    }
}
