use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::accounts::model::MailboxId;
use crate::contacts::model::ContactId;

use crate::workspace::model::WorkspaceId;

crate::ids::id_type!(EventId, "an activity event");

/// Identifies a thread: the id of the event that started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, Serialize, Deserialize)]
#[sqlx(transparent)]
pub struct ThreadId(pub Uuid);

/// The kinds of activity event, by their wire names (`message.receive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum ActivityType {
    /// An email a contact sent arrived in a connected mailbox.
    #[graphql(name = "MESSAGE_RECEIVE")]
    MessageReceive,
    /// An email from a connected mailbox's own address to a contact: one event per recipient.
    #[graphql(name = "MESSAGE_SEND")]
    MessageSend,
}

impl ActivityType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityType::MessageReceive => "message.receive",
            ActivityType::MessageSend => "message.send",
        }
    }

    pub fn from_db(s: &str) -> Option<ActivityType> {
        match s {
            "message.receive" => Some(ActivityType::MessageReceive),
            "message.send" => Some(ActivityType::MessageSend),
            _ => None,
        }
    }

    /// Whether the event records an email (its `data` is a [`MessageData`]).
    pub fn is_mail(self) -> bool {
        matches!(self, ActivityType::MessageReceive | ActivityType::MessageSend)
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActivityEvent {
    pub event_id: EventId,
    pub workspace_id: WorkspaceId,
    pub contact_id: Option<ContactId>,
    pub mailbox_id: Option<MailboxId>,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// Unique per workspace and kind: for `message.receive` the message's key (see
    /// [`MessageData::dedupe_key`]); for `message.send` that key, a newline and the
    /// recipient's address key (the key alone when it went to nobody else).
    pub dedupe_key: String,
    /// The event's payload as JSON (for mail, a [`MessageData`]). Shared: the events of a
    /// message sent to many people carry the same one.
    pub data: Arc<str>,
    pub malformed: bool,
    pub created_at: DateTime<Utc>,
    /// The conversation a mail event belongs to.
    pub thread_id: Option<ThreadId>,
    /// A mail event's Message-ID, in [`super::message::id_key`] form.
    pub message_id: Option<String>,
}

/// A conversation: mail events that reply to or reference one another.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Thread {
    pub thread_id: ThreadId,
    pub workspace_id: WorkspaceId,
    /// The title of the message that started it.
    pub subject: String,
    /// When its latest event happened.
    pub last_activity_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What a mail event records about the email, stored as the event's `data`.
pub use super::message::{Address, Attachment, MessageData};
