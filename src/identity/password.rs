//! Passwords: the policy a new password must meet, and argon2id hashing off the async
//! workers, with concurrent hashes capped so a login burst cannot exhaust memory.

use std::sync::{Arc, OnceLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::error::{Error, PasswordRule, Result};

/// The rules, as data, so the frontend can render a checklist and the server enforces the same.
pub struct Policy;

impl Policy {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 128;
    /// Hashing cost grows with input bytes; cap it so nobody can make the server hash megabytes.
    pub const MAX_BYTES: usize = 512;
    pub const SPECIALS: &'static str = "!@#$%^&*()_+-=[]{}|\\;:'\",.<>/?`~";
    /// zxcvbn's score (0–4) a password must reach: 3 means "safely unguessable" online.
    pub const MIN_STRENGTH: u8 = 3;

    /// Every rule `password` breaks, given the account's personal data (email, names).
    pub fn unmet(password: &str, personal: &[&str]) -> Vec<PasswordRule> {
        let mut unmet = Vec::new();
        let chars = password.chars().count();
        if chars < Self::MIN_CHARS {
            unmet.push(PasswordRule::MinLength);
        }
        if chars > Self::MAX_CHARS || password.len() > Self::MAX_BYTES {
            unmet.push(PasswordRule::MaxLength);
        }
        if !password.chars().any(char::is_uppercase) {
            unmet.push(PasswordRule::Uppercase);
        }
        if !password.chars().any(|c| c.is_ascii_digit()) {
            unmet.push(PasswordRule::Digit);
        }
        if !password.chars().any(|c| Self::SPECIALS.contains(c) || (!c.is_alphanumeric() && !c.is_whitespace())) {
            unmet.push(PasswordRule::Special);
        }
        let lower = password.to_lowercase();
        let contains_personal =
            personal.iter().map(|p| p.trim().to_lowercase()).filter(|p| p.chars().count() >= 3).any(|p| lower.contains(&p));
        if contains_personal {
            unmet.push(PasswordRule::ContainsPersonalData);
        }
        // zxcvbn knows the most common passwords and keyboard/date/repeat patterns. Its cost
        // grows with length, so only passwords within the length rules are estimated.
        if !unmet.contains(&PasswordRule::MaxLength) && !password.is_empty() {
            let score = zxcvbn::zxcvbn(password, personal).score();
            if u8::from(score) < Self::MIN_STRENGTH {
                unmet.push(PasswordRule::TooCommon);
            }
        }
        unmet
    }

    /// Every rule with what it asks, for a frontend checklist.
    pub fn rules() -> Vec<(PasswordRule, String)> {
        vec![
            (PasswordRule::MinLength, format!("at least {} characters", Self::MIN_CHARS)),
            (PasswordRule::MaxLength, format!("at most {} characters and {} bytes", Self::MAX_CHARS, Self::MAX_BYTES)),
            (PasswordRule::Uppercase, "an uppercase letter".into()),
            (PasswordRule::Digit, "a digit".into()),
            (PasswordRule::Special, format!("a special character such as {}", Self::SPECIALS)),
            (PasswordRule::ContainsPersonalData, "not your email address or name".into()),
            (PasswordRule::TooCommon, "not a common or easily guessed password".into()),
        ]
    }

    /// Refuses `password` (reported on `field`) listing every unmet rule at once.
    pub fn check(field: &'static str, password: &str, personal: &[&str]) -> Result<()> {
        let unmet = Self::unmet(password, personal);
        if unmet.is_empty() { Ok(()) } else { Err(Error::WeakPassword { field, unmet }) }
    }
}

/// argon2id with OWASP's parameters: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashing runs on the blocking pool; at most this many at once (each takes 19 MiB).
fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Arc::new(Semaphore::new(cores))
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = permits().clone().acquire_owned().await.map_err(|e| Error::Internal(e.into()))?;
    let span = tracing::Span::current();
    Ok(tokio::task::spawn_blocking(move || span.in_scope(f)).in_current_span().await?)
}

/// A new PHC-format argon2id hash of `password` with a random salt.
pub async fn hash(password: String) -> Result<String> {
    blocking(move || argon2().hash_password(password.as_bytes()).map(|h| h.to_string()))
        .await?
        .map_err(|e| Error::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches `stored`. With `stored = None` (no such account) a dummy hash
/// is verified anyway, so the answer takes the same time either way.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
    blocking(move || argon2().verify_password(password.as_bytes(), stored.as_str()).is_ok()).await
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        argon2().hash_password(b"a password nobody has; verified only to spend the same time").map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strong_password_meets_every_rule() {
        assert!(Policy::unmet("Correct-Horse-9!battery", &["ada@example.com", "Ada", "Lovelace"]).is_empty());
    }

    #[test]
    fn every_unmet_rule_is_reported_at_once() {
        let unmet = Policy::unmet("short", &[]);
        assert!(unmet.contains(&PasswordRule::MinLength));
        assert!(unmet.contains(&PasswordRule::Uppercase));
        assert!(unmet.contains(&PasswordRule::Digit));
        assert!(unmet.contains(&PasswordRule::Special));
    }

    #[test]
    fn maximum_length_is_bounded_in_bytes_too() {
        // 100 four-byte characters: under the character limit, over the byte limit.
        let pw = format!("Aa1!{}", "😀".repeat(126));
        assert!(Policy::unmet(&pw, &[]).contains(&PasswordRule::MaxLength));
    }

    #[test]
    fn common_passwords_are_refused_even_when_they_tick_every_box() {
        assert_eq!(Policy::unmet("Password123!", &[]), vec![PasswordRule::TooCommon]);
    }

    #[test]
    fn personal_data_is_refused_case_insensitively() {
        let unmet = Policy::unmet("LOVELACE-rules-9!", &["ada@example.com", "Ada", "Lovelace"]);
        assert_eq!(unmet, vec![PasswordRule::ContainsPersonalData]);
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash("Correct-Horse-9!battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("Correct-Horse-9!battery".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("Correct-Horse-9!batterY".into(), Some(h)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
