//! Personal access tokens: their format (a recognisable prefix and a checksum, so secret
//! scanners find a leaked one and a typo is refused without a database read) and scopes.

use chrono::{DateTime, Utc};
use rand::Rng as _;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::identity::model::AccountId;

/// Every personal access token starts with this.
pub const PREFIX: &str = "cpat_";
const RANDOM_CHARS: usize = 30;
const CHECKSUM_CHARS: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub use super::scopes::Scope;

impl Scope {
    pub fn parse(field: &'static str, raw: &str) -> Result<Scope> {
        Scope::from_name(raw).ok_or_else(|| Error::invalid(field, format!("unknown scope {raw:?}")))
    }
}

/// A fresh token: `cpat_` + 30 random base62 characters + 6 of checksum (CRC32 of the rest).
pub fn generate() -> String {
    generate_with(PREFIX)
}

/// A fresh token in the same format under another prefix (service-account tokens use
/// `csat_`), so scanners and the checksum treat every kind of token alike.
pub fn generate_with(prefix: &str) -> String {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_CHARS).map(|_| BASE62[(rng.next_u32() % 62) as usize] as char).collect();
    format!("{prefix}{random}{}", checksum(&random))
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `token` is well-formed with a matching checksum: no database read needed to
/// refuse a typo or a forgery.
pub fn well_formed(token: &str) -> bool {
    well_formed_with(PREFIX, token)
}

/// `well_formed` for a token under another prefix.
pub fn well_formed_with(prefix: &str, token: &str) -> bool {
    let Some(rest) = token.strip_prefix(prefix) else { return false };
    if rest.len() != RANDOM_CHARS + CHECKSUM_CHARS || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, sum) = rest.split_at(RANDOM_CHARS);
    checksum(random) == sum
}

/// Stored instead of the token (the same SHA-256 as session tokens).
pub use crate::identity::service::token_hash as hash;

/// The part of a token shown in listings, so a user can tell tokens apart.
pub fn display_prefix(token: &str) -> String {
    display_prefix_with(PREFIX, token)
}

/// `display_prefix` for a token under another prefix.
pub fn display_prefix_with(prefix: &str, token: &str) -> String {
    token.chars().take(prefix.len() + 4).collect()
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccessToken {
    pub access_token_id: Uuid,
    pub account_id: AccountId,
    pub name: String,
    pub display_prefix: String,
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AccessToken {
    pub fn scopes(&self) -> Vec<Scope> {
        Scope::split(&self.scopes)
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A token name: trimmed, 1–100 characters.
pub fn parse_name(field: &'static str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "cannot be empty"));
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "at most 100 characters, no control characters"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("cpat_") && a.len() == 41, "{a}");
        assert!(well_formed(&a) && well_formed(&b));
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let token = generate();
        for i in PREFIX.len()..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(!well_formed(&typo), "{typo} passed");
        }
        assert!(!well_formed("cs_whatever"));
        assert!(!well_formed(&token[..40]));
    }

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_refused() {
        let joined = Scope::join(&[Scope::ProfileRead, Scope::MailboxesWrite]);
        assert_eq!(joined, "profile:read mailboxes:write");
        assert_eq!(Scope::split(&joined), [Scope::ProfileRead, Scope::MailboxesWrite]);
        assert!(Scope::parse("scopes", "profile:admin").is_err());
    }
}
