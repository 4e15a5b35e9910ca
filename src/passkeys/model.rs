//! Passkeys and the ceremonies that register and use them.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::identity::model::AccountId;

/// How long a browser has to answer a ceremony (webauthn-rs asks the browser for 5 minutes).
pub const CEREMONY_TTL: TimeDelta = TimeDelta::minutes(5);
/// Longest passkey name kept.
pub const MAX_NAME_CHARS: usize = 64;
/// Passkeys one account may hold.
pub const MAX_PER_ACCOUNT: usize = 25;
/// Largest browser answer read (a registration with attestation is a few kilobytes).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a ceremony is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Adds a passkey to the signed-in account.
    Register,
    /// Passwordless sign-in: the browser picks a discoverable credential.
    SignIn,
    /// The second factor of a log-in that passed its password.
    SecondFactor,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "REGISTER",
            Purpose::SignIn => "SIGN_IN",
            Purpose::SecondFactor => "SECOND_FACTOR",
        }
    }
}

/// A registered passkey, without its key material.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PasskeyInfo {
    pub passkey_id: Uuid,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A registered passkey with webauthn-rs's credential (JSON).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredPasskey {
    pub passkey_id: Uuid,
    pub account_id: AccountId,
    pub credential: String,
}

/// A ceremony as stored: its sealed state and whom it is for.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CeremonyRow {
    pub passkey_ceremony_id: Uuid,
    pub purpose: String,
    pub account_id: Option<AccountId>,
    pub login_challenge_id: Option<Uuid>,
    pub state: Vec<u8>,
}

/// A trimmed, bounded name; the default when none is given.
pub fn clean_name(name: Option<&str>, default: &str) -> Result<String, &'static str> {
    let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(default);
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("a passkey name is at most 64 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("a passkey name cannot hold control characters");
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_defaulted() {
        assert_eq!(clean_name(Some("  Laptop "), "Passkey").unwrap(), "Laptop");
        assert_eq!(clean_name(Some("   "), "Passkey").unwrap(), "Passkey");
        assert_eq!(clean_name(None, "Passkey").unwrap(), "Passkey");
        assert!(clean_name(Some(&"x".repeat(65)), "Passkey").is_err());
        assert!(clean_name(Some("a\u{7}b"), "Passkey").is_err());
    }
}
