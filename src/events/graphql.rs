//! The event catalogue over GraphQL, for frontends drawing the notification matrix and for
//! services and webhook receivers learning what they may publish or receive.

use async_graphql::{Json, Object};

use super::catalogue::{self, EventKind, EventSource};
use crate::notifications::model::{NotificationCategory, NotificationChannel, NotificationEvent};

pub struct EventKindNode(&'static EventKind);

#[Object(name = "EventKind")]
impl EventKindNode {
    /// The stable name, e.g. `task.assigned`.
    async fn kind(&self) -> &str {
        self.0.kind
    }

    async fn category(&self) -> NotificationCategory {
        self.0.category
    }

    async fn description(&self) -> &str {
        self.0.description
    }

    /// Who produces it: PLATFORM kinds are published with `publishEvents`.
    async fn source(&self) -> EventSource {
        self.0.source
    }

    /// The notification-matrix row it is routed through; null when it notifies nobody.
    async fn notification(&self) -> Option<NotificationEvent> {
        self.0.notification
    }

    /// The channels it reaches a user on until they change their matrix.
    async fn default_channels(&self) -> Vec<NotificationChannel> {
        self.0.default_channels()
    }

    /// It concerns something assigned to the recipient: it sounds with audio alerts set to
    /// ASSIGNED_TO_ME as well as ALL.
    async fn audio_assigned_to_me(&self) -> bool {
        self.0.audio_assigned
    }

    /// Webhooks can subscribe to it.
    async fn webhook(&self) -> bool {
        self.0.webhook
    }

    /// The JSON Schema (draft 2020-12) of its `data`.
    async fn data_schema(&self) -> Json<serde_json::Value> {
        Json(self.0.schema())
    }
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// Every kind of event the gateway knows, optionally of one category or source. Public:
    /// it describes the API, like the schema does.
    async fn event_catalogue(&self, category: Option<NotificationCategory>, source: Option<EventSource>) -> Vec<EventKindNode> {
        catalogue::all()
            .iter()
            .filter(|k| category.is_none_or(|c| k.category == c) && source.is_none_or(|s| k.source == s))
            .map(EventKindNode)
            .collect()
    }
}
