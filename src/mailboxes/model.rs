use chrono::{DateTime, NaiveDate, Utc};

use crate::db::StoredEnum as _;
use crate::identity::model::AccountId;
use crate::workspace::model::WorkspaceId;

pub use crate::accounts::model::MailboxId;

/// Where a mailbox's sync stands. Every change records why (`status_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum MailboxStatus {
    /// Signing in to the server.
    Connecting,
    /// Recording messages: the initial sync from the sync-from date, a backfill, or a burst.
    Syncing,
    /// Caught up, and waiting for new mail as it arrives.
    Live,
    /// The last attempt failed; the sync retries with backoff (see `lastError`).
    Error,
    /// The server refused the credentials: the user must connect it again.
    NeedsReauth,
    /// Paused by the user.
    Paused,
}

/// What happened to a mailbox, as its history keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum MailboxEventKind {
    /// Connected for the first time.
    Connected,
    /// Connected again with new credentials (after NEEDS_REAUTH, or to change them); what it
    /// synced is kept.
    SignedInAgain,
    /// Paused by the user.
    Paused,
    /// Resumed by the user.
    Resumed,
    /// Listed again from the sync-from date: `resyncMailbox`, or an earlier sync-from date.
    ListedAgain,
    /// The server renumbered the folder (a new IMAP UIDVALIDITY): listed again.
    FolderRenumbered,
    /// The server refused the credentials, or the gateway can no longer read them.
    NeedsReauth,
    /// The sync failed twice in a row (`detail` is the error); it retries with backoff.
    Failing,
    /// The sync caught up again after a `FAILING` line.
    Recovered,
}

/// One line of a mailbox's history.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MailboxEvent {
    pub at: DateTime<Utc>,
    pub kind: crate::db::Stored<MailboxEventKind>,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Mailbox {
    pub mailbox_id: MailboxId,
    pub account_id: AccountId,
    pub workspace_id: WorkspaceId,
    pub connector: String,
    pub email_address: String,
    /// The connect form's values as JSON (never a secret).
    pub settings: String,
    pub sync_from: NaiveDate,
    pub paused: bool,
    pub status: String,
    pub status_reason: Option<String>,
    pub status_changed_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub initial_synced_at: Option<DateTime<Utc>>,
    pub checkpoint: Option<String>,
    pub message_count: i64,
    pub skipped_count: i64,
    pub server_count: Option<i64>,
    pub missing_count: Option<i64>,
    pub last_reconciled_at: Option<DateTime<Utc>>,
    /// When the server last renumbered the folder and the sync listed it again.
    pub last_checkpoint_reset_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Mailbox {
    pub fn status(&self) -> MailboxStatus {
        MailboxStatus::from_stored(&self.status).unwrap_or(MailboxStatus::Error)
    }
}
