use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contacts::model::ContactId;
use crate::error::{Error, Result};
use crate::mailboxes::model::MailboxId;
use crate::workspace::model::WorkspaceId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, Serialize, Deserialize)]
#[sqlx(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    pub fn new() -> Self {
        EventId(Uuid::now_v7())
    }

    pub fn parse(field: &'static str, raw: &str) -> Result<Self> {
        Uuid::parse_str(raw.trim()).map(EventId).map_err(|_| Error::invalid(field, "not an activity event id"))
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

/// The kinds of activity event, by their wire names (`message.receive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum ActivityType {
    /// An email a contact sent arrived in a connected mailbox.
    #[graphql(name = "MESSAGE_RECEIVE")]
    MessageReceive,
}

impl ActivityType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityType::MessageReceive => "message.receive",
        }
    }

    pub fn from_db(s: &str) -> Option<ActivityType> {
        (s == "message.receive").then_some(ActivityType::MessageReceive)
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
    pub dedupe_key: String,
    /// The event's payload as JSON (for `message.receive`, a [`MessageData`]).
    pub data: String,
    pub malformed: bool,
    pub created_at: DateTime<Utc>,
}

/// What a `message.receive` event records about the email: the parser's output, stored as
/// the event's `data`.
pub use crate::mailboxes::parse::{Address, Attachment, ParsedMessage as MessageData};
