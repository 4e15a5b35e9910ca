//! Ids the connected-account domains share.

use uuid::Uuid;

use crate::error::{Error, Result};

/// A connected mailbox. Calendar accounts that came with the same sign-in, and the activity
/// events its mail became, refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(transparent)]
pub struct MailboxId(pub Uuid);

impl MailboxId {
    pub fn new() -> Self {
        MailboxId(Uuid::now_v7())
    }

    pub fn parse(field: &'static str, raw: &str) -> Result<Self> {
        Uuid::parse_str(raw.trim()).map(MailboxId).map_err(|_| Error::invalid(field, "not a mailbox id"))
    }
}

impl Default for MailboxId {
    fn default() -> Self {
        Self::new()
    }
}
