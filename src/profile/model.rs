//! Profile values parsed once into what is stored: phones, optional short texts, and the
//! validated set of changes an `updateProfile` asks for.

use crate::error::{Error, Reason, Result};
use crate::identity::model::PersonName;

/// A phone number as the user wrote it, and its E.164 form when that can be derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone {
    pub as_entered: String,
    pub e164: Option<String>,
}

impl Phone {
    pub const MAX_CHARS: usize = 40;

    /// Accepts the ways people write phone numbers (`+48 (22) 123-45-67`, `0048 22 123 45 67`,
    /// `(555) 010-4477 ext. 12`) and refuses text that is not one. With an international
    /// prefix (`+` or `00`) the number is checked against its country's numbering plan and
    /// gets an E.164 form; without one it cannot be placed, so it is kept as entered only.
    pub fn parse(field: &'static str, raw: &str) -> Result<Phone> {
        let entered = raw.trim();
        let not_a_phone = || Error::because(field, Reason::NotAPhoneNumber);
        if entered.chars().count() > Self::MAX_CHARS {
            return Err(Error::because(field, Reason::TooLong { max: Self::MAX_CHARS }));
        }
        let (main, extension) = split_extension(entered);
        if let Some(ext) = extension
            && (ext.is_empty() || ext.len() > 6 || !ext.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(not_a_phone());
        }
        let mut chars = main.chars().peekable();
        let international = match chars.peek() {
            Some('+') => {
                chars.next();
                true
            }
            _ => main.starts_with("00"),
        };
        let mut digits = String::new();
        for c in chars {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '\u{a0}' | '-' | '.' | '/' | '(' | ')' => {}
                _ => return Err(not_a_phone()),
            }
        }
        if main.starts_with("00") {
            digits.drain(..2);
        }
        if !(4..=15).contains(&digits.len()) {
            return Err(not_a_phone());
        }
        if !international {
            return Ok(Phone { as_entered: entered.to_owned(), e164: None });
        }
        let candidate = format!("+{digits}");
        // The numbering-plan parser is third-party code fed user input: contain any panic.
        let valid = std::panic::catch_unwind(|| {
            phonenumber::parse(None, &candidate)
                .ok()
                .filter(phonenumber::is_valid)
                .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
        })
        .ok()
        .flatten();
        match valid {
            Some(e164) => Ok(Phone { as_entered: entered.to_owned(), e164: Some(e164) }),
            None => Err(Error::invalid(field, "not a valid number for its country code")),
        }
    }
}

/// `"555 0100 ext. 12"` → (`"555 0100"`, Some(`"12"`)).
fn split_extension(s: &str) -> (&str, Option<&str>) {
    let lower = s.to_ascii_lowercase();
    for marker in ["extension", "ext.", "ext", "x", "#"] {
        if let Some(at) = lower.find(marker) {
            let rest = s[at + marker.len()..].trim_start_matches([' ', '.', ':']).trim();
            return (s[..at].trim(), Some(rest));
        }
    }
    (s, None)
}

/// An optional short text (display name, job title): trimmed, any script, no control
/// characters, at most `max` characters; empty means "none".
pub fn optional_text(field: &'static str, raw: &str, max: usize) -> Result<Option<String>> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(Error::because(field, Reason::TooLong { max }));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::because(field, Reason::ControlCharacters));
    }
    Ok(Some(trimmed.to_owned()))
}

pub const DISPLAY_NAME_MAX: usize = 100;
pub const JOB_TITLE_MAX: usize = 100;

/// What an `updateProfile` changes, every field already checked. `None` leaves a field as
/// it is; `Some(None)` clears an optional one.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub display_name: Option<Option<String>>,
    pub phone: Option<Option<Phone>>,
    pub job_title: Option<Option<String>>,
    pub language: Option<String>,
    /// An IANA zone, already checked.
    pub time_zone: Option<chrono_tz::Tz>,
}

impl ProfileChanges {
    pub fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.display_name.is_none()
            && self.phone.is_none()
            && self.job_title.is_none()
            && self.language.is_none()
            && self.time_zone.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(raw: &str) -> Option<String> {
        Phone::parse("phone", raw).unwrap_or_else(|e| panic!("{raw:?} refused: {e:?}")).e164
    }

    #[test]
    fn international_numbers_in_any_notation_get_their_e164_form() {
        assert_eq!(e164("+48 (22) 123-45-67").as_deref(), Some("+48221234567"));
        assert_eq!(e164("0048 22 123 45 67").as_deref(), Some("+48221234567"));
        assert_eq!(e164("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(e164("+1 (415) 555-2671 ext. 12").as_deref(), Some("+14155552671"));
        assert_eq!(e164("+49.30.901820").as_deref(), Some("+4930901820"));
    }

    #[test]
    fn the_number_is_kept_as_entered() {
        let p = Phone::parse("phone", "  +48 (22) 123-45-67 ").unwrap();
        assert_eq!(p.as_entered, "+48 (22) 123-45-67");
    }

    #[test]
    fn a_national_number_is_kept_without_an_e164_form() {
        assert_eq!(e164("(022) 123 45 67"), None);
        assert_eq!(e164("555-0100 x 7"), None);
    }

    #[test]
    fn text_that_is_not_a_phone_number_is_refused() {
        for raw in [
            "call me maybe",
            "12",
            "+",
            "+48 abc",
            "555-0100 ext. twelve",
            "1234567890123456789",
            "+999 1234 5678",
            "☎ 555 0100",
            &"1".repeat(50),
        ] {
            assert!(
                matches!(Phone::parse("phone", raw), Err(Error::Invalid { ref field, .. }) if field == "phone"),
                "{raw:?} was accepted"
            );
        }
    }

    #[test]
    fn optional_texts_are_trimmed_limited_and_empty_means_none() {
        assert_eq!(optional_text("jobTitle", "  Support lead ", 100).unwrap().as_deref(), Some("Support lead"));
        assert_eq!(optional_text("jobTitle", "   ", 100).unwrap(), None);
        assert!(optional_text("jobTitle", &"ż".repeat(101), 100).is_err());
        assert!(optional_text("displayName", "a\u{7}b", 100).is_err());
        assert_eq!(optional_text("displayName", "李小龍 🐉", 100).unwrap().as_deref(), Some("李小龍 🐉"));
    }
}
