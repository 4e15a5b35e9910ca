use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::workspace::model::WorkspaceId;

crate::ids::id_type!(ContactId, "a contact");

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Contact {
    pub contact_id: ContactId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ContactEmail {
    pub contact_id: ContactId,
    pub address: String,
}

/// How mail from an address no contact has is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum ContactMatching {
    /// Create a contact for the sender.
    Create,
    /// Record the message without a contact.
    ExistingOnly,
}

/// The form addresses are compared in: trimmed and lower-cased. (Local parts are
/// case-sensitive in theory; in practice every provider folds them, and so do CRMs.)
pub fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

pub const MAX_NAME: usize = 200;
pub const MAX_EMAILS: usize = 20;

pub fn parse_name(field: &'static str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.chars().count() > MAX_NAME {
        return Err(Error::invalid(field, format!("must be at most {MAX_NAME} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Checks a contact's addresses: valid, at most MAX_EMAILS, no repeats (case-insensitively).
pub fn parse_emails(field: &'static str, raw: &[String]) -> Result<Vec<String>> {
    if raw.len() > MAX_EMAILS {
        return Err(Error::invalid(field, format!("at most {MAX_EMAILS} addresses")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for a in raw {
        let a = a.trim();
        if !email_address::EmailAddress::is_valid(a) {
            return Err(Error::invalid(field, format!("{a:?} is not an email address")));
        }
        if out.iter().any(|o| address_key(o) == address_key(a)) {
            return Err(Error::invalid(field, format!("{a} is listed twice")));
        }
        out.push(a.to_owned());
    }
    Ok(out)
}

/// A name for a contact made from a mail sender: their display name, else the address.
pub fn name_for_sender(name: Option<&str>, address: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.chars().take(MAX_NAME).collect(),
        None => address.trim().to_owned(),
    }
}
