//! Identity types: account ids, emails and names parsed once into newtypes, account status.

use chrono::{DateTime, Utc};

use crate::db::Stored;
use crate::error::{Error, Reason, Result};

crate::ids::id_type!(
    /// An account's id (UUIDv7, so ids sort by creation time).
    AccountId,
    "an account"
);

/// Whether an account may sign in. An INACTIVE account's sessions stop working at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum AccountStatus {
    Active,
    Inactive,
}

/// A login email: trimmed, syntactically valid, at most 254 bytes, stored lower-cased so that
/// `Ada@Example.com` and `ada@example.com` are the same login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(field, "enter an email address"));
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(Error::invalid(field, "the email address is too long"));
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default().without_display_text().without_domain_literal(),
        )
        .map_err(|_| Error::invalid(field, "not a valid email address"))?;
        // A bare host ("ada@localhost") is valid syntax but never a deliverable login.
        if !parsed.domain().contains('.') {
            return Err(Error::invalid(field, "not a valid email address"));
        }
        Ok(Email(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's first or last name: trimmed, any script, no control characters, 1–100 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::because(field, Reason::Required));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(Error::because(field, Reason::TooLong { max: Self::MAX_CHARS }));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Error::because(field, Reason::ControlCharacters));
        }
        Ok(PersonName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account as stored (without its password hash).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Account {
    pub account_id: AccountId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub status: Stored<AccountStatus>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub display_name: Option<String>,
    /// The phone as the user typed it.
    pub phone: Option<String>,
    pub phone_e164: Option<String>,
    pub job_title: Option<String>,
    /// BCP 47 tag of the language Concierge writes to this user in.
    pub language: String,
    /// Blob-store prefix of the profile photo's renditions.
    pub photo_key: Option<String>,
    /// When the login email was last proven to be the holder's (None: never).
    pub email_verified_at: Option<DateTime<Utc>>,
    /// The person's IANA time zone (None: not set, UTC). Availability and the daily summary
    /// follow it unless given a zone of their own.
    pub time_zone: Option<String>,
}

/// The `status` column, decoded from its text form.
impl Account {
    pub fn status(&self) -> AccountStatus {
        self.status.0
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// The name to show and greet the user by: their display name, else first and last name.
    pub fn shown_name(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| self.full_name())
    }
}

/// What signing up needs, already validated.
pub struct NewAccount {
    pub email: Email,
    pub password: String,
    pub first_name: PersonName,
    pub last_name: PersonName,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("email", "  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_refused_naming_the_field() {
        for raw in ["", "   ", "not-an-email", "a@b", "ada@", "@example.com", "Ada <ada@example.com>", "a b@example.com"] {
            match Email::parse("email", raw) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "email", "{raw:?}"),
                other => panic!("{raw:?} was accepted: {other:?}"),
            }
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse("email", &long).is_err());
    }

    #[test]
    fn names_accept_any_script_but_not_empty_or_overlong() {
        assert_eq!(PersonName::parse("firstName", " Zoë ").unwrap().as_str(), "Zoë");
        assert!(PersonName::parse("firstName", "李小龍").is_ok());
        assert!(PersonName::parse("firstName", " \t ").is_err());
        assert!(PersonName::parse("firstName", &"é".repeat(101)).is_err());
        assert!(PersonName::parse("firstName", "a\u{0}b").is_err());
    }
}
