use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ConnectorError;

/// Where a sync stands, in the connector's own terms (for IMAP: each folder's UIDVALIDITY
/// and last UID). Opaque to the gateway, which stores it with the events it covers in one
/// transaction, so a crash can neither skip nor repeat a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint(pub String);

/// One message on the server, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef {
    /// Unique within the account while the checkpoint stays valid (`INBOX/1700000000/42`).
    /// The gateway deduplicates by it, then by Message-ID.
    pub id: String,
    /// Where the sync stands once this message is recorded. Listing is oldest first, so
    /// recording the messages in order and keeping the last checkpoint is safe.
    pub checkpoint: Checkpoint,
    /// When the server received it, if known.
    pub received_at: Option<DateTime<Utc>>,
    /// Its size in bytes, if known.
    pub size: Option<u64>,
}

/// A whole message as the server holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub reference: MessageRef,
    /// The RFC 5322 bytes, exactly as stored.
    pub bytes: Vec<u8>,
}

/// Why [`MailSession::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Something changed: list again.
    Changed,
    /// Nothing happened within the timeout.
    TimedOut,
}

/// A signed-in connection to one account. The gateway drives it: list, fetch, record,
/// wait, list again. One session is used by one task at a time.
#[async_trait]
pub trait MailSession: Send {
    /// Messages to record next, oldest first: those after `checkpoint` when one is given,
    /// else every message received on or after `since` (also how the gateway reconciles).
    /// A checkpoint that no longer applies is [`ConnectorError::CheckpointReset`].
    async fn list(&mut self, since: DateTime<Utc>, checkpoint: Option<&Checkpoint>) -> Result<Vec<MessageRef>, ConnectorError>;

    /// The listed messages' bytes, in the order asked. Fetching must not change the
    /// account: nothing is marked read. A message that vanished in between is left out.
    async fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<RawMessage>, ConnectorError>;

    /// Waits until new mail may have arrived, or until `timeout` passes. Connectors with
    /// push (IMAP IDLE) return as soon as the server says so; others poll.
    async fn wait(&mut self, timeout: Duration) -> Result<Wake, ConnectorError>;

    /// Signs out politely. Dropping the session without it must also be safe.
    async fn close(self: Box<Self>);
}

/// A message to send: the whole RFC 5322 message and its envelope.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    /// The envelope sender.
    pub from: &'a str,
    /// Every envelope recipient: To, Cc and Bcc.
    pub recipients: &'a [String],
    /// The message as it travels (no `Bcc:` header).
    pub raw: &'a [u8],
    /// The copy a connector keeps in the Sent folder when it differs from `raw`: the sender's
    /// own copy names the Bcc recipients, as every mail client's does. `None`: keep `raw`.
    pub sent_copy: Option<&'a [u8]>,
}

/// What became of a sent message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendReceipt {
    /// The server's reply, for the record (`250 2.0.0 Ok: queued as …`).
    pub response: String,
    /// A copy is in the account's Sent folder: the provider stored it itself (Gmail,
    /// Outlook) or the connector appended it (IMAP).
    pub saved_to_sent: bool,
    /// Why the message was sent but no copy could be kept in the Sent folder (the folder
    /// is missing, the APPEND failed). The send itself succeeded: this is a warning.
    pub sent_copy_error: Option<String>,
}
