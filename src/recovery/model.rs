//! The links this domain mails: what each is for, how it is written and how long it lasts.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::identity::model::AccountId;

/// What a mailed link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Sets a new password (the "forgot password" link).
    PasswordReset,
    /// Proves the login email belongs to the account holder.
    VerifyEmail,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "PASSWORD_RESET",
            Purpose::VerifyEmail => "VERIFY_EMAIL",
        }
    }

    /// Tokens start with this, so a leaked one is recognisable and a token of one kind is
    /// refused by the other without a database read.
    pub fn prefix(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "cpr_",
            Purpose::VerifyEmail => "cve_",
        }
    }

    /// Whether `token` could be one of these links (prefix and length): the rest is
    /// refused without a lookup.
    pub fn could_be(self, token: &str) -> bool {
        token.starts_with(self.prefix()) && token.len() == self.prefix().len() + 43
    }
}

/// Verification links last a week: people read sign-up mail late.
pub const VERIFY_TTL: TimeDelta = TimeDelta::days(7);

/// A link as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Link {
    pub account_link_id: Uuid,
    pub account_id: AccountId,
    pub purpose: String,
    /// The address it was sent to.
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

impl Link {
    /// Unused, unexpired and of this purpose.
    pub fn usable(&self, purpose: Purpose, now: DateTime<Utc>) -> bool {
        self.purpose == purpose.as_str() && self.used_at.is_none() && self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_of_one_purpose_is_never_taken_for_the_other() {
        let reset = crate::identity::service::random_token(Purpose::PasswordReset.prefix());
        assert!(Purpose::PasswordReset.could_be(&reset), "{reset}");
        assert!(!Purpose::VerifyEmail.could_be(&reset));
        assert!(!Purpose::PasswordReset.could_be(&reset[..reset.len() - 1]));
    }
}
