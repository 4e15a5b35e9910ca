//! How a calendar account that shares a mailbox's sign-in (a Google or Microsoft grant) gets
//! that mailbox's credentials: through this trait, which the mailboxes domain implements, so
//! calendars never reach into mailboxes.

use std::sync::Arc;

use concierge_connector_sdk::Credentials;

use super::model::MailboxId;
use crate::error::Result;

#[async_trait::async_trait]
pub trait MailboxCredentials: Send + Sync {
    /// The credentials the mailbox signs in with (OAuth tokens refreshed as needed); NOT_FOUND
    /// when it is gone.
    async fn credentials(&self, mailbox: MailboxId) -> Result<Credentials>;
}

pub type SharedMailboxCredentials = Arc<dyn MailboxCredentials>;
